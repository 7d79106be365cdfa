"""Open Echo (Neumi/open_echo, TUSS4470 shield) serial frames: the one home of their format.

Two binary formats exist (as the firmware and its host script ``echo_interface.py`` send them):

* **v2** (current): ``0xAA``, a little-endian header ``depth_index`` u16, ``temp_scaled`` i16,
  ``vDrv_scaled`` u16, then N u8 samples, then the XOR of the 6 header bytes and the N
  samples. N + 8 bytes.
* **v1** (May–July 2025): ``0xAA``, a big-endian header ``depth`` u16, temp×100 i16,
  vDrv×100 u16, then N big-endian u16 samples (≤ 1023), then the XOR of every byte after
  ``0xAA``. 2N + 8 bytes.

In both the XOR covers every byte between the sync and the checksum, so a candidate length L
at a ``0xAA`` is valid when the XOR of bytes 1..L-1 is 0. Nothing announces N, so
:class:`OpenEchoDecoder` tries the lengths of the known builds (or the forced N) and turns
each valid frame into an :class:`EchoLine`, counting pings into sweeps ending in a
:class:`FrameEnd`, so the viewer and the recorder treat an Open Echo like any other board.

How the decoder chooses a length (the XOR is weak: any length validates 1 time in 256):

* Until a format is known it accepts a valid length only when the byte right after it is the
  next frame's ``0xAA`` (or, in :meth:`OpenEchoDecoder.flush`, the end of the input), trying
  the shortest length first: a lucky XOR in garbage then has odds of 1 in 65536, not 1 in
  256. The first frame therefore waits for the first byte of the second, and a frame followed
  by text before any format is known is dropped. ``flush`` (or ``expire`` after an idle gap)
  decides with what has arrived.
* A v1 candidate must also look like v1: every sample is ≤ 1023, so every high byte is ≤ 3.
  At equal lengths (a v1 frame with N = 300 is byte for byte a valid v2 frame with N = 600)
  v1 is tried first and wins when its high bytes fit. With the known builds this tie cannot
  arise (no v2 build sends 600 samples, so 608 bytes means v1); it can with forced N values.
* Ruling out a false ``0xAA`` before a format is known takes the longest candidate's bytes
  (10009 by default, for the Pico W's 10000 samples); once locked, one frame's.
* After the first frame the format is locked: only its length is tried, and a frame is taken
  as soon as it is complete. The lock is dropped when no frame validated for two frame
  lengths' worth of bytes (a reflashed or different board), and detection starts again.
* A ``0xAA`` at which nothing validates costs one byte of rescanning. The decoder never holds
  more than the longest candidate plus one byte, and never more than ``MAX_SAMPLES`` samples.
* Text the board prints on the same port (``[WiFi] connected``) holds no ``0xAA``; it is
  skipped and complete lines are counted (``stats.text_lines``, ``last_text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import construct as cs
import numpy as np

from ..constants import Capability, SampleFormat, SweepKind, next_seq
from ..decoder import DecoderStats
from ..messages import DeviceInfo, EchoLine, FrameEnd, Message

SYNC = 0xAA
_SYNC_BYTES = bytes([SYNC])
#: sync + 6 header bytes
HEADER_SIZE = 7
#: bytes of a frame besides its samples: sync, header, XOR
OVERHEAD = 8
#: largest N ever accepted or allocated (the Uno R4 reaches about 12000)
MAX_SAMPLES = 12000
#: v1 samples are 10-bit, so a big-endian high byte above this means "not v1"
V1_MAX_HIGH_BYTE = 0x03

Version = Literal["v1", "v2"]


@dataclass(frozen=True, slots=True)
class OpenEchoVariant:
    """One firmware build: its format, samples per ping and sample timing."""

    name: str
    version: Version
    n_samples: int
    sample_period_s: float
    adc_bits: int
    #: the largest N this build can be configured for
    max_n_samples: int


#: every known build; the decoder's candidate lengths and sample rates come from here alone
VARIANTS: tuple[OpenEchoVariant, ...] = (
    # free-running 10-bit ADC >> 2; N limited by the Uno's 2 KiB of RAM
    OpenEchoVariant("uno-r3", "v2", 1800, 13.2e-6, 8, 1800),
    # 12-bit ADC >> 4; N is a build constant up to about 12000
    OpenEchoVariant("uno-r4", "v2", 1800, 13.2e-6, 8, MAX_SAMPLES),
    OpenEchoVariant("pico-w", "v2", 10000, 6e-6, 8, 10000),
    OpenEchoVariant("v1-300", "v1", 300, 13.2e-6, 10, 300),
    # the later v1 builds sent ADC >> 2 in the u16 slots
    OpenEchoVariant("v1-1800", "v1", 1800, 13.2e-6, 8, 1800),
)

#: known N per format
KNOWN_N: dict[str, tuple[int, ...]] = {
    v: tuple(sorted({x.n_samples for x in VARIANTS if x.version == v})) for v in ("v1", "v2")
}
#: an Uno-class sample period for an N no build is known for (the R4 is the one that varies)
DEFAULT_SAMPLE_PERIOD_S = 13.2e-6

#: 250000 baud 8N1 as every build sends (the Pico W's USB CDC is faster; it is the bound)
BAUDRATE = 250_000
#: 8N1: ten bits on the wire per byte
BYTE_TIME_S = 10 / BAUDRATE
#: the AVR core's hardware serial TX buffer: ``Serial.write`` returns when only this is left
TX_BUFFER_BYTES = 64
#: the XOR over the samples and the SPI writes around the acquisition (nominal)
COMPUTE_S = 0.001
#: the ``delay(10)`` at the end of the Uno R3's loop (and the v1 builds')
LOOP_DELAY_S = 0.010
#: the Uno R4's NMEA DBT + DPT sentences on a 4800-baud SoftwareSerial pin (nominal length),
#: sent (blocking) before each frame instead of the delay
NMEA_S = 2 * 35 * 10 / 4800
#: the transducers the shield is sold with (40 kHz air/water, 200 kHz water); nominal default
TRANSDUCER_FREQ_HZ = 200_000
#: the water the board is used in; the host's depth scale (change it for other water)
SOUND_SPEED_M_S = 1480.0
#: what ``board_name`` says for the real board and for a simulated twin (≤ 32 bytes)
BOARD_NAME = "Open Echo"
TWIN_BOARD_NAME = "open-echo (simulated twin)"


#: DEVICE_INFO fields of ``device_info`` that are assumptions, not facts the board states
NOMINAL_FIELDS: dict[str, str] = {
    "transducer_freq_hz": "200 kHz assumed; the shield is also sold with 40 kHz transducers",
    "pulse_freq_min_hz": "the transducer's frequency, assumed (the firmware sets it)",
    "pulse_freq_max_hz": "the transducer's frequency, assumed (the firmware sets it)",
    "prf_min_hz": "the firmware's loop paces the pings; computed from its timing, not announced",
    "prf_max_hz": "the firmware's loop paces the pings; computed from its timing, not announced",
    "adc_rate_hz": "one sample per the build's period (13.2 µs on an Uno), from its source",
    "gain_min_cdb": "the TUSS4470's gain is set by the firmware; the host sees 0 dB",
    "gain_max_cdb": "the TUSS4470's gain is set by the firmware; the host sees 0 dB",
}


def nominal_ping_period_s(variant: OpenEchoVariant) -> float:
    """One ping's time in the firmware's loop, from one burst to the next.

    Sampling, the XOR, ``Serial.write`` at 250 kbaud (it returns with TX_BUFFER_BYTES still
    to go), then ``delay(10)``; the R4 sends its NMEA sentences instead of the delay. Nominal:
    the Pico W sends over USB and is taken as an Uno here; no build announces its rate.
    """
    write_s = (frame_length(variant.version, variant.n_samples) - TX_BUFFER_BYTES) * BYTE_TIME_S
    pause_s = NMEA_S if variant.name == "uno-r4" else LOOP_DELAY_S
    return variant.n_samples * variant.sample_period_s + COMPUTE_S + write_s + pause_s


def device_info(variant: OpenEchoVariant, *, frequency_hz: int = TRANSDUCER_FREQ_HZ,
                prf_hz: int | None = None, simulated: bool = False) -> DeviceInfo:
    """The nominal DEVICE_INFO of an Open Echo build (the dialect and the twin share it).

    The board announces nothing: one fixed transducer, one line of N samples per ping at the
    build's sample period, no commands; its ping rate ``prf_hz`` is its own loop's
    (``nominal_ping_period_s`` unless given), so it is the only rate a configuration may name.
    """
    prf = prf_hz if prf_hz is not None else max(1, round(1 / nominal_ping_period_s(variant)))
    fmt = SampleFormat.U8 if variant.version == "v2" else SampleFormat.U16_OB
    return DeviceInfo(
        board_name=TWIN_BOARD_NAME if simulated else BOARD_NAME,
        adc_bits=variant.adc_bits, sample_formats=1 << fmt, sweep_kind=SweepKind.FIXED,
        capabilities=Capability.SIMULATED if simulated else Capability.NONE,
        adc_rate_hz=round(1 / variant.sample_period_s), max_decimation=1,
        # one flat 0 dB 'curve': the TUSS4470's gain is set by its firmware, not the host
        tgc_points_max=1, gain_min_cdb=0, gain_max_cdb=0, pulse_cycles_max=BURST_CYCLES,
        min_samples_per_line=variant.n_samples, max_samples_per_line=variant.n_samples,
        max_start_delay_samples=0, max_lines_per_frame=MAX_LINES_PER_SWEEP,
        sweep_min=0, sweep_max=0,
        prf_min_hz=prf, prf_max_hz=prf,
        pulse_freq_min_hz=frequency_hz, pulse_freq_max_hz=frequency_hz,
        hv_min_mv=0, hv_max_mv=0,
        transducer_freq_hz=frequency_hz, rated_throughput_bps=BAUDRATE // 10,
    )


#: TUSS4470 register 0x1A = 0x0F: 16 pulses per burst
BURST_CYCLES = 16
#: pings the host groups into one sweep at most (the board has no sweeps; M-mode groups them)
MAX_LINES_PER_SWEEP = 64

# -- layouts ------------------------------------------------------------------------------------

V2Header = cs.Struct(
    "sync" / cs.Const(_SYNC_BYTES),
    "depth_index" / cs.Int16ul,
    "temp_scaled" / cs.Int16sl,
    "vdrv_scaled" / cs.Int16ul,
)
V1Header = cs.Struct(
    "sync" / cs.Const(_SYNC_BYTES),
    "depth" / cs.Int16ub,
    "temp_scaled" / cs.Int16sb,
    "vdrv_scaled" / cs.Int16ub,
)
_HEADERS = {"v1": V1Header, "v2": V2Header}
_SAMPLE_DTYPES = {"v1": np.dtype(">u2"), "v2": np.dtype(np.uint8)}


def frame_length(version: Version, n_samples: int) -> int:
    """Bytes of one frame of ``n_samples`` samples in ``version``."""
    return _SAMPLE_DTYPES[version].itemsize * n_samples + OVERHEAD


def xor8(data: bytes | bytearray | memoryview) -> int:
    """The XOR of all bytes (0 for none)."""
    if not len(data):
        return 0
    return int(np.bitwise_xor.reduce(np.frombuffer(data, np.uint8)))


def _encode(version: Version, samples: np.ndarray, lo: int, hi: int,
            header: dict[str, int]) -> bytes:
    arr = np.asarray(samples)
    if arr.ndim != 1 or not 1 <= arr.size <= MAX_SAMPLES:
        raise ValueError(f"need a 1-D array of 1..{MAX_SAMPLES} samples, got shape {arr.shape}")
    if arr.dtype.kind not in "iu" or int(arr.min()) < lo or int(arr.max()) > hi:
        raise ValueError(f"{version} samples must be integers in {lo}..{hi}")
    try:
        head = _HEADERS[version].build(header)
    except cs.ConstructError as exc:  # construct names the field that does not fit
        raise ValueError(f"{version} header: {exc}") from exc
    body = head[1:] + arr.astype(_SAMPLE_DTYPES[version]).tobytes()
    return _SYNC_BYTES + body + bytes([xor8(body)])


def encode_v2(samples_u8: np.ndarray | Sequence[int], *, depth_index: int = 0, temp: int = 0,
              vdrv: int = 0) -> bytes:
    """A v2 frame: ``0xAA``, ``<HhH`` header, u8 samples, XOR of header and samples."""
    return _encode("v2", np.asarray(samples_u8), 0, 0xFF,
                   {"depth_index": depth_index, "temp_scaled": temp, "vdrv_scaled": vdrv})


def encode_v1(samples_u16: np.ndarray | Sequence[int], *, depth: int = 0, temp: int = 0,
              vdrv: int = 0) -> bytes:
    """A v1 frame: ``0xAA``, ``>HhH`` header (temp, vdrv ×100), big-endian u16 samples, XOR."""
    return _encode("v1", np.asarray(samples_u16), 0, 0x3FF,
                   {"depth": depth, "temp_scaled": temp, "vdrv_scaled": vdrv})


@dataclass(frozen=True, slots=True, eq=False)
class OpenEchoFrame:
    """One parsed frame: the header as sent and the samples (u8 for v2, uint16 for v1)."""

    version: Version
    depth: int
    temp_scaled: int
    vdrv_scaled: int
    samples: np.ndarray


def parse_frame(frame: bytes, version: Version) -> OpenEchoFrame:
    """Parse exactly one complete frame; ``ValueError`` if its length, sync or XOR is wrong."""
    itemsize = _SAMPLE_DTYPES[version].itemsize
    n, rest = divmod(len(frame) - OVERHEAD, itemsize)
    if rest or not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"{len(frame)} bytes is no {version} frame length")
    if frame[0] != SYNC:
        raise ValueError(f"frame starts with 0x{frame[0]:02X}, not 0xAA")
    if xor8(memoryview(frame)[1:]):
        raise ValueError("XOR check failed")
    head = _HEADERS[version].parse(frame)
    samples = _samples(frame, 0, version, n)
    if samples is None:
        raise ValueError("a v1 sample exceeds 10 bits")
    depth = head.depth if version == "v1" else head.depth_index
    return OpenEchoFrame(version, depth, head.temp_scaled, head.vdrv_scaled, samples)


def _samples(buf: bytes, pos: int, version: Version, n: int) -> np.ndarray | None:
    """The samples of the frame at ``pos`` as native arrays; None if v1 values exceed 10 bits."""
    if version == "v2":
        return np.frombuffer(buf, np.uint8, n, pos + HEADER_SIZE).copy()
    raw = np.frombuffer(buf, np.uint8, 2 * n, pos + HEADER_SIZE)
    if int(raw[0::2].max()) > V1_MAX_HIGH_BYTE:
        return None
    return np.frombuffer(buf, ">u2", n, pos + HEADER_SIZE).astype("<u2")


# -- streaming decoder --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A frame shape the decoder tries at a sync byte."""

    version: Version
    n_samples: int

    @property
    def length(self) -> int:
        """Frame length in bytes."""
        return frame_length(self.version, self.n_samples)


def candidates(version: str = "auto", n_samples: int | Sequence[int] | None = None
               ) -> tuple[Candidate, ...]:
    """The frame shapes to try, shortest first and v1 before v2 at equal length.

    ``n_samples`` forces one N (or a few) for every allowed version; None means the known N
    of each format's builds.
    """
    if version not in ("auto", "v1", "v2"):
        raise ValueError(f"version must be 'auto', 'v1' or 'v2', got {version!r}")
    forced = (n_samples,) if isinstance(n_samples, int) else n_samples
    if forced is not None and not forced:
        raise ValueError("n_samples must name at least one N")
    for n in forced or ():
        if not 1 <= n <= MAX_SAMPLES:
            raise ValueError(f"n_samples must be in 1..{MAX_SAMPLES}, got {n}")
    versions = ("v1", "v2") if version == "auto" else (version,)
    found = {Candidate(v, int(n)) for v in versions
             for n in (forced if forced is not None else KNOWN_N[v])}
    return tuple(sorted(found, key=lambda c: (c.length, c.version)))


def variant_for(version: Version, n_samples: int) -> OpenEchoVariant | None:
    """The first known build sending ``n_samples`` in ``version`` (None if none does)."""
    return next((v for v in VARIANTS if v.version == version and v.n_samples == n_samples),
                None)


@dataclass(slots=True)
class OpenEchoStats(DecoderStats):
    """:class:`DecoderStats` plus Open Echo's own counters.

    ``frames_bad`` = ``xor_errors`` + ``range_errors``: sync bytes where the locked format's
    frame failed its XOR (a corrupted frame or a false sync in garbage; the two look alike) or
    held v1 values above 10 bits. ``header_errors`` counts sync bytes at which no candidate
    validated while detecting the format. ``seq_gaps`` stays 0: Open Echo sends no counter.
    """

    xor_errors: int = 0
    range_errors: int = 0
    text_lines: int = 0
    #: times a locked format stopped validating and detection started again
    unlocks: int = 0

    def summary(self) -> str:
        """One human-readable line."""
        return (
            f"{self.bytes_in} B in, {self.frames_ok} frames ok, {self.frames_bad} bad "
            f"(xor {self.xor_errors}, range {self.range_errors}), {self.header_errors} false "
            f"syncs, {self.text_lines} text lines, {self.unlocks} unlocks, "
            f"{self.bytes_discarded} B discarded"
        )


#: printable ASCII plus tab and CR: what a board's text line is made of
_TEXT_BYTES = bytes(range(0x20, 0x7F)) + b"\t\r"
#: longest text line kept in ``last_text`` (longer lines are still counted)
MAX_TEXT_LINE = 256


class OpenEchoDecoder:
    """Open Echo bytes in any chunking → ``EchoLine`` per ping and ``FrameEnd`` per sweep.

    ``version`` and ``n_samples`` (one N or a few) narrow what is tried (see the module
    docstring); with one of each there is a single candidate and every valid frame is taken at
    once. ``sample_period_s``
    overrides the build's period (the sample rate in each ``EchoLine``). ``partial_timeout_s``
    makes ``expire`` decide on held bytes after that idle gap, as :class:`Decoder` does.
    Satisfies ``StreamDecoder``: ``feed`` never raises on any input.
    """

    def __init__(self, version: str = "auto", n_samples: int | Sequence[int] | None = None,
                 lines_per_frame: int = 32, sample_period_s: float | None = None,
                 partial_timeout_s: float | None = None) -> None:
        if not 1 <= lines_per_frame <= 0xFFFF:
            raise ValueError(f"lines_per_frame must be in 1..65535, got {lines_per_frame}")
        if sample_period_s is not None and not sample_period_s > 0:
            raise ValueError(f"sample_period_s must be > 0, got {sample_period_s}")
        if partial_timeout_s is not None and not partial_timeout_s > 0:
            raise ValueError(f"partial_timeout_s must be > 0, got {partial_timeout_s}")
        self.candidates = candidates(version, n_samples)
        self.lines_per_frame = lines_per_frame
        self.sample_period_s = sample_period_s
        self.partial_timeout_s = partial_timeout_s
        self.stats = OpenEchoStats()
        #: the last complete text line the board printed (stripped, at most MAX_TEXT_LINE)
        self.last_text = ""
        #: header of the last frame taken: (depth or depth_index, temp_scaled, vdrv_scaled)
        self.last_header: tuple[int, int, int] | None = None
        #: what ``buffered`` never exceeds: the longest candidate and the byte after it
        self.max_buffered = max(c.length for c in self.candidates) + 1
        self._pending = bytearray()
        self._need = 1
        self._last_rx_s: float | None = None
        self._locked: Candidate | None = None
        self._since_good = 0
        self._seq = 0
        self._frame_index = 0
        self._line_index = 0
        self._text = bytearray()
        self._text_ok = True
        self._unlock()

    @property
    def buffered(self) -> int:
        """Bytes held back for an undecided frame (at most the longest candidate + 1)."""
        return len(self._pending)

    @property
    def locked(self) -> Candidate | None:
        """The format frames are currently taken in (None while detecting)."""
        return self._locked

    def reset(self) -> None:
        """Forget held bytes and the detected format (e.g. after reopening a port)."""
        self.stats.bytes_discarded += len(self._pending)
        self._pending.clear()
        self._need = 1
        self._since_good = 0
        self._unlock()
        self._text.clear()
        self._text_ok = True

    def feed(self, data: bytes, now_s: float | None = None) -> list[Message]:
        """Consume a chunk of any size; return the messages completed by it, in order."""
        timed = self.partial_timeout_s is not None
        if timed and now_s is None:
            raise ValueError("a decoder with partial_timeout_s needs the arrival time now_s")
        out = self.expire(now_s) if timed and self._pending else []
        if timed and data:
            self._last_rx_s = now_s
        try:
            self.stats.bytes_in += len(data)
            self._pending += data
            # deciding needs a known number of bytes: rescanning before they are here is waste
            if len(self._pending) >= self._need:
                self._process(out, final=False)
        except Exception:
            self._drop_after_bug()
        return out

    def _drop_after_bug(self) -> None:
        """A bug in the decoder must not stop the stream: count it, drop what is held, go on."""
        self.stats.decoder_errors += 1
        self.stats.bytes_discarded += len(self._pending)
        self._pending.clear()
        self._need = 1

    def flush(self) -> list[Message]:
        """Decide on everything held as if no more bytes will come; return what it held."""
        out: list[Message] = []
        try:
            if self._pending:
                self._process(out, final=True)
        except Exception:
            self._drop_after_bug()
        self._need = 1
        return out

    def expire(self, now_s: float) -> list[Message]:
        """``flush`` if no byte came for ``partial_timeout_s``; a no-op without one."""
        timeout = self.partial_timeout_s
        last = self._last_rx_s
        if timeout is None or not self._pending or last is None or now_s < last + timeout:
            return []
        return self.flush()

    # -- internals ------------------------------------------------------------------------------

    def _unlock(self) -> None:
        # a single candidate needs no detection: it is locked for good
        self._locked = self.candidates[0] if len(self.candidates) == 1 else None

    def _process(self, out: list[Message], final: bool) -> None:
        buf = bytes(self._pending)
        pos, need = self._scan(buf, out, final)
        del self._pending[:pos]
        self._need = need

    def _scan(self, buf: bytes, out: list[Message], final: bool) -> tuple[int, int]:
        """Take every decidable frame in ``buf``; return where undecided bytes start and how
        many bytes from there a decision needs."""
        pos = 0
        n = len(buf)
        while True:
            i = buf.find(_SYNC_BYTES, pos)
            if i < 0:
                self._discard(buf, pos, n)
                return n, 1
            if i > pos:
                self._discard(buf, pos, i)
                pos = i
            verdict = self._decide(buf, pos, final)
            if isinstance(verdict, int):
                return pos, verdict
            if verdict is None:
                self._discard(buf, pos, pos + 1)
                pos += 1
                continue
            cand, samples = verdict
            self._emit(buf, pos, cand, samples, out)
            pos += cand.length

    def _decide(self, buf: bytes, pos: int, final: bool
                ) -> int | tuple[Candidate, np.ndarray] | None:
        """At the sync byte ``buf[pos]``: a frame, None (skip the byte) or bytes still needed."""
        avail = len(buf) - pos
        stats = self.stats
        locked = self._locked
        if locked is not None:
            if avail < locked.length:
                return None if final else locked.length
            if not xor8(memoryview(buf)[pos + 1 : pos + locked.length]):
                samples = _samples(buf, pos, locked.version, locked.n_samples)
                if samples is not None:
                    return locked, samples
                stats.range_errors += 1
            else:
                stats.xor_errors += 1
            stats.frames_bad += 1
            if len(self.candidates) == 1 or self._since_good < 2 * locked.length:
                return None
            # frames stopped validating for two frame lengths: detect the format again
            stats.unlocks += 1
            self._locked = None
        for cand in self.candidates:
            length = cand.length
            if avail <= length and not final:
                # the byte after the frame is needed to tell a real frame from a lucky XOR
                return length + 1
            if avail < length or (avail > length and buf[pos + length] != SYNC):
                continue
            if xor8(memoryview(buf)[pos + 1 : pos + length]):
                continue
            samples = _samples(buf, pos, cand.version, cand.n_samples)
            if samples is not None:
                return cand, samples
        stats.header_errors += 1
        return None

    def _emit(self, buf: bytes, pos: int, cand: Candidate, samples: np.ndarray,
              out: list[Message]) -> None:
        """Turn the frame at ``pos`` into an ``EchoLine`` (and a ``FrameEnd`` after a sweep)."""
        self._locked = cand
        self._since_good = 0
        # a frame ends any text line; what follows starts a fresh one
        self._text.clear()
        self._text_ok = True
        head = _HEADERS[cand.version].parse(buf[pos : pos + HEADER_SIZE])
        depth = head.depth if cand.version == "v1" else head.depth_index
        self.last_header = (depth, head.temp_scaled, head.vdrv_scaled)
        variant = variant_for(cand.version, cand.n_samples)
        period = self.sample_period_s or (
            variant.sample_period_s if variant else DEFAULT_SAMPLE_PERIOD_S)
        adc_bits = variant.adc_bits if variant else (10 if cand.version == "v1" else 8)
        lpf = self.lines_per_frame
        line = EchoLine(
            samples, round(1.0 / period), frame_index=self._frame_index,
            line_index=self._line_index, lines_per_frame=lpf, sweep_kind=SweepKind.FIXED,
            adc_bits=adc_bits,
            sample_format=SampleFormat.U8 if cand.version == "v2" else SampleFormat.U16_OB,
        )
        self._append(line, out)
        self.stats.frames_ok += 1
        self._line_index += 1
        if self._line_index == lpf:
            self._append(FrameEnd(frame_index=self._frame_index, lines_sent=lpf,
                                  lines_per_frame=lpf), out)
            self._frame_index += 1
            self._line_index = 0

    def _append(self, msg: Message, out: list[Message]) -> None:
        msg.seq = self._seq
        self.stats.last_seq = self._seq
        self._seq = next_seq(self._seq)
        out.append(msg)

    def _discard(self, buf: bytes, start: int, end: int) -> None:
        """Drop ``buf[start:end]``, counting the board's complete text lines in it."""
        if end <= start:
            return
        self.stats.bytes_discarded += end - start
        self._since_good += end - start
        *lines, tail = buf[start:end].split(b"\n")
        for part in lines:
            self._text_chunk(part)
            text = self._text.decode("ascii").strip()
            if self._text_ok and text:
                self.stats.text_lines += 1
                self.last_text = text
            self._text.clear()
            self._text_ok = True
        self._text_chunk(tail)

    def _text_chunk(self, part: bytes) -> None:
        # one byte that is not printable ASCII makes the line binary, not text
        if self._text_ok and part.translate(None, _TEXT_BYTES):
            self._text_ok = False
        if self._text_ok:
            room = MAX_TEXT_LINE - len(self._text)
            self._text += part[:room]
