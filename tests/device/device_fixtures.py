"""Start a simulated board on a pty with the index renderer, and compare against its truth."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from sonobridge.board.engine import BoardEngine
from sonobridge.board.pty_transport import PtyTransport
from sonobridge.protocol import EchoLine
from sonobridge.sim.server import SimOptions, create_engine

from ..board.board_fixtures import IndexRenderer

_names = iter(range(10**9))


@contextlib.contextmanager
def sim_board(kind: str, faults: str = "", seed: int = 1, link: str = "unlimited",
              link_path: str | None = None) -> Iterator[tuple[object, str]]:
    """A simulated board reached over a real pty ("pty") or the sim:// URL ("url").

    Yields (get_engine, port): ``get_engine()`` returns the running engine (for the URL it
    exists only once the port was opened).
    """
    if kind == "pty":
        with sim_on_pty(faults=faults, link=link, seed=seed, link_path=link_path) as (eng, port):
            yield (lambda: eng), port
        return
    from urllib.parse import urlencode

    from sonobridge.sim.urlhandler.protocol_sim import engine_for

    query = urlencode({"phantom": "wire", "faults": faults, "seed": seed, "link": link,
                       "truth": 1, "name": f"test-{next(_names)}"})
    url = f"sim://?{query}"
    yield (lambda: engine_for(url)), url


@contextlib.contextmanager
def sim_on_pty(faults: str = "", link: str = "unlimited", seed: int = 1,
               link_path: str | None = None) -> Iterator[tuple[BoardEngine, str]]:
    """A running simulated board on a real pseudo-terminal; yields (engine, port path)."""
    transport = PtyTransport(link_path)
    engine = create_engine(SimOptions(faults=faults, link=link, seed=seed, record_truth=True),
                           transport, renderer=IndexRenderer())
    engine.start()
    try:
        yield engine, link_path or transport.path
    finally:
        engine.stop()


def truth_lines(engine: BoardEngine) -> dict[int, EchoLine]:
    """Every ECHO_LINE the board sent, by sequence number."""
    with engine.lock:
        return {seq: m for seq, m in engine.board.truth if isinstance(m, EchoLine)}


def assert_lines_match_truth(received: dict[tuple[int, int, int], np.ndarray],
                             sent: dict[int, EchoLine]) -> None:
    """Every received line equals what the board sent for that slot, bit for bit."""
    by_slot = {(m.frame_index, m.line_index, m.ensemble_index): m for m in sent.values()}
    for slot, samples in received.items():
        assert slot in by_slot, f"received {slot} that was never sent"
        np.testing.assert_array_equal(samples, by_slot[slot].samples, err_msg=str(slot))


def wait_until(predicate, timeout_s: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds (a condition wait with a deadline, not a fixed sleep)."""
    import threading
    import time

    deadline = time.monotonic() + timeout_s
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        tick.wait(0.005)


def drain(engine: BoardEngine, dev) -> None:
    """Wait until the board is idle, its buffer empty, and the client has read every byte."""
    from sonobridge.protocol import DeviceState

    def done() -> bool:
        with engine.lock:
            idle = (engine.board.state == DeviceState.IDLE and engine.board.pending_bytes == 0
                    and not engine._carry)
            sent = engine.stats.bytes_sent
        return idle and dev.link.counters.bytes_in >= sent

    wait_until(done, 10.0, "the board to go idle and the client to read everything")


@contextlib.contextmanager
def twin_on_pty(board: str, variant: str = "", seed: int = 1, link: str = "unlimited",
                faults: str = "", phantom: str = "wire", link_path: str | None = None
                ) -> Iterator[tuple[BoardEngine, str]]:
    """A simulated twin of another board (``"pic0rick"``, ``"open-echo"``) on a real pty,
    keeping its ground truth (``engine.board.truth``); yields (engine, port path)."""
    transport = PtyTransport(link_path)
    engine = create_engine(SimOptions(board=board, variant=variant, seed=seed, link=link,
                                      faults=faults, phantom=phantom, record_truth=True),
                           transport)
    engine.start()
    try:
        yield engine, link_path or transport.path
    finally:
        engine.stop()
