"""Hypothesis strategies for every protocol v1 message, spanning each field's wire range."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from sonobridge.protocol import (
    Ack,
    Configure,
    DeviceInfo,
    EchoLine,
    FrameEnd,
    GetInfo,
    GetStatus,
    Log,
    MsgType,
    Nak,
    Ping,
    Pong,
    Reset,
    SampleFormat,
    Start,
    Status,
    Stop,
)
from sonobridge.protocol.constants import MAX_NAK_TEXT, MAX_PING_DATA, MAX_TEXT

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 0xFFFFFFFFFFFFFFFF)
i16 = st.integers(-0x8000, 0x7FFF)
i32 = st.integers(-0x80000000, 0x7FFFFFFF)
seqs = u32


def _text(max_bytes: int) -> st.SearchStrategy[str]:
    return st.text(max_size=max_bytes // 4).filter(
        lambda s: "\0" not in s and len(s.encode()) <= max_bytes
    )


@st.composite
def echo_lines(draw, max_samples: int = 300) -> EchoLine:
    """Any valid ECHO_LINE, in every sample format."""
    fmt = draw(st.sampled_from(list(SampleFormat)))
    n = draw(st.integers(0, max_samples))
    if fmt == SampleFormat.PACKED12:
        n -= n & 1
    elements = {
        SampleFormat.U8: (np.uint8, 0, 0xFF, 8),
        SampleFormat.I16: (np.int16, -0x8000, 0x7FFF, 16),
        SampleFormat.U16_OB: (np.uint16, 0, 0xFFFF, 16),
        SampleFormat.PACKED12: (np.uint16, 0, 0xFFF, 12),
    }[fmt]
    dtype, lo, hi, max_bits = elements
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    samples = rng.integers(lo, hi, n, dtype=dtype, endpoint=True)
    lines = draw(st.integers(1, 0xFFFF))
    ens = draw(st.integers(1, 0xFF))
    return EchoLine(
        samples,
        draw(st.integers(1, 0xFFFFFFFF)),
        frame_index=draw(u32),
        line_index=draw(st.integers(0, lines - 1)),
        lines_per_frame=lines,
        beam_position=draw(i32),
        sweep_kind=draw(st.integers(0, 2)),
        ensemble_index=draw(st.integers(0, ens - 1)),
        ensemble_size=ens,
        start_delay_samples=draw(u32),
        timestamp_us=draw(u64),
        config_id=draw(u16),
        adc_bits=draw(st.integers(1, max_bits)),
        sample_format=fmt,
    )


@st.composite
def configures(draw) -> Configure:
    """Any CONFIGURE that fits the wire (valid or not for a given device)."""
    count = draw(st.integers(0, 32))
    return Configure(
        sample_format=draw(u8), decimation=draw(u8), ensemble_size=draw(u8),
        pulse_cycles=draw(u8), samples_per_line=draw(u32), start_delay_samples=draw(u32),
        prf_hz=draw(u32), lines_per_frame=draw(u16), sweep_start=draw(i32),
        sweep_end=draw(i32), pulse_freq_hz=draw(u32), hv_mv=draw(u32),
        tgc_cdb=tuple(draw(st.lists(i16, min_size=count, max_size=count))),
        tgc_count=draw(u8),
    )


@st.composite
def device_infos(draw) -> DeviceInfo:
    """Any DEVICE_INFO that fits the wire."""
    return DeviceInfo(
        request_seq=draw(u32), protocol_version=draw(u8), fw_major=draw(u8),
        fw_minor=draw(u8), fw_patch=draw(u8), board_id=draw(u32), board_name=draw(_text(32)),
        adc_bits=draw(u8), sample_formats=draw(u8), sweep_kind=draw(u8),
        capabilities=draw(u8), adc_rate_hz=draw(u32), max_decimation=draw(u8),
        tgc_points_max=draw(u8), ensemble_max=draw(u8), pulse_cycles_max=draw(u8),
        min_samples_per_line=draw(u32), max_samples_per_line=draw(u32),
        max_start_delay_samples=draw(u32), max_lines_per_frame=draw(u16),
        gain_min_cdb=draw(i16), gain_max_cdb=draw(i16), sweep_min=draw(i32),
        sweep_max=draw(i32), prf_min_hz=draw(u32), prf_max_hz=draw(u32),
        pulse_freq_min_hz=draw(u32), pulse_freq_max_hz=draw(u32), hv_min_mv=draw(u32),
        hv_max_mv=draw(u32), transducer_freq_hz=draw(u32), rated_throughput_bps=draw(u32),
    )


#: one strategy per message type; a test checks that no type is missing
BY_TYPE: dict[MsgType, st.SearchStrategy] = {
    MsgType.GET_INFO: st.just(GetInfo()),
    MsgType.CONFIGURE: configures(),
    MsgType.START: st.builds(Start, n_frames=u32),
    MsgType.STOP: st.just(Stop()),
    MsgType.GET_STATUS: st.just(GetStatus()),
    MsgType.PING: st.builds(Ping, token=u32, data=st.binary(max_size=MAX_PING_DATA)),
    MsgType.RESET: st.just(Reset()),
    MsgType.DEVICE_INFO: device_infos(),
    MsgType.ACK: st.builds(Ack, request_seq=u32, request_type=u8),
    MsgType.NAK: st.builds(Nak, request_seq=u32, request_type=u8, error_code=u8, field_id=u8,
                           text=_text(MAX_NAK_TEXT)),
    MsgType.STATUS: st.builds(Status, request_seq=u32, state=u8, fault_flags=u8,
                              temperature_cdeg=i16, hv_mv=u32, device_time_us=u64,
                              dropped_lines=u32, lines_sent=u32, buffer_fill_permille=u16,
                              config_id=u16),
    MsgType.PONG: st.builds(Pong, request_seq=u32, token=u32, device_time_us=u64,
                            data=st.binary(max_size=MAX_PING_DATA)),
    MsgType.LOG: st.builds(Log, level=u8, text=_text(MAX_TEXT)),
    MsgType.ECHO_LINE: echo_lines(),
    MsgType.FRAME_END: st.builds(FrameEnd, frame_index=u32, lines_sent=u16,
                                 lines_per_frame=u16, timestamp_us=u64),
}

messages = st.one_of(*BY_TYPE.values())
