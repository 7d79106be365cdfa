"""Phantom files: builtins, ground truth, validation errors, user-written files."""

from __future__ import annotations

import numpy as np
import pytest

from sonobridge.sim import Acquisition, EchoSynth, PhantomError, builtin_phantoms, load_phantom

from .sim_fixtures import envelope, fixed_acq, peak

GOOD = """
name = "mine"
description = "a user phantom"
[region]
x_m = [-0.01, 0.01]
z_m = [0.0, 0.05]
[[point]]
x_m = 0.0
z_m = 0.021
amplitude = 0.5
"""


def test_builtins_are_listed_with_descriptions_and_load():
    names = builtin_phantoms()
    assert {"wire", "cyst", "layers"} <= set(names)
    for name, description in names.items():
        ph = load_phantom(name)
        assert ph.name == name and description and ph.description == description


@pytest.mark.parametrize("name", sorted(builtin_phantoms()))
def test_every_builtin_renders(name):
    synth = EchoSynth(load_phantom(name), seed=1)
    synth.prepare(Acquisition(positions=np.radians(np.linspace(-30, 30, 16)), n_samples=1024))
    frame = synth.frame()
    assert frame.shape == (16, 1024) and np.isfinite(frame).all()
    assert np.abs(synth.clean_rf).max() > 0.01


def test_ground_truth_of_builtins():
    wire = load_phantom("wire")
    on_axis = sorted(z for x, z in wire.point_positions_m if x == 0)
    assert on_axis[:4] == [0.01, 0.02, 0.03, 0.04]
    assert any(x != 0 for x, _ in wire.point_positions_m)
    (cyst,) = load_phantom("cyst").cysts
    assert (cyst.x_m, cyst.z_m, 2 * cyst.radius_m) == (0.0, 0.025, 0.006)
    layers = load_phantom("layers")
    assert layers.interface_depths_m == (0.002, 0.005, 0.014, 0.032)
    truth = layers.truth()
    assert truth["interfaces_m"] == [0.002, 0.005, 0.014, 0.032]


def test_layer_interfaces_appear_at_their_depths():
    synth = EchoSynth(load_phantom("layers"), seed=2)
    synth.prepare(Acquisition(positions=np.linspace(-0.01, 0.01, 32), sweep_kind="linear"))
    # mean over lines: a partly diffuse interface is speckled along its length
    env = envelope(synth.clean_rf).mean(axis=0)
    d = synth.depth_m
    for z in synth.phantom.interface_depths_m[1:]:
        value, depth = peak(env, d, z, 0.3e-3)
        above = env[(d > z - 1.5e-3) & (d < z - 0.5e-3)]
        assert abs(depth - z) < 0.1e-3
        assert value > 2 * above.mean(), z
    # the bone-like interface shadows what lies below it
    assert env[(d > 0.034) & (d < 0.04)].mean() < 0.5 * env[(d > 0.024) & (d < 0.03)].mean()


def test_user_file_by_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    ph = load_phantom(path)
    assert ph.name == "mine" and ph.source == "mine.toml"
    assert ph.points[0].amplitude == 0.5
    synth = EchoSynth(ph)
    synth.prepare(fixed_acq(1, 2048))
    assert peak(envelope(synth.clean_rf[0]), synth.depth_m, 0.021)[1] == pytest.approx(
        0.021, abs=0.05e-3)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda s: s.replace("z_m = 0.021\n", ""), r"\[\[point\]\] #1: missing key 'z_m'"),
    (lambda s: s + '[[cyst]]\nx_m = 0.0\nz_m = 0.01\nradius_m = "3mm"\n',
     r"\[\[cyst\]\] #1: 'radius_m' must be a finite number \(m\), got '3mm'"),
    (lambda s: s + "[[cyst]]\nx_m = 0.0\nz_m = 0.01\nradius_m = -0.003\n",
     r"\[\[cyst\]\] #1: 'radius_m' must be > 0 \(m\), got -0.003"),
    (lambda s: s + "[[sphere]]\nx_m = 0.0\n", r"unknown element kind 'sphere'; expected one of "
                                              r"point, speckle, cyst"),
    (lambda s: s.replace("amplitude = 0.5", "amplitud = 0.5"), r"unknown key 'amplitud'"),
    (lambda s: s.replace('name = "mine"\n', ""), r"top level: missing key 'name'"),
    (lambda s: s.replace("x_m = [-0.01, 0.01]", "x_m = [0.01, -0.01]"),
     r"\[region\]: 'x_m' must be \[min, max\]"),
    (lambda s: s + "[[speckle]]\namplitude = 0.1\n", r"give exactly one of 'density_per_cell'"),
    (lambda s: s + "[[layer]]\nz_m = 0.01\nreflectivity = 1.5\n", r"'reflectivity' must be < 1"),
    (lambda s: s + "[[moving]]\nx_m = 0\nz_m = 0.01\nmotion_amplitude_m = 0.001\n",
     r"\[\[moving\]\] #1: missing key 'motion_freq_hz'"),
    (lambda s: s + "name2 = = 1\n", r"not valid TOML"),
])
def test_bad_files_give_clear_errors(tmp_path, edit, match):
    path = tmp_path / "bad.toml"
    path.write_text(edit(GOOD))
    with pytest.raises(PhantomError, match=match) as info:
        load_phantom(path)
    assert str(info.value).startswith("bad.toml: ")


def test_unknown_name_lists_builtins():
    with pytest.raises(PhantomError, match=r"not a builtin \(.*cyst.*wire.*\)"):
        load_phantom("no-such-phantom")
