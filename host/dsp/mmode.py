"""MMode: one line over time, kept in a ring buffer (no per-push copying of the history)."""

from __future__ import annotations

import numpy as np


class MMode:
    """Ring buffer of the last ``history`` lines of ``n_samples`` each, shape (history, n_samples).

    ``push`` costs one line copy. Row ``write_index`` is the next to be overwritten, so rows
    ``write_index, …, history-1, 0, …, write_index-1`` run oldest to newest. A viewer can draw
    the raw ``buffer`` with a moving sweep line at ``write_index`` (no copy at all) or call
    :meth:`ordered` for a scrolling display (one copy of the whole history per call).
    """

    def __init__(self, n_samples: int, history: int, dtype: np.dtype | type = np.uint8) -> None:
        if n_samples < 1 or history < 1:
            raise ValueError(
                f"n_samples={n_samples!r} and history={history!r} must both be >= 1"
            )
        self.buffer = np.zeros((history, n_samples), dtype=dtype)
        self.write_index = 0
        self.count = 0  # lines pushed since creation or clear()

    @property
    def history(self) -> int:
        """Number of lines kept."""
        return self.buffer.shape[0]

    @property
    def n_samples(self) -> int:
        """Samples per line."""
        return self.buffer.shape[1]

    def push(self, line: np.ndarray) -> None:
        """Append one line ``(n_samples,)`` or several ``(k, n_samples)``, oldest first."""
        line = np.asarray(line)
        lines = line[np.newaxis] if line.ndim == 1 else line
        if lines.ndim != 2 or lines.shape[1] != self.n_samples:
            raise ValueError(
                f"line must have shape ({self.n_samples},) or (k, {self.n_samples}), "
                f"got {line.shape}"
            )
        k = lines.shape[0]
        if k > self.history:
            lines = lines[-self.history:]
            self.write_index = (self.write_index + k - self.history) % self.history
            self.count += k - self.history
            k = self.history
        first = min(k, self.history - self.write_index)
        self.buffer[self.write_index:self.write_index + first] = lines[:first]
        if first < k:
            self.buffer[:k - first] = lines[first:]
        self.write_index = (self.write_index + k) % self.history
        self.count += k

    def ordered(self, out: np.ndarray | None = None) -> np.ndarray:
        """Return the history oldest → newest, shape (history, n_samples); costs one full copy.

        Rows not yet written (fewer than ``history`` pushes) are zeros at the start.
        """
        if out is None:
            out = np.empty_like(self.buffer)
        tail = self.history - self.write_index
        out[:tail] = self.buffer[self.write_index:]
        out[tail:] = self.buffer[:self.write_index]
        return out

    def clear(self) -> None:
        """Forget every line."""
        self.buffer[...] = 0
        self.write_index = 0
        self.count = 0
