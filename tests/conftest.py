from __future__ import annotations

import dataclasses

import pytest
import torch

import ganzoo.trainer
from ganzoo.data import Data


@pytest.fixture
def registered():
    """Register entries for one test and remove them afterwards, so tests do not leak into the
    registry that the contract tests parametrize over."""
    added: list[tuple[object, str]] = []

    def register(registry, name: str, item):
        registry.register(name, item)
        added.append((registry, name))
        return item

    yield register
    for registry, name in reversed(added):
        registry.unregister(name)


@pytest.fixture
def float64(monkeypatch: pytest.MonkeyPatch):
    """Population and single runs in float64: modules, data, noise, Adam, losses and statistics."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # modules, noise, Adam's state, the logged statistics
    load = ganzoo.trainer.load_dataset

    def load_float64(*args: object, **kwargs: object) -> Data:
        data = load(*args, **kwargs)
        return dataclasses.replace(data, x=data.x.double())

    monkeypatch.setattr(ganzoo.trainer, "load_dataset", load_float64)  # single runs' and populations' data
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
