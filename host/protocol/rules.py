"""The semantics the spec defines beyond byte layouts: CONFIGURE validation, TGC, beam positions.

A device NAKs exactly what :func:`check_configure` reports, in the same order; the host runs the
same check before sending so the user gets the message without a round trip. Both follow
section 7 of ``docs/protocol.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .constants import (
    MAX_PAYLOAD,
    Capability,
    ErrorCode,
    Flags,
    MsgType,
    SampleFormat,
    frame_len,
    sample_nbytes,
)
from .messages import Configure, DeviceInfo, Message
from .structs import CONFIGURE_FIELD_IDS, ECHO_LINE_HEADER_SIZE


@dataclass(frozen=True, slots=True)
class Violation:
    """Why a CONFIGURE is refused: the NAK code, the field and a message for people."""

    code: ErrorCode
    field: str
    value: object
    allowed: str

    @property
    def field_id(self) -> int:
        """The field's id as NAK.field_id reports it."""
        return CONFIGURE_FIELD_IDS[self.field]

    @property
    def message(self) -> str:
        """e.g. ``prf_hz = 50000 is out of range; allowed: 10..20000``."""
        what = "is out of range" if self.code == ErrorCode.OUT_OF_RANGE else "is not possible"
        return f"{self.field} = {self.value} {what}; allowed: {self.allowed}"


def _formats(info: DeviceInfo) -> str:
    names = [f.name for f in SampleFormat if info.supports_format(f)]
    return ", ".join(names) or "none"


def check_configure(cfg: Configure, info: DeviceInfo) -> Violation | None:
    """The first rule ``cfg`` breaks for a device announcing ``info``; None if it is valid."""
    oor = ErrorCode.OUT_OF_RANGE

    def rng(name: str, lo: int, hi: int) -> Violation | None:
        value = getattr(cfg, name)
        if not lo <= value <= hi:
            return Violation(oor, name, value, f"{lo}..{hi}")
        return None

    if not info.supports_format(cfg.sample_format):
        return Violation(oor, "sample_format", cfg.sample_format, _formats(info))
    hv_hi = info.hv_max_mv if info.capabilities & Capability.HV_CONTROL else info.hv_min_mv
    checks = (
        ("decimation", 1, info.max_decimation),
        ("ensemble_size", 1, info.ensemble_max),
        ("pulse_cycles", 1, info.pulse_cycles_max),
        ("samples_per_line", info.min_samples_per_line, info.max_samples_per_line),
        ("start_delay_samples", 0, info.max_start_delay_samples),
        ("prf_hz", info.prf_min_hz, info.prf_max_hz),
        ("lines_per_frame", 1, info.max_lines_per_frame),
        ("tgc_count", 1, info.tgc_points_max),
    )
    for name, lo, hi in checks:
        if v := rng(name, lo, hi):
            return v
    # reserved (field 10) is always 0 in a decoded Configure: the decoder drops its value
    for name, lo, hi in (
        ("sweep_start", info.sweep_min, info.sweep_max),
        ("sweep_end", info.sweep_min, info.sweep_max),
        ("pulse_freq_hz", info.pulse_freq_min_hz, info.pulse_freq_max_hz),
        ("hv_mv", info.hv_min_mv, hv_hi),
    ):
        if v := rng(name, lo, hi):
            return v
    used = cfg.tgc_cdb[: cfg.tgc_count]
    if any(not info.gain_min_cdb <= g <= info.gain_max_cdb for g in used) or any(
        cfg.tgc_cdb[cfg.tgc_count :]
    ):
        return Violation(oor, "tgc_cdb", list(used),
                         f"{info.gain_min_cdb}..{info.gain_max_cdb} (0.01 dB), 0 past tgc_count")

    bad = ErrorCode.INVALID_COMBINATION
    nbytes = sample_nbytes(cfg.sample_format, cfg.samples_per_line)
    if nbytes is None:
        return Violation(bad, "samples_per_line", cfg.samples_per_line,
                         "an even count for PACKED12")
    if ECHO_LINE_HEADER_SIZE + nbytes > MAX_PAYLOAD:
        return Violation(bad, "samples_per_line", cfg.samples_per_line,
                         f"at most {MAX_PAYLOAD - ECHO_LINE_HEADER_SIZE} bytes of samples")
    # exact integers, as a firmware computes it: (delay + n) · decimation · prf < adc_rate
    window_ticks = (cfg.start_delay_samples + cfg.samples_per_line) * cfg.decimation
    if window_ticks * cfg.prf_hz >= info.adc_rate_hz:
        window_s = window_ticks / info.adc_rate_hz
        return Violation(bad, "prf_hz", cfg.prf_hz,
                         f"below {1 / window_s:.0f} Hz for a {window_s * 1e6:.1f} µs window")
    return None


def line_bytes(sample_format: int, samples_per_line: int) -> int:
    """Bytes of one ECHO_LINE frame on the wire (header, samples and CRC)."""
    nbytes = sample_nbytes(sample_format, samples_per_line)
    payload = nbytes if nbytes is not None else 2 * samples_per_line
    return frame_len(ECHO_LINE_HEADER_SIZE + payload)


def sample_rate_hz(cfg: Configure, info: DeviceInfo) -> float:
    """Sample rate the configuration gives on this device."""
    return info.adc_rate_hz / cfg.decimation


def tgc_gain_db(tgc_db: np.ndarray, n_samples: int) -> np.ndarray:
    """Per-sample gain (dB, float64 ``(n_samples,)``) from evenly spread TGC points."""
    points = np.asarray(tgc_db, dtype=np.float64)
    if points.size == 0:
        raise ValueError("a TGC curve needs at least one point")
    if points.size == 1 or n_samples < 2:
        return np.full(n_samples, points[0])
    at = np.arange(points.size) * (n_samples - 1) / (points.size - 1)
    return np.interp(np.arange(n_samples), at, points)


def nominal_positions(cfg: Configure) -> np.ndarray:
    """Nominal beam positions (µrad or µm, float64 ``(lines_per_frame,)``) of a sweep."""
    n = cfg.lines_per_frame
    if n == 1:
        return np.array([float(cfg.sweep_start)])
    return cfg.sweep_start + np.arange(n) * (cfg.sweep_end - cfg.sweep_start) / (n - 1)


class RetryCache:
    """The device side of the retry rule: a RETRY of the last command gets its reply again.

    ``handle(msg, seq)`` returns the replies for a new command; a repeat (RETRY flag, same seq
    as the previous command) returns the remembered replies instead, so acting twice (a second
    START becoming NAK BUSY) cannot happen. Non-message items in the replies (markers a board
    uses internally) are not remembered.
    """

    def __init__(self) -> None:
        self._last: tuple[int, list[Message]] | None = None

    def replies(self, msg: Message, handle: Callable[[Message, int], list]) -> list:
        """The replies to ``msg``: remembered ones for a retry, else ``handle``'s."""
        seq = msg.seq if msg.seq is not None else 0
        if msg.flags & Flags.RETRY and self._last is not None and self._last[0] == seq:
            return list(self._last[1])
        replies = handle(msg, seq)
        self._last = (seq, [r for r in replies if isinstance(r, Message)])
        return replies


#: the data reply each query expects; every other command is answered by ACK or NAK
_DATA_REPLIES = {MsgType.GET_INFO: MsgType.DEVICE_INFO, MsgType.GET_STATUS: MsgType.STATUS,
                 MsgType.PING: MsgType.PONG}


def reply_matches(reply: Message, command_type: int) -> bool:
    """True if ``reply`` answers a command of ``command_type`` (sequence number aside).

    A host matches by ``request_seq`` *and* by type: ACK/NAK name the command's type in
    ``request_type``; DEVICE_INFO, STATUS and PONG answer GET_INFO, GET_STATUS and PING. A reply
    that matches only the sequence number answers some earlier command (a RETRY cache hit of a
    board that restarted its numbering) and is not this command's answer.
    """
    request_type = getattr(reply, "request_type", None)
    if request_type is not None:  # ACK, NAK (a NAK may also answer a query)
        return request_type == command_type
    return _DATA_REPLIES.get(command_type) == reply.MSG_TYPE  # type: ignore[call-overload]
