"""A simulated twin of an Open Echo (Neumi/open_echo TUSS4470 shield on an Arduino).

It streams Open Echo **v2** frames (built by
:func:`sonobridge.protocol.boards.open_echo.encode_v2`, the format's one home) exactly as the
``TUSS4470_shield_002`` firmware does, and ignores whatever the host writes (the board only
talks). The stream is paced by the firmware's own loop, not by a link profile:

Uno R3 (``TUSS4470_arduino.ino``): acquire N = 1800 samples, one per 13.2 µs (23.76 ms), XOR
the frame (nominal 1 ms), ``Serial.write`` the 1808 bytes at 250000 baud 8N1 (40 µs a byte;
the call blocks until all but the 64-byte TX buffer are out: 69.76 ms), then ``delay(10)``.
One ping every 104.5 ms (about 9.6 pings/s), the wire busy 72.3 ms of it (about 17.3 kB/s on
average): a 250 kbaud UART could never carry 1808 bytes every 10 ms.

Uno R4 (``TUSS4470_arduino_r4.ino``): the same frame, no ``delay(10)``, but an NMEA DBT/DPT
sentence pair at 4800 baud on a SoftwareSerial pin before each frame (nominal 2 × 35 bytes:
145.8 ms), and ``[WiFi] …`` text lines on the same port at boot. One ping every 242 ms.

The physics is a sonar envelope as the TUSS4470's logarithmic amplifier hands it to the ADC:
a 200 kHz (or 40 kHz) burst of 16 cycles in water (1480 m/s), the transducer's ring-down
(the blind zone, about 450 samples), a slightly rough sea floor with its second multiple,
two fish drifting slowly in depth, spreading and absorption losses, receiver noise and 8-bit
quantization. Every ping is rendered from a generator seeded by ``(seed, ping index)``, so a
seed gives the same samples whatever the timing. Everything that is not in the firmware is
nominal (the scene, the amplifier's scale, the compute time, the R4's NMEA time).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sonobridge.protocol import DeviceInfo, DeviceState
from sonobridge.protocol.boards.open_echo import (
    BURST_CYCLES,
    BYTE_TIME_S,
    COMPUTE_S,
    NMEA_S,
    SOUND_SPEED_M_S,
    VARIANTS,
    OpenEchoVariant,
    device_info,
    encode_v2,
    frame_length,
    nominal_ping_period_s,
)

if TYPE_CHECKING:  # server.py builds twins through the registry: no import cycle at run time
    from sonobridge.sim.server import SimOptions

# -- the firmware's timing (TUSS4470_shield_002) ----------------------------------------------

#: the firmware samples from the burst's start until this sample with the threshold disarmed
BLINDZONE_SAMPLE_END = 450

# -- the scene (nominal) -----------------------------------------------------------------------

FLOOR_DEPTH_M = 8.0
#: amplitude reflection coefficient of a sandy floor, and of the sea surface (magnitude)
FLOOR_REFLECTION = 0.3
SURFACE_REFLECTION = 1.0
#: the floor's specular echo varies by this much from ping to ping (dB, 1 sigma): roughness
FLOOR_ROUGHNESS_DB = 1.5
#: the rough floor's backscatter tail: level below the specular echo and its decay length
FLOOR_TAIL_DB = -22.0
FLOOR_TAIL_M = 0.15
#: (mean depth m, drift amplitude m, drift period s, phase rad, strength) of each fish
FISH: tuple[tuple[float, float, float, float, float], ...] = (
    (5.5, 0.3, 17.0, 0.0, 0.015),
    (6.6, 0.2, 23.0, 2.0, 0.010),
)
#: source level: a floor echo at 8 m is about 65 dB above the receiver's noise (rms 1)
SOURCE = 94_800.0
#: ring-down at the burst's start, relative to the noise, and its decay: it sinks into the
#: noise at about the firmware's blind zone end (450 samples of 13.2 µs)
RING_DOWN_DB = 80.0
RING_DOWN_TAU_S = 450 * 13.2e-6 / math.log(10 ** (RING_DOWN_DB / 20))
#: transducer quality factor: the echo envelope rises and falls over Q / (π f)
TRANSDUCER_Q = 8.0
#: seawater absorption in dB per metre, one way, per transducer frequency
ABSORPTION_DB_M = {200_000: 0.05, 40_000: 0.01}
#: the log amplifier and ADC: counts at the noise's rms and counts per dB above it
ADC_NOISE_COUNTS = 20.0
ADC_COUNTS_PER_DB = 3.0
#: the R3's bottom detector: the first sample at or above this after the blind zone (nominal;
#: the firmware sets the TUSS4470's comparator, whose scale in ADC counts is not documented)
THRESHOLD_COUNTS = 150

#: what the Uno R4 WiFi build prints at boot (``wifi_server.cpp``): (delay s, text)
R4_BOOT_TEXT: tuple[tuple[float, bytes], ...] = (
    (0.0, b"[WiFi] Connecting (UDP only)...\r\n"),
    (0.25, b"."), (0.5, b"."), (0.75, b"."), (1.0, b".\r\n"),
    (1.0, b"[WiFi] STA IP: 192.168.4.23\r\n"),
    (1.0, b"[WiFi] Broadcast IP: 192.168.4.255\r\n"),
    (1.0, b"[UDP] Broadcast enabled[NET] Ready. IP: 192.168.4.23\r\n"),
)
#: how long the R4 takes from reset to its first ping (its WiFi join, nominal)
R4_BOOT_S = 1.0

#: bytes the USB-serial bridge holds for a host that does not read; beyond, it loses them
BRIDGE_BUFFER_BYTES = 4096

FREQUENCIES_HZ = (200_000, 40_000)
VARIANT_NAMES = ("uno-r3", "uno-r4")


@dataclass(frozen=True)
class OpenEchoTwinConfig:
    """Which Open Echo is simulated: firmware build and transducer frequency."""

    variant: str = "uno-r3"
    frequency_hz: int = 200_000

    @classmethod
    def parse(cls, text: str) -> OpenEchoTwinConfig:
        """From ``SimOptions.variant``: e.g. ``uno-r4,40k`` (default ``uno-r3,200k``)."""
        variant, freq = "uno-r3", 200_000
        for raw in text.split(","):
            item = raw.strip().lower()
            if not item:
                continue
            if item in VARIANT_NAMES:
                variant = item
            elif item in ("200k", "40k"):
                freq = int(item[:-1]) * 1000
            else:
                raise ValueError(f"unknown open-echo variant {item!r}; choose from "
                                 f"{', '.join(VARIANT_NAMES)} and 200k, 40k (e.g. uno-r4,40k)")
        return cls(variant, freq)

    @property
    def build(self) -> OpenEchoVariant:
        """The firmware build's facts from the protocol module."""
        return next(v for v in VARIANTS if v.name == self.variant)

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame on the wire."""
        return frame_length("v2", self.build.n_samples)

    @property
    def acquire_s(self) -> float:
        """How long one ping's samples take."""
        return self.build.n_samples * self.build.sample_period_s

    @property
    def ping_period_s(self) -> float:
        """Time from one ping's burst to the next, as the firmware's loop makes it."""
        return nominal_ping_period_s(self.build)

    @property
    def send_delay_s(self) -> float:
        """From a ping's burst to its frame's first byte on the wire."""
        return self.acquire_s + COMPUTE_S + (NMEA_S if self.variant == "uno-r4" else 0.0)

    @property
    def boot_s(self) -> float:
        """From reset to the first ping."""
        return R4_BOOT_S if self.variant == "uno-r4" else 0.0


def validate_options(options: SimOptions) -> None:
    """Fail early on a variant this twin does not know."""
    OpenEchoTwinConfig.parse(options.variant)


def floor_onset_sample(config: OpenEchoTwinConfig, depth_m: float = FLOOR_DEPTH_M) -> float:
    """Sample index at which the floor's echo starts (two-way travel time / sample period)."""
    return 2 * depth_m / SOUND_SPEED_M_S / config.build.sample_period_s


@dataclass(frozen=True, eq=False)
class PingTruth:
    """One ping as sent: its samples bit for bit, its header and its timing."""

    boot: int
    index: int
    #: engine clock at the burst and at the frame's first byte on the wire
    burst_s: float
    wire_s: float
    depth_index: int
    samples: np.ndarray
    frame: bytes


class _Segment:
    """Bytes the UART sends one after another from ``start_s``, 40 µs each."""

    __slots__ = ("data", "offset", "seq", "start_s")

    def __init__(self, seq: int, data: bytes, start_s: float) -> None:
        self.seq = seq
        self.data = data
        self.start_s = start_s
        self.offset = 0

    def due(self, now_s: float) -> int:
        """Bytes of this segment the UART has put on the wire by ``now_s``."""
        if now_s < self.start_s:
            return 0
        return min(len(self.data), int((now_s - self.start_s) / BYTE_TIME_S + 1e-9))


class OpenEchoTwin:
    """The Open Echo as a :class:`~sonobridge.board.board.Board` (see the module docstring)."""

    def __init__(self, config: OpenEchoTwinConfig | None = None, *, seed: int = 1,
                 record_truth: bool = False) -> None:
        self.config = config or OpenEchoTwinConfig()
        self.seed = seed
        self.record_truth = record_truth
        #: every ping sent, in order, when ``record_truth`` is set
        self.truth: list[PingTruth] = []
        self.boots = 0
        #: bytes the USB bridge lost because the host did not take them
        self.bytes_dropped = 0
        self.state = DeviceState.IDLE
        #: set by the sim:// handler; this board has nothing to turn into host gaps
        self.late_is_host_loss = False
        self._t0: float | None = None
        self._next_ping = 0
        self._wire_free_s = 0.0
        self._segments: deque[_Segment] = deque()
        self._prepare_scene()

    # -- Board ----------------------------------------------------------------------------------

    @property
    def info(self) -> DeviceInfo:
        """Nominal identity: an Open Echo announces nothing; this is what the twin simulates."""
        return device_info(self.config.build, frequency_hz=self.config.frequency_hz,
                           prf_hz=max(1, round(1 / self.config.ping_period_s)), simulated=True)

    @property
    def acquiring(self) -> bool:
        """True once booted: the firmware pings from reset on."""
        return self._t0 is not None

    def power_on(self, now_s: float, *, announce: bool = False) -> None:
        """Reset: pings count from 0 again; the R4 prints its boot text first."""
        self.boots += 1
        self._t0 = now_s
        self._next_ping = 0
        self._segments.clear()
        self._wire_free_s = now_s
        self.state = DeviceState.STREAMING
        if self.config.variant == "uno-r4":
            for delay, text in R4_BOOT_TEXT:
                self._schedule(0, text, now_s + delay)

    def feed(self, data: bytes, now_s: float) -> None:
        """The firmware never reads the port: input is ignored."""
        if self._t0 is None:
            self.power_on(now_s)

    def pull(self, now_s: float, budget_bytes: float = math.inf) -> list[tuple[int, bytes]]:
        """The bytes the UART has sent by ``now_s`` (in chunks), within ``budget_bytes``."""
        if self._t0 is None:
            self.power_on(now_s)
        self._render_due(now_s)
        out: list[tuple[int, bytes]] = []
        left = budget_bytes
        backlog = 0
        for seg in self._segments:
            due = seg.due(now_s)
            if due <= seg.offset:
                break  # later segments start later still
            n = int(min(due - seg.offset, left))
            if n > 0:
                out.append((seg.seq, seg.data[seg.offset : seg.offset + n]))
                seg.offset += n
                left -= n
            backlog += due - seg.offset
        # a host that does not read: the bridge keeps the newest bytes it can and loses the rest
        excess = backlog - BRIDGE_BUFFER_BYTES
        for seg in self._segments:
            if excess <= 0:
                break
            lose = min(excess, seg.due(now_s) - seg.offset)
            seg.offset += lose
            excess -= lose
            self.bytes_dropped += lose
        while self._segments and self._segments[0].offset >= len(self._segments[0].data):
            self._segments.popleft()
        return out

    # -- the firmware's loop --------------------------------------------------------------------

    def _schedule(self, seq: int, data: bytes, ready_s: float) -> float:
        """Queue bytes for the UART from ``ready_s`` (or when it is free); returns the start."""
        start = max(ready_s, self._wire_free_s)
        self._segments.append(_Segment(seq, data, start))
        self._wire_free_s = start + len(data) * BYTE_TIME_S
        return start

    def _render_due(self, now_s: float) -> None:
        """Acquire and queue every ping whose frame is ready by ``now_s``."""
        cfg = self.config
        assert self._t0 is not None
        first = self._t0 + cfg.boot_s
        while True:
            burst = first + self._next_ping * cfg.ping_period_s
            if burst + cfg.send_delay_s > now_s:
                return
            samples = self.render_ping(self._next_ping)
            depth_index = self._depth_index(samples)
            frame = encode_v2(samples, depth_index=depth_index)
            wire = self._schedule(self._next_ping, frame, burst + cfg.send_delay_s)
            if self.record_truth:
                self.truth.append(PingTruth(self.boots, self._next_ping, burst, wire,
                                            depth_index, samples, frame))
            self._next_ping += 1

    def _depth_index(self, samples: np.ndarray) -> int:
        """The header's depth: R3 the first crossing of the threshold, R4 the strongest sample."""
        tail = samples[BLINDZONE_SAMPLE_END:]
        if self.config.variant == "uno-r4":
            return BLINDZONE_SAMPLE_END + int(np.argmax(tail)) if tail.size else 0
        above = np.flatnonzero(tail >= THRESHOLD_COUNTS)
        return BLINDZONE_SAMPLE_END + int(above[0]) if above.size else 0

    # -- physics --------------------------------------------------------------------------------

    def _prepare_scene(self) -> None:
        cfg = self.config
        f = cfg.frequency_hz
        period = cfg.build.sample_period_s
        self._t = np.arange(cfg.build.n_samples) * period
        self._burst_s = BURST_CYCLES / f
        self._rise_s = TRANSDUCER_Q / (math.pi * f)
        self._alpha = ABSORPTION_DB_M.get(f, 0.05)
        # the drive saturates the receiver from the burst's first cycles, then rings down
        rise = 1.0 - np.exp(-self._t / self._rise_s)
        self._ring = 10 ** (RING_DOWN_DB / 20) * rise * np.exp(-self._t / RING_DOWN_TAU_S)

    def _pulse(self, arrival_s: float) -> np.ndarray:
        """Envelope of a 16-cycle burst through the transducer, arriving at ``arrival_s``."""
        tau = self._t - arrival_s
        on = np.clip(tau, 0.0, self._burst_s)
        rise = 1.0 - np.exp(-on / self._rise_s)
        after = np.clip(tau - self._burst_s, 0.0, None)
        env = rise * np.exp(-after / self._rise_s)
        env[tau < 0] = 0.0
        return env

    def _loss(self, path_m: float) -> float:
        """Absorption over a path, as an amplitude factor."""
        return 10 ** (-self._alpha * path_m / 20)

    def render_ping(self, index: int) -> np.ndarray:
        """The u8 samples of ping ``index``: the same for a seed, whenever it is rendered."""
        rng = np.random.default_rng([self.seed, index])
        c = SOUND_SPEED_M_S
        t_ping = index * self.config.ping_period_s
        n = self._t.size
        field = np.zeros(n, np.complex128)

        def echo(range_m: float, amplitude: float) -> None:
            field[:] += amplitude * np.exp(2j * np.pi * rng.random()) * self._pulse(2 * range_m / c)

        depth = FLOOR_DEPTH_M + rng.normal(0.0, 0.005)  # roughness: a centimetre of relief
        rough = 10 ** (rng.normal(0.0, FLOOR_ROUGHNESS_DB) / 20)
        floor = SOURCE * FLOOR_REFLECTION * rough / (2 * depth) * self._loss(2 * depth)
        echo(depth, floor)
        # the rough floor's backscatter: facets just behind the specular point, fading
        tail_ranges = depth + rng.exponential(FLOOR_TAIL_M, 24)
        for r in tail_ranges:
            echo(float(r), floor * 10 ** (FLOOR_TAIL_DB / 20) * float(rng.rayleigh(0.7)))
        # floor → surface → floor: the second multiple, at twice the depth
        multiple = (SOURCE * FLOOR_REFLECTION**2 * SURFACE_REFLECTION / (4 * depth)
                    * self._loss(4 * depth))
        echo(2 * depth, multiple)
        for mean, amp, period_s, phase, strength in FISH:
            r = mean + amp * math.sin(2 * math.pi * t_ping / period_s + phase)
            echo(r, SOURCE * strength / r**2 * self._loss(2 * r))
        noise = (rng.normal(size=n) + 1j * rng.normal(size=n)) / math.sqrt(2)
        env = np.abs(field + noise) + self._ring
        counts = ADC_NOISE_COUNTS + ADC_COUNTS_PER_DB * 20 * np.log10(np.maximum(env, 1e-6))
        return np.clip(np.rint(counts), 0, 255).astype(np.uint8)


def create_board(options: SimOptions) -> OpenEchoTwin:
    """The Open Echo twin for ``options`` (``variant``, ``seed``, ``record_truth``)."""
    return OpenEchoTwin(OpenEchoTwinConfig.parse(options.variant), seed=options.seed,
                        record_truth=options.record_truth)
