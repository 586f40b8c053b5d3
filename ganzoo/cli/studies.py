"""The commands on studies: ``sweep`` and ``report``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ganzoo.cli.parser import EXIT_FAILED, EXIT_INTERRUPTED
from ganzoo.core.errors import GanzooError


def cmd_sweep(args: argparse.Namespace) -> int:
    from ganzoo.sweep import Sweep, load_preset
    from ganzoo.sweep.config import with_plugins

    changes = {k: getattr(args, k) for k in ("n_trials", "seeds", "sampler", "pruner", "space", "steps", "epochs",
                                             "budget", "eval_every", "arch", "device", "repeat_seeds")
               if getattr(args, k) is not None}
    if args.tensorboard:
        changes["tensorboard"] = True
    config = with_plugins(load_preset(args.preset, changes), args.plugin)  # runs, workers and records carry them
    if args.workers < 1:
        raise GanzooError(f"--workers must be >= 1, got {args.workers}")
    study = args.study or Path(args.preset).stem
    population: int | str = args.population
    if population != "auto":
        try:
            population = int(population)
        except ValueError:
            raise GanzooError(f"--population must be a positive integer or auto, got {args.population!r}") from None
    sweep = Sweep(study, config, args.results, storage=args.storage, workers=args.workers, population=population,
                  command=["ganzoo", *args.argv], progress=False if args.no_progress else None)
    for note in sweep.skipped:
        print(f"skipped {note}", file=sys.stderr)
    if args.dry_run:
        print(sweep.describe())
        return 0
    try:
        sweep.run()
    except KeyboardInterrupt:
        print("ganzoo: interrupted; the running trial is recorded as interrupted and queued again: "
              "re-run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"study {study}: {sweep.export()}")
    from ganzoo.report import write_report
    from ganzoo.sweep.storage import redact

    print(f"report: {write_report(sweep.dir, study=study)}")
    print(f"browse: optuna-dashboard {redact(sweep.storage.kind.dashboard_url(url=sweep.storage.url))}")
    # A pair none of whose trials finished, because they failed, is a failed sweep: its report has
    # nothing to compare, and a script must not read exit 0 as results.
    outcome = sweep.outcome()
    dead = {name: o for name, o in outcome.items() if o["finished"] == 0 and o["failed"]}
    for name, o in dead.items():
        print(f"ganzoo sweep: {name}: all {o['failed']} trials failed; first error: {o['error']}", file=sys.stderr)
    failed = sum(o["failed"] for name, o in outcome.items() if name not in dead)
    if failed:
        print(f"ganzoo sweep: {failed} trial(s) failed (their errors are in trials.csv)", file=sys.stderr)
    return EXIT_FAILED if dead else 0


def cmd_report(args: argparse.Namespace) -> int:
    from ganzoo.report import write_report

    print(f"report: {write_report(args.source, out=args.out, study=args.study)}")
    return 0
