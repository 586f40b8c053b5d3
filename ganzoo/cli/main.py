"""``ganzoo`` itself: parse, load the plugins, run the command, and turn what went wrong into one line and
an exit code (2: bad input; 3: an exception inside a run, a plugin's code or a bug, with the traceback only
under ``--debug``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from ganzoo.cli.bench import cmd_bench
from ganzoo.cli.parser import EXIT_FAILED, EXIT_USAGE, build_parser
from ganzoo.cli.runs import (
    cmd_check,
    cmd_eval,
    cmd_export,
    cmd_fid_weights,
    cmd_list,
    cmd_train,
)
from ganzoo.cli.studies import cmd_report, cmd_sweep
from ganzoo.core.errors import GanzooError
from ganzoo.core.plugins import describe_exception

COMMANDS = {
    "list": cmd_list, "check": cmd_check, "train": cmd_train, "eval": cmd_eval, "sweep": cmd_sweep, "report": cmd_report, "bench": cmd_bench,
    "fid-weights": cmd_fid_weights, "export": cmd_export,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        from ganzoo.core.plugins import load_installed_plugins, load_plugin

        if args.command != "check":  # check loads its plugin itself, to tell which entries are its own
            load_installed_plugins()
        for spec in args.plugin:
            load_plugin(spec)
        return COMMANDS[args.command](args)
    except GanzooError as e:
        print(f"ganzoo {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # inside a run: a plugin's code, or a bug in ganzoo; one line unless --debug
        if args.debug:
            import traceback

            traceback.print_exc()
        hint = "" if args.debug else " (--debug shows the traceback)"
        print(f"ganzoo {args.command}: failed: {describe_exception(e)}{hint}", file=sys.stderr)
        return EXIT_FAILED


def entry() -> NoReturn:
    sys.exit(main())
