"""The construct definitions, their compiled struct twins, the CRCs, the doc and the vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sonobridge.protocol import (
    CONFIGURE_FIELD_IDS,
    Configure,
    Decoder,
    DeviceInfo,
    EchoLine,
    MsgType,
    SampleFormat,
    encode,
    encode_frame,
    spec,
    structs,
    vectors,
)
from sonobridge.protocol.crc import crc16_ccitt_false, crc32
from sonobridge.protocol.samples import pack12, unpack12

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"


def test_crc_check_values():
    # the standard catalogue check values; any table-driven C version must match these
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc32(b"123456789") == 0xCBF43926


FIXED_LAYOUTS = {name: d for name, d in structs.PAYLOADS.items()
                 if d.subcons and "bytes[…]" not in map(spec.type_name, d.subcons)}


@pytest.mark.parametrize("name", [*sorted(FIXED_LAYOUTS), "header"])
@given(data=st.data())
def test_compiled_struct_parses_like_construct(name, data):
    layout = structs.FrameHeader if name == "header" else FIXED_LAYOUTS[name]
    compiled = structs.compile_struct(layout)
    assert compiled.size == layout.sizeof()
    raw = data.draw(st.binary(min_size=compiled.size, max_size=compiled.size))
    if name == "header":
        raw = b"\xa5\x5a" + raw[2:]
    parsed = layout.parse(raw)
    flat = []
    for field_name in structs.field_names(layout):
        value = parsed[field_name]
        flat.extend(value if isinstance(value, list) else [value])
    assert list(compiled.unpack(raw)) == flat


def test_sizes_and_alignment():
    assert structs.FrameHeader.sizeof() == 16
    assert structs.fixed_size(structs.EchoLineHeader) == 40
    assert structs.ConfigureLayout.sizeof() == 100
    for layout in structs.PAYLOADS.values():
        assert structs.fixed_size(layout) % 4 == 0


def test_configure_field_ids_follow_table_order():
    assert CONFIGURE_FIELD_IDS["sample_format"] == 1
    assert CONFIGURE_FIELD_IDS["tgc_cdb"] == 15
    assert len(CONFIGURE_FIELD_IDS) == 15


def test_doc_tables_match_the_structs():
    doc = (ROOT / "docs" / "protocol.md").read_text()
    new, unknown = spec.update(doc)
    assert not unknown
    assert not spec.missing_blocks(doc)
    assert new == doc, "docs/protocol.md is stale: python -m sonobridge.protocol.spec --write ..."


def test_doc_check_detects_a_wrong_offset():
    doc = (ROOT / "docs" / "protocol.md").read_text()
    tampered = doc.replace("| 8 | 4 | u32 | `seq` |", "| 9 | 4 | u32 | `seq` |", 1)
    assert tampered != doc
    assert spec.update(tampered)[0] != tampered


def test_vector_files_are_reproduced_byte_for_byte():
    rendered = vectors.render()
    for name, text in rendered.items():
        assert (VECTORS / name).read_text() == text, name


def test_every_message_type_has_a_vector_and_every_format_too():
    index = json.loads((VECTORS / "vectors.json").read_text())
    types = {entry["message"]["type"] for entry in index}
    assert types == {t.name for t in MsgType}
    formats = {entry["message"]["sample_format"] for entry in index
               if entry["message"]["type"] == "ECHO_LINE"}
    assert formats == {int(f) for f in SampleFormat}


def test_vectors_decode_to_their_json_fields():
    index = json.loads((VECTORS / "vectors.json").read_text())
    for entry in index:
        frame = vectors.read_hex(VECTORS / entry["file"])
        assert len(frame) == entry["length"]
        (msg,) = Decoder().feed(frame)
        assert msg.seq == entry["seq"]
        assert vectors.to_json(msg) == entry["message"]


def test_header_bytes_by_hand():
    # independent of construct: the first vector's header, laid out per the spec
    frame = encode_frame(0x01, b"", 1)
    assert frame[:2] == b"\xa5\x5a" and frame[2] == 1 and frame[3] == 0x01
    assert int.from_bytes(frame[4:8], "little") == 0
    assert int.from_bytes(frame[8:12], "little") == 1
    assert int.from_bytes(frame[14:16], "little") == crc16_ccitt_false(frame[:14])
    assert int.from_bytes(frame[16:20], "little") == crc32(frame[:16])
    assert len(frame) == 20


@given(st.lists(st.integers(0, 4095), max_size=200).map(lambda v: v[: len(v) // 2 * 2]))
def test_pack12_round_trip(values):
    arr = np.array(values, dtype=np.uint16)
    packed = pack12(arr)
    assert len(packed) == 3 * len(values) // 2
    np.testing.assert_array_equal(unpack12(np.frombuffer(packed, np.uint8)), arr)


def test_encode_errors_are_clear():
    with pytest.raises(ValueError, match="seq"):
        encode(Configure(), 2**32)
    with pytest.raises(ValueError, match=r"prf_hz|CONFIGURE"):
        encode(Configure(prf_hz=-1), 0)
    with pytest.raises(ValueError, match="maximum"):
        encode_frame(0x90, bytes(200_000), 0)
    with pytest.raises(ValueError, match="board_name"):
        DeviceInfo(board_name="x" * 33)
    with pytest.raises(ValueError, match="at most 32"):
        Configure(tgc_cdb=tuple(range(33)))
    with pytest.raises(ValueError, match="frame_index"):
        encode(EchoLine(np.zeros(4, np.int16), 1, frame_index=2**32), 0)


def test_echo_line_validation():
    with pytest.raises(TypeError, match="1-D"):
        EchoLine(np.zeros((2, 2), np.int16), 1)
    with pytest.raises(TypeError, match="dtype"):
        EchoLine(np.zeros(4, np.float32), 1)
    with pytest.raises(TypeError, match="needs"):
        EchoLine(np.zeros(4, np.int16), 1, sample_format=SampleFormat.U8)
    with pytest.raises(ValueError, match="adc_bits"):
        EchoLine(np.zeros(4, np.uint8), 1, adc_bits=9)
    with pytest.raises(ValueError, match="line_index"):
        EchoLine(np.zeros(4, np.int16), 1, line_index=3, lines_per_frame=3)
    with pytest.raises(ValueError, match="packed 12-bit"):
        encode(EchoLine(np.zeros(3, np.uint16), 1, sample_format=SampleFormat.PACKED12), 0)
    with pytest.raises(ValueError, match=r"0\.\.4095"):
        encode(EchoLine(np.full(2, 5000, np.uint16), 1, sample_format=SampleFormat.PACKED12), 0)


def test_echo_line_defaults_and_units():
    line = EchoLine(samples=np.zeros(8, np.uint16), sample_rate_hz=40_000_000, frame_index=3,
                    line_index=0, start_delay_samples=400, adc_bits=10)
    assert line.sample_format == SampleFormat.U16_OB
    assert line.zero_level == 512
    assert line.start_delay_s == pytest.approx(10e-6)
    assert line.lines_per_frame == 1 and line.ensemble_size == 1


def test_each_fact_has_one_home() -> None:
    from sonobridge.protocol import SampleFormat, next_seq
    from sonobridge.protocol.samples import zero_level

    assert structs.ECHO_LINE_HEADER_SIZE == structs.fixed_size(structs.EchoLineHeader) == 40
    assert next_seq(0xFFFFFFFF) == 0 and next_seq(5) == 6 and next_seq(0xFFFFFFFE, 3) == 1
    assert zero_level(SampleFormat.I16, 16) == 0 and zero_level(SampleFormat.PACKED12, 12) == 2048
