"""Builds a ready-to-serve simulated board from options, and serves it on a pty or TCP.

``create_engine`` is shared by ``sonobridge sim``, the ``sim://`` URL handler and the tests, so
every way of reaching the simulator behaves the same.
"""

from __future__ import annotations

import errno
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sonobridge.board.engine import BoardEngine
from sonobridge.board.link import FaultPlan, link_profile
from sonobridge.board.pty_transport import PtyTransport
from sonobridge.board.server import run_until_stopped
from sonobridge.board.tcp_transport import SocketTransport
from sonobridge.board.transport import Transport

from .board import FrameRenderer, SimBoard
from .profile import load_profile
from .twins import NATIVE_BOARD, check_board_name, create_twin, validate_twin_options


class ServeError(RuntimeError):
    """The board cannot be served where asked; the message says why and what to do."""


@dataclass
class SimOptions:
    """Everything that shapes a simulated board."""

    phantom: str = "wire"
    profile: str = "sim"
    link: str = "unlimited"
    faults: str = ""
    seed: int = 1
    record_truth: bool = False
    #: "sonobridge" (the native simulated board) or a twin of another board (``twins.TWINS``)
    board: str = NATIVE_BOARD
    #: a twin's own variant, e.g. "uno-r4,40k" for open-echo ("" = its default)
    variant: str = ""

    def validate(self) -> None:
        """Fail early, with the choices, on a bad board, link or fault name, or variant."""
        check_board_name(self.board)
        link_profile(self.link)
        FaultPlan.parse(self.faults)
        if self.board != NATIVE_BOARD:
            validate_twin_options(self.board, self)
        elif self.variant:
            raise ValueError("a variant is for a twin board (--board); the native board has "
                             "profiles (--profile)")


def make_renderer(phantom: str, seed: int) -> FrameRenderer:
    """The phantom physics behind the board."""
    from .render import PhantomRenderer

    return PhantomRenderer(phantom, seed=seed)


def create_engine(
    options: SimOptions,
    transport: Transport,
    *,
    renderer: FrameRenderer | None = None,
    clock: Callable[[], float] | None = None,
) -> BoardEngine:
    """A board with its physics, link profile and faults, wired to ``transport`` (not started)."""
    options.validate()
    plan = FaultPlan.parse(options.faults)
    kwargs = {"clock": clock} if clock else {}
    if options.board != NATIVE_BOARD:
        # a twin speaks its own board's format; the link profile and the byte faults (bit
        # flips, drops, garbage, stalls, disconnects, resets) still come from the engine
        twin = create_twin(options.board, options)
        return BoardEngine(twin, transport, link=options.link, faults=plan, seed=options.seed,
                           **kwargs)
    board = SimBoard(
        load_profile(options.profile),
        renderer or make_renderer(options.phantom, options.seed),
        seed=options.seed, overflow_rate=plan.overflow, wrong_nak=plan.wrong_nak,
        hv_fault=plan.hv_fault,
        record_truth=options.record_truth,
    )
    return BoardEngine(board, transport, link=options.link, faults=plan, seed=options.seed,
                     **kwargs)


def serve_pty(options: SimOptions, link_path: str | None = None,
              ready: Callable[[str], None] | None = None,
              stop: threading.Event | None = None) -> int:
    """Serve on a pseudo-terminal until interrupted; print the device path first."""
    try:
        transport = PtyTransport(link_path)
    except OSError as exc:
        if link_path:
            raise ServeError(f"cannot make the link {link_path}: {exc.strerror or exc}; pick "
                             "another --link-path") from exc
        raise ServeError(f"cannot make a pseudo-terminal: {exc.strerror or exc}") from exc
    engine = create_engine(options, transport)
    path = link_path or transport.path
    (ready or _print_first_line)(path)
    return _serve(engine, stop)


def serve_tcp(options: SimOptions, host: str, port: int,
              ready: Callable[[str], None] | None = None,
              stop: threading.Event | None = None) -> int:
    """Serve on TCP until interrupted; print the pyserial URL first."""
    try:
        transport = SocketTransport(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(f"TCP port {port} on {host} is already in use (by another "
                             "simulator or program); pick another port, or 0 for any free "
                             "one") from exc
        raise ServeError(f"cannot serve on TCP {host}:{port}: {exc.strerror or exc}") from exc
    engine = create_engine(options, transport)
    h, p = transport.address[:2]
    (ready or _print_first_line)(f"socket://{h}:{p}")
    return _serve(engine, stop)


def _print_first_line(text: str) -> None:
    print(text, flush=True)


def _serve(engine: BoardEngine, stop: threading.Event | None) -> int:
    code = run_until_stopped(engine, stop, what="simulator")
    if code == 0:
        s = engine.stats
        print(f"served {s.frames_sent} frames, {s.bytes_sent / 1e6:.1f} MB", file=sys.stderr)
    return code


def default_link_path() -> Path:
    """A stable path for the simulator's pty symlink."""
    return Path("/tmp") / "sonobridge-sim"
