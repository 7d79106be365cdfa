"""Board profiles under hardware/boards/ against what the firmware builds announce.

Each board's C definition is compiled on the host (tools/dump_board.c) and prints its
DEVICE_INFO frame and power-up CONFIGURE; the Python side decodes those bytes and compares
them with the TOML profile that ``sonobridge.sim.profile.load_profile`` reads. So a profile cannot
drift from the firmware, even for the RP2040 board, whose firmware cannot be built here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sonobridge.protocol import Configure, Decoder, DeviceInfo, Flags, MsgType, decode_payload
from sonobridge.protocol.messages import payload_fields
from sonobridge.sim.profile import load_profile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "hardware" / "firmware"
BOARDS = ROOT / "hardware" / "boards"
DUMPS = {"firmware-host": "dump-board-host", "rp2040-reference": "dump-board-rp2040",
         "pic0rick": "dump-board-pic0rick"}


@pytest.fixture(scope="module")
def built() -> Path:
    done = subprocess.run(["make", "-C", str(FIRMWARE), "boards"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return FIRMWARE / "build"


def test_firmware_sim_profile_is_a_relative_symlink() -> None:
    link = BOARDS / "sim.toml"
    assert link.is_symlink()
    target = Path(link.readlink())
    assert not target.is_absolute()
    assert link.resolve() == (ROOT / "host" / "sim" / "boards" / "sim.toml").resolve()
    assert load_profile(link).info.board_name == "sonobridge-sim"


@pytest.mark.parametrize("board", sorted(DUMPS))
def test_firmware_board_matches_profile(built: Path, board: str) -> None:
    path = BOARDS / f"{board}.toml"
    profile = load_profile(path)
    raw = tomllib.loads(path.read_text())
    assert {"board", "capabilities", "defaults", "pins", "analog"} <= set(raw)

    out = subprocess.run([str(built / DUMPS[board])], capture_output=True, text=True,
                         timeout=10, check=True).stdout.splitlines()
    dec = Decoder()
    (info,) = dec.feed(bytes.fromhex(out[0]))
    assert dec.stats.frames_ok == 1 and isinstance(info, DeviceInfo)
    for name in payload_fields(DeviceInfo):
        if name != "request_seq":
            assert getattr(info, name) == getattr(profile.info, name), name
    simulated = bool(profile.info.capabilities & 0x04)
    assert info.flags == (Flags.SIMULATED if simulated else 0)

    defaults = decode_payload(MsgType.CONFIGURE, bytes.fromhex(out[1]))
    assert isinstance(defaults, Configure)
    for name in payload_fields(Configure):
        assert getattr(defaults, name) == getattr(profile.defaults, name), name

    bits, table_len, gmin, gmax = (int(v) for v in out[2].split())
    analog = raw["analog"]
    assert (bits, table_len, gmin, gmax) == (
        analog["tgc_dac_bits"], analog["tgc_table_len"], analog["tgc_dac_gain_min_cdb"],
        analog["tgc_dac_gain_max_cdb"])
    assert out[3].split()[:2] == ["0", "0"]  # the core accepts its own power-up configuration
    # the port's send buffer: the profile declares it (the HIL harness passes the profile's
    # number to the host build), the port's default must not disagree
    assert int(out[4]) == raw["board"]["send_buffer_bytes"]


#: [pins] keys of an RP2040 board profile → (macro in ports/rp2040/pins_<board>.h, offset)
PIN_MACROS = {
    "adc_clk": ("PIN_ADC_CLK", 0), "adc_d0": ("PIN_ADC_D0", 0), "adc_d9": ("PIN_ADC_D0", 9),
    "pulse_p": ("PIN_PULSE_P", 0), "pulse_n": ("PIN_PULSE_P", 1),
    "pulser_oe": ("PIN_PULSER_OE", 0), "hv_enable": ("PIN_HV_EN", 0),
    "dac_cs": ("PIN_DAC_CS", 0), "dac_sck": ("PIN_DAC_SCK", 0), "dac_sdi": ("PIN_DAC_SDI", 0),
    "vga_hilo": ("PIN_VGA_HILO", 0), "hv_sense": ("PIN_HV_SENSE", 0), "pdamp": ("PIN_PDAMP", 0),
}


@pytest.mark.parametrize(("board", "header"), [("rp2040-reference", "pins_rp2040_reference.h"),
                                               ("pic0rick", "pins_pic0rick.h")])
def test_rp2040_board_pins_match_the_port(board: str, header: str) -> None:
    import re

    text = (FIRMWARE / "ports" / "rp2040" / header).read_text()
    macros = {m[1]: int(m[2]) for m in re.finditer(r"#define (PIN_\w+) (\d+)", text)}
    pins = tomllib.loads((BOARDS / f"{board}.toml").read_text())["pins"]
    pins.pop("led", None)  # the Pico's LED: the port leaves it alone
    assert set(pins) <= set(PIN_MACROS), set(pins) - set(PIN_MACROS)
    for key, gpio in pins.items():
        macro, offset = PIN_MACROS[key]
        assert macros[macro] + offset == gpio, key
    # and the header drives no pin the profile does not list
    listed = {PIN_MACROS[key][0] for key in pins}
    assert set(macros) <= listed, set(macros) - listed
