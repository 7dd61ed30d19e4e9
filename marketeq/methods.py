"""One vocabulary for methods: the names used by settings, the CLI, compare, sweeps, result files and the GUI.

A method is a solver (``solver.method``: ``rlink``, ``joint``, ``fbsde``), a solver in one mode of its
return (compare's ``rlink-known``, ``rlink-implied``) or a reference answer (``oracle``,
``leading-order``). Earlier names are mapped on read, so old scenarios and result files still open.
Plain Python, no dependencies: the file readers use it without loading the engine.
"""

from __future__ import annotations

__all__ = ["OLD_NAMES", "ORACLE", "SOLVERS", "current_name"]

# solver.method -> what it is
SOLVERS: dict[str, str] = {
    "rlink": "reinforcement link: price-taking agents and a market tied to them by the link, alternating",
    "joint": "joint training: one optimiser over agents' and market networks on the summed losses",
    "fbsde": "deep FBSDE: the agents' first-order conditions as a forward-backward system",
}
ORACLE = "oracle"  # the scenario's reference answer: exact, or the PDE for two agents with q < 2

# An earlier name -> the current one. "combo" was the joint-training baseline; "rgan*" were compare's names
# for the reinforcement-link solver.
OLD_NAMES: dict[str, str] = {
    "combo": "joint",
    "rgan": "rlink",
    "rgan-known": "rlink-known",
    "rgan-implied": "rlink-implied",
}


def current_name(name: str) -> str:
    """The current name of a method given by any of its names."""
    return OLD_NAMES.get(name, name)
