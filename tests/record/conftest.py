"""Record tests serve recordings on ``replay://``: register that URL scheme with pyserial."""

from __future__ import annotations

from sonobridge.record.urlhandler import register

register()
