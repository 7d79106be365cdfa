"""Which picture suits the board: the viewer's one rule for choosing its layout.

A scanner (a sweep of lines) gets the B-mode with A-mode, M-mode and Doppler beside it. A
single fixed element (one line per firing, like the pic0rick) has nothing to scan-convert: it
gets its A-mode and M-mode, full size. An Open Echo is a sonar: its samples are the log
amplifier's envelope, not RF, and its picture is a fish finder's echogram (pings as columns,
the newest on the right, depth in metres) with the A-mode of the latest ping beside it.
:func:`preset_for` is the only place that decides; the window and the pipeline only read the
preset's facts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sonobridge.device.frames import SOUND_SPEED_M_S as TISSUE_SOUND_SPEED_M_S
from sonobridge.protocol import DeviceInfo, SweepKind
from sonobridge.protocol.boards import open_echo

__all__ = ["ECHOGRAM", "SCANNER", "SINGLE_ELEMENT", "ViewPreset", "preset_for"]


@dataclass(frozen=True)
class ViewPreset:
    """What the viewer shows for a kind of board, and how it reads the samples."""

    name: str
    #: one line for the status bar's tooltip and the docs
    description: str
    #: a scan-converted B-mode (with colour flow and PW Doppler): only a sweep has one
    bmode: bool
    #: the main picture is a scrolling echogram (newest ping on the right), not a B-mode
    echogram: bool
    #: every line of a frame is a later firing of the same element, so all of them go into
    #: the M-mode / echogram in order (a sweep's lines are places, only one is followed)
    lines_are_firings: bool
    #: the samples are already an envelope (a log amplifier's output): shown as they are,
    #: never envelope-detected or log-compressed again as if they were RF
    envelope_samples: bool
    #: the medium the depth scale assumes
    sound_speed_m_s: float
    medium: str
    #: the unit depth axes are drawn in ("cm" or "m") and its size in metres
    depth_unit: str
    depth_unit_m: float


SCANNER = ViewPreset(
    "scanner", "B-mode of the sweep, A-mode and M-mode of the selected line, Doppler",
    bmode=True, echogram=False, lines_are_firings=False, envelope_samples=False,
    sound_speed_m_s=TISSUE_SOUND_SPEED_M_S, medium="soft tissue", depth_unit="cm",
    depth_unit_m=0.01)
SINGLE_ELEMENT = ViewPreset(
    "a-mode/m-mode", "one fixed element: A-mode of the latest firing, M-mode of firings "
    "over time (no B-mode: there is no sweep to scan-convert)",
    bmode=False, echogram=False, lines_are_firings=True, envelope_samples=False,
    sound_speed_m_s=TISSUE_SOUND_SPEED_M_S, medium="soft tissue", depth_unit="cm",
    depth_unit_m=0.01)
ECHOGRAM = ViewPreset(
    "echogram", "sonar: echogram of pings over time (newest on the right, depth in m) and "
    "the A-mode of the latest ping; the samples are the board's own envelope",
    bmode=False, echogram=True, lines_are_firings=True, envelope_samples=True,
    sound_speed_m_s=open_echo.SOUND_SPEED_M_S, medium="water", depth_unit="m",
    depth_unit_m=1.0)

#: board names an Open Echo announces (live, or replayed from a recording as protocol v1)
_OPEN_ECHO_NAMES = (open_echo.BOARD_NAME, open_echo.TWIN_BOARD_NAME)


def preset_for(info: DeviceInfo, dialect: str = "", sound_speed_m_s: float | None = None
               ) -> ViewPreset:
    """The preset for a board: echogram (Open Echo), A/M-mode (one fixed element), or scanner;
    ``sound_speed_m_s`` replaces its medium's speed of sound (other water, another tissue)."""
    if dialect.startswith("open-echo") or info.board_name in _OPEN_ECHO_NAMES:
        preset = ECHOGRAM
    elif info.sweep_kind == SweepKind.FIXED and info.max_lines_per_frame == 1:
        preset = SINGLE_ELEMENT
    else:
        preset = SCANNER
    if sound_speed_m_s is None or sound_speed_m_s == preset.sound_speed_m_s:
        return preset
    return replace(preset, sound_speed_m_s=float(sound_speed_m_s), medium="as given")
