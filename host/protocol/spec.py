"""Render the byte tables of ``docs/protocol.md`` from the construct definitions.

    python -m sonobridge.protocol.spec --check docs/protocol.md   # exit 1 if the doc is stale
    python -m sonobridge.protocol.spec --write docs/protocol.md   # refresh the generated blocks

The doc holds generated blocks between ``<!-- generated:NAME -->`` and ``<!-- /generated -->``;
everything else in it is hand-written prose. A test runs ``--check`` so the doc's offsets,
sizes and codes can never drift from the structs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import construct as cs

from . import structs
from .codec import encode
from .constants import (
    CAPABILITY_DOCS,
    ERROR_CODE_DOCS,
    FLAG_DOCS,
    HEADER_SIZE,
    MAX_PAYLOAD,
    SAMPLE_FORMAT_DOCS,
    SWEEP_KIND_DOCS,
    MsgType,
)
from .structs import DOC_SEP
from .vectors import canonical, hex_lines

_INT_NAMES = {"B": "u8", "H": "u16", "I": "u32", "L": "u32", "Q": "u64",
              "b": "i8", "h": "i16", "i": "i32", "l": "i32", "q": "i64"}

MESSAGE_DOCS: dict[MsgType, tuple[str, str, str]] = {
    MsgType.GET_INFO: ("host → device", "DEVICE_INFO", "Ask for identity and capabilities."),
    MsgType.CONFIGURE: ("host → device", "ACK / NAK", "Set acquisition parameters (idle only)."),
    MsgType.START: ("host → device", "ACK / NAK", "Start streaming ECHO_LINE / FRAME_END."),
    MsgType.STOP: ("host → device", "ACK", "Stop streaming; ACKed also when idle."),
    MsgType.GET_STATUS: ("host → device", "STATUS", "Ask for health and counters."),
    MsgType.PING: ("host → device", "PONG", "Round-trip probe."),
    MsgType.RESET: ("host → device", "ACK / NAK", "Reboot (capability RESET)."),
    MsgType.DEVICE_INFO: ("device → host", "", "Identity and capabilities."),
    MsgType.ACK: ("device → host", "", "Command accepted."),
    MsgType.NAK: ("device → host", "", "Command refused, with a code."),
    MsgType.STATUS: ("device → host", "", "Health and counters."),
    MsgType.PONG: ("device → host", "", "Answer to PING."),
    MsgType.LOG: ("device → host", "", "Device text for the user."),
    MsgType.ECHO_LINE: ("device → host", "", "One firing's samples, self-describing."),
    MsgType.FRAME_END: ("device → host", "", "A sweep is complete."),
}


def type_name(subcon: cs.Construct) -> str:
    """A short C-like type name for a field (``u32``, ``i16[32]``, ``bytes[2]``)."""
    while isinstance(subcon, cs.Renamed):
        subcon = subcon.subcon
    if isinstance(subcon, cs.FormatField):
        return _INT_NAMES[subcon.fmtstr[1:]]
    if isinstance(subcon, cs.Const):
        return f"bytes[{len(subcon.value)}]"
    if isinstance(subcon, cs.Bytes):
        return f"bytes[{subcon.sizeof()}]"
    if isinstance(subcon, cs.Array):
        return f"{type_name(subcon.subcon)}[{subcon.count}]"
    if isinstance(subcon, type(cs.GreedyBytes)):
        return "bytes[…]"
    raise TypeError(f"no doc name for {subcon!r}")


def field_table(definition: cs.Struct, *, base: int = 0, ids: bool = False) -> str:
    """A Markdown table of a layout: offset, size, type, field, unit, valid range, meaning."""
    head = ["Offset", "Size", "Type", "Field", "Unit", "Valid range", "Meaning"]
    if ids:
        head.insert(0, "Id")
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    offset = base
    for i, sc in enumerate(definition.subcons):
        greedy = type_name(sc) == "bytes[…]"
        size = "rest" if greedy else str(sc.sizeof())
        unit, valid, meaning = [*sc.docs.split(DOC_SEP), "", "", ""][:3]
        cells = [str(offset), size, type_name(sc), f"`{sc.name}`", unit, valid, meaning]
        if ids:
            cells.insert(0, str(i + 1))
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        if not greedy:
            offset += sc.sizeof()
    size_note = f"Fixed part: **{structs.fixed_size(definition)} bytes**."
    return "\n".join(rows) + "\n\n" + size_note


def enum_table(docs: dict, value_fmt: str = "{:d}") -> str:
    """A Markdown table of an enumeration with its meanings."""
    rows = ["| Value | Name | Meaning |", "|---|---|---|"]
    for member, text in docs.items():
        rows.append(f"| {value_fmt.format(int(member))} | `{member.name}` | {text} |")
    return "\n".join(rows)


def message_table() -> str:
    """The message catalogue: type byte, name, direction, reply and payload size."""
    rows = ["| Type | Name | Direction | Reply | Payload bytes | Purpose |",
            "|---|---|---|---|---|---|"]
    for t, (direction, reply, purpose) in MESSAGE_DOCS.items():
        layout = structs.PAYLOADS[t.name]
        size = str(structs.fixed_size(layout))
        if any(type_name(sc) == "bytes[…]" for sc in layout.subcons):
            size += " + variable"
        if t is MsgType.ECHO_LINE:
            size += " + samples"
        rows.append(f"| 0x{int(t):02X} | `{t.name}` | {direction} | {reply} | {size} | "
                    f"{purpose} |")
    return "\n".join(rows)


def flags_table() -> str:
    """Header flag bits."""
    rows = ["| Bit | Mask | Name | Kind | Meaning |", "|---|---|---|---|---|"]
    for flag, text in FLAG_DOCS.items():
        bit = int(flag).bit_length() - 1
        rows.append(f"| {bit} | 0x{int(flag):02X} | `{flag.name}` | advisory | {text} |")
    rows.append("| 4–7 | 0xF0 | — | must-understand | None defined in v1. A receiver that sees "
                "one set drops the frame (host: counts `unsupported`; device: NAK "
                "`UNSUPPORTED_FLAG`). |")
    return "\n".join(rows)


def vectors_block() -> str:
    """Every canonical vector as a hex dump with its file name."""
    parts = []
    for i, (name, seq, flags, message) in enumerate(canonical()):
        frame = encode(message, seq, flags=flags)
        parts.append(f"`tests/vectors/{i:02d}_{name}.hex`: `{message.MSG_TYPE.name}`, "
                     f"seq {seq}, flags 0x{int(flags):02X}, {len(frame)} bytes\n\n```text\n"
                     f"{hex_lines(frame)}\n```")
    return "\n\n".join(parts)


def blocks() -> dict[str, str]:
    """Every generated block of docs/protocol.md by name."""
    out = {
        "header": field_table(structs.FrameHeader),
        "trailer": field_table(structs.FrameTrailer, base=HEADER_SIZE)
        .replace("| 16 |", "| 16 + padded payload_len |", 1),
        "messages": message_table(),
        "flags": flags_table(),
        "nak_codes": enum_table(ERROR_CODE_DOCS, "0x{:02X}"),
        "sample_formats": enum_table(SAMPLE_FORMAT_DOCS),
        "sweep_kinds": enum_table(SWEEP_KIND_DOCS),
        "capabilities": enum_table(CAPABILITY_DOCS, "0x{:02X}"),
        "max_payload": f"`MAX_PAYLOAD` = **{MAX_PAYLOAD} bytes** (128 KiB).",
        "vectors": vectors_block(),
    }
    for name, layout in structs.PAYLOADS.items():
        if layout.subcons:
            out[name] = field_table(layout, ids=name == "CONFIGURE")
        else:
            out[name] = "Empty payload (`payload_len` = 0)."
    return out


_BLOCK = re.compile(r"(<!-- generated:(\w+) -->\n)(.*?)(<!-- /generated -->)", re.S)


def update(text: str) -> tuple[str, list[str]]:
    """Refresh every generated block in ``text``; return it and the names of unknown blocks."""
    rendered = blocks()
    unknown: list[str] = []

    def repl(m: re.Match) -> str:
        name = m.group(2)
        if name not in rendered:
            unknown.append(name)
            return m.group(0)
        return f"{m.group(1)}{rendered[name]}\n{m.group(4)}"

    return _BLOCK.sub(repl, text), unknown


def missing_blocks(text: str) -> list[str]:
    """Generated blocks that the document does not contain at all."""
    present = {m.group(2) for m in _BLOCK.finditer(text)}
    return sorted(set(blocks()) - present)


def main(argv: list[str] | None = None) -> int:
    """Check or rewrite the generated blocks of a protocol document."""
    ap = argparse.ArgumentParser(description="render protocol tables from the structs")
    ap.add_argument("document", type=Path)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    text = args.document.read_text()
    new, unknown = update(text)
    missing = missing_blocks(text)
    for name in unknown:
        print(f"unknown generated block: {name}", file=sys.stderr)
    for name in missing:
        print(f"missing generated block: {name}", file=sys.stderr)
    if args.write:
        args.document.write_text(new)
        return 1 if unknown else 0
    stale = new != text
    if stale:
        print(f"{args.document} is stale; run: python -m sonobridge.protocol.spec --write "
              f"{args.document}", file=sys.stderr)
    return 1 if (stale or unknown or missing) else 0


if __name__ == "__main__":
    sys.exit(main())
