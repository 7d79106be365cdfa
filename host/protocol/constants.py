"""Protocol v1 constants: sync, limits, message types, flags, codes and enumerations.

Every number a firmware author needs that is not a struct layout lives here; the layouts live in
``structs.py``. ``docs/protocol.md`` renders its enumeration tables from the ``*_DOCS`` dicts.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

SYNC = b"\xa5\x5a"
PROTOCOL_VERSION = 1
HEADER_SIZE = 16
TRAILER_SIZE = 4
#: Largest payload a v1 receiver accepts. A 32768-sample 16-bit line (64 KiB + 40 bytes) fits
#: with room to spare; the decoder never buffers more than one frame of this size.
MAX_PAYLOAD = 128 * 1024
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + TRAILER_SIZE
#: ``request_seq`` value in a message the device sends without being asked (e.g. after a reset).
UNSOLICITED = 0xFFFFFFFF
#: A device abandons a partial frame when no byte arrived for this long (docs/protocol.md,
#: "Partial frames time out on the device"): a host writes a command in one write, whose bytes
#: never pause this long (a 250 kbaud UART sends a byte every 40 µs, USB delivers every 1 ms),
#: and 50 ms leaves the 100 ms reply promise room. The host side never times out a frame.
PARTIAL_FRAME_TIMEOUT_S = 0.050
MAX_TEXT = 1024
MAX_PING_DATA = 1020
MAX_NAK_TEXT = 256
TGC_MAX_POINTS = 32
SEQ_MODULUS = 1 << 32


def next_seq(seq: int, step: int = 1) -> int:
    """The frame sequence number ``step`` after ``seq`` (u32, wraps to 0)."""
    return (seq + step) % SEQ_MODULUS


class MsgType(IntEnum):
    """Message type byte. Host→device commands are 0x01–0x7F, device→host 0x80–0xFF."""

    GET_INFO = 0x01
    CONFIGURE = 0x02
    START = 0x03
    STOP = 0x04
    GET_STATUS = 0x05
    PING = 0x06
    RESET = 0x07
    DEVICE_INFO = 0x81
    ACK = 0x82
    NAK = 0x83
    STATUS = 0x84
    PONG = 0x85
    LOG = 0x86
    ECHO_LINE = 0x90
    FRAME_END = 0x91


class Flags(IntFlag):
    """Header flag bits. Bits 0–3 are advisory (ignore if unknown); bits 4–7 must be understood."""

    NONE = 0
    #: Advisory: the sender is a simulated or synthetic front end, not real hardware.
    SIMULATED = 0x01
    #: Advisory: this command repeats an earlier one with the same ``seq`` (a host retry).
    RETRY = 0x02


FLAG_DOCS: dict[Flags, str] = {
    Flags.SIMULATED: "The sender is a simulated or synthetic front end, not real hardware.",
    Flags.RETRY: "This command repeats an earlier one with the same `seq` (a host retry after a "
    "timeout). The device re-sends its earlier reply instead of acting twice.",
}

#: A receiver that sees any of these bits set that it does not understand drops the frame.
MUST_UNDERSTAND_MASK = 0xF0
#: Must-understand bits that protocol v1 defines (none). Anything here may be set by senders.
KNOWN_MUST_UNDERSTAND = 0x00


class ErrorCode(IntEnum):
    """``NAK`` error codes."""

    UNKNOWN_TYPE = 0x01
    BAD_LENGTH = 0x02
    UNSUPPORTED_FLAG = 0x03
    UNSUPPORTED_VERSION = 0x04
    OUT_OF_RANGE = 0x05
    INVALID_COMBINATION = 0x06
    BUSY = 0x07
    UNSUPPORTED = 0x08
    HARDWARE_FAULT = 0x09


ERROR_CODE_DOCS: dict[ErrorCode, str] = {
    ErrorCode.UNKNOWN_TYPE: "The message type is not a command this device accepts.",
    ErrorCode.BAD_LENGTH: "The payload length does not match the command's layout.",
    ErrorCode.UNSUPPORTED_FLAG: "A must-understand flag bit (4–7) is set that the device "
    "does not implement.",
    ErrorCode.UNSUPPORTED_VERSION: "The header's version byte is not one the device speaks. "
    "The NAK itself is sent with the device's own version.",
    ErrorCode.OUT_OF_RANGE: "A `CONFIGURE` field is outside the range the device announced in "
    "`DEVICE_INFO`; `field_id` names the field (first failing field in table order).",
    ErrorCode.INVALID_COMBINATION: "Each field is in range but together they are impossible "
    "(see the combination rules); `field_id` names the field to change.",
    ErrorCode.BUSY: "`CONFIGURE` or `START` while streaming. Send `STOP` first.",
    ErrorCode.UNSUPPORTED: "A command the device knows but cannot perform (e.g. `RESET` "
    "without the RESET capability).",
    ErrorCode.HARDWARE_FAULT: "The front end reported a fault (high voltage, ADC, overheating). "
    "`STATUS.fault_flags` says which.",
}


class SampleFormat(IntEnum):
    """How samples are stored in ``ECHO_LINE``."""

    U8 = 0
    I16 = 1
    U16_OB = 2
    PACKED12 = 3


SAMPLE_FORMAT_DOCS: dict[SampleFormat, str] = {
    SampleFormat.U8: "1 byte per sample, unsigned offset binary (zero signal = 2^(adc_bits-1)). "
    "adc_bits ≤ 8.",
    SampleFormat.I16: "2 bytes per sample, little-endian two's complement (zero signal = 0).",
    SampleFormat.U16_OB: "2 bytes per sample, little-endian unsigned offset binary "
    "(zero signal = 2^(adc_bits-1)).",
    SampleFormat.PACKED12: "3 bytes per 2 samples, unsigned offset binary 12-bit "
    "(zero signal = 2^(adc_bits-1)), adc_bits ≤ 12, even sample count. Samples a, b → "
    "byte0 = a[7:0], byte1 = a[11:8] | b[3:0] << 4, byte2 = b[11:4].",
}


class SweepKind(IntEnum):
    """What ``beam_position`` means."""

    FIXED = 0
    SECTOR = 1
    LINEAR = 2


SWEEP_KIND_DOCS: dict[SweepKind, str] = {
    SweepKind.FIXED: "No sweep: a single fixed beam; positions are 0.",
    SweepKind.SECTOR: "Mechanical or phased sector: position is the beam angle in µrad, "
    "0 = straight ahead, positive toward the transducer's +x side.",
    SweepKind.LINEAR: "Linear translation: position is the lateral offset in µm.",
}


class Capability(IntFlag):
    """``DEVICE_INFO.capabilities`` bits."""

    NONE = 0
    RESET = 0x01
    HV_CONTROL = 0x02
    SIMULATED = 0x04


CAPABILITY_DOCS: dict[Capability, str] = {
    Capability.RESET: "The device implements `RESET` (reboot; sequence restarts at 0).",
    Capability.HV_CONTROL: "`CONFIGURE.hv_mv` sets the pulser voltage; otherwise it must "
    "equal `hv_min_mv`.",
    Capability.SIMULATED: "The front end is simulated or synthetic.",
}


class DeviceState(IntEnum):
    """``STATUS.state``."""

    IDLE = 0
    STREAMING = 1
    FAULT = 2


class LogLevel(IntEnum):
    """``LOG.level``: the same numbers as Python's logging module."""

    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40


def sample_nbytes(sample_format: int, n_samples: int) -> int | None:
    """Bytes that ``n_samples`` occupy in ``sample_format``; None if the pair is impossible."""
    if sample_format == SampleFormat.I16 or sample_format == SampleFormat.U16_OB:
        return 2 * n_samples
    if sample_format == SampleFormat.U8:
        return n_samples
    if sample_format == SampleFormat.PACKED12:
        return None if n_samples & 1 else 3 * (n_samples >> 1)
    return None


def padded_len(payload_len: int) -> int:
    """Payload length rounded up to the 4-byte boundary that precedes the CRC-32."""
    return (payload_len + 3) & ~3


def frame_len(payload_len: int) -> int:
    """Total bytes on the wire for a frame carrying ``payload_len`` payload bytes."""
    return HEADER_SIZE + padded_len(payload_len) + TRAILER_SIZE
