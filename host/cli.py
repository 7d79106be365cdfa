"""The ``sonobridge`` command: thin wrappers over the library, one subcommand per job."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from sonobridge import __version__


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
        for chunk in chunks:
            for msg in dec.feed(chunk):
                kinds[msg.MSG_TYPE.name] += 1
                if args.verbose:
                    if isinstance(msg, EchoLine):
                        print(f"seq {msg.seq}: ECHO_LINE frame {msg.frame_index} line "
                              f"{msg.line_index}/{msg.lines_per_frame} {msg.n_samples} samples "
                              f"@ {msg.sample_rate_hz} Hz")
                    else:
                        print(f"seq {msg.seq}: {msg!r}")
    for name, count in sorted(kinds.items()):
        print(f"{name:12s} {count}")
    print(f"link: {dec.stats.summary()}")
    if dec.buffered:
        print(f"note: the capture ends inside a frame ({dec.buffered} bytes held back)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the simulated board: the live viewer, or a PNG when there is no display."""
    if args.protocol:
        from sonobridge.demo import run_protocol_demo

        return run_protocol_demo(frames=args.frames, seed=args.seed)
    from sonobridge.viewer import run_demo

    return run_demo(snapshot=args.snapshot, frames=args.frames)


def _cmd_view(args: argparse.Namespace) -> int:
    """The live viewer (or a headless snapshot)."""
    try:
        from sonobridge.viewer import run_viewer
    except ImportError as exc:
        print(f"error: the viewer needs the GUI extra: pip install 'sonobridge[gui]' ({exc})",
              file=sys.stderr)
        return 2
    return run_viewer(args.port, snapshot=args.snapshot, frames=args.frames,
                      depth_cm=args.depth_cm)


def _cmd_sim(args: argparse.Namespace) -> int:
    """Serve the simulated board on a pty (or TCP) until interrupted."""
    from sonobridge.board.link import FAULT_HELP
    from sonobridge.sim.server import SimOptions, serve_pty, serve_tcp

    opts = SimOptions(phantom=args.phantom, profile=args.profile, link=args.link,
                      faults=args.faults or "", seed=args.seed)
    try:
        opts.validate()
        if args.tcp is not None:
            host, _, port = args.tcp.rpartition(":")
            return serve_tcp(opts, host or "127.0.0.1", int(port))
        return serve_pty(opts, link_path=args.link_path)
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
    for p in ports:
        ids = f"{p.vid:04X}:{p.pid:04X}" if p.vid is not None and p.pid is not None else "-"
        tag = p.known_as or p.product or p.description
        mark = "*" if p.likely_board else " "
        print(f"{mark} {p.device:40s} {ids:10s} {tag}")
    print("(* = likely an ultrasound board or the simulator)")
    return 0


def _open(args: argparse.Namespace):
    """Open a device for a CLI command, turning errors into a message and exit code 2."""
    from sonobridge.device import DeviceError, open_device

    try:
        return open_device(args.port, baudrate=args.baud)
    except DeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _cmd_info(args: argparse.Namespace) -> int:
    """Print what a board announces in DEVICE_INFO."""
    from sonobridge.protocol import Capability, SampleFormat, SweepKind
    from sonobridge.protocol.limits import status_problems
    from sonobridge.protocol.messages import payload_fields

    dev = _open(args)
    if dev is None:
        return 2
    with dev:
        info = dev.info
        print(f"board        {info.board_name} (id 0x{info.board_id:08X})")
        print(f"firmware     {info.firmware_version}, protocol v{info.protocol_version}")
        formats = [f.name for f in SampleFormat if info.supports_format(f)]
        caps = [c.name for c in Capability if c and info.capabilities & c]
        print(f"formats      {', '.join(formats)}")
        print(f"sweep        {SweepKind(info.sweep_kind).name}")
        print(f"capabilities {', '.join(caps) or 'none'}")
        for name in payload_fields(info):
            if name not in ("board_name", "board_id", "sample_formats", "sweep_kind",
                            "capabilities", "request_seq"):
                print(f"  {name:26s} {getattr(info, name)}")
        status = dev.status()
        print(f"status       {status.temperature_c:.1f} °C, HV {status.hv_mv / 1000:.1f} V, "
              f"{status.dropped_lines} lines dropped since boot")
        for problem in status_problems(status, info):
            print(f"  implausible: {problem} (a sensor or firmware fault)")
    return 0


def _cmd_stream(args: argparse.Namespace) -> int:
    """Stream for N seconds with a live stats line, then print a summary."""
    import time

    from sonobridge.device import DeviceError, FrameTimeout

    dev = _open(args)
    if dev is None:
        return 2
    with dev:
        try:
            changes = {k: v for k, v in (("depth_m", args.depth_cm and args.depth_cm / 100),
                                         ("lines_per_frame", args.lines),
                                         ("prf_hz", args.prf)) if v}
            cfg = dev.configure(**changes)
            print(f"streaming from {dev.info.board_name} on {args.port}: "
                  f"{cfg.lines_per_frame} lines x {cfg.samples_per_line} samples at "
                  f"{cfg.prf_hz} Hz PRF", file=sys.stderr)
            dev.start()
            t_end = time.monotonic() + args.seconds
            next_print = 0.0
            tty = sys.stderr.isatty()
            for _frame in dev.frames(timeout=max(2.0, args.seconds)):
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
            dev.stop()
            dev.status()  # the summary shows the board's own view (drops, temperature)
        except FrameTimeout as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
            return 1
        except DeviceError as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
            return 2
        print("\n" if tty else "", end="", file=sys.stderr)
        print(dev.stats.summary())
    return 0


def hil_pytest_args(args: argparse.Namespace) -> list[str]:
    """The pytest command line running the packaged HIL suite with ``sonobridge hil``'s options."""
    argv = ["--pyargs", "sonobridge.hil", "-p", "no:cacheprovider", "-rs",
            # prepend mode would import the tests under the checkout's folder name (host.hil)
            "--import-mode=importlib",
            # this process imported sonobridge before pytest could mark the plugin's package
            # for assertion rewriting; the tests' own modules are rewritten all the same
            "-W", "ignore:Module already imported so cannot be rewritten; sonobridge"
                  ":pytest.PytestAssertRewriteWarning"]
    if args.port:
        argv += ["--sonobridge-port", args.port, "--sonobridge-baud", str(args.baud)]
    elif args.firmware_host:
        argv += ["--sonobridge-firmware-host", args.firmware_host]
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
    p.add_argument("--baud", type=int, default=115200,
                   help="baud rate for UART boards (USB CDC ignores it)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sonobridge`` command."""
    parser = argparse.ArgumentParser(
        prog="sonobridge",
        description="Bridge between open-hardware ultrasound boards and your computer.",
    )
    parser.add_argument("--version", action="version", version=f"sonobridge {__version__}")
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
    mode.add_argument("--tcp", metavar="[HOST:]PORT",
                      help="serve on TCP instead; open it as socket://HOST:PORT")
    p.add_argument("--link-path", help="also make this symlink to the pty (a stable path that "
                   "survives simulated disconnects)")
    p.add_argument("--phantom", default="wire", help="builtin phantom name or a .toml file")
    p.add_argument("--profile", default="sim", help="board profile name or a .toml file")
    p.add_argument("--link", default="unlimited",
                   help="link profile: uart-250k, usb-fs, usb-hs, unlimited")
    p.add_argument("--faults", default="", help="faults to inject (see below)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.set_defaults(func=_cmd_sim)

    p = sub.add_parser("ports", help="list boards (by USB VID/PID) and the simulator")
    p.add_argument("--no-sim", action="store_true", help="do not list the simulator")
    p.set_defaults(func=_cmd_ports)

    p = sub.add_parser("info", help="show a board's identity, capabilities and status")
    _add_port(p)
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("stream", help="stream from a board and report link statistics")
    _add_port(p)
    p.add_argument("--seconds", type=float, default=10.0, help="how long (default 10)")
    p.add_argument("--depth-cm", type=float, help="imaging depth in cm")
    p.add_argument("--lines", type=int, help="lines per frame")
    p.add_argument("--prf", type=int, help="pulse repetition frequency in Hz")
    p.set_defaults(func=_cmd_stream)

    p = sub.add_parser("view", help="live B-mode / A-mode / M-mode viewer")
    p.add_argument("port", nargs="?", help="device path, COM name, pyserial URL or sim://...; "
                   "without it a port picker opens")
    p.add_argument("--snapshot", metavar="PNG", help="render offscreen, save this PNG and exit")
    p.add_argument("--frames", type=int, default=10, help="frames to draw before --snapshot")
    p.add_argument("--depth-cm", type=float, help="imaging depth in cm")
    p.set_defaults(func=_cmd_view)

    p = sub.add_parser("demo", help="the viewer on the simulated board (a PNG if no display)")
    p.add_argument("--snapshot", default="sonobridge-demo.png",
                   help="PNG to write when there is no display (default sonobridge-demo.png)")
    p.add_argument("--frames", type=int, default=10, help="frames to draw (default 10)")
    p.add_argument("--protocol", action="store_true",
                   help="run the wire-protocol demo (a damaged link) instead")
    p.add_argument("--seed", type=int, default=1, help="random seed for --protocol")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("hil", help="run the hardware-in-the-loop suite on a board or the "
                       "simulator (needs pip install 'sonobridge[hil]')",
                       description="Run the hardware-in-the-loop suite (docs/hil.md). Without "
                       "PORT it tests the simulated board. Further pytest options go last, after "
                       "--, e.g. `sonobridge hil /dev/ttyACM0 -- --sonobridge-unplug -x`.")
    p.add_argument("port", nargs="?", help="device path, COM name or pyserial URL of the board; "
                   "default: start the simulated board")
    p.add_argument("--baud", type=int, default=115200,
                   help="baud rate for UART boards (USB CDC ignores it)")
    p.add_argument("--firmware-host", nargs="?", const="auto", metavar="PATH",
                   help="test the C firmware's host build instead (default: the repository's "
                   "hardware/firmware/build/sonobridge-fw-host)")
    p.add_argument("--report", metavar="DIR",
                   help="write junit.xml, summary.md and summary.json into DIR")
    p.add_argument("--req", nargs="+", action="extend", default=[], metavar="ID",
                   help="only these requirements (an id or a prefix such as HIL-STR)")
    p.add_argument("--duration", type=float, metavar="S",
                   help="streaming time of the throughput test in seconds")
    p.set_defaults(func=_cmd_hil, pytest_args=[])  # what follows `--`: see parse_args

    from sonobridge.record.commands import add_parsers as add_record_parsers

    add_record_parsers(sub)  # record, replay, convert, export
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
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
