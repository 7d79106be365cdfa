"""A simulated pic0rick on its stock USB CDC text shell, byte for byte, with the phantom physics.

The wire format lives in :mod:`sonobridge.protocol.boards.pic0rick_shell` (one home); this
module only decides *when* the board prints *what*, like ``firmware/main.c`` and
``firmware/adc/adc.c`` of kelu124/pic0rick:

* **DTR.** The firmware initialises nothing until the host asserts DTR, then sleeps 4 × 100 ms
  (``INIT_S``) and prints the prompt. A pty carries no modem lines, so the twin takes the
  host's first byte (of any value) as DTR; that byte is kept as input, as the USB FIFO would
  keep it. A NUL is ignored by the shell, so it wakes the twin without side effects.
  :meth:`Pic0rickTwin.assert_dtr` is there for in-process users that see the real line.
* **Shell.** Input is read only while the firmware sits in ``read_input`` (after a prompt);
  bytes that arrive meanwhile wait, as in the USB FIFO. Echo and editing are ``LineEditor``'s.
* **Capture.** ``start acq`` prints its first line at once; the capture then takes
  ``ACQ_OVERHEAD_S`` + 8000 samples / 60 MS/s before the rest of the reply. (The stock
  firmware prints its bogus timeout while the DMA still runs; the twin holds those lines until
  the capture is done, so a ``read`` can never see a half-filled buffer.)
* **Physics.** One fixed line through the phantom: ``EchoSynth`` renders the echo of a 5 MHz
  element (its reference pulse) at 60 MS/s, noise-free, with the DAC code's nominal gain
  (``dac_gain_db``: AD8331 7.5–55.5 dB, linear over codes 0..1023) as a constant TGC. The
  bipolar pulse, P high then N low, each ``(ticks + 1) × tick`` long (8 ns stock, 4 ns old), is
  three edges (+1, −2, +1); a linear element answers each edge with its own wavelet, taken to
  be that reference echo (the step response of a Gaussian band has the same envelope; only
  its phase differs), so the line is the sum of the three delayed copies, divided by 4
  (:func:`excite`). Short pulses cancel (P = N = 0: about 2 % of the matched amplitude), half
  a period each (100 ns at 5 MHz) gives the full echo, long ones split into separate
  wavelets. D (damping) is not modelled: the synth has no ringing to damp. The thermal and
  ADC noise of ``Adc.noise_v_rms`` at that gain is added once, fresh per capture and seeded
  by (seed, capture index); the codes are 10-bit offset binary around 512, clipped at 0..1023.
  The first edge is sample 0: the few hundred ns the stock firmware samples before its pulse
  are not modelled, nor is the transmit feed-through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sonobridge.board.board import Board
from sonobridge.protocol import DeviceInfo, DeviceState, SampleFormat
from sonobridge.protocol.boards.pic0rick_shell import (
    ADC_BITS,
    DAC_ENDED,
    DAC_STARTED,
    EOL,
    MUX_ENDED,
    MUX_STARTED,
    N_SAMPLES,
    PROMPT,
    SAMPLE_RATE_HZ,
    STOCK,
    TRANSDUCER_FREQ_HZ,
    VARIANTS,
    LineEditor,
    ShellVariant,
    acq_ticks,
    dac_gain_db,
    dac_word,
    device_info,
    format_acq,
    format_dump,
    parse_command_line,
    pulse_duration_ns,
    unknown_command,
)

from ..acoustics import Acquisition, EchoSynth, Transducer
from ..adc import Adc
from ..phantom import Phantom, load_phantom

if TYPE_CHECKING:
    from ..server import SimOptions

#: main() sleeps 100 ms after DTR and after each of its three init calls before the prompt
INIT_S = 0.4
#: one capture: 8000 samples at 60 MS/s
CAPTURE_S = N_SAMPLES / SAMPLE_RATE_HZ
#: firmware work around it (FIFO clears, SM restarts, memset, printf); an estimate
ACQ_OVERHEAD_S = 50e-6
#: a write to the DAC over its PIO SPI (16 bits) plus two printf; an estimate
DAC_WRITE_S = 20e-6


def pulse_edges(p_ticks: int, n_ticks: int, variant: ShellVariant = STOCK
                ) -> list[tuple[float, float]]:
    """(delay s, step) of the bipolar pulse's edges: rise +1, P to N −2, back to 0 +1."""
    t_p = pulse_duration_ns(p_ticks, variant) * 1e-9
    t_n = pulse_duration_ns(n_ticks, variant) * 1e-9
    return [(0.0, 1.0), (t_p, -2.0), (t_p + t_n, 1.0)]


def excite(echo: np.ndarray, edges: list[tuple[float, float]], sample_rate_hz: float
           ) -> np.ndarray:
    """The echo of a square pulse from the element's own echo ``echo`` (last axis: samples).

    A linear element driven by a square pulse answers each edge with its own wavelet, so the
    line is the sum of ``echo`` delayed to each edge and weighted by its step (fractional
    delays by a phase ramp, zero-padded: nothing wraps around). Divided by 4, the matched pulse
    (both halves half a period at the centre frequency: the wavelets add in phase) gives
    ``echo`` back; shorter pulses cancel, longer ones split into separate wavelets.
    """
    n = echo.shape[-1]
    n_fft = 2 * n
    spec = np.fft.rfft(echo, n_fft, axis=-1)
    f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate_hz)
    total = np.zeros_like(spec)
    for delay, step in edges:
        if delay * sample_rate_hz < n:  # an edge after the window adds nothing to it
            total += (step / 4.0) * spec * np.exp(-2j * np.pi * f * delay)
    return np.fft.irfft(total, n_fft, axis=-1)[..., :n].astype(np.float32)


@dataclass
class _Chunk:
    """Bytes the board prints, not before ``due_s``."""

    due_s: float
    data: bytearray


class Pic0rickTwin:
    """The stock pic0rick shell as a :class:`~sonobridge.board.board.Board` (module docstring)."""

    def __init__(self, phantom: str | Phantom = "wire", *, seed: int = 1,
                 variant: str | ShellVariant = "stock", record_truth: bool = False,
                 init_s: float = INIT_S) -> None:
        self.phantom = phantom if isinstance(phantom, Phantom) else load_phantom(phantom)
        self.seed = int(seed)
        self.variant = variant if isinstance(variant, ShellVariant) else VARIANTS[variant]
        self.record_truth = record_truth
        #: every capture's N_SAMPLES codes (uint16), in order, when ``record_truth`` is set
        self.truth: list[np.ndarray] = []
        self.init_s = float(init_s)
        self.transducer = Transducer(center_freq_hz=TRANSDUCER_FREQ_HZ)
        self.adc = Adc(bits=ADC_BITS, sample_rate_hz=SAMPLE_RATE_HZ)
        # the synth renders the element's echo without noise: the pulse shaping (``excite``)
        # sums delayed copies of it, and noise must not be summed with them
        self._synth = EchoSynth(
            self.phantom, self.transducer,
            Adc(bits=ADC_BITS, sample_rate_hz=SAMPLE_RATE_HZ, thermal_noise_v_rms=0.0,
                noise_lsb_rms=0.0),
            seed=self.seed)
        self._info = device_info(self.variant, simulated=True)
        #: captures made since construction: the noise of capture k depends on (seed, k) only
        self._n_captures = 0
        self.state: int = DeviceState.IDLE
        self.power_on(0.0)

    # -- Board ----------------------------------------------------------------------------

    @property
    def info(self) -> DeviceInfo:
        """The nominal DEVICE_INFO of a pic0rick (``device_info``), marked simulated."""
        return self._info

    @property
    def acquiring(self) -> bool:
        """True while a capture is under way."""
        return self._capture_until is not None

    @property
    def pending_bytes(self) -> int:
        """Bytes still to print (due or not); keeps the engine ticking fast until they are out."""
        return sum(len(c.data) for c in self._out) + (1 if self.acquiring else 0)

    def power_on(self, now_s: float, *, announce: bool = False) -> None:
        """Reboot: DAC at 0, capture buffer zeroed (BSS); ``announce`` keeps DTR asserted."""
        self._rx = bytearray()
        self._out: list[_Chunk] = []
        self._editor = LineEditor()
        self._dac_code = 0  # the MCP4812 powers up with its latch at 0
        self._last: np.ndarray = np.zeros(N_SAMPLES, np.uint16)
        self._capture_until: float | None = None
        self._pending_capture: np.ndarray | None = None
        self._after_capture = b""
        #: when the firmware next reads input (None: still waiting for DTR)
        self._ready_s: float | None = None
        self.state = DeviceState.IDLE
        if announce:
            # a board that rebooted under an open port sees the host's DTR at once
            self.assert_dtr(now_s)

    def assert_dtr(self, now_s: float) -> None:
        """The host asserted DTR: initialise, then print the first prompt."""
        if self._ready_s is None:
            self._ready_s = now_s + self.init_s
            self._out.append(_Chunk(self._ready_s, bytearray(PROMPT)))

    def feed(self, data: bytes, now_s: float) -> None:
        """The host's bytes; the first one stands for DTR (a pty has none to see)."""
        if data:
            self.assert_dtr(now_s)
            self._rx += data
        self._run(now_s)

    def pull(self, now_s: float, budget_bytes: float = math.inf) -> list[tuple[int, bytes]]:
        """Text due by ``now_s`` within ``budget_bytes``, as ``(0, bytes)`` chunks."""
        self._run(now_s)
        out: list[tuple[int, bytes]] = []
        budget = budget_bytes
        while self._out and self._out[0].due_s <= now_s and budget >= 1:
            chunk = self._out[0]
            n = len(chunk.data) if budget >= len(chunk.data) else int(budget)
            out.append((0, bytes(chunk.data[:n])))
            budget -= n
            if n == len(chunk.data):
                self._out.pop(0)
            else:
                del chunk.data[:n]
        return out

    # -- the firmware's main loop ---------------------------------------------------------

    def _run(self, now_s: float) -> None:
        """Advance the firmware to ``now_s``: finish a capture, then read input while idle."""
        used = 0  # input bytes taken, removed at once (a byte at a time would be quadratic)
        try:
            while True:
                if self._capture_until is not None:
                    if now_s < self._capture_until:
                        return
                    self._finish_capture()
                if self._ready_s is None or now_s < self._ready_s or used >= len(self._rx):
                    return
                at = max(self._ready_s, now_s)
                echo, line = self._editor.push(self._rx[used])
                used += 1
                if echo:
                    self._print(echo, at)
                if line is not None:
                    self._execute(line, at)
        finally:
            del self._rx[:used]

    def _print(self, data: bytes, at_s: float) -> None:
        if self._out and self._out[-1].due_s >= at_s:
            self._out[-1].data += data  # nothing printed in between: one chunk
        else:
            self._out.append(_Chunk(at_s, bytearray(data)))

    def _execute(self, line: bytes, now_s: float) -> None:
        """``process_command`` then the next ``printf("run> ")``."""
        name, args = parse_command_line(line)
        done = now_s
        if name == "start acq":
            self._start_capture(args, now_s)
            return  # the rest of the reply and the prompt follow the capture
        if name == "read":
            self._print(format_dump(self._last, prompt=False), now_s)
        elif name == "write dac":
            word = dac_word(args[0])
            if not word & 0x8000:  # bit 15 clear: channel A, the VGA's gain input
                self._dac_code = (word >> 2) & 0x3FF
            done = now_s + DAC_WRITE_S
            self._print(DAC_STARTED + EOL, now_s)
            self._print(DAC_ENDED + EOL, done)
        elif name == "write mux":
            # a fixed single element: the mux has nothing to switch in the twin
            self._print(MUX_STARTED + EOL + MUX_ENDED + EOL, now_s)
        elif name in ("set mux", "clear mux", ""):
            pass  # these print nothing (an empty line is no command at all)
        else:
            self._print(unknown_command(name), now_s)
        self._ready_s = done
        self._print(PROMPT, done)

    # -- capture --------------------------------------------------------------------------

    def _start_capture(self, args: list[int], now_s: float) -> None:
        started, rest = _split_acq(format_acq(N_SAMPLES, self.variant))
        self._print(started, now_s)
        p, n, _ = acq_ticks(args, self.variant)
        self._pending_capture = self._render(p, n)
        self._capture_until = now_s + ACQ_OVERHEAD_S + CAPTURE_S
        self._ready_s = self._capture_until
        self._after_capture = rest + PROMPT
        self.state = DeviceState.STREAMING

    def _finish_capture(self) -> None:
        assert self._capture_until is not None and self._pending_capture is not None
        self._last = self._pending_capture
        if self.record_truth:
            self.truth.append(self._last.copy())
        self._print(self._after_capture, self._capture_until)
        self._capture_until = None
        self._pending_capture = None
        self.state = DeviceState.IDLE

    def _render(self, p_ticks: int, n_ticks: int) -> np.ndarray:
        """One capture: N_SAMPLES 10-bit offset-binary codes along the fixed line."""
        gain_db = dac_gain_db(self._dac_code)
        tr = self.transducer
        self._synth.prepare(Acquisition(
            sample_rate_hz=SAMPLE_RATE_HZ, n_samples=N_SAMPLES, positions=[0.0],
            sweep_kind="fixed", pulse_freq_hz=tr.center_freq_hz,
            pulse_cycles=tr.reference_cycles, tgc_db=gain_db, prf_hz=10.0))
        index = self._n_captures
        self._n_captures += 1
        # pulser jitter and moving targets of capture k depend on (seed, k) only, like its noise
        echo = self._synth.frame(index=index)[0]
        analog = excite(echo, pulse_edges(p_ticks, n_ticks, self.variant), SAMPLE_RATE_HZ)
        rng = np.random.default_rng([self.seed, 5, index])
        analog += (rng.standard_normal(N_SAMPLES) * float(self.adc.noise_v_rms(gain_db))
                   ).astype(np.float32)
        # digitize rounds and clips to the 10-bit range: 0..1023 around 512
        return self.adc.digitize(analog, SampleFormat.U16_OB).astype(np.uint16)


def _split_acq(reply: bytes) -> tuple[bytes, bytes]:
    """``format_acq``'s reply as (its first line, the lines printed after the capture)."""
    cut = reply.index(EOL) + len(EOL)
    return reply[:cut], reply[cut:]


def _variant(options: SimOptions) -> ShellVariant:
    """The shell generation ``options.variant`` names ("" = stock)."""
    name = getattr(options, "variant", "") or STOCK.name
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown pic0rick variant {name!r}; choose one of "
                         f"{', '.join(VARIANTS)}") from None


def validate_options(options: SimOptions) -> None:
    """Fail early, with the choices, on a bad variant or phantom name."""
    _variant(options)
    load_phantom(options.phantom)


def create_board(options: SimOptions) -> Board:
    """A pic0rick twin for the simulator's options (phantom, seed, variant, ground truth)."""
    return Pic0rickTwin(options.phantom, seed=options.seed, variant=_variant(options),
                        record_truth=options.record_truth)
