"""FID, KID, precision/recall, density/coverage and IS, labelled with how they were made.

Features come from torch-fidelity's registered extractors run by ganzoo's own loop at a stated
precision (ganzoo.extraction); the statistics are torch-fidelity's from-features functions, in
float64, and density/coverage ganzoo.manifold's. Every result carries its feature extractor, the
extraction precision and both sample counts: FID is biased in the sample count, so numbers made with
different counts or extractors are never comparable.

Extractors:
- ``inception``: torch-fidelity's ``inception-v3-compat`` (the TF 2015-12-05 network behind
  published FIDs), with ganzoo's converted offline weights when they are prepared.
- ``domain``: a small classifier trained by ganzoo on the dataset's labelled training split;
  cheap enough for CPU sweeps, comparable only with other ``domain`` numbers on that dataset.
- ``points``: 2D mixtures, lifted by a fixed random Fourier feature map of a Gaussian kernel before
  torch-fidelity's statistics functions. A Frechet distance on the raw coordinates only compares
  means and covariances, so a Gaussian blob would score as well as the ring it covers; in feature
  space the mean term is a kernel MMD, which tells them apart.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo import rundir
from ganzoo.cache import cache_dir, file_sha256, tensor_fingerprint
from ganzoo.config import EvalSpec
from ganzoo.data import Data
from ganzoo.device import device_name
from ganzoo.errors import GanzooError
from ganzoo.samples import generate, generate_batches

INCEPTION = "inception-v3-compat"


def to_uint8_rgb(x: Tensor) -> Tensor:
    """[-1, 1] float images -> uint8, 3 channels (grayscale tiled), as torch-fidelity expects."""
    x = ((x.float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _extractor_args(features: str, dataset: str, root: Any, device: torch.device) -> tuple[dict[str, Any], str, Any]:
    """torch-fidelity arguments for an extractor, a name that identifies its weights, and the
    domain classifier's info (or None)."""
    if features == "inception":
        from ganzoo.inception import cached_inception_weights, has_classifier_head

        path = cached_inception_weights()
        if path is None:
            # torch-fidelity downloads its own weights; offline, ganzoo fid-weights prepares them.
            return {"feature_extractor": INCEPTION}, INCEPTION, None
        return (
            {"feature_extractor": INCEPTION, "feature_extractor_weights_path": str(path)},
            f"{INCEPTION}@{file_sha256(path)[:12]}" + ("" if has_classifier_head(path) else "-nohead"),
            None,
        )
    from ganzoo.domain import DOMAIN_EXTRACTOR, ensure_domain_classifier

    info = ensure_domain_classifier(dataset, root=root, device=device)
    return (
        {"feature_extractor": DOMAIN_EXTRACTOR, "feature_extractor_weights_path": str(info.path)},
        f"domain:{dataset}@{info.fingerprint}",
        info,
    )


def evaluate(
    G: nn.Module,
    z_dim: int,
    dataset: str,
    reference: Data,
    spec: EvalSpec,
    device: torch.device,
    root: Any = None,
) -> dict[str, Any]:
    """Metrics of G's samples against ``reference`` (normally the dataset's test split)."""
    return evaluate_together([G], z_dim, dataset, reference, spec, device, root)[0]


def evaluate_together(
    Gs: Sequence[nn.Module],
    z_dim: int,
    dataset: str,
    reference: Data,
    spec: EvalSpec,
    device: torch.device,
    root: Any = None,
) -> list[dict[str, Any]]:
    """``evaluate`` of several generators (a population's members) at once: each draws the samples
    ``evaluate`` would draw for it, and on images all their samples go through the extractor in one
    pass, in batches of ``len(Gs) x spec.batch_size`` images."""
    spec.validate()
    features = spec.resolve_features(dataset, reference)
    if spec.n_reference is not None and reference.x is not None:
        keep = slice(0, spec.n_reference)
        y = reference.y[keep] if reference.y is not None else None
        reference = dataclasses.replace(reference, x=reference.x[keep], y=y)
    started = time.perf_counter()
    n_ref = len(reference)
    if features == "points":
        parts = [_points_metrics(G, z_dim, reference, spec, device) for G in Gs]
    else:
        if reference.x is None:
            raise GanzooError(f"{dataset}: metrics need the reference split in memory, not streamed")
        parts = _image_metrics(Gs, z_dim, dataset, reference, spec, device, root, features)
    seconds = time.perf_counter() - started
    common = {
        "features": features, "n_samples": spec.n_samples, "reference": f"{dataset}/{spec.split}",
        "n_reference": n_ref,
        "eval_seconds": seconds / len(Gs),  # each member's share of one pass
        # Generated images per second of evaluation; the first evaluation against a reference also
        # extracts (and caches) the reference features, which this includes.
        "eval_images_per_second": len(Gs) * spec.n_samples / seconds,
        "device": device_name(device),
        "torch": torch.__version__,
    }
    if len(Gs) > 1:
        common["evaluated_together"] = len(Gs)
    return [{**common, **part} for part in parts]


# Members per extraction pass: their float64 features (n_samples x up to 2048 dims each) within this.
PASS_BYTES = 2**30


def _image_metrics(
    Gs: Sequence[nn.Module], z_dim: int, dataset: str, reference: Data, spec: EvalSpec, device: torch.device,
    root: Any, features: str,
) -> list[dict[str, Any]]:
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    from ganzoo.extraction import cached_extractor

    assert reference.x is not None
    extractor_args, extractor_id, domain = _extractor_args(features, dataset, root, device)
    name = extractor_args["feature_extractor"]
    wants = set(spec.metrics)
    no_head = extractor_id.endswith("-nohead")
    isc = "isc" in wants and features == "inception" and not no_head
    layer_of = FEATURE_EXTRACTORS_REGISTRY[name].get_default_feature_layer_for_metric
    layers = {metric: layer_of(metric) for metric in ("fid", "kid", "prc", "isc") if metric in wants}
    if not isc:
        layers.pop("isc", None)
    extractor = cached_extractor(name, sorted(set(layers.values())), device, spec.precision,
                                 extractor_args.get("feature_extractor_weights_path"))
    real = _reference_features(extractor, dataset, reference, spec, extractor_id)
    results = []
    per_pass = max(1, PASS_BYTES // (spec.n_samples * 2048 * 8))
    for first in range(0, len(Gs), per_pass):
        results += _image_pass(Gs[first:first + per_pass], z_dim, reference, spec, device, extractor, extractor_id,
                               real, layers, wants, isc, no_head, domain)
    return results


def _image_pass(Gs: Sequence[nn.Module], z_dim: int, reference: Data, spec: EvalSpec, device: torch.device,
                extractor: Any, extractor_id: str, real: dict[str, Tensor], layers: dict[str, str], wants: set[str],
                isc: bool, no_head: bool, domain: Any) -> list[dict[str, Any]]:
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
        out = feature_metrics({k: v[rows] for k, v in together.items()}, real, layers, spec)
        result: dict[str, Any] = {"extractor": extractor_id, "extractor_precision": extractor.used,
                                  "extraction_images_per_second": len(Gs) * spec.n_samples / max(extraction_seconds, 1e-9)}
        result.update(_rename(out))
        if "isc" in wants and not isc:
            result["inception_score"] = None
            result["inception_score_note"] = (
                "unavailable: the offline Inception weights have no classifier head" if no_head
                else "unavailable: the Inception Score needs the inception extractor"
            )
        if domain is not None and reference.y is not None:
            from ganzoo.domain import class_coverage, predict_classes

            samples = generate(G, z_dim, spec.n_samples, spec.seed, device, spec.batch_size)
            coverage = class_coverage(predict_classes(domain, samples), reference.y, domain.num_classes)
            result.update({
                "classes_covered": coverage.classes_covered,
                "n_classes": domain.num_classes,
                "class_kl": coverage.kl_data_to_generated,
                "domain_test_accuracy": domain.test_accuracy,
            })
        results.append(result)
    return results


def _member_rows(i: int, members: int, n: int, batch_size: int) -> Tensor:
    """Rows of member i in features extracted from batches that hold each member's next batch in
    turn (member 0's first batch_size samples, member 1's, ..., then everyone's second batch)."""
    rows, offset = [], 0
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        rows.append(torch.arange(offset + i * size, offset + (i + 1) * size))
        offset += members * size
    return torch.cat(rows)


def feature_metrics(fake: dict[str, Tensor], real: dict[str, Tensor], layers: dict[str, str],
                    spec: EvalSpec) -> dict[str, Any]:
    """The metrics ``layers`` names ({metric: feature layer}) from generated and real features (float64):
    FID from float64 statistics, KID, precision and recall (torch-fidelity's), density and coverage
    (ganzoo.manifold), the Inception Score. FID is ganzoo.manifold's float64 Frechet distance; keys are
    torch-fidelity's (see ``_rename``)."""
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    from ganzoo.manifold import density_coverage, frechet_distance

    out: dict[str, Any] = {}
    if "fid" in layers:
        out["frechet_inception_distance"] = frechet_distance(fake[layers["fid"]], real[layers["fid"]])
    if "kid" in layers:
        layer = layers["kid"]
        size = min(1000, len(fake[layer]), len(real[layer]))
        out.update(kid_features_to_metric(fake[layer], real[layer], kid_subset_size=size, rng_seed=spec.seed,
                                          verbose=False))
    if "prc" in layers:
        layer = layers["prc"]
        out.update(prc_features_to_metric(fake[layer].float(), real[layer].float(), verbose=False))
        out.update(density_coverage(real[layer], fake[layer]))
    if "isc" in layers:
        out.update(isc_features_to_metric(fake[layers["isc"]], rng_seed=spec.seed))
    return out


def _reference_features(extractor: Any, dataset: str, reference: Data, spec: EvalSpec,
                        extractor_id: str) -> dict[str, Tensor]:
    """The reference split's features, extracted once per (data, extractor weights, count, precision,
    layers) and cached as a tensor file (read with weights_only): a study evaluates hundreds of runs
    against the same reference."""
    from ganzoo.extraction import batched

    assert reference.x is not None
    key = (f"{dataset}-{spec.split}-{len(reference.x)}-{tensor_fingerprint(reference.x)}-{extractor_id}-"
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


def _points_metrics(G: nn.Module, z_dim: int, reference: Data, spec: EvalSpec, device: torch.device) -> dict[str, Any]:
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    from ganzoo.manifold import density_coverage, frechet_distance
    from ganzoo.modes import mode_coverage

    assert reference.x is not None
    fake = generate(G, z_dim, spec.n_samples, spec.seed, device).cpu().double()
    real = reference.x.double()
    bandwidth = points_bandwidth(reference)
    fake_f, real_f = fourier_features(fake, bandwidth), fourier_features(real, bandwidth)
    out: dict[str, Any] = {}
    if "fid" in spec.metrics:
        out["frechet_inception_distance"] = frechet_distance(fake_f, real_f)
    if "kid" in spec.metrics:
        n = min(1000, len(fake), len(real))
        out.update(kid_features_to_metric(fake_f, real_f, kid_subset_size=n, rng_seed=spec.seed, verbose=False))
    if "prc" in spec.metrics:  # nearest neighbours are meaningful on the coordinates themselves
        out.update(prc_features_to_metric(fake.float(), real.float(), verbose=False))
        out.update(density_coverage(real, fake))
    result = {"extractor": f"points-rff{FOURIER_DIM}@{bandwidth:.3g}", "extractor_precision": "float64 Fourier features"}
    result.update(_rename(out))
    if reference.centers is not None and reference.std is not None:
        coverage = mode_coverage(fake, reference.centers, reference.std)
        result.update({
            "modes_covered": coverage.modes_covered,
            "n_modes": coverage.n_modes,
            "high_quality_share": coverage.high_quality_share,
        })
    return result


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
}


def _rename(out: dict[str, Any]) -> dict[str, Any]:
    return {_KEYS[k]: float(v) for k, v in out.items() if k in _KEYS}


def parse_metrics(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(",") if m.strip())


def comparable(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two results may be compared only if made with the same extractor, sample count and reference."""
    keys: Sequence[str] = ("extractor", "n_samples", "reference", "n_reference")
    return all(a.get(k) == b.get(k) for k in keys)


def generator_record(config: Any) -> dict[str, Any]:
    """What a result says of the generator it evaluated: G's weights, or their moving average with
    this decay (0: G itself)."""
    return {"g_ema_decay": config.g_ema_decay}


class EvalCallback:
    """Trainer callback: evaluate G, append the result to the run's metrics.jsonl. The latest
    result stays in ``last`` for callbacks after it (pruning reads it)."""

    def __init__(self, spec: EvalSpec) -> None:
        spec.validate()
        self.spec = spec
        self.last: dict[str, Any] | None = None
        self._reference: Data | None = None
        self._prefetched: tuple[int, dict[str, Any]] | None = None  # (step, result) of a shared pass

    def __call__(self, state: Any) -> None:
        config = state.config
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and prefetched[0] == state.step:
            result = prefetched[1]
        else:
            result = evaluate(state.G, config.z_dim, config.dataset, self.reference(config), self.spec, state.device,
                              config.data_root)
        self.last = {"step": state.step, **result, **generator_record(config)}
        rundir.append_jsonl(state.run_dir / rundir.METRICS, self.last)

    def reference(self, config: Any) -> Data:
        if self._reference is None:
            self._reference = load_reference(config, self.spec.split)
        return self._reference

    @staticmethod
    def evaluate_together(pairs: Sequence[tuple[EvalCallback, Any]]) -> None:
        """Evaluate the members behind ``pairs`` ((callback, its member's TrainState)) in one pass
        (``evaluate_together``) where they share a spec and dataset; each callback then records its
        own result when the engine calls it at that step."""
        groups: dict[str, list[tuple[EvalCallback, Any]]] = {}
        for callback, state in pairs:
            key = f"{state.config.dataset}|{state.config.data_root}|{state.config.resolution}|{callback.spec}"
            groups.setdefault(key, []).append((callback, state))
        for group in groups.values():
            if len(group) < 2:
                continue
            first, state = group[0]
            config = state.config
            results = evaluate_together([s.G for _, s in group], config.z_dim, config.dataset, first.reference(config),
                                        first.spec, state.device, config.data_root)
            for (callback, member), result in zip(group, results):
                callback._prefetched = (member.step, result)


def load_reference(config: Any, split: str) -> Data:
    from ganzoo.data import load_dataset

    return load_dataset(config.dataset, split, root=config.data_root, resolution=config.resolution)


def evaluate_run(run_dir: Any, spec: EvalSpec, device: str = "auto") -> dict[str, Any]:
    """Evaluate the generator saved in a run directory; append to its metrics.jsonl and refresh
    its stability.json. Never retrains."""
    from pathlib import Path

    from ganzoo.config import TrainConfig
    from ganzoo.device import resolve_device
    from ganzoo.plugins import load_plugin
    from ganzoo.stability import write_stability
    from ganzoo.variants import build_networks

    run_dir = Path(run_dir)
    config = TrainConfig.from_dict(rundir.read_json(run_dir / rundir.CONFIG))
    for plugin in config.plugins:
        load_plugin(plugin)
    spec.validate()
    torch_device = resolve_device(device)
    reference = load_reference(config, spec.split)
    G, _ = build_networks(config, reference.sample_shape, reference.bounded)
    state = rundir.load_checkpoint(run_dir / rundir.CHECKPOINT)
    G.load_state_dict(state["G_ema" if config.g_ema_decay > 0 else "G"])  # what the run itself evaluated
    G.to(torch_device)
    result = {"step": int(state["step"]),
              **evaluate(G, config.z_dim, config.dataset, reference, spec, torch_device, config.data_root),
              **generator_record(config)}
    rundir.append_jsonl(run_dir / rundir.METRICS, result)
    if (run_dir / rundir.STATUS).exists():
        write_stability(run_dir)
    return result
