"""The ``sonobridge`` command: thin wrappers over the library, one subcommand per job."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from host import __version__


def _cmd_decode(args: argparse.Namespace) -> int:
    """Decode a raw byte capture and print its messages and link statistics."""
    from host.protocol import Decoder, EchoLine

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
    """Run the protocol demo: a synthetic board's lines through a damaged link."""
    from host.demo import run_protocol_demo

    return run_protocol_demo(frames=args.frames, seed=args.seed)


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

    p = sub.add_parser("demo", help="run the main job on a simulated board, headless")
    p.add_argument("--frames", type=int, default=20, help="frames to send (default 20)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sonobridge`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
