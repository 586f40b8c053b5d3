"""Members of a population and the single runs they must follow (tests/training/test_population.py says
why trajectories are compared in float64, and with which tolerance)."""

from __future__ import annotations

import torch

from ganzoo import VARIANTS, resolve_config

STEPS = 30
U32 = 2.0**-24  # float32 unit roundoff (float64: u64 = 2**-53 = 1.1e-16)

# Float64 trajectories (30 steps, up to 150 critic updates). Noise: while no activation flips, these
# runs amplify per-op rounding by A <~ 1e2 (float32 with smoothed kinks: 6e-6 = 1e2 u32), so members
# and single runs differ by <~ 1e2 u64 = 1e-14. Signal: the smallest real discrepancy known here,
# Adam's settings rounded to float32 (relative 3e-8), moves a member's weights by 4e-8 or more. 1e-9
# is 1e5 above the one and 40x below the other; the CPU's rounding is all in the noise.
TRAJECTORY_TOLERANCE = 1e-9


def member(variant: str, seed: int, lr: float, beta1: float, **extra: object):
    overrides = {"steps": STEPS, "batch_size": 32, "device": "cpu", "log_every": 10, "sample_every": 0,
                 "checkpoint_every": 0, "seed": seed, "adam.lr": lr, "adam.beta1": beta1,
                 # the single runs compared against use torch's plain Adam, the formula StackedAdam uses
                 "fast.fused_adam": False, **extra}
    if VARIANTS.get(variant).arch == "dcgan":
        overrides["arch.width"] = 8
    return resolve_config(variant, "digits", overrides=overrides)


def max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((x.double() - y.double()).abs().max().item()
               for (_, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()))
