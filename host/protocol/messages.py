"""Protocol v1 messages as small dataclasses, one per message type.

Field names and integer units match the wire layouts in ``structs.py`` exactly (reserved fields
are omitted), so a decoded message is a faithful picture of what was on the wire. Friendlier
units are offered as read-only properties (``beam_angle_rad``, ``start_delay_s`` …).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

import numpy as np

from .constants import (
    MAX_NAK_TEXT,
    MAX_PING_DATA,
    MAX_TEXT,
    TGC_MAX_POINTS,
    UNSOLICITED,
    DeviceState,
    LogLevel,
    MsgType,
    SampleFormat,
    SweepKind,
)
from .samples import DEFAULT_ADC_BITS, DTYPES, MAX_ADC_BITS, format_for_dtype, zero_level


@dataclass(slots=True)
class Message:
    """Base of every message. ``seq`` and ``flags`` are set on decoded messages from the header."""

    MSG_TYPE: ClassVar[MsgType]
    seq: int | None = field(default=None, kw_only=True, compare=False, repr=False)
    #: header flags of a decoded message (``encode`` takes flags as an argument instead)
    flags: int = field(default=0, kw_only=True, compare=False, repr=False)


# -- host → device -------------------------------------------------------------------------------


@dataclass(slots=True)
class GetInfo(Message):
    """Ask for ``DEVICE_INFO``."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.GET_INFO


@dataclass(slots=True)
class Configure(Message):
    """Set the acquisition parameters (only while idle). Answered by ``ACK`` or ``NAK``."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.CONFIGURE
    sample_format: int = SampleFormat.I16
    decimation: int = 1
    ensemble_size: int = 1
    pulse_cycles: int = 2
    samples_per_line: int = 2048
    start_delay_samples: int = 0
    prf_hz: int = 1000
    lines_per_frame: int = 64
    tgc_count: int | None = None
    sweep_start: int = -523_599
    sweep_end: int = 523_599
    pulse_freq_hz: int = 5_000_000
    hv_mv: int = 24_000
    tgc_cdb: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        points = tuple(int(v) for v in self.tgc_cdb)
        if len(points) > TGC_MAX_POINTS:
            raise ValueError(f"tgc_cdb has {len(points)} points; at most {TGC_MAX_POINTS}")
        if self.tgc_count is None:
            self.tgc_count = len(points)
        self.tgc_cdb = points + (0,) * (TGC_MAX_POINTS - len(points))

    @property
    def tgc_db(self) -> tuple[float, ...]:
        """The valid TGC points in dB."""
        return tuple(v / 100.0 for v in self.tgc_cdb[: self.tgc_count])


@dataclass(slots=True)
class Start(Message):
    """Start acquiring; ``n_frames`` = 0 streams until ``STOP``."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.START
    n_frames: int = 0


@dataclass(slots=True)
class Stop(Message):
    """Stop acquiring. Always ``ACK``ed, also when already idle."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.STOP


@dataclass(slots=True)
class GetStatus(Message):
    """Ask for ``STATUS``."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.GET_STATUS


@dataclass(slots=True)
class Ping(Message):
    """Round-trip probe; answered by ``PONG`` with the same token and data."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.PING
    token: int = 0
    data: bytes = b""

    def __post_init__(self) -> None:
        if len(self.data) > MAX_PING_DATA:
            raise ValueError(f"PING data is {len(self.data)} bytes; at most {MAX_PING_DATA}")


@dataclass(slots=True)
class Reset(Message):
    """Reboot the device (capability RESET). ``ACK`` first; then sequence restarts at 0."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.RESET


# -- device → host -------------------------------------------------------------------------------


@dataclass(slots=True)
class DeviceInfo(Message):
    """Identity and capabilities; every host-side limit derives from these."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.DEVICE_INFO
    request_seq: int = UNSOLICITED
    protocol_version: int = 1
    fw_major: int = 0
    fw_minor: int = 0
    fw_patch: int = 0
    board_id: int = 0
    board_name: str = ""
    adc_bits: int = 10
    sample_formats: int = 1 << SampleFormat.I16
    sweep_kind: int = SweepKind.SECTOR
    capabilities: int = 0
    adc_rate_hz: int = 40_000_000
    max_decimation: int = 8
    tgc_points_max: int = 32
    ensemble_max: int = 1
    pulse_cycles_max: int = 8
    min_samples_per_line: int = 64
    max_samples_per_line: int = 32768
    max_start_delay_samples: int = 65535
    max_lines_per_frame: int = 256
    gain_min_cdb: int = 0
    gain_max_cdb: int = 4000
    sweep_min: int = -523_599
    sweep_max: int = 523_599
    prf_min_hz: int = 1
    prf_max_hz: int = 10_000
    pulse_freq_min_hz: int = 1_000_000
    pulse_freq_max_hz: int = 15_000_000
    hv_min_mv: int = 0
    hv_max_mv: int = 100_000
    transducer_freq_hz: int = 0
    rated_throughput_bps: int = 0

    def __post_init__(self) -> None:
        if len(self.board_name.encode("utf-8")) > 32:
            raise ValueError("board_name is longer than 32 UTF-8 bytes")

    @property
    def firmware_version(self) -> str:
        """Firmware version as ``major.minor.patch``."""
        return f"{self.fw_major}.{self.fw_minor}.{self.fw_patch}"

    def supports_format(self, sample_format: int) -> bool:
        """True if the device can send ``sample_format``."""
        return 0 <= sample_format < 8 and bool(self.sample_formats >> sample_format & 1)


@dataclass(slots=True)
class Ack(Message):
    """A command was accepted."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.ACK
    request_seq: int = 0
    request_type: int = 0


@dataclass(slots=True)
class Nak(Message):
    """A command was refused; ``error_code`` says why and ``field_id`` names the field."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.NAK
    request_seq: int = 0
    request_type: int = 0
    error_code: int = 0
    field_id: int = 0
    text: str = ""

    def __post_init__(self) -> None:
        if len(self.text.encode("utf-8")) > MAX_NAK_TEXT:
            raise ValueError(f"NAK text is longer than {MAX_NAK_TEXT} UTF-8 bytes")


@dataclass(slots=True)
class Status(Message):
    """Device health and counters."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.STATUS
    request_seq: int = UNSOLICITED
    state: int = DeviceState.IDLE
    fault_flags: int = 0
    temperature_cdeg: int = 0
    hv_mv: int = 0
    device_time_us: int = 0
    dropped_lines: int = 0
    lines_sent: int = 0
    buffer_fill_permille: int = 0
    config_id: int = 0

    @property
    def temperature_c(self) -> float:
        """Board temperature in °C."""
        return self.temperature_cdeg / 100.0


@dataclass(slots=True)
class Pong(Message):
    """Answer to ``PING``."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.PONG
    request_seq: int = 0
    token: int = 0
    device_time_us: int = 0
    data: bytes = b""

    def __post_init__(self) -> None:
        if len(self.data) > MAX_PING_DATA:
            raise ValueError(f"PONG data is {len(self.data)} bytes; at most {MAX_PING_DATA}")


@dataclass(slots=True)
class Log(Message):
    """Device text for the user (diagnostics, warnings)."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.LOG
    level: int = LogLevel.INFO
    text: str = ""

    def __post_init__(self) -> None:
        if len(self.text.encode("utf-8")) > MAX_TEXT:
            raise ValueError(f"LOG text is longer than {MAX_TEXT} UTF-8 bytes")


@dataclass(slots=True, eq=False)
class EchoLine(Message):
    """One received echo line (one firing), self-describing.

    ``samples`` is 1-D: ``uint8`` (U8), ``int16`` (I16) or ``uint16`` (U16_OB, or PACKED12
    values 0..4095). ``sample_format`` defaults from the dtype and ``adc_bits`` from the format.
    """

    MSG_TYPE: ClassVar[MsgType] = MsgType.ECHO_LINE
    samples: np.ndarray
    sample_rate_hz: int
    frame_index: int = 0
    line_index: int = 0
    lines_per_frame: int = 1
    beam_position: int = 0
    sweep_kind: int = SweepKind.FIXED
    ensemble_index: int = 0
    ensemble_size: int = 1
    start_delay_samples: int = 0
    timestamp_us: int = 0
    config_id: int = 0
    adc_bits: int | None = None
    sample_format: int | None = None

    def __post_init__(self) -> None:
        s = self.samples
        if not isinstance(s, np.ndarray) or s.ndim != 1:
            raise TypeError("EchoLine.samples must be a 1-D numpy array")
        if self.sample_format is None:
            self.sample_format = format_for_dtype(s.dtype)
        fmt = self.sample_format
        if fmt not in DTYPES:
            raise ValueError(f"unknown sample_format {fmt}; valid: 0..3")
        if s.dtype != DTYPES[fmt]:
            raise TypeError(
                f"samples are {s.dtype} but {SampleFormat(fmt).name} needs {DTYPES[fmt]}"
            )
        if self.adc_bits is None:
            self.adc_bits = DEFAULT_ADC_BITS[fmt]
        if not 1 <= self.adc_bits <= MAX_ADC_BITS[fmt]:
            raise ValueError(
                f"adc_bits={self.adc_bits} outside 1..{MAX_ADC_BITS[fmt]} for "
                f"{SampleFormat(fmt).name}"
            )
        if self.sample_rate_hz <= 0:
            raise ValueError(f"sample_rate_hz must be > 0, got {self.sample_rate_hz}")
        if not 0 <= self.line_index < self.lines_per_frame:
            raise ValueError(
                f"line_index={self.line_index} outside 0..lines_per_frame-1 "
                f"({self.lines_per_frame})"
            )
        if not 0 <= self.ensemble_index < self.ensemble_size:
            raise ValueError(
                f"ensemble_index={self.ensemble_index} outside 0..{self.ensemble_size - 1}"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EchoLine):
            return NotImplemented
        return (
            all(getattr(self, n) == getattr(other, n) for n in _ECHO_SCALARS)
            and self.samples.dtype == other.samples.dtype
            and np.array_equal(self.samples, other.samples)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def n_samples(self) -> int:
        """Number of samples in the line."""
        return int(self.samples.shape[0])

    @property
    def zero_level(self) -> int:
        """Sample value that means zero signal (offset-binary midscale, or 0 for I16)."""
        return zero_level(self.sample_format, self.adc_bits)

    @property
    def start_delay_s(self) -> float:
        """Delay from the transmit pulse to the first sample, in seconds."""
        return self.start_delay_samples / self.sample_rate_hz

    @property
    def beam_angle_rad(self) -> float:
        """Beam angle in radians (sector sweeps)."""
        return self.beam_position * 1e-6

    @property
    def beam_x_m(self) -> float:
        """Lateral beam offset in metres (linear sweeps)."""
        return self.beam_position * 1e-6


_ECHO_SCALARS = (
    "sample_rate_hz",
    "frame_index",
    "line_index",
    "lines_per_frame",
    "beam_position",
    "sweep_kind",
    "ensemble_index",
    "ensemble_size",
    "start_delay_samples",
    "timestamp_us",
    "config_id",
    "adc_bits",
    "sample_format",
)


@dataclass(slots=True)
class FrameEnd(Message):
    """The device finished a sweep; the host may now hand the frame on."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.FRAME_END
    frame_index: int = 0
    lines_sent: int = 0
    lines_per_frame: int = 0
    timestamp_us: int = 0


#: dataclass fields that come from the frame header, not from the payload
HEADER_FIELDS = frozenset({"seq", "flags"})


def payload_fields(message: Message | type[Message]) -> list[str]:
    """Names of a message's payload fields, in declaration order."""
    return [f.name for f in fields(message) if f.name not in HEADER_FIELDS]


#: every message class by type byte
MESSAGE_CLASSES: dict[int, type[Message]] = {
    cls.MSG_TYPE: cls
    for cls in (
        GetInfo, Configure, Start, Stop, GetStatus, Ping, Reset,
        DeviceInfo, Ack, Nak, Status, Pong, Log, EchoLine, FrameEnd,
    )
}
