"""A recording becomes a board again: :class:`ReplayBoard` answers the host like the board did.

The replay board is a :class:`sonobridge.board.board.Board` (``feed``, ``pull``, ``state``,
``acquiring``, ``power_on``), served by the board-side layer's ``BoardEngine`` over a
``PtyTransport``, ``QueueTransport`` or ``SocketTransport``; it imports nothing of
``sonobridge.sim``.

Semantics (docs/recording.md):

* **Handshake.** ``GET_INFO`` is answered with the recorded DEVICE_INFO (with the new
  ``request_seq``); ``STOP`` and valid ``CONFIGURE`` are ACKed; ``GET_STATUS``, ``PING`` and
  ``RESET`` (if the recorded board could) are answered. A CONFIGURE outside the recorded
  board's limits is NAKed as the board would.
* **CONFIGURE does not change the data.** The recording plays as recorded. A CONFIGURE that
  differs from the recorded configuration is ACKed and a LOG warning says it was ignored.
* **START plays from the beginning, STOP stops.** Every START plays the recording from its
  start, as a board's acquisition starts at frame 0; ``START n_frames`` stops after that many
  FRAME_ENDs. At the end of the recording the board goes idle with a LOG (or starts over with
  ``loop``).
* **Timing.** Each piece is sent when it is due: recorded arrival time / ``speed`` after the
  first piece of the run (``speed=inf``: as fast as the host reads). A slow host delays the
  replay; nothing is dropped.
* **Bytes.** A raw capture is re-emitted byte for byte: intact frames as received, and the
  damaged bytes between them too, so the host sees the same CRC errors and losses. Replies the
  recording host got (ACK, STATUS…) are not re-sent. Sequence numbers continue from the replay
  board's own replies, keeping the recorded gaps; where the numbering matches the recording
  (the same handshake as the recording host), the bytes are identical. An HDF5 recording is
  re-encoded from its rows (ECHO_LINE per row, FRAME_END where the client got one).
* **Damage.** A raw capture's damaged records are skipped (the reader resumes at the next
  intact record), so the host sees those bytes as lost on the link. An HDF5 row whose samples
  fail their CRC-32 is not sent (its sequence number stays a gap) and is counted; the LOG at
  the end of the recording and ``sonobridge replay``'s summary say how many and which.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sonobridge.board.responder import CommandResponder, ResetMark
from sonobridge.device import AcquisitionConfig
from sonobridge.protocol import (
    Configure,
    DeviceInfo,
    DeviceState,
    EchoLine,
    Flags,
    FrameEnd,
    Log,
    LogLevel,
    Message,
    MsgType,
    Status,
    decode_payload,
    encode,
)
from sonobridge.protocol.constants import HEADER_SIZE

from .formats import open_for
from .meta import BoardOrigin, config_to_dict, info_from_dict
from .raw import KIND_RX, CaptureError, CaptureReader, ForeignCaptureError
from .wire import FrameSplitter, WireItem, restamp

if TYPE_CHECKING:  # h5py is imported only when an HDF5 recording is replayed
    from .hdf5_schema import BadRow

log = logging.getLogger("sonobridge.record")

_M = 0xFFFFFFFF
#: damaged rows named one by one in the log before only their count is kept
_LOGGED_ROWS = 10
#: at most this much per pull, so one engine tick never blocks on a huge backlog
MAX_PULL_BYTES = 1 << 20
#: the LOG a replay board sends when its recording ends (clients such as ``stream`` look for it)
END_OF_RECORDING = "replay: end of the recording"


class ReplaySource(Protocol):
    """A recording as a stream of wire pieces."""

    path: Path
    info: DeviceInfo
    #: header flags of the recorded device's frames (e.g. SIMULATED)
    frame_flags: int
    #: the recorded configuration (``AcquisitionConfig`` as a dict), None if unknown
    config: dict[str, Any] | None

    def items(self) -> Iterator[WireItem]:
        """The recording from the beginning, in order."""

    def damage_note(self) -> str:
        """What the last pass through the recording had to skip ("" if nothing)."""


class CaptureSource:
    """A raw capture as wire pieces (bytes exactly as received)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        reader = CaptureReader(self.path, strict=False)
        self.damage: CaptureError | None = None
        #: the byte ranges the last pass skipped as damaged
        self.skipped: list[tuple[int, int]] = []
        self.config: dict[str, Any] | None = None
        info: DeviceInfo | None = None
        self.frame_flags = 0
        for _t, ev in reader.events():
            if ev.get("type") == "device_info" and info is None:
                origin = BoardOrigin.from_dict(ev)
                if not origin.native:  # that board's own bytes: no v1 host could read them
                    raise ForeignCaptureError(self.path, origin.dialect, "replay")
                info = info_from_dict(ev["info"])
                self.frame_flags = int(ev.get("frame_flags", 0))
            elif ev.get("type") == "config" and self.config is None and ev.get("config"):
                self.config = ev["config"]
        if info is None:
            info, self.frame_flags = self._find_info()
        self.info = info

    def _find_info(self) -> tuple[DeviceInfo, int]:
        for item in self.items():
            if item.msg_type == MsgType.DEVICE_INFO:
                plen = len(item.data) - HEADER_SIZE - 4
                msg = decode_payload(MsgType.DEVICE_INFO, item.data, HEADER_SIZE, plen)
                assert isinstance(msg, DeviceInfo)
                return msg, item.data[12]
        raise CaptureError(self.path, 0, "the capture holds no DEVICE_INFO, so a replay cannot "
                           "answer GET_INFO (start the recorder before opening the device)")

    def items(self) -> Iterator[WireItem]:
        """Wire pieces from every intact device-to-host record (damaged ones are skipped)."""
        reader = CaptureReader(self.path, strict=False)
        splitter = FrameSplitter()
        for rec in reader.records():
            if rec.kind == KIND_RX:
                yield from splitter.feed(rec.data, rec.host_ns)
        yield from splitter.flush()
        self.damage = reader.damage
        self.skipped = reader.skipped

    def damage_note(self) -> str:
        """The damaged byte ranges of the capture the last pass skipped."""
        d = self.damage
        if d is None:
            return ""
        ranges = ", ".join(f"{a}-{b}" for a, b in self.skipped[:5])
        return f"the file is damaged at byte offset {d.offset}: {d.reason}" + (
            f"; skipped bytes {ranges}" if ranges else "")


class RecordingSource:
    """An HDF5 recording as wire pieces (ECHO_LINE per row, FRAME_END where one arrived)."""

    def __init__(self, path: str | Path) -> None:
        from .hdf5_reader import open_recording

        self.path = Path(path)
        with open_recording(self.path) as rec:
            info = rec.device_info
            if info is None:
                raise CaptureError(self.path, 0, "the recording has no DEVICE_INFO, so a replay "
                                   "cannot answer GET_INFO")
            self.info = info
            self.config = rec.config
            #: a board of another dialect: the replay speaks v1 for it and says so (a LOG)
            self.origin = rec.origin
            self.frame_flags = int(rec.segments[0].attrs.get("frame_flags", 0)) \
                if rec.segments else 0
        self.damage = None
        #: rows not sent because their samples fail their CRC-32 (or could not be read), by
        #: (segment, row); a looping replay counts each once
        self.damaged: dict[tuple[str, int], BadRow] = {}
        #: parts of the file HDF5 could not read at all (whole segments)
        self.unreadable: list[str] = []

    def damage_note(self) -> str:
        """How many damaged rows were not sent, and which."""
        from .hdf5_schema import describe_rows

        parts = []
        if self.damaged:
            rows = list(self.damaged.values())
            parts.append(f"{len(rows)} damaged rows not sent (their samples fail the CRC-32 "
                         f"stored with them, or cannot be read): {describe_rows(rows, 5)}")
        parts.extend(self.unreadable)
        return "; ".join(parts)

    def _unreadable(self, text: str) -> None:
        if text not in self.unreadable:
            self.unreadable.append(text)
            log.warning("replay of %s: %s", self.path, text)

    def _skip(self, bad: BadRow) -> None:
        key = (bad.segment, bad.row)
        if key not in self.damaged:
            self.damaged[key] = bad
            if len(self.damaged) <= _LOGGED_ROWS:
                log.warning("replay of %s: not sending %s: its samples fail their CRC-32",
                            self.path, bad)

    def items(self) -> Iterator[WireItem]:
        """The rows re-encoded, in recorded order, at their recorded host times; damaged rows
        are skipped (and counted in ``damaged``)."""
        from .hdf5_reader import open_recording
        from .hdf5_schema import H5_ERRORS, RecordingError

        try:
            rec = open_recording(self.path)
        except (OSError, RecordingError) as exc:
            self._unreadable(f"the file can no longer be read: {exc}")
            return
        with rec:
            frames = rec.frames
            fp = 0
            seq = 0
            for seg in rec.segments:
                a = seg.attrs
                try:
                    lines = seg.lines
                except RecordingError as exc:
                    self._unreadable(f"segment {seg.name} skipped: {exc.problem}")
                    continue
                seqs = lines["seq"].astype(np.int64)
                firings = int(a["lines_per_frame"]) * int(a["ensemble_size"])
                for fi, start, end in seg.frame_runs():
                    try:
                        block = seg.samples[start:end]
                    except H5_ERRORS:
                        block = None
                    for r in range(start, end):
                        m = lines[r]
                        seq = int(seqs[r]) if seqs[r] >= 0 else (seq + 1) & _M
                        if block is None or zlib.crc32(block[r - start]) != int(m["crc32"]):
                            # not sent: the host sees its sequence number as a gap
                            self._skip(seg.bad_row(r))
                            continue
                        yield WireItem(int(m["host_time_ns"]),
                                       encode(self._line(a, m, block[r - start]), seq,
                                              flags=self.frame_flags), seq, MsgType.ECHO_LINE)
                    f = None
                    if fp < len(frames) and int(frames[fp]["frame_index"]) == fi:
                        f = frames[fp]
                        fp += 1
                    # a FRAME_END goes where the recorded numbering left a slot for one
                    gap = 1 if end >= len(seqs) or seqs[end] < 0 else \
                        (int(seqs[end]) - seq - 1) & _M
                    if not (0 < gap < 0x80000000 or (f is not None and f["end_received"])):
                        continue
                    if f is not None and f["device_sent"] >= 0:
                        sent = int(f["device_sent"])
                    else:
                        sent = firings - (int(f["lost_device"]) if f is not None else 0)
                    seq = (seq + 1) & _M
                    host_ns = int(f["host_time_ns"]) if f is not None else \
                        int(lines[end - 1]["host_time_ns"])
                    end_msg = FrameEnd(fi, sent, int(a["lines_per_frame"]),
                                       int(lines[end - 1]["timestamp_us"]))
                    yield WireItem(host_ns, encode(end_msg, seq, flags=self.frame_flags), seq,
                                   MsgType.FRAME_END)

    @staticmethod
    def _line(a: dict[str, Any], m: np.void, samples: np.ndarray) -> EchoLine:
        return EchoLine(
            np.ascontiguousarray(samples), int(a["sample_rate_hz"]),
            frame_index=int(m["frame_index"]), line_index=int(m["line_index"]),
            lines_per_frame=int(a["lines_per_frame"]), beam_position=int(m["beam_position"]),
            sweep_kind=int(a["sweep_kind"]), ensemble_index=int(m["ensemble_index"]),
            ensemble_size=int(a["ensemble_size"]),
            start_delay_samples=int(a["start_delay_samples"]),
            timestamp_us=int(m["timestamp_us"]), config_id=int(m["config_id"]),
            adc_bits=int(a["adc_bits"]), sample_format=int(a["sample_format"]))


def open_source(path: str | Path) -> ReplaySource:
    """A replay source for a raw capture or an HDF5 recording, picked by content, not name
    (:data:`sonobridge.record.formats.READERS`)."""
    return open_for(Path(path), "replay")


class ReplayBoard(CommandResponder):
    """A recording served as a board (see the module docstring for the semantics)."""

    def __init__(self, source: ReplaySource, *, speed: float = 1.0, loop: bool = False,
                 now_s: float = 0.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0 (math.inf = as fast as possible), got {speed}")
        self.source = source
        self.speed = speed
        self.loop = loop
        self.boots = 0
        self.lines_sent = 0
        self.loops = 0
        self._flags = source.frame_flags & Flags.SIMULATED
        self._iter: Iterator[WireItem] | None = None
        self._damage_told = False
        self.power_on(now_s)

    # -- board interface used by the engine ------------------------------------------------------

    @property
    def info(self) -> DeviceInfo:
        """The recorded DEVICE_INFO."""
        return self.source.info

    @property
    def acquiring(self) -> bool:
        """True while playing."""
        return self.state == DeviceState.STREAMING

    @property
    def pending_bytes(self) -> int:
        """Bytes waiting to go out (replies only: the recording is read as it is sent)."""
        return sum(64 for r in self._replies if isinstance(r, Message))

    def power_on(self, now_s: float, *, announce: bool = False) -> None:
        """Boot: sequence 0, idle, playback rewound to the beginning."""
        self.boots += 1
        self._boot_s = now_s
        self._seq = 0
        self.state = DeviceState.IDLE
        self.config_id = 0
        self.finished = False
        self._status: Status | None = None
        self._n_frames = 0
        self._frames_played = 0
        self._rewind()
        self.boot_receiver(announce=announce)

    def pull(self, now_s: float, budget_bytes: float = math.inf) -> list[tuple[int, bytes]]:
        """Replies first, then the recorded pieces that are due, up to ``budget_bytes``."""
        limit = min(budget_bytes, MAX_PULL_BYTES)
        out: list[tuple[int, bytes]] = []
        used = 0
        while used < limit:
            if self._replies:
                msg = self._replies.popleft()
                if isinstance(msg, ResetMark):
                    self.power_on(now_s, announce=True)
                    continue
                seq = self._seq
                frame = encode(msg, seq, flags=self._flags)
                self._seq = (seq + 1) & _M
                out.append((seq, frame))
                used += len(frame)
                continue
            if self.state != DeviceState.STREAMING:
                break
            item = self._peek(now_s)
            if item is None:
                continue  # the end was reached: a LOG is queued, or the replay rewound
            if self._anchor is None:
                self._anchor = (now_s, item.host_ns)
            t0, h0 = self._anchor
            if t0 + (item.host_ns - h0) / 1e9 / self.speed > now_s:
                break
            self._next = None
            seq, data = self._emit(item)
            out.append((seq, data))
            used += len(data)
            if item.msg_type == MsgType.FRAME_END and self._n_frames:
                self._frames_played += 1
                if self._frames_played >= self._n_frames:
                    self.state = DeviceState.IDLE
        return out

    # -- playback --------------------------------------------------------------------------------

    def _rewind(self) -> None:
        if self._iter is not None:
            with contextlib.suppress(Exception):
                self._iter.close()  # type: ignore[attr-defined]
        self._iter = None
        self._next: WireItem | None = None
        self._prev_orig: int | None = None
        self._pending_gap = 0
        self._anchor: tuple[float, int] | None = None
        self._emitted_since_rewind = 0

    def _peek(self, now_s: float) -> WireItem | None:
        while self._next is None:
            if self._iter is None:
                self._iter = self.source.items()
            try:
                item = next(self._iter)
            except StopIteration:
                self._end(now_s)
                return None
            if item.reply:
                self._skip_reply(item)
                continue
            self._next = item
        return self._next

    def _end(self, now_s: float) -> None:
        note = _damage_note(self.source)
        if self.loop and self._emitted_since_rewind:
            if note and not self._damage_told:
                # said once: a looping replay skips the same damage every time round
                self._damage_told = True
                self._replies.append(Log(level=LogLevel.WARNING, text=f"replay: {note}"[:1000]))
            self.loops += 1
            self._rewind()
            return
        self.state = DeviceState.IDLE
        self.finished = True
        text = END_OF_RECORDING
        if note:
            text += f" ({note})"
        self._replies.append(Log(level=LogLevel.WARNING if note else LogLevel.INFO,
                                 text=text[:1000]))

    def _skip_reply(self, item: WireItem) -> None:
        """A reply the recording host got: not re-sent, but its sequence slot is not a gap."""
        if item.seq is None:
            return
        if self._prev_orig is not None:
            delta = (item.seq - self._prev_orig - 1) & _M
            if delta < 0x80000000:
                self._pending_gap += delta
        self._prev_orig = item.seq
        if item.msg_type == MsgType.STATUS:
            with contextlib.suppress(ValueError):
                plen = len(item.data) - HEADER_SIZE - 4
                status = decode_payload(MsgType.STATUS, item.data, HEADER_SIZE, plen)
                if isinstance(status, Status):
                    self._status = status

    def _emit(self, item: WireItem) -> tuple[int, bytes]:
        self._emitted_since_rewind += 1
        if item.seq is None:
            return -1, item.data  # junk: re-sent exactly, no sequence number of its own
        if self._prev_orig is None:
            new = self._seq
        else:
            delta = (item.seq - self._prev_orig - 1) & _M
            # a recorded device that restarted its count: restart the same way
            new = item.seq if delta >= 0x80000000 else (self._seq + self._pending_gap + delta) & _M
        self._pending_gap = 0
        self._prev_orig = item.seq
        self._seq = (new + 1) & _M
        if item.msg_type == MsgType.ECHO_LINE:
            self.lines_sent += 1
        return new, item.data if new == item.seq else restamp(item.data, new)

    # -- commands --------------------------------------------------------------------------------

    # -- the replay board's own part of the commands ---------------------------------------------

    def on_configure(self, msg: Configure, now_s: float) -> list[Message]:
        """A recording cannot change: say how the asked configuration differs from it."""
        notes = [self._config_note(msg), _origin_note(self.source)]
        return [Log(level=LogLevel.WARNING, text=n) for n in notes if n]

    def on_start(self, n_frames: int, now_s: float) -> None:
        """Like a board's fresh acquisition (frame 0 first), every START plays from the top."""
        self.finished = False
        self._rewind()
        self.state = DeviceState.STREAMING
        self._anchor = None
        self._n_frames = n_frames
        self._frames_played = 0

    def on_stop(self, now_s: float) -> None:
        """Playback stops where it is."""
        self._anchor = None

    def _config_note(self, msg: Configure) -> str:
        recorded = self.source.config
        asked = config_to_dict(AcquisitionConfig.from_message(msg))
        if recorded is not None and asked is not None:
            diff = [k for k in asked if k in recorded and _norm(asked[k]) != _norm(recorded[k])]
            if not diff:
                return ""
            what = ", ".join(f"{k} {asked[k]} (recorded {recorded[k]})" for k in diff[:4])
        else:
            what = "the recorded configuration is unknown"
        return (f"replay: CONFIGURE acknowledged but ignored; the recording plays as recorded "
                f"({what})")[:1000]

    def status_reply(self, request_seq: int, now_s: float) -> Status:
        base = self._status or Status()
        return replace(base, request_seq=request_seq, state=int(self.state),
                       hv_mv=base.hv_mv if self.state == DeviceState.STREAMING else 0,
                       device_time_us=self.device_time_us(now_s),
                       lines_sent=self.lines_sent & _M, buffer_fill_permille=0,
                       config_id=self.config_id)


def _origin_note(source: object) -> str:
    """For a recording of a board of another dialect: that its DEVICE_INFO is the dialect's,
    with the values it assumed (a client of the replay sees a sonobridge-v1 board)."""
    origin = getattr(source, "origin", None)
    if origin is None or origin.native:
        return ""
    return f"replay: recorded from a board speaking {origin.text()}"[:1000]


def _damage_note(source: object) -> str:
    """The source's damage note (sources written before there was one have none)."""
    note = getattr(source, "damage_note", None)
    return note() if note is not None else ""


def _norm(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return [float(v) for v in value]
    return value


# -- serving -------------------------------------------------------------------------------------


def create_replay_engine(path: str | Path, transport: Any, *, speed: float = 1.0,
                         loop: bool = False, link: str = "unlimited") -> Any:
    """A :class:`ReplayBoard` for ``path`` on ``transport``, driven by the simulator's engine
    (not started)."""
    from sonobridge.board.engine import BoardEngine

    board = ReplayBoard(open_source(path), speed=speed, loop=loop)
    return BoardEngine(board, transport, link=link)  # type: ignore[arg-type]


def serve_replay(path: str | Path, *, mode: str = "pty", link_path: str | None = None,
                 tcp: tuple[str, int] = ("127.0.0.1", 0), speed: float = 1.0,
                 loop: bool = False, link: str = "unlimited",
                 ready: Callable[[str], None] | None = None,
                 stop: threading.Event | None = None) -> int:
    """Serve a recording on a pty (``mode='pty'``) or TCP until interrupted; print the port
    first."""
    from sonobridge.board.pty_transport import PtyTransport
    from sonobridge.board.tcp_transport import SocketTransport

    source_check = open_source(path)  # fail before printing a port that would not work
    del source_check
    if mode == "pty":
        transport: Any = PtyTransport(link_path)
        where = link_path or transport.path
    else:
        transport = SocketTransport(*tcp)
        h, p = transport.address[:2]
        where = f"socket://{h}:{p}"
    engine = create_replay_engine(path, transport, speed=speed, loop=loop, link=link)
    (ready or (lambda text: print(text, flush=True)))(where)
    from sonobridge.board.server import run_until_stopped

    if run_until_stopped(engine, stop, what="replay"):
        return 1
    board = engine.board
    print(f"replayed {board.lines_sent} lines, {engine.stats.bytes_sent / 1e6:.1f} MB"
          f"{f', {board.loops} loops' if board.loops else ''}", file=sys.stderr)
    note = _damage_note(board.source)
    if note:
        print(f"warning: {note}", file=sys.stderr)
    return 0

