"""Population training throughput: trials per hour of P members trained as one vmapped population
against the same P trained one at a time by the fast single-run trainer, measured in one run.

Target (H100-class GPU, full mode): P=32 nsgan on fashion-mnist at least 15x. On a CPU the cores
are already busy with a single run and a population is not faster (``--population auto`` picks 1
there): the ratio is recorded, not asserted. Full mode needs Fashion-MNIST installed (and the sweep
slice Inception's weights): where they are not, it is skipped with the reason (conftest's
``fashion_mnist`` and ``inception_weights``), never downloaded; quick mode uses digits and ring8.
"""

from __future__ import annotations

from ganzoo.checks.bench import population

TARGET_CUDA = 15.0


def test_population_trials_per_hour(benchmark, request, bench_mode, on_cuda):
    if bench_mode == "full":
        members, dataset, steps = 32, request.getfixturevalue("fashion_mnist"), 500
    else:
        members, dataset, steps = 4, "digits", 30
    row = benchmark.pedantic(lambda: population("nsgan", dataset, members, steps), rounds=1, iterations=1)
    benchmark.extra_info.update(row)
    assert row["population_trials_per_hour"] > 0 and row["one_at_a_time_trials_per_hour"] > 0
    if on_cuda and bench_mode == "full":
        assert row["speedup"] >= TARGET_CUDA, row


# The Lucic network (compare_gan's InfoGAN-style G and D, ~20 GFLOP a member-step at batch 64).
TARGET_MEMBER_STEPS_CUDA = 5_000


def test_population_member_steps_per_second_by_width(benchmark, request, bench_mode, on_cuda):
    """Member-steps/s of populations of P members (1: a single run) and the fashion-mnist protocol's
    training hours at the fastest. Full (H100-class GPU): infogan on fashion-mnist, P in 1, 8, 32,
    64, 128, target 5,000 member-steps/s; quick: nsgan's MLP on digits, recorded."""
    from ganzoo.checks.bench import population_widths, protocol_hours

    if bench_mode == "full":
        dataset = request.getfixturevalue("fashion_mnist")
        variant, arch, sizes, steps = "nsgan", "infogan", (1, 8, 32, 64, 128), 100
    else:
        variant, arch, dataset, sizes, steps = "nsgan", None, "digits", (1, 2, 4), 10
    rows = benchmark.pedantic(lambda: population_widths(variant, dataset, sizes, steps, arch=arch),
                              rounds=1, iterations=1)
    best = max(rows, key=lambda r: r["member_steps_per_second"])
    hours = protocol_hours(best["member_steps_per_second"])
    benchmark.extra_info.update({"rows": rows, "fashion_mnist_training_hours": hours["training_hours"]})
    assert [r["members"] for r in rows] == list(sizes) and all(r["member_steps_per_second"] > 0 for r in rows)
    assert rows[0]["speedup_vs_single"] == 1.0
    assert hours["member_steps"] == 7 * (100 + 50) * 15_625, (
        "7 losses x (100 trials + 50 repeat runs) x 15,625 D updates (20 epochs of 50,000 at batch 64) at n_critic 1")
    if on_cuda and bench_mode == "full":
        assert best["member_steps_per_second"] >= TARGET_MEMBER_STEPS_CUDA, rows


def test_one_population_against_separate_processes(benchmark, request, bench_mode, on_cuda):
    """The engine's population against what a user would do instead, N plain ``ganzoo train``
    processes on the one device, in aggregate member-steps/s. Full (H100-class GPU): infogan on
    fashion-mnist, N = 8 processes against a population of 64, target 9x; quick: recorded."""
    from ganzoo.checks.bench import population_widths, separate_processes

    if bench_mode == "full":
        dataset = request.getfixturevalue("fashion_mnist")
        variant, arch, n, members, steps = "nsgan", "infogan", 8, 64, 300
    else:
        variant, arch, dataset, n, members, steps = "nsgan", None, "digits", 2, 2, 20

    def measure() -> tuple[dict, dict]:
        apart = separate_processes(variant, dataset, n, steps, arch=arch)
        together = population_widths(variant, dataset, (members,), steps, arch=arch)[0]
        return apart, together

    apart, together = benchmark.pedantic(measure, rounds=1, iterations=1)
    ratio = together["member_steps_per_second"] / apart["member_steps_per_second"]
    benchmark.extra_info.update({"processes": apart, "population": together, "ratio": ratio})
    assert apart["member_steps_per_second"] > 0 and together["member_steps_per_second"] > 0
    if on_cuda and bench_mode == "full":
        assert ratio >= 9.0, (apart, together)


def test_sweep_population_auto_against_one_trial_at_a_time(benchmark, request, bench_mode, on_cuda):
    """Trials/hour of ``ganzoo sweep --population auto`` against one trial at a time on a slice of the
    fashion-mnist preset, evaluation included (full: 32 trials of 500 steps, Inception on 10k samples
    per trial); quick (CPU): the smoke preset's nsgan on ring8, where auto trains one at a time."""
    from ganzoo.checks.bench import sweep_slice

    if bench_mode == "full":
        request.getfixturevalue("fashion_mnist")  # skipped, with the reason, where it is not installed
        request.getfixturevalue("inception_weights")  # the preset evaluates with Inception
        rows = benchmark.pedantic(lambda: sweep_slice("fashion-mnist", 32, 500, variants=["nsgan"]),
                                  rounds=1, iterations=1)
    else:
        rows = benchmark.pedantic(lambda: sweep_slice("smoke", 2, 20, variants=["nsgan"], datasets=["ring8"],
                                                      n_samples=200),
                                  rounds=1, iterations=1)
    benchmark.extra_info.update({"rows": rows})
    assert [r["population"] for r in rows] == ["auto", "1"] and all(r["trials_per_hour"] > 0 for r in rows)
    if on_cuda and bench_mode == "full":
        assert rows[0]["speedup"] >= TARGET_CUDA, rows
