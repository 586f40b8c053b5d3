"""Training-stability figures, read from what a run wrote (stats.jsonl, metrics.jsonl, status.json).

- D saturation: log points where D(x) > 0.99 and D(G(z)) < 0.01 (mean sigmoid of D's output),
  the share of them and the longest stretch, in steps. A saturated D gives G no gradient under
  the minimax loss; long stretches mark a run that stopped learning.
- Loss oscillation: the standard deviation of the step-to-step change of each loss over the
  second half of training, where a healthy run has settled.
- Gradient norms: median and maximum over the log points.
- FID during training: best and final value, comparable ones only (same extractor and count).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganzoo.core import rundir

SATURATED_REAL, SATURATED_FAKE = 0.99, 0.01


def run_stability(run_dir: Path, metrics: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The run's stability figures from its records; ``metrics``: its evaluations where the caller holds them
    already (``evaluate_run`` has just made the last one), else read from metrics.jsonl."""
    status = rundir.read_json(run_dir / rundir.STATUS)
    records = list(rundir.read_jsonl(run_dir / rundir.STATS))
    out: dict[str, Any] = {"status": status["status"], "step": status["step"], "steps": status["steps"]}
    if status["status"] == "diverged":
        out["diverged_message"] = status.get("message", "")
    out.update(_saturation(records))
    out.update(_oscillation(records))
    for key in ("d_grad_norm", "g_grad_norm"):
        values = [r[key] for r in records]
        out[f"{key}_median"] = statistics.median(values) if values else None
        out[f"{key}_max"] = max(values) if values else None
    out.update(fid_curve(list(rundir.read_jsonl(run_dir / rundir.METRICS)) if metrics is None else metrics))
    return out


def _saturation(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    flags = [r["d_real"] > SATURATED_REAL and r["d_fake"] < SATURATED_FAKE for r in records]
    longest = current = 0
    start_step = prev_step = 0
    for r, flag in zip(records, flags):
        if flag:
            if current == 0:
                start_step = prev_step
            current = r["step"] - start_step
            longest = max(longest, current)
        else:
            current = 0
        prev_step = r["step"]
    return {
        "d_saturated_share": sum(flags) / len(flags) if flags else None,
        "d_saturated_longest_steps": longest,
    }


def _oscillation(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    half = records[len(records) // 2 :]
    out: dict[str, Any] = {}
    for key in ("d_loss", "g_loss"):
        changes = [b[key] - a[key] for a, b in zip(half, half[1:])]
        out[f"{key}_oscillation"] = statistics.pstdev(changes) if len(changes) >= 2 else None
    return out


def fid_curve(metrics: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Best and final FID over the training-time evaluations made like the last one."""
    with_fid = [m for m in metrics if m.get("fid") is not None]
    if not with_fid:
        return {"final_fid": None, "best_fid": None, "best_fid_step": None, "fid_curve": []}
    last = with_fid[-1]
    same = [m for m in with_fid if all(m.get(k) == last.get(k) for k in ("extractor", "n_samples", "reference"))]
    best = min(same, key=lambda m: m["fid"])
    return {
        "final_fid": last["fid"],
        "best_fid": best["fid"],
        "best_fid_step": best.get("step"),
        "fid_extractor": last.get("extractor"),
        "fid_n_samples": last.get("n_samples"),
        "fid_curve": [[m.get("step"), m["fid"]] for m in same],
    }


def seed_summary(values: Sequence[float], confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Mean, standard deviation and a bootstrap confidence interval of one metric across seeds."""
    import numpy as np
    from scipy.stats import bootstrap

    data = np.asarray([v for v in values if v is not None], dtype=float)
    out: dict[str, Any] = {"n": len(data), "mean": None, "std": None, "ci_low": None, "ci_high": None}
    if len(data) == 0:
        return out
    out["mean"] = float(data.mean())
    out["std"] = float(data.std(ddof=1)) if len(data) > 1 else 0.0
    if len(data) > 1 and data.std() > 0:
        ci = bootstrap((data,), np.mean, confidence_level=confidence, n_resamples=2000,
                       method="percentile", rng=np.random.default_rng(seed)).confidence_interval
        out["ci_low"], out["ci_high"] = float(ci.low), float(ci.high)
    elif len(data) > 1:
        out["ci_low"] = out["ci_high"] = out["mean"]
    return out


def write_stability(run_dir: Path, metrics: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    summary = run_stability(run_dir, metrics)
    rundir.write_json(run_dir / rundir.STABILITY, summary)
    return summary
