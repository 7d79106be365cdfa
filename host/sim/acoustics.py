"""Echo physics: transducer, pulse, beam, attenuation, and the fast frame synthesizer.

Model in one paragraph (details and formulas in ``docs/sim.md``, "Physics"): every scatterer
returns a Gaussian-modulated pulse ``w·g(t−τ)·cos(Φ(t)−Φ(τ))``. ``g`` is the Gaussian envelope of
the echo spectrum (transducer × burst), ``τ`` the round trip through a Gaussian beam with a
virtual source at the focus, ``w`` the reflectivity × two-way beam profile × focal gain ×
frequency-dependent attenuation. ``Φ`` is the carrier phase, whose local frequency falls with
depth exactly as attenuation downshifts a Gaussian spectrum. Because that downshift changes
slowly, all static scatterers render with one convolution: complex weights ``w·e^{−jΦ(τ)}`` are
spread onto a (line, sample) grid by linear interpolation (``np.bincount``), convolved with ``g``
by one FFT along samples, and remodulated with ``e^{jΦ(t)}``.

:class:`EchoSynth` does that once per :class:`Acquisition` (:meth:`EchoSynth.prepare`) and then
produces frames cheaply: cached noise-free RF × TGC + pooled noise + moving reflectors + blood
flowing in vessels (:class:`~sonobridge.sim.phantom.Vessel`), whose scatterers are placed at each
firing's time and rendered per frame with the same spread-and-convolve scheme, restricted to
the rows and samples the vessels reach.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from sonobridge.protocol import SweepKind

from .adc import Adc, NoisePool
from .phantom import Phantom, Vessel

#: −6 dB full width of a Gaussian in units of its sigma (2·sqrt(2·ln 2))
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: −6 dB full width of the sinc main lobe of an N-cycle tone burst, times N / f
BURST_FWHM = 1.2067
_NP_PER_DB = math.log(10.0) / 20.0
#: two-way beam amplitude below which a scatterer is skipped for a line (−60 dB)
_BEAM_FLOOR = 1e-3
_PAIRS_PER_CHUNK = 1_500_000
#: flowing blood is rendered down to a two-way beam amplitude of −40 dB (1.29·W off axis):
#: blood is weak, and the per-firing rendering cost grows with the beam's reach
_FLOW_BEAM_FLOOR = 1e-2
_FLOW_BEAM_REACH = 1.3
_FLOW_GROUP = 32


@dataclass(frozen=True)
class Pulse:
    """Gaussian echo spectrum: centre ``center_freq_hz`` and standard deviation ``sigma_hz``."""

    center_freq_hz: float
    sigma_hz: float

    @property
    def fractional_bandwidth(self) -> float:
        """−6 dB bandwidth divided by the centre frequency."""
        return FWHM_PER_SIGMA * self.sigma_hz / self.center_freq_hz

    @property
    def sigma_t_s(self) -> float:
        """Standard deviation of the Gaussian envelope in seconds (1 / (2π·sigma_hz))."""
        return 1.0 / (2.0 * math.pi * self.sigma_hz)

    @property
    def envelope_fwhm_s(self) -> float:
        """−6 dB duration of the echo envelope in seconds."""
        return FWHM_PER_SIGMA * self.sigma_t_s


def burst_sigma_hz(freq_hz: float, cycles: float) -> float:
    """Sigma of the Gaussian matched to the −6 dB main lobe of an N-cycle tone burst."""
    return BURST_FWHM * freq_hz / cycles / FWHM_PER_SIGMA


@dataclass(frozen=True)
class Transducer:
    """A focused single-element transducer (defaults: a 5 MHz hobby probe, 10 mm, F/3).

    ``fractional_bandwidth`` is the −6 dB two-way (pulse-echo) bandwidth as a datasheet quotes
    it: measured with the reference burst (``reference_cycles`` at the centre frequency).
    ``sensitivity_v`` is the peak echo at the ADC input (0 dB TGC) of a unit point target at the
    focus in a loss-free medium.
    """

    center_freq_hz: float = 5e6
    fractional_bandwidth: float = 0.6
    reference_cycles: float = 2.0
    aperture_m: float = 0.010
    focus_m: float = 0.030
    sensitivity_v: float = 1.0
    focal_gain: bool = True

    def __post_init__(self) -> None:
        for name in ("center_freq_hz", "fractional_bandwidth", "reference_cycles",
                     "aperture_m", "focus_m", "sensitivity_v"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Transducer.{name} must be > 0, got {getattr(self, name)}")

    def pulse(self, pulse_freq_hz: float | None = None, pulse_cycles: float | None = None
              ) -> Pulse:
        """The echo spectrum for a burst: transducer response × burst spectrum (Gaussians).

        The transducer's own response is what remains of the quoted pulse-echo spectrum after
        dividing out the reference burst; a sharper inverse is clamped to a flat response.
        """
        f_p = self.center_freq_hz if pulse_freq_hz is None else float(pulse_freq_hz)
        n = self.reference_cycles if pulse_cycles is None else float(pulse_cycles)
        if f_p <= 0 or n <= 0:
            raise ValueError(f"pulse frequency and cycles must be > 0, got {f_p}, {n}")
        sigma_ref = self.fractional_bandwidth * self.center_freq_hz / FWHM_PER_SIGMA
        p_h = max(sigma_ref**-2 - burst_sigma_hz(self.center_freq_hz,
                                                 self.reference_cycles) ** -2, 0.0)
        p_b = burst_sigma_hz(f_p, n) ** -2
        center = (p_h * self.center_freq_hz + p_b * f_p) / (p_h + p_b)
        return Pulse(center, (p_h + p_b) ** -0.5)

    def wavelength_m(self, speed_of_sound_m_s: float = 1540.0) -> float:
        """Wavelength at the centre frequency."""
        return speed_of_sound_m_s / self.center_freq_hz

    @property
    def f_number(self) -> float:
        """Focal length over aperture."""
        return self.focus_m / self.aperture_m

    def depth_of_field_m(self, speed_of_sound_m_s: float = 1540.0) -> float:
        """−6 dB depth of field around the focus, 7·λ·F#²."""
        return 7.0 * self.wavelength_m(speed_of_sound_m_s) * self.f_number**2

    def beam_width_m(self, depth_m: np.ndarray | float, speed_of_sound_m_s: float = 1540.0
                     ) -> np.ndarray:
        """Two-way −6 dB lateral beam width: λ·F# at the focus, hyperbolic growth away from it.

        ``W(z) = λF#·sqrt(1 + ((z − focus)/z_dof)²)`` with ``z_dof = 3.5·λ·F#²`` (half the
        classic −6 dB depth of field 7·λ·F#²).
        """
        w_f = self.wavelength_m(speed_of_sound_m_s) * self.f_number
        z_dof = self.depth_of_field_m(speed_of_sound_m_s) / 2.0
        z = np.asarray(depth_m, dtype=np.float64)
        return w_f * np.sqrt(1.0 + ((z - self.focus_m) / z_dof) ** 2)

    def resolution_cell_m(self, speed_of_sound_m_s: float = 1540.0,
                          pulse: Pulse | None = None) -> tuple[float, float]:
        """(axial, lateral) −6 dB sizes at the focus for ``pulse`` (default: reference burst)."""
        pulse = self.pulse() if pulse is None else pulse
        axial = speed_of_sound_m_s * pulse.envelope_fwhm_s / 2.0
        return axial, float(self.beam_width_m(self.focus_m, speed_of_sound_m_s))


@dataclass(frozen=True, eq=False)
class Acquisition:
    """What one sweep acquires; the board builds it from CONFIGURE.

    ``positions`` ``(n_lines,)``: beam angle in radians (sector), lateral offset in metres
    (linear) or zeros (fixed); any order, repeats allowed (ensembles). ``tgc_db`` is the
    per-sample gain ``(n_samples,)`` in dB (scalar = constant, None = 0 dB); see
    :func:`~sonobridge.sim.adc.tgc_curve_db`. Sample ``n`` is taken at ``start_delay_s + n /
    sample_rate_hz`` after the line's transmit. ``prf_hz`` is the line firing rate.
    """

    sample_rate_hz: float = 40e6
    n_samples: int = 4096
    positions: np.ndarray | Sequence[float] = field(
        default_factory=lambda: np.radians(np.linspace(-30.0, 30.0, 128)))
    sweep_kind: SweepKind | int | str = SweepKind.SECTOR
    start_delay_s: float = 0.0
    pulse_freq_hz: float = 5e6
    pulse_cycles: float = 2
    tgc_db: np.ndarray | float | None = None
    prf_hz: float = 5000.0

    def __post_init__(self) -> None:
        kind = self.sweep_kind
        kind = SweepKind[kind.upper()] if isinstance(kind, str) else SweepKind(kind)
        pos = np.array(self.positions, dtype=np.float64).reshape(-1)
        if pos.size == 0 or not np.all(np.isfinite(pos)):
            raise ValueError("Acquisition.positions must be a non-empty array of finite values")
        if kind == SweepKind.SECTOR and np.any(np.abs(pos) >= math.pi / 2):
            raise ValueError("sector positions are angles in radians within ±π/2")
        if self.n_samples < 1 or self.sample_rate_hz <= 0 or self.prf_hz <= 0:
            raise ValueError("n_samples, sample_rate_hz and prf_hz must be positive")
        if self.start_delay_s < 0:
            raise ValueError(f"start_delay_s must be >= 0, got {self.start_delay_s}")
        tgc = np.zeros(self.n_samples) if self.tgc_db is None else self.tgc_db
        tgc = np.broadcast_to(np.asarray(tgc, dtype=np.float64), (self.n_samples,)).copy()
        pos.flags.writeable = False
        tgc.flags.writeable = False
        object.__setattr__(self, "sweep_kind", kind)
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "tgc_db", tgc)

    @property
    def n_lines(self) -> int:
        """Number of lines (firings) in one frame."""
        return int(self.positions.size)

    @property
    def time_s(self) -> np.ndarray:
        """Round-trip time of each sample after transmit, ``(n_samples,)``."""
        return self.start_delay_s + np.arange(self.n_samples) / self.sample_rate_hz

    def line_times_s(self, t0_s: float = 0.0) -> np.ndarray:
        """Firing time of each line when the frame starts at ``t0_s``: ``t0 + k / prf``."""
        return t0_s + np.arange(self.n_lines) / self.prf_hz

    def key(self) -> tuple:
        """A hashable identity for caching the precomputed RF."""
        return (float(self.sample_rate_hz), int(self.n_samples), int(self.sweep_kind),
                float(self.start_delay_s), float(self.pulse_freq_hz), float(self.pulse_cycles),
                self.positions.tobytes(), self.tgc_db.tobytes())


class _Propagation:
    """Carrier phase Φ(τ) and attenuation amplitude along the round trip τ (seconds)."""

    def __init__(self, pulse: Pulse, alpha_np_m_hz: float, c: float) -> None:
        self.f0 = pulse.center_freq_hz
        self.alpha_c = alpha_np_m_hz * c
        # Gaussian spectrum × e^{−βf}: same sigma, centre − β·σ²; β = α·c·τ (two-way)
        self.kappa = self.alpha_c * pulse.sigma_hz**2
        self.f_min = 0.3 * self.f0  # the Gaussian picture fails long before the carrier hits 0
        self.tau_c = (self.f0 - self.f_min) / self.kappa if self.kappa > 0 else math.inf

    def phase(self, tau: np.ndarray) -> np.ndarray:
        """Φ(τ) = 2π ∫ f_local dτ (radians, float64)."""
        tau = np.asarray(tau, dtype=np.float64)
        t1 = np.minimum(tau, self.tau_c)
        beyond = np.maximum(tau - self.tau_c, 0.0) if math.isfinite(self.tau_c) else 0.0
        return 2.0 * np.pi * (self.f0 * t1 - 0.5 * self.kappa * t1 * t1 + self.f_min * beyond)

    def amplitude(self, phase: np.ndarray) -> np.ndarray:
        """Two-way attenuation: d ln A/dτ = −α·c·f_local, i.e. A = exp(−α·c·Φ/2π)."""
        return np.exp(-self.alpha_c / (2.0 * np.pi) * phase)

    def local_freq_hz(self, tau: np.ndarray | float) -> np.ndarray:
        """Centre frequency of an echo from round trip ``tau`` (downshifted by attenuation)."""
        return np.maximum(self.f0 - self.kappa * np.asarray(tau, dtype=np.float64), self.f_min)


@dataclass
class _Prepared:
    acq: Acquisition
    pulse: Pulse
    prop: _Propagation
    rf_clean: np.ndarray   # (n_lines, n_samples) float32 volts, no TGC, no noise, no movers
    clean_gained: np.ndarray
    gain_lin: np.ndarray   # (n_samples,) float32
    phase_n: np.ndarray    # Φ at each sample time, float64
    pool: NoisePool
    noise_buf: np.ndarray
    #: FFT of the pulse envelope kernel per FFT length, for the per-frame flow rendering
    flow_kernels: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class _Flow:
    """Blood scatterers of every vessel as flat per-scatterer arrays (float64, ``(N,)``).

    A scatterer travels along its streamline: ``ξ(t) = (xi0 + speed·t) mod length`` from the
    upstream end, at ``(bx, bz) + ξ·(ux, uz)``. Leaving the segment downstream it re-enters
    upstream (periodic wrap), with a freshly drawn echo sign on each pass (``pass_sign``), so
    the flow is stationary and does not repeat its speckle pattern.
    """

    xi0: np.ndarray
    speed: np.ndarray
    length: np.ndarray
    bx: np.ndarray
    bz: np.ndarray
    ux: np.ndarray
    uz: np.ndarray
    amp: np.ndarray
    sign_rate: np.ndarray   # float32 rad per pass, for the echo sign of each pass
    sign_phase: np.ndarray  # float32 rad

    @property
    def max_speed(self) -> float:
        """Fastest scatterer, m/s."""
        return float(self.speed.max()) if self.speed.size else 0.0

    def positions(self, t_s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(x, z) of every scatterer at time ``t_s`` (scalar, or broadcastable with ``(N,)``)."""
        xi = self.xi0 + self.speed * t_s
        xi -= np.floor(xi / self.length) * self.length
        return self.bx + xi * self.ux, self.bz + xi * self.uz

    def pass_sign(self, idx: np.ndarray, n_pass: np.ndarray) -> np.ndarray:
        """Echo sign (±1, float32) of scatterers ``idx`` ``(P,)`` on passes ``n_pass`` ``(P, E)``.

        ``sign(sin(k·ω + φ))`` with a random rate ω and phase φ per scatterer: a fresh sign on
        every pass k, independent between scatterers, computed without any state.
        """
        ang = (n_pass.astype(np.float32) * self.sign_rate[idx, None]
               + self.sign_phase[idx, None])
        return np.copysign(np.float32(1.0), np.sin(ang))


class EchoSynth:
    """Renders frames of a phantom seen by a transducer, for any :class:`Acquisition`.

    Scatterer positions and amplitudes are drawn once from ``seed``; the same seed and the same
    sequence of calls give bit-identical frames. ``line_jitter`` is the RMS relative amplitude
    jitter of each firing (pulser variation), fresh every frame.
    """

    def __init__(self, phantom: Phantom, transducer: Transducer | None = None,
                 adc: Adc | None = None, *, seed: int = 0, line_jitter: float = 0.003,
                 cache_size: int = 4) -> None:
        self.phantom = phantom
        self.transducer = transducer or Transducer()
        self.adc = adc or Adc()
        self.seed = int(seed)
        self.line_jitter = float(line_jitter)
        self.cache_size = max(1, int(cache_size))
        self._cache: OrderedDict[tuple, _Prepared] = OrderedDict()
        self._cur: _Prepared | None = None
        self._rng = np.random.default_rng([self.seed, 3])
        c = phantom.speed_of_sound_m_s
        self.alpha_np_m_hz = phantom.attenuation_db_cm_mhz * _NP_PER_DB * 100.0 / 1e6
        ref = self.transducer.pulse()
        self._sigma_r = c * ref.sigma_t_s / 2.0
        self._sigma_d_focus = float(self.transducer.beam_width_m(self.transducer.focus_m, c)
                                    ) / FWHM_PER_SIGMA
        self.scatterers = self._make_scatterers()
        self.flow = self._make_flow()

    # -- scatterers ------------------------------------------------------------------------------

    def density_per_m2(self, per_cell: float | None, per_mm2: float | None) -> float:
        """Scatterers per m² for a density given per resolution cell or per mm²."""
        if per_mm2 is not None:
            return per_mm2 * 1e6
        axial, lateral = self.transducer.resolution_cell_m(self.phantom.speed_of_sound_m_s)
        return float(per_cell) / (axial * lateral)

    def _transmission(self, z: np.ndarray) -> np.ndarray:
        t = np.ones_like(z)
        for layer in self.phantom.layers:
            t[z > layer.z_m] *= 1.0 - layer.reflectivity**2
        return t

    def _make_scatterers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Static scatterers (x_m, z_m, amplitude) as float64 arrays; movers are separate."""
        ph = self.phantom
        rng = np.random.default_rng([self.seed, 0])
        xs, zs, amps = [], [], []
        # speckle amplitude → per-scatterer sigma so the region's RMS echo = amplitude × a unit
        # point's peak: E|s|² = n·σ²·π·σ_r·σ_d (Gaussian pulse and beam), RF power = E|s|²/2
        cell_factor = math.pi * self._sigma_r * self._sigma_d_focus

        def boxes() -> list[tuple[tuple[float, float], tuple[float, float], float, float]]:
            out = [(s.x_m, s.z_m, s.amplitude, self.density_per_m2(s.density_per_cell,
                                                                    s.density_per_mm2))
                   for s in ph.speckle]
            layers = ph.layers
            for i, la in enumerate(layers):
                if la.speckle_amplitude > 0:
                    z_end = layers[i + 1].z_m if i + 1 < len(layers) else ph.z_extent_m[1]
                    if z_end > la.z_m:
                        out.append((ph.x_extent_m, (la.z_m, z_end), la.speckle_amplitude,
                                    self.density_per_m2(la.speckle_density_per_cell,
                                                        la.speckle_density_per_mm2)))
            return out

        spk_x, spk_z, spk_a = [], [], []
        for (x0, x1), (z0, z1), amp, n_m2 in boxes():
            n = int(rng.poisson(n_m2 * (x1 - x0) * (z1 - z0)))
            sigma_a = amp * math.sqrt(2.0 / (n_m2 * cell_factor))
            spk_x.append(rng.uniform(x0, x1, n))
            spk_z.append(rng.uniform(z0, z1, n))
            # equal magnitudes: random positions already give random phases, and unequal
            # magnitudes would need more scatterers per cell to reach Rayleigh statistics
            spk_a.append(sigma_a * rng.choice(np.array([-1.0, 1.0]), n))
        nominal = []  # depth used for the transmission loss (an interface's own, unjittered)
        if spk_x:
            sx, sz, sa = np.concatenate(spk_x), np.concatenate(spk_z), np.concatenate(spk_a)
            for inc in ph.inclusions:
                inside = (sx - inc.x_m) ** 2 + (sz - inc.z_m) ** 2 < inc.radius_m**2
                sa[inside] *= inc.contrast
            for vessel in ph.vessels:  # the lumen holds blood, not tissue
                sa[vessel.inside(sx, sz)] = 0.0
            keep = sa != 0
            xs.append(sx[keep])
            zs.append(sz[keep])
            amps.append(sa[keep])
            nominal.append(sz[keep])
        if ph.points:
            xs.append(np.array([p.x_m for p in ph.points]))
            zs.append(np.array([p.z_m for p in ph.points]))
            amps.append(np.array([p.amplitude for p in ph.points]))
            nominal.append(zs[-1])
        # an interface is a dense coherent line of points (λ/8 apart), so normal incidence sums
        # to the reflectivity and oblique incidence cancels (specular); its diffuse part is a
        # band of random scatterers one axial resolution cell thick
        dx = self.transducer.wavelength_m(ph.speed_of_sound_m_s) / 8.0
        axial, _ = self.transducer.resolution_cell_m(ph.speed_of_sound_m_s)
        for la in ph.layers:
            if la.reflectivity == 0:
                continue
            lx = np.arange(ph.x_extent_m[0], ph.x_extent_m[1], dx)
            coherent = la.reflectivity * math.sqrt(1.0 - la.diffuse**2)
            xs.append(lx)
            zs.append(np.full(lx.size, la.z_m))
            amps.append(np.full(lx.size, coherent * dx
                                / (math.sqrt(2 * math.pi) * self._sigma_d_focus)))
            nominal.append(zs[-1])
            if la.diffuse > 0:
                n_m2 = self.density_per_m2(10.0, None)
                width = ph.x_extent_m[1] - ph.x_extent_m[0]
                n = int(rng.poisson(n_m2 * width * axial))
                sigma_a = la.diffuse * la.reflectivity * math.sqrt(2.0 / (n_m2 * cell_factor))
                xs.append(rng.uniform(*ph.x_extent_m, n))
                zs.append(la.z_m + axial * (rng.random(n) - 0.5))
                amps.append(sigma_a * rng.standard_normal(n))
                nominal.append(np.full(n, la.z_m))
        if not xs:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        a = np.concatenate(amps) * self._transmission(np.concatenate(nominal))
        return np.concatenate(xs), np.concatenate(zs), a

    def _make_flow(self) -> _Flow | None:
        """Blood scatterers of the phantom's vessels (None without vessels)."""
        vessels: tuple[Vessel, ...] = self.phantom.vessels
        if not vessels:
            return None
        rng = np.random.default_rng([self.seed, 4])
        cell_factor = math.pi * self._sigma_r * self._sigma_d_focus
        cols: dict[str, list[np.ndarray]] = {k: [] for k in
                                             ("xi0", "speed", "length", "bx", "bz", "ux", "uz",
                                              "amp")}
        for ves in vessels:
            n_m2 = self.density_per_m2(ves.density_per_cell, ves.density_per_mm2)
            n = int(rng.poisson(n_m2 * ves.length_m * 2.0 * ves.radius_m))
            s = rng.uniform(-ves.radius_m, ves.radius_m, n)
            (ux, uz), (nx, nz) = ves.direction, ves.normal
            start_x = ves.x_m - 0.5 * ves.length_m * ux
            start_z = ves.z_m - 0.5 * ves.length_m * uz
            cols["xi0"].append(rng.uniform(0.0, ves.length_m, n))
            cols["speed"].append(ves.speed_m_s(s))
            cols["length"].append(np.full(n, ves.length_m))
            cols["bx"].append(start_x + s * nx)
            cols["bz"].append(start_z + s * nz)
            cols["ux"].append(np.full(n, ux))
            cols["uz"].append(np.full(n, uz))
            cols["amp"].append(np.full(n, ves.amplitude * math.sqrt(2.0 / (n_m2 * cell_factor))))
        arrays = {k: np.concatenate(v) for k, v in cols.items()}
        n = arrays["xi0"].size
        return _Flow(**arrays,
                     sign_rate=rng.uniform(1.0, np.pi - 1.0, n).astype(np.float32),
                     sign_phase=rng.uniform(-np.pi, np.pi, n).astype(np.float32))

    def blood_positions_m(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Positions (x, z) in metres of every blood scatterer at time ``t_s`` (ground truth)."""
        if self.flow is None:
            return np.zeros(0), np.zeros(0)
        return self.flow.positions(float(t_s))

    # -- geometry --------------------------------------------------------------------------------

    def _beam(self, r_al: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two-way beam amplitude (profile × focal gain) and round trip τ for pairs."""
        tr = self.transducer
        c = self.phantom.speed_of_sound_m_s
        w = tr.beam_width_m(r_al, c)
        amp = np.exp(-4.0 * math.log(2.0) * (d / w) ** 2)
        if tr.focal_gain:
            amp *= self._sigma_d_focus * FWHM_PER_SIGMA / w
        # Gaussian-beam wavefront: plane at the focus, curvature Δz/(Δz² + z_dof²) away from it
        # (→ a spherical wave from the focus far from it); paraxial, as d ≤ 1.6·W
        dz = r_al - tr.focus_m
        z_dof = tr.depth_of_field_m(c) / 2.0
        tau = 2.0 * (r_al + 0.5 * d * d * dz / (dz * dz + z_dof * z_dof)) / c
        return amp, tau

    def _line_geometry(self, acq: Acquisition, x: np.ndarray, z: np.ndarray, pos: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Axial distance along each beam and lateral offset from it."""
        if acq.sweep_kind == SweepKind.SECTOR:
            s, co = np.sin(pos), np.cos(pos)
            return x * s + z * co, x * co - z * s
        return z, x - pos

    def _pair_geometry(self, acq: Acquisition, x: np.ndarray, z: np.ndarray, line: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Like _line_geometry for (scatterer, line) pairs, with per-line trig looked up."""
        if acq.sweep_kind == SweepKind.SECTOR:
            s, co = np.sin(acq.positions)[line], np.cos(acq.positions)[line]
            return x * s + z * co, x * co - z * s
        return z, x - acq.positions[line]

    # -- precompute ------------------------------------------------------------------------------

    def prepare(self, acq: Acquisition) -> None:
        """Precompute the noise-free RF and noise pool for ``acq`` (cached; cheap when cached)."""
        key = acq.key()
        if key in self._cache:
            self._cache.move_to_end(key)
            self._cur = self._cache[key]
            return
        prep = self._prepare(acq, key)
        self._cache[key] = prep
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        self._cur = prep

    def _prepare(self, acq: Acquisition, key: tuple) -> _Prepared:
        pulse = self.transducer.pulse(acq.pulse_freq_hz, acq.pulse_cycles)
        prop = _Propagation(pulse, self.alpha_np_m_hz, self.phantom.speed_of_sound_m_s)
        t_n = acq.time_s
        phase_n = prop.phase(t_n)
        rf = self._render_static(acq, pulse, prop, phase_n)
        gain_lin = (10.0 ** (acq.tgc_db / 20.0)).astype(np.float32)
        std = self.adc.noise_v_rms(acq.tgc_db)
        digest = zlib.crc32(repr(key[:6]).encode() + key[6] + key[7])
        rng = np.random.default_rng([self.seed, 1, digest])
        n_rows = max(2 * acq.n_lines, -(-(1 << 22) // acq.n_samples))
        n_rows = min(n_rows, max(2 * acq.n_lines, (1 << 24) // acq.n_samples))
        pool = NoisePool(std, n_rows, rng)
        return _Prepared(acq, pulse, prop, rf, rf * gain_lin, gain_lin, phase_n, pool,
                         np.empty((acq.n_lines, acq.n_samples), np.float32))

    def _render_static(self, acq: Acquisition, pulse: Pulse, prop: _Propagation,
                       phase_n: np.ndarray) -> np.ndarray:
        n_lines, n_s = acq.n_lines, acq.n_samples
        fs = acq.sample_rate_hz
        x, z, a = self.scatterers
        if x.size == 0:
            return np.zeros((n_lines, n_s), np.float32)
        # render on a finer grid when the envelope has fewer than ~3 samples per sigma, so the
        # linear interpolation of impulses does not smear it (decimated rates)
        os_ = max(1, math.ceil(3.0 / (pulse.sigma_t_s * fs)))
        dt = 1.0 / (fs * os_)
        pad = math.ceil(5.0 * pulse.sigma_t_s / dt) + 1
        n_grid = (n_s - 1) * os_ + 1 + 2 * pad
        nfft = scipy.fft.next_fast_len(n_grid + pad)
        t_lo = acq.start_delay_s - pad * dt
        c = self.phantom.speed_of_sound_m_s

        order = np.argsort(acq.positions, kind="stable")
        ps = acq.positions[order]
        r = np.hypot(x, z)
        dmax = 1.6 * self.transducer.beam_width_m(r, c)  # 1.6·W: two-way amplitude −60 dB
        r_end = c * (acq.start_delay_s + (n_s - 1) / fs + 6 * pulse.sigma_t_s) / 2
        near = (r * r - dmax * dmax < r_end * r_end) | (r < self.transducer.focus_m)
        if acq.sweep_kind == SweepKind.SECTOR:
            psi = np.arctan2(x, z)
            half = np.where(r > dmax, np.arcsin(np.minimum(dmax / np.maximum(r, 1e-12), 1.0)),
                            np.pi)
            lo = np.searchsorted(ps, psi - half, "left")
            hi = np.searchsorted(ps, psi + half, "right")
        else:
            lo = np.searchsorted(ps, x - dmax, "left")
            hi = np.searchsorted(ps, x + dmax, "right")
        counts = np.where(near, hi - lo, 0)
        sel = np.flatnonzero(counts)
        lo, counts = lo[sel], counts[sel]
        x, z, a = x[sel], z[sel], a[sel]

        acc_re = np.zeros(n_lines * nfft)
        acc_im = np.zeros(n_lines * nfft)
        csum = np.cumsum(counts)
        starts = np.searchsorted(csum, np.arange(0, int(csum[-1]) if csum.size else 0,
                                                 _PAIRS_PER_CHUNK), "right")
        bounds = [*starts.tolist(), sel.size]
        for b0, b1 in itertools.pairwise(bounds):
            if b1 <= b0:
                continue
            cnt = counts[b0:b1]
            total = int(cnt.sum())
            si = np.repeat(np.arange(b0, b1), cnt)
            first = np.repeat(np.cumsum(cnt) - cnt, cnt)
            line = order[np.repeat(lo[b0:b1], cnt) + (np.arange(total) - first)]
            r_al, d = self._pair_geometry(acq, x[si], z[si], line)
            beam, tau = self._beam(r_al, d)
            pos = (tau - t_lo) / dt
            ok = (beam > _BEAM_FLOOR) & (r_al > 0) & (pos >= 0) & (pos < n_grid - 1)
            line, pos, tau = line[ok], pos[ok], tau[ok]
            phase = prop.phase(tau)
            w = a[si[ok]] * beam[ok] * prop.amplitude(phase)
            i0 = np.floor(pos).astype(np.int64)
            frac = pos - i0
            flat = line * nfft + i0
            idx = np.concatenate((flat, flat + 1))
            wr, wi = w * np.cos(phase), -w * np.sin(phase)
            acc_re += np.bincount(idx, np.concatenate((wr * (1 - frac), wr * frac)),
                                  minlength=acc_re.size)
            acc_im += np.bincount(idx, np.concatenate((wi * (1 - frac), wi * frac)),
                                  minlength=acc_im.size)
        grid = (acc_re + 1j * acc_im).astype(np.complex64).reshape(n_lines, nfft)
        del acc_re, acc_im
        m = np.arange(-pad, pad + 1)
        kern = np.zeros(nfft)
        kern[m % nfft] = np.exp(-0.5 * (m * dt / pulse.sigma_t_s) ** 2)
        g = scipy.fft.fft(kern).real.astype(np.float32)
        spec = scipy.fft.fft(grid, axis=1, overwrite_x=True)
        spec *= g
        y = scipy.fft.ifft(spec, axis=1, overwrite_x=True)
        y = y[:, pad: pad + (n_s - 1) * os_ + 1: os_]
        carrier = np.exp(1j * phase_n).astype(np.complex64)
        rf = (y.real * carrier.real - y.imag * carrier.imag) * np.float32(
            self.transducer.sensitivity_v)
        return np.ascontiguousarray(rf, dtype=np.float32)

    # -- per frame -------------------------------------------------------------------------------

    @property
    def acquisition(self) -> Acquisition:
        """The acquisition of the last :meth:`prepare`."""
        return self._prepared().acq

    @property
    def pulse(self) -> Pulse:
        """The echo pulse of the prepared acquisition."""
        return self._prepared().pulse

    @property
    def clean_rf(self) -> np.ndarray:
        """Noise-free RF in volts before TGC, static scatterers only, ``(n_lines, n_samples)``."""
        return self._prepared().rf_clean

    @property
    def depth_m(self) -> np.ndarray:
        """Depth on axis of each sample, ``c·t/2``, ``(n_samples,)``."""
        return self._prepared().acq.time_s * self.phantom.speed_of_sound_m_s / 2.0

    def local_freq_hz(self, depth_m: np.ndarray | float) -> np.ndarray:
        """Echo centre frequency from ``depth_m`` on axis (attenuation downshift included)."""
        return self._prepared().prop.local_freq_hz(
            2.0 * np.asarray(depth_m) / self.phantom.speed_of_sound_m_s)

    def _prepared(self) -> _Prepared:
        if self._cur is None:
            raise RuntimeError("call EchoSynth.prepare(acquisition) before rendering frames")
        return self._cur

    def frame(self, t0_s: float = 0.0, *, line_times_s: np.ndarray | None = None,
              index: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """Analog volts at the ADC input, float32 ``(n_lines, n_samples)``.

        Cached RF × TGC + thermal and ADC noise + per-line amplitude jitter + moving reflectors
        at each line's firing time (``line_times_s``, default ``t0_s + k / prf_hz``). With
        ``index`` the frame's randomness depends only on (seed, index), so frame k can be
        reproduced in any order; otherwise an internal stream advances per call.
        """
        p = self._prepared()
        acq = p.acq
        rng = self._rng if index is None else np.random.default_rng([self.seed, 2, index])
        if out is None:
            out = np.empty((acq.n_lines, acq.n_samples), np.float32)
        if self.line_jitter:
            jitter = (1.0 + self.line_jitter * rng.standard_normal(acq.n_lines)
                      ).astype(np.float32)
            np.multiply(p.clean_gained, jitter[:, None], out=out)
        else:
            jitter = None
            out[...] = p.clean_gained
        out += p.pool.draw(acq.n_lines, rng, out=p.noise_buf)
        if self.phantom.moving or self.flow is not None:
            times = acq.line_times_s(t0_s) if line_times_s is None else np.asarray(
                line_times_s, dtype=np.float64).reshape(acq.n_lines)
            if self.phantom.moving:
                self._add_moving(p, times, jitter, out)
            if self.flow is not None and self.flow.speed.size:
                self._add_flow(p, times, jitter, out)
        return out

    def _add_moving(self, p: _Prepared, times: np.ndarray, jitter: np.ndarray | None,
                    out: np.ndarray) -> None:
        acq, pulse = p.acq, p.pulse
        fs = acq.sample_rate_hz
        half = math.ceil(5.0 * pulse.sigma_t_s * fs) + 1
        offs = np.arange(-half, half + 1)
        flat = out.reshape(-1)
        lines = np.arange(acq.n_lines)
        for mv in self.phantom.moving:
            x, z = mv.position_m(times)
            r_al, d = self._line_geometry(acq, x, z, acq.positions)
            beam, tau = self._beam(r_al, d)
            phase_tau = p.prop.phase(tau)
            w = (mv.amplitude * self.transducer.sensitivity_v * beam
                 * p.prop.amplitude(phase_tau) * self._transmission(z))
            if jitter is not None:
                w = w * jitter
            n = np.rint((tau - acq.start_delay_s) * fs).astype(np.int64)[:, None] + offs
            valid = (n >= 0) & (n < acq.n_samples) & (r_al > 0)[:, None]
            nv = np.where(valid, n, 0)
            dt = acq.start_delay_s + nv / fs - tau[:, None]
            val = (w[:, None] * np.exp(-0.5 * (dt / pulse.sigma_t_s) ** 2)
                   * np.cos(p.phase_n[nv] - phase_tau[:, None]) * p.gain_lin[nv])
            np.add.at(flat, (lines[:, None] * acq.n_samples + nv)[valid],
                      val[valid].astype(np.float32))

    def _flow_candidates(self, p: _Prepared, times: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Blood scatterers that may cross each group of firings' beam.

        Consecutive firings along the same beam (an ensemble) form one group, tested once at
        its first firing with a margin of the distance the fastest blood travels during it; no
        Python loop over rows. Returns (scatterer, group) candidate pairs plus each group's
        first row and size.
        """
        flow = self.flow
        assert flow is not None
        acq, pulse = p.acq, p.pulse
        c = self.phantom.speed_of_sound_m_s
        pos = acq.positions
        n_rows = acq.n_lines
        new_run = np.ones(n_rows, dtype=bool)
        new_run[1:] = pos[1:] != pos[:-1]
        run_start = np.flatnonzero(new_run)
        # long runs (a fixed beam fired many times) are cut into groups of _FLOW_GROUP firings,
        # so the margin for motion during a group stays small
        in_run = np.arange(n_rows) - run_start[np.cumsum(new_run) - 1]
        starts = np.flatnonzero(in_run % _FLOW_GROUP == 0)
        sizes = np.diff(np.append(starts, n_rows))
        t_first = times[starts]
        t_span = np.maximum(np.maximum.reduceat(times, starts) - t_first,
                            t_first - np.minimum.reduceat(times, starts))
        margin = flow.max_speed * t_span + 1e-6
        r_lo = c * acq.start_delay_s / 2 - 6 * c * pulse.sigma_t_s
        r_hi = c * (acq.start_delay_s + (acq.n_samples - 1) / acq.sample_rate_hz
                    + 6 * pulse.sigma_t_s) / 2
        tr = self.transducer
        w_f = tr.wavelength_m(c) * tr.f_number
        z_dof = tr.depth_of_field_m(c) / 2.0
        n = flow.xi0.size
        chunk = max(1, 1_000_000 // max(n, 1))
        found_sc, found_grp = [], []
        for g0 in range(0, starts.size, chunk):
            g1 = min(starts.size, g0 + chunk)
            x, z = flow.positions(t_first[g0:g1, None])
            r_al, d = self._line_geometry(acq, x, z, pos[starts[g0:g1], None])
            m = margin[g0:g1, None]
            off = np.maximum(np.abs(d) - m, 0.0)
            near = ((r_al > r_lo - m) & (r_al < r_hi + m)
                    & (off * off < (_FLOW_BEAM_REACH * w_f) ** 2
                       * (1.0 + ((r_al - tr.focus_m) / z_dof) ** 2)))
            g, i = np.nonzero(near)
            found_sc.append(i)
            found_grp.append(g + g0)
        return np.concatenate(found_sc), np.concatenate(found_grp), starts, sizes

    def _add_flow(self, p: _Prepared, times: np.ndarray, jitter: np.ndarray | None,
                  out: np.ndarray) -> None:
        """Blood scatterers at each firing's time, spread onto a (row, sample) grid over the
        samples the vessels reach, convolved with the pulse by FFT and added after TGC.

        Pairs are laid out ``(candidate, firing within the group)`` so the per-scatterer
        quantities broadcast instead of being copied for every firing.
        """
        flow = self.flow
        assert flow is not None
        acq, pulse, prop, tr = p.acq, p.pulse, p.prop, self.transducer
        fs, n_s = acq.sample_rate_hz, acq.n_samples
        c = self.phantom.speed_of_sound_m_s
        sc, grp, starts, sizes = self._flow_candidates(p, times)
        if sc.size == 0:
            return
        e_max = int(sizes.max())
        k = np.arange(e_max)
        first = starts[grp][:, None]
        valid = k < sizes[grp][:, None]
        rows = np.where(valid, first + k, first)
        travel = flow.xi0[sc, None] + flow.speed[sc, None] * times[rows]
        length = flow.length[sc, None]
        n_pass = np.floor(travel / length)
        xi = (travel - n_pass * length).astype(np.float32)
        x = flow.bx[sc, None].astype(np.float32) + xi * flow.ux[sc, None].astype(np.float32)
        z = flow.bz[sc, None].astype(np.float32) + xi * flow.uz[sc, None].astype(np.float32)
        if acq.sweep_kind == SweepKind.SECTOR:
            beam_pos = acq.positions[starts[grp]][:, None]
            sn, cs = np.sin(beam_pos).astype(np.float32), np.cos(beam_pos).astype(np.float32)
            r_al, d = x * sn + z * cs, x * cs - z * sn
        else:
            r_al, d = z, x - acq.positions[starts[grp]][:, None].astype(np.float32)
        # the two-way Gaussian beam and wavefront of _beam, in float32 for speed
        w_f = tr.wavelength_m(c) * tr.f_number
        z_dof = tr.depth_of_field_m(c) / 2.0
        dz = r_al - np.float32(tr.focus_m)
        width = np.float32(w_f) * np.sqrt(1 + (dz * np.float32(1 / z_dof)) ** 2)
        beam = np.exp(np.float32(-4.0 * math.log(2.0)) * (d / width) ** 2)
        if tr.focal_gain:
            beam *= np.float32(self._sigma_d_focus * FWHM_PER_SIGMA) / width
        tau = np.float32(2.0 / c) * (r_al + 0.5 * d * d * dz / (dz * dz + np.float32(z_dof**2)))
        half = math.ceil(5.0 * pulse.sigma_t_s * fs) + 1
        n_f = (tau - np.float32(acq.start_delay_s)) * np.float32(fs)
        ok = valid & (beam > _FLOW_BEAM_FLOOR) & (r_al > 0) & (n_f > -half) & (
            n_f < n_s - 1 + half)
        if not ok.any():
            return
        # echo sign per pass: one per candidate, recomputed only where a group wraps around
        amp = flow.amp[sc].astype(np.float32)
        a = np.repeat((amp * flow.pass_sign(sc, n_pass[:, :1])[:, 0])[:, None], e_max, axis=1)
        wrapped = np.flatnonzero(np.any(n_pass != n_pass[:, :1], axis=1))
        if wrapped.size:
            a[wrapped] = amp[wrapped, None] * flow.pass_sign(sc[wrapped], n_pass[wrapped])
        a = a[ok]
        rows, z, beam, tau, n_f = rows[ok], z[ok], beam[ok], tau[ok], n_f[ok]
        # the samples the blood reaches, in blocks of 64 so few FFT lengths (and kernels) occur
        n_a = max(0, (math.floor(float(n_f.min())) - half) // 64 * 64)
        n_b = min(n_s, -(-(math.ceil(float(n_f.max())) + half + 1) // 64) * 64)
        if n_b <= n_a:
            return
        os_ = max(1, math.ceil(3.0 / (pulse.sigma_t_s * fs)))
        dt = 1.0 / (fs * os_)
        pad = math.ceil(5.0 * pulse.sigma_t_s / dt) + 1
        n_grid = (n_b - n_a - 1) * os_ + 1 + 2 * pad
        nfft = scipy.fft.next_fast_len(n_grid + pad)
        tau64 = tau.astype(np.float64)
        grid_pos = (tau64 - (acq.start_delay_s + n_a / fs - pad * dt)) / dt
        on_grid = (grid_pos >= 0) & (grid_pos < n_grid - 1)  # echoes reaching the window
        if not on_grid.all():
            a, rows, z, beam = a[on_grid], rows[on_grid], z[on_grid], beam[on_grid]
            tau64, grid_pos = tau64[on_grid], grid_pos[on_grid]
        grid_pos = grid_pos.astype(np.float32)
        phase = prop.phase(tau64)
        atten = prop.amplitude(phase).astype(np.float32)
        # reduce to (−π, π] in float64, then the trigonometry runs in float32
        phase = (phase - 2.0 * np.pi * np.round(phase / (2.0 * np.pi))).astype(np.float32)
        w = a * beam * atten
        if self.phantom.layers:
            w *= self._transmission(z.astype(np.float64)).astype(np.float32)
        i0 = grid_pos.astype(np.int64)  # grid_pos >= 0: truncation = floor
        frac = grid_pos - i0
        # compact row numbering: only the rows the blood reaches are gridded and transformed
        hit = np.flatnonzero(np.bincount(rows, minlength=acq.n_lines))
        lut = np.zeros(acq.n_lines, np.int64)
        lut[hit] = np.arange(hit.size)
        flat = lut[rows] * nfft + i0
        idx = np.concatenate((flat, flat + 1))
        wr, wi = w * np.cos(phase), w * -np.sin(phase)
        size = hit.size * nfft
        grid = np.empty((hit.size, nfft), np.complex64)
        grid.real = np.bincount(idx, np.concatenate((wr * (1 - frac), wr * frac)),
                                minlength=size).reshape(hit.size, nfft)
        grid.imag = np.bincount(idx, np.concatenate((wi * (1 - frac), wi * frac)),
                                minlength=size).reshape(hit.size, nfft)
        g = p.flow_kernels.get(nfft)
        if g is None:
            m = np.arange(-pad, pad + 1)
            kern = np.zeros(nfft)
            kern[m % nfft] = np.exp(-0.5 * (m * dt / pulse.sigma_t_s) ** 2)
            g = scipy.fft.fft(kern).real.astype(np.float32)
            p.flow_kernels[nfft] = g
        spec = scipy.fft.fft(grid, axis=1, overwrite_x=True)
        spec *= g
        y = scipy.fft.ifft(spec, axis=1, overwrite_x=True)
        y = y[:, pad: pad + (n_b - n_a - 1) * os_ + 1: os_]
        carrier = np.exp(1j * p.phase_n[n_a:n_b]).astype(np.complex64)
        scale = p.gain_lin[n_a:n_b] * np.float32(tr.sensitivity_v)
        rf = (y.real * carrier.real - y.imag * carrier.imag) * scale
        if jitter is not None:
            rf *= jitter[hit, None]
        out[hit, n_a:n_b] += rf

    def digitize(self, analog_v: np.ndarray, sample_format: int) -> np.ndarray:
        """Shortcut for ``self.adc.digitize`` (quantize, clip, wire dtype)."""
        return self.adc.digitize(analog_v, sample_format)
