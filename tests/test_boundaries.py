"""Module boundaries from docs/architecture.md, enforced on the source (imports are parsed)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

#: the source folder ``host/``, installed as the package ``sonobridge``
HOST = Path(__file__).resolve().parents[1] / "host"
PACKAGE = "sonobridge"

# package -> our packages it must never import
FORBIDDEN = {
    "protocol": {"dsp", "sim", "device", "viewer", "record", "board", "cli", "demo", "hil"},
    "dsp": {"protocol", "sim", "device", "viewer", "record", "board", "cli", "demo", "hil"},
    # every board we serve is built on the board side; it knows none of them
    "board": {"dsp", "sim", "device", "viewer", "record", "cli", "demo", "hil"},
    "sim": {"dsp", "device", "viewer", "record", "cli", "demo", "hil"},
    # sim:// and replay:// are registered with pyserial by name, never imported
    "device": {"dsp", "viewer", "record", "sim", "board", "cli", "demo", "hil"},
    "record": {"viewer", "sim", "cli", "demo", "hil"},
    # the HIL suite tests boards through the client; it runs where no GUI is installed
    "hil": {"viewer", "record", "cli", "demo"},
}
EXISTING = sorted(p for p in FORBIDDEN if (HOST / p).is_dir())


def imports_of(path: Path, root: Path = HOST) -> set[str]:
    """Absolute dotted names of every module ``path`` imports (relative imports resolved)."""
    package = [PACKAGE, *path.relative_to(root).parts[:-1]]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                prefix = ".".join([*base, node.module] if node.module else base)
                names |= {f"{prefix}.{a.name}" for a in node.names}
            else:
                names.add(node.module or "")
    return names


def host_packages(names: set[str]) -> set[str]:
    """The ``sonobridge.<pkg>`` sub-packages among dotted names."""
    return {n.split(".")[1] for n in names if n.startswith(f"{PACKAGE}.")}


def test_resolver_sees_relative_and_absolute_imports(tmp_path):
    # guards the checker itself: a forbidden import written either way is caught
    probe = HOST / "protocol" / "codec.py"
    assert "sonobridge.protocol.constants.MAX_PAYLOAD" in imports_of(probe)
    fake = tmp_path / "host" / "protocol" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from ..dsp import Chain\nimport sonobridge.viewer\nfrom . import codec\n")
    found = imports_of(fake, root=tmp_path / "host")
    assert host_packages(found) == {"dsp", "viewer", "protocol"}


@pytest.mark.parametrize("package", EXISTING)
def test_package_respects_its_boundary(package):
    for path in (HOST / package).rglob("*.py"):
        bad = host_packages(imports_of(path)) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(HOST.parent)} imports sonobridge.{sorted(bad)}"


@pytest.mark.parametrize(
    ("package", "third_party"),
    [("protocol", {"construct", "numpy"}), ("dsp", {"numpy", "scipy"})],
)
def test_third_party_imports(package, third_party):
    allowed = third_party | {PACKAGE, "__future__"} | set(sys.stdlib_module_names)
    for path in (HOST / package).rglob("*.py"):
        roots = {n.split(".")[0] for n in imports_of(path)}
        assert roots <= allowed, f"{path.name} imports {roots - allowed}"


TESTS = Path(__file__).resolve().parent


def test_tests_are_packages_with_relative_helper_imports():
    """Every test folder is a package, and no test puts a folder on ``sys.path``."""
    folders = {p.parent for p in TESTS.rglob("*.py")}
    assert all((d / "__init__.py").is_file() for d in folders), sorted(
        str(d) for d in folders if not (d / "__init__.py").is_file())
    helpers = {p.stem for p in TESTS.rglob("*.py")} - {"__init__", "conftest"}
    for path in TESTS.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(
                    node.value, ast.Name) and node.value.id == "sys":
                pytest.fail(f"{path.relative_to(TESTS)} uses sys.path")
            if isinstance(node, ast.ImportFrom) and not node.level:
                assert (node.module or "").split(".")[0] not in helpers, (
                    f"{path.relative_to(TESTS)} imports the helper {node.module} absolutely")
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & helpers, path
    pyproject = (TESTS.parent / "pyproject.toml").read_text()
    assert "pythonpath" not in pyproject
