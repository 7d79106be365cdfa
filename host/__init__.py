"""sonobridge: the bridge between open-hardware ultrasound boards and a computer.

Installed as the package ``sonobridge`` from the source folder ``host/``.
"""

__version__ = "0.1.0"
