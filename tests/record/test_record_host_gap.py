"""Where the host lost bytes before recording them, a capture keeps the hole and convert counts
the lines in it as the host's loss (never a CRC error, never the link's)."""

from __future__ import annotations

import numpy as np

from sonobridge.protocol import DeviceInfo, EchoLine, FrameEnd, SampleFormat, encode
from sonobridge.record import open_recording
from sonobridge.record.convert import convert_capture
from sonobridge.record.meta import info_to_dict
from sonobridge.record.raw import CaptureWriter


def _line(i: int, seq: int) -> bytes:
    return encode(EchoLine(samples=np.full(64, i, np.int16), sample_rate_hz=20_000_000,
                           frame_index=0, line_index=i, lines_per_frame=8, sweep_kind=1,
                           sample_format=SampleFormat.I16, adc_bits=12), seq)


def test_a_host_gap_in_a_capture_is_the_hosts_loss_after_convert(tmp_path) -> None:
    info = DeviceInfo(request_seq=0, ensemble_max=1, max_lines_per_frame=8, adc_bits=12,
                      sample_formats=1 << SampleFormat.I16, min_samples_per_line=16)
    cap = tmp_path / "gap.sbcap"
    w = CaptureWriter(cap)
    w.write_event({"type": "device_info", "info": info_to_dict(info)}, 1)
    w.write_rx(encode(info, 0), 2)
    head = b"".join(_line(i, i + 1) for i in range(3))
    cut = _line(3, 4)
    w.write_rx(head + cut[:40], 3)  # line 3 cut by the overflow, lines 4 and 5 lost whole
    w.write_gap(len(cut) - 40 + len(_line(4, 5)) + len(_line(5, 6)), 4)
    tail = b"".join(_line(i, i + 1) for i in range(6, 8))
    w.write_rx(tail + encode(FrameEnd(frame_index=0, lines_per_frame=8, lines_sent=8), 9), 5)
    w.close()

    out = tmp_path / "gap.h5"
    result = convert_capture(cap, out)
    assert result.capture_gaps > 0
    with open_recording(out) as rec:
        acc = rec.accounting
        assert sorted(rec.segments[0].lines["line_index"].tolist()) == [0, 1, 2, 6, 7]
    assert acc["lines_lost_host"] == 3
    assert acc.get("lines_lost_link", 0) == 0 and acc.get("lines_lost_device", 0) == 0
    assert acc.get("crc_errors", 0) == 0
