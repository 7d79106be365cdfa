"""The shared background writer, and recording files told apart by their first bytes."""

from __future__ import annotations

import errno
import threading
from collections import deque

import pytest

from sonobridge.record import CaptureReader, DatasetWriter, Recording, RecordingError
from sonobridge.record.background_writer import BackgroundWriter
from sonobridge.record.commands import main
from sonobridge.record.export import export_npz
from sonobridge.record.formats import (
    CAPTURE,
    HDF5,
    READERS,
    UnknownFormatError,
    file_format,
    open_for,
)
from sonobridge.record.raw import CaptureWriter
from sonobridge.record.replay import RecordingSource, open_source

from .record_fixtures import synthetic_lines, wait_until, write_recording

# -- the background writer -----------------------------------------------------------------------


class _Sink:
    def __init__(self, fail_after: int | None = None) -> None:
        self.written: list = []
        self.flushes = 0
        self.lost: list = []
        self.fail_after = fail_after
        self.gate = threading.Event()
        self.gate.set()

    def write(self, items: deque) -> None:
        self.gate.wait(10)
        while items:
            if self.fail_after is not None and len(self.written) >= self.fail_after:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written.append(items.popleft())

    def flush(self) -> None:
        self.flushes += 1

    def failed(self, exc: OSError, lost: deque, during: str) -> None:
        self.lost.append((during, list(lost)))


def _bg(sink: _Sink, **kw) -> BackgroundWriter:
    kw.setdefault("max_queue_bytes", 100)
    return BackgroundWriter(name="test-bg", write_batch=sink.write, flush=sink.flush,
                            on_failure=sink.failed, flush_interval_s=0.01, **kw)


def test_background_writer_writes_in_order_and_flushes_on_close():
    sink = _Sink()
    bg = _bg(sink)
    for i in range(10):
        assert bg.put(i, 1)
    bg.close()
    assert sink.written == list(range(10))
    assert sink.flushes >= 1 and not bg.failed
    assert not bg.put("late")  # nothing is queued after close


def test_background_writer_refuses_beyond_its_bound_without_waiting():
    sink = _Sink()
    bg = _bg(sink, max_queue_bytes=10)
    with bg.lock:  # held: the writer thread cannot empty the queue meanwhile
        assert bg.put("a", 6)
        assert not bg.has_room(6)
        assert not bg.put("b", 6)  # refused at once, not waited for
        assert bg.put("c", 4)
    bg.close()
    assert sink.written == ["a", "c"]


def test_a_failed_write_reports_the_batch_and_the_queue_as_lost():
    sink = _Sink(fail_after=2)
    bg = _bg(sink)
    with bg.lock:
        for i in range(5):
            bg.put(i, 1)
    wait_until(lambda: bg.failed)
    assert not bg.put(99, 1)
    bg.close()
    assert sink.written == [0, 1]
    assert sink.lost == [("write", [2, 3, 4])]


def test_capture_and_dataset_writers_share_the_background_writer(tmp_path):
    cap = CaptureWriter(tmp_path / "a.sbcap")
    assert isinstance(cap._bg, BackgroundWriter)
    cap.close()
    w = DatasetWriter(tmp_path / "b.h5")
    assert isinstance(w._bg, BackgroundWriter)
    w.close()


# -- picked by signature -------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path):
    cap = tmp_path / "c.dat"  # names say nothing: the first bytes decide
    w = CaptureWriter(cap)
    w.write_event({"type": "device_info", "info": {}})
    w.close()
    h5 = tmp_path / "r.bin"
    write_recording(h5, [(synthetic_lines(2, 4, 32), None)])
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not a recording" * 10)
    return cap, h5, junk


def test_readers_are_picked_by_signature(files):
    cap, h5, junk = files
    assert set(READERS) == {CAPTURE.signature, HDF5.signature}
    assert file_format(cap) is CAPTURE and file_format(h5) is HDF5
    assert isinstance(open_for(cap, "read"), CaptureReader)
    with open_for(h5, "read") as rec:
        assert isinstance(rec, Recording) and rec.n_lines == 8
    with pytest.raises(UnknownFormatError) as info:
        file_format(junk)
    text = str(info.value)
    assert str(junk) in text and CAPTURE.name in text and HDF5.name in text
    assert isinstance(info.value, RecordingError) and isinstance(info.value, ValueError)
    with pytest.raises(FileNotFoundError):
        file_format(junk.with_name("missing"))


def test_a_damaged_hdf5_signature_is_still_an_hdf5_recording(files, tmp_path):
    _cap, h5, _junk = files
    data = bytearray(h5.read_bytes())
    data[1:4] = b"XXX"
    bad = tmp_path / "badsig.h5"
    bad.write_bytes(bytes(data))
    assert file_format(bad) is HDF5


def test_replay_export_and_convert_use_the_registry(files, tmp_path, capsys):
    cap, h5, junk = files
    assert isinstance(open_source(h5), RecordingSource)
    with pytest.raises(RecordingError, match="needs one of: sonobridge HDF5"):
        export_npz(cap, tmp_path / "x.npz")
    with pytest.raises(UnknownFormatError, match="none of the known formats"):
        export_npz(junk, tmp_path / "x.npz")
    assert main(["export", str(junk), "--npz", str(tmp_path / "y.npz")]) == 1
    assert "none of the known formats" in capsys.readouterr().err
    assert main(["convert", str(junk), "-o", str(tmp_path / "z.h5")]) == 1
    err = capsys.readouterr().err
    assert str(junk) in err and "none of the known formats" in err
    assert not (tmp_path / "z.h5").exists()
