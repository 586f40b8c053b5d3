"""FID, KID and precision/recall through torch-fidelity, labelled with how they were made.

Every result carries its feature extractor and both sample counts: FID is biased in the sample
count, so numbers made with different counts or extractors are never comparable.

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

import contextlib
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo import rundir
from ganzoo.cache import cache_dir, file_sha256, tensor_fingerprint
from ganzoo.config import EvalSpec
from ganzoo.data import Data
from ganzoo.errors import GanzooError

INCEPTION = "inception-v3-compat"


def to_uint8_rgb(x: Tensor) -> Tensor:
    """[-1, 1] float images -> uint8, 3 channels (grayscale tiled), as torch-fidelity expects."""
    x = ((x.float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class _RealImages(torch.utils.data.Dataset):
    def __init__(self, x: Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> Tensor:
        return to_uint8_rgb(self.x[i : i + 1])[0]


def _generator_input(G: nn.Module, z_dim: int, device: torch.device) -> Any:
    from torch_fidelity.generative_model_base import GenerativeModelBase

    class GeneratorInput(GenerativeModelBase):
        """G as torch-fidelity's generative model: noise in, uint8 RGB images out."""

        def __init__(self) -> None:
            super().__init__()
            self.G = G

        @property
        def z_size(self) -> int:
            return z_dim

        @property
        def z_type(self) -> str:
            return "normal"

        @property
        def num_classes(self) -> int:
            return 0

        def forward(self, z: Tensor) -> Tensor:
            # A bf16 extraction (EvalSpec.bf16) must not change the samples it measures.
            with torch.autocast(device.type, enabled=False):
                return to_uint8_rgb(self.G(z.to(device)))

    return GeneratorInput()


@torch.no_grad()
def generate(G: nn.Module, z_dim: int, n: int, seed: int, device: torch.device, batch_size: int = 500) -> Tensor:
    """``n`` samples from G in eval mode from noise seeded by ``seed``; G's mode is restored."""
    was_training = G.training
    G.eval()
    gen = torch.Generator(device).manual_seed(seed)
    try:
        out = [
            G(torch.randn(min(batch_size, n - i), z_dim, device=device, generator=gen)).float()
            for i in range(0, n, batch_size)
        ]
    finally:
        G.train(was_training)
    return torch.cat(out)


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
    spec.validate()
    features = spec.resolve_features(dataset, reference)
    if spec.n_reference is not None and reference.x is not None:
        keep = slice(0, spec.n_reference)
        y = reference.y[keep] if reference.y is not None else None
        reference = dataclasses.replace(reference, x=reference.x[keep], y=y)
    started = time.perf_counter()
    n_ref = len(reference)
    result: dict[str, Any] = {"features": features, "n_samples": spec.n_samples, "reference": f"{dataset}/{spec.split}"}
    if features == "points":
        result.update(_points_metrics(G, z_dim, reference, spec, device))
    else:
        if reference.x is None:
            raise GanzooError(f"{dataset}: metrics need the reference split in memory, not streamed")
        result.update(_image_metrics(G, z_dim, dataset, reference, spec, device, root, features))
    seconds = time.perf_counter() - started
    result.update({
        "n_reference": n_ref,
        "eval_seconds": seconds,
        # Generated images per second of evaluation; the first evaluation against a reference also
        # extracts (and caches) the reference features, which this includes.
        "eval_images_per_second": spec.n_samples / seconds,
        "device": device_name(device),
        "torch": torch.__version__,
    })
    return result


def _image_metrics(
    G: nn.Module, z_dim: int, dataset: str, reference: Data, spec: EvalSpec, device: torch.device,
    root: Any, features: str,
) -> dict[str, Any]:
    import torch_fidelity

    assert reference.x is not None
    extractor, extractor_id, domain = _extractor_args(features, dataset, root, device)
    n_ref = len(reference.x)
    wants = set(spec.metrics)
    no_head = extractor_id.endswith("-nohead")
    isc = "isc" in wants and features == "inception" and not no_head
    # Reference statistics are cached under a key that includes a hash of the data and of the
    # extractor's weights: torch-fidelity's own cache would trust the name alone.
    # bf16 reference statistics are kept apart from float32 ones: each side is extracted alike.
    precision = "-bf16" if spec.bf16 else ""
    ref_key = (f"{dataset}-{spec.split}-{n_ref}-{tensor_fingerprint(reference.x)}-{extractor_id}{precision}"
               .replace(":", "_").replace("@", "_"))
    if spec.bf16 and device.type != "cuda":
        raise GanzooError("bf16 feature extraction needs a CUDA device")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if spec.bf16 else contextlib.nullcontext()
    was_training = G.training
    G.eval()
    try:
        with autocast:
            out = torch_fidelity.calculate_metrics(
                input1=_generator_input(G, z_dim, device),
                input1_model_num_samples=spec.n_samples,
                input2=_RealImages(reference.x),
                input2_cache_name=ref_key,
                cache_root=str(cache_dir("fidelity")),
                fid="fid" in wants,
                kid="kid" in wants,
                prc="prc" in wants,
                isc=isc,
                kid_subset_size=min(1000, spec.n_samples, n_ref),
                batch_size=spec.batch_size,
                cuda=device.type == "cuda",
                rng_seed=spec.seed,
                save_cpu_ram=True,  # no DataLoader workers: the reference images are already in memory
                verbose=False,
                feature_extractor_compile=spec.compile,
                **extractor,
            )
    finally:
        G.train(was_training)
    result: dict[str, Any] = {"extractor": extractor_id, "extractor_dtype": "bf16-autocast" if spec.bf16 else "float32",
                              "extractor_compile": spec.compile}
    result.update(_rename(out))
    if "isc" in wants and not isc:
        result["inception_score"] = None
        result["inception_score_note"] = (
            "unavailable: the offline Inception weights have no classifier head" if no_head
            else "unavailable: the Inception Score needs the inception extractor"
        )
    if domain is not None and reference.y is not None:
        from ganzoo.domain import class_coverage, predict_classes

        samples = generate(G, z_dim, spec.n_samples, spec.seed, device)
        coverage = class_coverage(predict_classes(domain, samples), reference.y, domain.num_classes)
        result.update({
            "classes_covered": coverage.classes_covered,
            "n_classes": domain.num_classes,
            "class_kl": coverage.kl_data_to_generated,
            "domain_test_accuracy": domain.test_accuracy,
        })
    return result


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
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    from ganzoo.modes import mode_coverage

    assert reference.x is not None
    fake = generate(G, z_dim, spec.n_samples, spec.seed, device).cpu().double()
    real = reference.x.double()
    bandwidth = points_bandwidth(reference)
    fake_f, real_f = fourier_features(fake, bandwidth), fourier_features(real, bandwidth)
    out: dict[str, Any] = {}
    if "fid" in spec.metrics:
        out.update(fid_statistics_to_metric(fid_features_to_statistics(fake_f), fid_features_to_statistics(real_f), False))
    if "kid" in spec.metrics:
        n = min(1000, len(fake), len(real))
        out.update(kid_features_to_metric(fake_f, real_f, kid_subset_size=n, rng_seed=spec.seed, verbose=False))
    if "prc" in spec.metrics:  # nearest neighbours are meaningful on the coordinates themselves
        out.update(prc_features_to_metric(fake.float(), real.float(), verbose=False))
    result = {"extractor": f"points-rff{FOURIER_DIM}@{bandwidth:.3g}"}
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
}


def _rename(out: dict[str, Any]) -> dict[str, Any]:
    return {_KEYS[k]: float(v) for k, v in out.items() if k in _KEYS}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def parse_metrics(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(",") if m.strip())


def comparable(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two results may be compared only if made with the same extractor, sample count and reference."""
    keys: Sequence[str] = ("extractor", "n_samples", "reference", "n_reference")
    return all(a.get(k) == b.get(k) for k in keys)


class EvalCallback:
    """Trainer callback: evaluate G, append the result to the run's metrics.jsonl. The latest
    result stays in ``last`` for callbacks after it (pruning reads it)."""

    def __init__(self, spec: EvalSpec) -> None:
        spec.validate()
        self.spec = spec
        self.last: dict[str, Any] | None = None
        self._reference: Data | None = None

    def __call__(self, state: Any) -> None:
        config = state.config
        if self._reference is None:
            self._reference = load_reference(config, self.spec.split)
        result = evaluate(state.G, config.z_dim, config.dataset, self._reference, self.spec, state.device, config.data_root)
        self.last = {"step": state.step, **result}
        rundir.append_jsonl(state.run_dir / rundir.METRICS, self.last)


def load_reference(config: Any, split: str) -> Data:
    from ganzoo.data import load_dataset

    return load_dataset(config.dataset, split, root=config.data_root, resolution=config.resolution)


def evaluate_run(run_dir: Any, spec: EvalSpec, device: str = "auto") -> dict[str, Any]:
    """Evaluate the generator saved in a run directory; append to its metrics.jsonl and refresh
    its stability.json. Never retrains."""
    from pathlib import Path

    from ganzoo.config import TrainConfig
    from ganzoo.plugins import load_plugin
    from ganzoo.stability import write_stability
    from ganzoo.trainer import resolve_device
    from ganzoo.variants import build_architecture

    run_dir = Path(run_dir)
    config = TrainConfig.from_dict(rundir.read_json(run_dir / rundir.CONFIG))
    for plugin in config.plugins:
        load_plugin(plugin)
    spec.validate()
    torch_device = resolve_device(device)
    reference = load_reference(config, spec.split)
    G, _ = build_architecture(config).build(reference.sample_shape, config.z_dim, reference.bounded)
    state = rundir.load_checkpoint(run_dir / rundir.CHECKPOINT)
    G.load_state_dict(state["G"])
    G.to(torch_device)
    result = {"step": int(state["step"]), **evaluate(G, config.z_dim, config.dataset, reference, spec, torch_device, config.data_root)}
    rundir.append_jsonl(run_dir / rundir.METRICS, result)
    if (run_dir / rundir.STATUS).exists():
        write_stability(run_dir)
    return result
