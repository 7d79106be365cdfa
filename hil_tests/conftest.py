"""The HIL suite in the repository: the packaged suite's hooks and fixtures, short options.

The suite itself is the package ``sonobridge.hil`` (``sonobridge hil``, ``pytest --pyargs
sonobridge.hil``); this directory collects the same tests so that ``pytest hil_tests --port
/dev/ttyACM0`` and ``pytest hil_tests --firmware-host`` keep working. The packaged plugin
registers ``--sonobridge-port`` etc.; here the short names (``--port``) are aliases of them.
See docs/hil.md.
"""

import pytest

from sonobridge.hil.plugin import add_options
from sonobridge.hil.suite import *  # noqa: F403


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--port``, ``--report``, ``--req``, … as aliases of the ``--sonobridge-*`` options."""
    add_options(parser, prefix="")
