"""The ``record``, ``replay``, ``convert`` and ``export`` subcommands of ``sonobridge``.

``host/cli.py`` adds them with :func:`add_parsers`. Until then (and for tests) this module runs
on its own: ``python -m sonobridge.record.commands record sim://?phantom=wire -o rec.h5``. Heavy
imports (h5py, the DSP chain) happen inside the commands, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sonobridge import argtypes
from sonobridge.record.urlhandler import register as _register_replay_urls

#: Python's thread switch interval while recording (the default is 5 ms)
RECORD_SWITCH_INTERVAL_S = 0.001


def _err(text: str) -> None:
    print(f"error: {text}", file=sys.stderr)


def _h5py_missing() -> bool:
    try:
        import h5py  # noqa: F401
    except ImportError:
        _err("recording to HDF5 needs h5py: pip install 'sonobridge[hdf5]'")
        return True
    return False


def _recording_error(exc: Exception) -> None:
    """Report a recording that cannot be read; for a damaged one, say how many rows
    ``sonobridge convert`` would salvage (counted now, without writing anything)."""
    problem = getattr(exc, "problem", None)
    path = getattr(exc, "path", None)
    if not getattr(exc, "salvage", False) or path is None or problem is None:
        _err(str(exc))
        return
    from .hdf5_schema import RecordingError
    from .salvage import salvage_command, salvage_recording

    try:
        n = salvage_recording(path, None).rows_kept
    except (OSError, RecordingError):
        n = 0
    if n:
        _err(f"{problem}; run `{salvage_command(path)}` to salvage {n} rows")
    else:
        _err(f"{problem}; nothing in it can be salvaged (no row can be located that passes "
             "its CRC-32): convert its raw capture instead if it was recorded with --raw")


def _damaged_rows_message(path: str, rows: list[Any], action: str) -> str:
    """One sentence naming the damaged rows of ``path`` and what was done with them."""
    from .hdf5_schema import describe_rows

    return (f"{path} has {len(rows)} damaged rows (their samples fail the CRC-32 stored with "
            f"them): {describe_rows(rows)}; {action}")


def _refuse_existing(paths: list[str | None], force: bool) -> str | None:
    for p in paths:
        if p is not None and Path(p).exists() and not force:
            return f"{p} exists; use --force to overwrite it"
    return None


# -- record --------------------------------------------------------------------------------------


def cmd_record(args: argparse.Namespace) -> int:
    """Record from a board to HDF5 (and optionally a raw capture), with live progress."""
    from sonobridge.device import ConfigError, Device, DeviceError
    from sonobridge.protocol import MsgType

    from .meta import BoardOrigin
    from .recorder import Recorder

    _register_replay_urls()
    if _h5py_missing():
        return 2
    refusal = _refuse_existing([args.output, args.raw], args.force)
    if refusal:
        _err(refusal)
        return 2
    try:
        rec = Recorder(args.output, args.raw, overwrite=args.force,
                       flush_interval_s=args.flush_interval, min_free_bytes=args.reserve_mb)
    except (OSError, ValueError) as exc:
        _err(f"cannot create the recording: {exc}")
        return 2
    dev = Device(args.port, baudrate=args.baud, dialect=args.dialect)
    rec.attach(dev)
    try:
        dev.open()
    except DeviceError as exc:
        rec.close()
        for p in (args.output, args.raw):
            if p is not None:
                with contextlib.suppress(OSError):
                    Path(p).unlink()
        _err(str(exc))
        return 2
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    switch = sys.getswitchinterval()
    # the port's reader thread must get the interpreter lock promptly while the writer
    # threads work, or the board's buffer fills up (see docs/recording.md)
    sys.setswitchinterval(RECORD_SWITCH_INTERVAL_S)
    reason = "done"
    code = 0
    tty = sys.stderr.isatty()
    try:
        try:
            cfg = dev.configure(**argtypes.acquisition_changes(args))
            print(f"recording {dev.info.board_name} on {args.port}: {cfg.lines_per_frame} lines"
                  f" x {cfg.samples_per_line} samples at {cfg.prf_hz} Hz PRF -> {args.output}"
                  f"{f' + {args.raw}' if args.raw else ''}", file=sys.stderr)
            origin = BoardOrigin.of(dev)
            if not origin.native:  # the file notes it too; say it before the data flows
                print(f"the board speaks {origin.text()} (the recording notes both)",
                      file=sys.stderr)
            dev.start(n_frames=args.frames or 0)
            reason = _record_loop(dev, rec, args, stop, tty)
        except KeyboardInterrupt:
            reason = "stopped by Ctrl-C"
        except ConfigError as exc:  # a setting the board cannot do: a mistake, not a failure
            reason = str(exc)
            code = 2
        except DeviceError as exc:
            reason = f"device error: {exc}"
            code = 1
        with contextlib.suppress(DeviceError, KeyboardInterrupt):
            dev.stop()
            dev.settle()
        dev.flush()
        if dev.supports(MsgType.GET_STATUS):
            with contextlib.suppress(DeviceError, KeyboardInterrupt):
                dev.status()  # the board's own view (dropped lines) goes into the statistics
    finally:
        summary = rec.close(stopped=True)
        dev.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        sys.setswitchinterval(switch)
    if tty:
        print(file=sys.stderr)
    if summary.progress.lines == 0:
        return _no_lines_recorded(args, reason, summary.progress.elapsed_s, code,
                                  has_status=dev.supports(MsgType.GET_STATUS))
    print(f"{reason}; {summary.text()}")
    if summary.progress.error:
        return 1
    return code


def _no_lines_recorded(args: argparse.Namespace, reason: str, elapsed_s: float,
                       code: int, *, has_status: bool = True) -> int:
    """A recording without a single echo line is a failure: say why, leave no empty files."""
    removed = []
    for p in (args.output, args.raw):
        if p is not None:
            with contextlib.suppress(OSError):
                Path(p).unlink()
                removed.append(p)
    gone = f" (removed {', '.join(removed)})" if removed else ""
    if code == 2:
        _err(f"{reason}; nothing was recorded{gone}")
        return 2
    if reason == "stopped by Ctrl-C":
        _err(f"interrupted before any echo line arrived; nothing was recorded{gone}")
        return 130
    _err(f"no echo line arrived from {args.port} in {elapsed_s:.1f} s ({reason}); nothing was "
         f"recorded{gone}. A board needs a moment after START: give a longer --seconds, and "
         f"check `sonobridge info {args.port}`{' for its status' if has_status else ''}")
    return 1


def _record_loop(dev: Any, rec: Any, args: argparse.Namespace, stop: threading.Event,
                 tty: bool) -> str:
    """Wait for the end condition, printing progress; returns why it ended."""
    t_end = None if args.seconds is None else time.monotonic() + args.seconds
    last_lines, last_change = -1, time.monotonic()
    next_print = 0.0
    while True:
        if stop.wait(0.05):
            return "stopped by SIGTERM"
        now = time.monotonic()
        p = rec.progress()
        if p.error:
            return f"recording stopped: {p.error}"
        if now >= next_print:
            s = dev.stats
            mb = (p.sample_bytes or p.raw_bytes) / 1e6
            raw = f", raw {p.raw_flushed_bytes / 1e6:.1f} MB" if args.raw else ""
            line = (f"{p.elapsed_s:7.1f} s  {mb:9.1f} MB  {p.frames:7d} frames  "
                    f"lost {s.lines_missing} lines  on disk {p.lines_flushed} lines{raw}")
            print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr,
                  flush=True)
            next_print = now + (0.25 if tty else args.progress_interval)
        if t_end is not None and now >= t_end:
            return f"time limit reached ({args.seconds:g} s)"
        if args.frames:
            if p.frames + dev.stats.frames_lost >= args.frames:
                return f"frame count reached ({args.frames})"
            if p.lines != last_lines:
                last_lines, last_change = p.lines, now
            elif p.lines and now - last_change > args.idle_timeout:
                return (f"no data for {args.idle_timeout:g} s; stopping after {p.frames} of "
                        f"{args.frames} frames")


# -- convert -------------------------------------------------------------------------------------


def cmd_convert(args: argparse.Namespace) -> int:
    """Raw capture → HDF5 (or salvage a truncated HDF5 recording)."""
    if _h5py_missing():
        return 2
    from .formats import handler_for
    from .hdf5_schema import RecordingError
    from .raw import CaptureError, ForeignCaptureError
    from .salvage import SalvageReport

    refusal = _refuse_existing([args.output], args.force)
    if refusal:
        _err(refusal)
        return 2
    src = Path(args.capture)
    if not src.is_file():
        _err(f"{src} does not exist or is not a file")
        return 2
    # by content: a raw capture is converted, an HDF5 recording salvaged
    try:
        result = handler_for(src, "convert")(src, args.output, overwrite=args.force)
    except RecordingError as exc:
        _err(str(exc))
        return 1
    except (CaptureError, ForeignCaptureError) as exc:
        _err(str(exc))
        return 2
    if isinstance(result, SalvageReport):
        print(f"salvaged: {result.message} -> {args.output}")
        if result.damaged:
            print("warning: " + _damaged_rows_message(
                str(src), result.damaged, f"they are not in {args.output}"), file=sys.stderr)
        return 0
    from sonobridge.device.accounting import LossAccount

    # the figures the output file stores (a STOP's cut taken out), not the raw counters
    s = result.accounting
    print(f"converted {result.rx_bytes / 1e6:.1f} MB of capture: {result.lines} lines, "
          f"{result.frames} frames -> {args.output}")
    print(f"{LossAccount.from_counts(s).text()}; CRC errors {s.get('crc_errors', 0)}, "
          f"sequence gaps {s.get('seq_gaps', 0)}")
    if result.capture_gaps:
        print(f"warning: the capture itself is missing {result.capture_gaps} received bytes "
              "(the disk could not keep up while recording)", file=sys.stderr)
    if result.error:
        _err(result.error)
        return 1
    if result.damages:
        first = result.damages[0]
        where = "; ".join(f"bytes {d.offset}-{d.end} ({d.reason})" for d in result.damages[:5])
        more = f"; and {len(result.damages) - 5} more" if len(result.damages) > 5 else ""
        _err(f"{src} is damaged at byte offset {first.offset}: skipped {where}{more}; "
             f"converted the {result.records_ok} records that pass their CRC-32 (the lines in "
             "the skipped bytes count as lost on the link)")
        return 1
    return 0


# -- replay --------------------------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace) -> int:
    """Serve a recording as a board on a pty, TCP, or print its replay:// URL."""
    from .replay import open_source, serve_replay
    from .urlhandler.protocol_replay import replay_url

    speed = math.inf if args.fast else args.speed
    try:
        open_source(args.file)
    except (OSError, ValueError) as exc:
        _recording_error(exc)
        return 2
    if args.url:
        print(replay_url(args.file, speed=speed, loop=args.loop), flush=True)
        return 0
    try:
        if args.tcp is not None:
            return serve_replay(args.file, mode="tcp", tcp=args.tcp, speed=speed,
                                loop=args.loop, link=args.link)
        return serve_replay(args.file, mode="pty", link_path=args.link_path, speed=speed,
                            loop=args.loop, link=args.link)
    except ValueError as exc:  # a bad --link name
        _err(str(exc))
        return 2
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            _err(f"TCP port {args.tcp[1]} on {args.tcp[0]} is already in use (by another "
                 "replay or program); pick another port, or 0 for any free one")
        else:
            _err(f"cannot serve the replay: {exc}")
        return 1


# -- export --------------------------------------------------------------------------------------


def _lazy(module: str, name: str) -> Any:
    """``record.<module>.<name>``, imported when the command runs (its library may be an extra
    that is not installed: the command says so then, not every other command)."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        return int(getattr(importlib.import_module(f"sonobridge.record.{module}"), name)(args))

    return run


def cmd_export(args: argparse.Namespace) -> int:
    """PNG per frame or NPZ of samples and metadata."""
    if _h5py_missing():
        return 2
    from .export import export_npz, export_png
    from .formats import CAPTURE, UnknownFormatError, file_format

    try:
        if file_format(args.file) is CAPTURE:
            stem = Path(args.file).with_suffix(".h5")
            _err(f"{args.file} is a raw capture, not an HDF5 recording: convert it first with "
                 f"`sonobridge convert {args.file} -o {stem}`, then export {stem}")
            return 2
    except FileNotFoundError as exc:
        _err(str(exc))
        return 2
    except UnknownFormatError as exc:  # like convert: the file's content is the problem
        _err(str(exc))
        return 1
    if args.uff or args.dicom:  # their own modules, with their own libraries
        return _lazy("uff" if args.uff else "dicom",
                     "cmd_export_uff" if args.uff else "cmd_export_dicom")(args)
    if args.png:
        width, height = args.size
        return run_export(
            args,
            lambda: export_png(args.file, args.png, overwrite=args.force, size=(height, width),
                               dynamic_range_db=args.dynamic_range,
                               center_freq_hz=args.center_freq_mhz and
                               args.center_freq_mhz * 1e6,
                               keep_damaged=args.keep_damaged),
            lambda res: f"wrote {res.files} PNG frames ({res.bytes / 1e6:.1f} MB) to {res.path}",
            "drawn as missing lines in PNGs")
    return run_export(
        args,
        lambda: export_npz(args.file, args.npz, overwrite=args.force,
                           keep_damaged=args.keep_damaged),
        lambda res: f"wrote {res.path} ({res.frames} frames, {res.bytes / 1e6:.1f} MB)",
        "drawn as missing lines in PNGs")


def run_export(args: argparse.Namespace, write: Callable[[], Any],
               describe: Callable[[Any], str], left_out_as: str,
               refused: tuple[type[BaseException], ...] = ()) -> int:
    """Run one export (PNG, NPZ, UFF, DICOM) with the export commands' one set of rules.

    ``write()`` makes the file and returns a result with ``path``, ``damaged`` and
    ``kept_damaged``; ``describe(result)`` is the line printed for it. Exit 2 for a request
    that cannot be met as given (an existing output, ``refused`` errors), 1 for a recording
    that cannot be exported or damaged rows left out (``left_out_as`` says how they appear).
    """
    from .export import ExportError
    from .hdf5_schema import RecordingError

    try:
        res = write()
    except (FileExistsError, *refused) as exc:
        _err(str(exc))
        return 2
    except RecordingError as exc:
        _recording_error(exc)
        return 1
    except (ExportError, FileNotFoundError) as exc:
        _err(str(exc))
        return 1
    except OSError as exc:  # the disk is full or the folder went away: nothing half-made is kept
        _err(f"cannot write the export: {exc}")
        return 1
    print(describe(res))
    if not res.damaged:
        return 0
    if res.kept_damaged:
        print("warning: " + _damaged_rows_message(
            args.file, res.damaged, f"kept in {res.path} as stored (--keep-damaged)"),
            file=sys.stderr)
        return 0
    _err(_damaged_rows_message(
        args.file, res.damaged, f"left out of {res.path} ({left_out_as}); use --keep-damaged "
        "to export them anyway"))
    return 1


# -- parsers -------------------------------------------------------------------------------------


def add_parsers(subparsers: Any) -> None:
    """Register ``record``, ``replay``, ``convert`` and ``export`` on a subparsers object."""
    p = subparsers.add_parser(
        "record", help="record a board's lines to HDF5 (and a raw capture)",
        description="Record every echo line to an HDF5 dataset (docs/recording.md). Ctrl-C "
        "ends an open-ended recording cleanly.")
    p.add_argument("port", help="device path, COM name, pyserial URL, sim://… or replay://…")
    argtypes.add_board_options(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE.h5",
                   type=argtypes.output_file, help="HDF5 recording")
    p.add_argument("--raw", metavar="FILE", type=argtypes.output_file,
                   help="also write a raw capture of every byte")
    end = p.add_mutually_exclusive_group()
    end.add_argument("--seconds", type=argtypes.positive_seconds,
                     help="stop after this many seconds")
    end.add_argument("--frames", type=argtypes.frame_count,
                     help="record this many frames (START n_frames)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    argtypes.add_acquisition_options(p)
    p.add_argument("--flush-interval", type=argtypes.positive_seconds, default=0.5, metavar="S",
                   help="flush the files at least this often (default 0.5 s, at most 1 s)")
    p.add_argument("--reserve-mb", type=argtypes.megabytes, default=None, metavar="N",
                   help="stop recording (cleanly) when less than N MB are free on the disk "
                   "(default: 5 s of data at the board's rated throughput, at least 4 MiB)")
    p.add_argument("--progress-interval", type=argtypes.positive_seconds, default=1.0,
                   metavar="S", help=argparse.SUPPRESS)
    p.add_argument("--idle-timeout", type=argtypes.positive_seconds, default=3.0, metavar="S",
                   help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_record)

    p = subparsers.add_parser(
        "replay", help="serve a recording as a board (pty, TCP or replay:// URL)",
        description="Play a raw capture or HDF5 recording back as a board. It answers the "
        "handshake, plays from the beginning on START and stops on STOP; CONFIGURE is "
        "acknowledged but the recording plays as recorded (a LOG says so).")
    p.add_argument("file", help="raw capture or HDF5 recording")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--pty", action="store_true", default=True,
                      help="serve on a pseudo-terminal and print its path (default)")
    mode.add_argument("--tcp", metavar="[HOST:]PORT", type=argtypes.host_port,
                      help="serve on TCP (socket://HOST:PORT; port 0: any free port)")
    mode.add_argument("--url", action="store_true",
                      help="print the replay:// URL that opens the file in-process, and exit")
    p.add_argument("--link-path", type=argtypes.new_link_path,
                   help="also make this symlink to the pty")
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--speed", type=argtypes.positive_float, default=1.0,
                       help="playback speed, 1 = recorded timing (default)")
    speed.add_argument("--fast", action="store_true", help="as fast as the host reads")
    p.add_argument("--loop", action="store_true", help="start over at the end")
    p.add_argument("--link", default="unlimited",
                   help="cap throughput: uart-250k, usb-fs, usb-hs, unlimited (default)")
    p.set_defaults(func=cmd_replay)

    p = subparsers.add_parser(
        "convert", help="raw capture -> HDF5 recording (or salvage a damaged one)",
        description="Decode a raw capture into the HDF5 recording a direct recording would "
        "have made. Given a truncated or damaged HDF5 recording instead, copy every row that "
        "still passes its CRC-32 into a new file, naming the damaged ones.")
    p.add_argument("capture", help="raw capture (or a truncated or damaged HDF5 recording)")
    p.add_argument("-o", "--output", required=True, metavar="FILE.h5",
                   type=argtypes.output_file)
    p.add_argument("--force", action="store_true", help="overwrite the output")
    p.set_defaults(func=cmd_convert)

    p = subparsers.add_parser("export", help="export a recording as PNG frames, NPZ, UFF or DICOM")
    p.add_argument("file", help="HDF5 recording")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--png", metavar="DIR", type=argtypes.output_dir,
                      help="one B-mode PNG per frame into DIR")
    what.add_argument("--npz", metavar="FILE", type=argtypes.output_file,
                      help="samples and metadata arrays")
    what.add_argument("--uff", metavar="FILE", type=argtypes.output_file,
                      help="USTB UFF channel data (HDF5) for beamforming tools")
    what.add_argument("--dicom", metavar="FILE", type=argtypes.output_file,
                      help="one DICOM Ultrasound Multi-frame Image (the cine loop, calibrated)")
    p.add_argument("--force", action="store_true", help="overwrite existing output")
    p.add_argument("--keep-damaged", action="store_true",
                   help="export rows whose samples fail their CRC-32 too (a warning still "
                   "names them; without it they are left out and the exit code is 1)")
    p.add_argument("--size", default=(512, 512), type=argtypes.size_wxh, metavar="WxH",
                   help="PNG size, each side 16..8192 (default 512x512)")
    p.add_argument("--dynamic-range", type=argtypes.positive_float, default=50.0, metavar="DB",
                   help="B-mode dynamic range in dB (default 50)")
    p.add_argument("--center-freq-mhz", type=argtypes.positive_float,
                   help="demodulation frequency (default: the recorded pulse frequency)")
    p.add_argument("--frames", metavar="A:B", type=argtypes.frame_range,
                   help="--dicom: only frames A to B-1 (Python slice; default all)")
    p.add_argument("--patient-name", default="",
                   help="--dicom: Patient's Name (default empty: anonymous, never invented)")
    p.add_argument("--patient-id", default="",
                   help="--dicom: Patient ID (default empty: anonymous, never invented)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "import", help="turn another tool's file (pic0lib, pic0rick, un0rick) into a recording",
        description="Read a board's own data file (the format is detected from its content) "
        "and write a normal sonobridge HDF5 recording (docs/formats.md).")
    p.add_argument("file", help="pic0lib HDF5, pic0rick .npz or un0rick .npz")
    p.add_argument("-o", "--output", required=True, metavar="FILE.h5",
                   type=argtypes.output_file, help="the sonobridge recording to write")
    p.add_argument("--format", metavar="NAME", default=None,
                   help="force the input format instead of detecting it")
    p.add_argument("--allow-pickle", action="store_true",
                   help="let a file holding pickled objects be read, through a restricted "
                   "unpickler (numpy arrays and plain containers only)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=_lazy("importers", "cmd_import"))

    p = subparsers.add_parser(
        "store", help="send a DICOM file to a PACS (C-ECHO, then C-STORE)",
        description="Send a DICOM file to a picture archive with DICOM networking: C-ECHO "
        "first, then C-STORE, and report the status (docs/formats.md).")
    p.add_argument("file", help="a DICOM file, e.g. from `sonobridge export run.h5 --dicom`")
    p.add_argument("--pacs", required=True, metavar="AET@HOST:PORT",
                   help="the archive's application entity title, host and port")
    p.add_argument("--aet", default="SONOBRIDGE", metavar="AET",
                   help="this side's application entity title (default SONOBRIDGE)")
    p.add_argument("--timeout", type=argtypes.positive_seconds, default=None, metavar="S",
                   help="seconds to wait for the archive at each step (default 10)")
    p.set_defaults(func=_lazy("pacs", "cmd_store"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one of these subcommands on its own (``python -m sonobridge.record.commands``)."""
    parser = argparse.ArgumentParser(prog="sonobridge")
    add_parsers(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
