"""argparse ``type=`` functions shared by every ``sonobridge`` subcommand.

Each one turns the text a user typed into a value or raises ``argparse.ArgumentTypeError``
naming what is allowed; argparse then prints ``argument --x: <message>`` and exits 2, before
any port is opened or file written. Ranges that depend on the board (a PRF the link can carry,
a depth the board reaches) are checked after connecting; the bounds here only catch what no
board can do.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

from sonobridge.protocol.structs import StartLayout

#: the most frames START can ask for: its unsigned n_frames field, as wide as the layout says
MAX_FRAMES = 2 ** (8 * next(c for c in StartLayout.subcons if c.name == "n_frames").sizeof()) - 1
#: a generous bound on imaging depth; no medical ultrasound probe sees beyond ~30 cm
MAX_DEPTH_CM = 100.0
#: picture size bounds of ``WxH`` (a smaller picture shows nothing, a larger one exhausts memory)
MIN_SIDE, MAX_SIDE = 16, 8192


def _number(text: str, kind: str) -> float:
    """The number in ``text``; NaN and infinity come back as such, for the range check to
    refuse with the allowed range."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None


def _integer(text: str, kind: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None


def positive_seconds(text: str) -> float:
    """A number of seconds > 0."""
    value = _number(text, "a number of seconds")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0 (e.g. 0.5), got "
                                         f"{text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (e.g. a playback speed or a frequency in MHz)."""
    value = _number(text, "a number")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def int_range(low: int, high: int, what: str = "a whole number") -> Callable[[str], int]:
    """A type function accepting whole numbers in ``low..high``."""

    def parse(text: str) -> int:
        value = _integer(text, what)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {what} in {low}..{high}, got {text}")
        return value

    parse.__name__ = f"int_{low}_{high}"  # argparse names the type in some messages
    return parse


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    value = _integer(text, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


#: frames to record (START's n_frames; 0 there means "until STOP", which --seconds expresses)
frame_count = int_range(1, MAX_FRAMES, "a number of frames")


def frame_range(text: str) -> slice:
    """``A:B`` (either side may be empty) as a slice of frames, A >= 0, B > A."""
    start_text, sep, stop_text = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"must be A:B (e.g. 0:50, :50 or 10:), got {text!r}")
    start = _integer(start_text, "a frame number") if start_text.strip() else 0
    stop = _integer(stop_text, "a frame number") if stop_text.strip() else None
    if start < 0 or (stop is not None and stop <= start):
        raise argparse.ArgumentTypeError(f"must be A:B with 0 <= A < B, got {text!r}")
    return slice(start, stop)


def seed(text: str) -> int:
    """A random seed >= 0."""
    value = _integer(text, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a seed >= 0, got {text}")
    return value


def host_port(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` as ``(host, port)``: HOST defaults to 127.0.0.1, PORT 0 = any free port."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not [HOST:]PORT (e.g. 5000 or "
                                         "0.0.0.0:5000)") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"the TCP port must be in 1..65535 (or 0 for any free "
                                         f"port), got {port}")
    return host.strip("[]") or "127.0.0.1", number


def size_wxh(text: str) -> tuple[int, int]:
    """A picture size ``WxH`` (or one number for a square), each side 16..8192, as (w, h)."""
    w, _, h = text.lower().partition("x")
    try:
        width, height = int(w), int(h or w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH (e.g. 512x512)") from None
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise argparse.ArgumentTypeError(f"each side must be {MIN_SIDE}..{MAX_SIDE} pixels, "
                                         f"got {text}")
    return width, height


def depth_cm(text: str) -> float:
    """An imaging depth in cm, > 0 and <= 100 (the board's own range is checked later)."""
    value = _number(text, "a depth in cm")
    if not 0 < value <= MAX_DEPTH_CM:  # also false for NaN
        raise argparse.ArgumentTypeError(f"must be a depth in cm > 0 and <= {MAX_DEPTH_CM:g}, "
                                         f"got {text}")
    return value


#: speeds of sound any medium a board images can have (air ~343 m/s, bone ~4000 m/s)
SOUND_SPEED_RANGE_M_S = (300.0, 5000.0)


def sound_speed(text: str) -> float:
    """A speed of sound in m/s, within SOUND_SPEED_RANGE_M_S."""
    value = _number(text, "a speed of sound in m/s")
    low, high = SOUND_SPEED_RANGE_M_S
    if not low <= value <= high:  # also false for NaN
        raise argparse.ArgumentTypeError(f"must be a speed of sound in m/s, {low:g}..{high:g} "
                                         f"(water 1480, soft tissue 1540), got {text}")
    return value


def megabytes(text: str) -> int:
    """A size in MB (10^6 bytes) >= 0, as bytes."""
    value = _number(text, "a number of MB")
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number of MB >= 0, got {text}")
    return int(value * 1e6)


def output_file(text: str) -> str:
    """A file path to write: not a directory, in a directory that exists."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a file name inside it")
    parent = path.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: the directory {parent} does "
                                         "not exist")
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: the directory {parent} is not "
                                         "writable")
    return text


def new_link_path(text: str) -> str:
    """A symlink path to create (or an old symlink to replace) in a directory that exists."""
    path = Path(text)
    if path.is_dir() and not path.is_symlink():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a file name inside it")
    if path.exists() and not path.is_symlink():
        # only a link is replaced: a user's file there would be lost
        raise argparse.ArgumentTypeError(f"{text} exists and is not a symlink; remove it or "
                                         "pick another path")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot make {text}: the directory {path.parent} "
                                         "does not exist")
    return text


def output_dir(text: str) -> str:
    """A directory to write into: not an existing file; its parent must exist."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    if not path.exists() and not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot make {text}: the directory {path.parent} "
                                         "does not exist")
    return text


#: the most gain any board's VGA gives (dB); the board's own range is checked later
MAX_GAIN_DB = 120.0


def gain_db(text: str) -> float:
    """A flat receive gain in dB, -MAX_GAIN_DB..MAX_GAIN_DB (the board's range is checked later)."""
    value = _number(text, "a gain in dB")
    if not -MAX_GAIN_DB <= value <= MAX_GAIN_DB:  # also false for NaN
        raise argparse.ArgumentTypeError(f"must be a gain in dB within ±{MAX_GAIN_DB:g}, "
                                         f"got {text}")
    return value


def add_acquisition_options(parser: argparse.ArgumentParser) -> None:
    """What ``stream`` and ``record`` may set: depth, lines, samples, PRF and a flat gain."""
    parser.add_argument("--depth-cm", type=depth_cm, help="imaging depth in cm")
    parser.add_argument("--lines", type=positive_int, help="lines per frame")
    parser.add_argument("--samples", type=positive_int, help="samples per line")
    parser.add_argument("--prf", type=positive_int, help="pulse repetition frequency in Hz")
    parser.add_argument("--gain-db", type=gain_db, metavar="DB",
                        help="one receive gain in dB for the whole line (a flat TGC curve; "
                        "on a pic0rick, the gain its DAC sets)")


def acquisition_changes(args: argparse.Namespace) -> dict[str, object]:
    """The ``Device.configure`` changes the options of :func:`add_acquisition_options` ask for."""
    changes: dict[str, object] = {
        "depth_m": args.depth_cm / 100 if args.depth_cm else None,
        "lines_per_frame": args.lines, "samples_per_line": args.samples, "prf_hz": args.prf,
        "tgc_db": None if args.gain_db is None else (args.gain_db,),
    }
    return {k: v for k, v in changes.items() if v is not None}


def add_board_options(parser: argparse.ArgumentParser) -> None:
    """``--baud`` and ``--dialect``: how to talk to the board on PORT (every PORT command)."""
    from sonobridge.device.dialect import AUTO, DIALECTS

    parser.add_argument("--baud", type=positive_int, default=None,
                        help="baud rate for UART boards (default: 250000 for an Open Echo, "
                        "else 115200; USB CDC boards ignore it; 1200 is refused: it reboots "
                        "an RP2040 into its bootloader)")
    parser.add_argument("--dialect", default=AUTO, choices=[AUTO, *DIALECTS],
                        metavar="NAME",
                        help="the board's wire format (default auto: detected). One of: "
                        + "; ".join(f"{name}: {text}" for name, (_, text) in DIALECTS.items()))
