"""ScanConverter: wires land on the right pixel for even, uneven and shuffled line positions."""

from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sonobridge.dsp import Chain, ChainConfig, ScanConverter

from . import rf_model

FS, F0 = 40e6, 5e6


def _envelope(x_m: float, z_m: float, positions: np.ndarray, kind: str) -> tuple[np.ndarray,
                                                                                  np.ndarray]:
    rf = rf_model.simulate_rf(rf_model.points([x_m], [z_m]), positions, kind, n_samples=3072)
    result = Chain(ChainConfig(sample_rate_hz=FS, center_freq_hz=F0)).process(0.5 * rf)
    return result.envelope.copy(), result.depth_m


def _blob_centre(picture: np.ndarray) -> tuple[float, float]:
    """Centroid of the pixels above half the maximum around the brightest pixel."""
    row0, col0 = np.unravel_index(int(np.argmax(picture)), picture.shape)
    r0, c0 = max(row0 - 40, 0), max(col0 - 40, 0)
    window = picture[r0:row0 + 41, c0:col0 + 41].astype(np.float64)
    weight = np.clip(window - window.max() / 2, 0.0, None)
    rows, cols = np.indices(window.shape)
    return (r0 + (rows * weight).sum() / weight.sum(), c0 + (cols * weight).sum() / weight.sum())


@pytest.mark.parametrize(
    ("kind", "positions", "x_m", "z_m"),
    [
        ("linear", np.linspace(-10e-3, 10e-3, 96), 2.3e-3, 30e-3),
        ("sector", np.deg2rad(np.linspace(-45, 45, 128)), 40e-3 * np.sin(0.2),
         40e-3 * np.cos(0.2)),
    ],
)
def test_dsp_wire_lands_within_one_pixel(kind: str, positions: np.ndarray, x_m: float,
                                         z_m: float) -> None:
    env, depth_m = _envelope(x_m, z_m, positions, kind)
    sc = ScanConverter(positions, depth_m, kind, out_shape=(512, 512))
    picture = sc.convert(env)
    assert picture.shape == (512, 512) and picture.dtype == np.float32
    row, col = _blob_centre(picture)
    true_row, true_col = sc.world_to_pixel(x_m, z_m)
    assert abs(row - true_row) <= 1.0
    assert abs(col - true_col) <= 1.0
    # The uint8 path puts the brightest pixel in the same neighbourhood.
    image = sc.convert(np.round(255 * env / env.max()).astype(np.uint8))
    assert image.dtype == np.uint8
    brightest = np.unravel_index(int(np.argmax(image)), image.shape)
    assert abs(brightest[0] - true_row) <= 3 and abs(brightest[1] - true_col) <= 3


@lru_cache(maxsize=1)
def _servo_sweep() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A wire seen by a servo whose real angles bend away from the commanded, even ones."""
    nominal = np.deg2rad(np.linspace(-40, 40, 96))
    rng = np.random.default_rng(5)
    spacing = nominal[1] - nominal[0]
    actual = (nominal + np.deg2rad(4.0) * np.sin(np.pi * nominal / nominal[-1])
              + rng.uniform(-0.3, 0.3, nominal.size) * spacing)
    env, depth_m = _envelope(40e-3 * np.sin(0.35), 40e-3 * np.cos(0.35), actual, "sector")
    return nominal, actual, env, depth_m


def test_dsp_uneven_angles_use_the_real_positions() -> None:
    nominal, actual, env, depth_m = _servo_sweep()
    x_m, z_m = 40e-3 * np.sin(0.35), 40e-3 * np.cos(0.35)
    right = ScanConverter(actual, depth_m, "sector")
    row, col = _blob_centre(right.convert(env))
    true_row, true_col = right.world_to_pixel(x_m, z_m)
    assert abs(row - true_row) <= 1.0 and abs(col - true_col) <= 1.0
    # Assuming even spacing puts it far off: the test can tell the difference.
    naive = ScanConverter(nominal, depth_m, "sector", extent_m=right.extent_m)
    row_n, col_n = _blob_centre(naive.convert(env))
    assert np.hypot(row_n - true_row, col_n - true_col) > 3.0


def test_dsp_line_order_does_not_matter() -> None:
    _, actual, env, depth_m = _servo_sweep()
    perm = np.random.default_rng(2).permutation(actual.size)
    in_order = ScanConverter(actual, depth_m, "sector").convert(env).copy()
    shuffled = ScanConverter(actual[perm], depth_m, "sector").convert(env[perm])
    np.testing.assert_allclose(shuffled, in_order, rtol=1e-6, atol=1e-7)


def test_dsp_outside_field_of_view_is_zero_never_nan() -> None:
    angles = np.deg2rad(np.linspace(-30, 30, 64))
    depth_m = np.linspace(5e-3, 60e-3, 400)
    sc = ScanConverter(angles, depth_m, "sector", out_shape=(200, 300))
    picture = sc.convert(np.ones((64, 400), dtype=np.float32))
    assert not np.isnan(picture).any()
    assert (picture[~sc.fov_mask] == 0).all()
    np.testing.assert_allclose(picture[sc.fov_mask], 1.0, rtol=1e-6)
    assert (~sc.fov_mask).sum() > 0.2 * sc.fov_mask.size  # the corners beside the fan
    image = sc.convert(np.full((64, 400), 200, dtype=np.uint8))
    assert (image[sc.fov_mask] == 200).all() and (image[~sc.fov_mask] == 0).all()


def test_dsp_output_buffer_is_reused_and_out_is_honoured() -> None:
    sc = ScanConverter(np.linspace(-0.01, 0.01, 16), np.linspace(0, 0.05, 100), "linear",
                       out_shape=(64, 32))
    data = np.random.default_rng(0).random((16, 100)).astype(np.float32)
    first = sc.convert(data)
    assert sc.convert(data * 2) is first
    mine = np.empty((64, 32), dtype=np.float32)
    assert sc.convert(data, out=mine) is mine
    with pytest.raises(ValueError, match="out must be"):
        sc.convert(data, out=np.empty((32, 64), dtype=np.float32))


def test_dsp_extent_and_pixel_mapping_round_trip() -> None:
    positions = np.linspace(-0.02, 0.02, 33)
    depth_m = np.linspace(0.0, 0.08, 801)
    sc = ScanConverter(positions, depth_m, "linear", out_shape=(400, 200))
    assert sc.extent_m == pytest.approx((-0.02, 0.02, 0.0, 0.08))
    x_m, z_m = sc.pixel_to_world(np.array([0, 399]), np.array([0, 199]))
    np.testing.assert_allclose(x_m, [-0.02 + 0.0001, 0.02 - 0.0001])
    np.testing.assert_allclose(z_m, [0.0001, 0.08 - 0.0001])
    row, col = sc.world_to_pixel(x_m, z_m)
    np.testing.assert_allclose(row, [0, 399], atol=1e-9)
    np.testing.assert_allclose(col, [0, 199], atol=1e-9)
    line, rng = sc.pixel_to_line(np.array([200]), np.array([0]))
    assert line[0] == 0 and rng[0] == pytest.approx(0.0401)


def test_dsp_pixel_to_line_finds_nearest_real_line_in_sector() -> None:
    angles = np.array([-0.4, -0.1, 0.0, 0.35])  # uneven and deliberately not symmetric
    depth_m = np.linspace(0.0, 0.05, 200)
    sc = ScanConverter(angles[::-1], depth_m, "sector", out_shape=(256, 256))
    x_m, z_m = 0.03 * np.sin(0.3), 0.03 * np.cos(0.3)
    row, col = sc.world_to_pixel(x_m, z_m)
    line, rng = sc.pixel_to_line(np.round(row), np.round(col))
    assert line == 0  # angle 0.35 is the first line of the reversed order
    assert rng == pytest.approx(0.03, abs=2 * max(sc.pixel_size_m))
    outside, _ = sc.pixel_to_line(np.array([0]), np.array([0]))
    assert outside[0] == -1


@pytest.mark.parametrize(
    ("positions", "depth_m", "kind", "match"),
    [
        (np.array([0.0, 0.1, 0.1]), np.linspace(0, 0.05, 10), "sector", "duplicates"),
        (np.array([0.0, 2.0]), np.linspace(0, 0.05, 10), "sector", "pi/2"),
        (np.array([0.0, 0.1]), np.linspace(0.05, 0, 10), "sector", "strictly increasing"),
        (np.array([0.0]), np.linspace(0, 0.05, 10), "linear", "at least 2 lines"),
        (np.array([0.0, 0.1]), np.linspace(0, 0.05, 10), "polar", "'sector' or 'linear'"),
    ],
)
def test_dsp_bad_geometry_is_refused(positions: np.ndarray, depth_m: np.ndarray, kind: str,
                                     match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ScanConverter(positions, depth_m, kind)  # type: ignore[arg-type]


def test_dsp_wrong_data_shape_is_refused() -> None:
    sc = ScanConverter(np.array([0.0, 0.1]), np.linspace(0, 0.05, 10), "sector", (8, 8))
    with pytest.raises(ValueError, match=r"built for \(2, 10\)"):
        sc.convert(np.zeros((3, 10), dtype=np.float32))
    with pytest.raises(TypeError, match="complex"):
        sc.convert(np.zeros((2, 10), dtype=np.complex64))


@given(kind=st.sampled_from(["sector", "linear"]),
       position=st.floats(-1.0, 1.0), range_m=st.floats(1e-4, 0.3))
def test_beam_xy_and_beam_coordinates_are_inverse(kind: str, position: float,
                                                  range_m: float) -> None:
    """The one geometry of a beam: a sample's (x, z) maps back to its line position and range."""
    from sonobridge.dsp import beam_coordinates, beam_xy

    x, z = beam_xy(kind, position, range_m)
    p, r = beam_coordinates(kind, x, z)
    np.testing.assert_allclose([float(p), float(r)], [position, range_m], rtol=1e-9, atol=1e-12)
    if kind == "sector":
        assert float(z) > 0 and np.isclose(float(np.hypot(x, z)), range_m)
