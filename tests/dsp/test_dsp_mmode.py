"""MMode ring buffer: pushes land in order without moving the history."""

import numpy as np
import pytest

from sonobridge.dsp import MMode


def _line(value: int, n: int = 5) -> np.ndarray:
    return np.full(n, value, dtype=np.uint8)


def test_dsp_mmode_ring_order_after_wrap() -> None:
    mm = MMode(n_samples=5, history=3)
    buffer = mm.buffer
    for value in range(1, 6):
        mm.push(_line(value))
    assert mm.buffer is buffer  # written in place, never rolled
    assert mm.write_index == 2 and mm.count == 5
    assert mm.buffer[:, 0].tolist() == [4, 5, 3]
    assert mm.ordered()[:, 0].tolist() == [3, 4, 5]


def test_dsp_mmode_partial_history_is_zero_padded_at_the_old_end() -> None:
    mm = MMode(n_samples=5, history=4)
    mm.push(_line(7))
    mm.push(_line(8))
    assert mm.ordered()[:, 0].tolist() == [0, 0, 7, 8]


def test_dsp_mmode_block_push_wraps_and_keeps_the_newest() -> None:
    mm = MMode(n_samples=2, history=4, dtype=np.float32)
    mm.push(np.array([[1, 1], [2, 2], [3, 3]], dtype=np.float32))
    mm.push(np.array([[4, 4], [5, 5]], dtype=np.float32))
    assert mm.ordered()[:, 0].tolist() == [2, 3, 4, 5]
    mm.push(np.arange(1, 13, dtype=np.float32).reshape(6, 2))  # more than the history
    assert mm.ordered()[:, 0].tolist() == [5, 7, 9, 11]
    assert mm.count == 11
    out = np.empty((4, 2), dtype=np.float32)
    assert mm.ordered(out=out) is out


def test_dsp_mmode_rejects_wrong_line_length_and_clears() -> None:
    mm = MMode(n_samples=5, history=3)
    with pytest.raises(ValueError, match=r"\(5,\)"):
        mm.push(np.zeros(4, dtype=np.uint8))
    mm.push(_line(9))
    mm.clear()
    assert mm.count == 0 and mm.write_index == 0 and not mm.buffer.any()
    with pytest.raises(ValueError, match="history=0"):
        MMode(n_samples=5, history=0)
