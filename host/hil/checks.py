"""Pure checks of the HIL suite: boundary cases, NAK expectations, stream and sample sanity.

Everything here works on plain data (a ``DeviceInfo``, replies, numpy arrays) and returns the
problems it finds as sentences about the board, so each check can be unit-tested on synthetic
data that must fail it (``tests/hil_selftest``). Limits come from ``DEVICE_INFO``; the fixed
thresholds below are the suite's requirements, documented in ``docs/hil.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import construct as cs
import numpy as np

from sonobridge.device.accounting import LossAccount
from sonobridge.protocol import (
    CONFIGURE_FIELD_IDS,
    MAX_PAYLOAD,
    Ack,
    Capability,
    Configure,
    DeviceInfo,
    ErrorCode,
    Message,
    Nak,
    SampleFormat,
    encode_payload,
)
from sonobridge.protocol.constants import sample_nbytes
from sonobridge.protocol.rules import check_configure, line_bytes
from sonobridge.protocol.samples import zero_level
from sonobridge.protocol.structs import ECHO_LINE_HEADER_SIZE
from sonobridge.protocol.structs import ConfigureLayout as _ConfigureLayout

# -- the suite's thresholds (see docs/hil.md, "Requirements") -----------------------------------

#: a device answers every intact command within this time (docs/protocol.md, section 7)
REPLY_LIMIT_S = 0.100
#: |mean − zero level| as a fraction of full scale (2^(adc_bits−1) codes)
DC_OFFSET_LIMIT = 0.05
#: RMS noise of the deepest quarter of each line, as a fraction of full scale (−20 dBFS)
NOISE_FLOOR_LIMIT = 0.10
#: fraction of samples at the lowest or highest ADC code
SATURATION_LIMIT = 0.01
#: p99 of |line period − 1/PRF|: at least this many µs (timestamp resolution) ...
JITTER_FLOOR_US = 2.0
#: ... or this fraction of the period, whichever is larger
JITTER_FRACTION = 0.05
#: mean line period vs 1/PRF (clock and PRF divider accuracy)
PERIOD_ACCURACY = 0.01
#: the first line may follow START this late (front end settling after a new configuration)
START_LATENCY_S = 10.0
#: throughput used when the board announces no rating (the slowest link the project knows)
UNRATED_THROUGHPUT_BPS = 25_000


# -- replies and expectations -------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What the board must answer: ACK (``code`` None) or NAK ``code`` naming ``field_id``."""

    code: ErrorCode | None = None
    field_id: int = 0

    @property
    def is_ack(self) -> bool:
        """True when an ACK is expected."""
        return self.code is None

    def describe(self) -> str:
        """``ACK`` or ``NAK OUT_OF_RANGE field 7 (prf_hz)``."""
        if self.code is None:
            return "ACK"
        return f"NAK {ErrorCode(self.code).name}{_field_text(self.field_id)}"


def _field_text(field_id: int) -> str:
    if not field_id:
        return ""
    name = FIELD_NAMES.get(field_id)
    return f" field {field_id}" + (f" ({name})" if name else "")


FIELD_NAMES: dict[int, str] = {v: k for k, v in CONFIGURE_FIELD_IDS.items()}


def describe_reply(reply: Message | None) -> str:
    """A reply as a tester reads it: ``ACK``, ``NAK BUSY field 0``, ``no reply``, ``STATUS``."""
    if reply is None:
        return "no reply"
    if isinstance(reply, Ack):
        return "ACK"
    if isinstance(reply, Nak):
        try:
            name = ErrorCode(reply.error_code).name
        except ValueError:
            name = f"code 0x{reply.error_code:02X}"
        return f"NAK {name}{_field_text(reply.field_id)}"
    return type(reply).__name__.upper()


def reply_problem(what: str, reply: Message | None, expected: Expected,
                  request_type: int | None = None, check_field: bool = True) -> str | None:
    """Why ``reply`` to ``what`` is not ``expected`` (None if it is)."""
    wrong = f"board answered {what} with {describe_reply(reply)}; expected {expected.describe()}"
    if reply is None:
        return f"board did not answer {what}; expected {expected.describe()}"
    if expected.is_ack:
        if not isinstance(reply, Ack):
            detail = f" ({reply.text})" if isinstance(reply, Nak) and reply.text else ""
            return wrong + detail
    else:
        if not isinstance(reply, Nak) or reply.error_code != expected.code:
            return wrong
        if check_field and reply.field_id != expected.field_id:
            return wrong
    got_type = getattr(reply, "request_type", None)
    if request_type is not None and got_type is not None and got_type != request_type:
        return (f"board answered {what} with {describe_reply(reply)} naming request type "
                f"0x{got_type:02X}; expected 0x{request_type:02X}")
    return None


# -- CONFIGURE boundary cases -------------------------------------------------------------------

#: (field, DEVICE_INFO lower bound, DEVICE_INFO upper bound) as docs/protocol.md tabulates them
_RANGE_FIELDS = (
    ("decimation", lambda i: 1, lambda i: i.max_decimation),
    ("ensemble_size", lambda i: 1, lambda i: i.ensemble_max),
    ("pulse_cycles", lambda i: 1, lambda i: i.pulse_cycles_max),
    ("samples_per_line", lambda i: i.min_samples_per_line, lambda i: i.max_samples_per_line),
    ("start_delay_samples", lambda i: 0, lambda i: i.max_start_delay_samples),
    ("prf_hz", lambda i: i.prf_min_hz, lambda i: i.prf_max_hz),
    ("lines_per_frame", lambda i: 1, lambda i: i.max_lines_per_frame),
    ("tgc_count", lambda i: 1, lambda i: i.tgc_points_max),
    ("sweep_start", lambda i: i.sweep_min, lambda i: i.sweep_max),
    ("sweep_end", lambda i: i.sweep_min, lambda i: i.sweep_max),
    ("pulse_freq_hz", lambda i: i.pulse_freq_min_hz, lambda i: i.pulse_freq_max_hz),
    ("hv_mv", lambda i: i.hv_min_mv,
     lambda i: i.hv_max_mv if i.capabilities & Capability.HV_CONTROL else i.hv_min_mv),
)
RANGE_FIELDS: tuple[str, ...] = tuple(name for name, _, _ in _RANGE_FIELDS)
#: every CONFIGURE field, in table order (field ids 1..15)
CONFIGURE_FIELDS: tuple[str, ...] = tuple(sorted(CONFIGURE_FIELD_IDS,
                                                 key=CONFIGURE_FIELD_IDS.__getitem__))
_RESERVED_OFFSET = 19


def wire_range(name: str) -> tuple[int, int]:
    """The values a CONFIGURE field's wire type can carry (from the protocol's layout)."""
    sub = next(s for s in _ConfigureLayout.subcons if s.name == name)
    while isinstance(sub, (cs.Renamed, cs.Array)):
        sub = sub.subcon
    fmt = sub.fmtstr[-1]
    bits = 8 * sub.sizeof()
    if fmt.islower():
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def field_bounds(name: str, info: DeviceInfo) -> tuple[int, int]:
    """A range field's valid span according to the board's DEVICE_INFO."""
    for field_name, lo, hi in _RANGE_FIELDS:
        if field_name == name:
            return int(lo(info)), int(hi(info))
    raise KeyError(f"{name} is not a range field")


@dataclass(frozen=True)
class ConfigCase:
    """One CONFIGURE to send: which field, which boundary, the message and the expected reply."""

    field: str
    label: str
    value: object
    message: Configure
    expected: Expected
    #: the payload to send instead of the encoded message (for bytes a Configure cannot hold)
    payload: bytes | None = None

    def describe(self) -> str:
        """``CONFIGURE prf_hz=20001 (max+1)``."""
        return f"CONFIGURE {self.field}={self.value} ({self.label})"

    def wire_payload(self) -> bytes:
        """The exact payload bytes sent."""
        return self.payload if self.payload is not None else encode_payload(self.message)


def oracle(msg: Configure, info: DeviceInfo) -> Expected:
    """The documented answer to ``msg`` (``sonobridge.protocol.rules.check_configure``)."""
    v = check_configure(msg, info)
    return Expected() if v is None else Expected(v.code, v.field_id)


def base_configure(info: DeviceInfo) -> Configure:
    """A valid CONFIGURE with room around every field: slowest PRF, shortest line, no delay.

    Raises ValueError when no such configuration exists, i.e. DEVICE_INFO contradicts itself.
    """
    fmt = next((f for f in (SampleFormat.I16, SampleFormat.U16_OB, SampleFormat.U8,
                            SampleFormat.PACKED12) if info.supports_format(f)), None)
    if fmt is None:
        raise ValueError(f"DEVICE_INFO.sample_formats = 0x{info.sample_formats:02X} announces no "
                         "sample format sonobridge knows")
    samples = info.min_samples_per_line
    if samples % 2 and samples + 1 <= info.max_samples_per_line:
        samples += 1  # even: valid in every sample format
    msg = Configure(
        sample_format=fmt, decimation=1, ensemble_size=1, pulse_cycles=1,
        samples_per_line=samples, start_delay_samples=0, prf_hz=info.prf_min_hz,
        lines_per_frame=1, sweep_start=info.sweep_min, sweep_end=info.sweep_max,
        pulse_freq_hz=info.pulse_freq_min_hz, hv_mv=info.hv_min_mv,
        tgc_cdb=(clamp_gain_cdb(0, info),),
    )
    v = check_configure(msg, info)
    if v is not None:
        raise ValueError(f"no valid CONFIGURE exists for this DEVICE_INFO: even the most relaxed "
                         f"one is refused: {v.message}")
    return msg


def clamp_gain_cdb(gain_cdb: int, info: DeviceInfo) -> int:
    """A TGC gain moved into the board's gain range."""
    return max(info.gain_min_cdb, min(info.gain_max_cdb, gain_cdb))


def _with(base: Configure, **changes: object) -> Configure:
    return replace(base, **changes)


def boundary_cases(name: str, info: DeviceInfo) -> list[ConfigCase]:
    """Minimum, maximum, maximum+1 and minimum−1 (where they exist) of one CONFIGURE field.

    Each case starts from :func:`base_configure` and changes only that field (plus what the
    field drags along, e.g. TGC points for ``tgc_count``). The expected reply is always the
    documented rule's verdict for the exact message sent.
    """
    base = base_configure(info)
    cases: list[ConfigCase] = []

    def add(label: str, value: object, msg: Configure, payload: bytes | None = None,
            expected: Expected | None = None) -> None:
        cases.append(ConfigCase(name, label, value, msg, expected or oracle(msg, info), payload))

    if name == "sample_format":
        for fmt in SampleFormat:
            msg = _with(base, sample_format=int(fmt))
            label = "supported" if info.supports_format(fmt) else "not announced"
            add(f"{label} {fmt.name}", int(fmt), msg)
        past = max(SampleFormat) + 1
        add("max+1: no such format", past, _with(base, sample_format=past))
        return cases
    if name == "reserved":
        payload = bytearray(encode_payload(base))
        payload[_RESERVED_OFFSET] = 0xFF
        add("non-zero, receivers ignore it", 0xFF, base, bytes(payload), Expected())
        return cases
    if name == "tgc_cdb":
        n = min(info.tgc_points_max, 32)
        w_lo, w_hi = wire_range("tgc_cdb")
        for label, gain in (("min", info.gain_min_cdb), ("max", info.gain_max_cdb),
                            ("max+1", info.gain_max_cdb + 1), ("min-1", info.gain_min_cdb - 1)):
            if not w_lo <= gain <= w_hi:
                continue
            points = (clamp_gain_cdb(0, info),) * (n - 1) + (gain,)
            add(f"{label} in point {n}", gain, _with(base, tgc_cdb=points, tgc_count=n))
        if n < 32:
            points = (clamp_gain_cdb(0, info),) * n + (1,) + (0,) * (31 - n)
            add("non-zero past tgc_count", f"point {n + 1} = 1",
                replace(_with(base, tgc_count=n), tgc_cdb=points))
        return cases

    lo, hi = field_bounds(name, info)
    w_lo, w_hi = wire_range(name)
    for label, value in (("min", lo), ("max", hi), ("max+1", hi + 1), ("min-1", lo - 1)):
        if not w_lo <= value <= w_hi:
            continue  # the wire type cannot carry it: nothing to test
        if label == "min-1" and value < 0 and w_lo == 0:
            continue
        changes: dict[str, object] = {name: value}
        if name == "tgc_count":
            gain = clamp_gain_cdb(0, info)
            changes["tgc_cdb"] = (gain,) * min(max(value, 0), 32)
            changes["tgc_count"] = value
        add(label, value, _with(base, **changes))
    return cases


def combination_cases(info: DeviceInfo) -> list[ConfigCase]:
    """CONFIGUREs where every field is in range but the combination is impossible."""
    base = base_configure(info)
    cases: list[ConfigCase] = []
    # the acquisition window must fit in one pulse period: the fastest PRF that still fits,
    # and the slowest that no longer does
    for samples in (info.max_samples_per_line, info.min_samples_per_line):
        fits = window_prf_limit(info, samples)
        for prf, label in ((fits, "fastest PRF whose period holds the window"),
                           (fits + 1, "window longer than the pulse period")):
            if info.prf_min_hz <= prf <= info.prf_max_hz:
                msg = replace(base, samples_per_line=samples, prf_hz=prf)
                cases.append(ConfigCase("prf_hz", label, f"{prf} with {samples} samples", msg,
                                        oracle(msg, info)))
        if any(c.field == "prf_hz" for c in cases):
            break
    # PACKED12 needs an even sample count
    if info.supports_format(SampleFormat.PACKED12):
        odd = info.min_samples_per_line | 1
        if odd <= info.max_samples_per_line:
            msg = replace(base, sample_format=SampleFormat.PACKED12, samples_per_line=odd)
            cases.append(ConfigCase("samples_per_line", "odd count in PACKED12", odd, msg,
                                    oracle(msg, info)))
    # the line must fit in one frame
    for fmt in SampleFormat:
        if not info.supports_format(fmt):
            continue
        n = info.max_samples_per_line
        nbytes = sample_nbytes(fmt, n) or 0
        if ECHO_LINE_HEADER_SIZE + nbytes > MAX_PAYLOAD:
            msg = replace(base, sample_format=int(fmt), samples_per_line=n)
            cases.append(ConfigCase("samples_per_line", f"{fmt.name} line beyond MAX_PAYLOAD",
                                    n, msg, oracle(msg, info)))
    return cases


# -- DEVICE_INFO consistency --------------------------------------------------------------------


def info_problems(info: DeviceInfo) -> list[str]:
    """Ways in which DEVICE_INFO contradicts docs/protocol.md or itself."""
    p: list[str] = []

    def need(cond: bool, text: str) -> None:
        if not cond:
            p.append(f"DEVICE_INFO {text}")

    need(1 <= info.adc_bits <= 16, f"adc_bits = {info.adc_bits}, allowed 1..16")
    need(info.sample_formats & 0x0F != 0,
         f"sample_formats = 0x{info.sample_formats:02X} announces no known format")
    need(0 <= info.sweep_kind <= 2, f"sweep_kind = {info.sweep_kind}, allowed 0..2")
    need(info.adc_rate_hz > 0, "adc_rate_hz is 0")
    need(info.max_decimation >= 1, "max_decimation is 0")
    need(1 <= info.tgc_points_max <= 32, f"tgc_points_max = {info.tgc_points_max}, allowed 1..32")
    need(info.ensemble_max >= 1, "ensemble_max is 0")
    need(info.pulse_cycles_max >= 1, "pulse_cycles_max is 0")
    need(info.min_samples_per_line >= 1, "min_samples_per_line is 0")
    need(info.min_samples_per_line <= info.max_samples_per_line,
         f"min_samples_per_line {info.min_samples_per_line} > max_samples_per_line "
         f"{info.max_samples_per_line}")
    need(info.max_samples_per_line <= 65536,
         f"max_samples_per_line = {info.max_samples_per_line}, allowed ≤ 65536")
    need(info.max_lines_per_frame >= 1, "max_lines_per_frame is 0")
    need(info.gain_min_cdb <= info.gain_max_cdb,
         f"gain_min_cdb {info.gain_min_cdb} > gain_max_cdb {info.gain_max_cdb}")
    need(info.sweep_min <= info.sweep_max,
         f"sweep_min {info.sweep_min} > sweep_max {info.sweep_max}")
    need(1 <= info.prf_min_hz <= info.prf_max_hz,
         f"PRF range {info.prf_min_hz}..{info.prf_max_hz} Hz is empty or starts at 0")
    need(info.pulse_freq_min_hz <= info.pulse_freq_max_hz,
         f"pulse frequency range {info.pulse_freq_min_hz}..{info.pulse_freq_max_hz} Hz is empty")
    need(info.hv_min_mv <= info.hv_max_mv,
         f"HV range {info.hv_min_mv}..{info.hv_max_mv} mV is empty")
    if info.sweep_kind == 0:
        need(info.sweep_min == info.sweep_max == 0,
             f"sweep_kind FIXED but sweep range {info.sweep_min}..{info.sweep_max} is not 0..0")
    if not p:
        try:
            base_configure(info)
        except ValueError as exc:
            p.append(str(exc))
    return p


# -- configurations the suite streams -----------------------------------------------------------


def frames_timeout_s(n_frames: int, firings_per_frame: int, prf_hz: float) -> float:
    """How long ``n_frames`` may take after START: 1.5 × their duration + START_LATENCY_S."""
    return n_frames * firings_per_frame / prf_hz * 1.5 + START_LATENCY_S


def idle_watch_s(prf_hz: float) -> float:
    """How long to watch an idle board for stray lines: twenty line periods, but on a slow
    board (a few firings a second) half a second, and never less than three periods."""
    return max(0.02, min(20 / prf_hz, max(0.5, 3 / prf_hz)))


def window_prf_limit(info: DeviceInfo, samples: int, start_delay: int = 0,
                     decimation: int = 1) -> int:
    """Fastest PRF whose period still holds the acquisition window (window · PRF < 1)."""
    return max(1, (info.adc_rate_hz - 1) // ((start_delay + samples) * decimation))


def rated_prf(info: DeviceInfo, sample_format: int, samples: int, target_bps: float) -> int:
    """The PRF that streams ``target_bps`` with these lines, within the board's PRF rules."""
    prf = int(target_bps // line_bytes(sample_format, samples))
    prf = min(prf, window_prf_limit(info, samples), info.prf_max_hz)
    return max(info.prf_min_hz, prf)


# -- stream integrity and timing ----------------------------------------------------------------

#: per received ECHO_LINE: what the stream checks need
LINE_RECORD = np.dtype([
    ("seq", np.int64), ("frame_index", np.int64), ("line_index", np.int32),
    ("ensemble_index", np.int32), ("ensemble_size", np.int32), ("lines_per_frame", np.int32),
    ("timestamp_us", np.int64), ("config_id", np.int32), ("host_ns", np.int64),
])


def lines_array(records: Sequence[tuple]) -> np.ndarray:
    """Records (tuples in ``LINE_RECORD`` order) as a structured array."""
    return np.array(list(records), dtype=LINE_RECORD)


def firing_numbers(lines: np.ndarray) -> np.ndarray:
    """Each line's place in acquisition order since START (frame, line, ensemble → integer)."""
    per_frame = lines["lines_per_frame"].astype(np.int64) * lines["ensemble_size"]
    within = lines["line_index"].astype(np.int64) * lines["ensemble_size"] + \
        lines["ensemble_index"]
    return lines["frame_index"] * per_frame + within


def order_problems(lines: np.ndarray, expected_total: int | None = None) -> list[str]:
    """Lines out of acquisition order, repeated, missing, or with non-increasing seq."""
    p: list[str] = []
    if lines.size == 0:
        return ["the board sent no ECHO_LINE"]
    k = firing_numbers(lines)
    step = np.diff(k)
    back = np.flatnonzero(step <= 0)
    if back.size:
        i = int(back[0])
        p.append(f"ECHO_LINEs out of acquisition order or repeated: {back.size} times, first "
                 f"frame {lines['frame_index'][i + 1]} line {lines['line_index'][i + 1]} after "
                 f"frame {lines['frame_index'][i]} line {lines['line_index'][i]}")
    skipped = int(np.sum(step[step > 1] - 1))
    if skipped:
        i = int(np.flatnonzero(step > 1)[0])
        p.append(f"{skipped} firings missing from the acquisition order (first after frame "
                 f"{lines['frame_index'][i]} line {lines['line_index'][i]})")
    if expected_total is not None:
        if k[0] != 0:
            p.append(f"the stream did not begin with frame 0 line 0 (first firing {k[0]})")
        if k[-1] + 1 < expected_total:
            p.append(f"the stream ended after firing {k[-1] + 1} of {expected_total}")
    seq = lines["seq"]
    dseq = (np.diff(seq) % (1 << 32))
    bad = np.flatnonzero((dseq == 0) | (dseq >= 1 << 31))
    if bad.size:
        p.append(f"header seq did not increase between consecutive ECHO_LINEs {bad.size} times "
                 f"(first {seq[bad[0]]} → {seq[bad[0] + 1]})")
    return p


@dataclass
class JitterStats:
    """Line period statistics against the configured PRF (all in µs)."""

    nominal_us: float
    n: int = 0
    mean_us: float = math.nan
    p50_dev_us: float = math.nan
    p99_dev_us: float = math.nan
    max_dev_us: float = math.nan
    non_monotonic: int = 0
    deltas_checked: int = 0
    first_backwards: tuple[int, int] | None = field(default=None)

    def as_dict(self) -> dict[str, float | int]:
        """Numbers for the report."""
        return {"nominal_period_us": self.nominal_us, "mean_period_us": self.mean_us,
                "jitter_p50_us": self.p50_dev_us, "jitter_p99_us": self.p99_dev_us,
                "jitter_max_us": self.max_dev_us, "period_samples": self.n,
                "timestamps_non_monotonic": self.non_monotonic}


def jitter_stats(lines: np.ndarray, prf_hz: float) -> JitterStats:
    """Deltas of device timestamps between consecutive firings of one sweep vs 1/PRF.

    Sweeps of a single firing (a fixed element, one line per frame) follow each other on the
    PRF: there, consecutive sweeps are consecutive firings.
    """
    st = JitterStats(nominal_us=1e6 / prf_hz)
    if lines.size < 2:
        return st
    ts = lines["timestamp_us"]
    dt_all = np.diff(ts)
    strict = st.nominal_us >= 2.0
    back = np.flatnonzero(dt_all <= 0) if strict else np.flatnonzero(dt_all < 0)
    st.deltas_checked = int(dt_all.size)
    st.non_monotonic = int(back.size)
    if back.size:
        i = int(back[0])
        st.first_backwards = (int(ts[i]), int(ts[i + 1]))
    k = firing_numbers(lines)
    single = lines["lines_per_frame"][1:].astype(np.int64) * lines["ensemble_size"][1:] == 1
    same = ((np.diff(lines["frame_index"]) == 0) | single) & (np.diff(k) == 1)
    d = dt_all[same].astype(np.float64)
    st.n = int(d.size)
    if d.size:
        dev = np.abs(d - st.nominal_us)
        st.mean_us = float(d.mean())
        st.p50_dev_us = float(np.percentile(dev, 50))
        st.p99_dev_us = float(np.percentile(dev, 99))
        st.max_dev_us = float(dev.max())
    return st


def jitter_limit_us(prf_hz: float) -> float:
    """Allowed p99 deviation of the line period from 1/PRF."""
    return max(JITTER_FLOOR_US, JITTER_FRACTION * 1e6 / prf_hz)


def timing_problems(st: JitterStats, prf_hz: float) -> list[str]:
    """Timestamps going backwards, a wrong mean period, or too much period jitter."""
    p: list[str] = []
    if st.non_monotonic:
        a, b = st.first_backwards or (0, 0)
        p.append(f"device timestamps not monotonic: {st.non_monotonic} of {st.deltas_checked} "
                 f"steps went backwards or stood still (first {a} µs → {b} µs)")
    if st.n == 0:
        p.append("no two consecutive firings of one sweep arrived: line period not measurable")
        return p
    err = st.mean_us / st.nominal_us - 1
    if abs(err) > PERIOD_ACCURACY:
        p.append(f"mean line period {st.mean_us:.2f} µs is {100 * err:+.2f} % off 1/PRF = "
                 f"{st.nominal_us:.2f} µs ({prf_hz:g} Hz); allowed ±{100 * PERIOD_ACCURACY:g} %")
    limit = jitter_limit_us(prf_hz)
    if st.p99_dev_us > limit:
        p.append(f"line period jitter p99 {st.p99_dev_us:.2f} µs (p50 {st.p50_dev_us:.2f} µs, "
                 f"max {st.max_dev_us:.2f} µs) exceeds {limit:.2f} µs at PRF {prf_hz:g} Hz")
    return p


@dataclass
class StreamCounts:
    """Loss and error counters over one streaming run (deltas, not totals)."""

    expected_lines: int
    received_lines: int
    lines_lost_link: int = 0
    lines_lost_device: int = 0
    #: lost because the testing host fell behind (its acquisition buffer overflowed)
    lines_lost_host: int = 0
    host_overflows: int = 0
    device_dropped: int | None = None
    crc_errors: int = 0
    header_errors: int = 0
    seq_gaps: int = 0
    seq_resets: int = 0
    bytes_discarded: int = 0
    malformed: int = 0
    frames_expected: int = 0
    frames_complete: int = 0
    frames_incomplete: int = 0
    frames_lost: int = 0
    disconnects: int = 0

    def as_dict(self) -> dict[str, int | None]:
        """Numbers for the report."""
        return dict(self.__dict__)

    @property
    def account(self) -> LossAccount:
        """The client's attribution of the run's lines, in the vocabulary every tool prints."""
        return LossAccount(lines_received=self.received_lines,
                           lines_lost_link=self.lines_lost_link,
                           lines_lost_device=self.lines_lost_device,
                           lines_lost_host=self.lines_lost_host)


def stream_problems(c: StreamCounts) -> list[str]:
    """Lost lines, CRC and header errors, sequence gaps or resets: each one a failure."""
    p: list[str] = []
    lost = c.expected_lines - c.received_lines
    if lost > 0:
        causes = []
        dropped = min(lost, c.device_dropped or 0)
        if dropped:
            causes.append(f"{dropped} dropped by the board itself (STATUS.dropped_lines: its send"
                          " buffer overflowed)")
        by_host = min(lost - dropped, c.lines_lost_host)
        if by_host:
            causes.append(f"{by_host} lost by the testing host, not the board (its acquisition "
                          f"buffer overflowed {c.host_overflows} times: the host was too busy; "
                          "rerun on a quieter machine)")
        if c.device_dropped is not None and lost > dropped + by_host:
            causes.append(f"{lost - dropped - by_host} lost on the link (sent by the board, "
                          "never received intact)")
        why = f": {'; '.join(causes)}" if causes else ""
        acc = c.account
        # the client's own attribution, in the words `stream`, `record` and `convert` print;
        # what it could not place (sweeps whose FRAME_END never came) is said as such
        unplaced = c.expected_lines - acc.lines_expected
        client = f"the client counted {acc.text()}" + (
            f", and {unplaced} expected lines it never attributed" if unplaced else "")
        p.append(f"{lost} of {c.expected_lines} lines lost{why} ({client})")
    elif lost < 0:
        p.append(f"received {-lost} more lines than the board should have sent "
                 f"({c.received_lines} vs {c.expected_lines}): duplicates or a START acted twice")
    if c.device_dropped and lost <= 0:
        p.append(f"the board reports {c.device_dropped} dropped lines (STATUS.dropped_lines; send "
                 "buffer overflow)")
    if c.crc_errors:
        p.append(f"{c.crc_errors} CRC errors on the link (frames damaged in transit)")
    if c.header_errors:
        p.append(f"{c.header_errors} header errors (damaged headers or false sync bytes)")
    if c.seq_gaps:
        p.append(f"{c.seq_gaps} frames missing from the sequence numbers (seq_gaps)")
    if c.seq_resets:
        p.append(f"the board's sequence counter restarted {c.seq_resets} times while streaming "
                 "(unexpected reboot?)")
    if c.bytes_discarded and not c.host_overflows:
        p.append(f"{c.bytes_discarded} bytes discarded while resynchronising (damaged frames or "
                 "junk between frames)")
    if c.malformed:
        p.append(f"{c.malformed} malformed frames (payload length does not fit the type)")
    if c.frames_expected and c.frames_complete < c.frames_expected:
        p.append(f"only {c.frames_complete} of {c.frames_expected} frames complete "
                 f"({c.frames_incomplete} incomplete, {c.frames_lost} lost)")
    if c.disconnects:
        p.append(f"the link went down {c.disconnects} times while streaming")
    return p


def percentiles_ms(rtts_s: Iterable[float]) -> dict[str, float]:
    """p50, p99 and max of round-trip times, in milliseconds."""
    a = np.asarray(list(rtts_s), dtype=np.float64) * 1e3
    if a.size == 0:
        return {"n": 0, "p50_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan}
    return {"n": int(a.size), "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


def latency_problems(stats: dict[str, float], limit_ms: float, where: str) -> list[str]:
    """A PING p99 above the limit, or no PING answered at all."""
    if not stats.get("n"):
        return [f"no PING was answered {where}"]
    if stats["p99_ms"] > limit_ms:
        return [f"PING round trip {where}: p99 {stats['p99_ms']:.1f} ms (p50 "
                f"{stats['p50_ms']:.1f} ms, max {stats['max_ms']:.1f} ms) exceeds "
                f"{limit_ms:g} ms"]
    return []


# -- samples ------------------------------------------------------------------------------------


def code_range(sample_format: int, adc_bits: int) -> tuple[int, int]:
    """Lowest and highest code an ``adc_bits`` ADC can produce in this format."""
    if sample_format == SampleFormat.I16:
        return -(1 << (adc_bits - 1)), (1 << (adc_bits - 1)) - 1
    return 0, (1 << adc_bits) - 1


def full_scale(adc_bits: int) -> float:
    """Full scale in codes: the peak amplitude 2^(adc_bits−1)."""
    return float(1 << (adc_bits - 1))


def range_problems(samples: np.ndarray, sample_format: int, adc_bits: int) -> list[str]:
    """Samples outside what an ``adc_bits`` ADC can produce."""
    lo, hi = code_range(sample_format, adc_bits)
    s = np.asarray(samples)
    bad = int(np.count_nonzero((s < lo) | (s > hi)))
    if bad:
        return [f"{bad} samples outside the {adc_bits}-bit range {lo}..{hi} of "
                f"{SampleFormat(sample_format).name} (min {int(s.min())}, max {int(s.max())})"]
    return []


def dc_offset(samples: np.ndarray, sample_format: int, adc_bits: int) -> float:
    """Mean minus zero level, as a fraction of full scale."""
    s = np.asarray(samples, dtype=np.float64)
    return float((s.mean() - zero_level(sample_format, adc_bits)) / full_scale(adc_bits))


def dc_problems(samples: np.ndarray, sample_format: int, adc_bits: int,
                limit: float = DC_OFFSET_LIMIT) -> list[str]:
    """A DC offset beyond ``limit`` of full scale."""
    off = dc_offset(samples, sample_format, adc_bits)
    if not abs(off) <= limit:
        codes = off * full_scale(adc_bits)
        return [f"DC offset {100 * off:+.2f} % of full scale ({codes:+.1f} codes from the zero "
                f"level {zero_level(sample_format, adc_bits)}); allowed ±{100 * limit:g} %"]
    return []


def noise_floor(samples: np.ndarray, adc_bits: int, fraction: float = 0.25) -> float:
    """RMS about the mean of the deepest ``fraction`` of every line, as a fraction of full scale."""
    s = np.asarray(samples, dtype=np.float64)
    n = s.shape[-1]
    tail = s[..., n - max(1, int(n * fraction)):]
    tail = tail - tail.mean(axis=-1, keepdims=True)
    return float(np.sqrt(np.mean(tail * tail)) / full_scale(adc_bits))


def noise_problems(samples: np.ndarray, adc_bits: int, limit: float = NOISE_FLOOR_LIMIT
                   ) -> list[str]:
    """A noise floor at or above ``limit`` of full scale, or none at all (a dead ADC)."""
    s = np.asarray(samples)
    nf = noise_floor(s, adc_bits)
    p = []
    if np.all(s == s.flat[0]):
        p.append(f"every sample of the frame is {s.flat[0]}: the ADC output is constant (dead "
                 "front end, disconnected ADC or a stuck data bus)")
    elif not nf < limit:
        p.append(f"noise floor {20 * math.log10(nf):.1f} dBFS (RMS {nf * full_scale(adc_bits):.1f}"
                 f" codes in the deepest quarter of the lines) is not below "
                 f"{20 * math.log10(limit):.0f} dBFS")
    return p


def native_codes(samples: np.ndarray, sample_format: int, adc_bits: int) -> np.ndarray:
    """Samples as the ADC's own ``adc_bits``-bit output words (two's complement truncated)."""
    s = np.asarray(samples).astype(np.int64)
    return s & ((1 << adc_bits) - 1)


def stuck_bits(samples: np.ndarray, sample_format: int, adc_bits: int
               ) -> tuple[list[tuple[int, int]], list[int]]:
    """ADC bits that never toggle although the signal's span says they must.

    Returns ``(stuck, unexercised)``: ``stuck`` lists ``(bit, value)`` for bits constant at
    ``value`` while the samples span at least 2^(bit+1) codes (any such span holds both states
    of the bit); ``unexercised`` lists bits the signal is too small to judge.
    """
    s = np.asarray(samples).astype(np.int64).ravel()
    if s.size == 0:
        return [], list(range(adc_bits))
    span = int(s.max() - s.min())
    words = native_codes(s, sample_format, adc_bits)
    ones = np.bitwise_or.reduce(words)
    zeros = np.bitwise_or.reduce(~words & ((1 << adc_bits) - 1))
    stuck, unexercised = [], []
    for bit in range(adc_bits):
        toggles = (ones >> bit) & 1 and (zeros >> bit) & 1
        if toggles:
            continue
        if span >= 1 << (bit + 1):
            stuck.append((bit, int((ones >> bit) & 1)))
        else:
            unexercised.append(bit)
    return stuck, unexercised


def stuck_bit_problems(samples: np.ndarray, sample_format: int, adc_bits: int) -> list[str]:
    """Every stuck ADC bit, named."""
    stuck, _ = stuck_bits(samples, sample_format, adc_bits)
    s = np.asarray(samples).astype(np.int64)
    span = int(s.max() - s.min()) if s.size else 0
    return [f"ADC bit {bit} is stuck at {value}: it never changed across the frame although the "
            f"samples span {span} codes" for bit, value in stuck]


def saturation_fraction(samples: np.ndarray, sample_format: int, adc_bits: int) -> float:
    """Fraction of samples at the lowest or highest code."""
    lo, hi = code_range(sample_format, adc_bits)
    s = np.asarray(samples)
    return float(np.count_nonzero((s <= lo) | (s >= hi)) / max(1, s.size))


def saturation_problems(samples: np.ndarray, sample_format: int, adc_bits: int,
                        limit: float = SATURATION_LIMIT) -> list[str]:
    """Saturation above ``limit``."""
    f = saturation_fraction(samples, sample_format, adc_bits)
    if f >= limit:
        return [f"{100 * f:.2f} % of samples saturate (at the lowest or highest ADC code); allowed "
                f"below {100 * limit:g} %"]
    return []


# -- ground truth -------------------------------------------------------------------------------


def axial_resolution_m(pulse_freq_hz: float, pulse_cycles: int, c: float = 1540.0) -> float:
    """Axial resolution: half the spatial pulse length, c·N/(2f)."""
    return c * pulse_cycles / (2.0 * pulse_freq_hz)


def depth_problems(found: Sequence[tuple[float, float | None]], tolerance_m: float
                   ) -> list[str]:
    """Targets ``(true_depth_m, measured_depth_m or None)`` off by more than ``tolerance_m``."""
    p = []
    for true_m, got_m in found:
        if got_m is None:
            p.append(f"no echo found for the wire at {1e3 * true_m:.2f} mm")
        elif abs(got_m - true_m) > tolerance_m:
            p.append(f"wire at {1e3 * true_m:.2f} mm appears at {1e3 * got_m:.2f} mm "
                     f"({1e3 * (got_m - true_m):+.3f} mm; allowed ±{1e3 * tolerance_m:.3f} mm, "
                     "half an axial resolution cell)")
    return p
