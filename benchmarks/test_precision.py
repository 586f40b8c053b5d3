"""Training precision on CUDA: strict float32, TF32 (the default, ``fast.tf32=auto``) and bf16
autocast, measured in one run for speed and for their effect on outcomes: the FID of the same
configuration over seeds. A precision may be the default only where its mean FID stays within seed
noise of strict float32's (two standard errors of the difference of the means).

CUDA only (``-m gpu``): on a CPU there is neither TF32 nor bf16 autocast in training.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
import torch

from ganzoo import resolve_config
from ganzoo.core.config import EvalSpec
from ganzoo.core.rundir import read_json
from ganzoo.evaluate.metrics import evaluate_run
from ganzoo.training.trainer import Trainer

PRECISIONS = {"float32": {"fast.tf32": "off"}, "tf32": {"fast.tf32": "on"}, "bf16-autocast": {"bf16": True}}
SEEDS = range(6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_precision_over_seeds(benchmark, tmp_path: Path, fashion_mnist: str) -> None:
    # The data matters: the default's FID over seeds on the protocol's data (skipped where it is absent).
    spec = EvalSpec(features="domain", n_samples=5_000)

    def measure() -> dict[str, dict[str, float]]:
        out = {}
        for name, overrides in PRECISIONS.items():
            fids, speeds = [], []
            for seed in SEEDS:
                config = resolve_config("dcgan", fashion_mnist, overrides={
                    "steps": 3_000, "batch_size": 64, "device": "cuda", "seed": seed, "sample_every": 0,
                    "checkpoint_every": 0, "log_every": 500, **overrides})
                run = tmp_path / name / str(seed)
                Trainer(config, run, quiet=True).run()
                assert read_json(run / "throughput.json")["precision"] == name
                speeds.append(read_json(run / "throughput.json")["member_steps_per_second"])
                fids.append(evaluate_run(run, spec, "cuda")["fid"])
            out[name] = {"fid_mean": statistics.mean(fids), "fid_std": statistics.stdev(fids),
                         "steps_per_second": statistics.median(speeds)}
        return out

    results = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(results)
    strict = results["float32"]
    tf32 = results["tf32"]
    noise = 2 * math.sqrt((strict["fid_std"] ** 2 + tf32["fid_std"] ** 2) / len(SEEDS))
    assert abs(tf32["fid_mean"] - strict["fid_mean"]) <= noise, results  # the default must not move outcomes
