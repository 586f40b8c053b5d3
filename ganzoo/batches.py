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

from ganzoo.errors import GanzooError


class TensorBatches:
    """The whole dataset lives on the device; a batch is one index_select there, with no host
    round trip and no DataLoader workers in the hot loop."""

    def __init__(self, x: Tensor, batch_size: int, generator: torch.Generator) -> None:
        if len(x) < batch_size:
            raise GanzooError(f"batch size {batch_size} exceeds the dataset's {len(x)} samples")
        self.x, self.batch_size, self.generator = x, batch_size, generator
        self.order = self._new_epoch()
        self.position = 0

    def _new_epoch(self) -> Tensor:
        return torch.randperm(len(self.x), device=self.x.device, generator=self.generator)

    def next(self) -> Tensor:
        if self.position + self.batch_size > len(self.x):
            self.order, self.position = self._new_epoch(), 0
        idx = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return self.x.index_select(0, idx)

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order.cpu(), "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order = state["order"].to(self.x.device)
        self.position = int(state["position"])


class StreamBatches:
    """Images decoded by DataLoader workers, for folders too large to hold on the device."""

    def __init__(
        self, dataset: Dataset, batch_size: int, seed: int, device: torch.device, workers: int | None = None
    ) -> None:
        self.dataset, self.batch_size, self.seed, self.device = dataset, batch_size, seed, device
        self.workers = min(4, os.cpu_count() or 1) if workers is None else workers
        self.n = len(dataset)  # type: ignore[arg-type]
        if self.n < batch_size:
            raise GanzooError(f"batch size {batch_size} exceeds the dataset's {self.n} samples")
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

    def next(self) -> Tensor:
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
