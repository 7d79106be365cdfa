"""Board profiles: a simulated board's identity, capabilities and defaults, as data (TOML).

In the spirit of pyvisa-sim, a board is described by a file, not by code: copy
``host/sim/boards/sim.toml``, change what your board announces, and serve it with
``sonobridge sim --profile FILE``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from sonobridge.protocol import Capability, Configure, DeviceInfo, SampleFormat, SweepKind
from sonobridge.protocol.messages import payload_fields

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

BOARDS_DIR = Path(__file__).with_name("boards")


class ProfileError(ValueError):
    """A board profile file that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class BoardProfile:
    """What a simulated board announces and how it powers up."""

    info: DeviceInfo
    defaults: Configure
    send_buffer_bytes: int = 262_144
    temperature_c: float = 31.5
    source: str = "<builtin>"


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped with sonobridge."""
    return sorted(p.stem for p in BOARDS_DIR.glob("*.toml"))


def _enum_value(enum: type, value: object, where: str) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(enum[str(value)])
    except KeyError:
        raise ProfileError(f"{where}: {value!r} is not one of {[m.name for m in enum]}") from None


def _flags(enum: type, values: object, where: str, *, shift: bool) -> int:
    if isinstance(values, int):
        return values
    if not isinstance(values, list):
        raise ProfileError(f"{where}: expected a list of names, got {values!r}")
    mask = 0
    for v in values:
        bit = _enum_value(enum, v, where)
        mask |= (1 << bit) if shift else bit
    return mask


def load_profile(name_or_path: str | Path = "sim") -> BoardProfile:
    """Load a builtin profile by name, or a profile file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = BOARDS_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise ProfileError(f"no builtin board profile {name_or_path!r}; "
                               f"choose one of {builtin_profiles()} or pass a .toml path")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    board = data.get("board", {})
    caps = dict(data.get("capabilities", {}))
    where = f"{path} [capabilities]"
    known = set(payload_fields(DeviceInfo)) - {"request_seq"}
    unknown = set(caps) - known
    if unknown:
        raise ProfileError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    if "sample_formats" in caps:
        caps["sample_formats"] = _flags(SampleFormat, caps["sample_formats"],
                                        f"{where} sample_formats", shift=True)
    if "capabilities" in caps:
        caps["capabilities"] = _flags(Capability, caps["capabilities"],
                                      f"{where} capabilities", shift=False)
    if "sweep_kind" in caps:
        caps["sweep_kind"] = _enum_value(SweepKind, caps["sweep_kind"], f"{where} sweep_kind")
    major, minor, patch = [*str(board.get("firmware", "0.0.0")).split("."), "0", "0"][:3]
    try:
        info = DeviceInfo(
            board_name=str(board.get("name", path.stem)), board_id=int(board.get("board_id", 0)),
            fw_major=int(major), fw_minor=int(minor), fw_patch=int(patch), **caps,
        )
        defaults = dict(data.get("defaults", {}))
        if "sample_format" in defaults:
            defaults["sample_format"] = _enum_value(SampleFormat, defaults["sample_format"],
                                                    f"{path} [defaults] sample_format")
        tgc_db = defaults.pop("tgc_db", [0.0])
        cfg = Configure(**defaults, tgc_cdb=tuple(round(g * 100) for g in tgc_db))
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    from sonobridge.protocol.rules import check_configure

    if violation := check_configure(cfg, info):
        raise ProfileError(f"{path} [defaults]: {violation.message}")
    return BoardProfile(
        info=info, defaults=cfg,
        send_buffer_bytes=int(board.get("send_buffer_bytes", 262_144)),
        temperature_c=float(board.get("temperature_c", 31.5)), source=str(path),
    )
