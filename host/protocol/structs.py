"""The wire layouts of protocol v1, defined once with ``construct``.

These definitions are the single source of truth. The encoder and decoder use them directly
(for commands and replies) or through :func:`compile_struct`, which derives an equivalent
``struct.Struct`` for the hot path (frame header, ``ECHO_LINE``, ``FRAME_END``). The tables in
``docs/protocol.md`` are rendered from them by ``python -m sonobridge.protocol.spec``.

Every field carries a doc string ``unit ¦ valid range ¦ meaning`` built by :func:`doc`.
"""

from __future__ import annotations

import struct

import construct as cs

from .constants import MAX_NAK_TEXT, MAX_PING_DATA, MAX_TEXT, SYNC, TGC_MAX_POINTS

DOC_SEP = " ¦ "


def doc(unit: str, valid: str, meaning: str) -> str:
    """Pack a field's unit, valid range and meaning into one construct doc string."""
    return DOC_SEP.join((unit, valid, meaning))


# -- envelope ------------------------------------------------------------------------------------

FrameHeader = cs.Struct(
    "sync" / cs.Const(SYNC) * doc("", "A5 5A", "Start of frame"),
    "version" / cs.Int8ul * doc("", "1", "Protocol version of this frame"),
    "msg_type" / cs.Int8ul * doc("", "see message types", "What the payload holds"),
    "payload_len" / cs.Int32ul * doc("bytes", "0..131072", "Payload length, without padding"),
    "seq" / cs.Int32ul
    * doc("", "0..2^32-1", "Sender's frame counter: +1 per frame sent, wraps, 0 after reset"),
    "flags" / cs.Int8ul * doc("bitmask", "see flags", "Bits 0–3 advisory, 4–7 must-understand"),
    "reserved" / cs.Int8ul * doc("", "0", "Senders write 0, receivers ignore"),
    "header_crc" / cs.Int16ul
    * doc("", "", "CRC-16/CCITT-FALSE of bytes 0..13 (poly 0x1021, init 0xFFFF)"),
)

FrameTrailer = cs.Struct(
    "crc32" / cs.Int32ul
    * doc("", "", "zlib CRC-32 of header + payload + padding (everything before it)"),
)

# The header CRC covers everything in the header that precedes it.
HEADER_CRC_SPAN = FrameHeader.sizeof() - 2

# -- host → device -------------------------------------------------------------------------------

GetInfoLayout = cs.Struct()
StopLayout = cs.Struct()
GetStatusLayout = cs.Struct()
ResetLayout = cs.Struct()

ConfigureLayout = cs.Struct(
    "sample_format" / cs.Int8ul
    * doc("enum", "a format set in sample_formats", "Sample format of ECHO_LINE"),
    "decimation" / cs.Int8ul
    * doc("", "1..max_decimation", "sample_rate_hz = adc_rate_hz / decimation"),
    "ensemble_size" / cs.Int8ul
    * doc("firings", "1..ensemble_max", "Repeated firings per beam position (Doppler)"),
    "pulse_cycles" / cs.Int8ul * doc("cycles", "1..pulse_cycles_max", "Transmit burst length"),
    "samples_per_line" / cs.Int32ul
    * doc("samples", "min..max_samples_per_line", "Samples recorded per firing"),
    "start_delay_samples" / cs.Int32ul
    * doc("samples", "0..max_start_delay_samples", "Delay from pulse to first sample"),
    "prf_hz" / cs.Int32ul * doc("Hz", "prf_min_hz..prf_max_hz", "Pulse repetition frequency"),
    "lines_per_frame" / cs.Int16ul
    * doc("lines", "1..max_lines_per_frame", "Beam positions per sweep (frame)"),
    "tgc_count" / cs.Int8ul * doc("points", "1..tgc_points_max", "Valid entries in tgc_cdb"),
    "reserved" / cs.Int8ul * doc("", "0", "Write 0"),
    "sweep_start" / cs.Int32sl
    * doc("µrad or µm", "sweep_min..sweep_max", "Position of line 0 (per sweep_kind)"),
    "sweep_end" / cs.Int32sl
    * doc("µrad or µm", "sweep_min..sweep_max", "Position of the last line"),
    "pulse_freq_hz" / cs.Int32ul
    * doc("Hz", "pulse_freq_min_hz..pulse_freq_max_hz", "Transmit burst frequency"),
    "hv_mv" / cs.Int32ul * doc("mV", "hv_min_mv..hv_max_mv", "Pulser high voltage"),
    "tgc_cdb" / cs.Array(TGC_MAX_POINTS, cs.Int16sl)
    * doc(
        "0.01 dB",
        "gain_min_cdb..gain_max_cdb; 0 past tgc_count",
        "TGC gain points spread evenly from the first to the last sample, linear in between",
    ),
)

StartLayout = cs.Struct(
    "n_frames" / cs.Int32ul * doc("frames", "0..2^32-1", "Frames to acquire; 0 = until STOP"),
)

PingLayout = cs.Struct(
    "token" / cs.Int32ul * doc("", "any", "Echoed in PONG"),
    "data" / cs.GreedyBytes * doc("bytes", f"0..{MAX_PING_DATA}", "Echoed in PONG"),
)

# -- device → host -------------------------------------------------------------------------------

DeviceInfoLayout = cs.Struct(
    "request_seq" / cs.Int32ul * doc("", "", "seq of the GET_INFO; 0xFFFFFFFF if unsolicited"),
    "protocol_version" / cs.Int8ul * doc("", "1", "Highest protocol version the device speaks"),
    "fw_major" / cs.Int8ul * doc("", "", "Firmware version major"),
    "fw_minor" / cs.Int8ul * doc("", "", "Firmware version minor"),
    "fw_patch" / cs.Int8ul * doc("", "", "Firmware version patch"),
    "board_id" / cs.Int32ul * doc("", "", "Board serial number; 0 if unknown"),
    "board_name" / cs.Bytes(32) * doc("UTF-8", "≤ 32 bytes", "Board name, NUL padded"),
    "adc_bits" / cs.Int8ul * doc("bits", "1..16", "ADC resolution"),
    "sample_formats" / cs.Int8ul
    * doc("bitmask", "bit n = SampleFormat n", "Sample formats the device can send"),
    "sweep_kind" / cs.Int8ul * doc("enum", "0..2", "What beam positions mean"),
    "capabilities" / cs.Int8ul * doc("bitmask", "see capabilities", "Optional features"),
    "adc_rate_hz" / cs.Int32ul * doc("Hz", "> 0", "ADC base sample rate"),
    "max_decimation" / cs.Int8ul * doc("", "1..255", "Largest CONFIGURE.decimation"),
    "tgc_points_max" / cs.Int8ul * doc("points", "1..32", "Largest CONFIGURE.tgc_count"),
    "ensemble_max" / cs.Int8ul * doc("firings", "1..255", "Largest ensemble; 1 = no Doppler"),
    "pulse_cycles_max" / cs.Int8ul * doc("cycles", "1..255", "Largest CONFIGURE.pulse_cycles"),
    "min_samples_per_line" / cs.Int32ul * doc("samples", "≥ 1", "Smallest samples_per_line"),
    "max_samples_per_line" / cs.Int32ul * doc("samples", "≤ 65536", "Largest samples_per_line"),
    "max_start_delay_samples" / cs.Int32ul * doc("samples", "", "Largest start delay"),
    "max_lines_per_frame" / cs.Int16ul * doc("lines", "≥ 1", "Largest lines_per_frame"),
    "gain_min_cdb" / cs.Int16sl * doc("0.01 dB", "", "Smallest TGC gain"),
    "gain_max_cdb" / cs.Int16sl * doc("0.01 dB", "≥ gain_min_cdb", "Largest TGC gain"),
    "reserved" / cs.Int16ul * doc("", "0", "Write 0"),
    "sweep_min" / cs.Int32sl * doc("µrad or µm", "", "Smallest beam position"),
    "sweep_max" / cs.Int32sl * doc("µrad or µm", "≥ sweep_min", "Largest beam position"),
    "prf_min_hz" / cs.Int32ul * doc("Hz", "≥ 1", "Smallest PRF"),
    "prf_max_hz" / cs.Int32ul * doc("Hz", "≥ prf_min_hz", "Largest PRF"),
    "pulse_freq_min_hz" / cs.Int32ul * doc("Hz", "", "Smallest transmit frequency"),
    "pulse_freq_max_hz" / cs.Int32ul * doc("Hz", "", "Largest transmit frequency"),
    "hv_min_mv" / cs.Int32ul * doc("mV", "", "Smallest pulser voltage"),
    "hv_max_mv" / cs.Int32ul * doc("mV", "≥ hv_min_mv", "Largest pulser voltage"),
    "transducer_freq_hz" / cs.Int32ul * doc("Hz", "", "Transducer centre frequency; 0 if unknown"),
    "rated_throughput_bps" / cs.Int32ul
    * doc("bytes/s", "", "Sustained link throughput the board is rated for; 0 if unknown"),
)

AckLayout = cs.Struct(
    "request_seq" / cs.Int32ul * doc("", "", "seq of the command acknowledged"),
    "request_type" / cs.Int8ul * doc("", "", "msg_type of the command acknowledged"),
    "reserved" / cs.Bytes(3) * doc("", "0", "Write 0"),
)

NakLayout = cs.Struct(
    "request_seq" / cs.Int32ul * doc("", "", "seq of the command refused"),
    "request_type" / cs.Int8ul * doc("", "", "msg_type of the command refused"),
    "error_code" / cs.Int8ul * doc("enum", "see NAK codes", "Why"),
    "field_id" / cs.Int8ul * doc("", "0 or a CONFIGURE field id", "Offending field; 0 = none"),
    "reserved" / cs.Int8ul * doc("", "0", "Write 0"),
    "text" / cs.GreedyBytes * doc("UTF-8", f"0..{MAX_NAK_TEXT} bytes", "Human-readable detail"),
)

StatusLayout = cs.Struct(
    "request_seq" / cs.Int32ul * doc("", "", "seq of the GET_STATUS; 0xFFFFFFFF if unsolicited"),
    "state" / cs.Int8ul * doc("enum", "0 idle, 1 streaming, 2 fault", "Device state"),
    "fault_flags" / cs.Int8ul
    * doc("bitmask", "", "bit0 HV, bit1 ADC, bit2 overtemperature, bit3 buffer overflow"),
    "temperature_cdeg" / cs.Int16sl * doc("0.01 °C", "", "Board temperature"),
    "hv_mv" / cs.Int32ul * doc("mV", "", "Measured pulser voltage"),
    "device_time_us" / cs.Int64ul * doc("µs", "", "Device clock, same clock as ECHO_LINE"),
    "dropped_lines" / cs.Int32ul
    * doc("lines", "", "Lines the device could not send (buffer full), since boot"),
    "lines_sent" / cs.Int32ul * doc("lines", "", "ECHO_LINEs sent since boot, wraps"),
    "buffer_fill_permille" / cs.Int16ul * doc("‰", "0..1000", "Device send buffer fill"),
    "config_id" / cs.Int16ul * doc("", "", "Id of the active configuration"),
)

PongLayout = cs.Struct(
    "request_seq" / cs.Int32ul * doc("", "", "seq of the PING"),
    "token" / cs.Int32ul * doc("", "", "PING.token"),
    "device_time_us" / cs.Int64ul * doc("µs", "", "Device clock when the PING was handled"),
    "data" / cs.GreedyBytes * doc("bytes", f"0..{MAX_PING_DATA}", "PING.data"),
)

LogLayout = cs.Struct(
    "level" / cs.Int8ul * doc("enum", "10, 20, 30, 40", "debug, info, warning, error"),
    "reserved" / cs.Bytes(3) * doc("", "0", "Write 0"),
    "text" / cs.GreedyBytes * doc("UTF-8", f"0..{MAX_TEXT} bytes", "Message text"),
)

EchoLineHeader = cs.Struct(
    "sample_format" / cs.Int8ul * doc("enum", "0..3", "How the samples are stored"),
    "adc_bits" / cs.Int8ul * doc("bits", "1..16", "ADC resolution; sets the offset-binary zero"),
    "ensemble_index" / cs.Int8ul * doc("", "0..ensemble_size-1", "Firing within the ensemble"),
    "ensemble_size" / cs.Int8ul * doc("firings", "1..255", "Firings per beam position"),
    "sample_rate_hz" / cs.Int32ul * doc("Hz", "> 0", "Sample rate of these samples"),
    "start_delay_samples" / cs.Int32ul
    * doc("samples", "", "Delay from pulse to first sample, at sample_rate_hz"),
    "frame_index" / cs.Int32ul * doc("", "wraps", "Sweep counter since START"),
    "line_index" / cs.Int16ul * doc("", "0..lines_per_frame-1", "Position in the sweep"),
    "lines_per_frame" / cs.Int16ul * doc("lines", "≥ 1", "Lines in this sweep"),
    "beam_position" / cs.Int32sl
    * doc("µrad or µm", "", "Actual beam angle or offset for this line (per sweep_kind)"),
    "timestamp_us" / cs.Int64ul * doc("µs", "", "Device clock at the pulse"),
    "config_id" / cs.Int16ul * doc("", "", "TGC/gain and configuration id; +1 per CONFIGURE"),
    "sweep_kind" / cs.Int8ul * doc("enum", "0..2", "What beam_position means"),
    "reserved" / cs.Int8ul * doc("", "0", "Write 0"),
    "n_samples" / cs.Int32ul * doc("samples", "", "Samples that follow"),
)
#: bytes of ECHO_LINE before its samples (the one home of this number)
ECHO_LINE_HEADER_SIZE = EchoLineHeader.sizeof()

FrameEndLayout = cs.Struct(
    "frame_index" / cs.Int32ul * doc("", "", "The sweep that is complete"),
    "lines_sent" / cs.Int16ul
    * doc("lines", "", "ECHO_LINEs sent for it (all firings, ensembles included)"),
    "lines_per_frame" / cs.Int16ul
    * doc("lines", "", "Beam positions in the sweep (a full sweep sends this × ensemble_size)"),
    "timestamp_us" / cs.Int64ul * doc("µs", "", "Device clock at the end of the sweep"),
)


# -- construct → struct.Struct -------------------------------------------------------------------

def _unwrap(subcon: cs.Construct) -> cs.Construct:
    while isinstance(subcon, cs.Renamed):
        subcon = subcon.subcon
    return subcon


def struct_code(subcon: cs.Construct) -> str:
    """The ``struct`` format code of one fixed-size field (e.g. ``'I'``, ``'2s'``, ``'32h'``)."""
    sub = _unwrap(subcon)
    if isinstance(sub, cs.FormatField):
        return sub.fmtstr[1:]
    if isinstance(sub, cs.Const):
        return f"{len(sub.value)}s"
    if isinstance(sub, cs.Bytes):
        return f"{sub.sizeof()}s"
    if isinstance(sub, cs.Padded) and sub.subcon is cs.Pass:
        return f"{sub.length}x"
    if isinstance(sub, cs.Array):
        return f"{sub.count}{struct_code(sub.subcon)}"
    raise TypeError(f"no struct equivalent for {sub!r}")


def compile_struct(definition: cs.Struct) -> struct.Struct:
    """Derive a little-endian ``struct.Struct`` with the same layout as a construct Struct."""
    return struct.Struct("<" + "".join(struct_code(sc) for sc in definition.subcons))


def field_names(definition: cs.Struct) -> list[str]:
    """Names of a Struct's fields, in wire order (unnamed padding excluded)."""
    return [sc.name for sc in definition.subcons if sc.name]


def fixed_size(definition: cs.Struct) -> int:
    """Size of the fixed-length part of a Struct (everything before a trailing GreedyBytes)."""
    size = 0
    for sc in definition.subcons:
        sub = _unwrap(sc)
        if isinstance(sub, type(cs.GreedyBytes)):
            break
        size += sc.sizeof()
    return size


#: payload layouts by message type name, in the order the spec lists them
PAYLOADS: dict[str, cs.Struct] = {
    "GET_INFO": GetInfoLayout,
    "CONFIGURE": ConfigureLayout,
    "START": StartLayout,
    "STOP": StopLayout,
    "GET_STATUS": GetStatusLayout,
    "PING": PingLayout,
    "RESET": ResetLayout,
    "DEVICE_INFO": DeviceInfoLayout,
    "ACK": AckLayout,
    "NAK": NakLayout,
    "STATUS": StatusLayout,
    "PONG": PongLayout,
    "LOG": LogLayout,
    "ECHO_LINE": EchoLineHeader,
    "FRAME_END": FrameEndLayout,
}

#: 1-based ids of CONFIGURE fields, as NAK.field_id reports them
CONFIGURE_FIELD_IDS: dict[str, int] = {
    name: i + 1 for i, name in enumerate(field_names(ConfigureLayout))
}
