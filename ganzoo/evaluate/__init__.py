"""Scoring a generator: feature extractors (a registry: points, domain, inception, a plugin's), the metrics
computed from their features in float64 (FID, KID, precision/recall, density/coverage, IS), mode coverage
on mixtures, and a run's stability. Every result says what made it: extractor, precision, sample counts.

- ``features``: the extractor registry and the built-in extractors; ``extraction``: running a network at a
  stated precision; ``inception``: the offline Inception weights; ``domain``: ganzoo's domain classifier;
- ``manifold``: the metrics from features; ``modes``: mode coverage; ``metrics``: evaluating G, a run
  (``ganzoo eval``) and the training callback; ``stability``: divergence, oscillation, the FID curve.

Reference page: ``ganzoo/evaluate/README.md``.
"""

from __future__ import annotations

from ganzoo.evaluate.features import (
           EXTRACTORS,
           FeatureExtractor,
           check_spec,
           register_extractor,
           resolve_extractor,
)
from ganzoo.evaluate.metrics import (
           EvalCallback,
           evaluate,
           evaluate_run,
           evaluate_together,
)
from ganzoo.evaluate.stability import seed_summary, write_stability

__all__ = ["EXTRACTORS", "EvalCallback", "FeatureExtractor", "check_spec", "evaluate", "evaluate_run",
           "evaluate_together", "register_extractor", "resolve_extractor", "seed_summary", "write_stability"]
