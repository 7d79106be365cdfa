"""The contract every ``sonobridge`` subcommand keeps with a user who types something wrong.

A mistake (a bad value, a missing file, an output that exists) exits 2 with a line naming the
argument or the file, the value and what is allowed. A runtime failure (a board that sends
nothing, a TCP port in use) exits 1 saying what happened and what to do. Nobody sees a
traceback unless they pass ``--debug``.

``MISTAKES`` is the table of what users got wrong. When someone finds a new way to get a
traceback, a silent success or a vague message, add a row here (argv, exit status, the words the
message must contain) next to the fix, so it stays fixed. Most rows run in-process (fast);
the tests at the end run real processes where the process matters (a pipe, a hang, a port).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sonobridge import argtypes
from sonobridge.cli import main
from sonobridge.device.ports import PortInfo

from .record.record_fixtures import sim_url

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--lines", "8", "--samples", "512", "--prf", "4000"]


@dataclass(frozen=True)
class Row:
    """One bad command line: ``{name}`` in argv is a path from the ``files`` fixture."""

    argv: str
    code: int
    #: words the error output must contain: the argument or file, and what to do
    says: tuple[str, ...]
    #: a file (a ``files`` key) that must not exist afterwards: nothing half-made is left
    absent: str | None = None


MISTAKES: list[Row] = [
    # decode
    Row("decode {tmp}/nope.bin", 2, ("nope.bin", "does not exist")),
    Row("decode {hexdump}", 2, ("--hex", "hex text")),
    Row("decode --hex {binary}", 2, ("binary.bin", "not hex text")),
    # sim
    Row("sim --tcp 99999", 2, ("--tcp", "99999", "1..65535")),
    Row("sim --tcp localhost:http", 2, ("--tcp", "[HOST:]PORT")),
    Row("sim --link-path /nonexistent/x", 2, ("--link-path", "/nonexistent", "does not exist")),
    Row("sim --link-path {dir}", 2, ("--link-path", "directory")),
    Row("sim --link-path {png}", 2, ("--link-path", "not a symlink")),
    Row("sim --seed -1", 2, ("--seed", "-1", ">= 0")),
    Row("sim --link usb-9000", 2, ("usb-9000", "uart-250k")),
    Row("sim --faults bitflip=2", 2, ("bitflip", "probability")),
    Row("sim --tcp 127.0.0.1:{busy}", 1, ("TCP port {busy}", "already in use", "pick another")),
    # ports
    Row("ports --all", 2, ("--all",)),
    # info
    Row("info /dev/does-not-exist-sonobridge", 2,
        ("does-not-exist-sonobridge", "sonobridge ports")),
    Row("info sim:// --baud 0", 2, ("--baud", "0", ">= 1")),
    Row("info /dev/null", 2, ("/dev/null", "sonobridge ports")),
    # something listens, but it is no board: a runtime failure, saying what to check
    Row("info socket://127.0.0.1:{busy}", 1, ("no board recognised", "GET_INFO", "'run> '",
                                              "Not one byte came back", "--dialect")),
    Row("info socket://127.0.0.1:{busy} --dialect sonobridge-v1", 1,
        ("no sonobridge board answered", "sonobridge ports")),
    Row("info sim:// --dialect pic0rick", 2, ("--dialect", "pic0rick-shell", "open-echo-v2")),
    Row("info sim:// --baud 1200", 2, ("1200 baud", "bootloader")),
    # stream
    Row("stream sim:// --seconds -5", 2, ("--seconds", "-5", "> 0")),
    Row("stream sim:// --seconds 0", 2, ("--seconds", "> 0")),
    Row("stream sim:// --seconds soon", 2, ("--seconds", "'soon'")),
    Row("stream sim:// --lines 0", 2, ("--lines", ">= 1")),
    Row("stream sim:// --prf 0", 2, ("--prf", ">= 1")),
    Row("stream sim:// --baud 0", 2, ("--baud", ">= 1")),
    Row("stream sim:// --gain-db loud", 2, ("--gain-db", "'loud'")),
    Row("stream sim:// --gain-db 500", 2, ("--gain-db", "±120")),
    Row("view sim:// --sound-speed 10", 2, ("--sound-speed", "300..5000", "water 1480")),
    Row("stream sim:// --depth-cm 0", 2, ("--depth-cm", "> 0")),
    Row("stream sim:// --depth-cm 200", 2, ("--depth-cm", "200", "<= 100")),
    # the board's own range, checked after connecting: the depth is the cause, not the PRF
    Row("stream {sim} --depth-cm 100 --seconds 1", 2, ("depth of 100 cm", "at most", "PRF")),
    Row("stream {sim} --lines 70000 --seconds 1", 2, ("lines_per_frame", "70000", "1..256")),
    Row("stream {sim_silent} --seconds 5 --lines 8", 1, ("sent no echo lines", "sonobridge info")),
    Row("stream {sim_stops} --seconds 30 --lines 8 --depth-cm 3", 1,
        ("stopped sending after", "cable")),
    # view
    Row("view --frames -3", 2, ("--frames", "-3", ">= 1")),
    Row("view --frames 0", 2, ("--frames", ">= 1")),
    Row("view sim:// --snapshot {dir}", 2, ("--snapshot", "directory")),
    Row("view sim:// --snapshot /nonexistent/v.png", 2, ("--snapshot", "/nonexistent")),
    Row("view sim:// --snapshot {png}", 2, ("--snapshot", "exists", "--force")),
    Row("view sim:// --depth-cm 200", 2, ("--depth-cm", "<= 100")),
    Row("view sim:// --lite=yes", 2, ("--lite", "ignored explicit argument")),
    # demo
    Row("demo --frames 0", 2, ("--frames", ">= 1")),
    Row("demo --protocol --seed -1", 2, ("--seed", "-1")),
    Row("demo --snapshot /nonexistent/d.png", 2, ("--snapshot", "/nonexistent")),
    Row("demo --snapshot {png}", 2, ("--snapshot", "exists", "--force")),
    # hil
    Row("hil --duration -1", 2, ("--duration", "> 0")),
    Row("hil --duration 0", 2, ("--duration", "> 0")),
    Row("hil --baud 0", 2, ("--baud", ">= 1")),
    Row("hil /dev/ttyACM0 --firmware-host", 2, ("--firmware-host", "not both")),
    Row("hil --report {png}", 2, ("--report", "not a directory")),
    # record
    Row("record sim:// -o {out} --seconds -5", 2, ("--seconds", "-5"), absent="out"),
    Row("record sim:// -o {out} --seconds 0", 2, ("--seconds", "> 0"), absent="out"),
    Row("record sim:// -o {out} --frames -1", 2, ("--frames", "-1", "1..4294967295"),
        absent="out"),
    Row("record sim:// -o {out} --frames 0", 2, ("--frames", "1..4294967295"), absent="out"),
    Row("record sim:// -o {out} --frames 4294967296", 2, ("--frames", "4294967295"),
        absent="out"),
    Row("record sim:// -o {out} --samples 0", 2, ("--samples", ">= 1"), absent="out"),
    Row("record sim:// -o {out} --lines 0", 2, ("--lines", ">= 1"), absent="out"),
    Row("record sim:// -o {out} --prf 0", 2, ("--prf", ">= 1"), absent="out"),
    Row("record sim:// -o {out} --depth-cm -1", 2, ("--depth-cm", "> 0"), absent="out"),
    Row("record sim:// -o {out} --idle-timeout 0", 2, ("--idle-timeout", "> 0"), absent="out"),
    Row("record sim:// -o {out} --progress-interval -1", 2, ("--progress-interval", "> 0"),
        absent="out"),
    Row("record sim:// -o {out} --flush-interval 0", 2, ("--flush-interval", "> 0"),
        absent="out"),
    Row("record sim:// -o {out} --reserve-mb -1", 2, ("--reserve-mb", ">= 0"), absent="out"),
    Row("record sim:// -o {dir}", 2, ("--output", "directory")),
    Row("record sim:// -o /nonexistent/r.h5", 2, ("--output", "/nonexistent")),
    Row("record sim:// -o {h5} --frames 2", 2, ("rec.h5", "--force")),
    Row("record {tmp}/no-such-tty -o {out} --seconds 1", 2, ("no-such-tty", "cannot open"),
        absent="out"),
    # settings the board refuses: exit 2 naming the setting, and no empty file left behind
    Row("record {sim} -o {out} --lines 70000 --seconds 1", 2, ("lines_per_frame", "1..256"),
        absent="out"),
    Row("record {sim} -o {out} --depth-cm 90 --seconds 1", 2, ("depth of 90 cm", "at most"),
        absent="out"),
    # a recording that got no line at all is a failure, and leaves no empty file behind
    Row("record {sim_silent} -o {out} --seconds 0.5", 1, ("no echo line arrived", "--seconds"),
        absent="out"),
    # replay
    Row("replay {h5} --speed 0", 2, ("--speed", "> 0")),
    Row("replay {h5} --speed -2", 2, ("--speed", "-2")),
    Row("replay {h5} --tcp 99999", 2, ("--tcp", "65535")),
    Row("replay {h5} --link-path /nonexistent/x", 2, ("--link-path", "/nonexistent")),
    Row("replay {tmp}/nope.h5", 2, ("nope.h5", "does not exist")),
    Row("replay {h5} --tcp 127.0.0.1:{busy}", 1, ("TCP port {busy}", "already in use")),
    # convert
    Row("convert {tmp}/nope.sbcap -o {out}", 2, ("nope.sbcap", "does not exist"), absent="out"),
    Row("convert {raw} -o {h5}", 2, ("rec.h5", "--force")),
    Row("convert {raw} -o {dir}", 2, ("--output", "directory")),
    Row("convert {raw} -o /nonexistent/x.h5", 2, ("--output", "/nonexistent")),
    # export
    Row("export {h5} --png {tmp}/png --size abc", 2, ("--size", "'abc'", "WxH")),
    Row("export {h5} --png {tmp}/png --size 0x0", 2, ("--size", "0x0", "16..8192")),
    Row("export {h5} --png {tmp}/png --size 99999x64", 2, ("--size", "16..8192")),
    Row("export {h5} --png {png}", 2, ("--png", "not a directory")),
    Row("export {h5} --npz {dir} --force", 2, ("--npz", "directory")),
    Row("export {h5} --npz {h5}", 2, ("rec.h5", "--force")),
    Row("export {h5} --npz {out} --dynamic-range 0", 2, ("--dynamic-range", "> 0"),
        absent="out"),
    Row("export {raw} --npz {out}", 2, ("raw capture", "sonobridge convert"), absent="out"),
    Row("export {tmp}/nope.h5 --npz {out}", 2, ("nope.h5", "does not exist"), absent="out"),
    Row("export {junk} --npz {out}", 1, ("junk.bin", "not a recording"), absent="out"),
    Row("export {h5} --dicom {out} --frames 5:2", 2, ("--frames", "0 <= A < B")),
    Row("export {h5} --dicom {out} --frames 7", 2, ("--frames", "A:B")),
    Row("export {h5} --uff {out} --dicom {out}", 2, ("--dicom", "not allowed with")),
    Row("import {h5}", 2, ("--output",)),
    Row("store {h5}", 2, ("--pacs",)),
    Row("store {h5} --pacs nope", 2, ("--pacs",)),
    Row("store {h5} --pacs PACS@127.0.0.1:104 --timeout 0", 2, ("--timeout", "> 0")),
    Row("store {h5} --pacs PACS@127.0.0.1:104", 2, ("sonobridge HDF5 recording", "--dicom")),
]

COMMANDS = ("decode", "sim", "ports", "info", "stream", "view", "demo", "hil", "record",
            "replay", "convert", "export", "import", "store")


def test_the_table_covers_every_command():
    covered = {row.argv.split()[0] for row in MISTAKES}
    assert covered == set(COMMANDS)
    assert len(MISTAKES) >= 45


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, Path]:
    """A short recording of the simulated board and its raw capture."""
    d = tmp_path_factory.mktemp("recorded")
    h5, raw = d / "rec.h5", d / "rec.sbcap"
    assert main(["record", sim_url(), "-o", str(h5), "--raw", str(raw), "--frames", "3",
                 *SMALL]) == 0
    return h5, raw


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A local TCP port something else is listening on."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        yield taken.getsockname()[1]


@pytest.fixture
def files(tmp_path, recorded, busy_port, monkeypatch) -> dict[str, str]:
    """The paths the rows name; no display, so ``demo`` writes (and guards) its snapshot."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    (tmp_path / "adir").mkdir()
    png = tmp_path / "old.png"
    png.write_bytes(b"a picture someone kept")
    hexdump = tmp_path / "ack.hex"
    hexdump.write_text((ROOT / "tests/vectors/09_ack.hex").read_text())
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)))
    (tmp_path / "junk.bin").write_bytes(b"hello, not a recording\n")
    h5, raw = recorded
    return {"tmp": str(tmp_path), "dir": str(tmp_path / "adir"), "png": str(png),
            "hexdump": str(hexdump), "binary": str(tmp_path / "binary.bin"),
            "junk": str(tmp_path / "junk.bin"), "h5": str(h5), "raw": str(raw),
            "out": str(tmp_path / "out.h5"), "sim": sim_url(),
            "sim_silent": sim_url("stall=60@0"), "sim_stops": sim_url("stall=60@3"),
            "busy": str(busy_port)}


def _exit_code(argv: list[str]) -> int | str | None:
    """What the process would exit with: ``main``'s result, or argparse's own exit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("row", MISTAKES, ids=[r.argv for r in MISTAKES])
def test_a_mistake_is_named_without_a_traceback(row, files, capsys):
    argv = [part.format(**files) for part in row.argv.split()]
    code = _exit_code(argv)
    out, err = capsys.readouterr()
    assert code == row.code, f"{row.argv}: exit {code}\n{out}\n{err}"
    assert "Traceback" not in out + err
    for words in row.says:
        assert words.format(**files) in err, f"{row.argv}: {words!r} not in {err!r}"
    if row.absent:
        assert not Path(files[row.absent]).exists(), f"{row.argv} left {files[row.absent]}"
    # nothing half-written is ever left in the output folder either
    assert not list(Path(files["tmp"]).rglob("*.partial"))


def test_export_into_a_directory_leaves_nothing_and_does_no_work(files, capsys):
    before = sorted(Path(files["dir"]).parent.iterdir())
    assert _exit_code(["export", files["h5"], "--npz", files["dir"], "--force"]) == 2
    assert sorted(Path(files["dir"]).parent.iterdir()) == before
    assert "--npz" in capsys.readouterr().err


def test_a_failed_npz_export_removes_its_partial_file(files, monkeypatch, capsys):
    from sonobridge.record import export

    def fail(zf, rec, skip):
        zf.writestr("samples.npy", b"x" * 1000)  # something is written before the failure
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "_write_npz", fail)
    out = Path(files["tmp"]) / "x.npz"
    with pytest.raises(OSError, match="No space"):
        export.export_npz(files["h5"], out)
    assert not out.exists() and not out.with_name("x.npz.partial").exists()


def test_a_failed_png_export_leaves_no_truncated_frame(files, monkeypatch, capsys):
    from sonobridge.record import export

    def disk_full(path, image):
        Path(path).write_bytes(b"\x89PNG, then the disk was full")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "write_png", disk_full)
    out = Path(files["tmp"]) / "png"
    assert main(["export", files["h5"], "--png", str(out)]) == 1
    err = capsys.readouterr().err
    assert "No space left" in err and "Traceback" not in err and "--debug" not in err
    assert list(out.iterdir()) == []


def test_an_unexpected_error_is_one_line_unless_debug(monkeypatch, capsys):
    import sonobridge.cli as cli

    def boom(args: argparse.Namespace) -> int:
        raise RuntimeError("the flux capacitor is empty")

    monkeypatch.setattr(cli, "_cmd_ports", boom)
    assert main(["ports"]) == 1
    err = capsys.readouterr().err
    assert "the flux capacitor is empty" in err and "--debug" in err and "Traceback" not in err
    with pytest.raises(RuntimeError, match="flux capacitor"):
        main(["--debug", "ports"])
    with pytest.raises(RuntimeError, match="flux capacitor"):
        main(["ports", "--debug"])  # where users also put it


def test_ctrl_c_exits_130_and_a_closed_pipe_is_quiet(monkeypatch, capsys):
    import sonobridge.cli as cli

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    def piped(args: argparse.Namespace) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_cmd_ports", interrupted)
    assert main(["ports"]) == 130
    monkeypatch.setattr(cli, "_cmd_ports", piped)
    assert main(["ports"]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_decode_hints_hex_only_for_hex_text(tmp_path, capsys):
    assert main(["decode", "--hex", str(ROOT / "tests/vectors/09_ack.hex")]) == 0
    empty = tmp_path / "zeros.bin"
    empty.write_bytes(bytes(64))  # raw bytes with no message: not hex text, no hint
    assert main(["decode", str(empty)]) == 0
    assert "--hex" not in capsys.readouterr().err


def test_stream_of_a_replay_ends_with_the_replay(recorded, capsys):
    from sonobridge.record.urlhandler.protocol_replay import replay_url

    h5, _ = recorded
    # docs/recording.md: sonobridge stream "$(sonobridge replay X --url --fast)" --seconds 2
    assert main(["stream", replay_url(str(h5), speed=float("inf")), "--seconds", "30"]) == 0
    out, err = capsys.readouterr()
    assert "the replay ended after" in err
    assert "averages over the whole run" in out and "complete frames" in out
    assert "Did you call start()" not in err


def test_stream_on_a_link_too_slow_says_so(capsys):
    url = sim_url() + "&link=uart-250k"
    assert main(["stream", url, "--seconds", "10"]) == 1
    err = capsys.readouterr().err
    assert "link is too slow" in err and "--prf" in err
    assert "Did you call start()" not in err


def test_argtypes_return_what_the_commands_use():
    assert argtypes.host_port("7000") == ("127.0.0.1", 7000)
    assert argtypes.host_port("0.0.0.0:0") == ("0.0.0.0", 0)
    assert argtypes.size_wxh("640x480") == (640, 480)
    assert argtypes.size_wxh("256") == (256, 256)
    assert argtypes.megabytes("1.5") == 1_500_000
    assert argtypes.frame_count(str(2**32 - 1)) == 2**32 - 1
    with pytest.raises(argparse.ArgumentTypeError, match="inf"):
        argtypes.positive_seconds("inf")


def test_only_usb_boards_and_the_simulator_are_likely():
    assert not PortInfo("/dev/ttyS0", "n/a", "serial").likely_board
    assert PortInfo("/dev/ttyACM0", "Pico", "usb", vid=0x2E8A, pid=0x000A,
                    known_as="Raspberry Pi RP2040 (Pico SDK CDC)").likely_board
    assert PortInfo("/dev/ttyACM1", "custom", "usb", vid=0x1209, pid=0x0001).likely_board
    assert not PortInfo("/dev/ttyUSB0", "some dongle", "usb", vid=0x1234, pid=0x5678).likely_board
    assert PortInfo("sim://?phantom=wire", "simulated board", "sim").likely_board


def test_ports_has_column_headers(capsys):
    assert main(["ports"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "PORT" in first and "USB ID" in first and "DESCRIPTION" in first


# -- as real processes ---------------------------------------------------------------------------


def _run(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sonobridge", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_view_snapshot_in_a_missing_folder_exits_at_once():
    proc = _run("view", "sim://?phantom=wire", "--snapshot", "/nonexistent/x.png", timeout=5)
    assert proc.returncode == 2
    assert "--snapshot" in proc.stderr and "Traceback" not in proc.stderr


def test_sim_on_a_tcp_port_in_use_names_the_port():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = _run("sim", "--tcp", f"127.0.0.1:{port}")
    assert proc.returncode == 1
    assert f"TCP port {port}" in proc.stderr and "pick another" in proc.stderr
    assert "Traceback" not in proc.stderr


@contextlib.contextmanager
def _sim_pty() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "sonobridge", "sim", "--pty"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/"), proc.stderr.read()
        yield path
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)


def test_info_into_a_closed_pipe_has_no_traceback():
    with _sim_pty() as path:
        info = subprocess.Popen([sys.executable, "-m", "sonobridge", "info", path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = info.stdout.readline()  # `| head -1`: read one line, then close the pipe
        info.stdout.close()
        err = info.stderr.read().decode()
        info.wait(timeout=20)
    assert first.startswith(b"board")
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert info.returncode in (0, 1)


def test_stream_prints_its_statistics_on_ctrl_c():
    proc = subprocess.Popen([sys.executable, "-m", "sonobridge", "stream", "sim://?phantom=wire",
                             "--seconds", "60", "--lines", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # the progress lines (one a second when not a terminal)
            if "MB/s" in line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "averages over the whole run" in out and "complete frames" in out
    assert "Traceback" not in err
