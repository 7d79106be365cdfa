"""Which requirements a board can be held to: decided once, here, from what the board is.

A board on its own stock firmware (a pic0rick's text shell, an Open Echo's stream; see
``sonobridge.device.dialect``) has no STATUS, PING or RESET, no protocol v1 frames to send
NAKs, flags or a RETRY cache in, and no device clock. Requirements about those are *not
applicable* to it: they are reported as such, with the reason, and never run. Everything
else (identification, streaming, finite runs, STOP, no loss at the board's own rate, the
samples, refusing impossible configurations, reconnecting) runs for real.

:data:`RULES` is the one table: requirement id → a function of :class:`BoardFacts` that
returns why the requirement does not apply (None: it applies). A requirement missing from
the table applies to every board. The facts come from the opened connection only
(``Device.supports``, ``Device.dialect``, ``DEVICE_INFO``), never from the port's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sonobridge.device import Device
from sonobridge.device.dialect import ProtocolV1
from sonobridge.protocol import Capability, MsgType


@dataclass(frozen=True)
class BoardFacts:
    """What the suite needs to know about the board to decide what applies to it."""

    #: the wire dialect the connection speaks (``Device.dialect.name``)
    dialect: str
    #: the board speaks sonobridge protocol v1 frames (raw frames, NAK codes, flags, RETRY)
    v1_frames: bool
    #: it answers GET_STATUS, PING, and RESET (with the RESET capability), respectively
    status: bool
    ping: bool
    reset: bool
    #: its lines carry the board's own timestamps (ECHO_LINE.timestamp_us, a v1 field: the
    #: dialects of other boards build lines without one)
    clock: bool
    #: its samples are an envelope (no zero level, no RF noise floor)
    envelope: bool
    #: the suite started the simulator itself, so the phantom's ground truth is known
    simulated: bool
    #: the board's firmware runs on an emulated chip, whose time is not wall time
    emulated: bool = False

    @classmethod
    def of(cls, dev: Device, simulated: bool, emulated: bool = False) -> BoardFacts:
        """The facts of an opened, handshaken connection."""
        info = dev.info
        capable = bool(info is not None and info.capabilities & Capability.RESET)
        name = dev.dialect.name
        return cls(dialect=name, v1_frames=name == ProtocolV1.name,
                   status=dev.supports(MsgType.GET_STATUS), ping=dev.supports(MsgType.PING),
                   reset=capable and dev.supports(MsgType.RESET),
                   clock=dev.dialect.device_clock, envelope=dev.dialect.envelope_samples,
                   simulated=simulated, emulated=emulated)

    def as_dict(self) -> dict[str, object]:
        """For the report."""
        return dict(self.__dict__)


Rule = Callable[[BoardFacts], "str | None"]


def _v1(what: str) -> Rule:
    def rule(f: BoardFacts) -> str | None:
        return None if f.v1_frames else (
            f"{what}; the board speaks {f.dialect}, not sonobridge protocol v1 frames")
    return rule


def _status(what: str) -> Rule:
    def rule(f: BoardFacts) -> str | None:
        return None if f.status else f"{what}; the board ({f.dialect}) has no STATUS command"
    return rule


def _ping(what: str) -> Rule:
    def rule(f: BoardFacts) -> str | None:
        return None if f.ping else f"{what}; the board ({f.dialect}) has no PING command"
    return rule


def _all(*rules: Rule) -> Rule:
    def rule(f: BoardFacts) -> str | None:
        return next((why for r in rules if (why := r(f)) is not None), None)
    return rule


def _clock(f: BoardFacts) -> str | None:
    return None if f.clock else (
        f"line timing is judged by the board's own timestamps; the board ({f.dialect}) "
        "stamps no time on its lines (no device clock)")


def _rf(what: str) -> Rule:
    def rule(f: BoardFacts) -> str | None:
        return None if not f.envelope else (
            f"{what}; the board ({f.dialect}) sends an envelope (a magnitude), not RF around a "
            "zero level")
    return rule


def _reset(f: BoardFacts) -> str | None:
    return None if f.reset else (
        "the board has no RESET capability (DEVICE_INFO.capabilities) or no RESET command "
        f"({f.dialect}); HIL-CMD-7 checks a protocol v1 board refuses RESET")


def _wall_time(what: str) -> Rule:
    def rule(f: BoardFacts) -> str | None:
        return None if not f.emulated else (
            f"{what} in wall time; the board runs on an emulated chip, whose time runs at a "
            "fraction of wall time, so that says nothing of the board's")
    return rule


def _simulated(f: BoardFacts) -> str | None:
    return None if f.simulated else (
        "needs the simulator's ground truth (the phantom's wire positions): applies only when "
        "the suite starts the simulator itself")


#: requirement id → why it does not apply to a board (None: it applies); absent ids apply
#: to every board
RULES: dict[str, Rule] = {
    "HIL-CMD-1": _v1("GET_INFO is answered by the host from the dialect's nominal DEVICE_INFO"),
    "HIL-CMD-2": _status("config_id is read from STATUS"),
    "HIL-CMD-5": _status("it checks STATUS"),
    "HIL-CMD-6": _ping("it checks PONG"),
    "HIL-CMD-7": _v1("it checks RESET's ACK or NAK UNSUPPORTED on the wire"),
    "HIL-CMD-8": _v1("the RETRY flag and its reply cache are protocol v1 framing"),
    "HIL-CFG-1": _v1("it checks the board's NAK OUT_OF_RANGE codes; HIL-CFG-3 checks the "
                     "refusals on the host"),
    "HIL-CFG-2": _v1("it checks the board's NAK INVALID_COMBINATION codes; HIL-CFG-3 checks "
                     "the refusals on the host"),
    "HIL-FRM-1": _v1("NAK BAD_LENGTH answers a v1 frame"),
    "HIL-FRM-2": _v1("NAK UNKNOWN_TYPE answers a v1 frame"),
    "HIL-FRM-3": _v1("flags are a v1 frame's header field"),
    "HIL-FRM-4": _v1("the version is a v1 frame's header field"),
    "HIL-FRM-5": _v1("it sends damaged v1 frames, then a PING"),
    "HIL-STR-2": _v1("NAK BUSY is the board's v1 reply; this board's START and STOP are "
                     "carried out by the host"),
    "HIL-STR-4": _clock,
    "HIL-LAT-1": _all(_ping("it times PING round trips"),
                      _wall_time("it times PING round trips")),
    "HIL-LAT-2": _all(_ping("it times PING round trips while streaming"),
                      _wall_time("it times PING round trips while streaming")),
    "HIL-REC-1": _reset,
    "HIL-DATA-1": _rf("the DC offset is measured from the zero level"),
    "HIL-DATA-2": _rf("the noise floor is the RMS around the zero level of the deepest "
                      "samples"),
    "HIL-DATA-4": _rf("the lowest and highest codes are ordinary in an envelope (silence rests "
                      "at the lowest, the transmit ringing of the blind zone at the highest)"),
    "HIL-SIM-1": _simulated,
    "HIL-SOAK-1": _all(_status("the soak compares STATUS.lines_sent and dropped_lines with what "
                               "arrived"), _ping("the soak PINGs along")),
}


def not_applicable(requirement: str, facts: BoardFacts) -> str | None:
    """Why ``requirement`` does not apply to the board with ``facts`` (None: it applies)."""
    rule = RULES.get(requirement)
    return None if rule is None else rule(facts)
