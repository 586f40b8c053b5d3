"""Batch sources for the trainer: device-resident tensors, or a DataLoader for large folders.

Both walk the data in seeded random epochs (without replacement, dropping the last partial
batch) and can save and restore their position, so a resumed run sees the same batches.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ganzoo.core.errors import GanzooError


def check_fits(n: int, batch_size: int, pack: int = 1) -> None:
    """One line where a D update (``batch_size`` packs of ``pack`` samples) needs more than the ``n`` there are."""
    if n < batch_size * pack:
        packs = f" packs of {pack} ({batch_size * pack:,} samples)" if pack > 1 else ""
        raise GanzooError(f"batch size {batch_size}{packs} exceeds the dataset's {n:,} samples"
                          + ("; lower batch_size or pack" if pack > 1 else ""))


class StackedBatches:
    """Batches of P members over one device-resident dataset: a batch is one gather there, with no
    host round trip and no DataLoader workers in the hot loop. Member p's epochs are drawn by its own
    generator; batch size and dataset are shared, so every member reaches an epoch's end at the same
    step and one slice serves them all.

    A step first takes its batches' indices (``plan``, on the host's side: it may start a new epoch,
    a randperm), then gathers them (``gather``, on the device): so a captured step graph replays
    with new indices copied into its static input, and draws in the same order as the eager step."""

    def __init__(self, x: Tensor, batch_size: int, generators: list[torch.Generator]) -> None:
        check_fits(len(x), batch_size)
        self.x, self.batch_size, self.generators = x, batch_size, generators
        self.orders = self._new_epoch()
        self.position = 0

    def _new_epoch(self) -> Tensor:
        return torch.stack([torch.randperm(len(self.x), device=self.x.device, generator=g) for g in self.generators])

    def plan(self, n: int) -> Tensor:
        """The indices of the next ``n`` batches of every member, shape (n, P, batch_size)."""
        b, p = self.batch_size, len(self.generators)
        if self.position + n * b <= len(self.x):  # the usual case: one view, no kernel
            idx = self.orders[:, self.position : self.position + n * b].view(p, n, b).transpose(0, 1)
            self.position += n * b
            return idx
        rows = []
        for _ in range(n):
            if self.position + b > len(self.x):
                self.orders, self.position = self._new_epoch(), 0
            rows.append(self.orders[:, self.position : self.position + b])
            self.position += b
        return torch.stack(rows)

    def gather(self, idx: Tensor) -> Tensor:
        """The samples at ``idx``: member p's batch at [p] for idx of shape (P, batch_size)."""
        return self.x[idx]


class TensorBatches(StackedBatches):
    """One run's batches: a population of one, whose plans have no member axis."""

    def __init__(self, x: Tensor, batch_size: int, generator: torch.Generator) -> None:
        super().__init__(x, batch_size, [generator])
        # index_select returns torch's default layout: on channels_last images it would hand every batch
        # to the networks as NCHW, to be converted back at the first convolution. On the images' NHWC
        # view a gather along the sample axis is NHWC by construction, whatever the device.
        self._nhwc = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        self._rows = x.permute(0, 2, 3, 1) if self._nhwc else x

    def plan(self, n: int) -> Tensor:
        """The indices of the next ``n`` batches, shape (n, batch_size)."""
        return super().plan(n)[:, 0]

    def gather(self, idx: Tensor) -> Tensor:
        rows = self._rows.index_select(0, idx)
        return rows.permute(0, 3, 1, 2) if self._nhwc else rows

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.orders[0].cpu(), "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.orders = state["order"].to(self.x.device)[None]
        self.position = int(state["position"])


class StreamBatches:
    """Images decoded by DataLoader workers, for folders too large to hold on the device."""

    def __init__(
        self, dataset: Dataset, batch_size: int, seed: int, device: torch.device, workers: int | None = None
    ) -> None:
        self.dataset, self.batch_size, self.seed, self.device = dataset, batch_size, seed, device
        self.workers = min(4, os.cpu_count() or 1) if workers is None else workers
        self.n = len(dataset)  # type: ignore[arg-type]
        check_fits(self.n, batch_size)
        self.epoch, self.taken = 0, 0
        self._iter = self._open()

    def _open(self) -> Any:
        # Each epoch's order depends on (seed, epoch) only, so a resume can skip to its position.
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        usable = self.n - self.n % self.batch_size
        indices = order[self.taken * self.batch_size : usable].tolist()
        loader = DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=indices, num_workers=self.workers,
            pin_memory=self.device.type == "cuda", drop_last=True,
        )
        return iter(loader)

    def plan(self, n: int) -> Tensor:
        """The next ``n`` batches themselves (decoded by the workers), shape (n, batch_size, ...)."""
        return torch.stack([self._next() for _ in range(n)])

    def gather(self, batch: Tensor) -> Tensor:
        return batch

    def _next(self) -> Tensor:
        try:
            batch = next(self._iter)
        except StopIteration:
            self.epoch, self.taken = self.epoch + 1, 0
            self._iter = self._open()
            batch = next(self._iter)
        self.taken += 1
        return batch.to(self.device, non_blocking=True)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "taken": self.taken}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.taken = int(state["epoch"]), int(state["taken"])
        self._iter = self._open()
