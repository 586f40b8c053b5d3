"""Checks every registered variant gets for free: a new variant is covered by registering it."""

from __future__ import annotations

import json

import pytest
import torch

from ganzoo import ARCHITECTURES, VARIANTS, TrainConfig, Trainer, resolve_config
from ganzoo.rundir import read_jsonl
from ganzoo.variants import build_architecture

SHAPES = {"ring8": (2,), "digits": (1, 8, 8)}


def datasets_for(variant: str) -> list[str]:
    arch = build_architecture(resolve_config(variant, "digits"))
    return [name for name, shape in SHAPES.items() if arch.check(shape) is None]


CASES = [(v, d) for v in VARIANTS for d in datasets_for(v)]


def tiny(variant: str, dataset: str, **overrides) -> TrainConfig:
    base = {"batch_size": 16, "steps": 2, "log_every": 1, "sample_every": 0, "checkpoint_every": 0, "device": "cpu"}
    return resolve_config(variant, dataset, overrides={**base, **overrides})


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_trains_on_some_builtin_data(variant):
    assert datasets_for(variant), f"{variant} can train on none of {list(SHAPES)}"


@pytest.mark.parametrize("variant, dataset", CASES)
def test_shapes_and_output_range(variant, dataset):
    config = tiny(variant, dataset)
    arch = build_architecture(config)
    torch.manual_seed(0)
    G, D = arch.build(SHAPES[dataset], config.z_dim, bounded=dataset != "ring8")
    x = G(torch.randn(5, config.z_dim))
    assert x.shape == (5, *SHAPES[dataset])
    assert D(x).shape == (5,), "D returns one logit per sample"
    if dataset != "ring8":
        assert x.abs().max() <= 1.0, "G's output range must match images scaled to [-1, 1]"


@pytest.mark.parametrize("variant, dataset", CASES)
def test_one_step_changes_both_networks_with_finite_losses(variant, dataset, tmp_path):
    trainer = Trainer(tiny(variant, dataset), tmp_path, progress=False)
    before_g = [p.detach().clone() for p in trainer.G.parameters()]
    before_d = [p.detach().clone() for p in trainer.D.parameters()]
    result = trainer.run()
    assert result.status == "completed" and result.step == 2
    assert any(not torch.equal(a, b) for a, b in zip(before_g, trainer.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, trainer.D.parameters()))
    records = list(read_jsonl(tmp_path / "stats.jsonl"))
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        for key in ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm", "images_per_second"):
            assert torch.isfinite(torch.tensor(r[key])), key


@pytest.mark.parametrize("variant, dataset", CASES)
def test_config_json_round_trip(variant, dataset, tmp_path):
    config = tiny(variant, dataset)
    Trainer(config, tmp_path, progress=False).run()
    assert TrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == config


ARCH_SHAPES = [(2,), (1, 8, 8), (1, 28, 28), (3, 32, 32)]


@pytest.mark.parametrize("arch_name", list(ARCHITECTURES))
def test_every_architecture_builds_for_the_shapes_it_accepts(arch_name):
    arch = ARCHITECTURES.get(arch_name)()
    accepted = [shape for shape in ARCH_SHAPES if arch.check(shape) is None]
    assert accepted, f"{arch_name} accepts none of {ARCH_SHAPES}"
    for shape in accepted:
        torch.manual_seed(0)
        G, D = arch.build(shape, 16, bounded=len(shape) == 3)
        x = G(torch.randn(4, 16))
        assert x.shape == (4, *shape) and D(x).shape == (4,)
        if len(shape) == 3:
            assert x.abs().max() <= 1.0
