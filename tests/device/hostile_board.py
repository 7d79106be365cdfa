"""A scriptable fake board on a real pty, for tests that need a board to misbehave on purpose.

    with HostileBoard() as board, open_device(board.path) as dev:
        board.send(echo_line(lines_per_frame=65535))   # any message, with the board's next seq
        board.inject(b"\\xa5\\x5a garbage")             # raw bytes, exactly as given
        board.version = 2                               # answer in version-2 frames from now on
        assert board.received(Ping) == 1                # what the host sent

A thread on the pty's master decodes what the host writes with the protocol ``Decoder`` and
answers: GET_INFO with ``board.info`` (``request_seq`` = the command's seq), GET_STATUS with
``board.status``, PING with PONG, START/STOP/CONFIGURE/RESET with ACK. ``info`` and ``status``
may be replaced at any time. Every frame the board sends, replies and :meth:`send` alike, takes
the board's next sequence number, in the order it goes on the wire.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import threading
import time
import tty

import numpy as np

from sonobridge.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Configure,
    Decoder,
    DeviceInfo,
    EchoLine,
    GetInfo,
    GetStatus,
    Message,
    Ping,
    Pong,
    Reset,
    SampleFormat,
    Start,
    Status,
    Stop,
    SweepKind,
    encode_frame,
    encode_payload,
    next_seq,
)
from sonobridge.protocol.samples import DTYPES

#: a sane, small board: every limit a test pushes past is easy to name
DEFAULT_INFO = DeviceInfo(
    protocol_version=PROTOCOL_VERSION, fw_major=1, board_name="hostile-board", adc_bits=12,
    sample_formats=1 << SampleFormat.I16, sweep_kind=SweepKind.SECTOR, adc_rate_hz=20_000_000,
    ensemble_max=4, min_samples_per_line=16, max_samples_per_line=1024, max_lines_per_frame=16,
)
DEFAULT_STATUS = Status(temperature_cdeg=3150, hv_mv=24_000, buffer_fill_permille=10)


def echo_line(frame_index: int = 0, line_index: int = 0, *, lines_per_frame: int = 4,
              n_samples: int = 64, ensemble_size: int = 1, ensemble_index: int = 0,
              sample_format: int = SampleFormat.I16, value: int = 0, **fields: object
              ) -> EchoLine:
    """An ECHO_LINE whose samples all equal ``value``; other fields as ``EchoLine`` takes them."""
    samples = np.full(n_samples, value, dtype=DTYPES[sample_format])
    return EchoLine(samples=samples, sample_rate_hz=int(fields.pop("sample_rate_hz", 20_000_000)),
                    frame_index=frame_index, line_index=line_index,
                    lines_per_frame=lines_per_frame, ensemble_size=ensemble_size,
                    ensemble_index=ensemble_index, sample_format=sample_format, **fields)


class HostileBoard:
    """A fake board on a real pty; see the module docstring. ``path`` is the port to open."""

    def __init__(self, info: DeviceInfo = DEFAULT_INFO, status: Status = DEFAULT_STATUS,
                 write_timeout_s: float = 10.0) -> None:
        self.info = info
        self.status = status
        #: the version byte of every frame sent from now on (protocol v1 unless changed)
        self.version = PROTOCOL_VERSION
        #: every command the host sent that decoded intact, in order
        self.commands: list[Message] = []
        self.write_timeout_s = write_timeout_s
        self._seq = 0
        self._write_lock = threading.Lock()  # seq order is wire order
        self._master, self._slave = os.openpty()
        # raw on our side too; the slave stays open so the master never reads EIO while the
        # host has the port closed
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._decoder = Decoder()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile-board", daemon=True)
        self._thread.start()

    def __enter__(self) -> HostileBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop answering and close the pty."""
        self._stop.set()
        self._thread.join(timeout=5)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- what tests call -------------------------------------------------------------------------

    def send(self, msg: Message, *, flags: int = 0, seq: int | None = None) -> int:
        """Encode ``msg`` in the board's current version and send it; return its seq.

        ``seq`` overrides the board's counter (which then continues from it): a jump.
        """
        payload = encode_payload(msg)
        with self._write_lock:
            if seq is None:
                seq = self._seq
            self._seq = next_seq(seq)
            self._write(encode_frame(msg.MSG_TYPE, payload, seq, flags=flags,
                                     version=self.version))
        return seq

    def inject(self, data: bytes) -> None:
        """Send raw bytes as they are (garbage, truncated or hand-built frames)."""
        with self._write_lock:
            self._write(data)

    def received(self, kind: type[Message]) -> int:
        """How many commands of this type the host sent so far."""
        return sum(isinstance(m, kind) for m in list(self.commands))

    # -- the board's thread ----------------------------------------------------------------------

    def _reply_to(self, cmd: Message) -> Message | None:
        seq = cmd.seq
        if isinstance(cmd, GetInfo):
            return dataclasses.replace(self.info, request_seq=seq)
        if isinstance(cmd, GetStatus):
            return dataclasses.replace(self.status, request_seq=seq)
        if isinstance(cmd, Ping):
            return Pong(request_seq=seq, token=cmd.token, data=cmd.data)
        if isinstance(cmd, (Start, Stop, Configure, Reset)):
            return Ack(request_seq=seq, request_type=cmd.MSG_TYPE)
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                data = os.read(self._master, 1 << 16) if ready else b""
            except BlockingIOError:
                continue
            except OSError:  # closed under us, or no host right now
                self._stop.wait(0.05)
                continue
            for cmd in self._decoder.feed(data):
                self.commands.append(cmd)
                reply = self._reply_to(cmd)
                if reply is not None:
                    self.send(reply)

    def _write(self, data: bytes) -> None:
        """Write all of ``data`` (the host's reader keeps emptying the pty), or fail loudly."""
        view = memoryview(data)
        deadline = time.monotonic() + self.write_timeout_s
        while view:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the host did not read {len(view)} bytes from the board "
                                   f"within {self.write_timeout_s} s")
            try:
                view = view[os.write(self._master, view):]
            except BlockingIOError:
                select.select([], [self._master], [], 0.05)
