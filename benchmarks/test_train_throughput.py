"""Training throughput per variant and batch size: ganzoo's trainer and the tutorial loop.

The pytest-benchmark tables give each loop's time per step; ``test_speedup_*`` time both loops in
turns within one test and assert the issue's targets on the ratio (H100-class CUDA: 10x for the
MLP variants, 3x for dcgan at batch 64; CPU: never slower than the baseline).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

from ganzoo.checks.bench import TutorialLoop, measure, timed_config
from ganzoo.core.device import resolve_device
from ganzoo.data import load_dataset
from ganzoo.training.trainer import Trainer

VARIANTS = ("vanilla", "nsgan", "dcgan")
TARGET_CUDA = {"vanilla": 10.0, "nsgan": 10.0, "dcgan": 3.0}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


@pytest.mark.parametrize("loop", ["ganzoo", "baseline"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_train_steps(benchmark, spec, loop, variant, batch):
    device = resolve_device(spec.device)
    config = timed_config(variant, spec.dataset, batch, device, spec.fast)
    with tempfile.TemporaryDirectory() as tmp:
        if loop == "ganzoo":
            step = Trainer(config, Path(tmp) / "run", quiet=True).train_step
        else:
            step = TutorialLoop(config, load_dataset(spec.dataset, "train", download=False), device).train_step

        def steps() -> None:
            for _ in range(spec.steps):
                step()
            _sync()

        steps()  # warm-up
        benchmark.group = f"train {variant} batch {batch}"
        benchmark.extra_info.update({"loop": loop, "batch_size": batch, "device": str(device)})
        benchmark.pedantic(steps, rounds=spec.repeats, iterations=1)
        benchmark.extra_info["images_per_second"] = spec.steps * batch * config.n_critic / benchmark.stats.stats.median


@pytest.mark.parametrize("variant", VARIANTS)
def test_speedup_over_the_tutorial_loop(benchmark, spec, on_cuda, variant, batch):
    rows = benchmark.pedantic(lambda: measure(variant, batch, spec), rounds=1, iterations=1)
    ratio = rows[0]["speedup_vs_baseline"]
    benchmark.extra_info.update({"speedup": ratio, "ganzoo_images_per_second": rows[0]["images_per_second"],
                                 "baseline_images_per_second": rows[1]["images_per_second"]})
    # The GPU targets are stated at batch 64; larger batches are recorded, not asserted.
    target = (TARGET_CUDA[variant] if batch == 64 else 1.0) if on_cuda else 1.0
    assert ratio >= target, f"{variant}: ganzoo x{ratio:.2f} the tutorial loop's images/s, target x{target}"
