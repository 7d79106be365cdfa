"""Recording a live board: the glue between a :class:`~sonobridge.device.Device` and the writers.

    from sonobridge.device import Device
    from sonobridge.record import Recorder

    dev = Device("sim://?phantom=wire")
    rec = Recorder("session.h5", raw_path="session.sbcap").attach(dev)
    dev.open()                       # attached first, so the capture holds the handshake too
    dev.configure(depth_m=0.05)
    dev.start()
    ...
    dev.stop(); dev.flush()
    summary = rec.close()            # final statistics go into both files
    dev.close()

Every callback runs on the device's reader thread and only hands data to the writers' queues.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sonobridge
from sonobridge.device import ClientState, Device, Frame
from sonobridge.device.accounting import LossAccount, adjust_for_stop, stop_cut
from sonobridge.protocol import PROTOCOL_VERSION, DeviceInfo, EchoLine

from .background_writer import check_flush_interval
from .hdf5_writer import DEFAULT_FLUSH_S, DEFAULT_QUEUE_BYTES, DatasetWriter, check_reserve
from .meta import (
    ACCOUNTING_FIELDS,
    BoardOrigin,
    ConfigTracker,
    config_to_dict,
    info_to_dict,
    stats_to_dict,
)
from .raw import CaptureWriter


@dataclass
class RecordingProgress:
    """A snapshot of a running recording (for progress lines)."""

    elapsed_s: float = 0.0
    lines: int = 0
    frames: int = 0
    #: firings missing from the sweeps handed on so far
    lines_missing: int = 0
    #: sample bytes written to the HDF5 file
    sample_bytes: int = 0
    #: bytes written to the raw capture
    raw_bytes: int = 0
    #: HDF5 rows known to be readable (as of its last flush)
    lines_flushed: int = 0
    #: raw capture bytes handed to the OS
    raw_flushed_bytes: int = 0
    #: lines and raw bytes the recorder could not keep (should stay 0)
    lines_not_kept: int = 0
    raw_bytes_dropped: int = 0
    error: str | None = None


@dataclass
class RecordingSummary:
    """What a finished recording holds."""

    h5_path: str | None
    raw_path: str | None
    progress: RecordingProgress
    accounting: dict[str, Any] = field(default_factory=dict)
    file_bytes: dict[str, int] = field(default_factory=dict)

    def text(self) -> str:
        """A few lines for people."""
        p, a = self.progress, self.accounting
        files = ", ".join(f"{path} ({size / 1e6:.1f} MB)" for path, size in
                          self.file_bytes.items())
        lines = [f"recorded {p.elapsed_s:.1f} s: {p.frames} frames, {p.lines} lines -> {files}",
                 LossAccount.from_counts(a).text(),
                 f"frames lost whole: {a.get('frames_lost', 0)}; lines the recorder could not "
                 f"keep (lines_not_recorded): {a.get('lines_not_recorded', p.lines_not_kept)}"]
        if a.get("lines_cut_by_stop"):
            lines.append(f"the last sweep was cut short by STOP: {a['lines_cut_by_stop']} "
                         "firings never acquired (lines_cut_by_stop, not counted as lost)")
        if p.raw_bytes_dropped:
            lines.append(f"raw capture: {p.raw_bytes_dropped} received bytes could not be kept")
        if p.error:
            lines.append(f"error: {p.error}")
        return "\n".join(lines)


def accounting_from(stats: dict[str, Any], *, lines_recorded: int, lines_not_recorded: int,
                    cut: int = 0, since: dict[str, Any] | None = None,
                    lines_received: int | None = None) -> dict[str, Any]:
    """The delivery and loss counters a recording stores (``accounting`` attribute).

    ``since``: the counters when the recording started (None: it saw the whole session), so
    only what happened while it recorded is reported; ``cut``: firings a STOP cut off the last
    sweep (moved out of the losses); ``lines_received``: the lines the recording was handed,
    when it counted them itself. ``lines_expected`` completes the identity of
    :class:`~sonobridge.device.accounting.LossAccount`.
    """
    base = since or {}
    acc = {k: stats[k] - (base.get(k) or 0) if stats[k] is not None else None
           for k in ACCOUNTING_FIELDS if k in stats}
    if lines_received is not None:
        acc["lines_received"] = lines_received
    acc = adjust_for_stop(acc, cut)
    acc["lines_recorded"] = lines_recorded
    acc["lines_not_recorded"] = lines_not_recorded
    acc["lines_expected"] = LossAccount.from_counts(acc).lines_expected
    return acc


class Recorder:
    """Records a device's stream into an HDF5 dataset and/or a raw capture.

    ``flush_interval_s`` (> 0, at most 1 s is used) bounds what a crash can lose;
    ``min_free_bytes`` is the free space the HDF5 writer keeps on the disk: None (the default)
    sizes it for the data rate (5 s at the board's rated throughput, at least 4 MiB).
    """

    def __init__(
        self,
        h5_path: str | os.PathLike | None = None,
        raw_path: str | os.PathLike | None = None,
        *,
        overwrite: bool = False,
        flush_interval_s: float = DEFAULT_FLUSH_S,
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
        min_free_bytes: int | None = None,
    ) -> None:
        if h5_path is None and raw_path is None:
            raise ValueError("give an HDF5 path, a raw capture path, or both")
        # checked before any file is created, so a bad value leaves nothing behind
        check_flush_interval(flush_interval_s)
        check_reserve(min_free_bytes)
        for p in (h5_path, raw_path):
            if p is not None and Path(p).exists() and not overwrite:
                raise FileExistsError(f"{p} exists; use --force to overwrite it")
        self.h5_path = None if h5_path is None else str(h5_path)
        self.raw_path = None if raw_path is None else str(raw_path)
        self.raw = None if raw_path is None else CaptureWriter(
            raw_path, overwrite=overwrite, flush_interval_s=min(flush_interval_s, 0.25),
            max_queue_bytes=max_queue_bytes)
        try:
            self.dataset = None if h5_path is None else DatasetWriter(
                h5_path, overwrite=overwrite, flush_interval_s=flush_interval_s,
                max_queue_bytes=max_queue_bytes, min_free_bytes=min_free_bytes)
        except BaseException:
            if self.raw is not None:
                self.raw.close()
            raise
        self.device: Device | None = None
        self._tracker = ConfigTracker(self._lookup_config)
        self._closed = False
        self._info_noted = False
        self._raw_info_noted = False
        self._prev_on_state: Any = None
        self._t0 = time.monotonic()
        self.lines = 0
        self.frames = 0
        self.lines_missing = 0
        self._last_frame: tuple[object, bool] | None = None
        #: the device's counters when this recording started (None: from the session's start)
        self._since: dict[str, Any] | None = None
        self._since_pending = False
        #: bytes handed to the raw capture: what it holds, and what convert will count
        self._rx_bytes = 0

    # -- wiring ----------------------------------------------------------------------------------

    def attach(self, dev: Device) -> Recorder:
        """Listen to ``dev`` (attach before ``dev.open()`` to capture the handshake too)."""
        self.device = dev
        # a device that is already open has counted its session so far (the viewer's Record
        # button): the recording accounts from its own first line, where the counters are
        # read on the receive thread, so no line or loss falls between the two
        self._since_pending = dev.state != ClientState.CLOSED
        if self.raw is not None:
            dev.add_raw_listener(self._on_raw)
            dev.add_gap_listener(self._on_gap)
            dev.add_flush_listener(self._on_flush)
            self.raw.write_event({
                "type": "session", "port": dev.port, "software_version": sonobridge.__version__,
                "protocol_version": PROTOCOL_VERSION, "flush_events": True,
                "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat()})
        if self.dataset is not None:
            self.dataset.set_attrs(port=dev.port)
        dev.add_line_listener(self._on_line)
        dev.add_frame_listener(self._on_frame)
        self._prev_on_state = dev.on_state
        dev.on_state = self._on_state
        if dev.info is not None:
            self._note_info(dev.info)
        return self

    def _lookup_config(self, line: EchoLine, host_ns: int) -> dict[str, Any] | None:
        dev = self.device
        return None if dev is None else config_to_dict(dev.config)

    def _note_info(self, info: DeviceInfo) -> None:
        self._info_noted = True
        # the handshake is done when the info exists, so the dialect is the one detected
        origin = BoardOrigin.of(self.device)
        self._note_info_raw(info, origin)
        if self.dataset is not None:
            self.dataset.set_device_info(info, origin)

    def _note_info_raw(self, info: DeviceInfo, origin: BoardOrigin) -> None:
        if self.raw is not None and not self._raw_info_noted:
            self._raw_info_noted = True
            self.raw.write_event({"type": "device_info", "info": info_to_dict(info),
                                  "frame_flags": info.flags, **origin.as_dict()})

    # -- reader-thread callbacks -----------------------------------------------------------------

    def _on_raw(self, chunk: bytes, host_ns: int) -> None:
        if not self._closed and self.raw is not None:
            self._rx_bytes += len(chunk)
            self.raw.write_rx(chunk, host_ns)

    def _on_gap(self, n_bytes: int, host_ns: int) -> None:
        if not self._closed and self.raw is not None:
            self.raw.write_gap(n_bytes, host_ns)

    def _on_flush(self, before_ns: int | None) -> None:
        # where the client handed a partial sweep on: convert repeats it there, so it
        # assembles, and counts, the same sweeps
        if not self._closed and self.raw is not None:
            self.raw.write_event({"type": "flush", "before_rx_ns": before_ns})

    def _on_line(self, line: EchoLine, host_ns: int) -> None:
        if self._closed:
            return
        if self._since_pending:
            self._since_pending = False
            since = stats_to_dict(self.device.stats if self.device is not None else None)
            since["lines_received"] = (since.get("lines_received") or 1) - 1  # this line is ours
            self._since = since
        self.lines += 1
        if not self._info_noted and self.device is not None and self.device.info is not None:
            self._note_info(self.device.info)
        change = self._tracker.check(line, host_ns)
        if change is not None and self.raw is not None:
            self.raw.write_event({"type": "config", "host_ns": host_ns,
                                  "config_id": change.config_id, "config": change.config},
                                 host_ns)
        if self.dataset is not None:
            self.dataset.add_line(line, host_ns, change)

    def _on_frame(self, frame: Frame) -> None:
        if self._closed:
            return
        self.frames += 1
        self.lines_missing += frame.n_missing
        self._last_frame = (frame.present, frame.end_received)
        if self.dataset is not None:
            self.dataset.add_frame(frame)

    def _on_state(self, state: str) -> None:
        dev = self.device
        if not self._closed and dev is not None and dev.info is not None:
            # the capture notes the board at the handshake, not only at the first line: a
            # capture of a board that speaks another dialect must say so even if no line ever
            # arrives (the HDF5 file, removed if no line arrives, waits for the first line)
            self._note_info_raw(dev.info, BoardOrigin.of(dev))
        if not self._closed and self.raw is not None:
            self.raw.write_event({"type": "link", "state": state})
        if self._prev_on_state is not None:
            self._prev_on_state(state)

    # -- reporting and closing -------------------------------------------------------------------

    @property
    def error(self) -> str | None:
        """Why a writer stopped, if one did (disk full, write error)."""
        for w in (self.dataset, self.raw):
            err = None if w is None else w.stats.error
            if err:
                return err
        return None

    def progress(self) -> RecordingProgress:
        """Counts so far."""
        p = RecordingProgress(elapsed_s=time.monotonic() - self._t0, lines=self.lines,
                              frames=self.frames, lines_missing=self.lines_missing,
                              error=self.error)
        if self.dataset is not None:
            s = self.dataset.stats
            p.sample_bytes, p.lines_flushed, p.lines_not_kept = (
                s.sample_bytes, s.lines_flushed, s.lines_not_kept)
        if self.raw is not None:
            r = self.raw.stats
            p.raw_bytes, p.raw_flushed_bytes, p.raw_bytes_dropped = (
                r.file_bytes, r.flushed_bytes, r.dropped_bytes)
        return p

    def close(self, stats: object = None, decoder_stats: object = None, *,
              stopped: bool = False) -> RecordingSummary:
        """Detach, store the final statistics (the device's, unless given) and close the files.

        Stop the device and call ``dev.flush()`` first, so the last sweep is accounted for, and
        say ``stopped=True``: a last sweep that STOP cut short is then reported as
        ``lines_cut_by_stop`` rather than as lost lines.
        """
        dev = self.device
        if dev is not None and stats is None:
            with contextlib.suppress(Exception):
                stats, decoder_stats = dev.stats, dev.decoder_stats
        if dev is not None and not self._info_noted and dev.info is not None:
            self._note_info(dev.info)
        self._closed = True
        if dev is not None:
            if self.raw is not None:
                with contextlib.suppress(ValueError):
                    dev.remove_raw_listener(self._on_raw)
                with contextlib.suppress(ValueError):
                    dev.remove_flush_listener(self._on_flush)
            if dev.on_state == self._on_state:
                dev.on_state = self._prev_on_state
        stats_d = stats_to_dict(stats)
        decoder_d = stats_to_dict(decoder_stats)
        progress = self.progress()
        not_kept = progress.lines_not_kept
        written = self.dataset.stats.lines_written if self.dataset is not None else self.lines
        cut = 0
        if stopped and self._last_frame is not None:
            cut = stop_cut(*self._last_frame)
        # lines_received is what this recording was handed: every one became a row or is
        # counted as not recorded; one started mid-session that saw no line saw nothing else
        since = stats_d if self._since_pending else self._since
        accounting = accounting_from(stats_d, lines_recorded=written,
                                     lines_not_recorded=not_kept, cut=cut, since=since,
                                     lines_received=self.lines)
        if self.raw is not None and since is None:
            # exactly the bytes the capture holds, even if more arrived while closing
            accounting["bytes_in"] = self._rx_bytes
        if self.raw is not None:
            self.raw.write_event({"type": "stats", "device_stats": stats_d,
                                  "decoder_stats": decoder_d})
            self.raw.write_event({"type": "end", "stopped": stopped})
            self.raw.close()
        if self.dataset is not None:
            ds = self.dataset.close(accounting=accounting, stats=stats_d,
                                    decoder_stats=decoder_d)
            accounting["lines_recorded"] = ds.lines_written
            accounting["lines_not_recorded"] = ds.lines_not_kept
        progress = self.progress()
        sizes = {p: os.path.getsize(p) for p in (self.h5_path, self.raw_path)
                 if p is not None and os.path.exists(p)}
        return RecordingSummary(self.h5_path, self.raw_path, progress, accounting, sizes)

