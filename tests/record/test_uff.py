"""``sonobridge export run.h5 --uff out.uff``: USTB UFF channel data of a simulated sector
run and of the pic0rick twin's fixed element, read back with pyuff-ustb and compared with the
recording; and the one-line errors."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import pyuff_ustb as uff

from sonobridge.cli import main
from sonobridge.device.frames import SOUND_SPEED_M_S
from sonobridge.protocol import SweepKind
from sonobridge.record import open_recording
from sonobridge.record.hdf5_schema import row_offset

from ..device.device_fixtures import twin_on_pty
from .record_fixtures import flip_byte, record_sector_run

N_FRAMES = 4
LINES = 16
SAMPLES = 256


@pytest.fixture(scope="module")
def sector(tmp_path_factory) -> tuple[Path, Path]:
    """A short sector run of the simulated board (HDF5 and raw capture)."""
    return record_sector_run(tmp_path_factory.mktemp("uff"), N_FRAMES, LINES, SAMPLES)


def expected_data(h5: Path, n_channels: int, fixed: bool) -> np.ndarray:
    """The recording's rows as UFF data (samples x channels x waves x frames): code minus
    zero level, each wave's samples on the channel of its line (channel 0 for a fixed beam)."""
    with open_recording(h5) as rec:
        seg = rec.segments[0]
        ens = int(seg.attrs["ensemble_size"])
        n_waves = int(seg.attrs["lines_per_frame"]) * ens
        runs = seg.frame_runs()
        data = np.zeros((seg.n_samples, n_channels, n_waves, len(runs)), np.float32)
        zero = int(seg.attrs["zero_level"])
        for f, (_, start, end) in enumerate(runs):
            for row in range(start, end):
                m = seg.lines[row]
                line, firing = int(m["line_index"]), int(m["ensemble_index"])
                values = seg.samples[row].astype(np.int64) - zero
                data[:, 0 if fixed else line, line * ens + firing, f] = values
    return data


def test_a_sector_run_reads_back_with_its_samples_and_geometry(sector, tmp_path):
    h5, _ = sector
    out = tmp_path / "run.uff"
    assert main(["export", str(h5), "--uff", str(out)]) == 0
    cd = uff.Uff(str(out)).read("channel_data")
    with open_recording(h5) as rec:
        seg = rec.segments[0]
        a, config = seg.attrs, seg.config
        angles = np.array([np.mean(seg.lines["beam_position"][seg.lines["line_index"] == i])
                           for i in range(LINES)]) * 1e-6
    assert int(a["sweep_kind"]) == SweepKind.SECTOR
    assert cd.data.shape == (SAMPLES, LINES, LINES, N_FRAMES)
    assert cd.data.dtype == np.float32
    np.testing.assert_array_equal(cd.data, expected_data(h5, LINES, fixed=False))
    assert cd.sampling_frequency == a["sample_rate_hz"]
    assert cd.sound_speed == SOUND_SPEED_M_S
    assert cd.initial_time == pytest.approx(a["start_delay_samples"] / a["sample_rate_hz"])
    assert cd.modulation_frequency == 0
    assert cd.pulse.center_frequency == config["pulse_freq_hz"]
    assert config["prf_hz"] == cd.PRF
    probe = cd.probe
    assert isinstance(probe, uff.CurvilinearArray) and probe.N_elements == LINES
    np.testing.assert_allclose(probe.theta, angles)
    np.testing.assert_array_equal(probe.xyz, 0)  # every virtual element at the pivot
    assert len(cd.sequence) == LINES
    for i, wave in enumerate(cd.sequence):
        assert wave.wavefront == uff.Wavefront.spherical
        assert wave.source.azimuth == pytest.approx(angles[i])
        assert np.flatnonzero(wave.apodization.apodization_vector).tolist() == [i]


def test_a_fixed_element_is_one_channel_and_a_wave_per_firing(tmp_path):
    h5, out = tmp_path / "pic0rick.h5", tmp_path / "pic0rick.uff"
    with twin_on_pty("pic0rick") as (_, port):
        assert main(["record", port, "-o", str(h5), "--seconds", "1"]) == 0
    assert main(["export", str(h5), "--uff", str(out)]) == 0
    cd = uff.Uff(str(out)).read("channel_data")
    with open_recording(h5) as rec:
        seg = rec.segments[0]
        a, n_frames = seg.attrs, len(seg.frame_runs())
        f0 = (seg.config or {}).get("pulse_freq_hz") or rec.device_info.transducer_freq_hz
    assert int(a["sweep_kind"]) == SweepKind.FIXED and n_frames > 0
    assert a["zero_level"] == 512  # 10-bit offset binary: the data are signed codes
    # one element, one firing (one line) per frame
    assert cd.data.shape == (seg.n_samples, 1, 1, n_frames) and cd.data.dtype == np.float32
    np.testing.assert_array_equal(cd.data, expected_data(h5, 1, fixed=True))
    assert cd.sampling_frequency == a["sample_rate_hz"] == 60_000_000
    assert cd.sound_speed == SOUND_SPEED_M_S
    assert cd.initial_time == pytest.approx(a["start_delay_samples"] / a["sample_rate_hz"])
    assert cd.modulation_frequency == 0
    assert cd.pulse.center_frequency == f0
    assert type(cd.probe) is uff.Probe and cd.probe.N_elements == 1
    np.testing.assert_array_equal(cd.probe.geometry[:5], 0)
    assert isinstance(cd.sequence, uff.Wave)  # a single wave is stored as one, not a list


def test_an_existing_output_needs_force(sector, tmp_path, capsys):
    h5, _ = sector
    out = tmp_path / "exists.uff"
    out.write_bytes(b"keep me")
    assert main(["export", str(h5), "--uff", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "exists; use --force" in err
    assert out.read_bytes() == b"keep me"
    assert main(["export", str(h5), "--uff", str(out), "--force"]) == 0
    assert uff.Uff(str(out)).read("channel_data").data.shape[-1] == N_FRAMES


def test_a_raw_capture_is_refused(sector, tmp_path, capsys):
    _, raw = sector
    out = tmp_path / "raw.uff"
    assert main(["export", str(raw), "--uff", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "raw capture" in err and "sonobridge convert" in err
    assert not out.exists()


def test_damaged_rows_are_left_out_or_kept(sector, tmp_path, capsys):
    h5 = tmp_path / "damaged.h5"
    shutil.copy(sector[0], h5)
    with h5py.File(h5, "r") as f:
        offset = row_offset(f["segments/0000/samples"], LINES + 1)  # frame 1, line 1
        stored = f["segments/0000/samples"][LINES + 1].astype(np.float32)
    flip_byte(h5, offset + 33, 0x10)
    out = tmp_path / "damaged.uff"
    assert main(["export", str(h5), "--uff", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and err.count("\n") == 0 and "--keep-damaged" in err
    cd = uff.Uff(str(out)).read("channel_data")
    assert not cd.data[:, 1, 1, 1].any()  # left out: zeros
    assert cd.data[:, 2, 2, 1].any()
    assert main(["export", str(h5), "--uff", str(out), "--force", "--keep-damaged"]) == 0
    assert capsys.readouterr().err.startswith("warning:")
    kept = uff.Uff(str(out)).read("channel_data").data[:, 1, 1, 1]
    assert kept.any() and not np.array_equal(kept, stored)  # as stored, bit flip included


def test_without_pyuff_ustb_it_says_what_to_install(sector, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyuff_ustb", None)  # import now raises ImportError
    out = tmp_path / "none.uff"
    assert main(["export", str(sector[0]), "--uff", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'sonobridge[formats]'" in err
    assert not out.exists()


def test_the_zeros_of_the_layout_take_no_space(sector, tmp_path):
    h5, _ = sector
    out = tmp_path / "small.uff"
    assert main(["export", str(h5), "--uff", str(out)]) == 0
    with h5py.File(out, "r") as f:
        stored = f["channel_data/data"].id.get_storage_size()
    # of the 16 x 16 (wave, channel) rows per frame only the diagonal is stored
    assert stored == SAMPLES * LINES * N_FRAMES * 4
