"""A renderer whose samples encode their own frame and firing index, for exact checks."""

from __future__ import annotations

import numpy as np

from sonobridge.protocol import Decoder, Message, SampleFormat
from sonobridge.sim.board import RenderRequest, SimBoard
from sonobridge.sim.profile import load_profile


class IndexRenderer:
    """Sample j of firing i of frame f is ``(f * 7919 + i * 31 + j) % 1000``, in range."""

    def __init__(self) -> None:
        self.calls = 0

    def render(self, request: RenderRequest) -> np.ndarray:
        """Deterministic samples in the configured format."""
        self.calls += 1
        cfg = request.config
        n = cfg.lines_per_frame * cfg.ensemble_size
        base = (request.frame_index * 7919 + np.arange(n)[:, None] * 31
                + np.arange(cfg.samples_per_line)[None, :]) % 1000
        if cfg.sample_format == SampleFormat.I16:
            return (base - 500).astype(np.int16)
        if cfg.sample_format == SampleFormat.U8:
            return (base % 256).astype(np.uint8)
        return (base + 12).astype(np.uint16)


def expected_samples(frame: int, firing: int, n: int) -> np.ndarray:
    """What IndexRenderer puts in one I16 line."""
    return ((frame * 7919 + firing * 31 + np.arange(n)) % 1000 - 500).astype(np.int16)


def make_board(**kw) -> SimBoard:
    """A board with the builtin sim profile and the index renderer."""
    return SimBoard(load_profile("sim"), IndexRenderer(), **kw)


class Host:
    """Talks to a SimBoard in simulated time: send commands, pull and decode replies."""

    def __init__(self, board: SimBoard) -> None:
        self.board = board
        self.decoder = Decoder()
        self.seq = 0

    def send(self, msg: Message, now: float = 0.0, *, flags: int = 0, seq: int | None = None
             ) -> int:
        from sonobridge.protocol import encode

        use = self.seq if seq is None else seq
        self.board.feed(encode(msg, use, flags=flags), now)
        if seq is None:
            self.seq += 1
        return use

    def pull(self, now: float, budget: float = float("inf")) -> list[Message]:
        frames = self.board.pull(now, budget)
        return self.decoder.feed(b"".join(f for _, f in frames))
