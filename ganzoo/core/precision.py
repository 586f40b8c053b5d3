"""TF32 on CUDA as a scope: training and feature extraction each state their own arithmetic, and
torch's global flags are put back afterwards so that neither leaks into the other."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def tf32(device: torch.device, enabled: bool) -> Iterator[None]:
    """TF32 matmuls and convolutions on (``enabled``) or off (strict float32) on a CUDA ``device``
    for the scope; nothing on other devices."""
    if device.type != "cuda":
        yield
        return
    backends = torch.backends
    saved = backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32
    backends.cuda.matmul.allow_tf32 = backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32 = saved
