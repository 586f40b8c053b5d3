"""Spectral normalisation of D (Miyato et al. 2018): every weight layer's weight divided by its largest
singular value, estimated by one power iteration per training forward.

It computes what ``torch.nn.utils.parametrizations.spectral_norm`` computes (the same initial vectors
from the same draws, the same warm-up iterations, the same update order, u and v as buffers; tested
against it), but written with out-of-place operations and plain buffers, so that a population can
run it under ``vmap`` and a CUDA graph can capture it: torch's version writes through ``out=``,
which vmap cannot batch (``aten::div.out``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS = 1e-12
# torch's: 15 at construction, and one more when register_parametrization checks the parametrization
WARMUP_ITERATIONS = 16
LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


class SpectralNorm(nn.Module):
    """``layer`` with its weight W replaced by W / sigma(W) in every forward."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer
        # torch's dim: the output channels, which are dim 1 of a transposed convolution's weight
        self.dim = 1 if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) else 0
        with torch.no_grad():
            matrix = self._matrix(layer.weight)
            u = F.normalize(matrix.new_empty(matrix.shape[0]).normal_(0, 1), dim=0, eps=EPS)
            v = F.normalize(matrix.new_empty(matrix.shape[1]).normal_(0, 1), dim=0, eps=EPS)
            for _ in range(WARMUP_ITERATIONS):
                u, v = self._iterate(matrix, v)
        self.register_buffer("u", u)
        self.register_buffer("v", v)

    def _matrix(self, weight: Tensor) -> Tensor:
        return (weight.movedim(self.dim, 0) if self.dim else weight).flatten(1)

    @staticmethod
    def _iterate(matrix: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        u = F.normalize(matrix @ v, dim=0, eps=EPS)
        return u, F.normalize(matrix.t() @ u, dim=0, eps=EPS)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.layer.weight
        matrix = self._matrix(weight)
        if self.training:
            with torch.no_grad():
                u, v = self._iterate(matrix, self.v)
                self.u.copy_(u)
                self.v.copy_(v)
        # Copies: the buffers change in place at the next forward, which may come before this one's
        # backward (a gradient penalty runs D again); sigma's gradient needs them as they were here.
        u, v = self.u.clone(), self.v.clone()
        sigma = torch.dot(u, matrix @ v)
        return torch.func.functional_call(self.layer, {"weight": weight / sigma}, (x,))


def spectral_norm(module: nn.Module) -> nn.Module:
    """``module`` with every weight layer (LAYERS) inside it wrapped in SpectralNorm, in module
    order (which fixes the draws of the initial vectors); ``module`` itself if it is one."""
    if isinstance(module, LAYERS):
        return SpectralNorm(module)
    for name, child in module.named_children():
        setattr(module, name, spectral_norm(child))
    return module
