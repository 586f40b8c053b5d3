"""Capture safety, found on a CPU: the operators of a step that would sync a CUDA stream with the host.

A CUDA graph records kernels. An operator that needs a value on the host (``.item()``, ``bool(t)``,
``float(t)``) or whose output's shape depends on the values (``nonzero``, boolean-mask indexing,
``unique``, ``masked_select``) stops the stream mid-step, which capture forbids: the run falls back
to the eager step (``ganzoo.training.graphs``), several times slower for a small GAN. On CUDA, torch's sync
debug mode finds these; a CPU has no stream to sync, so ``host_syncs`` runs a step under a dispatch
mode that sees every operator (and a function mode for the copies between host and device, of which
a CPU makes no operator: ``.tolist()``, ``.cpu()``, ``torch.tensor(data, device=...)``) and names
each syncing one with the line of code that called it. ``ganzoo check`` and the contract
tests run one step of every variant, loss and penalty through it.

Optimiser steps are not inspected: on a CPU torch's Adam takes its plain path, which reads the step
count on the host; on CUDA ganzoo runs it capturable wherever the step is to be captured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import traceback
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

# Operators that wait for the device: a value read back, or an output sized by the values.
SYNCING_OPS = frozenset({
    "_local_scalar_dense",  # .item(), float(t), int(t), bool(t), `if t:`
    "nonzero", "masked_select", "_unique", "_unique2", "unique_dim", "unique_consecutive", "unique_dim_consecutive",
    "equal", "allclose", "is_nonzero", "bincount",
})
# Tensor methods that copy to the host: on a CPU no operator runs, on CUDA they sync.
SYNCING_METHODS = frozenset({"tolist", "numpy", "cpu", "__array__"})

_TORCH = Path(torch.__file__).resolve().parent
_HERE = Path(__file__).resolve()


@dataclasses.dataclass(frozen=True)
class HostSync:
    """One syncing operation: the operator and the innermost line outside torch that called it."""

    op: str
    where: str  # "path/to/file.py:LINE" (relative to the working directory under it), or "" for torch's own

    def __str__(self) -> str:
        return f"{self.op} at {self.where}" if self.where else self.op


def _syncs(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The name of a syncing operator, or None. Indexing syncs where an index is a boolean mask (but
    a masked assignment of one value is a masked_fill); repeat_interleave where its repeats are a
    tensor and no output size is given; histc where its range is to be read off the data."""
    name = func.overloadpacket.__name__
    if name in SYNCING_OPS:
        return name
    if name in ("index", "index_put", "index_put_", "_index_put_impl_"):
        indices = args[1] if len(args) > 1 else ()
        one_value = name != "index" and len(args) > 2 and isinstance(args[2], torch.Tensor) and args[2].numel() == 1
        if not one_value and any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
                                 for i in indices or ()):
            return f"{name} with a boolean mask"
    if name == "repeat_interleave" and func._overloadname.startswith("Tensor") and kwargs.get("output_size") is None:
        return "repeat_interleave without output_size"
    if name == "histc":
        low, high = (list(args[2:4]) + [kwargs.get("min", 0), kwargs.get("max", 0)][len(args[2:4]):])
        if low == high:
            return "histc without a range"
    return None


def _device_move(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a ``Tensor.to``/``Tensor.cuda`` call names a device (not only a dtype)."""
    if name == "cuda":
        return True
    named = [*args[1:], kwargs.get("device"), kwargs.get("other")]
    return any(isinstance(a, (torch.device, str, torch.Tensor)) for a in named if a is not None)


def _caller() -> str:
    """The innermost frame of the stack outside torch and this module: the code that asked."""
    for frame in reversed(traceback.extract_stack()):
        path = Path(frame.filename).resolve()
        if path != _HERE and _TORCH not in path.parents:
            try:
                shown = path.relative_to(Path.cwd())
            except ValueError:
                shown = path
            return f"{shown}:{frame.lineno}"
    return ""


class _Operators(TorchDispatchMode):
    def __init__(self, found: list[HostSync], paused: list[bool]) -> None:
        super().__init__()
        self.found, self.paused = found, paused

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if not self.paused[0] and (name := _syncs(func, args, kwargs)) is not None:
            self.found.append(HostSync(f"aten::{name}", _caller()))
        return func(*args, **kwargs)


class _Methods(TorchFunctionMode):
    """Copies between host and device, which a CPU runs as no operator: to the host (``.tolist()``,
    ``.cpu()``, ``.to("cpu")``), and host data to the device (``torch.tensor(data, device=...)``,
    ``t.new_tensor(data)``, or a tensor made from host data in the step and then moved with ``.to``
    or ``.cuda()``)."""

    def __init__(self, found: list[HostSync], paused: list[bool]) -> None:
        super().__init__()
        self.found, self.paused = found, paused
        self.host_made: dict[int, weakref.ref[torch.Tensor]] = {}  # made from host data, device unsaid (by id)

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        out = func(*args, **kwargs)
        if self.paused[0]:
            return out
        data = args[0] if args else kwargs.get("data")
        from_host = not isinstance(data, torch.Tensor)
        if name in SYNCING_METHODS or (name == "to" and "cpu" in (*args[1:2], kwargs.get("device"))):
            self.found.append(HostSync(f"Tensor.{name}" + ('("cpu")' if name == "to" else ""), _caller()))
        elif name in ("tensor", "as_tensor") and from_host:
            if kwargs.get("device") is not None:
                self.found.append(HostSync(f"torch.{name}(..., device=...) of host data", _caller()))
            elif isinstance(out, torch.Tensor):
                self.host_made[id(out)] = weakref.ref(out)
        elif name == "new_tensor" and not isinstance(args[1] if len(args) > 1 else kwargs.get("data"), torch.Tensor):
            self.found.append(HostSync("Tensor.new_tensor of host data", _caller()))
        elif name in ("to", "cuda") and args and self._host_made(args[0]) and _device_move(name, args, kwargs):
            self.found.append(HostSync(f"Tensor.{name} of a tensor made from host data in the step", _caller()))
        return out

    def _host_made(self, t: Any) -> bool:
        ref = self.host_made.get(id(t))
        return ref is not None and ref() is t


@contextlib.contextmanager
def _optimisers_paused(paused: list[bool]) -> Iterator[None]:
    """``paused`` set while any optimiser steps (torch's global step hooks)."""
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )

    def pause(*_: Any) -> None:
        paused[0] = True

    def resume(*_: Any) -> None:
        paused[0] = False

    handles = [register_optimizer_step_pre_hook(pause), register_optimizer_step_post_hook(resume)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def host_syncs(step: Callable[[], Any]) -> list[HostSync]:
    """Every operation of ``step`` (run once, on the CPU) that would sync a CUDA stream with the host."""
    found: list[HostSync] = []
    paused = [False]
    with _optimisers_paused(paused), _Methods(found, paused), _Operators(found, paused):
        step()
    return found
