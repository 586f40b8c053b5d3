"""Metrics from features, in float64: the Frechet distance (FID) in symmetric form, density and
coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models"), and
torch-fidelity's KID, precision and recall and Inception Score from the same features
(``metric_values``).

Each real sample gets a ball reaching its k-th nearest real neighbour. Density counts, per generated
sample, the real balls it falls in, divided by k (1 on average when the two sets match; above 1 where
samples crowd the real modes); coverage is the share of real balls that hold at least one generated
sample (diversity, robust to real outliers, unlike recall). k = 5, the paper's choice. Distances are
taken in float64 in chunks, so 10k x 10k Inception features need a few hundred MB, not 800.
"""

from __future__ import annotations

from typing import Any

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


# torch-fidelity's result keys -> ganzoo's
_KEYS = {
    "frechet_inception_distance": "fid",
    "kernel_inception_distance_mean": "kid_mean",
    "kernel_inception_distance_std": "kid_std",
    "precision": "precision",
    "recall": "recall",
    "f_score": "f_score",
    "inception_score_mean": "inception_score",
    "inception_score_std": "inception_score_std",
    "density": "density",
    "coverage": "coverage",
    "prc_n_generated": "prc_n_generated",
    "prc_n_reference": "prc_n_reference",
}


def equal_size(fake: Tensor, real: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """The larger of two feature sets cut to the smaller's size by a seeded random subset. k-NN radii
    shrink as a set grows: precision and density of n generated samples against N > n references are
    biased down, recall and coverage up (Kynkaanniemi et al. 2019 and Naeem et al. 2020 use equal sets)."""
    n = min(len(fake), len(real))
    generator = torch.Generator().manual_seed(seed)

    def cut(x: Tensor) -> Tensor:
        return x if len(x) == n else x[torch.randperm(len(x), generator=generator)[:n]]

    return cut(fake), cut(real)


def metric_values(fake: dict[str, Tensor], real: dict[str, Tensor], layers: dict[str, str], seed: int,
                  equal_sets: bool = True) -> dict[str, float]:
    """The metrics ``layers`` names ({metric: feature layer}) from generated and real features (float64):
    fid (frechet_distance), kid_mean and kid_std, precision, recall and f_score (torch-fidelity's) with
    density and coverage, inception_score and its std. ``seed`` seeds KID's subsets and IS's splits.
    Precision, recall, density and coverage compare sets of equal size (``equal_sets``; else the sets
    as given) and record both sizes (prc_n_generated, prc_n_reference)."""
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    out: dict[str, Any] = {}
    if "fid" in layers:
        out["frechet_inception_distance"] = frechet_distance(fake[layers["fid"]], real[layers["fid"]])
    if "kid" in layers:
        layer = layers["kid"]
        size = min(1000, len(fake[layer]), len(real[layer]))
        out.update(kid_features_to_metric(fake[layer], real[layer], kid_subset_size=size, rng_seed=seed, verbose=False))
    if "prc" in layers:
        generated, reference = fake[layers["prc"]], real[layers["prc"]]
        if equal_sets:
            generated, reference = equal_size(generated, reference, seed)
        out.update(prc_features_to_metric(generated.float(), reference.float(), verbose=False))
        out.update(density_coverage(reference, generated))
        out.update({"prc_n_generated": len(generated), "prc_n_reference": len(reference)})
    if "isc" in layers:
        out.update(isc_features_to_metric(fake[layers["isc"]], rng_seed=seed))
    return {_KEYS[k]: v if isinstance(v, int) else float(v) for k, v in out.items() if k in _KEYS}
