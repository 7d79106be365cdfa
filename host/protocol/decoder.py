"""The streaming decoder: bytes in any chunking → messages, with honest link statistics.

How it survives a hostile wire:

* It hunts for the two sync bytes, then checks the 16-byte header with its CRC-16 *before*
  trusting ``payload_len``, so a false sync costs one byte of rescanning, not a wait for a
  bogus length. A length above ``MAX_PAYLOAD`` is rejected the same way, so nothing is ever
  buffered beyond one maximum frame.
* A frame whose CRC-32 fails is not skipped by its length: the decoder steps one byte past its
  sync and rescans. A truncated frame therefore never swallows the good frame after it.
* Everything inside ``feed`` is guarded; no exception escapes, whatever the input.
* A decoder given ``partial_timeout_s`` (with the arrival time passed to ``feed`` and
  ``expire``) abandons a partial frame once no byte arrived for that idle gap: the candidate
  is dropped one byte past its sync, as if its CRC-32 had failed, and the held bytes are
  rescanned, so a command that arrived right behind a truncated one is found without waiting
  for more input. A device uses ``PARTIAL_FRAME_TIMEOUT_S``; the host a longer one
  (``sonobridge.device.dialect.HOST_PARTIAL_TIMEOUT_S``), far beyond a pause inside a frame.
"""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Protocol

from .codec import HEADER, PayloadError, decode_echo_line, decode_payload
from .constants import (
    HEADER_SIZE,
    KNOWN_MUST_UNDERSTAND,
    MAX_PAYLOAD,
    MUST_UNDERSTAND_MASK,
    PROTOCOL_VERSION,
    SYNC,
    MsgType,
)
from .messages import Message
from .structs import HEADER_CRC_SPAN

_SYNC0 = SYNC[0]
_UNSUPPORTED_FLAGS = MUST_UNDERSTAND_MASK & ~KNOWN_MUST_UNDERSTAND
_ECHO_LINE = int(MsgType.ECHO_LINE)
_KNOWN_TYPES = frozenset(int(t) for t in MsgType)


@dataclass(slots=True)
class DecoderStats:
    """Counters of everything the decoder saw. All counts are cumulative.

    ``frames_bad`` = ``crc_errors`` + ``unsupported`` + ``malformed``: frames whose header was
    valid but which were dropped. ``header_errors`` counts candidate headers that failed their
    CRC-16 or announced an impossible length: corrupted headers and false syncs alike (the
    lost frame then shows up in ``seq_gaps``).
    """

    bytes_in: int = 0
    frames_ok: int = 0
    frames_bad: int = 0
    bytes_discarded: int = 0
    seq_gaps: int = 0
    seq_resets: int = 0
    header_errors: int = 0
    crc_errors: int = 0
    unsupported: int = 0
    malformed: int = 0
    decoder_errors: int = 0
    last_seq: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        """The counters as a plain dict (for JSON reports and HDF5 attributes)."""
        return asdict(self)

    def summary(self) -> str:
        """One human-readable line."""
        return (
            f"{self.bytes_in} B in, {self.frames_ok} frames ok, {self.frames_bad} bad "
            f"(crc {self.crc_errors}, unsupported {self.unsupported}, malformed "
            f"{self.malformed}), {self.header_errors} header errors, {self.seq_gaps} lost "
            f"(seq gaps), {self.seq_resets} resets, {self.bytes_discarded} B discarded"
        )


class RejectReason(str, Enum):
    """Why an intact frame was rejected (a ``str`` enum: ``reason == "version"`` still holds)."""

    def __str__(self) -> str:
        """The value, as a ``StrEnum`` (Python 3.11+) prints it."""
        return str(self.value)

    VERSION = "version"
    FLAGS = "flags"
    TYPE = "type"
    #: the payload does not fit the type's layout
    LENGTH = "length"


@dataclass(frozen=True, slots=True)
class Rejected:
    """An intact frame (both CRCs good) that could not be used, and why.

    ``reason`` is a :class:`RejectReason`: version, flags, type or length (the payload does
    not fit the type's layout). A device answers a rejected command with the matching NAK.
    """

    seq: int
    msg_type: int
    version: int
    flags: int
    payload_len: int
    reason: RejectReason
    detail: str = ""


class StreamDecoder(Protocol):
    """What a dialect's decoder offers (:class:`Decoder` is the model)."""

    stats: DecoderStats

    def feed(self, data: bytes, now_s: float | None = None) -> list[Message]:
        """Bytes in any chunking, arrived at ``now_s`` → messages, never raising."""

    def expire(self, now_s: float) -> list[Message]:
        """Give up on a partial frame idle since before ``now_s`` − its timeout."""

    def reset(self) -> None:
        """Forget partial input (after a reconnect)."""


class Decoder:
    """Incremental frame decoder. ``feed(bytes) -> list[Message]``; see the module docstring.

    ``on_reject``, if given, is called with a :class:`Rejected` for every intact frame that is
    dropped as unsupported or malformed (exceptions it raises are swallowed and counted).

    ``partial_timeout_s`` (a device's receiver: ``PARTIAL_FRAME_TIMEOUT_S``) makes a partial
    frame expire after that idle gap. Such a decoder needs the arrival time of every chunk,
    ``feed(data, now_s)``, on any monotonic clock in seconds, and ``expire(now_s)`` from a
    timer so that held bytes are released without new input. Without it (the default) time is
    ignored and nothing ever expires.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD,
                 on_reject: Callable[[Rejected], None] | None = None,
                 partial_timeout_s: float | None = None) -> None:
        if not 0 <= max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload must be in 0..{MAX_PAYLOAD}")
        if partial_timeout_s is not None and not partial_timeout_s > 0:
            raise ValueError(f"partial_timeout_s must be > 0, got {partial_timeout_s}")
        self.max_payload = max_payload
        self.on_reject = on_reject
        self.partial_timeout_s = partial_timeout_s
        #: idle gaps that abandoned held bytes (only with ``partial_timeout_s``)
        self.partials_expired = 0
        self.stats = DecoderStats()
        self._pending = bytearray()
        self._last_rx_s: float | None = None

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a frame (never more than one frame)."""
        return len(self._pending)

    def reset(self) -> None:
        """Forget buffered bytes and the last sequence number (e.g. after reopening a port)."""
        self.stats.bytes_discarded += len(self._pending)
        self._pending.clear()
        self.stats.last_seq = None

    def feed(self, data: bytes, now_s: float | None = None) -> list[Message]:
        """Consume a chunk of any size; return the messages completed by it, in order.

        ``now_s`` is when the chunk arrived; it matters only with ``partial_timeout_s``, where
        it is required, and a partial frame held since before the idle gap expires first.
        """
        timed = self.partial_timeout_s is not None
        if timed and now_s is None:
            raise ValueError("a decoder with partial_timeout_s needs the arrival time now_s")
        out = self.expire(now_s) if timed and self._pending else []
        if timed and data:
            self._last_rx_s = now_s
        try:
            if not isinstance(data, bytes):
                data = bytes(data)
            self.stats.bytes_in += len(data)
            start = self._drain_pending(data, out) if self._pending else 0
            if start < len(data):
                pos = self._scan(data, start, out)
                if pos < len(data):
                    self._pending += memoryview(data)[pos:]
        except Exception:
            self.stats.decoder_errors += 1
            self.stats.bytes_discarded += len(self._pending)
            self._pending.clear()
        return out

    def expire(self, now_s: float) -> list[Message]:
        """Abandon what is held if no byte came for the idle gap; return the messages in it.

        Every held byte is as old as the stale candidate, so whatever is still incomplete
        after a rescan will not complete either: candidates are stepped past, one byte past
        their sync (counted in ``bytes_discarded``), until nothing is held. A no-op without
        ``partial_timeout_s``, with nothing held, or before the gap has passed.
        """
        out: list[Message] = []
        timeout = self.partial_timeout_s
        last = self._last_rx_s
        if timeout is None or not self._pending or last is None or now_s < last + timeout:
            return out
        self.partials_expired += 1
        buf = bytes(self._pending)
        self._pending.clear()
        pos = 0
        try:
            while pos < len(buf):
                pos = self._scan(buf, pos, out)
                if pos < len(buf):
                    self.stats.bytes_discarded += 1
                    pos += 1
        except Exception:
            self.stats.decoder_errors += 1
            self.stats.bytes_discarded += len(buf) - pos
        return out

    # -- internals -------------------------------------------------------------------------------

    def _drain_pending(self, data: bytes, out: list[Message]) -> int:
        """Complete the frame started in an earlier chunk, taking only the bytes it needs."""
        taken = 0
        n = len(data)
        while self._pending and taken < n:
            need = self._bytes_needed(self._pending)
            chunk = data[taken : taken + need]
            taken += len(chunk)
            self._pending += chunk
            buf = bytes(self._pending)
            pos = self._scan(buf, 0, out)
            del self._pending[:pos]
        return taken

    def _bytes_needed(self, buf: bytearray) -> int:
        """How many more bytes the frame candidate at the start of ``buf`` needs."""
        if len(buf) < HEADER_SIZE:
            return HEADER_SIZE - len(buf)
        plen = HEADER.unpack_from(buf, 0)[3]
        return max(1, HEADER_SIZE + ((plen + 3) & ~3) + 4 - len(buf))

    def _scan(self, b: bytes, pos: int, out: list[Message]) -> int:
        """Decode every complete frame in ``b[pos:]``; return where an incomplete one starts."""
        stats = self.stats
        n = len(b)
        find = b.find
        unpack_header = HEADER.unpack_from
        crc_hqx = binascii.crc_hqx
        crc32 = zlib.crc32
        max_payload = self.max_payload
        with memoryview(b) as mv:
            while True:
                i = find(SYNC, pos)
                if i < 0:
                    # keep a trailing first sync byte: its partner may be in the next chunk
                    keep = 1 if n > pos and b[n - 1] == _SYNC0 else 0
                    stats.bytes_discarded += n - keep - pos
                    return n - keep
                if i != pos:
                    stats.bytes_discarded += i - pos
                    pos = i
                if n - pos < HEADER_SIZE:
                    return pos
                _sync, version, msg_type, plen, seq, flags, _rsv, hcrc = unpack_header(b, pos)
                if plen > max_payload or crc_hqx(mv[pos : pos + HEADER_CRC_SPAN], 0xFFFF) != hcrc:
                    stats.header_errors += 1
                    stats.bytes_discarded += 1
                    pos += 1
                    continue
                body_end = pos + HEADER_SIZE + ((plen + 3) & ~3)
                if body_end + 4 > n:
                    return pos
                if crc32(mv[pos:body_end]) != int.from_bytes(mv[body_end : body_end + 4], "little"):
                    stats.crc_errors += 1
                    stats.frames_bad += 1
                    stats.bytes_discarded += 1
                    pos += 1
                    continue
                self._track_seq(seq)
                msg = self._decode(b, pos, version, msg_type, plen, flags, seq)
                if msg is None:
                    stats.frames_bad += 1
                    stats.bytes_discarded += body_end + 4 - pos
                else:
                    msg.seq = seq
                    msg.flags = flags
                    out.append(msg)
                    stats.frames_ok += 1
                pos = body_end + 4

    def _decode(self, b: bytes, pos: int, version: int, msg_type: int, plen: int, flags: int,
                seq: int) -> Message | None:
        """Turn an intact frame into a message, or count why it cannot be used."""
        if version != PROTOCOL_VERSION:
            reason = RejectReason.VERSION
        elif flags & _UNSUPPORTED_FLAGS:
            reason = RejectReason.FLAGS
        elif msg_type not in _KNOWN_TYPES:
            reason = RejectReason.TYPE
        else:
            try:
                if msg_type == _ECHO_LINE:
                    return decode_echo_line(b, pos + HEADER_SIZE, plen)
                return decode_payload(msg_type, b, pos + HEADER_SIZE, plen)
            except PayloadError as exc:
                self.stats.malformed += 1
                self._reject(Rejected(seq, msg_type, version, flags, plen, RejectReason.LENGTH,
                                      str(exc)))
                return None
        self.stats.unsupported += 1
        self._reject(Rejected(seq, msg_type, version, flags, plen, reason))
        return None

    def _reject(self, rejected: Rejected) -> None:
        if self.on_reject is not None:
            try:
                self.on_reject(rejected)
            except Exception:  # a listener must not break the stream
                self.stats.decoder_errors += 1

    def _track_seq(self, seq: int) -> None:
        """Count sequence gaps, wrap-aware; a jump backwards is a device reset, not a gap."""
        stats = self.stats
        gap = seq_gap(stats.last_seq, seq)
        if gap is None:
            stats.seq_resets += 1
        else:
            stats.seq_gaps += gap
        stats.last_seq = seq


def seq_gap(last: int | None, seq: int) -> int | None:
    """Frames lost between ``last`` and ``seq`` (wrap-aware); None if the sender restarted.

    A jump backwards (more than half the 32-bit space ahead) is a reset, not four billion lost
    frames. With no ``last`` nothing can be known lost: 0.
    """
    if last is None:
        return 0
    delta = (seq - last - 1) & 0xFFFFFFFF
    return None if delta >= 0x80000000 else delta
