"""The pic0rick stock firmware's USB CDC text shell: the one home of its wire format.

Facts come from the board's public repository (kelu124/pic0rick): its stock firmware
(``firmware/main.c``, ``firmware/adc/adc.c``) and host code. Both sides use this module:
the host builds commands and parses replies with ``ShellParser``; a simulated twin prints
what the board prints with ``format_dump``, ``echo``/``LineEditor`` and
``parse_command_line``.

How the parser survives the wire:

* Lines end in ``\\r\\n``; the prompt ``run> `` has no newline, so it is looked for inside the
  pending line every time bytes arrive, even split (``run`` + ``> ``). Bytes before a prompt
  on the same line can only be a broken line: they are counted as discarded, not reported.
* The dump's single line of up to 8000 ``%X,`` values is parsed token by token as it arrives,
  never buffered whole: at most ``N_SAMPLES`` values are kept, later ones are only counted.
* A token holding a space, ``-`` or ``>``, or longer than ``MAX_TOKEN`` bytes, cannot be a
  value: a prompt or a marker broke into the dump. The dump is handed out as incomplete and the
  bytes from that token on are parsed as lines again (resync). Other non-hex tokens are counted,
  kept as ``ZERO_LEVEL`` placeholders so later samples keep their position, and mark the dump bad.
* Every decision depends only on bytes already seen, never on how they were chunked, so any
  chunking gives the same events and the same statistics.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, fields

import numpy as np

from ..constants import Capability, SampleFormat, SweepKind
from ..messages import DeviceInfo

# --- Shell facts -------------------------------------------------------------------------------

PROMPT = b"run> "
START_MARKER = b"----------Start of ACQ----------"
END_MARKER = b"-----------End of ACQ-----------"
ACQ_STARTED = b"Acquisition of 8000 samples started"
ACQ_ENDED = b"Acquisition ended"
#: printed after every capture by the stock firmware (its timeout test is inverted); sic
ADC_TIMEOUT = b"ADC timeout occured"
UNKNOWN_COMMAND = b"Unknown command: "
DAC_STARTED = b"DAC writing started"
DAC_ENDED = b"DAC writing ended"
MUX_STARTED = b"MAX14866 writing started"
MUX_ENDED = b"MAX14866 writing ended"
#: the board's stdio turns every ``\n`` it prints into this
EOL = b"\r\n"
#: the erase sequence the board echoes for a backspace (or DEL) typed on a non-empty line
ERASE = b"\b \b"

N_SAMPLES = 8000
SAMPLE_RATE_HZ = 60e6
ADC_BITS = 10
ADC_MAX = (1 << ADC_BITS) - 1
#: offset binary: mid-scale code; the public host code normalises as (v - 512) / 512
ZERO_LEVEL = 512
#: the board's input buffer (``char input[128]``): at most 127 characters per command
LINE_BUFFER = 128

DAC_VREF_V = 2.048
DAC_BITS = 10
DAC_MAX_CODE = (1 << DAC_BITS) - 1

#: command names as the firmware matches them (first two tokens, or one for ``read``)
COMMANDS = ("start acq", "write dac", "write mux", "set mux", "clear mux", "read")

#: longest byte run a value token may have; 3 hex digits are enough for 10 bits, the slack
#: lets a garbled value be counted as one bad token instead of abandoning the dump
MAX_TOKEN = 8
#: longest text line the parser keeps; longer lines keep only their last ``LINE_TAIL`` bytes
LINE_CAP = 256
#: enough of a line's end to still recognise a marker (and its ``\r``) or a prompt once cut
LINE_TAIL = max(len(START_MARKER), len(END_MARKER), len(PROMPT)) + 1


@dataclass(frozen=True)
class ShellVariant:
    """Pulse timing of one firmware generation of the shell."""

    name: str
    tick_ns: int
    sys_clock_hz: float
    #: ticks used for a pulse value that is missing from ``start acq``
    default_ticks: int
    #: whether ``ADC timeout occured`` follows every capture
    timeout_warning: bool


VARIANTS = {
    "stock": ShellVariant("stock", 8, 125e6, 125, True),
    # software/rp2040_shell up to commit 1e61467a; its positive pulse also lasts one more tick
    # for the pulser's ``irq`` instruction, which pulse_duration_ns does not model
    "old": ShellVariant("old", 4, 250e6, 125, False),
}
STOCK = VARIANTS["stock"]


def pulse_ticks(ns: int, variant: ShellVariant = STOCK) -> int:
    """PIO ticks the firmware loads for a pulse of ``ns`` nanoseconds (integer division)."""
    if ns < 0:
        raise ValueError(f"pulse length must be >= 0 ns, got {ns}")
    return ns // variant.tick_ns


def pulse_duration_ns(ticks: int, variant: ShellVariant = STOCK) -> int:
    """How long a pulse of ``ticks`` lasts: the PIO loop runs ticks + 1 times."""
    if ticks < 0:
        raise ValueError(f"ticks must be >= 0, got {ticks}")
    return (ticks + 1) * variant.tick_ns


def acq_ticks(args: list[int], variant: ShellVariant = STOCK) -> tuple[int, int, int]:
    """(P, N, D) ticks for ``start acq`` arguments: missing values take the default."""
    ticks = []
    for a in args[:3]:
        # C division truncates toward zero, and the uint32 store wraps a negative value
        q = abs(a) // variant.tick_ns
        ticks.append((q if a >= 0 else -q) & 0xFFFFFFFF)
    ticks += [variant.default_ticks] * (3 - len(ticks))
    return ticks[0], ticks[1], ticks[2]


def dac_volts(code: int) -> float:
    """DAC channel A output for ``code``: Vout = 2.048 V * N / 1024."""
    return DAC_VREF_V * code / (1 << DAC_BITS)


#: the AD8331's gain range from the board's README (dB); nothing in the firmware maps DAC codes
#: to dB, so a linear map of codes 0..DAC_MAX_CODE over it is a nominal assumption
GAIN_MIN_DB = 7.5
GAIN_MAX_DB = 55.5
#: the board's probes are 5 MHz single elements (nominal, as the public notebooks use)
TRANSDUCER_FREQ_HZ = 5_000_000
#: what ``board_name`` says for the real board and for a simulated twin
BOARD_NAME = "pic0rick"
TWIN_BOARD_NAME = "pic0rick (simulated twin)"


#: DEVICE_INFO fields of ``device_info`` that are assumptions, not facts the board states
NOMINAL_FIELDS: dict[str, str] = {
    "gain_min_cdb": "the AD8331's range from the board's README; no firmware maps codes to dB",
    "gain_max_cdb": "the AD8331's range from the board's README; no firmware maps codes to dB",
    "transducer_freq_hz": "the 5 MHz probes the public notebooks use; any probe can be fitted",
    "prf_max_hz": "a few captures per second: each one dumps ~32 KB of text; not measured",
    "pulse_freq_min_hz": "what half-period pulses in the shell's ticks (8 ns, 4 ns on the "
                         "older shell) can shape reasonably",
    "pulse_freq_max_hz": "what half-period pulses in the shell's ticks (8 ns, 4 ns on the "
                         "older shell) can shape reasonably",
}


def dac_gain_db(code: int) -> float:
    """Nominal VGA gain for a DAC channel A code: linear from GAIN_MIN_DB to GAIN_MAX_DB."""
    code = min(max(int(code), 0), DAC_MAX_CODE)
    return GAIN_MIN_DB + (GAIN_MAX_DB - GAIN_MIN_DB) * code / DAC_MAX_CODE


def dac_word(arg: int) -> int:
    """The 16-bit MCP4812 word ``write dac`` sends for ``atoi(arg)``: ``(uint16)N << 2 | 0x3000``.

    No range check in the firmware: bits of N above the 10-bit code spill into the control
    bits (bit 15 set selects channel B, which leaves the gain alone).
    """
    return ((arg & 0xFFFF) << 2 | 0x3000) & 0xFFFF


def device_info(variant: ShellVariant = STOCK, *, simulated: bool = False) -> DeviceInfo:
    """The nominal DEVICE_INFO of a pic0rick on the text shell (the dialect and the twin share it).

    One fixed single element, one line of N_SAMPLES 10-bit offset-binary samples at 60 MS/s
    per ``start acq``, one static gain (``write dac``), no decimation, TGC, sweep or HV control.
    """
    # both generations sample at 60 MS/s (stock: 120 MHz PIO, 2-cycle loop; old: 240 MHz, 4)
    del variant
    gain = (round(GAIN_MIN_DB * 100), round(GAIN_MAX_DB * 100))
    return DeviceInfo(
        board_name=TWIN_BOARD_NAME if simulated else BOARD_NAME,
        adc_bits=ADC_BITS,
        sample_formats=1 << SampleFormat.U16_OB,
        sweep_kind=SweepKind.FIXED,
        capabilities=Capability.SIMULATED if simulated else Capability.NONE,
        adc_rate_hz=int(SAMPLE_RATE_HZ),
        max_decimation=1,
        tgc_points_max=1,
        ensemble_max=1,
        pulse_cycles_max=1,
        min_samples_per_line=N_SAMPLES,
        max_samples_per_line=N_SAMPLES,
        max_start_delay_samples=0,
        max_lines_per_frame=1,
        gain_min_cdb=gain[0],
        gain_max_cdb=gain[1],
        sweep_min=0,
        sweep_max=0,
        # one capture per command plus a ~32 KB text dump over USB full speed: a few per second
        prf_min_hz=1,
        prf_max_hz=10,
        hv_min_mv=0,
        hv_max_mv=0,
        transducer_freq_hz=TRANSDUCER_FREQ_HZ,
    )


# --- Host side: commands --------------------------------------------------------------------

#: atoi takes at most a C int
_INT_MAX = 2**31 - 1


def _check_range(what: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{what} {value} is outside {low}..{high}")
    return int(value)


def start_acq(p_ns: int, n_ns: int, d_ns: int) -> bytes:
    """``start acq P N D`` ending in LF only (CRLF would run an extra empty command)."""
    values = [
        _check_range(name, v, 0, _INT_MAX)
        for name, v in (("p_ns", p_ns), ("n_ns", n_ns), ("d_ns", d_ns))
    ]
    return b"start acq %d %d %d\n" % tuple(values)


def read() -> bytes:
    """``read``: dump the last capture."""
    return b"read\n"


def write_dac(code: int) -> bytes:
    """``write dac N`` for a 10-bit code (the firmware itself does not check the range)."""
    return b"write dac %d\n" % _check_range("DAC code", code, 0, DAC_MAX_CODE)


# --- Board side: what the twin prints -------------------------------------------------------


def format_dump(samples: np.ndarray | list[int], prompt: bool = True) -> bytes:
    """The reply to ``read`` byte for byte: markers, one ``%X,`` line, then the prompt."""
    values = np.asarray(samples)
    if values.size and (values.min() < 0 or values.max() > ADC_MAX):
        raise ValueError(f"samples must be 10-bit codes 0..{ADC_MAX}")
    body = b"".join(b"%X," % int(v) for v in values.ravel())
    return START_MARKER + EOL + body + EOL + END_MARKER + EOL + (PROMPT if prompt else b"")


def format_acq(n_samples: int = N_SAMPLES, variant: ShellVariant = STOCK) -> bytes:
    """The reply to ``start acq`` (without the prompt that follows)."""
    out = b"Acquisition of %d samples started" % n_samples + EOL
    if variant.timeout_warning:
        out += ADC_TIMEOUT + EOL
    return out + ACQ_ENDED + EOL


def unknown_command(name: str) -> bytes:
    """The line printed for a command that matches nothing."""
    return UNKNOWN_COMMAND + name.encode("ascii", "replace") + EOL


class LineEditor:
    """The board's ``read_input``: echo and line editing, one input byte at a time."""

    def __init__(self) -> None:
        self._line = bytearray()

    def push(self, byte: int) -> tuple[bytes, bytes | None]:
        """Feed one input byte; return what the board echoes and the finished line, if any."""
        if byte in (0x0D, 0x0A):
            line = bytes(self._line)
            self._line.clear()
            return EOL, line
        if byte in (0x08, 0x7F):
            if self._line:
                self._line.pop()
                return ERASE, None
            return b"", None
        if 32 <= byte <= 126 and len(self._line) < LINE_BUFFER - 1:
            self._line.append(byte)
            return bytes([byte]), None
        # other control bytes, and characters past a full buffer, are dropped silently
        return b"", None


def echo(typed: bytes) -> bytes:
    """Everything the board echoes for ``typed``, starting on a fresh input line."""
    editor = LineEditor()
    return b"".join(editor.push(b)[0] for b in typed)


_ATOI = re.compile(rb"\s*([+-]?\d+)")
_STRTOL16 = re.compile(rb"\s*([+-]?)(?:0[xX](?=[0-9a-fA-F]))?([0-9a-fA-F]+)")


def _atoi(text: bytes) -> int:
    m = _ATOI.match(text)
    return int(m.group(1)) if m else 0


def _strtol16(text: bytes) -> int:
    m = _STRTOL16.match(text)
    if not m:
        return 0
    value = int(m.group(2), 16)
    return -value if m.group(1) == b"-" else value


def _strtok(line: bytes, pos: int) -> tuple[bytes | None, int]:
    """C ``strtok(…, " ")`` from ``pos``: the token and where the next call starts."""
    while pos < len(line) and line[pos] == 0x20:
        pos += 1
    if pos >= len(line):
        return None, pos
    end = line.find(b" ", pos)
    if end < 0:
        return line[pos:], len(line)
    # strtok overwrites the separator, so the next call starts just after it
    return line[pos:end], end + 1


def parse_command_line(line: bytes) -> tuple[str, list[int]]:
    """(name, args) as ``process_command`` sees a line; unknown if ``name not in COMMANDS``."""
    command, pos = _strtok(line, 0)
    if command is None:
        return "", []
    subcommand, pos = _strtok(line, pos)
    if subcommand is None:
        # a lone token is compared whole, and the command gets no arguments
        return command.decode("ascii", "replace"), []
    name = (command + b" " + subcommand).decode("ascii", "replace")
    if name not in COMMANDS:
        return name, []
    # strtok(NULL, ""): the rest of the line as is; nothing left -> the firmware passes "0"
    args = line[pos:] or b"0"
    if name == "start acq":
        return name, [_atoi(t) for t in args.split(b" ") if t][:3]
    if name == "write dac":
        return name, [_atoi(args)]
    if name == "write mux":
        return name, [_strtol16(args) & 0xFFFF]
    # set mux / clear mux ignore their argument
    return name, []


# --- Host side: the parser ------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """``run> ``: the board waits for a command."""


@dataclass(frozen=True)
class Echo:
    """The board's echo of a typed command, with backspaces applied."""

    text: str


@dataclass(frozen=True)
class AcqStarted:
    """``Acquisition of N samples started``."""

    n_samples: int


@dataclass(frozen=True)
class AcqEnded:
    """``Acquisition ended``."""


@dataclass(frozen=True)
class AdcTimeoutWarning:
    """``ADC timeout occured``: a stock-firmware bug, printed every capture; the data is good."""


@dataclass(frozen=True, eq=False)
class Dump:
    """One ``read`` reply: samples between the markers and how trustworthy they are."""

    samples: np.ndarray
    #: both markers seen around exactly N_SAMPLES tokens
    complete: bool
    #: tokens that were not hex (kept as ZERO_LEVEL placeholders)
    bad_tokens: int = 0
    #: hex values above 0x3FF (kept as read)
    out_of_range: int = 0
    #: tokens beyond N_SAMPLES (dropped)
    overflow: int = 0

    @property
    def bad(self) -> bool:
        """Whether any token was unusable or out of the 10-bit range."""
        return bool(self.bad_tokens or self.out_of_range or self.overflow)

    @property
    def ok(self) -> bool:
        """Complete and clean: safe to use as a full capture."""
        return self.complete and not self.bad

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dump):
            return NotImplemented
        return np.array_equal(self.samples, other.samples) and (
            self.complete,
            self.bad_tokens,
            self.out_of_range,
            self.overflow,
        ) == (other.complete, other.bad_tokens, other.out_of_range, other.overflow)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class UnknownCommand:
    """``Unknown command: …``: the board matched nothing."""

    text: str


@dataclass(frozen=True)
class Text:
    """Any other line (e.g. ``DAC writing started``)."""

    line: str


ShellEvent = (
    Prompt | Echo | AcqStarted | AcqEnded | AdcTimeoutWarning | Dump | UnknownCommand | Text
)


@dataclass
class ShellStats:
    """Counters of everything the parser saw, good and bad."""

    bytes_in: int = 0
    lines: int = 0
    prompts: int = 0
    echoes: int = 0
    echo_mismatches: int = 0
    #: AdcTimeoutWarning lines (expected once per capture on the stock firmware)
    warnings: int = 0
    #: text lines the parser does not know
    unknown: int = 0
    unknown_commands: int = 0
    dumps: int = 0
    incomplete_dumps: int = 0
    bad_tokens: int = 0
    out_of_range: int = 0
    overflow_values: int = 0
    stray_markers: int = 0
    bytes_discarded: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_TOKEN = re.compile(rb"([^,\n]*)([,\n]?)")
#: a run of well-formed values, each with its comma: parsed in one go (the common case)
_VALUE_RUN = re.compile(rb"(?:[0-9A-Fa-f]{1,4},)+")
#: runs shorter than this go through the token-by-token path (not worth the setup)
_RUN_MIN = 64
_ABORT = re.compile(rb"[ >\-]")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,4}")
_ACQ_STARTED = re.compile(rb"Acquisition of (\d{1,9}) samples started")
_KNOWN_TEXT = {DAC_STARTED, DAC_ENDED, MUX_STARTED, MUX_ENDED}


def _printable(line: bytes) -> str:
    """Apply the echo's erase sequences and keep printable characters."""
    out: list[str] = []
    for b in line.replace(ERASE, b"\b"):
        if b == 0x08:
            if out:
                out.pop()
        elif 32 <= b <= 126:
            out.append(chr(b))
    return "".join(out)


class ShellParser:
    """Streaming parser of the pic0rick shell output; feed it bytes in any chunking."""

    def __init__(self) -> None:
        self.stats = ShellStats()
        self._pending = bytearray()
        #: bytes of the current line dropped because it grew past LINE_CAP
        self._line_dropped = 0
        self._after_prompt = False
        self._expected: deque[str] = deque()
        # dump state: values mode while the values line arrives, then "awaiting end marker"
        self._in_values = False
        self._awaiting_end = False
        self._samples: np.ndarray | None = None
        self._n = 0
        self._token = bytearray()
        self._bad = 0
        self._oor = 0
        self._overflow = 0

    # -- public ---------------------------------------------------------------------------

    def expect_echo(self, cmd: bytes) -> None:
        """Tell the parser a command was sent, so its echo is recognised as such."""
        editor = LineEditor()
        for b in cmd if cmd.endswith((b"\n", b"\r")) else cmd + b"\n":
            line = editor.push(b)[1]
            if line is not None:
                self._expected.append(_printable(line))

    @property
    def buffered_bytes(self) -> int:
        """Bytes held between calls (partial line and partial value token)."""
        return len(self._pending) + len(self._token)

    @property
    def buffered_values(self) -> int:
        """Values held for the dump in progress (never more than N_SAMPLES)."""
        return self._n

    def feed(self, data: bytes) -> list[ShellEvent]:
        """Parse ``data`` (any chunk of the stream) and return the events it completes."""
        events: list[ShellEvent] = []
        data = bytes(data)
        self.stats.bytes_in += len(data)
        i = 0
        while i < len(data):
            if self._in_values:
                i, rest = self._feed_values(data, i, events)
                if rest is not None:
                    # resync: the aborted token and what follows are parsed as lines
                    data, i = rest, 0
                continue
            nl = data.find(b"\n", i)
            end = len(data) if nl < 0 else nl
            self._pending += data[i:end]
            self._take_prompts(events)
            self._cap_pending()
            if nl < 0:
                break
            i = nl + 1
            self._end_line(events)
        return events

    # -- lines ----------------------------------------------------------------------------

    def _take_prompts(self, events: list[ShellEvent]) -> None:
        while (at := self._pending.find(PROMPT)) >= 0:
            self._discard(at + self._line_dropped)
            del self._pending[: at + len(PROMPT)]
            self._line_dropped = 0
            if self._awaiting_end:
                self._finish_dump(events, end_seen=False)
            self.stats.prompts += 1
            self._after_prompt = True
            events.append(Prompt())

    def _cap_pending(self) -> None:
        if len(self._pending) > LINE_CAP:
            # keep the tail so a marker or prompt cut across chunks is still found
            drop = len(self._pending) - LINE_TAIL
            self._line_dropped += drop
            del self._pending[:drop]

    def _end_line(self, events: list[ShellEvent]) -> None:
        raw = bytes(self._pending)
        if self._line_dropped:
            # a cut line keeps only its tail, however it was chunked
            raw = raw[-LINE_TAIL:]
            self._discard(self._line_dropped + len(self._pending) - len(raw))
        self._pending.clear()
        self._line_dropped = 0
        after_prompt, self._after_prompt = self._after_prompt, False
        self.stats.lines += 1
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if self._awaiting_end:
            if line.endswith(END_MARKER):
                self._discard(len(line) - len(END_MARKER))
                self._finish_dump(events, end_seen=True)
                return
            self._finish_dump(events, end_seen=False)
        if line.endswith(START_MARKER):
            self._discard(len(line) - len(START_MARKER))
            self._start_dump()
            return
        if line.endswith(END_MARKER):
            # an end marker with no dump open: its dump was already handed out or never began
            self.stats.stray_markers += 1
            events.append(Text(line.decode("ascii", "replace")))
            return
        text = _printable(line)
        if after_prompt or (self._expected and text == self._expected[0]):
            if self._expected and self._expected.popleft() != text:
                self.stats.echo_mismatches += 1
            self.stats.echoes += 1
            events.append(Echo(text))
            return
        if m := _ACQ_STARTED.fullmatch(line):
            events.append(AcqStarted(int(m.group(1))))
        elif line == ACQ_ENDED:
            events.append(AcqEnded())
        elif line == ADC_TIMEOUT:
            self.stats.warnings += 1
            events.append(AdcTimeoutWarning())
        elif line.startswith(UNKNOWN_COMMAND):
            self.stats.unknown_commands += 1
            events.append(UnknownCommand(line[len(UNKNOWN_COMMAND) :].decode("ascii", "replace")))
        else:
            if line not in _KNOWN_TEXT:
                self.stats.unknown += 1
            events.append(Text(line.decode("ascii", "replace")))

    def _discard(self, n: int) -> None:
        self.stats.bytes_discarded += n

    # -- dump -----------------------------------------------------------------------------

    def _start_dump(self) -> None:
        # a fresh array per dump: an earlier Dump's samples are never reused or refilled
        self._samples = np.empty(N_SAMPLES, dtype=np.uint16)
        self._n = 0
        self._token.clear()
        self._bad = self._oor = self._overflow = 0
        self._in_values = True
        self._awaiting_end = False

    def _store(self, token: bytes) -> None:
        if _HEX.fullmatch(token):
            value = int(token, 16)
            if value > ADC_MAX:
                self._oor += 1
        else:
            value = ZERO_LEVEL
            self._bad += 1
        if self._n >= N_SAMPLES:
            self._overflow += 1
            return
        assert self._samples is not None
        self._samples[self._n] = value
        self._n += 1

    def _store_run(self, tokens: list[bytes]) -> None:
        """Store well-formed values (1–4 hex digits each), as ``_store`` would one by one."""
        values = np.fromiter((int(t, 16) for t in tokens), np.int64, len(tokens))
        self._oor += int(np.count_nonzero(values > ADC_MAX))
        take = min(len(values), N_SAMPLES - self._n)
        assert self._samples is not None
        self._samples[self._n : self._n + take] = values[:take]
        self._n += take
        self._overflow += len(values) - take

    def _feed_values(
        self, data: bytes, i: int, events: list[ShellEvent]
    ) -> tuple[int, bytes | None]:
        """Consume value tokens from ``data[i:]``; return (next index, bytes to re-parse)."""
        while i < len(data):
            if not self._token:
                # whole "hex," tokens only, so the verdicts equal the token path's in any
                # chunking; a partial token at the chunk's end is left to that path
                run = _VALUE_RUN.match(data, i)
                if run is not None and run.end() - i >= _RUN_MIN:
                    self._store_run(data[i : run.end() - 1].split(b","))
                    i = run.end()
                    continue
            m = _TOKEN.match(data, i)
            assert m is not None  # the pattern matches the empty string
            piece, delim = m.group(1), m.group(2)
            token = bytes(self._token) + piece
            # both tests only grow with the token, so the verdict is the same in any chunking
            if _ABORT.search(token) or len(token) > MAX_TOKEN + 1:
                rest = token + data[m.end(1) :]
                self._token.clear()
                self._in_values = False
                self._finish_dump(events, end_seen=False)
                return 0, rest
            i = m.end()
            if not delim:
                self._token[:] = token
                return i, None
            self._token.clear()
            if delim == b",":
                self._store(token)
                continue
            # end of the values line; a last value missing its trailing comma still counts
            token = token[:-1] if token.endswith(b"\r") else token
            if token:
                self._store(token)
            self._in_values = False
            self._awaiting_end = True
            self.stats.lines += 1
            return i, None
        return i, None

    def _finish_dump(self, events: list[ShellEvent], end_seen: bool) -> None:
        assert self._samples is not None
        samples = self._samples[: self._n].copy()
        complete = end_seen and self._n == N_SAMPLES and not self._overflow
        dump = Dump(samples, complete, self._bad, self._oor, self._overflow)
        self.stats.dumps += 1
        self.stats.incomplete_dumps += not complete
        self.stats.bad_tokens += self._bad
        self.stats.out_of_range += self._oor
        self.stats.overflow_values += self._overflow
        self._samples = None
        self._n = 0
        self._in_values = self._awaiting_end = False
        events.append(dump)
