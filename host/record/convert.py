"""Raw capture → HDF5 dataset, giving the same file a direct recording of the session gives.

The capture holds every byte the device client read, each chunk with the host time it was
read. :class:`OfflineClient` is the client's own receive path
(:class:`~sonobridge.device.receiver.Receiver`), fed the same chunks with the same timestamps. It
therefore produces the same lines, sweeps and loss figures, and :func:`convert_capture` writes
them with the same :class:`DatasetWriter`. Link events in the capture (disconnects) are
applied where the client applied them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sonobridge.device import Frame
from sonobridge.device.accounting import stop_cut
from sonobridge.device.receiver import Receiver
from sonobridge.protocol import Decoder, DeviceInfo, EchoLine

from .hdf5_writer import DatasetWriter
from .meta import BoardOrigin, ConfigTracker, info_from_dict
from .raw import KIND_EVENT, KIND_GAP, KIND_RX, CaptureError, CaptureReader, ForeignCaptureError
from .recorder import accounting_from

LineSink = Callable[[EchoLine, int], None]
FrameSink = Callable[[Frame], None]


class OfflineClient(Receiver):
    """The device client's receive path (:class:`~sonobridge.device.receiver.Receiver`), fed from a
    capture instead of a port, plus the disconnects the capture recorded."""

    def __init__(self, on_line: LineSink | None = None, on_frame: FrameSink | None = None
                 ) -> None:
        super().__init__(Decoder(), on_frame=on_frame)
        if on_line is not None:
            self.line_listeners.add(on_line)
        self.disconnects = 0

    @property
    def info(self) -> DeviceInfo | None:
        """The first DEVICE_INFO in the capture."""
        return self.first_info

    def link_lost(self) -> None:
        """The port went away: the sweep in progress is handed on, partial input forgotten."""
        self.disconnects += 1
        self.restart()

    def finish(self, flush: bool = True) -> dict[str, Any]:
        """Hand on the last sweep (unless ``flush`` is False); the counters under DeviceStats'
        names."""
        if flush:
            self.assembler.flush()
        d = self.decoder.stats
        out: dict[str, Any] = {**asdict(self.counts), "disconnects": self.disconnects}
        out.update(bytes_in=d.bytes_in, crc_errors=d.crc_errors, header_errors=d.header_errors,
                   seq_gaps=d.seq_gaps, seq_resets=d.seq_resets,
                   bytes_discarded=d.bytes_discarded, unsupported=d.unsupported,
                   malformed=d.malformed)
        if self.last_status is not None:
            out["device_dropped_lines"] = self.last_status.dropped_lines
        out["logs"] = list(self.logs)
        return out


@dataclass
class ConvertResult:
    """What :func:`convert_capture` did."""

    lines: int = 0
    frames: int = 0
    rx_bytes: int = 0
    #: received bytes the capture itself had to drop while recording (GAP records)
    capture_gaps: int = 0
    #: the first damaged stretch of the capture (None if it has none) …
    damage: CaptureError | None = None
    #: … and all of them: each skipped byte range is ``(d.offset, d.end)``
    damages: list[CaptureError] = field(default_factory=list)
    #: capture records that passed their CRC-32 and were converted
    records_ok: int = 0
    #: the receive path's own counters (as ``DeviceStats`` names them)
    stats: dict[str, Any] = field(default_factory=dict)
    #: what the output file's ``accounting`` attribute holds: report these
    accounting: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def convert_capture(capture: str | os.PathLike, out: str | os.PathLike, *,
                    overwrite: bool = False) -> ConvertResult:
    """Decode a raw capture into a new HDF5 recording (see ``result.damages``).

    Damaged records are skipped, so their lines count as lost on the link; every record that
    passes its CRC-32 is converted and the output is a valid recording. The caller decides how
    loudly to report the damage. A capture of a board that spoke another dialect raises
    :class:`~sonobridge.record.raw.ForeignCaptureError` before any file is written.
    """
    capture, out = Path(capture), Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; use --force to overwrite it")
    reader = CaptureReader(capture, strict=False)
    info_event: dict[str, Any] | None = None
    session: dict[str, Any] = {}
    configs: dict[tuple[int, int], dict[str, Any] | None] = {}
    #: the client flushed just before decoding the chunk read at these host times
    flush_before: set[int] = set()
    for host_ns, ev in reader.events():
        kind = ev.get("type")
        if kind == "flush" and ev.get("before_rx_ns") is not None:
            flush_before.add(int(ev["before_rx_ns"]))
        if kind == "device_info" and info_event is None:
            info_event = ev
        elif kind == "session" and not session:
            session = ev
        elif kind == "config":
            configs[(int(ev["config_id"]), int(ev.get("host_ns", host_ns)))] = ev.get("config")

    # checked before the output exists: a refusal leaves nothing behind
    origin = BoardOrigin.from_dict(info_event)
    if not origin.native:
        raise ForeignCaptureError(capture, origin.dialect, "convert")

    def lookup(line: EchoLine, host_ns: int) -> dict[str, Any] | None:
        return configs.get((line.config_id, host_ns))

    attrs: dict[str, Any] = {"converted_from": str(capture)}
    if "port" in session:
        attrs["port"] = session["port"]
    writer = DatasetWriter(out, overwrite=overwrite, block_when_full=True, attrs=attrs)
    tracker = ConfigTracker(lookup)
    result = ConvertResult()
    stopped = False
    ended = False

    def on_line(line: EchoLine, host_ns: int) -> None:
        writer.add_line(line, host_ns, tracker.check(line, host_ns))

    last_frame: list[tuple[object, bool]] = []

    def on_frame(frame: Frame) -> None:
        last_frame[:] = [(frame.present, frame.end_received)]
        writer.add_frame(frame)

    client = OfflineClient(on_line, on_frame)
    if info_event is not None:
        writer.set_device_info(info_from_dict(info_event["info"]), origin)
    try:
        for rec in reader.records():
            if rec.kind == KIND_RX:
                result.rx_bytes += len(rec.data)
                if rec.host_ns in flush_before:  # the client flushed before decoding it
                    flush_before.discard(rec.host_ns)
                    client.assembler.flush()
                client.feed(rec.data, rec.host_ns)
            elif rec.kind == KIND_GAP:
                # bytes this host lost (its buffers overflowed): the frame cut there is not
                # joined across the hole, and the lines in it are the host's loss
                n = int.from_bytes(rec.data[:8], "little")
                result.capture_gaps += n
                client.host_gap(n)
            elif rec.kind == KIND_EVENT:
                ev = _event(rec.data)
                if ev.get("type") == "link" and ev.get("state") == "disconnected":
                    client.link_lost()
                elif ev.get("type") == "flush" and ev.get("before_rx_ns") is None:
                    client.assembler.flush()
                elif ev.get("type") == "end":
                    stopped = bool(ev.get("stopped"))
                    ended = True
    finally:
        # a recording closed cleanly accounted for the sweeps its client had handed on (the
        # flushes are in the capture); one that was killed gets its last sweep handed on here
        # (captures from before flush events were recorded: always)
        stats = client.finish(flush=not (ended and session.get("flush_events")))
        if info_event is None and client.info is not None:
            writer.set_device_info(client.info)
        result.damage = reader.damage
        result.damages = list(reader.damages)
        result.records_ok = reader.records_ok
        final: dict[str, Any] = {"stats": stats, "decoder_stats": client.decoder.stats.as_dict()}
        if reader.damages:
            final["capture_damage"] = "; ".join(
                f"{d} (skipped bytes {d.offset}-{d.end})" for d in reader.damages)
        # the recorder closed after the same last sweep: the same STOP rule applies
        cut = stop_cut(*last_frame[0]) if stopped and last_frame else 0
        accounting = accounting_from(stats, lines_recorded=0, lines_not_recorded=0, cut=cut)
        ws = writer.close(accounting=accounting, **final)
        # the writer completes the accounting with the rows it kept: the same as the file's
        accounting.update(lines_recorded=ws.lines_written, lines_not_recorded=ws.lines_not_kept)
    result.lines = ws.lines_written
    result.frames = ws.frames_written
    result.stats = stats
    result.accounting = accounting
    result.error = ws.error
    return result


def _event(data: bytes) -> dict[str, Any]:
    try:
        ev = json.loads(data)
    except ValueError:
        return {}
    return ev if isinstance(ev, dict) else {}
