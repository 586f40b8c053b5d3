"""Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
Models"), beside torch-fidelity's precision and recall.

Each real sample gets a ball reaching its k-th nearest real neighbour. Density counts, per generated
sample, the real balls it falls in, divided by k (1 on average when the two sets match; above 1 where
samples crowd the real modes); coverage is the share of real balls that hold at least one generated
sample (diversity, robust to real outliers, unlike recall). k = 5, the paper's choice. Distances are
taken in float64 in chunks, so 10k x 10k Inception features need a few hundred MB, not 800.
"""

from __future__ import annotations

import torch
from torch import Tensor

NEAREST_K = 5


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def kth_neighbour_distances(x: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """Each row's distance to its k-th nearest other row (itself excluded, at distance 0)."""
    return torch.cat([torch.cdist(x[part], x).kthvalue(k + 1, dim=1).values for part in _chunks(len(x), chunk)])


def density_coverage(real: Tensor, fake: Tensor, k: int = NEAREST_K, chunk: int = 1024) -> dict[str, float]:
    """Density and coverage of ``fake`` against ``real`` (rows are samples' features)."""
    real, fake = real.double(), fake.double()
    if len(real) <= k:
        raise ValueError(f"density and coverage need more than k={k} real samples, got {len(real)}")
    radii = kth_neighbour_distances(real, k, chunk)
    inside = torch.zeros(len(fake), dtype=torch.float64)
    covered = torch.zeros(len(real), dtype=torch.bool)
    for part in _chunks(len(real), chunk):
        distances = torch.cdist(real[part], fake)  # (chunk of real, fake)
        within = distances < radii[part, None]
        inside += within.sum(0)
        covered[part] = within.any(1)
    return {"density": float(inside.sum() / (k * len(fake))), "coverage": float(covered.double().mean())}


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """The Frechet distance between Gaussians fitted to two feature sets (rows are samples), in
    float64: |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2). The symmetric form has real,
    non-negative eigenvalues (clipped at 0 against rounding), so its trace root is a sum of square
    roots from ``eigvalsh``, accurate to float64 rounding; scipy's ``sqrtm`` of the non-symmetric
    product S_a S_b, which torch-fidelity uses, loses ~1e-8 of it on rank-deficient covariances."""
    a, b = a.double(), b.double()
    s_a, s_b = torch.cov(a.T), torch.cov(b.T)
    w, v = torch.linalg.eigh(s_a)
    root = (v * w.clamp_min(0).sqrt()) @ v.T
    middle = torch.linalg.eigvalsh(root @ s_b @ root)
    mean_term = (a.mean(0) - b.mean(0)).square().sum()
    return float(mean_term + s_a.trace() + s_b.trace() - 2 * middle.clamp_min(0).sqrt().sum())
