"""Canonical test vectors: one or more frames per message type, shared with the C firmware.

    python -m sonobridge.protocol.vectors --write tests/vectors   # regenerate (only on purpose!)
    python -m sonobridge.protocol.vectors --check tests/vectors   # verify the files still match

Each vector is ``NN_name.hex`` (the frame's bytes as hex, 16 per line) and an entry in
``vectors.json`` with the message fields, so any implementation can rebuild and compare. The
files are frozen: if ``encode`` ever produces different bytes, the wire format has changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .codec import encode
from .constants import Capability, DeviceState, ErrorCode, Flags, LogLevel, SampleFormat, SweepKind
from .messages import (
    Ack,
    Configure,
    DeviceInfo,
    EchoLine,
    FrameEnd,
    GetInfo,
    GetStatus,
    Log,
    Message,
    Nak,
    Ping,
    Pong,
    Reset,
    Start,
    Status,
    Stop,
    payload_fields,
)
from .structs import CONFIGURE_FIELD_IDS


def _ramp(n: int, dtype: str, lo: int, step: int) -> np.ndarray:
    return (lo + step * np.arange(n)).astype(dtype)


def canonical() -> list[tuple[str, int, int, Message]]:
    """The vectors as (name, seq, flags, message)."""
    return [
        ("get_info", 1, 0, GetInfo()),
        ("configure", 2, 0, Configure(
            sample_format=SampleFormat.I16, decimation=1, ensemble_size=1, pulse_cycles=2,
            samples_per_line=2048, start_delay_samples=100, prf_hz=2000, lines_per_frame=96,
            sweep_start=-523_599, sweep_end=523_599, pulse_freq_hz=5_000_000, hv_mv=48_000,
            tgc_cdb=(0, 500, 1000, 1500))),
        ("start", 3, 0, Start(n_frames=0)),
        ("start_n", 4, 0, Start(n_frames=10)),
        ("stop", 5, 0, Stop()),
        ("get_status", 6, 0, GetStatus()),
        ("ping", 7, 0, Ping(token=0xDEADBEEF, data=b"sonobridge")),
        ("reset", 8, Flags.RETRY, Reset()),
        ("device_info", 0, Flags.SIMULATED, DeviceInfo(
            request_seq=1, protocol_version=1, fw_major=1, fw_minor=2, fw_patch=3,
            board_id=0x00C0FFEE, board_name="sonobridge-sim", adc_bits=10,
            sample_formats=(1 << SampleFormat.U8) | (1 << SampleFormat.I16)
            | (1 << SampleFormat.U16_OB) | (1 << SampleFormat.PACKED12),
            sweep_kind=SweepKind.SECTOR,
            capabilities=Capability.RESET | Capability.HV_CONTROL | Capability.SIMULATED,
            adc_rate_hz=40_000_000, max_decimation=8, tgc_points_max=32, ensemble_max=16,
            pulse_cycles_max=8, min_samples_per_line=64, max_samples_per_line=32768,
            max_start_delay_samples=65535, max_lines_per_frame=256, gain_min_cdb=-1000,
            gain_max_cdb=4000, sweep_min=-523_599, sweep_max=523_599, prf_min_hz=10,
            prf_max_hz=20_000, pulse_freq_min_hz=1_000_000, pulse_freq_max_hz=15_000_000,
            hv_min_mv=5_000, hv_max_mv=100_000, transducer_freq_hz=5_000_000,
            rated_throughput_bps=35_000_000)),
        ("ack", 1, 0, Ack(request_seq=2, request_type=0x02)),
        ("nak", 2, 0, Nak(request_seq=2, request_type=0x02, error_code=ErrorCode.OUT_OF_RANGE,
                          field_id=CONFIGURE_FIELD_IDS["prf_hz"],
                          text="prf_hz 50000 outside 10..20000")),
        ("status", 3, 0, Status(
            request_seq=6, state=DeviceState.STREAMING, fault_flags=0, temperature_cdeg=3150,
            hv_mv=47_900, device_time_us=123_456_789, dropped_lines=2, lines_sent=10_000,
            buffer_fill_permille=125, config_id=1)),
        ("pong", 4, 0, Pong(request_seq=7, token=0xDEADBEEF, device_time_us=1_000_000,
                            data=b"sonobridge")),
        ("log", 5, 0, Log(level=LogLevel.WARNING, text="hv settling")),
        ("echo_line_u8", 6, 0, EchoLine(
            _ramp(16, "u1", 120, 1), 40_000_000, frame_index=0, line_index=0,
            lines_per_frame=96, beam_position=-523_599, sweep_kind=SweepKind.SECTOR,
            start_delay_samples=100, timestamp_us=1000, config_id=1, adc_bits=8)),
        ("echo_line_i16", 7, 0, EchoLine(
            _ramp(16, "<i2", -512, 64), 40_000_000, frame_index=1, line_index=5,
            lines_per_frame=96, beam_position=-412_345, sweep_kind=SweepKind.SECTOR,
            start_delay_samples=100, timestamp_us=2000, config_id=1, adc_bits=10)),
        ("echo_line_u16_ob", 8, 0, EchoLine(
            _ramp(16, "<u2", 500, 3), 20_000_000, frame_index=2, line_index=0,
            lines_per_frame=1, beam_position=1500, sweep_kind=SweepKind.LINEAR,
            ensemble_index=3, ensemble_size=8, start_delay_samples=0, timestamp_us=3000,
            config_id=2, adc_bits=10, sample_format=SampleFormat.U16_OB)),
        ("echo_line_packed12", 9, 0, EchoLine(
            np.array([0x123, 0x456, 0x789, 0xABC, 0x000, 0xFFF, 0x800, 0x7FF], "<u2"),
            40_000_000, frame_index=3, line_index=1, lines_per_frame=2,
            sweep_kind=SweepKind.FIXED, timestamp_us=4000, config_id=3, adc_bits=12,
            sample_format=SampleFormat.PACKED12)),
        ("frame_end", 10, 0, FrameEnd(frame_index=1, lines_sent=96, lines_per_frame=96,
                                      timestamp_us=48_000)),
    ]


def to_json(message: Message) -> dict:
    """The message's fields as JSON-able values (samples as a list of ints)."""
    out: dict = {"type": message.MSG_TYPE.name}
    for name in payload_fields(message):
        value = getattr(message, name)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, int):
            value = int(value)
        out[name] = value
    return out


def hex_lines(frame: bytes, per_line: int = 16) -> str:
    """Hex dump, ``per_line`` bytes per line, lower case, space separated."""
    return "\n".join(frame[i : i + per_line].hex(" ") for i in range(0, len(frame), per_line))


def read_hex(path: Path) -> bytes:
    """Read a ``.hex`` vector file (whitespace-separated hex; ``#`` starts a comment)."""
    text = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
    return bytes.fromhex("".join(text.split()))


def render() -> dict[str, str]:
    """All vector files by name (``NN_name.hex`` and ``vectors.json``)."""
    files: dict[str, str] = {}
    index = []
    for i, (name, seq, flags, message) in enumerate(canonical()):
        frame = encode(message, seq, flags=flags)
        fname = f"{i:02d}_{name}.hex"
        files[fname] = hex_lines(frame) + "\n"
        index.append({"name": name, "file": fname, "seq": seq, "flags": int(flags),
                      "length": len(frame), "message": to_json(message)})
    files["vectors.json"] = json.dumps(index, indent=1) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    """Write or check the vector files."""
    ap = argparse.ArgumentParser(description="protocol v1 test vectors")
    ap.add_argument("directory", type=Path)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    files = render()
    if args.write:
        args.directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (args.directory / name).write_text(text)
        print(f"wrote {len(files)} files to {args.directory}")
        return 0
    bad = [n for n, t in files.items()
           if not (args.directory / n).exists() or (args.directory / n).read_text() != t]
    for n in bad:
        print(f"differs: {args.directory / n}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
