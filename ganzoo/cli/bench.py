"""``ganzoo bench``: throughput against the tutorial loop, populations, their widths, and the GPU self-check."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from ganzoo.cli.parser import EXIT_FAILED
from ganzoo.core.errors import GanzooError


def _bench_widths(args: argparse.Namespace) -> int:
    from ganzoo.checks import bench

    sizes = bench.parse_sizes(args.widths, "--widths")
    dataset = args.dataset or ("digits" if args.quick else "fashion-mnist")
    rows = bench.population_widths(bench.population_variant(args.variants), dataset, sizes,
                                   steps=args.steps or (10 if args.quick else 100), arch=args.arch, device=args.device)
    best = max(rows, key=lambda r: r["member_steps_per_second"])
    hours = bench.protocol_hours(best["member_steps_per_second"])
    for row in rows:
        print(f"P={row['members']}: {row['member_steps_per_second']:,.0f} member-steps/s "
              f"(x{row['speedup_vs_single'] or 0:.2f} a single run; {row['execution']})", file=sys.stderr)
        row["fashion_mnist_training_hours"] = bench.protocol_hours(row["member_steps_per_second"])["training_hours"]
    print(f"fashion-mnist protocol at P={best['members']}: {hours['member_steps']:,} member-steps, "
          f"{hours['training_hours']:.2f} h of training (evaluation not included)", file=sys.stderr)
    print(f"bench: {bench.save_rows(rows, args.out / bench.WIDTH_CSV)}")
    return 0


def _bench_self_check(args: argparse.Namespace) -> int:
    from ganzoo.checks import selfcheck

    if args.widths is not None or args.population is not None:
        raise GanzooError("--self-check runs on its own: drop --widths and --population")
    return selfcheck.command(args.device, args.cpu, args.out, EXIT_FAILED)


def cmd_bench(args: argparse.Namespace) -> int:
    from ganzoo.checks import bench

    if args.self_check:
        return _bench_self_check(args)
    if args.cpu:
        raise GanzooError("--cpu goes with --self-check (the other benchmarks take --device cpu)")
    if args.widths is not None:
        return _bench_widths(args)
    if args.population is not None:
        if args.population < 1:
            raise GanzooError(f"--population must be >= 1, got {args.population}")
        dataset = args.dataset or ("digits" if args.quick else "fashion-mnist")
        steps = args.steps or (50 if args.quick else 500)
        row = bench.population(bench.population_variant(args.variants), dataset, args.population, steps, device=args.device)
        path = bench.save_rows([row], args.out / bench.POPULATION_CSV, append=True)
        print(f"population of {row['members']}: {row['population_trials_per_hour']:.0f} trials/h, one at a time "
              f"{row['one_at_a_time_trials_per_hour']:.0f} trials/h, x{row['speedup']:.2f} ({row['device']})",
              file=sys.stderr)
        print(f"bench: {path}")
        return 0
    spec = bench.BenchSpec.quick() if args.quick else bench.BenchSpec()
    changes: dict[str, Any] = {"device": args.device}
    if args.variants:
        changes["variants"] = bench.variants_list(args.variants)
    if args.dataset:
        changes["dataset"] = args.dataset
    if args.batch_sizes:
        changes["batch_sizes"] = bench.parse_sizes(args.batch_sizes)
    changes.update({k: getattr(args, k) for k in ("steps", "repeats") if getattr(args, k) is not None})
    fast = {}
    for key, value in args.set:
        if not key.startswith("fast."):
            raise GanzooError(f"ganzoo bench --set takes fast.KEY=VALUE only, got {key!r}")
        fast[key.removeprefix("fast.")] = value
    spec = dataclasses.replace(spec, fast=fast, **changes)
    bench.check_spec(spec)
    frame = bench.run(spec, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"bench: {bench.write(frame, args.out)}")
    return 0
