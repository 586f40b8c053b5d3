"""What every self-check gets and gives back: the verdicts, the sizes it runs at (real on CUDA, tiny
on the CPU), ``Context`` (the device, the sizes, a scratch folder, run configs at those sizes) and
``Outcome`` (a check's verdict, one line, its figures and its table of measurements)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ganzoo.core import rundir
from ganzoo.core.config import TrainConfig

PASS, FAIL = "pass", "FAIL"


def not_applicable(why: str) -> str:
    return f"n/a ({why})"


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each check runs: on CUDA the real sizes, on the CPU tiny ones (the same code paths)."""

    batch_size: int  # training batch of checks 1, 2, 4, 5, 6
    steps: int  # K, the steps of checks 1, 2 and 5 (more than graphs.WARMUP: the graph is replayed)
    dcgan_width: int | None  # None: the architecture's own
    sync_batch_size: int  # check 3: digits' 1,437 training images make an epoch of 1437 // this steps
    timed_steps: int  # check 6: steps per timed turn
    repeats: int  # check 6: graph/eager turns; the median counts
    profiled_steps: int  # check 6: steps under torch.profiler
    inception_batch: int  # check 7: images per extraction batch
    inception_batches: int  # check 7: timed batches per precision
    members: int  # check 8: the captured population whose peak is measured


CUDA_SIZES = Sizes(batch_size=64, steps=30, dcgan_width=None, sync_batch_size=256, timed_steps=100, repeats=3,
                   profiled_steps=5, inception_batch=250, inception_batches=8, members=8)
CPU_SIZES = Sizes(batch_size=8, steps=4, dcgan_width=8, sync_batch_size=512, timed_steps=4, repeats=1,
                  profiled_steps=2, inception_batch=2, inception_batches=1, members=2)


@dataclasses.dataclass
class Context:
    """What every check gets: the device, its sizes and a scratch folder for run directories."""

    device: torch.device
    sizes: Sizes
    work: Path
    _dirs: int = 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def config(self, variant: str, dataset: str = "digits", **overrides: Any) -> TrainConfig:
        """A run of ``variant`` at this context's sizes, writing only what its end writes."""
        from ganzoo.zoo.variants import VARIANTS, resolve_config

        sized: dict[str, Any] = {"steps": self.sizes.steps, "batch_size": self.sizes.batch_size,
                                 "device": str(self.device), "log_every": self.sizes.steps, "sample_every": 0,
                                 "checkpoint_every": 0}
        if self.sizes.dcgan_width is not None and VARIANTS.get(variant).arch == "dcgan":
            sized["arch.width"] = self.sizes.dcgan_width
        return resolve_config(variant, dataset, overrides={**sized, **overrides})

    def run_dir(self, name: str) -> Path:
        self._dirs += 1
        return self.work / f"{self._dirs:03d}-{name}"

    def verdict(self, ok: bool, cuda_only: bool) -> str:
        """FAIL where what ran failed; where it passed, n/a on the CPU for a check whose point needs CUDA."""
        if not ok:
            return FAIL
        return not_applicable("cpu") if cuda_only and not self.cuda else PASS

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)


@dataclasses.dataclass
class Outcome:
    """What a check returns: its verdict, one line, its figures and, optionally, a table of its
    measurements (one row per variant or precision) for its own CSV."""

    verdict: str
    detail: str
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)
    precision: str = ""  # the arithmetic the check ran at; each table row may name its own
    table: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def run_execution(run_dir: Path) -> str:
    """How a finished run's step ran, as its throughput.json says ("cuda-graph", "eager (why)")."""
    return rundir.read_json(run_dir / rundir.THROUGHPUT)["execution"]


def run_precision(run_dir: Path) -> str:
    """The arithmetic a finished run trained at, as its throughput.json says."""
    return rundir.read_json(run_dir / rundir.THROUGHPUT)["precision"]

