"""`dreamer play`: play a world in the terminal, or watch a trained agent play it.

Imports nothing heavy at module level (the CLI imports this module to build its parser).
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--world", default="text/coin", help="world name (default text/coin)")
    parser.add_argument("--agent", default=None, help="run folder of a trained agent to watch")
    parser.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    raise NotImplementedError("dreamer play is being built")
