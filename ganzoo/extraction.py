"""Feature extraction for the metrics: torch-fidelity's extractors (its registry: Inception, ganzoo's
domain classifier), run by ganzoo's own loop so that the precision is ganzoo's to choose and to state.

A precision names an arithmetic and options: ``float32`` (strict: no TF32), ``tf32`` or ``bf16``
(autocast; CUDA only), then ``+channels_last`` (NHWC: cuDNN's tensor-core kernels) and ``+compile``
(torch.compile, falling back to eager if it fails). Features are returned as float64 and every
statistic is computed from them in float64, whatever the arithmetic of the network.

``auto`` is strict float32 on a CPU (the path published FIDs were made on) and, on CUDA, the fastest
path that keeps the FID within ``FID_BOUND`` of strict float32 on the same samples. Measured on an
H100 (issue "Evaluation at GPU speed", 10k generated and 10k real Fashion-MNIST images, the real
converted weights, relative |dFID| against strict float32): tf32 4.1e-4; tf32+channels_last 1.7e-4;
tf32+channels_last+compile 1.7e-4 at 8,706 images/s; bf16+channels_last 2.75e-3 (outside).
``benchmarks/test_eval_throughput.py`` measures it again wherever it runs on a GPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor

from ganzoo.errors import GanzooError
from ganzoo.precision import tf32

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
                 weights_path: Path | str | None = None) -> None:
        from torch_fidelity.utils import create_feature_extractor

        self.name, self.layers, self.device = name, list(layers), device
        self.precision = resolve_precision(precision, device)
        self.arithmetic, *options = self.precision.split("+")
        kwargs = {"feature_extractor_weights_path": str(weights_path)} if weights_path is not None else {}
        module = create_feature_extractor(name, self.layers, cuda=device.type == "cuda", verbose=False, **kwargs)
        if "channels_last" in options:
            module = module.to(memory_format=torch.channels_last)
        if "compile" in options and module.can_be_compiled():
            from torch_fidelity.utils_torch import torch_maybe_compile

            with self._arithmetic():  # replaces forward in place, or leaves it (and says nothing) on failure
                torch_maybe_compile(module, module.get_dummy_input_for_compile().to(device), False)
        self.compiled = hasattr(module, "forward_pure")
        self.module = module
        # What the features were made with, as results record it: a compile that failed is said.
        self.used = self.precision if self.compiled or "compile" not in options else (
            self.precision.replace("+compile", "") + " (torch.compile failed: eager)")

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
                features = self.module.convert_features_tuple_to_dict(self.module(batch.to(self.device, non_blocking=True)))
                for layer in self.layers:
                    out[layer].append(features[layer].double().cpu())
        return {layer: torch.cat(parts) for layer, parts in out.items()}


_EXTRACTORS: dict[tuple[str, tuple[str, ...], str, str, str], Extractor] = {}


def cached_extractor(name: str, layers: Sequence[str], device: torch.device, precision: str,
                     weights_path: Path | str | None = None) -> Extractor:
    """One extractor per (network, layers, device, precision, weights) for the process: a study
    evaluates hundreds of runs, and loading Inception's weights (and compiling it) once is enough."""
    # The weights file's size and mtime too: a retrained domain classifier replaces its file in place.
    stat = Path(weights_path).stat() if weights_path is not None else None
    key = (name, tuple(layers), str(device), resolve_precision(precision, device),
           f"{weights_path}:{stat.st_size}:{stat.st_mtime_ns}" if stat else "")
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = Extractor(name, layers, device, precision, weights_path)
    return _EXTRACTORS[key]


def batched(images: Tensor, batch_size: int) -> Iterator[Tensor]:
    for i in range(0, len(images), batch_size):
        yield images[i : i + batch_size]
