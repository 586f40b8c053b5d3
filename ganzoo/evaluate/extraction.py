"""Feature extraction for the metrics: torch-fidelity's extractors (its registry: Inception, ganzoo's
domain classifier), run by ganzoo's own loop so that the precision is ganzoo's to choose and to state.

A precision names an arithmetic and options: ``float32`` (strict: no TF32), ``tf32`` or ``bf16``
(autocast; CUDA only), then ``+channels_last`` (NHWC: cuDNN's tensor-core kernels) and ``+compile``
(torch.compile, falling back to eager if it fails; ``Extractor.used``, the precision results record,
says which ran). Features are returned as float64 and every statistic is computed from them in
float64, whatever the arithmetic of the network.

``auto`` is strict float32 on a CPU (the path published FIDs were made on) and, on CUDA, the fastest
path that keeps the FID within ``FID_BOUND`` of strict float32 on the same samples. Measured on an
H100 (issue "Evaluation at GPU speed", 10k generated and 10k real Fashion-MNIST images, the real
converted weights, relative |dFID| against strict float32): tf32 4.1e-4; tf32+channels_last 1.7e-4;
tf32+channels_last+compile 1.7e-4 at 8,706 images/s, but eager (torch-fidelity's compile filed the
compiled module as a submodule, never called); bf16+channels_last 2.75e-3 (outside).
``benchmarks/test_eval_throughput.py`` measures it again wherever it runs on a GPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganzoo.core.errors import GanzooError
from ganzoo.core.precision import tf32

FID_BOUND = 1e-3  # relative to strict float32 on the same samples: a published FID must not move
CUDA_AUTO = "tf32+channels_last+compile"


def resolve_precision(setting: str, device: torch.device) -> str:
    if setting == "auto":
        return CUDA_AUTO if device.type == "cuda" else "float32"
    arithmetic = setting.split("+")[0]
    if arithmetic != "float32" and device.type != "cuda":
        raise GanzooError(f"extraction precision {setting!r} needs a CUDA device ({arithmetic} is CUDA-only)")
    return setting


class Extractor:
    """One of torch-fidelity's registered feature extractors, at one precision, on one device."""

    def __init__(self, name: str, layers: Sequence[str], device: torch.device, precision: str,
                 weights_path: Path | str | None = None, image_size: tuple[int, int] | None = None) -> None:
        """``image_size``: (H, W) of the images it will see, where known, for +compile's warm-up batch
        (torch-fidelity's dummy is 4x4 for Inception: a second compilation at the data's size)."""
        from torch_fidelity.utils import create_feature_extractor

        self.name, self.layers, self.device = name, list(layers), device
        self.precision = resolve_precision(precision, device)
        self.arithmetic, *options = self.precision.split("+")
        kwargs = {"feature_extractor_weights_path": str(weights_path)} if weights_path is not None else {}
        # cuda=False, then .to: torch-fidelity's .cuda() would take the current device, not this one (cuda:1).
        module = create_feature_extractor(name, self.layers, cuda=False, verbose=False, **kwargs).to(device)
        if "channels_last" in options:
            module = module.to(memory_format=torch.channels_last)
        self.module = module
        self.used = self.precision  # what made the features, as results record it: a failed compile is said
        self.compile_error: str | None = None
        self.compiles = 0  # calls that compiled graphs, the warm-up's included
        self._compiled: Callable[[Tensor], tuple[Tensor, ...]] | None = None
        if "compile" in options:
            self._compile(image_size)

    @property
    def recompiles(self) -> int:
        """Compilations after the first: a new image size (the data's, where ``image_size`` did not say
        it) or a batch of 1."""
        return max(0, self.compiles - 1)

    def _compile(self, image_size: tuple[int, int] | None) -> None:
        """Compile, and run torch-fidelity's dummy input through it now: torch.compile is lazy, and
        ``used`` (in the reference cache key) must say what will run before any features are made."""
        if not self.module.can_be_compiled():
            self._eager(f"{self.name} says it cannot be compiled")
            return
        try:
            # Static sizes (a 4x4 dummy then 32x32 images must not turn H and W symbolic); the batch
            # dimension alone is marked dynamic in _forward, so every batch above 1 shares a graph.
            self._compiled = torch.compile(self.module, dynamic=False)
        except Exception as error:  # noqa: BLE001 -- e.g. a Python that torch.compile does not support
            self._eager(f"{type(error).__name__}: {error}".splitlines()[0])
            return
        dummy = self.module.get_dummy_input_for_compile().to(self.device)
        if image_size is not None:
            dummy = torch.zeros((1, dummy.shape[1], *image_size), dtype=dummy.dtype, device=self.device)
        with torch.no_grad(), self._arithmetic():  # as in __call__: grad mode and TF32 are guarded
            self._forward(dummy.repeat(2, *[1] * (dummy.dim() - 1)))  # a batch of 1 would be specialised

    def _eager(self, reason: str) -> None:
        self._compiled, self.compile_error = None, reason
        self.used = self.precision.replace("+compile", "") + " (torch.compile failed: eager)"

    def _forward(self, x: Tensor) -> tuple[Tensor, ...]:
        if self._compiled is None:
            return self.module(x)
        from torch._dynamo.utils import (
            counters,  # loaded by torch.compile already; ~2 s to import cold
        )

        torch._dynamo.maybe_mark_dynamic(x, 0)
        graphs = counters["stats"]["unique_graphs"]
        try:
            out = self._compiled(x)
        except Exception as error:  # noqa: BLE001 -- compilation happens here, on a call
            out = self.module(x)  # this batch again, eagerly: a fault of the input itself raises here
            self._eager(f"{type(error).__name__}: {error}".splitlines()[0])
            return out
        if counters["stats"]["unique_graphs"] > graphs:
            self.compiles += 1
        return out

    @contextlib.contextmanager
    def _arithmetic(self) -> Iterator[None]:
        """TF32 on or off as the precision says (torch's flags restored after), bf16 autocast for bf16."""
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.arithmetic == "bf16" else contextlib.nullcontext()
        with tf32(self.device, self.arithmetic == "tf32"), autocast:
            yield

    @torch.no_grad()
    def __call__(self, batches: Iterable[Tensor]) -> dict[str, Tensor]:
        """Features of uint8 RGB image batches (N, 3, H, W), per layer, as float64 on the CPU."""
        out: dict[str, list[Tensor]] = {layer: [] for layer in self.layers}
        with self._arithmetic():
            for batch in batches:
                # contiguous: grayscale tiled to RGB by expand has a 0 channel stride, which a compiled
                # forward guards on (the warm-up's dummy is dense): a second compilation otherwise
                features = self.module.convert_features_tuple_to_dict(
                    self._forward(batch.to(self.device, non_blocking=True).contiguous()))
                for layer in self.layers:
                    out[layer].append(features[layer].double().cpu())
        return {layer: torch.cat(parts) for layer, parts in out.items()}


_EXTRACTORS: dict[tuple[Any, ...], Extractor] = {}


def cached_extractor(name: str, layers: Sequence[str], device: torch.device, precision: str,
                     weights_path: Path | str | None = None, image_size: tuple[int, int] | None = None) -> Extractor:
    """One extractor per (network, layers, device, precision, weights) for the process: a study
    evaluates hundreds of runs, and loading Inception's weights (and compiling it) once is enough."""
    # The weights file's size and mtime too: a retrained domain classifier replaces its file in place.
    stat = Path(weights_path).stat() if weights_path is not None else None
    key = (name, tuple(layers), str(device), resolve_precision(precision, device),
           f"{weights_path}:{stat.st_size}:{stat.st_mtime_ns}" if stat else "", image_size)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = Extractor(name, layers, device, precision, weights_path, image_size)
    return _EXTRACTORS[key]


def batched(images: Tensor, batch_size: int) -> Iterator[Tensor]:
    for i in range(0, len(images), batch_size):
        yield images[i : i + batch_size]
