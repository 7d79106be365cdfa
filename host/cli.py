"""The ``sonobridge`` command: thin wrappers over the library, one subcommand per job."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from sonobridge import __version__, argtypes


def _cmd_decode(args: argparse.Namespace) -> int:
    """Decode a raw byte capture and print its messages and link statistics."""
    from sonobridge.protocol import Decoder, EchoLine

    source = sys.stdin.buffer if args.file == "-" else None
    if source is None:
        path = Path(args.file)
        if not path.is_file():
            print(f"error: {path} does not exist or is not a file", file=sys.stderr)
            return 2
        source = path.open("rb")
    dec = Decoder()
    kinds: Counter[str] = Counter()
    with source:
        if args.hex:
            text = source.read().decode("ascii", "replace")
            lines = (line.split("#", 1)[0] for line in text.splitlines())
            try:
                chunks = [bytes.fromhex("".join("".join(lines).split()))]
            except ValueError as exc:
                print(f"error: {args.file} is not hex text: {exc}", file=sys.stderr)
                return 2
        else:
            chunks = iter(lambda: source.read(1 << 16), b"")
        first = None
        for chunk in chunks:
            first = chunk if first is None else first
            for msg in dec.feed(chunk):
                kinds[msg.MSG_TYPE.name] += 1
                if args.verbose:
                    if isinstance(msg, EchoLine):
                        print(f"seq {msg.seq}: ECHO_LINE frame {msg.frame_index} line "
                              f"{msg.line_index}/{msg.lines_per_frame} {msg.n_samples} samples "
                              f"@ {msg.sample_rate_hz} Hz")
                    else:
                        print(f"seq {msg.seq}: {msg!r}")
    if not kinds and not args.hex and first and _looks_like_hex_text(first):
        print(f"error: {args.file} is hex text, not raw bytes: decode it with "
              f"`sonobridge decode --hex {args.file}`", file=sys.stderr)
        return 2
    for name, count in sorted(kinds.items()):
        print(f"{name:12s} {count}")
    print(f"link: {dec.stats.summary()}")
    if dec.buffered:
        print(f"note: the capture ends inside a frame ({dec.buffered} bytes held back)")
    return 0


def _looks_like_hex_text(data: bytes) -> bool:
    """True if ``data`` is hex digits, whitespace and ``#`` comments (a ``.hex`` dump)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return False
    digits = "".join(line.split("#", 1)[0] for line in text.splitlines()).split()
    joined = "".join(digits)
    return bool(joined) and all(c in "0123456789abcdefABCDEF" for c in joined)


def _refuse_existing_snapshot(path: str | None, force: bool) -> bool:
    """Print why and return True if ``path`` exists and ``--force`` was not given."""
    if path is not None and Path(path).exists() and not force:
        print(f"error: argument --snapshot: {path} exists; use --force to overwrite it",
              file=sys.stderr)
        return True
    return False


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the simulated board: the live viewer, or a PNG when there is no display."""
    if args.protocol:
        from sonobridge.demo import run_protocol_demo

        return run_protocol_demo(frames=args.frames, seed=args.seed)
    from sonobridge.viewer import run_demo
    from sonobridge.viewer.app import has_display

    # the snapshot is only written when there is no display to show the viewer on
    if not has_display() and _refuse_existing_snapshot(args.snapshot, args.force):
        return 2
    return run_demo(snapshot=args.snapshot, frames=args.frames, force=args.force)


def _cmd_view(args: argparse.Namespace) -> int:
    """The live viewer (or a headless snapshot)."""
    if _refuse_existing_snapshot(args.snapshot, args.force):
        return 2
    try:
        from sonobridge.viewer import run_viewer
    except ImportError as exc:
        print(f"error: the viewer needs the GUI extra: pip install 'sonobridge[gui]' ({exc})",
              file=sys.stderr)
        return 2
    return run_viewer(args.port, snapshot=args.snapshot, frames=args.frames,
                      depth_cm=args.depth_cm, force=args.force, baudrate=args.baud,
                      dialect=args.dialect, sound_speed_m_s=args.sound_speed, lite=args.lite)


def _cmd_sim(args: argparse.Namespace) -> int:
    """Serve the simulated board on a pty (or TCP) until interrupted."""
    from sonobridge.board.link import FAULT_HELP
    from sonobridge.sim.server import ServeError, SimOptions, serve_pty, serve_tcp

    opts = SimOptions(phantom=args.phantom, profile=args.profile, link=args.link,
                      faults=args.faults or "", seed=args.seed, board=args.board,
                      variant=args.variant or "")
    try:
        opts.validate()
        if args.tcp is not None:
            host, port = args.tcp
            return serve_tcp(opts, host, port)
        return serve_pty(opts, link_path=args.link_path)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if "fault" in str(exc) and FAULT_HELP not in str(exc):
            print(FAULT_HELP, file=sys.stderr)
        return 2


def _cmd_ports(args: argparse.Namespace) -> int:
    """List serial ports that look like boards, and the simulator."""
    from sonobridge.device import list_candidate_ports

    ports = list_candidate_ports(include_sim=not args.no_sim)
    if not ports:
        print("no serial ports found")
    else:
        print(f"  {'PORT':40s} {'USB ID':10s} DESCRIPTION")
    for p in ports:
        ids = f"{p.vid:04X}:{p.pid:04X}" if p.vid is not None and p.pid is not None else "-"
        tag = p.known_as or p.product or p.description
        if p.likely_name:
            tag = f"{p.likely_name}: {tag}"
        mark = "*" if p.likely_board else " "
        print(f"{mark} {p.device:40s} {ids:10s} {tag}")
    print("(* = likely an ultrasound board or the simulator)")
    return 0


def _open(args: argparse.Namespace) -> Any:
    """Open a device for a CLI command; on failure print why and return the exit code: 2 for a
    port that cannot be opened (the argument), 1 for a board that does not answer properly."""
    from sonobridge.device import DeviceError, PortError, open_device

    try:
        return open_device(args.port, baudrate=args.baud, dialect=args.dialect)
    except DeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, PortError) else 1


def _cmd_info(args: argparse.Namespace) -> int:
    """Print what a board announces in DEVICE_INFO."""
    from sonobridge.protocol import Capability, MsgType, SampleFormat, SweepKind
    from sonobridge.protocol.limits import status_problems
    from sonobridge.protocol.messages import payload_fields

    dev = _open(args)
    if isinstance(dev, int):
        return dev
    with dev:
        info = dev.info
        nominal = dev.dialect.nominal_fields()
        print(f"board        {info.board_name} (id 0x{info.board_id:08X})")
        print(f"dialect      {dev.dialect.name}")
        if nominal:
            print("             (this board does not announce itself: the values marked "
                  "'nominal' are assumptions; see docs/boards.md)")
        else:
            print(f"firmware     {info.firmware_version}, protocol v{info.protocol_version}")
        formats = [f.name for f in SampleFormat if info.supports_format(f)]
        caps = [c.name for c in Capability if c and info.capabilities & c]
        print(f"formats      {', '.join(formats)}")
        print(f"sweep        {SweepKind(info.sweep_kind).name}")
        print(f"capabilities {', '.join(caps) or 'none'}")
        for name in payload_fields(info):
            if name in ("board_name", "board_id", "sample_formats", "sweep_kind",
                        "capabilities", "request_seq"):
                continue
            if nominal and name in ("protocol_version", "fw_major", "fw_minor", "fw_patch"):
                continue  # a board on its own firmware has no protocol version to state
            why = f"  (nominal: {nominal[name]})" if name in nominal else ""
            print(f"  {name:26s} {getattr(info, name)}{why}")
        if not dev.supports(MsgType.GET_STATUS):
            print("status       none: this board has no STATUS command")
            return 0
        status = dev.status()
        print(f"status       {status.temperature_c:.1f} °C, HV {status.hv_mv / 1000:.1f} V, "
              f"{status.dropped_lines} lines dropped since boot")
        for problem in status_problems(status, info):
            print(f"  implausible: {problem} (a sensor or firmware fault)")
    return 0


def _cmd_stream(args: argparse.Namespace) -> int:
    """Stream for N seconds with a live stats line, then print a summary."""
    import contextlib
    import itertools
    import time

    from sonobridge.device import ConfigError, DeviceError, FrameTimeout
    from sonobridge.protocol import MsgType

    dev = _open(args)
    if isinstance(dev, int):
        return dev
    tty = sys.stderr.isatty()
    code = 0
    with dev:
        try:
            cfg = dev.configure(**argtypes.acquisition_changes(args))
            print(f"streaming from {dev.info.board_name} on {args.port}: "
                  f"{cfg.lines_per_frame} lines x {cfg.samples_per_line} samples at "
                  f"{cfg.prf_hz} Hz PRF", file=sys.stderr)
            # a frame takes lines/PRF at the board; allow for a slow link on top
            frame_timeout = max(2.0, 3.0 * cfg.lines_per_frame / cfg.prf_hz)
            # the first frame also waits for the board to get going after START
            waited = max(5.0, frame_timeout)
            if dev.supports(MsgType.GET_STATUS):
                with contextlib.suppress(DeviceError):
                    dev.status()  # where the board's drop counter stands before this session
            dev.start()
            t_end = time.monotonic() + args.seconds
            next_print = 0.0
            try:
                first = dev.frames(timeout=waited, count=1)
                for _frame in itertools.chain(first, dev.frames(timeout=frame_timeout)):
                    waited = frame_timeout
                    now = time.monotonic()
                    if now >= next_print:
                        s = dev.stats
                        line = (f"{s.elapsed_s:6.1f} s  {s.bytes_in / 1e6:8.1f} MB  "
                                f"{s.mb_per_s:6.2f} MB/s  {s.frames_per_s:6.1f} frames/s  "
                                f"lost {s.lines_missing} lines  CRC {s.crc_errors}")
                        print(("\r" + line) if tty else line, end="" if tty else "\n",
                              file=sys.stderr, flush=True)
                        next_print = now + (0.25 if tty else 1.0)
                    if now >= t_end:
                        break
            except FrameTimeout:
                code = _stream_stopped(args, dev, cfg, waited)
            except KeyboardInterrupt:
                code = 130
            with contextlib.suppress(DeviceError, KeyboardInterrupt):
                dev.stop()
                # the sweeps still in the board's send buffer belong to this session
                if code != 130 and not dev.settle():
                    print("\nnote: the board was still sending 10 s after STOP; the figures "
                          "below leave out what it had not sent yet", file=sys.stderr)
                dev.flush()
                if dev.supports(MsgType.GET_STATUS):
                    dev.status()  # the summary shows the board's own view (drops, temperature)
        except DeviceError as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, ConfigError) else 1  # a setting is a mistake
        print("\n" if tty else "", end="", file=sys.stderr)
        s = dev.stats
        print(s.summary())
        print(f"averages over the whole run: {s.mean_mb_per_s:.2f} MB/s, "
              f"{s.mean_lines_per_s:.0f} lines/s, {s.mean_frames_per_s:.1f} frames/s")
    if code == 130:
        print("interrupted", file=sys.stderr)
    return code


def _stream_stopped(args: argparse.Namespace, dev: Any, cfg: Any, waited_s: float,
                    probe_s: float = 1.0) -> int:
    """Explain why ``stream`` got no more frames; returns the exit code (0: a replay ended)."""
    import threading

    s = dev.stats
    from sonobridge.record.replay import END_OF_RECORDING

    ended = any(END_OF_RECORDING in text for text in s.logs)
    if ended or (str(args.port).startswith("replay://") and s.frames_complete):
        print(f"\nthe replay ended after {s.elapsed_s:.1f} s", file=sys.stderr)
        return 0
    # bytes still coming in: a link too slow to finish a frame; none: the board went quiet
    threading.Event().wait(probe_s)
    if dev.stats.bytes_in > s.bytes_in:
        from sonobridge.protocol.rules import line_bytes

        # one line per firing
        need_mb_s = line_bytes(cfg.sample_format, cfg.samples_per_line) * cfg.prf_hz / 1e6
        print(f"\nerror: lines arrive from {args.port} but no frame was completed in "
              f"{waited_s:.1f} s: the link is too slow for this configuration (it needs about "
              f"{need_mb_s:.1f} MB/s, {s.mean_mb_per_s:.2f} MB/s arrive); try a lower --prf, "
              "fewer --lines or a smaller --depth-cm", file=sys.stderr)
        return 1
    if s.frames_complete + s.frames_incomplete == 0:
        print(f"\nerror: the board on {args.port} sent no echo lines in {waited_s:.1f} s "
              "after START; check `sonobridge info` for its status (HV fault, "
              "temperature) and that no other program uses the port", file=sys.stderr)
        return 1
    print(f"\nerror: the board on {args.port} stopped sending after {s.elapsed_s:.1f} s; "
          "check its cable and power supply, and `sonobridge info` for its status",
          file=sys.stderr)
    return 1


def hil_pytest_args(args: argparse.Namespace) -> list[str]:
    """The pytest command line running the packaged HIL suite with ``sonobridge hil``'s options."""
    from sonobridge.device.dialect import AUTO

    argv = ["--pyargs", "sonobridge.hil", "-p", "no:cacheprovider", "-rs",
            # prepend mode would import the tests under the checkout's folder name (host.hil)
            "--import-mode=importlib",
            # this process imported sonobridge before pytest could mark the plugin's package
            # for assertion rewriting; the tests' own modules are rewritten all the same
            "-W", "ignore:Module already imported so cannot be rewritten; sonobridge"
                  ":pytest.PytestAssertRewriteWarning"]
    if args.port:
        argv += ["--sonobridge-port", args.port]
    elif args.firmware_host:
        argv += ["--sonobridge-firmware-host", args.firmware_host]
    if args.baud is not None:  # None: the per-board default, decided when the port opens
        argv += ["--sonobridge-baud", str(args.baud)]
    if args.dialect != AUTO:
        argv += ["--sonobridge-dialect", args.dialect]
    if args.report:
        argv += ["--sonobridge-report", args.report]
    for req in args.req:
        argv += ["--sonobridge-req", req]
    if args.duration is not None:
        argv += ["--sonobridge-duration", str(args.duration)]
    return argv + list(args.pytest_args)


def _cmd_hil(args: argparse.Namespace) -> int:
    """Run the hardware-in-the-loop suite against a board (or the simulated board)."""
    if args.port and args.firmware_host:
        print("error: give either a PORT or --firmware-host, not both", file=sys.stderr)
        return 2
    try:
        import pytest
    except ImportError as exc:
        print(f"error: the HIL suite needs pytest: pip install 'sonobridge[hil]' ({exc})",
              file=sys.stderr)
        return 2
    return int(pytest.main(hil_pytest_args(args)))


def _add_port(p: argparse.ArgumentParser) -> None:
    p.add_argument("port", help="device path, COM name, pyserial URL, or sim://?phantom=...")
    argtypes.add_board_options(p)


class _Parser(argparse.ArgumentParser):
    """A parser whose mistakes print one line and a pointer to ``--help``, not the usage block
    (which buries the message a new user needs)."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` and where the options are listed; exit 2."""
        self.exit(2, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists the "
                     "options)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sonobridge`` command."""
    parser = _Parser(
        prog="sonobridge",
        description="Bridge between open-hardware ultrasound boards and your computer.",
    )
    parser.add_argument("--version", action="version", version=f"sonobridge {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("decode", help="decode a raw byte capture (file or - for stdin)")
    p.add_argument("file", help="capture file, e.g. from `cat /dev/ttyACM0 > dump.bin`")
    p.add_argument("-v", "--verbose", action="store_true", help="print every message")
    p.add_argument("--hex", action="store_true",
                   help="the file is hex text (like tests/vectors/*.hex), not raw bytes")
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("sim", help="serve the simulated board on a pty (or TCP)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="faults:\n" + _fault_help())
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--pty", action="store_true", default=True,
                      help="serve on a pseudo-terminal and print its path (default)")
    mode.add_argument("--tcp", metavar="[HOST:]PORT", type=argtypes.host_port,
                      help="serve on TCP instead (port 0: any free port); open it as "
                      "socket://HOST:PORT")
    p.add_argument("--link-path", type=argtypes.new_link_path,
                   help="also make this symlink to the pty (a stable path that survives "
                   "simulated disconnects)")
    p.add_argument("--phantom", default="wire", help="builtin phantom name or a .toml file")
    p.add_argument("--profile", default="sim", help="board profile name or a .toml file")
    p.add_argument("--link", default="unlimited",
                   help="link profile: uart-250k, usb-fs, usb-hs, unlimited")
    p.add_argument("--faults", default="", help="faults to inject (see below)")
    p.add_argument("--seed", type=argtypes.seed, default=1, help="random seed (default 1)")
    p.add_argument("--board", default="sonobridge",
                   help="sonobridge (the native simulated board, default) or a twin of another "
                   "board speaking its own format: open-echo, pic0rick")
    p.add_argument("--variant", default="",
                   help="a twin's variant, e.g. open-echo: uno-r3 (default) or uno-r4, 200k "
                   "(default) or 40k, as in --variant uno-r4,40k")
    p.set_defaults(func=_cmd_sim)

    p = sub.add_parser("ports", help="list boards (by USB VID/PID) and the simulator")
    p.add_argument("--no-sim", action="store_true", help="do not list the simulator")
    p.set_defaults(func=_cmd_ports)

    p = sub.add_parser("info", help="show a board's identity, capabilities and status")
    _add_port(p)
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("stream", help="stream from a board and report link statistics")
    _add_port(p)
    p.add_argument("--seconds", type=argtypes.positive_seconds, default=10.0,
                   help="how long (default 10)")
    argtypes.add_acquisition_options(p)
    p.set_defaults(func=_cmd_stream)

    p = sub.add_parser("view", help="live B-mode / A-mode / M-mode viewer")
    p.add_argument("port", nargs="?", help="device path, COM name, pyserial URL or sim://...; "
                   "without it a port picker opens")
    p.add_argument("--snapshot", metavar="PNG", type=argtypes.output_file,
                   help="render offscreen, save this PNG and exit")
    p.add_argument("--force", action="store_true", help="overwrite an existing --snapshot")
    p.add_argument("--frames", type=argtypes.positive_int, default=10,
                   help="frames to draw before --snapshot")
    p.add_argument("--depth-cm", type=argtypes.depth_cm, help="imaging depth in cm")
    p.add_argument("--sound-speed", type=argtypes.sound_speed, metavar="M/S",
                   help="speed of sound for the depth scale (default: the board's medium: "
                   "1540 soft tissue, 1480 water for an Open Echo)")
    p.add_argument("--lite", action="store_true",
                   help="for a slow host (a Raspberry Pi): a 384x384 B-mode and the A-mode, "
                   "M-mode and PW panels redrawn twice a second")
    argtypes.add_board_options(p)
    p.set_defaults(func=_cmd_view)

    p = sub.add_parser("demo", help="the viewer on the simulated board (a PNG if no display)")
    p.add_argument("--snapshot", default="sonobridge-demo.png", type=argtypes.output_file,
                   help="PNG to write when there is no display (default sonobridge-demo.png)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --snapshot")
    p.add_argument("--frames", type=argtypes.positive_int, default=10,
                   help="frames to draw (default 10)")
    p.add_argument("--protocol", action="store_true",
                   help="run the wire-protocol demo (a damaged link) instead")
    p.add_argument("--seed", type=argtypes.seed, default=1, help="random seed for --protocol")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("hil", help="run the hardware-in-the-loop suite on a board or the "
                       "simulator (needs pip install 'sonobridge[hil]')",
                       description="Run the hardware-in-the-loop suite (docs/hil.md). Without "
                       "PORT it tests the simulated board. Further pytest options go last, after "
                       "--, e.g. `sonobridge hil /dev/ttyACM0 -- --sonobridge-unplug -x`.")
    p.add_argument("port", nargs="?", help="device path, COM name or pyserial URL of the board; "
                   "default: start the simulated board")
    argtypes.add_board_options(p)
    p.add_argument("--firmware-host", nargs="?", const="auto", metavar="PATH",
                   help="test the C firmware's host build instead (default: the repository's "
                   "hardware/firmware/build/sonobridge-fw-host)")
    p.add_argument("--report", metavar="DIR", type=argtypes.output_dir,
                   help="write junit.xml, summary.md and summary.json into DIR")
    p.add_argument("--req", nargs="+", action="extend", default=[], metavar="ID",
                   help="only these requirements (an id or a prefix such as HIL-STR)")
    p.add_argument("--duration", type=argtypes.positive_seconds, metavar="S",
                   help="streaming time of the throughput test in seconds")
    p.set_defaults(func=_cmd_hil, pytest_args=[])  # what follows `--`: see parse_args

    from sonobridge.record.commands import add_parsers as add_record_parsers

    add_record_parsers(sub)  # record, replay, convert, export
    for p in sub.choices.values():
        # also after the command (`sonobridge info X --debug`); SUPPRESS keeps the subparser
        # from overwriting a --debug given before the command with its default
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an unexpected error")
    return parser


def _fault_help() -> str:
    from sonobridge.board.link import FAULT_HELP

    return FAULT_HELP


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line; for ``hil``, everything after ``--`` is kept for pytest.

    Split off by hand: argparse gives every positional its values at their first occurrence,
    so ``hil PORT ... -- -x`` would leave ``-x`` unrecognised.
    """
    argv = list(argv)
    extra: list[str] = []
    if argv[:1] == ["hil"] and "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = parser.parse_args(argv)
    if extra:
        args.pytest_args = extra
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sonobridge`` console script."""
    parser = build_parser()
    args = parse_args(parser, sys.argv[1:] if argv is None else argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        # flushed here, so a closed pipe (`sonobridge info X | head -1`) is caught below and
        # not reported by the interpreter at exit
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except Exception as exc:
        if args.debug:
            raise
        what = str(exc) or type(exc).__name__
        print(f"error: {what} (run again with --debug to see the traceback, and report it as "
              "a bug)", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at devnull, so the interpreter's final flush does not fail again.

    The recipe of the Python documentation (signal module, "Note on SIGPIPE").
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # stdout is not a file (a test's capture): nothing is flushed at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)


if __name__ == "__main__":
    sys.exit(main())
