"""Phantoms as data: what is in front of the transducer, read from TOML files users can write.

Coordinates are metres in the imaging plane: ``x`` lateral (positive toward the transducer's +x
side), ``z`` depth from the transducer face. The schema is documented in ``docs/sim.md``
("Phantoms"); builtin files live in ``host/sim/phantoms/``. A phantom is only a description:
:class:`~sonobridge.sim.acoustics.EchoSynth` turns it into scatterers for a given transducer.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

PHANTOMS_DIR = Path(__file__).with_name("phantoms")


class PhantomError(ValueError):
    """A phantom description that cannot be used; the message names the file, element and key."""


@dataclass(frozen=True)
class Point:
    """A point target (a wire seen end-on); ``amplitude`` is relative to a unit reflector."""

    x_m: float
    z_m: float
    amplitude: float = 1.0


@dataclass(frozen=True)
class Speckle:
    """Randomly placed scatterers filling a box; give exactly one of the two densities.

    ``amplitude`` is the RMS echo of the region relative to the peak echo of a unit point at the
    same place (at the transducer's focus), so 0.1 means speckle 20 dB below a wire.
    """

    x_m: tuple[float, float]
    z_m: tuple[float, float]
    amplitude: float
    density_per_cell: float | None = None
    density_per_mm2: float | None = None


@dataclass(frozen=True)
class Inclusion:
    """A disc that scales the speckle inside it by ``contrast`` (0 = anechoic cyst)."""

    x_m: float
    z_m: float
    radius_m: float
    contrast: float = 0.0
    kind: str = "cyst"


@dataclass(frozen=True)
class Layer:
    """A flat interface at depth ``z_m`` and the speckle from it down to the next interface.

    ``reflectivity`` is the echo at normal incidence relative to a unit point; everything
    deeper is weakened by the two-way transmission loss ``1 − reflectivity²``. A smooth
    interface is specular (seen only near normal incidence); ``diffuse`` (0..1) moves that
    fraction of the echo amplitude into a rough, speckle-like echo seen at any angle.
    """

    z_m: float
    reflectivity: float
    diffuse: float = 0.0
    speckle_amplitude: float = 0.0
    speckle_density_per_cell: float | None = None
    speckle_density_per_mm2: float | None = None


@dataclass(frozen=True)
class Moving:
    """A point reflector moving axially: ``z(t) = z_m + motion_amplitude_m·sin(2πft + φ)``."""

    x_m: float
    z_m: float
    amplitude: float
    motion_amplitude_m: float
    motion_freq_hz: float
    motion_phase_rad: float = 0.0

    def position_m(self, t_s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Lateral and axial position (metres) at times ``t_s`` (seconds, any shape)."""
        t = np.asarray(t_s, dtype=np.float64)
        z = self.z_m + self.motion_amplitude_m * np.sin(
            2 * np.pi * self.motion_freq_hz * t + self.motion_phase_rad)
        return np.full_like(z, self.x_m), z


VESSEL_PROFILES = ("parabolic", "plug")


@dataclass(frozen=True)
class Vessel:
    """A straight vessel segment with blood scatterers flowing along it (for Doppler).

    The lumen is the rectangle ``|u| <= length_m/2``, ``|s| <= radius_m`` around the centre
    (``x_m``, ``z_m``) in the imaging plane, where ``u`` runs along the flow direction
    ``(sin θ, −cos θ)`` and ``s`` across it (``θ = angle_deg``): 0° = flow straight toward the
    transducer (up, −z), 180° = straight away (down), ±90° = across a straight-down beam,
    positive angles tilt the flow toward +x. The speed on the streamline at ``s`` is
    ``peak_velocity_m_s`` (``profile = "plug"``) or ``peak_velocity_m_s·(1 − (s/R)²)``
    (``"parabolic"``, laminar). A beam looking along angle ψ (0 = straight down) sees the
    velocity toward the transducer ``speed·cos(θ + ψ)``, positive = toward (see
    :meth:`velocity_toward_transducer_m_s`). The lumen holds no tissue speckle, only blood:
    ``amplitude`` is the RMS echo of blood relative to a unit point (as for speckle), and the
    density is per resolution cell or per mm² (default 8 per cell).
    """

    x_m: float
    z_m: float
    radius_m: float
    length_m: float
    angle_deg: float
    peak_velocity_m_s: float
    profile: str = "parabolic"
    amplitude: float = 0.03
    density_per_cell: float | None = None
    density_per_mm2: float | None = None

    @property
    def direction(self) -> tuple[float, float]:
        """Unit vector (x, z) of the flow."""
        a = math.radians(self.angle_deg)
        return math.sin(a), -math.cos(a)

    @property
    def normal(self) -> tuple[float, float]:
        """Unit vector (x, z) across the vessel (the ``s`` axis)."""
        a = math.radians(self.angle_deg)
        return math.cos(a), math.sin(a)

    def local_coords(self, x_m: np.ndarray | float, z_m: np.ndarray | float
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Along-flow ``u`` and across ``s`` coordinates (metres) of points (x_m, z_m)."""
        dx = np.asarray(x_m, dtype=np.float64) - self.x_m
        dz = np.asarray(z_m, dtype=np.float64) - self.z_m
        (ux, uz), (nx, nz) = self.direction, self.normal
        return dx * ux + dz * uz, dx * nx + dz * nz

    def inside(self, x_m: np.ndarray | float, z_m: np.ndarray | float) -> np.ndarray:
        """True for points inside the lumen."""
        u, s = self.local_coords(x_m, z_m)
        return (np.abs(u) <= self.length_m / 2) & (np.abs(s) <= self.radius_m)

    def speed_m_s(self, s_m: np.ndarray | float) -> np.ndarray:
        """Flow speed on the streamline at cross coordinate ``s_m`` (0 outside the lumen)."""
        s = np.asarray(s_m, dtype=np.float64)
        shape = np.ones_like(s) if self.profile == "plug" else 1.0 - (s / self.radius_m) ** 2
        return np.where(np.abs(s) <= self.radius_m, self.peak_velocity_m_s * shape, 0.0)

    def velocity_m_s(self, x_m: np.ndarray | float, z_m: np.ndarray | float
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Flow velocity vector (vx, vz) in m/s at points (x_m, z_m); zero outside the lumen."""
        u, s = self.local_coords(x_m, z_m)
        speed = np.where(np.abs(u) <= self.length_m / 2, self.speed_m_s(s), 0.0)
        ux, uz = self.direction
        return speed * ux, speed * uz

    def velocity_toward_transducer_m_s(self, x_m: np.ndarray | float, z_m: np.ndarray | float,
                                       beam_angle_rad: np.ndarray | float = 0.0) -> np.ndarray:
        """Ground-truth Doppler velocity: the component toward the transducer along a beam.

        ``beam_angle_rad`` is the sector line's angle ψ (0 = straight down, positive toward +x;
        0 for a linear or fixed beam). Positive = toward the transducer.
        """
        vx, vz = self.velocity_m_s(x_m, z_m)
        psi = np.asarray(beam_angle_rad, dtype=np.float64)
        return -(vx * np.sin(psi) + vz * np.cos(psi))


@dataclass(frozen=True)
class Phantom:
    """A validated phantom: medium, extent and elements. Elements double as ground truth."""

    name: str
    x_extent_m: tuple[float, float]
    z_extent_m: tuple[float, float]
    description: str = ""
    speed_of_sound_m_s: float = 1540.0
    attenuation_db_cm_mhz: float = 0.5
    points: tuple[Point, ...] = ()
    speckle: tuple[Speckle, ...] = ()
    inclusions: tuple[Inclusion, ...] = ()
    layers: tuple[Layer, ...] = ()
    moving: tuple[Moving, ...] = ()
    vessels: tuple[Vessel, ...] = ()
    source: str = field(default="<memory>", compare=False)

    @property
    def point_positions_m(self) -> np.ndarray:
        """True positions of the point targets, ``(n_points, 2)`` as (x_m, z_m)."""
        return np.array([(p.x_m, p.z_m) for p in self.points], dtype=np.float64).reshape(-1, 2)

    @property
    def interface_depths_m(self) -> tuple[float, ...]:
        """True depths of the layer interfaces, shallow to deep."""
        return tuple(sorted(layer.z_m for layer in self.layers))

    @property
    def cysts(self) -> tuple[Inclusion, ...]:
        """The anechoic inclusions (contrast 0)."""
        return tuple(i for i in self.inclusions if i.contrast == 0)

    def truth(self) -> dict[str, Any]:
        """Ground truth as plain data: points, inclusions, interfaces, movers and vessels."""
        return {
            "points": [(p.x_m, p.z_m, p.amplitude) for p in self.points],
            "inclusions": [(i.x_m, i.z_m, i.radius_m, i.contrast) for i in self.inclusions],
            "interfaces_m": list(self.interface_depths_m),
            "moving": [(m.x_m, m.z_m, m.motion_amplitude_m, m.motion_freq_hz)
                       for m in self.moving],
            "vessels": [{"x_m": v.x_m, "z_m": v.z_m, "radius_m": v.radius_m,
                         "length_m": v.length_m, "angle_deg": v.angle_deg,
                         "peak_velocity_m_s": v.peak_velocity_m_s, "profile": v.profile}
                        for v in self.vessels],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> Phantom:
        """Validate a parsed TOML document; errors name ``source``, the element and the key."""
        return _Parser(source).phantom(data)


def builtin_phantoms() -> dict[str, str]:
    """Names and one-line descriptions of the phantoms shipped with sonobridge."""
    out = {}
    for path in sorted(PHANTOMS_DIR.glob("*.toml")):
        with path.open("rb") as f:
            out[path.stem] = str(tomllib.load(f).get("description", ""))
    return out


def load_phantom(name_or_path: str | Path) -> Phantom:
    """Load a builtin phantom by name (``"cyst"``) or any phantom file by path."""
    text = str(name_or_path)
    builtin = PHANTOMS_DIR / f"{text}.toml"
    path = builtin if ("/" not in text and "\\" not in text and builtin.is_file()) \
        else Path(name_or_path)
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in PHANTOMS_DIR.glob("*.toml")))
        raise PhantomError(f"no phantom {text!r}: not a builtin ({names}) and not a file")
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise PhantomError(f"{path.name}: not valid TOML: {e}") from None
    return Phantom.from_dict(data, source=path.name)


# -- validation ----------------------------------------------------------------------------------

_MISSING: Any = object()
_KINDS = ("point", "speckle", "cyst", "inclusion", "layer", "moving", "vessel")
_TOP_KEYS = ("name", "description", "speed_of_sound_m_s", "attenuation_db_cm_mhz", "region")


class _Parser:
    """Reads one document, raising PhantomError with 'source: where: key: problem'."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, msg: str) -> PhantomError:
        return PhantomError(f"{self.source}: {where}: {msg}")

    def keys(self, table: Any, allowed: tuple[str, ...], where: str) -> None:
        if not isinstance(table, dict):
            raise self.fail(where, f"expected a table, got {type(table).__name__}")
        for key in table:
            if key not in allowed:
                raise self.fail(where, f"unknown key {key!r}; expected one of "
                                       f"{', '.join(allowed)}")

    def number(self, table: dict, key: str, where: str, *, default: Any = _MISSING,
               minimum: float | None = None, positive: bool = False, unit: str = "") -> Any:
        if key not in table:
            if default is _MISSING:
                raise self.fail(where, f"missing key {key!r} (a number{unit})")
            return default
        v = table[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(where, f"{key!r} must be a finite number{unit}, got {v!r}")
        if positive and v <= 0:
            raise self.fail(where, f"{key!r} must be > 0{unit}, got {v!r}")
        if minimum is not None and v < minimum:
            raise self.fail(where, f"{key!r} must be >= {minimum}{unit}, got {v!r}")
        return float(v)

    def span(self, table: dict, key: str, where: str, *, default: Any = _MISSING
             ) -> tuple[float, float]:
        if key not in table:
            if default is _MISSING:
                raise self.fail(where, f"missing key {key!r} (a [min, max] pair in metres)")
            return default
        v = table[key]
        ok = (isinstance(v, list) and len(v) == 2
              and all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in v))
        if not ok or not v[0] < v[1]:
            raise self.fail(where, f"{key!r} must be [min, max] in metres with min < max, "
                                   f"got {v!r}")
        return float(v[0]), float(v[1])

    def string(self, table: dict, key: str, where: str, default: Any = _MISSING) -> str:
        if key not in table:
            if default is _MISSING:
                raise self.fail(where, f"missing key {key!r} (a string)")
            return default
        if not isinstance(table[key], str):
            raise self.fail(where, f"{key!r} must be a string, got {table[key]!r}")
        return table[key]

    def densities(self, t: dict, where: str, per_cell: str, per_mm2: str
                  ) -> tuple[float | None, float | None]:
        cell = self.number(t, per_cell, where, default=None, positive=True,
                           unit=" (scatterers per resolution cell)")
        mm2 = self.number(t, per_mm2, where, default=None, positive=True,
                          unit=" (scatterers per mm²)")
        if (cell is None) == (mm2 is None):
            raise self.fail(where, f"give exactly one of {per_cell!r} or {per_mm2!r}")
        return cell, mm2

    def elements(self, data: dict, kind: str) -> list[tuple[str, dict]]:
        items = data.get(kind, [])
        if not isinstance(items, list):
            raise self.fail(kind, f"{kind!r} must be an array of tables ([[{kind}]]), "
                                  f"got {type(items).__name__}")
        return [(f"[[{kind}]] #{i + 1}", t) for i, t in enumerate(items)]

    def phantom(self, data: dict) -> Phantom:
        for key, value in data.items():
            if key in _TOP_KEYS or key in _KINDS:
                continue
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                raise self.fail(f"[[{key}]]", f"unknown element kind {key!r}; expected one of "
                                              f"{', '.join(_KINDS)}")
            raise self.fail("top level", f"unknown key {key!r}; expected one of "
                                         f"{', '.join(_TOP_KEYS + _KINDS)}")
        name = self.string(data, "name", "top level")
        description = self.string(data, "description", "top level", default="")
        c = self.number(data, "speed_of_sound_m_s", "top level", default=1540.0,
                        positive=True, unit=" (m/s)")
        att = self.number(data, "attenuation_db_cm_mhz", "top level", default=0.5,
                          minimum=0.0, unit=" (dB/cm/MHz)")
        if "region" not in data:
            raise self.fail("top level", "missing table [region] (x_m and z_m extents)")
        region = data["region"]
        self.keys(region, ("x_m", "z_m"), "[region]")
        x_ext = self.span(region, "x_m", "[region]")
        z_ext = self.span(region, "z_m", "[region]")
        if z_ext[0] < 0:
            raise self.fail("[region]", f"'z_m' must start at depth >= 0, got {z_ext[0]}")

        points = []
        for where, t in self.elements(data, "point"):
            self.keys(t, ("x_m", "z_m", "amplitude"), where)
            points.append(Point(self.number(t, "x_m", where, unit=" (m)"),
                                self.number(t, "z_m", where, minimum=0.0, unit=" (m)"),
                                self.number(t, "amplitude", where, default=1.0, minimum=0.0)))
        speckle = []
        for where, t in self.elements(data, "speckle"):
            self.keys(t, ("x_m", "z_m", "amplitude", "density_per_cell", "density_per_mm2"),
                      where)
            cell, mm2 = self.densities(t, where, "density_per_cell", "density_per_mm2")
            speckle.append(Speckle(self.span(t, "x_m", where, default=x_ext),
                                   self.span(t, "z_m", where, default=z_ext),
                                   self.number(t, "amplitude", where, minimum=0.0), cell, mm2))
        inclusions = []
        for kind in ("cyst", "inclusion"):
            for where, t in self.elements(data, kind):
                self.keys(t, ("x_m", "z_m", "radius_m", "contrast"), where)
                inclusions.append(Inclusion(
                    self.number(t, "x_m", where, unit=" (m)"),
                    self.number(t, "z_m", where, minimum=0.0, unit=" (m)"),
                    self.number(t, "radius_m", where, positive=True, unit=" (m)"),
                    self.number(t, "contrast", where, default=0.0, minimum=0.0,
                                unit=" (amplitude ratio, 0 = anechoic)"),
                    kind))
        layers = []
        for where, t in self.elements(data, "layer"):
            self.keys(t, ("z_m", "reflectivity", "diffuse", "speckle_amplitude",
                          "speckle_density_per_cell", "speckle_density_per_mm2"), where)
            amp = self.number(t, "speckle_amplitude", where, default=0.0, minimum=0.0)
            cell = mm2 = None
            if amp > 0:
                cell, mm2 = self.densities(t, where, "speckle_density_per_cell",
                                           "speckle_density_per_mm2")
            refl = self.number(t, "reflectivity", where, minimum=0.0)
            if refl >= 1.0:
                raise self.fail(where, f"'reflectivity' must be < 1, got {refl}")
            diffuse = self.number(t, "diffuse", where, default=0.0, minimum=0.0,
                                  unit=" (fraction 0..1)")
            if diffuse > 1.0:
                raise self.fail(where, f"'diffuse' must be a fraction in 0..1, got {diffuse}")
            layers.append(Layer(self.number(t, "z_m", where, minimum=0.0, unit=" (m)"), refl,
                                diffuse, amp, cell, mm2))
        moving = []
        for where, t in self.elements(data, "moving"):
            self.keys(t, ("x_m", "z_m", "amplitude", "motion_amplitude_m", "motion_freq_hz",
                          "motion_phase_rad"), where)
            moving.append(Moving(
                self.number(t, "x_m", where, unit=" (m)"),
                self.number(t, "z_m", where, minimum=0.0, unit=" (m)"),
                self.number(t, "amplitude", where, default=1.0, minimum=0.0),
                self.number(t, "motion_amplitude_m", where, minimum=0.0, unit=" (m)"),
                self.number(t, "motion_freq_hz", where, minimum=0.0, unit=" (Hz)"),
                self.number(t, "motion_phase_rad", where, default=0.0, unit=" (rad)")))
            if moving[-1].motion_amplitude_m > moving[-1].z_m:
                raise self.fail(where, "'motion_amplitude_m' must not exceed 'z_m' (the "
                                       "reflector would pass through the transducer)")
        vessels = [self.vessel(t, where) for where, t in self.elements(data, "vessel")]
        return Phantom(name=name, description=description, speed_of_sound_m_s=c,
                       attenuation_db_cm_mhz=att, x_extent_m=x_ext, z_extent_m=z_ext,
                       points=tuple(points), speckle=tuple(speckle),
                       inclusions=tuple(inclusions),
                       layers=tuple(sorted(layers, key=lambda la: la.z_m)),
                       moving=tuple(moving), vessels=tuple(vessels), source=self.source)

    def vessel(self, t: Any, where: str) -> Vessel:
        self.keys(t, ("x_m", "z_m", "radius_m", "length_m", "angle_deg", "peak_velocity_m_s",
                      "profile", "amplitude", "density_per_cell", "density_per_mm2"), where)
        profile = self.string(t, "profile", where, default="parabolic")
        if profile not in VESSEL_PROFILES:
            raise self.fail(where, f"'profile' must be one of {', '.join(VESSEL_PROFILES)}, "
                                   f"got {profile!r}")
        cell = self.number(t, "density_per_cell", where, default=None, positive=True,
                           unit=" (scatterers per resolution cell)")
        mm2 = self.number(t, "density_per_mm2", where, default=None, positive=True,
                          unit=" (scatterers per mm²)")
        if cell is not None and mm2 is not None:
            raise self.fail(where, "give at most one of 'density_per_cell' or 'density_per_mm2'")
        if cell is None and mm2 is None:
            cell = 8.0
        v = Vessel(
            self.number(t, "x_m", where, unit=" (m)"),
            self.number(t, "z_m", where, minimum=0.0, unit=" (m)"),
            self.number(t, "radius_m", where, positive=True, unit=" (m)"),
            self.number(t, "length_m", where, positive=True, unit=" (m)"),
            self.number(t, "angle_deg", where, unit=" (degrees, 0 = flow toward the transducer)"),
            self.number(t, "peak_velocity_m_s", where, minimum=0.0, unit=" (m/s)"),
            profile,
            self.number(t, "amplitude", where, default=0.03, minimum=0.0),
            cell, mm2)
        top = v.z_m - abs(v.direction[1]) * v.length_m / 2 - abs(v.normal[1]) * v.radius_m
        if top < 0:
            raise self.fail(where, f"the lumen reaches above the transducer face (z = {top:.4g} m"
                                   f" < 0); move it deeper or shorten it")
        return v
