"""What a plugin's code must return, checked where the trainer first meets it: G's samples of the data's
shape, D's one logit per sample, a loss's scalar. A mistake is named at its definition (file and line)
rather than surfacing as a torch shape error inside the step, or training on as a "completed" run
(a D returning (n, 2) broadcasts through every loss)."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import torch
from torch import Tensor, nn


class PluginError(Exception):
    """Plugin code returned what the trainer cannot use; a failed run (exit 3), like a crash inside it."""


def defined_at(obj: Any) -> str:
    """``file:line`` of a function or class, for messages; its qualified name where the source is unknown."""
    try:
        target = inspect.unwrap(obj)
        return f"{inspect.getsourcefile(target)}:{inspect.getsourcelines(target)[1]}"
    except (TypeError, OSError):
        return getattr(obj, "__qualname__", repr(obj))


def check_networks(G: nn.Module, D: nn.Module, shape: tuple[int, ...], z_dim: int, n: int, bounded: bool) -> None:
    """G maps (n, z_dim) noise to (n, *shape) samples, D maps those to n logits, all finite; with
    ``bounded`` (images in [-1, 1]) G's output stays in [-1, 1]. AssertionError saying what differs."""
    x = G(torch.randn(n, z_dim))
    assert isinstance(x, Tensor), f"G(z) returned {type(x).__name__}; expected a tensor"
    expected = (n, *shape)
    assert tuple(x.shape) == expected, (
        f"G(z) for {n} noise vectors has shape {tuple(x.shape)}; expected {expected}, one sample of "
        f"shape {shape} each"
    )
    assert bool(torch.isfinite(x).all()), "G(z) is not finite at initialisation"
    logits = D(x)
    assert isinstance(logits, Tensor), f"D(x) returned {type(logits).__name__}; expected a tensor"
    packs = n // getattr(D, "pack", 1)  # a Packed D (ganzoo.zoo.packing): one logit per pack
    unit = "sample" if packs == n else f"pack of {n // packs} samples"
    assert tuple(logits.shape) == (packs,), (
        f"D returns one logit per {unit}: D(x) for {n} samples has shape {tuple(logits.shape)}; expected ({packs},)"
    )
    assert bool(torch.isfinite(logits).all()), "D(x) is not finite at initialisation"
    if bounded:
        top = float(x.detach().abs().max())
        assert top <= 1.0, (
            f"G's output reaches {top:.4g}, but images are scaled to [-1, 1]: with bounded=True G must "
            "end in tanh"
        )


def probe_networks(arch: Any, name: str, G: nn.Module, D: nn.Module, shape: tuple[int, ...], z_dim: int,
                   bounded: bool) -> None:
    """``check_networks`` on copies of a run's freshly built G and D (their BatchNorm statistics and
    spectral-norm vectors, and the global RNG, stay as they were), before the first step; a mistake is
    a PluginError naming the architecture's ``build``."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            check_networks(copy.deepcopy(G), copy.deepcopy(D), shape, z_dim, 2 * getattr(D, "pack", 1), bounded)
        except AssertionError as e:
            raise PluginError(f"architecture {name!r} (built at {defined_at(type(arch).build)}): {e}") from None


def check_loss_value(value: Tensor, loss: Any, method: str) -> None:
    """A loss's term is a scalar (the batch's mean): a vector would be summed or broadcast silently."""
    if value.ndim != 0:
        raise PluginError(f"{type(loss).__name__}.{method} (at {defined_at(getattr(type(loss), method))}) returned "
                          f"shape {tuple(value.shape)}; a loss returns a scalar, e.g. the batch's mean")
