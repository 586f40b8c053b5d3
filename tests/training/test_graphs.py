"""The whole step as one CUDA graph (ganzoo.training.graphs): the same run as the eager step, a fallback that
says why, and the one engine both single runs and populations run through.

The CUDA tests compare in float64 (the conftest fixture), as test_population.py does, with its
tolerance: the captured and the eager step launch the same kernels on the same inputs, so in float64
they agree to rounding noise (~1e-14) while a wrong batch, noise draw or stale input moves weights by
far more than TRAJECTORY_TOLERANCE.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from support.populations import TRAJECTORY_TOLERANCE, max_difference, member

from ganzoo import VARIANTS, resolve_config
from ganzoo.core.errors import GanzooError
from ganzoo.core.rundir import read_json
from ganzoo.training.engine import Engine
from ganzoo.training.population import PopulationTrainer
from ganzoo.training.trainer import Trainer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def config(variant: str = "nsgan", device: str = "cpu", **overrides: object):
    extra = {"arch.width": 8} if variant in VARIANTS and VARIANTS.get(variant).arch == "dcgan" else {}
    return resolve_config(variant, "digits", overrides={
        "steps": 20, "batch_size": 32, "device": device, "log_every": 5, "sample_every": 0, "checkpoint_every": 0,
        **extra, **overrides})


def test_single_runs_and_populations_run_through_the_one_engine(tmp_path: Path) -> None:
    single = Trainer(member("nsgan", 0, 2e-4, 0.5), tmp_path / "single", quiet=True)
    population = PopulationTrainer([member("nsgan", s, 2e-4, 0.5) for s in (0, 1)], [tmp_path / "a", tmp_path / "b"])
    assert isinstance(single.engine, Engine) and isinstance(population.engine, Engine)
    assert type(single.engine) is type(population.engine)
    single.run()
    population.run()
    # The same run files, named once (rundir), written by the same loop.
    names = {p.name for p in (tmp_path / "single").iterdir()}
    assert names == {p.name for p in (tmp_path / "a").iterdir()}
    assert {"config.json", "data.json", "status.json", "stats.jsonl", "checkpoint.pt", "stability.json",
            "throughput.json", "samples_000030.png"} <= names


def test_throughput_says_how_the_step_ran_on_a_cpu(tmp_path: Path) -> None:
    Trainer(config(), tmp_path, quiet=True).run()
    record = read_json(tmp_path / "throughput.json")
    assert record["execution"] == "eager (not CUDA)" and record["precision"] == "float32"
    assert record["member_steps_per_second"] > 0


def test_a_graph_demanded_where_none_can_be_captured_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GanzooError, match="fast.cuda_graph=on, but this step cannot be captured: not CUDA"):
        Trainer(config(**{"fast.cuda_graph": "on"}), tmp_path, quiet=True)
    with pytest.raises(GanzooError, match="fast.tf32 must be auto, on or off"):
        Trainer(config(**{"fast.tf32": "fast"}), tmp_path, quiet=True)


# ---- CUDA ------------------------------------------------------------------------------------


# BatchNorm; 5 critic steps and a penalty; clipping; DRAGAN's draws; BEGAN's k and autoencoder; G's loss on
# real logits; spectral norm's in-place vectors; G's moving average.
CAPTURED = [("nsgan", {}), ("dcgan", {}), ("wgan-gp", {}), ("wgan", {"d_weight_clip": 0.04, "adam.lr": 1e-4}),
            ("dragan", {}), ("began", {"loss.gamma": 1.0, "loss.lambda_k": 0.1}), ("rsgan", {}), ("ragan", {}),
            ("hinge", {"d_spectral_norm": True}), ("nsgan", {"g_ema_decay": 0.9}),
            # the moving average's start and bias correction (its weight a device tensor the graph advances),
            # and what the Lucic protocol pins: compare_gan's init and BatchNorm, U(-1, 1) noise, DRAGAN on
            # the sigmoid's gradient in [0, 1] units, the LS loss on probabilities
            ("nsgan", {"g_ema_decay": 0.9, "g_ema_start": 5}),
            ("dcgan", {"init": "compare_gan", "batchnorm_eps": 1e-3, "batchnorm_momentum": 1e-3, "z_dist": "uniform"}),
            ("dragan", {"penalty.on": "probabilities", "penalty.slope_eps": 1e-4, "penalty.gradient_scale": 2.0}),
            ("lsgan", {"loss.on": "probabilities"}),
            # Unrolled GAN: D's look-ahead (second derivatives, D's Adam moments and step count read in the graph)
            ("unrolled-gan", {"unroll": 2, "z_dim": 16}), ("nsgan", {"unroll": 1, "d_weight_clip": 0.5})]


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("variant, settings", CAPTURED, ids=[f"{v}-{'-'.join(s) or 'defaults'}" for v, s in CAPTURED])
def test_the_captured_step_trains_the_eager_run(tmp_path: Path, variant: str, settings: dict, float64: None) -> None:
    runs = {}
    for graph in ("auto", "off"):
        trainer = Trainer(config(variant, "cuda", steps=40, **{"fast.cuda_graph": graph}, **settings),
                          tmp_path / graph, quiet=True)
        trainer.run()
        runs[graph] = trainer
    assert read_json(tmp_path / "auto" / "throughput.json")["execution"] == "cuda-graph"
    assert read_json(tmp_path / "off" / "throughput.json")["execution"] == "eager (fast.cuda_graph=off)"
    assert max_difference(runs["auto"].G, runs["off"].G) < TRAJECTORY_TOLERANCE
    assert max_difference(runs["auto"].D, runs["off"].D) < TRAJECTORY_TOLERANCE
    for a, b in zip(runs["auto"].body.modules(0), runs["off"].body.modules(0)):  # G's moving average too
        assert max_difference(a, b) < TRAJECTORY_TOLERANCE
    for name, value in runs["off"].body.loss_state.values.items():  # BEGAN's k
        assert (runs["auto"].body.loss_state.values[name] - value).abs().max().item() < TRAJECTORY_TOLERANCE


# a penalty per member; BEGAN's k per member with G's moving average; spectral norm's vectors per member;
# each member's look-ahead from its own Adam moments
@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("variant, extra", [("wgan-gp", {}), ("began", {"g_ema_decay": 0.9, "loss.gamma": 1.0}),
                                            ("hinge", {"d_spectral_norm": True}), ("unrolled-gan", {"unroll": 2})])
def test_a_captured_population_trains_its_eager_members(tmp_path: Path, variant: str, extra: dict, float64: None) -> None:
    def members(graph: str):
        return [member(variant, s, lr, 0.5, device="cuda", **{"fast.cuda_graph": graph, **extra})
                for s, lr in ((0, 2e-4), (1, 1e-4))]

    captured = PopulationTrainer(members("auto"), [tmp_path / f"g{i}" for i in range(2)])
    eager = PopulationTrainer(members("off"), [tmp_path / f"e{i}" for i in range(2)])
    captured.run()
    eager.run()
    assert read_json(tmp_path / "g0" / "throughput.json")["execution"] == "cuda-graph"
    for i in range(2):
        for a, b in zip(captured.member_modules(i), eager.member_modules(i)):
            assert max_difference(a, b) < TRAJECTORY_TOLERANCE


@pytest.mark.gpu
@cuda
def test_a_loss_that_syncs_falls_back_to_eager_and_says_so(tmp_path: Path, registered) -> None:
    from ganzoo.zoo.losses import LOSSES, NonSaturating
    from ganzoo.zoo.variants import VARIANTS, Variant

    @dataclasses.dataclass(frozen=True)
    class Syncing(NonSaturating):
        def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
            if fake.mean().item() > 1e9:  # a host sync: capture cannot hold it
                raise AssertionError
            return super().generator_loss(fake)

    registered(LOSSES, "syncing-ns", Syncing)
    registered(VARIANTS, "syncing", Variant("syncing-ns", "mlp"))
    trainer = Trainer(config("syncing", "cuda"), tmp_path, quiet=True)
    assert trainer.run().status == "completed"
    execution = read_json(tmp_path / "throughput.json")["execution"]
    assert execution.startswith("eager (the step syncs with the host (") and "test_graphs.py:" in execution
    assert not any(group["capturable"] for group in trainer.g_opt.param_groups)  # Adam's plain path, once known
    with pytest.raises(GanzooError, match="fast.cuda_graph=on, but this step cannot be captured"):
        Trainer(config("syncing", "cuda", **{"fast.cuda_graph": "on"}), tmp_path / "on", quiet=True).run()


@pytest.mark.gpu
@cuda
def test_a_failed_capture_leaves_the_run_as_the_eager_run(tmp_path: Path, registered, float64: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # The sync check off, so that capture itself fails (torch 2.11: capture_end raises before the
    # generators leave capture mode, and the next draw raised): the run must go on as the eager run.
    from ganzoo.zoo.losses import LOSSES, NonSaturating
    from ganzoo.zoo.variants import VARIANTS, Variant

    @dataclasses.dataclass(frozen=True)
    class Syncing(NonSaturating):
        def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
            return super().generator_loss(fake) * (1.0 if fake.mean().item() < 1e9 else 2.0)

    registered(LOSSES, "syncing-ns", Syncing)
    registered(VARIANTS, "syncing", Variant("syncing-ns", "mlp"))
    monkeypatch.setattr("ganzoo.training.graphs.cuda_syncs", lambda step, device: step() or [])
    runs = {graph: Trainer(config("syncing", "cuda", steps=40, **{"fast.cuda_graph": graph}), tmp_path / graph,
                           quiet=True) for graph in ("auto", "off")}
    for trainer in runs.values():
        assert trainer.run().status == "completed"
    execution = read_json(tmp_path / "auto" / "throughput.json")["execution"]
    assert execution.startswith("eager (capture failed: ") and "previous error during capture" not in execution
    assert torch.cuda.current_stream() == torch.cuda.default_stream()
    torch.randn(3, device="cuda")  # the default generator, which capture_begin registered too, draws again
    assert max_difference(runs["auto"].G, runs["off"].G) < TRAJECTORY_TOLERANCE
    assert max_difference(runs["auto"].D, runs["off"].D) < TRAJECTORY_TOLERANCE


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_a_run_on_the_second_gpu_captures_there(tmp_path: Path) -> None:
    torch.cuda.set_device(0)
    trainer = Trainer(config("nsgan", "cuda:1"), tmp_path, quiet=True)
    trainer.run()
    assert read_json(tmp_path / "throughput.json")["execution"] == "cuda-graph"
    assert all(p.device == torch.device("cuda", 1) for p in trainer.G.parameters())
    assert torch.cuda.current_device() == 0


@pytest.mark.gpu
@cuda
def test_no_host_sync_between_log_points_across_an_epoch_boundary(tmp_path: Path) -> None:
    trainer = Trainer(config("dcgan", "cuda", steps=200, log_every=100), tmp_path, quiet=True)
    for _ in range(5):  # warm-up and capture
        trainer.train_step()
    per_epoch = len(trainer.data.x) // trainer.config.batch_size
    first_epoch = trainer.body.batches.orders
    torch.cuda.set_sync_debug_mode("error")  # any device-to-host copy raises
    try:
        for _ in range(per_epoch + 5):  # a new epoch's randperm (plan) between two replays
            assert not trainer.engine.advance()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert trainer.engine.runner.execution == "cuda-graph"
    assert trainer.body.batches.orders is not first_epoch  # an epoch ended in between
