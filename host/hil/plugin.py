"""The HIL suite's pytest options, registered for every pytest run of the environment.

This module is the ``pytest11`` entry point of the package, so pytest loads it in *every* run
where sonobridge is installed, including runs that have nothing to do with the HIL suite. It
therefore only adds options (all prefixed ``--sonobridge-``, so they cannot clash with any
project's own ``--port``) and, only when ``--sonobridge-report`` is given, pytest's JUnit
path; the hooks and fixtures that do the work live in
:mod:`sonobridge.hil.suite` and are active only where the suite's ``conftest.py`` is loaded,
that is when ``sonobridge.hil`` (or the repository's ``hil_tests``) is collected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: the simulator's default streaming time of the throughput test, and a board's
SIM_DURATION_S = 2.0
HARDWARE_DURATION_S = 10.0
#: an emulated RP2040's, in its own time: it runs at about 0.1x wall time, so 0.25 s of board
#: time is about 3 s of the suite's, inside the wall-time deadlines the suite keeps for boards
EMU_DURATION_S = 0.25
PREFIX = "sonobridge-"

#: every option as (name without prefix, argparse keywords); the destination is always
#: ``sonobridge_<name>`` so the repository's short aliases (``--port``) share it
OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("port", {"help": "board to test: /dev/ttyACM0, COM3 or a pyserial URL; default: start "
              "the simulated board on a pseudo-terminal"}),
    ("baud", {"type": int, "default": None,
              "help": "baud rate for UART boards (default: what the board needs, 250000 for an "
              "Open Echo, else 115200; USB CDC ignores it)"}),
    # None rather than "auto": this module stays free of the device layer's imports
    ("dialect", {"default": None, "metavar": "NAME",
                 "help": "the board's wire format (default auto: detected; `sonobridge info "
                 "--help` lists the names)"}),
    ("firmware-host", {"nargs": "?", "const": "auto", "default": None, "metavar": "PATH",
                       "help": "test the C firmware's host build (default path, in the "
                       "repository: hardware/firmware/build/sonobridge-fw-host)"}),
    ("rp2040-emu", {"nargs": "?", "const": "pic0rick", "default": None, "metavar": "BOARD",
                    "choices": ("pic0rick", "rp2040-reference"),
                    "help": "test a built RP2040 image on the emulated RP2040 (rp2040js): "
                    "pic0rick (the default) or rp2040-reference; see hardware/README.md"}),
    ("duration", {"type": float, "default": None, "metavar": "SECONDS",
                  "help": f"streaming time of the throughput test (default {SIM_DURATION_S:g} s "
                  f"on the simulator, {HARDWARE_DURATION_S:g} s on a board, "
                  f"{EMU_DURATION_S:g} s of board time on the emulated RP2040)"}),
    ("throughput", {"type": float, "default": None, "metavar": "BYTES_PER_S",
                    "help": "stream at this rate instead of DEVICE_INFO.rated_throughput_bps"}),
    ("phantom", {"default": "wire", "help": "simulator phantom (default wire)"}),
    ("sim-faults", {"default": "", "metavar": "FAULTS",
                    "help": "faults for the simulated board, e.g. bitflip=1e-6,stall=1@2 (see "
                    "`sonobridge sim --help`)"}),
    ("sim-link", {"default": "unlimited", "metavar": "LINK",
                  "help": "simulated link: uart-250k, usb-fs, usb-hs, unlimited (default)"}),
    ("sim-seed", {"type": int, "default": 1, "help": "simulator random seed (default 1)"}),
    ("sim-profile", {"default": "sim", "metavar": "NAME|FILE",
                     "help": "simulated board profile (default: the builtin sim board)"}),
    ("sim-buffer-ms", {"type": float, "default": 250.0, "metavar": "MS",
                       "help": "send buffer of the simulated board and of the firmware host "
                       "build, in ms at the rated throughput (default 250; 0 keeps the "
                       "profile's own)"}),
    ("report", {"metavar": "DIR",
                "help": "write junit.xml, summary.md and summary.json into DIR"}),
    ("req", {"action": "append", "default": [], "metavar": "ID",
             "help": "run only these requirements (id or prefix, e.g. HIL-STR or HIL-CFG-1; "
             "repeat or separate with commas)"}),
    ("unplug", {"action": "store_true",
                "help": "a tester will unplug and replug the board for HIL-REC-2"}),
    ("soak", {"action": "store_true", "help": "also run the soak test (same as -m soak)"}),
    ("soak-minutes", {"type": float, "default": 10.0,
                      "help": "soak test duration in minutes (default 10)"}),
)


def dest(name: str) -> str:
    """The ``config.getoption`` name of option ``name`` (``sim-faults`` → sonobridge_sim_faults)."""
    return "sonobridge_" + name.replace("-", "_")


def add_options(parser: pytest.Parser, prefix: str = PREFIX) -> None:
    """Register the HIL options as ``--<prefix><name>``, all sharing the ``sonobridge_`` dests."""
    group = parser.getgroup("sonobridge HIL", "hardware-in-the-loop suite (sonobridge.hil, "
                            "docs/hil.md)")
    for name, kwargs in OPTIONS:
        # a fresh list per registration: argparse would share one mutable default otherwise
        kw = {**kwargs, "default": list(kwargs["default"])} if kwargs.get("action") == "append" \
            else dict(kwargs)
        group.addoption(f"--{prefix}{name}", dest=dest(name), **kw)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--sonobridge-*`` options; nothing else happens unless the suite is collected."""
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """``--sonobridge-report DIR`` also means pytest's ``--junitxml DIR/junit.xml``.

    Here rather than in the suite: the junitxml plugin reads its path in its own
    pytest_configure, before the suite's conftest is loaded by ``--pyargs sonobridge.hil``.
    Without the option (every run that is not the HIL suite) nothing changes.
    """
    out = config.getoption(dest("report"), None)
    if out and not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(Path(out) / "junit.xml")
