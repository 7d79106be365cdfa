"""The wheel ships every package of the source folder: pyproject lists them by hand."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_and_data_folder_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    source = ROOT / config["package-dir"]["sonobridge"]
    found = {".".join(["sonobridge", *p.parent.relative_to(source).parts])
             for p in source.rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found <= {"sonobridge.sim.boards", "sonobridge.sim.phantoms"}
    for package, patterns in config["package-data"].items():
        folder = source.joinpath(*package.split(".")[1:])
        assert all(list(folder.glob(p)) for p in patterns), (package, patterns)
