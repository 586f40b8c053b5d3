"""Population training: member i follows the single run of its configuration and seed; a diverged
member is frozen without touching the others; members write ordinary run directories."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from ganzoo import resolve_config
from ganzoo.errors import GanzooError
from ganzoo.population import PopulationTrainer, check_population
from ganzoo.rundir import load_checkpoint, read_json, read_jsonl
from ganzoo.trainer import Trainer

STEPS = 30


def member(variant: str, seed: int, lr: float, beta1: float, **extra: object):
    overrides = {"steps": STEPS, "batch_size": 32, "device": "cpu", "log_every": 10, "sample_every": 0,
                 "checkpoint_every": 0, "seed": seed, "adam.lr": lr, "adam.beta1": beta1,
                 # the single runs compared against use torch's plain Adam, the formula StackedAdam uses
                 "fast.fused_adam": False, **extra}
    if variant == "dcgan":
        overrides["arch.width"] = 8
    return resolve_config(variant, "digits", overrides=overrides)


def max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((x.double() - y.double()).abs().max().item()
               for (_, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()))


# dcgan: BatchNorm in G and D; wgan-gp: 5 critic steps and a gradient penalty whose weight differs.
@pytest.mark.parametrize("variant", ["nsgan", "dcgan", "wgan-gp"])
def test_each_member_follows_its_single_run(tmp_path: Path, variant: str) -> None:
    extra = [{"loss.gp_weight": w} for w in (10.0, 1.0, 30.0)] if variant == "wgan-gp" else [{}] * 3
    configs = [member(variant, 0, 2e-4, 0.5, **extra[0]), member(variant, 1, 1e-3, 0.0, **extra[1]),
               member(variant, 2, 5e-4, 0.9, **extra[2])]
    population = PopulationTrainer(configs, [tmp_path / f"member-{i}" for i in range(3)])
    assert [r.status for r in population.run()] == ["completed"] * 3
    for i, config in enumerate(configs):
        single = Trainer(config, tmp_path / f"single-{i}", quiet=True)
        single.run()
        G, D = population.member_modules(i)
        # Weights and BatchNorm running statistics (per member, never shared). The gradient penalty's
        # double backward runs through torch.func here and autograd there; Adam's g / (|g| + eps)
        # magnifies their rounding where gradients are near zero (measured: 4e-8 after 5 steps,
        # 1e-4 after 150 critic steps at lr 1e-3), hence the looser bound for wgan-gp.
        tolerance = 5e-4 if variant == "wgan-gp" else 1e-5
        assert max_difference(G, single.G) < tolerance and max_difference(D, single.D) < tolerance, i
        ours = list(read_jsonl(tmp_path / f"member-{i}" / "stats.jsonl"))
        theirs = list(read_jsonl(tmp_path / f"single-{i}" / "stats.jsonl"))
        assert [r["step"] for r in ours] == [r["step"] for r in theirs]
        for key in ("d_loss", "g_loss", "penalty", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"):
            assert ours[-1][key] == pytest.approx(theirs[-1][key], rel=1e-4 if variant != "wgan-gp" else 1e-2,
                                                  abs=1e-6), key


def test_a_diverged_member_is_frozen_and_the_others_unharmed(tmp_path: Path) -> None:
    configs = [member("nsgan", 0, 2e-4, 0.5), member("nsgan", 1, 1e38, 0.5)]  # lr 1e38 overflows at once
    population = PopulationTrainer(configs, [tmp_path / "ok", tmp_path / "bad"])
    results = population.run()
    assert [r.status for r in results] == ["completed", "diverged"]
    assert read_json(tmp_path / "bad" / "status.json")["status"] == "diverged"
    single = Trainer(configs[0], tmp_path / "single", quiet=True)
    single.run()
    G, D = population.member_modules(0)
    assert max_difference(G, single.G) < 1e-5 and max_difference(D, single.D) < 1e-5


def test_members_write_single_run_directories(tmp_path: Path) -> None:
    configs = [member("nsgan", s, 2e-4, 0.5) for s in (0, 1)]
    PopulationTrainer(configs, [tmp_path / f"m{i}" for i in range(2)]).run()
    for i in range(2):
        out = tmp_path / f"m{i}"
        assert read_json(out / "config.json")["seed"] == i
        assert read_json(out / "status.json") == {"status": "completed", "step": STEPS, "steps": STEPS, "message": ""}
        assert set(load_checkpoint(out / "checkpoint.pt")) >= {"G", "D", "step"}  # weights_only
        assert (out / f"samples_{STEPS:06d}.png").exists()
        assert read_json(out / "stability.json")["status"] == "completed"
        throughput = read_json(out / "throughput.json")
        assert throughput["population"] == 2 and throughput["train_images_per_second"] > 0


@pytest.mark.parametrize("change, message", [
    ({"batch_size": 16}, "differs from member 0 in batch_size"),
    ({"n_critic": 5}, "differs from member 0 in n_critic"),
])
def test_members_that_cannot_share_a_step_are_refused(change: dict, message: str) -> None:
    base = member("nsgan", 0, 2e-4, 0.5)
    other = dataclasses.replace(base, **change)
    with pytest.raises(GanzooError, match=message):
        check_population([base, other])


def test_a_member_stopped_by_its_callback_is_stopped_alone(tmp_path: Path) -> None:
    """Pruning is per member: a callback that stops member 1 at step 10 leaves member 0 on course."""
    from ganzoo.trainer import StopTraining

    configs = [member("nsgan", s, 2e-4, 0.5, callback_every=10) for s in (0, 1)]
    calls: list[tuple[int, int]] = []

    def record(i: int):
        def callback(state) -> None:
            calls.append((i, state.step))
            if i == 1 and state.step == 10:
                raise StopTraining("pruned", "FID too high at step 10")
        return callback

    population = PopulationTrainer(configs, [tmp_path / "a", tmp_path / "b"], callbacks=[[record(0)], [record(1)]])
    results = population.run()
    assert [(r.status, r.step) for r in results] == [("completed", STEPS), ("pruned", 10)]
    assert calls == [(0, 10), (1, 10), (0, 20), (0, 30)]
    assert read_json(tmp_path / "b" / "status.json")["message"] == "FID too high at step 10"
    single = Trainer(configs[0], tmp_path / "single", quiet=True)
    single.run()
    G, _ = population.member_modules(0)
    assert max_difference(G, single.G) < 1e-5
