"""Pixels as every image loader gives them: uint8 to float32 in [-1, 1], and antialiased resizing."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def resize(x: Tensor, resolution: int, chunk: int = 4096) -> Tensor:
    # Chunked so the antialiased passes never allocate scratch buffers for all 60k images at once.
    out = torch.empty((x.shape[0], x.shape[1], resolution, resolution), dtype=torch.float32)
    for start in range(0, x.shape[0], chunk):
        part = torch.nn.functional.interpolate(
            x[start : start + chunk], size=(resolution, resolution),
            mode="bilinear", antialias=True, align_corners=False,
        )
        out[start : start + chunk] = part.clamp_(-1.0, 1.0)
    return out


def from_uint8(images: np.ndarray) -> Tensor:
    """uint8 (N, C, H, W) -> float32 in [-1, 1]; 0 and 255 map exactly to -1 and 1."""
    return torch.from_numpy(np.asarray(images, dtype=np.float32)).div_(127.5).sub_(1.0)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
