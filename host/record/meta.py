"""Metadata shared by the recorders and readers: JSON forms of DEVICE_INFO, configurations and
statistics, the board's dialect and the DEVICE_INFO values it assumed, and the rule that splits
a recording into segments.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sonobridge.device import AcquisitionConfig
from sonobridge.device.dialect import ProtocolV1
from sonobridge.protocol import DeviceInfo, EchoLine
from sonobridge.protocol.messages import payload_fields

FORMAT_NAME = "sonobridge-recording"
FORMAT_VERSION = 1

#: what a line says about how to read it; a change starts a new segment
SEGMENT_KEY_FIELDS = ("config_id", "n_samples", "sample_format", "adc_bits", "sample_rate_hz",
                      "start_delay_samples", "lines_per_frame", "ensemble_size", "sweep_kind")


def segment_key(line: EchoLine) -> tuple:
    """The fields that must stay constant within one segment of a recording."""
    return (line.config_id, line.n_samples, line.sample_format, line.adc_bits,
            line.sample_rate_hz, line.start_delay_samples, line.lines_per_frame,
            line.ensemble_size, line.sweep_kind)


def info_to_dict(info: DeviceInfo) -> dict[str, Any]:
    """Every DEVICE_INFO field except the per-request ``request_seq``."""
    return {n: getattr(info, n) for n in payload_fields(info) if n != "request_seq"}


def info_from_dict(data: dict[str, Any]) -> DeviceInfo:
    """The DeviceInfo a dict from :func:`info_to_dict` describes (unknown keys are ignored)."""
    known = set(payload_fields(DeviceInfo))
    return DeviceInfo(**{k: v for k, v in data.items() if k in known})


#: the dialect of a recording that does not name one: every board spoke protocol v1 before
#: dialects existed, and a replay board (which speaks v1) is recorded as one too
DEFAULT_DIALECT = ProtocolV1.name


@dataclass(frozen=True)
class BoardOrigin:
    """How the board was spoken to (``dialect``) and which DEVICE_INFO values are assumptions.

    ``nominal_fields`` maps a DEVICE_INFO field to why its value was assumed (the board did not
    announce it); it is empty for a sonobridge-v1 board, which announces its own DEVICE_INFO.
    The HDF5 recording stores both as root attributes, the raw capture in its ``device_info``
    event, under the same names.
    """

    dialect: str = DEFAULT_DIALECT
    nominal_fields: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, dev: object) -> BoardOrigin:
        """The origin of an open :class:`~sonobridge.device.Device` (its settled dialect)."""
        dialect = getattr(dev, "dialect", None)
        if dialect is None:
            return cls()
        return cls(dialect.name, dict(dialect.nominal_fields()))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> BoardOrigin:
        """The origin a dict holding ``dialect``/``nominal_fields`` describes (absent: v1)."""
        data = data or {}
        return cls(str(data.get("dialect") or DEFAULT_DIALECT),
                   dict(data.get("nominal_fields") or {}))

    @property
    def native(self) -> bool:
        """True for a board that speaks sonobridge protocol v1 itself."""
        return self.dialect == DEFAULT_DIALECT

    def as_dict(self) -> dict[str, Any]:
        """``{"dialect": …, "nominal_fields": {…}}``: attributes and capture event keys."""
        return {"dialect": self.dialect, "nominal_fields": dict(self.nominal_fields)}

    def text(self) -> str:
        """One sentence for people: the dialect, and which values are assumed."""
        if not self.nominal_fields:
            return f"the {self.dialect} dialect"
        return (f"the {self.dialect} dialect; DEVICE_INFO values assumed, not announced by "
                f"the board: {', '.join(sorted(self.nominal_fields))}")


def config_to_dict(config: AcquisitionConfig | None) -> dict[str, Any] | None:
    """An acquisition configuration as plain JSON-able values."""
    if config is None:
        return None
    data = dataclasses.asdict(config)
    data["tgc_db"] = [float(g) for g in config.tgc_db]
    return data


def config_from_dict(data: dict[str, Any]) -> AcquisitionConfig:
    """The configuration a dict from :func:`config_to_dict` describes."""
    known = {f.name for f in dataclasses.fields(AcquisitionConfig)}
    values = {k: v for k, v in data.items() if k in known}
    if "tgc_db" in values:
        values["tgc_db"] = tuple(float(g) for g in values["tgc_db"])
    return AcquisitionConfig(**values)


def stats_to_dict(stats: object) -> dict[str, Any]:
    """A DeviceStats or DecoderStats (anything with ``as_dict()``), a dict, or None as a dict."""
    if stats is None:
        return {}
    if isinstance(stats, dict):
        return dict(stats)
    as_dict = getattr(stats, "as_dict", None)
    if as_dict is None:
        raise TypeError(f"cannot record statistics of type {type(stats).__name__}")
    return dict(as_dict())


def to_json(value: object) -> str:
    """Compact JSON for HDF5 attributes and capture events."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


#: the loss and delivery counters a recording reports (names as in DeviceStats), counted from
#: the moment the recording started; the lines among them obey the identity of
#: :class:`sonobridge.device.accounting.LossAccount`, which the accounting also stores
#: (``lines_expected``, ``lines_cut_by_stop``, ``lines_recorded``, ``lines_not_recorded``)
ACCOUNTING_FIELDS = ("lines_received", "lines_missing", "lines_lost_link", "lines_lost_device",
                     "lines_lost_host", "frames_complete", "frames_incomplete", "frames_lost",
                     "crc_errors", "header_errors", "seq_gaps", "seq_resets", "bytes_discarded",
                     "bytes_in", "disconnects", "device_resets")
# a file written before ``lines_lost_host`` existed lacks it: read it with
# ``.get("lines_lost_host", 0)``


@dataclass(frozen=True)
class ConfigChange:
    """A new segment starts at this line: when, which configuration id, and the settings."""

    host_time_ns: int
    config_id: int
    config: dict[str, Any] | None


class ConfigTracker:
    """Notices the first line of every configuration; ``lookup`` supplies its settings.

    Live recording looks the settings up on the device client (``dev.config``); conversion
    looks them up in the capture's configuration events. Both see the same lines, so both
    start segments at the same places.
    """

    def __init__(self, lookup: Callable[[EchoLine, int], dict[str, Any] | None]) -> None:
        self.lookup = lookup
        self._key: tuple | None = None
        self.changes: list[ConfigChange] = []

    def check(self, line: EchoLine, host_ns: int) -> ConfigChange | None:
        """A :class:`ConfigChange` if ``line`` starts a new segment, else None."""
        key = segment_key(line)
        if key == self._key:
            return None
        self._key = key
        change = ConfigChange(host_ns, line.config_id, self.lookup(line, host_ns))
        self.changes.append(change)
        return change
