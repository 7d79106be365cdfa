"""`sonobridge import`: board files (pic0lib HDF5, pic0rick and un0rick npz, pickled npusz
dicts) become ordinary recordings; hostile files give one-line errors, never a traceback."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonobridge.cli import main
from sonobridge.device import open_device
from sonobridge.protocol.boards import pic0rick_shell as shell
from sonobridge.record import open_recording, verify_recording
from sonobridge.record.importers import ImportFailure, import_file
from sonobridge.record.importers.safe_unpickle import safe_loads
from sonobridge.record.urlhandler.protocol_replay import replay_url

RNG = np.random.default_rng(16)


def _codes(shape: tuple[int, ...]) -> np.ndarray:
    """Random 10-bit codes, the extremes included."""
    c = RNG.integers(0, 1024, size=shape).astype(np.uint16)
    c.flat[0], c.flat[-1] = 0, 1023
    return c


def make_pic0lib(path, codes: np.ndarray, gains=None, fech=6e7) -> None:
    """A file laid out as pic0lib writes it: acq_NNNN/signal float32 + group attributes."""
    with h5py.File(path, "w") as f:
        for i, row in enumerate(codes):
            g = f.create_group(f"acq_{i:04d}")
            g.create_dataset("signal", data=((row.astype(np.float32) - 512) / 512),
                             compression="gzip")
            g.attrs.update({"Fech": fech, "pon": 70, "poff": 70, "damp": 6000,
                            "gain": (gains or [100] * len(codes))[i], "target": "steel block",
                            "piezo_id": "Pink 5MHz", "timestamp": f"2026-05-16T15:35:{10 + i:02d}"})


def make_pic0rick_npz(path, codes: np.ndarray, **extra) -> None:
    """The older shell's capture: signal, t built as k/64 µs, f, gain index, timestamp."""
    n = codes.size
    data = {"signal": (codes.astype(np.float64) - 512) / 512, "t": np.arange(n) / 64.0,
            "f": np.arange(n) * 64 / n, "gain": 3, "timestamp": "20241020164040", **extra}
    np.savez_compressed(path, **{k: v for k, v in data.items() if v is not None})


def make_un0rick_npz(path, codes: np.ndarray, scale: int = 512) -> None:
    """An un0usb capture: signal [lines, 16384] float64, t in µs, 32 TGC codes, settings."""
    with open(path, "wb") as f:  # a file object: np.savez would add .npz to the name
        np.savez(f, signal=(codes.astype(np.float64) - 512) / scale,
                 t=np.arange(codes.shape[1]) / 64.0, nblines=codes.shape[0],
                 gain=np.linspace(100, 918, 32).astype(np.int64), t_on=16, t_off=128,
                 t_inter=7, t_delay=7, dac=256, doublerate=1, libversion="0.2.7",
                 timestamp="20240208182811")


def run(*argv) -> int:
    return main(["import", *map(str, argv)])


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def samples_of(path) -> tuple[np.ndarray, dict]:
    with open_recording(path) as rec:
        assert verify_recording(rec) == [] and rec.complete
        rows = np.concatenate([s.samples[:] for s in rec.segments])
        return rows, {"dialect": rec.dialect, "nominal": rec.nominal_fields,
                      "attrs": dict(rec.attrs), "seg": dict(rec.segments[0].attrs),
                      "segments": len(rec.segments), "frames": rec.frames.copy()}


# -- each format ---------------------------------------------------------------------------


def test_pic0lib_codes_rate_provenance(tmp_path, capsys):
    codes = _codes((5, shell.N_SAMPLES))
    src, out = tmp_path / "scan.h5", tmp_path / "out.h5"
    make_pic0lib(src, codes, gains=[0, 100, 100, 200, 0])
    assert run(src, "-o", out) == 0
    assert "pic0lib" in capsys.readouterr().out
    rows, meta = samples_of(out)
    assert rows.dtype == np.uint16 and np.array_equal(rows, codes)
    assert meta["seg"]["sample_rate_hz"] == 60_000_000 and meta["seg"]["adc_bits"] == 10
    assert meta["seg"]["sample_format_name"] == "U16_OB" and meta["seg"]["lines_per_frame"] == 1
    assert meta["dialect"] == "import:pic0lib"
    assert set(shell.NOMINAL_FIELDS) <= set(meta["nominal"])
    a = meta["attrs"]
    assert a["imported_from"] == str(src.resolve()) and a["import_format"] == "pic0lib"
    assert a["import_exact"] and "gain" in json.loads(a["import_nominal"])
    acqs = json.loads(a["import_metadata"])["acquisitions"]
    assert [m["gain"] for m in acqs] == [0, 100, 100, 200, 0]
    # settings that differ give configurations of their own (segments), in order
    assert meta["segments"] == 4
    assert list(meta["frames"]["frame_index"]) == [0, 1, 2, 3, 4]
    assert meta["frames"]["complete"].all()


def test_pic0rick_npz_flags_the_64_mhz_t(tmp_path, capsys):
    codes = _codes((shell.N_SAMPLES,))
    src, out = tmp_path / "capture.npz", tmp_path / "out.h5"
    make_pic0rick_npz(src, codes)
    assert run(src, "-o", out) == 0
    printed = capsys.readouterr().out
    assert "t assumes 64 MHz" in printed and "60 MS/s is used" in printed
    rows, meta = samples_of(out)
    assert np.array_equal(rows[0], codes) and meta["seg"]["sample_rate_hz"] == 60_000_000
    a = meta["attrs"]
    assert any("64 MHz" in n for n in json.loads(a["import_notes"]))
    nominal = json.loads(a["import_nominal"])
    assert "64 MHz" in nominal["sample_rate_hz"] and "DAC code 300" in nominal["gain"]
    assert json.loads(a["import_metadata"])["dac_code"] == 300
    assert "adc_rate_hz" in meta["nominal"] and meta["dialect"] == "import:pic0rick-npz"


def test_pic0rick_npz_without_gain_says_gain_unknown(tmp_path):
    src = tmp_path / "pic0gain_at_7.npz"  # the name's 7 must not be read as the gain
    make_pic0rick_npz(src, _codes((shell.N_SAMPLES,)), gain=None)
    import_file(src, tmp_path / "out.h5")
    _, meta = samples_of(tmp_path / "out.h5")
    assert json.loads(meta["attrs"]["import_nominal"])["gain"].startswith("unknown")
    assert "dac_code" not in json.loads(meta["attrs"]["import_metadata"])


def test_un0rick_lines_per_acquisition(tmp_path):
    codes = _codes((4, 16384))
    src, out = tmp_path / "acq.npz", tmp_path / "out.h5"
    make_un0rick_npz(src, codes)
    res = import_file(src, out)
    assert (res.format, res.frames, res.lines, res.exact) == ("un0rick-npz", 1, 4, True)
    rows, meta = samples_of(out)
    assert np.array_equal(rows, codes)
    assert meta["seg"]["sample_rate_hz"] == 64_000_000 and meta["seg"]["lines_per_frame"] == 4
    md = json.loads(meta["attrs"]["import_metadata"])
    assert md["t_on"] == 16 and md["libversion"] == "0.2.7" and len(md["gain"]) == 32


def test_un0rick_older_scale_is_recognised_and_inexact_values_are_said(tmp_path):
    codes = _codes((2, 512))
    make_un0rick_npz(tmp_path / "old.npz", codes, scale=256)
    res = import_file(tmp_path / "old.npz", tmp_path / "old.h5")
    assert res.exact and any("/ 256" in n for n in res.notes)
    assert np.array_equal(samples_of(tmp_path / "old.h5")[0], codes)
    np.savez(tmp_path / "odd.npz", signal=np.full((1, 64), 0.0011), t_on=1, t_off=1)
    res = import_file(tmp_path / "odd.npz", tmp_path / "odd.h5")
    assert not res.exact and any("not exactly" in n for n in res.notes)
    _, meta = samples_of(tmp_path / "odd.h5")
    assert not meta["attrs"]["import_exact"]


def test_npusz_dict_needs_allow_pickle(tmp_path, capsys):
    img = RNG.integers(0, 256, size=(3, 8, 100)).astype(np.float32)
    src = tmp_path / "scan.npusz.npz"
    np.savez(src, {"img": img, "f": 5.0, "sensor": "probe", "Desc": "swept", "meta": {"a": 1}})
    assert run(src, "-o", tmp_path / "o.h5") == 1
    assert "--allow-pickle" in one_error(capsys)
    assert not (tmp_path / "o.h5").exists()
    assert run(src, "-o", tmp_path / "o.h5", "--allow-pickle") == 0
    rows, meta = samples_of(tmp_path / "o.h5")
    assert rows.dtype == np.uint8 and np.array_equal(rows, img.reshape(24, 100))
    assert meta["seg"]["sample_rate_hz"] == 5_000_000 and meta["seg"]["lines_per_frame"] == 8


# -- detection, choices, arguments -------------------------------------------------------------


def test_detection_is_by_content_not_name(tmp_path):
    make_un0rick_npz(tmp_path / "looks.h5", _codes((1, 256)))
    make_pic0lib(tmp_path / "looks.npz", _codes((1, 100)))
    assert import_file(tmp_path / "looks.h5", tmp_path / "a.h5").format == "un0rick-npz"
    assert import_file(tmp_path / "looks.npz", tmp_path / "b.h5").format == "pic0lib"


def test_format_forced_unknown_name_and_existing_output(tmp_path, capsys):
    src = tmp_path / "c.npz"
    make_pic0rick_npz(src, _codes((100,)))
    assert run(src, "-o", tmp_path / "o.h5", "--format", "nope") == 2
    err = one_error(capsys)
    assert all(n in err for n in ("pic0lib", "pic0rick-npz", "un0rick-npz", "npusz"))
    assert run(src, "-o", tmp_path / "o.h5", "--format", "un0rick-npz") == 1
    one_error(capsys)
    assert run(src, "-o", tmp_path / "o.h5", "--format", "pic0rick-npz") == 0
    before = (tmp_path / "o.h5").read_bytes()
    assert run(src, "-o", tmp_path / "o.h5") == 2
    assert "--force" in one_error(capsys)
    assert (tmp_path / "o.h5").read_bytes() == before
    assert run(src, "-o", tmp_path / "o.h5", "--force") == 0
    assert run(tmp_path / "missing.npz", "-o", tmp_path / "x.h5") == 2
    one_error(capsys)


def test_a_sonobridge_recording_is_not_imported_again(tmp_path, capsys):
    src = tmp_path / "c.npz"
    make_pic0rick_npz(src, _codes((100,)))
    import_file(src, tmp_path / "o.h5")
    assert run(tmp_path / "o.h5", "-o", tmp_path / "again.h5") == 1
    assert "already a sonobridge recording" in one_error(capsys)


# -- the recording works like any other ------------------------------------------------------


def test_round_trip_export_png_and_replay(tmp_path):
    src, out = tmp_path / "scan.h5", tmp_path / "out.h5"
    make_pic0lib(src, _codes((3, shell.N_SAMPLES)))
    assert run(src, "-o", out) == 0
    assert main(["export", str(out), "--png", str(tmp_path / "png")]) == 0
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [
        "frame_000000.png", "frame_000001.png", "frame_000002.png"]
    assert main(["export", str(out), "--npz", str(tmp_path / "o.npz")]) == 0
    with np.load(tmp_path / "o.npz") as z:
        assert str(z["dialect"]) == "import:pic0lib"
    with open_device(replay_url(str(out), speed=0)) as dev:
        assert dev.info.board_name == shell.BOARD_NAME and dev.info.adc_rate_hz == 60_000_000
        dev.start()
        frames = list(dev.frames(timeout=5.0, count=3))
    assert [f.samples.shape for f in frames] == [(1, shell.N_SAMPLES)] * 3


def test_un0rick_round_trip_export_png(tmp_path):
    make_un0rick_npz(tmp_path / "a.npz", _codes((8, 2048)))
    assert run(tmp_path / "a.npz", "-o", tmp_path / "a.h5") == 0
    assert main(["export", str(tmp_path / "a.h5"), "--png", str(tmp_path / "png")]) == 0
    assert [p.name for p in (tmp_path / "png").iterdir()] == ["frame_000000.png"]


# -- hostile and malformed files ---------------------------------------------------------------


def _npy_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def _zip(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


class _System:
    """Pickles as a call of os.system: what an attacker puts in a file."""

    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def hostile_files(tmp_path) -> dict[str, tuple[object, list[str], str]]:
    """name → (path, extra arguments, a word the error must hold)."""
    files: dict[str, tuple[object, list[str], str]] = {}
    good = tmp_path / "good.h5"
    make_pic0lib(good, _codes((3, 2000)))
    data = good.read_bytes()
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) // 2])
    files["truncated hdf5"] = (tmp_path / "truncated.h5", [], "")
    with h5py.File(tmp_path / "strings.h5", "w") as f:
        f.create_dataset("acq_0000/signal", data=np.array([b"a", b"b"]))
    files["wrong dtype hdf5"] = (tmp_path / "strings.h5", [], "signal")
    with h5py.File(tmp_path / "huge.h5", "w") as f:
        f.create_dataset("acq_0000/signal", shape=(1 << 40,), dtype="f4", chunks=(1 << 16,))
    files["huge claimed hdf5 shape"] = (tmp_path / "huge.h5", [], "1 to")
    with h5py.File(tmp_path / "nan.h5", "w") as f:
        f.create_dataset("acq_0000/signal", data=np.full(10, np.nan, np.float32))
    files["NaN samples"] = (tmp_path / "nan.h5", [], "NaN")
    with h5py.File(tmp_path / "attr.h5", "w") as f:
        f.create_dataset("acq_0000/signal", data=np.zeros(10, np.float32))
        f["acq_0000"].attrs["Fech"] = np.arange(5.0)
    files["array attribute"] = (tmp_path / "attr.h5", [], "Fech")
    _zip(tmp_path / "bomb.npz", {"signal.npy": _npy_header("<f8", (1 << 40, 16384)),
                                 "t_on.npy": _npy_header("<i8", ()), "t_off.npy": b""})
    files["huge claimed npz shape"] = (tmp_path / "bomb.npz", [], "")
    _zip(tmp_path / "short.npz", {"signal.npy": _npy_header("<f8", (2, 64)) + b"\0" * 100,
                                  "t_on.npy": _npy_header("<i8", ()) + b"\0" * 8,
                                  "t_off.npy": _npy_header("<i8", ()) + b"\0" * 8})
    files["npz data shorter than its header"] = (tmp_path / "short.npz", [], "bytes")
    np.savez(tmp_path / "textsig.npz", signal=np.array(["a", "b"]), t=np.arange(2.0))
    files["text signal npz"] = (tmp_path / "textsig.npz", [], "")
    (tmp_path / "notzip.npz").write_bytes(b"PK\x03\x04garbage" * 10)
    files["broken zip"] = (tmp_path / "notzip.npz", [], "npz")
    (tmp_path / "random.bin").write_bytes(RNG.bytes(4096))
    files["random bytes"] = (tmp_path / "random.bin", [], "neither")
    np.savez(tmp_path / "pickled.npz", np.array([{"img": np.zeros((1, 1, 4))}], dtype=object))
    files["pickle without --allow-pickle"] = (tmp_path / "pickled.npz", [], "--allow-pickle")
    evil = np.empty(1, dtype=object)
    evil[0] = _System()
    np.savez(tmp_path / "evil.npz", evil)
    files["os.system pickle with --allow-pickle"] = (tmp_path / "evil.npz", ["--allow-pickle"],
                                                     "posix.system")
    return files


def test_hostile_files_give_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, (path, extra, word) in hostile_files(tmp_path).items():
        out = tmp_path / "out.h5"
        code = run(path, "-o", out, *extra)
        err = one_error(capsys)
        assert code == 1, (name, err)
        assert word in err, (name, err)
        assert not out.exists(), name
        assert not list(tmp_path.glob(".out.h5.importing-*")), name
    assert not (tmp_path / "pwned.txt").exists()


def test_restricted_unpickler_refuses_calls_and_allocation_bombs():
    assert safe_loads(pickle.dumps({"a": [1, 2.5, None, True, b"x", ("t",)]}), what="x") == \
        {"a": [1, 2.5, None, True, b"x", ("t",)]}
    arr = np.arange(12.0).reshape(3, 4)
    for protocol in (2, 3, 4, 5):
        assert np.array_equal(safe_loads(pickle.dumps(arr, protocol=protocol), what="x"), arr)
    for evil in (pickle.dumps(_System()), b"cos\nsystem\n(S'echo'\ntR.",
                 b"cbuiltins\neval\n(S'1'\ntR."):
        with pytest.raises(ImportFailure):
            safe_loads(evil, what="x")
    # numpy.ndarray itself may not be called (it would allocate any shape it is given)
    with pytest.raises(ImportFailure, match="calls something other"):
        safe_loads(b"cnumpy\nndarray\nJ\x00\x00\x00\x40\x85\x85R.", what="x")
    # an array state claiming 1 TB in a few bytes is refused before numpy allocates
    bomb = pickle.dumps(np.zeros(2), protocol=3)
    assert b"K\x02\x85" in bomb
    with pytest.raises(ImportFailure, match="claims shape"):
        safe_loads(bomb.replace(b"K\x02\x85", b"\x8a\x05\x00\x00\x00\x00\x20\x85"),
                   what="x")


# -- damaged copies of valid files: whatever the damage, a result or one error line -----------


def _valid_files(tmp_path) -> dict[str, bytes]:
    make_pic0lib(tmp_path / "v.h5", _codes((2, 500)))
    make_pic0rick_npz(tmp_path / "v.npz", _codes((500,)))
    make_un0rick_npz(tmp_path / "u.npz", _codes((2, 256)))
    return {n: (tmp_path / n).read_bytes() for n in ("v.h5", "v.npz", "u.npz")}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["v.h5", "v.npz", "u.npz"]),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_damaged_files_never_raise(tmp_path_factory, capsys, which, flips, cut):
    tmp = tmp_path_factory.mktemp("fuzz")
    data = bytearray(_valid_files(tmp)[which])
    for where, value in flips:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    src = tmp / f"damaged-{which}"
    src.write_bytes(bytes(data))
    capsys.readouterr()
    code = run(src, "-o", tmp / "out.h5")
    if code == 0:
        samples_of(tmp / "out.h5")
    else:
        assert code == 1
        one_error(capsys)
        assert not (tmp / "out.h5").exists()


def test_pic0lib_timestamps_that_cannot_be_compared_are_marked(tmp_path):
    make_pic0lib(tmp_path / "a.h5", _codes((2, 100)))
    with h5py.File(tmp_path / "a.h5", "a") as f:
        f["acq_0001"].attrs["timestamp"] = "2026-05-16T15:35:12+02:00"  # the other is naive
    import_file(tmp_path / "a.h5", tmp_path / "o.h5")
    _, meta = samples_of(tmp_path / "o.h5")
    assert "inconsistent" in json.loads(meta["attrs"]["import_nominal"])["timestamp_us"]
