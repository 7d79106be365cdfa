"""Talking to boards: the serial link, port discovery and the device client.

``from sonobridge.device import open_device`` is the entry point; see ``client.py``.
"""

from .client import ClientCounts, ClientState, Device, DeviceStats, open_device
from .config import AcquisitionConfig, validate
from .errors import (
    CommandTimeout,
    ConfigError,
    DeviceError,
    DeviceFailed,
    Disconnected,
    FrameTimeout,
    HandshakeError,
    ImpossibleInfo,
    NakError,
    PortError,
    ProtocolMismatch,
)
from .frames import LINE_META, Frame, FrameAssembler, Geometry
from .link import LinkCounters
from .ports import PortInfo, list_candidate_ports, list_serial_ports, list_sim_ports
from .receiver import ReceiveCounts

__all__ = [
    "LINE_META",
    "AcquisitionConfig",
    "ClientCounts",
    "ClientState",
    "CommandTimeout",
    "ConfigError",
    "Device",
    "DeviceError",
    "DeviceFailed",
    "DeviceStats",
    "Disconnected",
    "Frame",
    "FrameAssembler",
    "FrameTimeout",
    "Geometry",
    "HandshakeError",
    "ImpossibleInfo",
    "LinkCounters",
    "NakError",
    "PortError",
    "PortInfo",
    "ProtocolMismatch",
    "ReceiveCounts",
    "list_candidate_ports",
    "list_serial_ports",
    "list_sim_ports",
    "open_device",
    "validate",
]
