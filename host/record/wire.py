"""A recorded byte stream cut back into what was on the wire: intact frames and the rest.

:class:`FrameSplitter` finds frames exactly as :class:`sonobridge.protocol.Decoder` does (sync,
header CRC-16 and length, then CRC-32, stepping one byte past a failed sync), but keeps the
bytes: each intact frame as it was received, and everything between frames (garbage, damaged
frames) as *junk*. Concatenating its output gives back the input, so a replay that re-emits
it makes the host's decoder see the same damage, the same gaps and the same lines.
"""

from __future__ import annotations

import binascii
import struct
import zlib
from dataclasses import dataclass

from sonobridge.protocol import MAX_PAYLOAD, SYNC, UNSOLICITED, MsgType
from sonobridge.protocol.codec import HEADER
from sonobridge.protocol.constants import HEADER_SIZE

_REPLY_TYPES = frozenset({MsgType.ACK, MsgType.NAK, MsgType.PONG})
_MAYBE_REPLY = frozenset({MsgType.DEVICE_INFO, MsgType.STATUS})
_SEQ = struct.Struct("<I")
_CRC16 = struct.Struct("<H")


@dataclass(slots=True)
class WireItem:
    """A piece of the recorded stream: an intact frame (``seq`` set) or junk (``seq`` None)."""

    host_ns: int
    data: bytes
    seq: int | None = None
    msg_type: int = 0
    #: a reply to a command of the recording host (ACK, NAK, PONG, solicited DEVICE_INFO or
    #: STATUS): a replay answers its own host instead of re-sending these
    reply: bool = False


class FrameSplitter:
    """Bytes in any chunking → :class:`WireItem` s in stream order (see the module docs)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._junk = bytearray()
        self._junk_ns = 0

    def feed(self, data: bytes, host_ns: int) -> list[WireItem]:
        """Items completed by this chunk (frames are stamped with the chunk that completed
        them, as the live decoder did)."""
        self._buf += data
        b = self._buf
        n = len(b)
        pos = 0
        out: list[WireItem] = []
        with memoryview(b) as mv:
            while True:
                i = b.find(SYNC, pos)
                if i < 0:
                    keep = 1 if n > pos and b[n - 1] == SYNC[0] else 0
                    self._add_junk(mv, pos, n - keep, host_ns)
                    pos = n - keep
                    break
                self._add_junk(mv, pos, i, host_ns)
                pos = i
                if n - pos < HEADER_SIZE:
                    break
                _s, _v, msg_type, plen, seq, _f, _r, hcrc = HEADER.unpack_from(b, pos)
                if plen > MAX_PAYLOAD or binascii.crc_hqx(mv[pos : pos + HEADER_SIZE - 2],
                                                           0xFFFF) != hcrc:
                    self._add_junk(mv, pos, pos + 1, host_ns)
                    pos += 1
                    continue
                body_end = pos + HEADER_SIZE + ((plen + 3) & ~3)
                if body_end + 4 > n:
                    break
                if zlib.crc32(mv[pos:body_end]) != int.from_bytes(mv[body_end : body_end + 4],
                                                                 "little"):
                    self._add_junk(mv, pos, pos + 1, host_ns)
                    pos += 1
                    continue
                if self._junk:
                    out.append(self._take_junk())
                reply = msg_type in _REPLY_TYPES or (
                    msg_type in _MAYBE_REPLY and plen >= 4
                    and _SEQ.unpack_from(b, pos + HEADER_SIZE)[0] != UNSOLICITED)
                out.append(WireItem(host_ns, bytes(mv[pos : body_end + 4]), seq, msg_type,
                                    reply))
                pos = body_end + 4
        del self._buf[:pos]
        return out

    def flush(self) -> list[WireItem]:
        """Whatever is left at the end of the stream, as junk."""
        if self._buf:
            self._add_junk(self._buf, 0, len(self._buf), self._junk_ns)
            self._buf.clear()
        return [self._take_junk()] if self._junk else []

    def _add_junk(self, b: bytearray | memoryview, start: int, end: int, host_ns: int
                  ) -> None:
        if end > start:
            if not self._junk:
                self._junk_ns = host_ns
            self._junk += b[start:end]

    def _take_junk(self) -> WireItem:
        item = WireItem(self._junk_ns, bytes(self._junk))
        self._junk.clear()
        return item


def restamp(frame: bytes, seq: int) -> bytes:
    """The same frame with another sequence number (both CRCs recomputed)."""
    b = bytearray(frame)
    _SEQ.pack_into(b, 8, seq & 0xFFFFFFFF)
    _CRC16.pack_into(b, HEADER_SIZE - 2, binascii.crc_hqx(b[: HEADER_SIZE - 2], 0xFFFF))
    end = len(b) - 4
    _SEQ.pack_into(b, end, zlib.crc32(memoryview(b)[:end]))
    return bytes(b)
