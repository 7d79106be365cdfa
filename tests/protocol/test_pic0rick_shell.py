"""The pic0rick stock shell's wire format: builders, board-side printers and the host parser."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sonobridge.protocol.boards.pic0rick_shell import (
    ACQ_STARTED,
    ADC_TIMEOUT,
    END_MARKER,
    LINE_BUFFER,
    LINE_CAP,
    MAX_TOKEN,
    N_SAMPLES,
    PROMPT,
    START_MARKER,
    VARIANTS,
    ZERO_LEVEL,
    AcqEnded,
    AcqStarted,
    AdcTimeoutWarning,
    Dump,
    Echo,
    LineEditor,
    Prompt,
    ShellParser,
    Text,
    UnknownCommand,
    acq_ticks,
    dac_volts,
    echo,
    format_acq,
    format_dump,
    parse_command_line,
    pulse_duration_ns,
    pulse_ticks,
    read,
    start_acq,
    write_dac,
)

# The exact text of a `read` reply, written by hand from the firmware's printf calls:
# "----------Start of ACQ----------\n", then "%X," per value, then "\n-----End…\n", then the
# main loop's "run> "; the board's stdio turns every \n into \r\n.
SHORT_DUMP = (
    b"----------Start of ACQ----------\r\n"
    b"200,3FF,0,1A,1FF,\r\n"
    b"-----------End of ACQ-----------\r\n"
    b"run> "
)
SHORT_VALUES = [0x200, 0x3FF, 0x000, 0x01A, 0x1FF]


def values_line(values) -> bytes:
    """The dump's one line of ``%X,`` values (checked against SHORT_DUMP below)."""
    return b"".join(b"%X," % v for v in values)


def dump_bytes(values, end: bool = True) -> bytes:
    """A whole `read` reply with the given values, built from the hand-checked line format."""
    tail = b"-----------End of ACQ-----------\r\nrun> " if end else b""
    return b"----------Start of ACQ----------\r\n" + values_line(values) + b"\r\n" + tail


CAPTURE = (np.arange(N_SAMPLES) * 7 + 300) % 1024

# A session as a terminal shows it: the prompt, the typed command echoed on the prompt's line,
# the reply, and so on.
SESSION = (
    b"run> "
    b"start acq 200 200 2000\r\n"
    b"Acquisition of 8000 samples started\r\n"
    b"ADC timeout occured\r\n"
    b"Acquisition ended\r\n"
    b"run> "
    b"read\r\n" + dump_bytes(CAPTURE)
)


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def dumps(events) -> list[Dump]:
    return [e for e in events if isinstance(e, Dump)]


def feed_all(data: bytes, chunks=None) -> tuple[list, ShellParser]:
    parser = ShellParser()
    events = []
    if chunks is None:
        events += parser.feed(data)
    else:
        cuts = [0, *sorted(c % (len(data) + 1) for c in chunks), len(data)]
        for a, b in itertools.pairwise(cuts):
            events += parser.feed(data[a:b])
    return events, parser


# --- facts and builders ------------------------------------------------------------------


def test_helper_matches_the_hand_written_format():
    assert dump_bytes(SHORT_VALUES) == SHORT_DUMP
    assert format_dump(SHORT_VALUES) == SHORT_DUMP
    assert format_dump(np.array(SHORT_VALUES, dtype=np.uint16), prompt=False) == SHORT_DUMP[:-5]


def test_format_dump_rejects_values_beyond_10_bits():
    with pytest.raises(ValueError):
        format_dump([0, 1024])
    with pytest.raises(ValueError):
        format_dump([-1])


def test_format_acq_prints_the_warning_only_on_stock():
    assert format_acq() == (
        b"Acquisition of 8000 samples started\r\nADC timeout occured\r\nAcquisition ended\r\n"
    )
    assert format_acq(variant=VARIANTS["old"]) == (
        b"Acquisition of 8000 samples started\r\nAcquisition ended\r\n"
    )


def test_command_builders_end_in_lf_only():
    assert start_acq(200, 200, 2000) == b"start acq 200 200 2000\n"
    assert start_acq(70, 70, 6000) == b"start acq 70 70 6000\n"
    assert read() == b"read\n"
    assert write_dac(0) == b"write dac 0\n"
    assert write_dac(1023) == b"write dac 1023\n"
    for cmd in (start_acq(1, 2, 3), read(), write_dac(5)):
        assert b"\r" not in cmd and cmd.count(b"\n") == 1


@pytest.mark.parametrize("code", [-1, 1024, 5000])
def test_write_dac_range_error_names_the_value(code):
    with pytest.raises(ValueError, match=str(code)):
        write_dac(code)


def test_write_dac_rejects_non_integers():
    with pytest.raises(ValueError):
        write_dac(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        write_dac(True)


def test_start_acq_rejects_negative_lengths():
    with pytest.raises(ValueError, match="-8"):
        start_acq(200, -8, 2000)


def test_pulse_timing_stock_and_old():
    stock, old = VARIANTS["stock"], VARIANTS["old"]
    assert (stock.tick_ns, stock.sys_clock_hz, old.tick_ns, old.sys_clock_hz) == (
        8,
        125e6,
        4,
        250e6,
    )
    assert pulse_ticks(200) == 25
    assert pulse_ticks(207) == 25  # integer division, as the firmware does
    assert pulse_ticks(7) == 0
    assert pulse_duration_ns(25) == 208
    assert pulse_duration_ns(pulse_ticks(7)) == 8
    assert pulse_ticks(200, old) == 50
    assert pulse_duration_ns(50, old) == 204
    with pytest.raises(ValueError):
        pulse_ticks(-1)


def test_acq_ticks_fill_missing_values_with_125():
    assert acq_ticks([200, 200, 2000]) == (25, 25, 250)
    assert acq_ticks([200]) == (25, 125, 125)
    assert acq_ticks([0]) == (0, 125, 125)  # bare "start acq": the firmware passes "0"
    assert acq_ticks([200, 200, 2000, 9]) == (25, 25, 250)
    assert acq_ticks([-8]) == (0xFFFFFFFF, 125, 125)  # atoi(-8)/8 stored in a uint32


def test_dac_volts():
    assert dac_volts(0) == 0.0
    assert dac_volts(512) == pytest.approx(1.024)
    assert dac_volts(1000) == pytest.approx(2.0)


# --- board side: line editing and command matching ---------------------------------------


def test_echo_of_printable_input_and_crlf():
    assert echo(b"read\n") == b"read\r\n"
    assert echo(b"read\r") == b"read\r\n"
    # CRLF ends the command, then an empty command
    assert echo(b"read\r\n") == b"read\r\n\r\n"


def test_echo_of_backspace_and_del():
    assert echo(b"reaf\bd\n") == b"reaf\b \bd\r\n"
    assert echo(b"x\x7f\x7fy") == b"x\b \by"  # nothing is echoed at the start of the line
    assert echo(b"a\tb\x01") == b"ab"  # non-printable bytes are neither stored nor echoed


def test_line_editor_holds_127_characters():
    editor = LineEditor()
    out = b"".join(editor.push(b)[0] for b in b"x" * 200)
    assert out == b"x" * (LINE_BUFFER - 1)
    assert editor.push(ord("\n")) == (b"\r\n", b"x" * (LINE_BUFFER - 1))


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (b"start acq 200 200 2000", ("start acq", [200, 200, 2000])),
        (b"start acq", ("start acq", [0])),
        (b"start acq ", ("start acq", [0])),
        (b"  start   acq  70 x 6000 5", ("start acq", [70, 0, 6000])),
        (b"start acq 12abc", ("start acq", [12])),
        (b"write dac 500", ("write dac", [500])),
        (b"write dac", ("write dac", [0])),
        (b"write dac 12 34", ("write dac", [12])),
        (b"write mux 00ff", ("write mux", [0xFF])),
        (b"write mux 0x1234", ("write mux", [0x1234])),
        (b"set mux", ("set mux", [])),
        (b"clear mux 3", ("clear mux", [])),
        (b"read", ("read", [])),
        (b"read now", ("read now", [])),  # two tokens are matched as a pair: unknown
        (b"foo bar baz", ("foo bar", [])),
        (b"start", ("start", [])),
        (b"", ("", [])),
        (b"   ", ("", [])),
    ],
)
def test_parse_command_line_like_the_firmware(line, parsed):
    assert parse_command_line(line) == parsed


# --- host side: the parser on a real-looking session -------------------------------------


def test_real_session():
    events, parser = feed_all(SESSION)
    assert events[:-2] == [
        Prompt(),
        Echo("start acq 200 200 2000"),
        AcqStarted(8000),
        AdcTimeoutWarning(),
        AcqEnded(),
        Prompt(),
        Echo("read"),
    ]
    assert events[-1] == Prompt()
    (dump,) = dumps(events)
    assert dump.complete and dump.ok and not dump.bad
    assert dump.samples.dtype == np.uint16
    np.testing.assert_array_equal(dump.samples, CAPTURE)
    s = parser.stats
    assert (s.bytes_in, s.prompts, s.echoes, s.warnings, s.dumps) == (len(SESSION), 3, 2, 1, 1)
    assert (s.unknown, s.bytes_discarded, s.incomplete_dumps, s.bad_tokens) == (0, 0, 0, 0)


def test_short_hand_written_dump():
    events, _ = feed_all(SHORT_DUMP)
    assert kinds(events) == ["Dump", "Prompt"]
    dump = events[0]
    assert dump.samples.tolist() == SHORT_VALUES
    assert not dump.complete  # 5 values, not 8000
    assert not dump.bad


def test_prompt_split_across_chunks():
    parser = ShellParser()
    assert parser.feed(b"run") == []
    assert parser.feed(b"> ") == [Prompt()]
    assert parser.feed(b"re") == []
    assert parser.feed(b"ad\r") == []
    assert parser.feed(b"\n") == [Echo("read")]


def test_prompt_without_newline_at_end_of_stream():
    assert feed_all(b"Acquisition ended\r\nrun> ")[0] == [AcqEnded(), Prompt()]


def test_lf_only_lines_are_accepted_too():
    assert feed_all(b"Acquisition ended\nADC timeout occured\n")[0] == [
        AcqEnded(),
        AdcTimeoutWarning(),
    ]


def test_backspace_echo_is_applied():
    assert feed_all(b"run> reaf\b \bd\r\n")[0] == [Prompt(), Echo("read")]


def test_expected_echo_is_recognised_without_a_prompt():
    parser = ShellParser()
    assert parser.feed(b"read\r\n") == [Text("read")]  # nothing says it is an echo
    parser.expect_echo(read())
    assert parser.feed(b"read\r\n") == [Echo("read")]
    assert parser.stats.echo_mismatches == 0


def test_echo_mismatch_is_counted():
    parser = ShellParser()
    parser.expect_echo(b"read\n")
    assert parser.feed(b"run> rexd\r\n") == [Prompt(), Echo("rexd")]
    assert parser.stats.echo_mismatches == 1


def test_expect_echo_truncates_like_the_board():
    parser = ShellParser()
    cmd = b"start acq " + b"1" * 200
    parser.expect_echo(cmd + b"\n")
    board = echo(cmd + b"\n")
    assert parser.feed(board) == [Echo(cmd[: LINE_BUFFER - 1].decode())]
    assert parser.stats.echo_mismatches == 0


def test_crlf_sent_gives_an_empty_echo_and_a_second_prompt():
    wire = b"run> read\r\n" + dump_bytes(SHORT_VALUES) + b"\r\nrun> "
    assert kinds(feed_all(wire)[0]) == ["Prompt", "Echo", "Dump", "Prompt", "Echo", "Prompt"]
    assert feed_all(wire)[0][4] == Echo("")


def test_adc_timeout_is_a_warning_and_the_data_still_good():
    events, parser = feed_all(SESSION)
    assert parser.stats.warnings == 1
    assert dumps(events)[0].ok


def test_unknown_command():
    events, parser = feed_all(b"run> foo bar\r\nUnknown command: foo bar\r\nrun> ")
    assert events == [Prompt(), Echo("foo bar"), UnknownCommand("foo bar"), Prompt()]
    assert parser.stats.unknown_commands == 1


def test_dac_lines_are_known_text():
    events, parser = feed_all(b"run> write dac 500\r\nDAC writing started\r\nDAC writing ended\r\n")
    assert events[2:] == [Text("DAC writing started"), Text("DAC writing ended")]
    assert parser.stats.unknown == 0
    _, parser = feed_all(b"something else\r\n")
    assert parser.stats.unknown == 1


def test_trailing_comma_gives_no_extra_value():
    (dump,) = dumps(feed_all(dump_bytes([1, 2, 3]))[0])
    assert dump.samples.tolist() == [1, 2, 3]
    assert not dump.bad


def test_last_value_without_its_comma_still_counts():
    wire = START_MARKER + b"\r\n1,2,3\r\n" + END_MARKER + b"\r\n"
    (dump,) = dumps(feed_all(wire)[0])
    assert dump.samples.tolist() == [1, 2, 3]


def test_lowercase_and_unpadded_hex():
    wire = START_MARKER + b"\r\na,3ff,0,Ff,1A,\r\n" + END_MARKER + b"\r\n"
    (dump,) = dumps(feed_all(wire)[0])
    assert dump.samples.tolist() == [10, 1023, 0, 255, 26]


def test_non_hex_token_is_counted_and_keeps_positions():
    values = CAPTURE.tolist()
    line = values_line(values).replace(b"%X," % values[0], b"G1,", 1)
    wire = START_MARKER + b"\r\n" + line + b"\r\n" + END_MARKER + b"\r\nrun> "
    events, parser = feed_all(wire)
    (dump,) = dumps(events)
    assert dump.bad_tokens == 1 and dump.bad and not dump.ok
    assert dump.complete  # all 8000 positions framed by both markers
    assert dump.samples[0] == ZERO_LEVEL
    np.testing.assert_array_equal(dump.samples[1:], CAPTURE[1:])
    assert parser.stats.bad_tokens == 1


def test_empty_token_is_bad():
    wire = START_MARKER + b"\r\n1,,2,\r\n" + END_MARKER + b"\r\n"
    (dump,) = dumps(feed_all(wire)[0])
    assert dump.samples.tolist() == [1, ZERO_LEVEL, 2]
    assert dump.bad_tokens == 1


def test_values_beyond_10_bits_are_flagged():
    values = CAPTURE.tolist()
    values[5] = 0x400
    values[6] = 0xFFFF
    events, parser = feed_all(dump_bytes(values))
    (dump,) = dumps(events)
    assert dump.out_of_range == 2 and dump.bad and not dump.ok
    assert dump.samples[5] == 0x400 and dump.samples[6] == 0xFFFF
    assert parser.stats.out_of_range == 2


def test_short_dump_is_incomplete():
    (dump,) = dumps(feed_all(dump_bytes(CAPTURE[:7999]))[0])
    assert not dump.complete and len(dump.samples) == 7999 and not dump.bad


def test_dump_without_end_marker_is_incomplete_at_the_prompt():
    events, parser = feed_all(dump_bytes(CAPTURE, end=False) + PROMPT)
    assert kinds(events) == ["Dump", "Prompt"]
    assert not events[0].complete and len(events[0].samples) == N_SAMPLES
    assert parser.stats.incomplete_dumps == 1


def test_prompt_breaking_into_the_values_resyncs():
    wire = START_MARKER + b"\r\n1,2,3" + PROMPT + b"read\r\n"
    events, parser = feed_all(wire)
    assert kinds(events) == ["Dump", "Prompt", "Echo"]
    assert events[0].samples.tolist() == [1, 2] and not events[0].complete
    assert parser.stats.bytes_discarded == 1  # the cut "3"


def test_new_start_marker_breaking_into_the_values_resyncs():
    wire = START_MARKER + b"\r\n1,2," + dump_bytes(CAPTURE)
    events, _ = feed_all(wire)
    first, second = dumps(events)
    assert first.samples.tolist() == [1, 2] and not first.complete
    assert second.ok
    np.testing.assert_array_equal(second.samples, CAPTURE)


def test_text_breaking_into_the_values_resyncs():
    # the whole token, from its first byte, is parsed as a line again: nothing is lost
    wire = START_MARKER + b"\r\n1,2,Acquisition ended\r\nrun> "
    events, _ = feed_all(wire)
    assert kinds(events) == ["Dump", "AcqEnded", "Prompt"]
    assert events[0].samples.tolist() == [1, 2] and not events[0].complete


def test_never_ending_dump_keeps_memory_bounded():
    parser = ShellParser()
    assert parser.feed(START_MARKER + b"\r\n") == []
    chunk = b"3FF," * 5000
    for _ in range(40):  # 200 000 values, 25x a capture
        assert parser.feed(chunk) == []
        assert parser.buffered_values <= N_SAMPLES
        assert parser.buffered_bytes <= MAX_TOKEN + 1
    events = parser.feed(b"3F" + PROMPT)
    assert kinds(events) == ["Dump", "Prompt"]
    dump = events[0]
    assert len(dump.samples) == N_SAMPLES and dump.overflow == 200_000 - N_SAMPLES
    assert not dump.complete and dump.bad
    assert parser.buffered_values == 0


def test_endless_hex_token_keeps_memory_bounded():
    parser = ShellParser()
    events = parser.feed(START_MARKER + b"\r\n1,")
    for _ in range(100):
        events += parser.feed(b"F" * 1000)
        assert parser.buffered_bytes <= LINE_CAP
    events += parser.feed(b"\r\nrun> ")
    assert kinds(events) == ["Dump", "Text", "Prompt"]
    assert events[0].samples.tolist() == [1]


def test_endless_text_line_keeps_memory_bounded():
    parser = ShellParser()
    for _ in range(100):
        assert parser.feed(b"x" * 1000) == []
        assert parser.buffered_bytes <= LINE_CAP
    events = parser.feed(b"x" + END_MARKER + b"\r\n" + PROMPT)
    assert kinds(events) == ["Text", "Prompt"]  # a stray end marker: nothing to hand out
    assert parser.stats.stray_markers == 1
    assert parser.stats.bytes_discarded == 100_001


def test_never_hands_out_a_previous_dump_again():
    parser = ShellParser()
    first = dumps(parser.feed(SESSION))[0]
    kept = first.samples.copy()
    # a repeated end marker and a prompt: no dump is open, so none is handed out
    assert parser.feed(END_MARKER + b"\r\n" + PROMPT) == [Text(END_MARKER.decode()), Prompt()]
    # a shorter second dump carries only its own values
    (second,) = dumps(parser.feed(b"read\r\n" + dump_bytes([5, 6, 7])))
    assert second.samples.tolist() == [5, 6, 7]
    assert not np.shares_memory(first.samples, second.samples)
    np.testing.assert_array_equal(first.samples, kept)
    # an empty dump is empty, not the last one again
    (third,) = dumps(parser.feed(START_MARKER + b"\r\n\r\n" + END_MARKER + b"\r\n"))
    assert len(third.samples) == 0 and not third.complete


def test_board_and_host_round_trip():
    # what a twin would print for the commands the host builds, using the same module
    parser = ShellParser()
    wire = PROMPT
    for cmd in (start_acq(200, 200, 2000), read()):
        parser.expect_echo(cmd)
        name, args = parse_command_line(cmd.strip())
        wire += echo(cmd)
        if name == "start acq":
            assert acq_ticks(args) == (25, 25, 250)
            wire += format_acq() + PROMPT
        else:
            wire += format_dump(CAPTURE)
    events = parser.feed(wire)
    assert [e for e in events if isinstance(e, Echo)] == [
        Echo("start acq 200 200 2000"),
        Echo("read"),
    ]
    assert dumps(events)[0].ok
    assert parser.stats.echo_mismatches == 0


# --- hypothesis ----------------------------------------------------------------------------

QUIRKY = (
    PROMPT
    + echo(b"start acq 70 70 6000\n")
    + format_acq()
    + b"run"  # a prompt printed in two pieces
    + b"> reaf\b \bd\r\n"
    + dump_bytes([1, 0x3A, 0x400, 0xFFFF])[:-5]
    + PROMPT
    + b"read\r\n"
    + START_MARKER
    + b"\r\n1,G1,,2,3"
    + PROMPT  # a dump cut by a prompt
    + b"foo\r\nUnknown command: foo\r\n"
    + b"x" * 600  # an overlong line
    + b"\r\nrun> "
    + SESSION
    + START_MARKER
    + b"\r\n"
    + b"1," * (N_SAMPLES + 10)  # a dump that overflows
    + b"-" * 3
    + END_MARKER
    + b"\r\n"
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=60))
def test_any_chunking_gives_the_same_events_and_stats(cuts):
    whole, p1 = feed_all(QUIRKY)
    chunked, p2 = feed_all(QUIRKY, cuts)
    assert chunked == whole
    assert p2.stats == p1.stats


def test_quirky_stream_events():
    events, parser = feed_all(QUIRKY)
    d = dumps(events)
    assert [x.ok for x in d] == [False, False, True, False]
    assert d[0].out_of_range == 2
    assert d[1].samples.tolist() == [1, ZERO_LEVEL, ZERO_LEVEL, 2] and d[1].bad_tokens == 2
    assert d[3].overflow == 10
    assert parser.stats.warnings == 2


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(min_value=0), max_size=20))
def test_format_dump_round_trip(seed, cuts):
    samples = np.random.default_rng(seed).integers(0, 1024, N_SAMPLES)
    events, _ = feed_all(format_dump(samples), cuts)
    assert kinds(events) == ["Dump", "Prompt"]
    assert events[0].ok
    np.testing.assert_array_equal(events[0].samples, samples)


FRAGMENTS = st.one_of(
    st.binary(max_size=12),
    st.sampled_from(
        [
            PROMPT,
            b"run",
            b"> ",
            b"\r\n",
            b"\n",
            b"\r",
            b",",
            b"3FF,",
            b"1a,",
            b"\b \b",
            START_MARKER,
            END_MARKER,
            START_MARKER + b"\r\n",
            END_MARKER + b"\r\n",
            ACQ_STARTED,
            ADC_TIMEOUT,
            b"Unknown command: ",
            b"x" * 300,
        ]
    ),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(FRAGMENTS, max_size=80))
def test_garbage_never_crashes_nor_makes_a_complete_dump(chunks):
    parser = ShellParser()
    for chunk in chunks:
        for event in parser.feed(chunk):
            assert not (isinstance(event, Dump) and event.complete)
            if isinstance(event, Dump):
                assert len(event.samples) <= N_SAMPLES
        assert parser.buffered_values <= N_SAMPLES
        assert parser.buffered_bytes <= LINE_CAP + MAX_TOKEN + 1
    assert parser.stats.bytes_in == sum(map(len, chunks))


@settings(max_examples=40, deadline=None)
@given(st.lists(FRAGMENTS, max_size=40), st.lists(st.integers(min_value=0), max_size=20))
def test_garbage_around_a_complete_dump_still_yields_it(before, cuts):
    # the garbage ends with a newline so the dump's start marker begins a line
    wire = b"".join(before) + b"\r\n" + dump_bytes(CAPTURE)
    events, _ = feed_all(wire, cuts)
    assert any(isinstance(e, Dump) and e.ok for e in events)
    assert events[-1] == Prompt()


def test_parser_started_in_the_middle_of_a_dump_hands_out_nothing():
    wire = values_line(CAPTURE[:4000]) + b"\r\n" + END_MARKER + b"\r\n" + PROMPT
    events, parser = feed_all(wire)
    assert kinds(events) == ["Text", "Text", "Prompt"]
    assert parser.stats.stray_markers == 1 and parser.stats.dumps == 0
    assert parser.stats.bytes_discarded > 0
