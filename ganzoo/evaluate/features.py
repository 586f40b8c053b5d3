"""Feature extractors: what generated samples and the reference split are compared in, as a registry
(torch-fidelity's and stylegan2-ada's habit for metrics). Each entry says what data it applies to;
``--features auto`` takes the first registered that applies, and ``--features`` offers every entry.

- ``points`` (2D points): a fixed random Fourier feature map of a Gaussian kernel. A Frechet distance
  on the raw coordinates only compares means and covariances, so a Gaussian blob would score as well
  as the ring it covers; in feature space the mean term is a kernel MMD, which tells them apart.
- ``domain`` (labelled images): a small classifier trained by ganzoo on the dataset's labelled
  training split; cheap enough for CPU sweeps, comparable only with other ``domain`` numbers on that
  dataset; it also gives the class histogram of the samples.
- ``inception`` (any images): torch-fidelity's ``inception-v3-compat`` (the TF 2015-12-05 network
  behind published FIDs), with ganzoo's converted offline weights when they are prepared.

Image features come from torch-fidelity's registered networks run by ganzoo's own loop at a stated
precision (``ganzoo.evaluate.extraction``), every member of a population in one pass; the reference's are
extracted once and cached. Metrics are computed from the features in float64 (``ganzoo.evaluate.manifold``).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from ganzoo.core import rundir
from ganzoo.core.cache import cache_dir, file_sha256, tensor_fingerprint
from ganzoo.core.config import EvalSpec
from ganzoo.core.errors import GanzooError
from ganzoo.core.registry import Registry, method_problem
from ganzoo.data import Data
from ganzoo.evaluate.manifold import metric_values
from ganzoo.zoo.samples import generate, generate_batches

POINTS, IMAGES, LABELLED_IMAGES = "2D points", "images", "labelled images"  # what an extractor applies to
AUTO = "auto"  # the setting that takes the first registered extractor that applies
INCEPTION = "inception-v3-compat"


class FeatureExtractor:
    """Evaluates generators against a reference in its features. ``applies_to``: POINTS, IMAGES or
    LABELLED_IMAGES."""

    applies_to: ClassVar[str] = IMAGES

    @classmethod
    def applies(cls, data: Data) -> bool:
        if cls.applies_to == POINTS:
            return data.kind == "points"
        return data.kind == "image" and (cls.applies_to == IMAGES or data.y is not None)

    def evaluate(self, Gs: Sequence[nn.Module], z_dim: int, dataset: str, reference: Data, spec: EvalSpec,
                 device: torch.device, root: Any) -> list[dict[str, Any]]:
        """Each G's metrics (``manifold.metric_values``'s keys) and what the extractor adds, with
        ``extractor`` (what made the features: network and weights) and ``extractor_precision``."""
        raise NotImplementedError


def _check(cls: Any) -> str | None:
    if not (isinstance(cls, type) and issubclass(cls, FeatureExtractor)):
        return "must be a subclass of ganzoo.FeatureExtractor"
    if cls.applies_to not in (POINTS, IMAGES, LABELLED_IMAGES):
        return f"applies_to must be one of {POINTS!r}, {IMAGES!r}, {LABELLED_IMAGES!r}, got {cls.applies_to!r}"
    return method_problem(cls, FeatureExtractor, required=("evaluate",))


# In registration order: ``auto`` takes the first that applies, so the cheap, specific ones come first.
EXTRACTORS: Registry[type[FeatureExtractor]] = Registry("feature extractor", _check)
E = TypeVar("E", bound=type[FeatureExtractor])


def register_extractor(name: str) -> Callable[[E], E]:
    if name == AUTO:
        raise GanzooError(f"feature extractor name {AUTO!r} is reserved for the first that applies")
    return EXTRACTORS.decorator(name)  # type: ignore[return-value]


def choices() -> tuple[str, ...]:
    """What ``--features`` accepts: auto, then every registered extractor."""
    return (AUTO, *EXTRACTORS.in_order())


def check_spec(spec: EvalSpec) -> None:
    """An evaluation spec's settings, and its ``features`` among the registered extractors (or auto): the
    check every caller that is about to evaluate makes before training or extracting anything."""
    spec.validate()
    if spec.features not in choices():
        raise GanzooError(f"features must be one of {', '.join(choices())}, got {spec.features!r}")


def resolve_extractor(name: str, dataset: str, data: Data) -> str:
    """The extractor ``name`` names, or for ``auto`` the first registered that applies to ``data``."""
    what = POINTS if data.kind == "points" else LABELLED_IMAGES if data.y is not None else IMAGES
    if name == AUTO:
        for candidate in EXTRACTORS.in_order():
            if EXTRACTORS.get(candidate).applies(data=data):
                return candidate
        raise GanzooError(f"no registered feature extractor applies to {dataset} ({what})")
    extractor = EXTRACTORS.get(name)
    if not extractor.applies(data=data):
        fitting = [n for n in EXTRACTORS.in_order() if EXTRACTORS.get(n).applies(data=data)]
        raise GanzooError(f"--features {name} applies to {extractor.applies_to}, and {dataset} is {what}: "
                          f"use {' or '.join(fitting) or 'a plugin extractor'}")
    return name


# ---- 2D points ----------------------------------------------------------------------------------

FOURIER_DIM = 256


def points_bandwidth(reference: Data) -> float:
    """Kernel width for 2D points: ten mode standard deviations where the mixture says (wide enough
    to be smooth, far narrower than the gaps between modes), else a tenth of the median distance."""
    if reference.std is not None:
        return 10.0 * reference.std
    assert reference.x is not None
    x = reference.x[:2000].double()
    return float(torch.cdist(x, x).median()) / 10.0


def fourier_features(x: Tensor, bandwidth: float, dim: int = FOURIER_DIM, seed: int = 0) -> Tensor:
    """Random Fourier features of a Gaussian kernel of width ``bandwidth`` (Rahimi and Recht 2007),
    drawn from a fixed seed so that every run and the reference share one map."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(x.shape[1], dim, generator=g, dtype=torch.float64) / bandwidth
    b = torch.rand(dim, generator=g, dtype=torch.float64) * 2 * torch.pi
    return (2.0 / dim) ** 0.5 * torch.cos(x.double() @ w + b)


@register_extractor("points")
class PointsFeatures(FeatureExtractor):
    """FID and KID on random Fourier features of the points; precision, recall, density and coverage
    on the coordinates themselves, where nearest neighbours mean something; mode coverage."""

    applies_to = POINTS
    LAYERS = {"fid": "fourier", "kid": "fourier", "prc": "coordinates"}

    def evaluate(self, Gs: Sequence[nn.Module], z_dim: int, dataset: str, reference: Data, spec: EvalSpec,
                 device: torch.device, root: Any) -> list[dict[str, Any]]:
        from ganzoo.evaluate.modes import mode_coverage

        assert reference.x is not None
        bandwidth = points_bandwidth(reference)
        coordinates = reference.x.double()
        real = {"fourier": fourier_features(coordinates, bandwidth), "coordinates": coordinates}
        layers = {metric: layer for metric, layer in self.LAYERS.items() if metric in spec.metrics}
        results = []
        for G in Gs:
            fake = generate(G, z_dim, spec.n_samples, spec.seed, device).cpu().double()
            result = {"extractor": f"points-rff{FOURIER_DIM}@{bandwidth:.3g}",
                      "extractor_precision": "float64 Fourier features",
                      **metric_values({"fourier": fourier_features(fake, bandwidth), "coordinates": fake}, real,
                                      layers, spec.seed, equal_sets=spec.n_reference is None)}
            if reference.centers is not None and reference.std is not None:
                coverage = mode_coverage(fake, reference.centers, reference.std, rule=spec.mode_rule)
                result.update({"modes_covered": coverage.modes_covered, "n_modes": coverage.n_modes,
                               "high_quality_share": coverage.high_quality_share, "mode_rule": coverage.rule,
                               "mode_reverse_kl": coverage.reverse_kl, "mode_counts": list(coverage.counts)})
            results.append(result)
        return results


# ---- images, through a torch-fidelity network ---------------------------------------------------

def to_uint8_rgb(x: Tensor) -> Tensor:
    """[-1, 1] float images -> uint8, 3 channels (grayscale tiled), as torch-fidelity expects."""
    x = ((x.float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


@dataclasses.dataclass(frozen=True)
class Network:
    """A torch-fidelity network as an extractor uses it."""

    name: str  # its name in torch-fidelity's registry
    weights: str | None  # its weights file (None: torch-fidelity's own, downloaded)
    identity: str  # what results record as ``extractor``: the network and a hash of its weights
    classifier: Any = None  # the domain classifier's info, for the class histogram


# Members per extraction pass: their float64 features (n_samples x up to 2048 dims each) within this.
PASS_BYTES = 2**30


class NetworkFeatures(FeatureExtractor):
    """Images through a torch-fidelity network, at the spec's precision: all members' samples in one
    pass (in batches of members x batch_size), the reference's features cached; the metrics on the
    network's default layer for each."""

    def network(self, dataset: str, root: Any, device: torch.device) -> Network:
        raise NotImplementedError

    def inception_score_problem(self, network: Network) -> str | None:
        """Why this network cannot give the Inception Score, or None."""
        return "the Inception Score needs the inception extractor"

    def evaluate(self, Gs: Sequence[nn.Module], z_dim: int, dataset: str, reference: Data, spec: EvalSpec,
                 device: torch.device, root: Any) -> list[dict[str, Any]]:
        from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

        from ganzoo.evaluate.extraction import cached_extractor

        if reference.x is None:
            raise GanzooError(f"{dataset}: metrics need the reference split in memory, not streamed")
        network = self.network(dataset, root, device)
        isc_problem = self.inception_score_problem(network) if "isc" in spec.metrics else None
        layer_of = FEATURE_EXTRACTORS_REGISTRY[network.name].get_default_feature_layer_for_metric
        layers = {metric: layer_of(metric) for metric in ("fid", "kid", "prc", "isc")
                  if metric in spec.metrics and not (metric == "isc" and isc_problem)}
        extractor = cached_extractor(network.name, sorted(set(layers.values())), device, spec.precision, network.weights,
                                     image_size=tuple(reference.x.shape[-2:]))
        real = self._reference_features(extractor, dataset, reference, spec, network.identity)
        results = []
        per_pass = max(1, PASS_BYTES // (spec.n_samples * 2048 * 8))
        for first in range(0, len(Gs), per_pass):
            results += self._pass(Gs[first:first + per_pass], z_dim, reference, spec, device, extractor, network,
                                  real, layers, isc_problem)
        return results

    def _pass(self, Gs: Sequence[nn.Module], z_dim: int, reference: Data, spec: EvalSpec, device: torch.device,
              extractor: Any, network: Network, real: dict[str, Tensor], layers: dict[str, str],
              isc_problem: str | None) -> list[dict[str, Any]]:
        """One extraction pass over the samples of ``Gs``, then each one's metrics."""
        started = time.perf_counter()
        streams = [generate_batches(G, z_dim, spec.n_samples, spec.seed, device, spec.batch_size) for G in Gs]
        try:
            together = extractor(to_uint8_rgb(torch.cat(batch)) for batch in zip(*streams))
        finally:
            for stream in streams:  # zip leaves all but the first unfinished: restore each G's mode now
                stream.close()
        extraction_seconds = time.perf_counter() - started
        results = []
        for i, G in enumerate(Gs):
            rows = _member_rows(i, len(Gs), spec.n_samples, spec.batch_size)
            result: dict[str, Any] = {
                "extractor": network.identity, "extractor_precision": extractor.used,
                "extraction_images_per_second": len(Gs) * spec.n_samples / max(extraction_seconds, 1e-9),
                **metric_values({k: v[rows] for k, v in together.items()}, real, layers, spec.seed,
                                equal_sets=spec.n_reference is None)}
            if isc_problem:
                result["inception_score"] = None
                result["inception_score_note"] = f"unavailable: {isc_problem}"
            result.update(self.extras(G, z_dim, reference, spec, device, network))
            results.append(result)
        return results

    def extras(self, G: nn.Module, z_dim: int, reference: Data, spec: EvalSpec, device: torch.device,
               network: Network) -> dict[str, Any]:
        """What this extractor adds to each G's result beyond the metrics."""
        return {}

    @staticmethod
    def _reference_features(extractor: Any, dataset: str, reference: Data, spec: EvalSpec,
                            identity: str) -> dict[str, Tensor]:
        """The reference split's features, extracted once per (data, extractor weights, count,
        precision, layers) and cached as a tensor file (read with weights_only): a study evaluates
        hundreds of runs against the same reference."""
        from ganzoo.evaluate.extraction import batched

        assert reference.x is not None
        key = (f"{dataset}-{spec.split}-{len(reference.x)}-{tensor_fingerprint(reference.x)}-{identity}-"
               f"{extractor.used}-{'-'.join(extractor.layers)}")
        path = cache_dir("features") / (re.sub(r"[^A-Za-z0-9._-]+", "_", key) + ".pt")
        if path.exists():
            try:
                cached = torch.load(path, map_location="cpu", weights_only=True)
                if set(cached) == set(extractor.layers):
                    return {k: v.double() for k, v in cached.items()}
            except Exception:  # noqa: BLE001 -- a corrupt cache entry is extracted again
                pass
        features = extractor(batched(to_uint8_rgb(reference.x), spec.batch_size))
        rundir.atomic_write(path, lambda f: torch.save({k: v.float() for k, v in features.items()}, f))
        return features


def _member_rows(i: int, members: int, n: int, batch_size: int) -> Tensor:
    """Rows of member i in features extracted from batches that hold each member's next batch in
    turn (member 0's first batch_size samples, member 1's, ..., then everyone's second batch)."""
    rows, offset = [], 0
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        rows.append(torch.arange(offset + i * size, offset + (i + 1) * size))
        offset += members * size
    return torch.cat(rows)


@register_extractor("domain")
class DomainFeatures(NetworkFeatures):
    """A classifier ganzoo trains once on the dataset's labelled training split (cached with its test
    accuracy); each result also gets the classes its samples cover."""

    applies_to = LABELLED_IMAGES

    def network(self, dataset: str, root: Any, device: torch.device) -> Network:
        from ganzoo.evaluate.domain import DOMAIN_EXTRACTOR, ensure_domain_classifier

        info = ensure_domain_classifier(dataset, root=root, device=device)
        return Network(DOMAIN_EXTRACTOR, str(info.path), f"domain:{dataset}@{info.fingerprint}", info)

    def extras(self, G: nn.Module, z_dim: int, reference: Data, spec: EvalSpec, device: torch.device,
               network: Network) -> dict[str, Any]:
        from ganzoo.evaluate.domain import class_coverage, predict_classes

        info = network.classifier
        if reference.y is None:
            return {}
        samples = generate(G, z_dim, spec.n_samples, spec.seed, device, spec.batch_size)
        coverage = class_coverage(predict_classes(info, samples), reference.y, info.num_classes)
        return {"classes_covered": coverage.classes_covered, "n_classes": info.num_classes,
                "class_kl": coverage.kl_data_to_generated, "domain_test_accuracy": info.test_accuracy}


@register_extractor("inception")
class InceptionFeatures(NetworkFeatures):
    """torch-fidelity's Inception, with ganzoo's converted offline weights where ``ganzoo fid-weights``
    prepared them (they have no classifier head: no Inception Score from them)."""

    applies_to = IMAGES

    def network(self, dataset: str, root: Any, device: torch.device) -> Network:
        from ganzoo.evaluate.inception import (
            cached_inception_weights,
            has_classifier_head,
        )

        path = cached_inception_weights()
        if path is None:  # torch-fidelity downloads its own weights; offline, ganzoo fid-weights prepares them
            return Network(INCEPTION, None, INCEPTION)
        head = "" if has_classifier_head(path) else "-nohead"
        return Network(INCEPTION, str(path), f"{INCEPTION}@{file_sha256(path)[:12]}{head}")

    def inception_score_problem(self, network: Network) -> str | None:
        if network.identity.endswith("-nohead"):
            return "the offline Inception weights have no classifier head"
        return None
