from __future__ import annotations

import json

import pytest

from ganzoo import GanzooError, TrainConfig, resolve_config
from ganzoo.core.config import apply_overrides


def test_json_round_trip_is_exact():
    config = resolve_config("wgan-gp", "digits", overrides={"penalty.weight": 3.0, "plugins": ["x.py"]})
    again = TrainConfig.from_dict(json.loads(config.to_json()))
    assert again == config and again.plugins == ("x.py",)


def test_variant_defaults_applied():
    config = resolve_config("wgan-gp", "digits")
    assert config.n_critic == 5 and config.g_adam.lr == config.d_adam.lr == 1e-4
    assert config.arch_params == {"d_norm": "layer"}


def test_arch_swap_drops_the_variants_arch_settings():
    config = resolve_config("wgan-gp", "ring8", arch="mlp")
    assert config.arch == "mlp" and config.arch_params == {} and config.loss == "wasserstein"
    assert config.penalty == "gp" and config.penalty_params == {"weight": 10.0}  # not an arch setting: kept


def test_adam_shorthand_sets_both_networks():
    config = apply_overrides(resolve_config("nsgan", "ring8"), {"adam.lr": 1e-3, "d_adam.beta2": 0.9})
    assert config.g_adam.lr == config.d_adam.lr == 1e-3
    assert config.d_adam.beta2 == 0.9 and config.g_adam.beta2 == 0.999


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"adam.lr": -1e-3}, "learning rate"),
        ({"steps": 0}, "steps must be > 0"),
        ({"adam.beta1": 1.0}, "beta1"),
        ({"stepz": 3}, "unknown setting 'stepz'"),
        ({"g_adam.momentum": 0.1}, "unknown setting 'g_adam.momentum'; known: g_adam.beta1, g_adam.beta2, g_adam.lr"),
        ({"adam.lrr": 0.1}, "unknown setting 'adam.lrr'; known: adam.beta1, adam.beta2, adam.lr"),
        ({"fast.graph": "on"}, "unknown setting 'fast.graph'; known: fast.channels_last, fast.compile"),
        ({"loss.gp_wieght": 1.0}, "unknown setting 'loss.gp_wieght': loss 'wasserstein' takes no settings"),
        ({"arch.width": "wide"}, "expected an integer"),
        ({"batch_size": 6.5}, "expected an integer"),
        ({"bf16": "yes"}, "true or false"),
        ({"checkpoint_every": 150}, "multiple of log_every"),
    ],
)
def test_bad_settings_refused(overrides, message):
    with pytest.raises(GanzooError, match=message):
        resolve_config("wgan-gp", "digits", overrides=overrides)


def test_unknown_variant_lists_known():
    with pytest.raises(GanzooError, match="unknown variant 'nope'; known: .*nsgan"):
        resolve_config("nope", "digits")
