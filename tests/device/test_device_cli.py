"""sonobridge sim / ports / info / stream, as a user runs them."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from sonobridge.cli import main
from sonobridge.device import PortError, open_device


@contextlib.contextmanager
def sim_process(*args: str) -> Iterator[str]:
    """`sonobridge sim ...` in a subprocess; yields the first line it prints."""
    proc = subprocess.Popen([sys.executable, "-m", "sonobridge", "sim", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().strip()
        assert first, proc.stderr.read()
        yield first
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "served" in err


def test_sim_pty_prints_the_device_path_first_and_serves_it():
    with sim_process("--pty", "--phantom", "cyst") as path:
        assert path.startswith("/dev/")
        with open_device(path) as dev:
            assert dev.info.board_name == "sonobridge-sim"
            dev.configure(depth_m=0.03, lines_per_frame=16)
            dev.start()
            frame = next(iter(dev.frames(timeout=5.0)))
            assert frame.samples.shape[0] == 16


def test_sim_tcp_is_reachable_as_a_pyserial_socket_url():
    with sim_process("--tcp", "127.0.0.1:0") as url:
        assert url.startswith("socket://127.0.0.1:")
        with open_device(url) as dev:
            assert dev.info.protocol_version == 1
            assert dev.ping() < 1.0


def test_info_and_stream_commands(capsys):
    with sim_process("--pty") as path:
        assert main(["info", path]) == 0
        out = capsys.readouterr().out
        assert "sonobridge-sim" in out and "PACKED12" in out and "°C" in out
        assert main(["stream", path, "--seconds", "1", "--depth-cm", "4", "--lines", "32"]) == 0
        captured = capsys.readouterr()
        assert "lost lines: 0" in captured.out
        assert "complete frames" in captured.out
        assert "averages over the whole run" in captured.out  # not the last second's rate
        assert "MB/s" in captured.err


def test_info_on_a_missing_port_says_what_to_do(capsys):
    assert main(["info", "/dev/does-not-exist-sonobridge"]) == 2
    err = capsys.readouterr().err
    assert "plugged in" in err and "sonobridge ports" in err


def test_sim_rejects_bad_options_with_the_choices(capsys):
    assert main(["sim", "--link", "usb-9000"]) == 2
    assert "uart-250k" in capsys.readouterr().err
    assert main(["sim", "--faults", "bitflip=2"]) == 2
    err = capsys.readouterr().err
    assert "probability" in err and "stall=D@T" in err


def test_ports_lists_the_simulator(capsys):
    assert main(["ports"]) == 0
    out = capsys.readouterr().out
    assert "sim://?phantom=wire" in out and "sim://?phantom=cyst" in out


def test_sim_url_with_unknown_option_is_a_clear_error():
    with pytest.raises(PortError, match="unknown sim:// option 'speed'"):
        open_device("sim://?phantom=wire&speed=9")


def test_ports_names_the_board_a_usb_id_suggests(monkeypatch, capsys):
    from types import SimpleNamespace

    from serial.tools import list_ports

    def port(device: str, vid: int | None, pid: int | None, text: str) -> SimpleNamespace:
        return SimpleNamespace(device=device, description=text, vid=vid, pid=pid,
                               serial_number=None, product=None)

    monkeypatch.setattr(list_ports, "comports", lambda: [
        port("/dev/ttyS0", None, None, "n/a"),
        port("/dev/ttyACM0", 0x2E8A, 0x000A, "Pico"),
        port("/dev/ttyUSB0", 0x1A86, 0x7523, "USB Serial"),
    ])
    assert main(["ports", "--no-sim"]) == 0
    rows = capsys.readouterr().out.splitlines()
    pico = next(r for r in rows if "/dev/ttyACM0" in r)
    uno = next(r for r in rows if "/dev/ttyUSB0" in r)
    assert pico.startswith("*") and "pic0rick? (stock shell)" in pico
    assert uno.startswith("*") and "Open Echo?" in uno
    assert "?" not in next(r for r in rows if "/dev/ttyS0" in r)


@pytest.mark.parametrize(("board", "says"), [
    ("pic0rick", ("pic0rick-shell", "8000", "nominal: ", "no STATUS command")),
    ("open-echo", ("open-echo", "1800", "nominal: ", "no STATUS command")),
])
def test_info_identifies_a_twin_on_a_pty_without_a_dialect(board, says, capsys):
    """The acceptance's first line: the board out of process, on a real pty, found alone."""
    with sim_process("--board", board) as pty:
        assert main(["info", pty]) == 0
    out = capsys.readouterr().out
    for words in says:
        assert words in out


def test_stream_sets_the_pic0rick_gain_through_its_dac(capsys):
    from sonobridge.protocol.boards.pic0rick_shell import dac_gain_db

    from .device_fixtures import twin_on_pty

    with twin_on_pty("pic0rick") as (engine, port):
        assert main(["stream", port, "--seconds", "0.5", "--gain-db",
                     f"{dac_gain_db(600):.3f}"]) == 0
        assert engine.board._dac_code == 600
    assert "lost lines: 0" in capsys.readouterr().out
