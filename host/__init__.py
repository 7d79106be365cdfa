"""sonobridge: host side of the open ultrasound bridge (import package ``host``)."""

__version__ = "0.1.0"
