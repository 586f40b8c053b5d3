"""A tiny sweep preset shared by the sweep tests: nsgan on ring8, seconds a trial on a CPU."""

from __future__ import annotations

from pathlib import Path

TINY = """
variants = ["nsgan"]
datasets = ["ring8"]
n_trials = {n_trials}
seeds = {seeds}
sampler = "random"
space = "narrow"
steps = {steps}
batch_size = 64
device = "cpu"

[evaluation]
n_samples = 200
"""


def tiny_preset(tmp_path: Path, n_trials: int = 3, seeds: int = 1, steps: int = 20) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(n_trials=n_trials, seeds=seeds, steps=steps))
    return path
