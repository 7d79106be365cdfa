"""host/dsp may import only numpy, scipy, the standard library and itself."""

import ast
import sys
from pathlib import Path

DSP = Path(__file__).resolve().parents[2] / "host" / "dsp"
ALLOWED = {"numpy", "scipy", "__future__"}


def test_dsp_imports_only_numpy_scipy_and_stdlib() -> None:
    offenders = []
    files = sorted(DSP.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in ALLOWED and top not in sys.stdlib_module_names:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_dsp_has_no_utils_module() -> None:
    assert not (DSP / "utils.py").exists()
