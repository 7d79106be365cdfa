"""The board side of the wire, shared by every board sonobridge serves.

A board (the simulated one, a replayed recording, …) implements :class:`~.board.Board`; an
:class:`~.engine.BoardEngine` runs it in real time over a transport (a pty, an in-process queue
behind a pyserial URL, or TCP), through a link profile and fault injector (``link.py``).
``sonobridge.sim`` and ``sonobridge.record`` both build on this package and never on each other.
"""
