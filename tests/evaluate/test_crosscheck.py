"""ganzoo's metrics against independent implementations on the same inputs.

- FID (Inception): torchmetrics' FrechetInceptionDistance, given the same weights file, with its own
  statistics and matrix square root and antialias=False (the TF1-style resize torch-fidelity does).
- FID (domain and points extractors): a float64 numpy Frechet distance on the same features.
- Density and coverage: the ``prdc`` package of the paper's authors (Naeem et al. 2020), and sets
  with known answers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganzoo.core.config import EvalSpec
from ganzoo.data import load_dataset
from ganzoo.evaluate.extraction import Extractor, batched
from ganzoo.evaluate.features import (
    INCEPTION,
    fourier_features,
    points_bandwidth,
    to_uint8_rgb,
)
from ganzoo.evaluate.manifold import density_coverage, metric_values
from ganzoo.evaluate.metrics import evaluate
from ganzoo.zoo.samples import generate
from ganzoo.zoo.variants import build_architecture, resolve_config


def numpy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), all float64. The symmetric form
    has real non-negative eigenvalues, so the trace of its square root is a sum of sqrt(eigh)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.sqrt(np.clip(middle, 0, None)).sum())


U64 = 2.0**-53


def frechet_tolerance(a: np.ndarray, b: np.ndarray) -> float:
    """How far two correct float64 evaluations of the Frechet distance may differ. Each eigenvalue of
    the d x d product comes with an absolute error of about d u ||S|| (backward-stable eigh), and the
    trace term sums their square roots: an eigenvalue near zero turns an error e into sqrt(e). So the
    two sides may differ by up to 2 d sqrt(d u ||S||), ||S|| the larger covariance norm. A formula
    mistake (N against N - 1 in a covariance: 1/N relative; a factor in the cross term) is far larger."""
    d = a.shape[1]
    norm = max(np.linalg.norm(np.cov(a, rowvar=False), 2), np.linalg.norm(np.cov(b, rowvar=False), 2))
    return 2 * d * np.sqrt(d * U64 * norm)


def images(n: int, seed: int, shift: float) -> torch.Tensor:
    """uint8 RGB 32x32 images: digits tiled to three channels, brightened by ``shift`` and noised."""
    x = load_dataset("digits", "train").x[:n]
    x = torch.nn.functional.interpolate(x, size=32, mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(seed)
    return to_uint8_rgb((x + shift + 0.2 * torch.randn(x.shape, generator=g)).clamp(-1, 1))


def test_inception_fid_agrees_with_torchmetrics(tmp_path) -> None:
    """100 + 100 images on the CPU (each side's Inception forwards are the test's whole cost, and the
    agreement below does not depend on the count). Both sides run torch-fidelity's Inception on the same
    weights, so the features agree to float32 rounding of one forward (~1e-6 relative); the statistics are
    float64 on both sides. What differs is the matrix square root of a rank-deficient product (99 samples
    in 2048 dimensions): scipy's sqrtm here, eigenvalues there; each of ~100 non-zero eigenvalues carries
    ~1e-12 of absolute error in float64, far below 1e-4 of an FID of order 10-100."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    from ganzoo.evaluate.inception import prepare_inception_weights

    weights = prepare_inception_weights()
    real, fake = images(100, 0, 0.0), images(100, 1, 0.3)
    extractor = Extractor(INCEPTION, ["2048"], torch.device("cpu"), "float32", weights)
    ours = metric_values(extractor(batched(fake, 50)), extractor(batched(real, 50)), {"fid": "2048"}, seed=0)
    theirs = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights), antialias=False)
    theirs = theirs.double()
    for batch in batched(real, 50):
        theirs.update(batch, real=True)
    for batch in batched(fake, 50):
        theirs.update(batch, real=False)
    reference = float(theirs.compute())
    assert reference > 1.0
    assert ours["fid"] == pytest.approx(reference, rel=1e-4)


def test_domain_fid_is_the_float64_frechet_distance_of_its_features() -> None:
    data = load_dataset("digits", "test")
    config = resolve_config("dcgan", "digits", overrides={"arch.width": 8})
    torch.manual_seed(0)
    G, _ = build_architecture(config).build(data.sample_shape, config.z_dim, data.bounded)
    spec = EvalSpec(features="domain", n_samples=400, metrics=("fid",), batch_size=200)
    result = evaluate(G, config.z_dim, "digits", data, spec, torch.device("cpu"))
    from ganzoo.evaluate.domain import DOMAIN_EXTRACTOR, ensure_domain_classifier

    info = ensure_domain_classifier("digits", device=torch.device("cpu"))
    extractor = Extractor(DOMAIN_EXTRACTOR, ["features"], torch.device("cpu"), "float32", info.path)
    fake = extractor(to_uint8_rgb(b) for b in [generate(G, config.z_dim, 400, spec.seed, torch.device("cpu"), 200)])
    real = extractor(batched(to_uint8_rgb(data.x), 200))
    a, b = fake["features"].numpy(), real["features"].numpy()
    tolerance = frechet_tolerance(a, b)
    assert tolerance < 1e-3 * result["fid"], "the bound is tight enough to mean something"
    assert result["fid"] == pytest.approx(numpy_frechet(a, b), abs=tolerance)


def test_points_fid_is_the_float64_frechet_distance_of_its_features() -> None:
    data = load_dataset("ring8", "test")
    config = resolve_config("nsgan", "ring8")
    torch.manual_seed(0)
    G, _ = build_architecture(config).build(data.sample_shape, config.z_dim, data.bounded)
    spec = EvalSpec(features="points", n_samples=500)
    result = evaluate(G, config.z_dim, "ring8", data, spec, torch.device("cpu"))
    bandwidth = points_bandwidth(data)
    fake = fourier_features(generate(G, config.z_dim, 500, spec.seed, torch.device("cpu")).double(), bandwidth)
    real = fourier_features(data.x.double(), bandwidth)
    a, b = fake.numpy(), real.numpy()
    tolerance = frechet_tolerance(a, b)
    assert tolerance < 1e-3 * result["fid"], "the bound is tight enough to mean something"
    assert result["fid"] == pytest.approx(numpy_frechet(a, b), abs=tolerance)


def test_density_and_coverage_agree_with_prdc() -> None:
    from prdc import compute_prdc

    g = np.random.default_rng(0)
    real = g.normal(size=(300, 16))
    for fake in (g.normal(size=(250, 16)), g.normal(loc=0.5, scale=1.5, size=(250, 16))):
        ours = density_coverage(torch.from_numpy(real), torch.from_numpy(fake), k=5, chunk=64)
        theirs = compute_prdc(real, fake, nearest_k=5)
        # Counts of strict comparisons on the same float64 distances (up to their last bit): exact
        # unless a distance sits within ~1e-15 of a radius, which continuous data never does.
        assert ours["density"] == pytest.approx(theirs["density"], abs=1e-12)
        assert ours["coverage"] == pytest.approx(theirs["coverage"], abs=1e-12)


def test_density_and_coverage_on_sets_with_known_answers() -> None:
    real = torch.randn(200, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # The same set: each real ball holds its own sample and its k-1 nearest (the k-th is on the
    # boundary, outside a strict ball), so density is k N / (k N) = 1 and every ball is covered.
    assert density_coverage(real, real.clone(), k=5) == {"density": 1.0, "coverage": 1.0}
    # Far away: no generated sample in any ball.
    assert density_coverage(real, real + 100.0, k=5) == {"density": 0.0, "coverage": 0.0}
    # One generated sample at each of the first 50 real samples: those balls (and only balls
    # reaching them) are covered; coverage counts at least those 50 out of 200.
    partial = density_coverage(real, real[:50].clone(), k=5)
    assert 0.25 <= partial["coverage"] < 1.0 and partial["density"] > 0.0


def test_image_metrics_include_density_and_coverage_with_precision_and_recall() -> None:
    data = load_dataset("digits", "test")
    config = resolve_config("dcgan", "digits", overrides={"arch.width": 8})
    torch.manual_seed(0)
    G, _ = build_architecture(config).build(data.sample_shape, config.z_dim, data.bounded)
    spec = EvalSpec(features="domain", n_samples=300, metrics=("fid", "prc"))
    result = evaluate(G, config.z_dim, "digits", data, spec, torch.device("cpu"))
    assert {"precision", "recall", "density", "coverage"} <= set(result)
    assert 0.0 <= result["coverage"] <= 1.0 and result["density"] >= 0.0
    assert result["extractor_precision"] == "float32" and result["extraction_images_per_second"] > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_default_cuda_extraction_keeps_strict_float32s_fid(inception_weights) -> None:
    from ganzoo.evaluate.extraction import CUDA_AUTO, FID_BOUND

    weights, cuda = inception_weights, torch.device("cuda")  # the cached weights, or skipped: no download here
    real, fake = images(1000, 0, 0.0), images(1000, 1, 0.3)
    fids = {}
    for precision in ("float32", "auto"):
        extractor = Extractor(INCEPTION, ["2048"], cuda, precision, weights)
        assert extractor.used == (CUDA_AUTO if precision == "auto" else "float32")
        fids[precision] = metric_values(extractor(batched(fake, 250)), extractor(batched(real, 250)), {"fid": "2048"},
                                        seed=0)["fid"]
    assert fids["auto"] == pytest.approx(fids["float32"], rel=FID_BOUND)
