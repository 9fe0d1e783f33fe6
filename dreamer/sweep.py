"""`dreamer sweep`: a grid of runs at a fixed real budget, plus a planning-free ablation and a report.

Imports nothing heavy at module level (the CLI imports this module to build its parser).
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--world", default="cartpole")


def run(args) -> int:
    raise NotImplementedError("dreamer sweep is being built")
