"""Mode coverage on Gaussian mixtures, as the papers that report it count it.

A sample is high quality when it lies within ``n_std`` standard deviations of its nearest mode centre
(3, as VEEGAN and PacGAN). How a mode counts as covered is a rule, named in every result:

- ``one-sample`` (the default): at least one high-quality sample is nearest to it. VEEGAN (Srivastava
  et al. 2017) counts "the number of mixture components whose mean is nearest to at least one high
  quality sample" (akashgit/VEEGAN index.md; its notebook counts the keys of a Counter of the
  high-quality samples' modes), and PacGAN (Lin et al. 2018) the modes with a non-zero count
  (fjxmlzn/PacGAN synthetic_data_experiments/PacGAN/pacgan/extensions.py: ``len(numpy.nonzero(
  detail_of_coverage)[0])``), both on 2,500 samples.
- ``one-percent``: at least 1% of all samples are high-quality samples at it (25 of 2,500), which a
  handful of stray points passing by does not reach; ganzoo's rule before 0.2. Its counts cannot be
  set beside the papers'.

With the count come the high-quality share, the high-quality samples per mode (``counts``) and
PacGAN's reverse KL: KL(p || u) between the distribution p of the high-quality samples over the
modes and the uniform u over the K modes, which is log K - H(p) (its code records the entropy
H(p) of ``detail_of_coverage``, extensions.py, beside the count): 0 when every mode has its
share, log K when one mode has all; undefined without a high-quality sample.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from ganzoo.core.config import MODE_RULES

_ONE_PERCENT = 0.01


@dataclasses.dataclass(frozen=True)
class ModeCoverage:
    modes_covered: int
    n_modes: int
    high_quality_share: float
    counts: tuple[int, ...]  # high-quality samples per mode
    rule: str

    @property
    def reverse_kl(self) -> float | None:
        """KL(p || uniform) of the high-quality samples' distribution p over the modes (nats), None
        without a high-quality sample."""
        total = sum(self.counts)
        if total == 0:
            return None
        p = torch.tensor(self.counts, dtype=torch.float64) / total
        return float((p * (p * len(self.counts)).log()).nan_to_num(0.0).sum())  # 0 log 0 = 0


def mode_coverage(samples: Tensor, centers: Tensor, std: float, n_std: float = 3.0,
                  rule: str = "one-sample") -> ModeCoverage:
    if rule not in MODE_RULES:
        raise ValueError(f"mode rule must be one of {', '.join(MODE_RULES)}, got {rule!r}")
    samples, centers = samples.detach().float().cpu(), centers.float().cpu()
    distance, nearest = torch.cdist(samples, centers).min(dim=1)
    good = distance <= n_std * std  # VEEGAN's <= (PacGAN's <: the same but on a set of measure zero)
    counts = torch.bincount(nearest[good], minlength=len(centers))
    least = 1.0 if rule == "one-sample" else max(1.0, _ONE_PERCENT * len(samples))
    covered = int((counts >= least).sum())
    share = float(good.float().mean()) if len(samples) else 0.0
    return ModeCoverage(covered, len(centers), share, tuple(int(c) for c in counts), rule)
