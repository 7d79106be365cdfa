"""Simulated twins of other boards: each speaks its real board's own serial format.

A twin is a :class:`~sonobridge.board.board.Board` built by a factory
``create_board(options: SimOptions) -> Board`` in its own module. :data:`TWINS` names the
factories by path and :func:`create_twin` imports one only when it is asked for, so a twin's
module (and whatever it needs) is never loaded by naming the registry.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for hints: server.py imports this package, not the other way round
    from sonobridge.board.board import Board
    from sonobridge.sim.server import SimOptions

#: the simulated board's own name (not a twin: the native sonobridge protocol)
NATIVE_BOARD = "sonobridge"

#: board name → ``"module:factory"``, imported lazily by :func:`create_twin`
TWINS: dict[str, str] = {
    "open-echo": "sonobridge.sim.twins.open_echo:create_board",
    "pic0rick": "sonobridge.sim.twins.pic0rick:create_board",
}


def board_names() -> list[str]:
    """Every name ``--board`` accepts: the native board first, then the twins."""
    return [NATIVE_BOARD, *TWINS]


def check_board_name(name: str) -> None:
    """Raise ValueError, listing the choices, unless ``name`` is the native board or a twin."""
    if name != NATIVE_BOARD and name not in TWINS:
        raise ValueError(f"unknown board {name!r}; choose one of {', '.join(board_names())}")


def twin_module(name: str) -> ModuleType:
    """Import the module of the twin named ``name`` (ValueError, with the names, if unknown)."""
    try:
        target = TWINS[name]
    except KeyError:
        raise ValueError(f"unknown twin board {name!r}; choose one of "
                         f"{', '.join(TWINS)}") from None
    return importlib.import_module(target.partition(":")[0])


def validate_twin_options(name: str, options: SimOptions) -> None:
    """Let the twin check its own options (variant, phantom) early, if it can."""
    check = getattr(twin_module(name), "validate_options", None)
    if check is not None:  # a twin without one checks its options when it is built
        check(options)


def create_twin(name: str, options: SimOptions) -> Board:
    """Import the twin named ``name`` and build it from ``options``."""
    factory = getattr(twin_module(name), TWINS[name].partition(":")[2])
    return factory(options)
