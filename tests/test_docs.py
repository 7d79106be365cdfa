"""Every code block in the docs runs as written, or says plainly that it is a fragment.

- ``python`` blocks run, one file's blocks in order in one scratch folder (a later block may
  read what an earlier one wrote). A block whose first line is ``# fragment …`` is only
  compiled: it shows calls whose inputs come from elsewhere.
- ``sh`` blocks: every ``sonobridge …`` command in them must parse with the real command-line
  parser (they may name boards that CI does not have, so they are not run).
- Every other block must say what it is (``text`` for diagrams, formulas and hex dumps).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sonobridge.cli import build_parser, parse_args

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md", ROOT / "hil_tests" / "README.md",
               ROOT / "hardware" / "README.md"])
LANGUAGES = {"python", "sh", "text", "c", "toml", "json", "ini", "make"}
FENCE = re.compile(r"^```(\S*)")


@dataclass
class Block:
    """One fenced code block: where it is, its language and its text."""

    path: Path
    line: int
    language: str
    text: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order."""
    found: list[Block] = []
    lines = path.read_text().splitlines()
    start = None
    for i, line in enumerate(lines):
        m = FENCE.match(line)
        if not m:
            continue
        if start is None:
            start, language = i, m.group(1)
        else:
            found.append(Block(path, start + 1, language, "\n".join(lines[start + 1:i]) + "\n"))
            start = None
    assert start is None, f"{path}: the block opened at line {start + 1} is never closed"
    return found


ALL = [b for p in DOCS for b in blocks_of(p)]


def is_fragment(block: Block) -> bool:
    """A Python block that says on its first line that it is not a whole program."""
    return block.text.lstrip().startswith("# fragment")


def test_blocks_were_found():
    assert sum(b.language == "python" for b in ALL) >= 15
    assert sum(b.language == "sh" for b in ALL) >= 15


@pytest.mark.parametrize("block", ALL, ids=str)
def test_every_block_names_its_language(block: Block):
    assert block.language in LANGUAGES, (
        f"{block}: mark the block as one of {sorted(LANGUAGES)} (``text`` for diagrams)")


SUBSTITUTION = re.compile(r'"?\$\(([^)]*)\)"?')
SEPARATORS = {"|", "||", "&&", ";", "&", ">", ">>", "2>", "<"}


def shell_commands(text: str) -> list[list[str]]:
    """The arguments of every ``sonobridge`` command in a shell block, split as a shell would.

    A command substitution (``"$(sonobridge replay X --url)"``) is checked on its own and
    stands for a port in the command around it.
    """
    commands = []
    for raw in text.replace("\\\n", " ").splitlines():
        for line in [SUBSTITUTION.sub("sim://?phantom=wire", raw), *SUBSTITUTION.findall(raw)]:
            words = shlex.split(line, comments=True)
            for i, word in enumerate(words):
                if Path(word).name == "sonobridge":
                    begin = i + 1
                elif words[i:i + 3][1:] == ["-m", "sonobridge"] and "python" in word:
                    begin = i + 3
                else:
                    continue
                end = next((j for j in range(begin, len(words)) if words[j] in SEPARATORS),
                           len(words))
                commands.append(words[begin:end])
                break
    return commands


SHELL = [(b, c) for b in ALL if b.language == "sh" for c in shell_commands(b.text)]


def test_shell_commands_were_found():
    assert len(SHELL) >= 30


@pytest.mark.parametrize(("block", "argv"), SHELL,
                         ids=[f"{b}:{' '.join(a)[:40]}" for b, a in SHELL])
def test_documented_commands_parse(block: Block, argv: list[str], capsys):
    try:
        args = parse_args(build_parser(), argv)
    except SystemExit as exc:
        if exc.code == 0:  # --help, --version
            return
        pytest.fail(f"{block}: `sonobridge {shlex.join(argv)}` is refused: "
                    f"{capsys.readouterr().err.strip()}")
    assert getattr(args, "func", None), f"{block}: `sonobridge {shlex.join(argv)}` runs nothing"


PYTHON_FILES = sorted({b.path for b in ALL if b.language == "python"})
# one interpreter per document: its blocks run in order in one namespace, as a reader reads them
RUNNER = """
import json, sys, traceback
namespace = {"__name__": "__main__"}
for where, text in json.loads(sys.stdin.read()):
    try:
        exec(compile(text, where, "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        sys.exit(f"the block at {where} fails")
"""


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(path: Path, tmp_path: Path):
    blocks = [b for b in ALL if b.path == path and b.language == "python"]
    for block in blocks:
        compile(block.text, str(block), "exec")  # fragments must at least be Python
    program = [(str(b), b.text) for b in blocks if not is_fragment(b)]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(program),
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
