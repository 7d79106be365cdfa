"""pyserial URL handlers of sonobridge.record: ``replay://PATH`` (see ``protocol_replay``)."""

import serial

PACKAGE = "sonobridge.record.urlhandler"


def register() -> None:
    """Make pyserial (and so ``open_device``) understand ``replay://`` in this process."""
    if PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(PACKAGE)
