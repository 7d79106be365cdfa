"""Helpers for the recording tests: simulated sessions, waiting without sleeps, comparisons."""

from __future__ import annotations

import itertools
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

from sonobridge.device import Device, Frame, FrameAssembler
from sonobridge.protocol import DeviceInfo, DeviceState, EchoLine, SampleFormat
from sonobridge.record import DatasetWriter, Recorder, RecordingSummary, open_recording
from sonobridge.record.meta import ConfigChange
from sonobridge.sim.urlhandler.protocol_sim import engine_for

_names = itertools.count()
LINES = 8
SAMPLES = 512
N_FRAMES = 30
CONFIG = {"samples_per_line": SAMPLES, "lines_per_frame": LINES, "prf_hz": 4000}


INFO = DeviceInfo(board_name="test-board", board_id=0x1234, fw_major=1, adc_bits=12,
                  sample_formats=0b1111)


def synthetic_lines(n_frames: int, n_lines: int, n_samples: int, fmt: int = SampleFormat.I16,
                    config_id: int = 1, seq0: int = 0) -> list[EchoLine]:
    """Lines of ``n_frames`` sweeps with distinct, predictable samples and metadata."""
    dtype = {SampleFormat.I16: np.int16, SampleFormat.U8: np.uint8}.get(fmt, np.uint16)
    out = []
    seq = seq0
    for f in range(n_frames):
        for i in range(n_lines):
            samples = ((np.arange(n_samples) * 7 + f * 31 + i) % 200).astype(dtype)
            line = EchoLine(samples, 40_000_000, frame_index=f, line_index=i,
                            lines_per_frame=n_lines, beam_position=-1000 + 100 * i,
                            sweep_kind=1, timestamp_us=10_000 * f + 100 * i,
                            config_id=config_id, sample_format=fmt,
                            adc_bits=12 if fmt != SampleFormat.U8 else 8)
            line.seq = seq
            seq += 1
            out.append(line)
    return out


def write_recording(path: Path, groups, **kw):
    """Write lines of several configurations (each a (lines, config) pair) plus their sweeps
    with a :class:`DatasetWriter`; returns its final stats."""
    w = DatasetWriter(path, **kw)
    w.set_device_info(INFO)
    frames: list[Frame] = []
    asm = FrameAssembler(frames.append)
    t = 1_000
    for lines, config in groups:
        for k, line in enumerate(lines):
            change = ConfigChange(t, line.config_id, config) if k == 0 else None
            w.add_line(line, t, change)
            asm.add_line(line, t)
            t += 1_000
    asm.flush()
    for fr in frames:
        w.add_frame(fr)
    return w.close(accounting={"lines_missing": 0}, stats={"lines_received": t})


def flip_byte(path: Path, offset: int, mask: int = 0xFF) -> None:
    """Invert the bits of ``mask`` in the byte at ``offset`` of a file."""
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ mask]))


def rows_stored_before(path: Path, cut: int, segment: str = "segments/0000") -> int:
    """Rows of an intact recording whose samples and metadata both end at or before byte
    ``cut`` (what a salvage of the file cut there can give back)."""
    import h5py

    from sonobridge.record.hdf5_schema import LINE_DTYPE, row_offset

    with h5py.File(path, "r") as f:
        samples, lines = f[f"{segment}/samples"], f[f"{segment}/lines"]
        per = lines.chunks[0]
        row_bytes = samples.shape[1] * samples.dtype.itemsize
        n = 0
        for r in range(samples.shape[0]):
            l_off = lines.id.get_chunk_info_by_coord((r // per * per,)).byte_offset
            if row_offset(samples, r) + row_bytes > cut or \
                    l_off + (r % per + 1) * LINE_DTYPE.itemsize > cut:
                break
            n += 1
    return n


def sim_url(faults: str = "", seed: int = 3) -> str:
    """A fresh in-process simulated board (wire phantom, ground truth kept)."""
    query = urlencode({"phantom": "wire", "truth": 1, "seed": seed, "faults": faults,
                       "name": f"record-{next(_names)}"})
    return f"sim://?{query}"


def record_sector_run(folder: Path, frames: int, lines: int, samples: int) -> tuple[Path, Path]:
    """``sonobridge record`` of a short sector run of the simulated board: (HDF5, raw capture)."""
    from sonobridge.cli import main

    h5, raw = folder / "run.h5", folder / "run.sbcap"
    assert main(["record", sim_url(), "-o", str(h5), "--raw", str(raw), "--frames",
                 str(frames), "--lines", str(lines), "--samples", str(samples),
                 "--prf", "4000"]) == 0
    return h5, raw


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0,
               what: str = "condition") -> None:
    """Poll ``predicate`` until it holds (a condition with a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        tick.wait(0.005)


def sim_drained(url: str, dev: Device) -> bool:
    """The board is idle, its buffer empty, and the client has read every byte it sent."""
    engine = engine_for(url)
    with engine.lock:
        idle = (engine.board.state == DeviceState.IDLE and engine.board.pending_bytes == 0
                and not engine._carry)
        sent = engine.stats.bytes_sent
    return idle and dev.link.counters.bytes_in >= sent


def replay_ended(dev: Device) -> bool:
    """The replay board said it reached the end of the recording (its last message)."""
    return any("end of the recording" in text for text in dev.stats.logs)


@dataclass
class Session:
    """A finished recorded session."""

    summary: RecordingSummary
    stats: object
    truth: dict[int, EchoLine]
    engine: object


def record_session(port: str, h5: Path | None, raw: Path | None, *,
                   done: Callable[[Device], bool], n_frames: int = N_FRAMES,
                   config: dict | None = None) -> Session:
    """Open ``port`` with a recorder attached, stream, wait for ``done``, stop and close."""
    dev = Device(port)
    rec = Recorder(h5, raw).attach(dev)
    try:
        dev.open()
        dev.configure(**(config or CONFIG))
        dev.start(n_frames=n_frames)
        wait_until(lambda: done(dev), 15.0, "the session to end")
        dev.stop()
        dev.flush()
        dev.status()
        summary = rec.close()
        stats = dev.stats
        engine = engine_for(port) if port.startswith("sim://") else None
        truth = {}
        if engine is not None:
            with engine.lock:
                truth = {s: m for s, m in engine.board.truth if isinstance(m, EchoLine)}
    finally:
        dev.close()
    return Session(summary, stats, truth, engine)


def record_sim(tmp: Path, name: str, faults: str = "", **kw) -> tuple[Session, Path, Path]:
    """Record a simulated session into ``name.h5`` and ``name.sbcap``."""
    url = sim_url(faults)
    h5, raw = tmp / f"{name}.h5", tmp / f"{name}.sbcap"
    session = record_session(url, h5, raw, done=lambda dev: sim_drained(url, dev), **kw)
    return session, h5, raw


def assert_same_recording(a: Path, b: Path, *, host_time: bool = True) -> None:
    """Samples, per-line metadata, sweeps, DEVICE_INFO, configuration and accounting agree.

    ``host_time=False`` is for a replay: it ignores host timestamps (another clock) and the
    byte count (the replay sends its own replies).
    """
    with open_recording(a) as ra, open_recording(b) as rb:
        assert len(ra.segments) == len(rb.segments) >= 1
        for sa, sb in zip(ra.segments, rb.segments, strict=True):
            np.testing.assert_array_equal(sa.samples[:], sb.samples[:])
            la, lb = sa.lines.copy(), sb.lines.copy()
            fa, fb = ra.frames.copy(), rb.frames.copy()
            if not host_time:
                for arr in (la, lb, fa, fb):
                    arr["host_time_ns"] = 0
            np.testing.assert_array_equal(la, lb)
            np.testing.assert_array_equal(fa, fb)
            assert sa.config == sb.config
            assert {k: v for k, v in sa.attrs.items() if k != "first_host_time_ns"} == \
                {k: v for k, v in sb.attrs.items() if k != "first_host_time_ns"}
        assert ra.device_info_dict == rb.device_info_dict
        assert ra.config == rb.config
        acc_a, acc_b = dict(ra.accounting), dict(rb.accounting)
        if not host_time:  # a replay also sends its own replies and end-of-recording LOG
            acc_a.pop("bytes_in"), acc_b.pop("bytes_in")
        assert acc_a == acc_b


def decode_png(data: bytes) -> np.ndarray:
    """Decode the PNGs sonobridge.record.png writes (8-bit grey or RGB, filter 0), checking CRCs."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, color, *_ = header
    assert depth == 8 and color in (0, 2)
    channels = 1 if color == 0 else 3
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * channels)
    assert not raw[:, 0].any(), "only filter type 0 is expected"
    pixels = raw[:, 1:]
    return pixels.reshape(height, width) if channels == 1 else \
        pixels.reshape(height, width, 3)
