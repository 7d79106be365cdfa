"""Encoding messages to frames, and message payloads to and from bytes.

``encode(message, seq)`` is the one way anything of ours puts a frame on the wire. Payload
layouts come from ``structs.py``: construct builds and parses the rare messages, and the
``struct.Struct`` equivalents derived from the same definitions carry the hot path.
"""

from __future__ import annotations

import binascii
import struct
import zlib
from dataclasses import fields

import construct as cs

from .constants import (
    MAX_NAK_TEXT,
    MAX_PAYLOAD,
    MAX_PING_DATA,
    MAX_TEXT,
    PROTOCOL_VERSION,
    SEQ_MODULUS,
    SYNC,
    MsgType,
    sample_nbytes,
)
from .messages import HEADER_FIELDS, MESSAGE_CLASSES, EchoLine, FrameEnd, Message
from .samples import samples_from_buffer, samples_to_bytes
from .structs import (
    ECHO_LINE_HEADER_SIZE,
    PAYLOADS,
    EchoLineHeader,
    FrameEndLayout,
    FrameHeader,
    compile_struct,
    field_names,
    fixed_size,
)

HEADER = compile_struct(FrameHeader)
# The header without its CRC: packed first, then checked.
HEADER_BODY = struct.Struct(HEADER.format[:-1])
HEADER_CRC = struct.Struct("<H")
TRAILER = struct.Struct("<I")
ECHO_HEADER = compile_struct(EchoLineHeader)
FRAME_END = compile_struct(FrameEndLayout)

LAYOUTS: dict[int, cs.Struct] = {MsgType[name]: layout for name, layout in PAYLOADS.items()}
_FIXED_SIZES = {t: fixed_size(layout) for t, layout in LAYOUTS.items()}
_GREEDY_LIMITS = {
    MsgType.PING: MAX_PING_DATA,
    MsgType.PONG: MAX_PING_DATA,
    MsgType.NAK: MAX_NAK_TEXT,
    MsgType.LOG: MAX_TEXT,
}
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")


class PayloadError(ValueError):
    """A payload that does not match its message type's layout."""


def encode_frame(
    msg_type: int,
    payload: bytes,
    seq: int,
    *,
    flags: int = 0,
    version: int = PROTOCOL_VERSION,
) -> bytes:
    """Wrap a payload in the v1 envelope: header, header CRC, payload, padding, CRC-32."""
    plen = len(payload)
    if plen > MAX_PAYLOAD:
        raise ValueError(f"payload of {plen} bytes exceeds the maximum of {MAX_PAYLOAD}")
    if not 0 <= seq < SEQ_MODULUS:
        raise ValueError(f"seq must be in 0..2^32-1, got {seq}")
    if not 0 <= flags <= 0xFF or not 0 <= msg_type <= 0xFF or not 0 <= version <= 0xFF:
        raise ValueError("flags, msg_type and version are single bytes (0..255)")
    head = HEADER_BODY.pack(SYNC, version, msg_type, plen, seq, flags, 0)
    head += HEADER_CRC.pack(binascii.crc_hqx(head, 0xFFFF))
    body = head + payload + _PAD[plen & 3]
    return body + TRAILER.pack(zlib.crc32(body))


def encode(message: Message, seq: int, *, flags: int = 0) -> bytes:
    """Encode one message as a complete frame with sequence number ``seq``."""
    return encode_frame(message.MSG_TYPE, encode_payload(message), seq, flags=flags)


def encode_payload(message: Message) -> bytes:
    """The payload bytes of ``message`` (without the envelope)."""
    if isinstance(message, EchoLine):
        return _encode_echo_line(message)
    layout = LAYOUTS[message.MSG_TYPE]
    values = {}
    for sc in layout.subcons:
        if not sc.name:
            continue
        if sc.name == "reserved":
            values[sc.name] = bytes(sc.sizeof()) if _is_bytes(sc) else 0
            continue
        value = getattr(message, sc.name)
        if isinstance(value, str):
            value = value.encode("utf-8")
            if _is_bytes(sc):
                value = value.ljust(sc.sizeof(), b"\0")
        values[sc.name] = value
    try:
        return layout.build(values)
    except (cs.ConstructError, struct.error, TypeError) as exc:
        raise ValueError(f"cannot encode {message.MSG_TYPE.name}: {exc}") from exc


def _is_bytes(subcon: cs.Construct) -> bool:
    while isinstance(subcon, cs.Renamed):
        subcon = subcon.subcon
    return isinstance(subcon, cs.Bytes)


def _encode_echo_line(line: EchoLine) -> bytes:
    n = line.samples.shape[0]
    data = samples_to_bytes(line.samples, line.sample_format)
    values = (
        line.sample_format, line.adc_bits, line.ensemble_index, line.ensemble_size,
        line.sample_rate_hz, line.start_delay_samples, line.frame_index, line.line_index,
        line.lines_per_frame, line.beam_position, line.timestamp_us, line.config_id,
        line.sweep_kind, 0, n,
    )
    try:
        head = ECHO_HEADER.pack(*values)
    except struct.error:
        # construct names the offending field; struct only says "out of range"
        try:
            EchoLineHeader.build(dict(zip(field_names(EchoLineHeader), values, strict=True)))
        except cs.ConstructError as exc:
            raise ValueError(f"cannot encode ECHO_LINE: {exc}") from exc
        raise
    return head + data


def decode_payload(msg_type: int, payload: bytes, offset: int = 0, length: int | None = None
                   ) -> Message:
    """Decode one payload into its message; raises ``PayloadError`` if it does not fit."""
    if length is None:
        length = len(payload) - offset
    if msg_type == MsgType.ECHO_LINE:
        return decode_echo_line(payload, offset, length)
    if msg_type == MsgType.FRAME_END:
        if length != FRAME_END.size:
            raise PayloadError(f"FRAME_END payload is {length} bytes, expected {FRAME_END.size}")
        return FrameEnd(*FRAME_END.unpack_from(payload, offset))
    layout = LAYOUTS.get(msg_type)
    if layout is None:
        raise PayloadError(f"unknown message type 0x{msg_type:02X}")
    fixed = _FIXED_SIZES[msg_type]
    greedy = _GREEDY_LIMITS.get(msg_type)
    if greedy is None and length != fixed:
        raise PayloadError(f"{MsgType(msg_type).name} payload is {length} bytes, expected {fixed}")
    if greedy is not None and not fixed <= length <= fixed + greedy:
        raise PayloadError(
            f"{MsgType(msg_type).name} payload is {length} bytes, expected "
            f"{fixed}..{fixed + greedy}"
        )
    raw = payload[offset : offset + length]
    try:
        parsed = layout.parse(raw)
    except cs.ConstructError as exc:  # pragma: no cover - lengths are checked above
        raise PayloadError(str(exc)) from exc
    cls = MESSAGE_CLASSES[msg_type]
    kwargs = {}
    for f in fields(cls):
        if f.name in HEADER_FIELDS:
            continue
        value = parsed[f.name]
        if f.type == "str":
            value = bytes(value).rstrip(b"\0").decode("utf-8", "replace")
        elif f.type == "bytes":
            value = bytes(value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise PayloadError(str(exc)) from exc


def decode_echo_line(buf: bytes, offset: int, length: int) -> EchoLine:
    """Decode an ``ECHO_LINE`` payload of ``length`` bytes at ``buf[offset]``."""
    if length < ECHO_LINE_HEADER_SIZE:
        raise PayloadError(f"ECHO_LINE payload is {length} bytes, shorter than its header")
    (fmt, bits, ens_i, ens_n, fs, delay, frame, line, nlines, pos, ts, cfg, sweep, _rsv,
     n) = ECHO_HEADER.unpack_from(buf, offset)
    nbytes = sample_nbytes(fmt, n)
    if nbytes is None:
        raise PayloadError(f"ECHO_LINE sample_format {fmt} with {n} samples is impossible")
    if ECHO_LINE_HEADER_SIZE + nbytes != length:
        raise PayloadError(
            f"ECHO_LINE says {n} samples ({nbytes} bytes) but carries "
            f"{length - ECHO_LINE_HEADER_SIZE} bytes"
        )
    samples = samples_from_buffer(buf, offset + ECHO_LINE_HEADER_SIZE, fmt, n)
    try:
        return EchoLine(samples, fs, frame, line, nlines, pos, sweep, ens_i, ens_n, delay, ts,
                        cfg, bits, fmt)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"ECHO_LINE: {exc}") from exc


__all__ = [
    "PayloadError",
    "decode_echo_line",
    "decode_payload",
    "encode",
    "encode_frame",
    "encode_payload",
]
