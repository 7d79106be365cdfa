"""Errors the device client raises. Every message says what went wrong and what to do."""

from __future__ import annotations


class DeviceError(Exception):
    """Base of every device-client error."""


class PortError(DeviceError):
    """The port cannot be opened (missing, busy, no permission)."""


class HandshakeError(DeviceError):
    """The port opened but no protocol v1 board answered GET_INFO."""


class ImpossibleInfo(HandshakeError):
    """The board's DEVICE_INFO cannot describe a working board; the message names the field."""


class ProtocolMismatch(DeviceError):
    """The board speaks another protocol version; the message says which side to update."""


class DeviceFailed(DeviceError):
    """The client can no longer work (its receive thread stopped, the board changed protocol);
    the message says what happened. Close the device and open it again."""


class CommandTimeout(DeviceError):
    """A command got no reply after every retry."""


class Disconnected(DeviceError):
    """The link went away (cable unplugged, board reset into a bootloader, ...)."""


class FrameTimeout(DeviceError, TimeoutError):
    """No frame arrived within the timeout."""


class ConfigError(DeviceError, ValueError):
    """A configuration the board cannot do; names the field, the value and the allowed range."""

    def __init__(self, field: str, value: object, allowed: str, message: str | None = None
                 ) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(message or f"{field} = {value!r} is not allowed; allowed: {allowed}")


class NakError(DeviceError):
    """The board refused a command with a NAK."""

    def __init__(self, command: str, code: int, field: str | None, text: str) -> None:
        from sonobridge.protocol import ErrorCode

        self.command = command
        self.code = code
        self.field = field
        self.text = text
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = f"code 0x{code:02X}"
        where = f" (field {field})" if field else ""
        detail = f": {text}" if text else ""
        super().__init__(f"the board refused {command} with {name}{where}{detail}")
