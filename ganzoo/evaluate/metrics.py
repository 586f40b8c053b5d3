"""FID, KID, precision/recall, density/coverage and IS, labelled with how they were made.

The features come from a registered feature extractor (``ganzoo.evaluate.features``: ``points``, ``domain``,
``inception``, or a plugin's); the statistics are computed from them in float64 (``ganzoo.evaluate.manifold``).
Every result carries its feature extractor, the extraction precision and both sample counts: FID is
biased in the sample count, so numbers made with different counts or extractors are never comparable.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ganzoo.core import rundir
from ganzoo.core.config import EvalSpec
from ganzoo.core.device import device_name
from ganzoo.core.errors import GanzooError
from ganzoo.data import Data
from ganzoo.evaluate.features import EXTRACTORS, check_spec, resolve_extractor


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
    check_spec(spec)
    features = resolve_extractor(spec.features, dataset, reference)
    if spec.n_reference is not None and reference.x is not None:
        keep = slice(0, spec.n_reference)
        y = reference.y[keep] if reference.y is not None else None
        reference = dataclasses.replace(reference, x=reference.x[keep], y=y)
    started = time.perf_counter()
    n_ref = len(reference)
    parts = EXTRACTORS.get(features)().evaluate(Gs=Gs, z_dim=z_dim, dataset=dataset, reference=reference, spec=spec,
                                                 device=device, root=root)
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


def parse_metrics(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(",") if m.strip())


def comparable(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two results may be compared only if made with the same extractor, sample count and reference."""
    keys: Sequence[str] = ("extractor", "n_samples", "reference", "n_reference")
    return all(a.get(k) == b.get(k) for k in keys)


def generator_record(config: Any) -> dict[str, Any]:
    """What a result says of the generator it evaluated: G's weights, or their moving average with
    this decay from this start (0: G itself), its BatchNorm statistics recomputed (ganzoo.training.averaging)."""
    if config.g_ema_decay > 0:
        return {"g_ema_decay": config.g_ema_decay, "g_ema_start": config.g_ema_start, "g_ema_batchnorm": "recomputed"}
    return {"g_ema_decay": config.g_ema_decay}


class EvalCallback:
    """Trainer callback: evaluate G, append the result to the run's metrics.jsonl. The latest
    result stays in ``last`` for callbacks after it (pruning reads it)."""

    def __init__(self, spec: EvalSpec) -> None:
        check_spec(spec)
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
        self.last = {"step": state.step, "d_updates": state.step * config.n_critic, **result, **generator_record(config)}
        rundir.append_jsonl(state.run_dir / rundir.METRICS, self.last)

    def reference(self, config: Any) -> Data:
        if self._reference is None:
            self._reference = load_reference(config, self.spec.split)
        return self._reference

    def prepare(self, config: Any) -> None:
        """Before training (the engine calls it): a reference split that cannot be loaded, or an
        extractor that does not apply to it, is named now, not at the first evaluation, after the
        training it would have scored."""
        try:
            reference = self.reference(config)
        except GanzooError as e:
            raise GanzooError(f"evaluation compares G's samples with {config.dataset}'s {self.spec.split} split, "
                              f"which cannot be loaded: {e}") from None
        resolve_extractor(self.spec.features, config.dataset, reference)

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

    from ganzoo.core.config import TrainConfig
    from ganzoo.core.device import resolve_device
    from ganzoo.core.plugins import load_plugin
    from ganzoo.evaluate.stability import write_stability
    from ganzoo.zoo.variants import build_networks

    run_dir = Path(run_dir)
    config = TrainConfig.from_dict(rundir.read_json(run_dir / rundir.CONFIG))
    for plugin in config.plugins:
        load_plugin(plugin)
    check_spec(spec)
    torch_device = resolve_device(device)
    reference = load_reference(config, spec.split)
    G, _ = build_networks(config, reference.sample_shape, reference.bounded)
    state = rundir.load_checkpoint(run_dir / rundir.CHECKPOINT)
    G.load_state_dict(state["G_ema" if config.g_ema_decay > 0 else "G"])  # what the run itself evaluated
    G.to(torch_device)
    result = {"step": int(state["step"]), "d_updates": int(state["step"]) * config.n_critic,
              **evaluate(G, config.z_dim, config.dataset, reference, spec, torch_device, config.data_root),
              **generator_record(config)}
    earlier = list(rundir.read_jsonl(run_dir / rundir.METRICS))
    rundir.append_jsonl(run_dir / rundir.METRICS, result)
    if (run_dir / rundir.STATUS).exists():
        write_stability(run_dir, [*earlier, result])  # the evaluations in hand, not read back
    return result
