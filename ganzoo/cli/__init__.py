"""The ``ganzoo`` command line (``python -m ganzoo`` goes through ``ganzoo/__main__.py``).

- ``parser``: the commands, their flags and the exit codes; ``main``: ``main`` and the console script's ``entry``;
- ``runs``: list, check, train, eval, export, fid-weights; ``studies``: sweep, report; ``bench``: bench.
"""

from __future__ import annotations

from ganzoo.cli.main import COMMANDS, entry, main
from ganzoo.cli.parser import (
           EXIT_CODES,
           EXIT_DIVERGED,
           EXIT_FAILED,
           EXIT_INTERRUPTED,
           EXIT_USAGE,
           build_parser,
)

__all__ = ["COMMANDS", "EXIT_CODES", "EXIT_DIVERGED", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser",
           "entry", "main"]
