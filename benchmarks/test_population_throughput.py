"""Population training throughput: trials per hour of P members trained as one vmapped population
against the same P trained one at a time by the fast single-run trainer, measured in one run.

Target (H100-class GPU, full mode): P=32 nsgan on fashion-mnist at least 15x. On a CPU the cores
are already busy with a single run and a population is not faster (``--population auto`` picks 1
there): the ratio is recorded, not asserted.
"""

from __future__ import annotations

from ganzoo.bench import population

TARGET_CUDA = 15.0


def test_population_trials_per_hour(benchmark, bench_mode, on_cuda):
    members, dataset, steps = (32, "fashion-mnist", 500) if bench_mode == "full" else (4, "digits", 30)
    row = benchmark.pedantic(lambda: population("nsgan", dataset, members, steps), rounds=1, iterations=1)
    benchmark.extra_info.update(row)
    assert row["population_trials_per_hour"] > 0 and row["one_at_a_time_trials_per_hour"] > 0
    if on_cuda and bench_mode == "full":
        assert row["speedup"] >= TARGET_CUDA, row
