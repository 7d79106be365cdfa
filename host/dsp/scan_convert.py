"""ScanConverter: lines (polar or lateral positions) → a Cartesian picture via a bilinear table."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import sparse


def beam_xy(kind: str, position: np.ndarray | float, range_m: np.ndarray | float
            ) -> tuple[np.ndarray, np.ndarray]:
    """Where a beam's sample lies: ``(x_m, z_m)`` for a line at ``position`` and ``range_m``.

    ``kind`` is ``"sector"`` (``position`` an angle in radians from the probe's axis) or
    ``"linear"`` (``position`` a lateral offset in metres). Inputs broadcast like NumPy.
    """
    position, range_m = np.asarray(position, float), np.asarray(range_m, float)
    if kind == "sector":
        return range_m * np.sin(position), range_m * np.cos(position)
    return np.broadcast_to(position, np.broadcast(position, range_m).shape), \
        np.broadcast_to(range_m, np.broadcast(position, range_m).shape)


def beam_coordinates(kind: str, x_m: np.ndarray | float, z_m: np.ndarray | float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`beam_xy`: ``(position, range_m)`` of the point ``(x_m, z_m)``."""
    x_m, z_m = np.asarray(x_m, float), np.asarray(z_m, float)
    if kind == "sector":
        return np.arctan2(x_m, z_m), np.hypot(x_m, z_m)
    return x_m, z_m


class ScanConverter:
    """Precomputed bilinear resampling of ``(n_lines, n_samples)`` data onto an (H, W) grid.

    ``positions``: per-line steering angle in radians (``kind='sector'``; 0 = straight down,
    positive to the right, within ±pi/2) or lateral position in metres (``kind='linear'``).
    They may be unevenly spaced and in any order (a servo is neither exact nor monotonic); the
    table interpolates between the *actual* neighbouring positions. ``depth_m``: ``(n_samples,)``
    increasing depth (range along the beam) of each sample.

    The picture has rows = depth z (increasing downward) and columns = lateral x. ``extent_m``
    gives its outer edges; pixel centres sit half a pixel inside. Pixels outside the field of
    view are 0. Apply cost is a sparse product with four weights per pixel in view.
    """

    def __init__(
        self,
        positions: np.ndarray,
        depth_m: np.ndarray,
        kind: Literal["sector", "linear"] = "sector",
        out_shape: tuple[int, int] = (512, 512),
        extent_m: tuple[float, float, float, float] | None = None,
    ) -> None:
        positions = np.asarray(positions, dtype=np.float64)
        depth_m = np.asarray(depth_m, dtype=np.float64)
        if kind not in ("sector", "linear"):
            raise ValueError(f"kind={kind!r} must be 'sector' or 'linear'")
        if positions.ndim != 1 or positions.size < 2:
            raise ValueError(
                f"positions must be 1-D with at least 2 lines, got shape {positions.shape}"
            )
        if depth_m.ndim != 1 or depth_m.size < 2:
            raise ValueError(f"depth_m must be 1-D with at least 2 samples, got {depth_m.shape}")
        if not (np.isfinite(positions).all() and np.isfinite(depth_m).all()):
            raise ValueError("positions and depth_m must be finite")
        if np.any(np.diff(depth_m) <= 0):
            raise ValueError("depth_m must be strictly increasing")
        order = np.argsort(positions, kind="stable")
        sorted_pos = positions[order]
        if np.any(np.diff(sorted_pos) <= 0):
            raise ValueError(
                "positions contain duplicates; give each line a distinct angle or position "
                "(drop or average repeated lines first)"
            )
        if kind == "sector":
            if np.any(np.abs(positions) >= np.pi / 2):
                raise ValueError("sector angles must lie within (-pi/2, pi/2) radians")
            if depth_m[0] < 0:
                raise ValueError(f"sector depth_m must be >= 0, got {depth_m[0]!r}")
        height, width = (int(v) for v in out_shape)
        if height < 1 or width < 1:
            raise ValueError(f"out_shape={out_shape!r} must be two positive integers")

        self.kind = kind
        self.positions = positions.copy()
        self.depth_m = depth_m.copy()
        self.out_shape = (height, width)
        self.in_shape = (positions.size, depth_m.size)
        self._order = order
        self._sorted_pos = sorted_pos
        self.extent_m = (
            tuple(float(v) for v in extent_m)
            if extent_m is not None
            else self._default_extent()
        )
        x_min, x_max, z_min, z_max = self.extent_m
        if not (x_max > x_min and z_max > z_min):
            raise ValueError(f"extent_m={self.extent_m!r} must have x_max > x_min, z_max > z_min")
        self.pixel_size_m = ((z_max - z_min) / height, (x_max - x_min) / width)
        self._build_table()

    def _default_extent(self) -> tuple[float, float, float, float]:
        """Bounding box of the field of view: (x_min, x_max, z_min, z_max) in metres."""
        p, d = self._sorted_pos, self.depth_m
        if self.kind == "linear":
            return float(p[0]), float(p[-1]), float(d[0]), float(d[-1])
        theta = np.linspace(p[0], p[-1], 1025)
        if p[0] < 0.0 < p[-1]:
            theta = np.append(theta, 0.0)
        x, z = beam_xy("sector", theta[None, :], np.array([d[0], d[-1]])[:, None])
        return float(x.min()), float(x.max()), float(z.min()), float(z.max())

    def _lateral_range(self, x_m: np.ndarray, z_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map Cartesian points to (position along the line axis, range along the beam)."""
        return beam_coordinates(self.kind, x_m, z_m)

    def _build_table(self) -> None:
        """Precompute the four flat source indices and bilinear weights of every pixel."""
        height, width = self.out_shape
        rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        x_m, z_m = self.pixel_to_world(rows.ravel(), cols.ravel())
        lateral, rng = self._lateral_range(x_m, z_m)
        n_lines, n_samples = self.in_shape
        inside = (
            (lateral >= self._sorted_pos[0])
            & (lateral <= self._sorted_pos[-1])
            & (rng >= self.depth_m[0])
            & (rng <= self.depth_m[-1])
        )
        # Fractional index between the real neighbouring lines (uneven spacing included).
        line_f = np.interp(lateral, self._sorted_pos, np.arange(n_lines))
        sample_f = np.interp(rng, self.depth_m, np.arange(n_samples))
        line0 = np.clip(np.floor(line_f).astype(np.intp), 0, n_lines - 2)
        sample0 = np.clip(np.floor(sample_f).astype(np.intp), 0, n_samples - 2)
        wl = line_f - line0
        ws = sample_f - sample0
        line_a = self._order[line0]
        line_b = self._order[line0 + 1]
        index = np.stack([
            line_a * n_samples + sample0,
            line_a * n_samples + sample0 + 1,
            line_b * n_samples + sample0,
            line_b * n_samples + sample0 + 1,
        ])
        weight = np.stack([(1 - wl) * (1 - ws), (1 - wl) * ws, wl * (1 - ws), wl * ws])
        # One sparse row of four weights per pixel in view, none outside: applying the table is
        # one compiled matrix-vector product, with no (4, pixels) gather and product arrays to
        # write and read back (half the time of the gather-multiply-sum it replaced).
        self._matrix = sparse.csr_array(
            (weight[:, inside].T.ravel().astype(np.float32),
             index[:, inside].T.ravel().astype(np.int32),
             np.concatenate([[0], np.cumsum(inside * 4)]).astype(np.int32)),
            shape=(height * width, n_lines * n_samples))
        self.fov_mask = inside.reshape(height, width)
        self.fov_mask.flags.writeable = False
        self._in_f32 = np.empty(n_lines * n_samples, dtype=np.float32)
        self._out_u8 = np.zeros((height, width), dtype=np.uint8)
        self._out_f32 = np.zeros((height, width), dtype=np.float32)

    def convert(self, data: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """Resample ``data`` ``(n_lines, n_samples)`` onto the (H, W) grid.

        uint8 in → uint8 out (rounded); anything else → float32 out. Without ``out`` the result
        is the converter's own reusable buffer: copy it to keep it past the next call.
        """
        data = np.asarray(data)
        if data.shape != self.in_shape:
            raise ValueError(
                f"data has shape {data.shape}; this converter was built for {self.in_shape} "
                f"(n_lines, n_samples); build a new ScanConverter for a new geometry"
            )
        if data.dtype.kind == "c":
            raise TypeError("data is complex; convert the envelope or the image, not the IQ")
        dtype = np.uint8 if data.dtype == np.uint8 else np.float32
        target = (self._out_u8 if dtype == np.uint8 else self._out_f32) if out is None else out
        self._check_out(target, dtype)
        flat = self._in_f32
        np.copyto(flat.reshape(self.in_shape), data, casting="unsafe")
        pixels = self._matrix @ flat
        if dtype == np.uint8:
            # the weights of a pixel sum to 1, so levels stay within 0..255: +0.5 and truncate
            # is rounding
            np.add(pixels, np.float32(0.5), out=target.reshape(-1), casting="unsafe")
        else:
            np.copyto(target.reshape(-1), pixels)
        return target

    def _check_out(self, out: np.ndarray, dtype: type) -> None:
        """Raise unless ``out`` is a C-contiguous (H, W) array of ``dtype``."""
        if out.shape != self.out_shape or out.dtype != dtype or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be C-contiguous {np.dtype(dtype)} of shape {self.out_shape}, got "
                f"{out.dtype} of shape {out.shape}"
            )

    def world_to_pixel(self, x_m: np.ndarray, z_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map physical points (x, z) in metres to fractional (row, col); integers are centres."""
        x_min, _, z_min, _ = self.extent_m
        dz, dx = self.pixel_size_m
        row = (np.asarray(z_m, dtype=np.float64) - z_min) / dz - 0.5
        col = (np.asarray(x_m, dtype=np.float64) - x_min) / dx - 0.5
        return row, col

    def pixel_to_world(self, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map (row, col) pixel coordinates (integers = centres) to physical (x, z) in metres."""
        x_min, _, z_min, _ = self.extent_m
        dz, dx = self.pixel_size_m
        x_m = x_min + (np.asarray(col, dtype=np.float64) + 0.5) * dx
        z_m = z_min + (np.asarray(row, dtype=np.float64) + 0.5) * dz
        return x_m, z_m

    def pixel_to_line(self, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map pixels to (nearest line index in the caller's line order, range along the beam in m).

        The line index is -1 for pixels outside the field of view.
        """
        x_m, z_m = self.pixel_to_world(row, col)
        lateral, rng = self._lateral_range(x_m, z_m)
        pos = self._sorted_pos
        right = np.clip(np.searchsorted(pos, lateral), 1, pos.size - 1)
        left = right - 1
        nearest = np.where(lateral - pos[left] <= pos[right] - lateral, left, right)
        line = self._order[nearest]
        inside = (
            (lateral >= pos[0]) & (lateral <= pos[-1])
            & (rng >= self.depth_m[0]) & (rng <= self.depth_m[-1])
        )
        return np.where(inside, line, -1), rng
