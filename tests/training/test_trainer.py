from __future__ import annotations

import dataclasses

import pytest
import torch

from ganzoo import LOSSES, StopTraining, TrainConfig, Trainer, resolve_config, resume
from ganzoo.core.rundir import load_checkpoint, read_json, read_jsonl
from ganzoo.zoo.losses import NonSaturating


def config(variant: str = "nsgan", dataset: str = "ring8", **overrides) -> TrainConfig:
    base = {"batch_size": 32, "steps": 40, "log_every": 10, "sample_every": 20, "checkpoint_every": 10,
            "device": "cpu", "seed": 3}
    return resolve_config(variant, dataset, overrides={**base, **overrides})


def weights(run_dir) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoint.pt")
    return {f"{net}.{k}": v for net in ("G", "D") for k, v in state[net].items()}


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_same_seed_same_weights(tmp_path):
    for name in ("a", "b"):
        Trainer(config(), tmp_path / name, progress=False).run()
    assert_same_weights(tmp_path / "a", tmp_path / "b")


def test_different_seed_different_weights(tmp_path):
    Trainer(config(seed=1), tmp_path / "a", progress=False).run()
    Trainer(config(seed=2), tmp_path / "b", progress=False).run()
    with pytest.raises(AssertionError):
        assert_same_weights(tmp_path / "a", tmp_path / "b")


# dcgan: BatchNorm running statistics; wgan-gp: 5 critic steps and the penalty's random draws.
@pytest.mark.parametrize("variant, dataset", [("nsgan", "ring8"), ("dcgan", "digits"), ("wgan-gp", "digits")])
def test_resume_after_interrupt_equals_uninterrupted(variant, dataset, tmp_path):
    cfg = config(variant, dataset, callback_every=10, **({"arch.width": 8} if variant != "nsgan" else {}))
    Trainer(cfg, tmp_path / "straight", progress=False).run()

    def interrupt_at_20(state):
        if state.step == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "resumed", callbacks=[interrupt_at_20], progress=False).run()
    assert read_json(tmp_path / "resumed" / "status.json")["status"] == "interrupted"
    result = resume(tmp_path / "resumed", progress=False)
    assert result.status == "completed" and result.step == 40
    assert_same_weights(tmp_path / "straight", tmp_path / "resumed")
    steps = [r["step"] for r in read_jsonl(tmp_path / "resumed" / "stats.jsonl")]
    assert steps == [10, 20, 30, 40], "a resumed run logs each step once"


def test_resume_can_extend_the_run(tmp_path):
    Trainer(config(steps=40), tmp_path / "straight", progress=False).run()
    Trainer(config(steps=20), tmp_path / "extended", progress=False).run()
    resume(tmp_path / "extended", steps=40, progress=False)
    assert_same_weights(tmp_path / "straight", tmp_path / "extended")


def test_a_captured_runs_checkpoint_resumes_where_none_is_captured(tmp_path):
    # A checkpoint of a CUDA run keeps Adam's capturable param groups (and its step counts, as torch
    # loads them, on the parameters' device). Resumed on a CPU, Adam must take its plain path: torch
    # refuses capturable=True there (on its foreach and single-tensor paths; fused Adam ignores it).
    plain = {"fast.fused_adam": False}
    Trainer(config(steps=40, **plain), tmp_path / "straight", progress=False).run()
    Trainer(config(steps=20, **plain), tmp_path / "resumed", progress=False).run()
    path = tmp_path / "resumed" / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    for opt in ("g_opt", "d_opt"):
        for group in state[opt]["param_groups"]:
            group["capturable"] = True
    torch.save(state, path)
    assert resume(tmp_path / "resumed", steps=40, progress=False).status == "completed"
    assert_same_weights(tmp_path / "straight", tmp_path / "resumed")


@dataclasses.dataclass(frozen=True)
class NaNAfter(NonSaturating):
    """Finite for its first calls, then NaN: a stand-in for a run that blows up."""

    after: int = 15

    def generator_loss(self, fake):
        calls = getattr(NaNAfter, "calls", 0) + 1
        NaNAfter.calls = calls  # type: ignore[attr-defined]
        loss = super().generator_loss(fake)
        return loss * float("nan") if calls > self.after else loss


def test_divergence_is_detected_and_recorded(tmp_path, registered):
    registered(LOSSES, "test-nan-after", NaNAfter)
    NaNAfter.calls = 0  # type: ignore[attr-defined]
    cfg = dataclasses.replace(config(), loss="test-nan-after")
    result = Trainer(cfg, tmp_path, progress=False).run()
    assert result.status == "diverged" and result.step == 20
    status = read_json(tmp_path / "status.json")
    assert status["status"] == "diverged" and "between steps 10 and 20" in status["message"]
    # Nothing non-finite is logged or checkpointed: the last checkpoint is the healthy step-10 one.
    assert [r["step"] for r in read_jsonl(tmp_path / "stats.jsonl")] == [10]
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 10 and all(torch.isfinite(v).all() for v in state["G"].values())


@dataclasses.dataclass(frozen=True)
class SwappedNS(NonSaturating):
    """nsgan with its D loss's inputs declared in the other order, as a plugin may write it."""

    def discriminator_loss(self, fake, real):
        return (torch.nn.functional.softplus(-real) + torch.nn.functional.softplus(fake)).mean()


def test_a_loss_receives_its_inputs_by_name_whatever_their_order(tmp_path, registered):
    # Passed by position, the real logits would arrive as `fake` and D would train backwards.
    registered(LOSSES, "test-swapped-ns", SwappedNS)
    Trainer(config(steps=30), tmp_path / "nsgan", progress=False).run()
    Trainer(dataclasses.replace(config(steps=30), loss="test-swapped-ns"), tmp_path / "swapped", progress=False).run()
    assert_same_weights(tmp_path / "nsgan", tmp_path / "swapped")


def test_callback_sees_state_and_can_stop_the_run(tmp_path):
    seen = []

    def prune_at_20(state):
        seen.append((state.step, state.final, state.sample(7).shape))
        if state.step == 20:
            raise StopTraining("pruned", "FID too high")

    result = Trainer(config(callback_every=10), tmp_path, callbacks=[prune_at_20], progress=False).run()
    assert seen == [(10, False, (7, 2)), (20, False, (7, 2))]
    assert result.status == "pruned" and read_json(tmp_path / "status.json")["message"] == "FID too high"


def test_run_directory_contents(tmp_path):
    Trainer(config(dataset="digits", variant="dcgan", **{"arch.width": 8}), tmp_path, progress=False).run()
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "status.json", "stats.jsonl", "checkpoint.pt", "samples_000020.png",
            "samples_000040.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")], "no temporary files left behind"
    assert read_json(tmp_path / "status.json")["status"] == "completed"


def test_checkpoint_refuses_pickled_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"G": Evil()}, tmp_path / "checkpoint.pt")
    from ganzoo.core.errors import GanzooError

    with pytest.raises(GanzooError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_existing_run_is_refused_or_replaced_whole(tmp_path):
    from ganzoo.core.errors import GanzooError

    Trainer(config(steps=40), tmp_path, progress=False).run()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(GanzooError, match="already holds a run"):
        Trainer(config(steps=20), tmp_path, progress=False).run()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    (tmp_path / "metrics.jsonl").write_text('{"step": 40, "fid": 1.0}\n')  # as an evaluation callback leaves it
    Trainer(config(steps=20), tmp_path, progress=False).run(overwrite=True)
    assert "samples_000040.png" not in {p.name for p in tmp_path.iterdir()}, "no stale files from the old run"
    assert not (tmp_path / "metrics.jsonl").exists(), "no stale evaluations either"
    assert read_json(tmp_path / "status.json")["step"] == 20


def test_streamed_folder_trains_and_resumes_exactly(tmp_path, monkeypatch):
    """Folders too large for memory go through a DataLoader; their order is still seeded and resumable."""
    from PIL import Image

    import ganzoo.data

    images = tmp_path / "images"
    images.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(40):
        pixels = (torch.rand(12, 12, 3, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(images / f"{i:02d}.png")
    monkeypatch.setattr(ganzoo.data.folders, "max_in_memory_bytes", 0)
    cfg = config("dcgan", f"folder:{images}", resolution=8, batch_size=16, steps=6, log_every=2,
                 checkpoint_every=2, sample_every=0, **{"arch.width": 4})
    straight = Trainer(cfg, tmp_path / "straight", progress=False)
    assert straight.data.x is None and straight.data.stream is not None
    straight.run()
    Trainer(dataclasses.replace(cfg, steps=4), tmp_path / "resumed", progress=False).run()
    resume(tmp_path / "resumed", steps=6, progress=False)
    assert_same_weights(tmp_path / "straight", tmp_path / "resumed")


def test_ctrl_c_inside_a_step_stops_after_it_and_saves_a_checkpoint_that_resumes_exactly(tmp_path, monkeypatch):
    """A real SIGINT in the middle of step 13, long before the first checkpoint (step 1000): the step
    finishes, its state is saved, and --resume gives the uninterrupted run's weights."""
    import os
    import signal

    from ganzoo.training.trainer import ModuleStep

    cfg = config(checkpoint_every=1000)
    Trainer(cfg, tmp_path / "straight", progress=False).run()
    real, calls = ModuleStep.body, {"n": 0}

    def body(self, plan, norms):
        calls["n"] += 1
        if calls["n"] == 13:
            os.kill(os.getpid(), signal.SIGINT)  # delivered here, in the step, as a user's Ctrl-C would be
        real(self, plan, norms)

    monkeypatch.setattr(ModuleStep, "body", body)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "resumed", progress=False).run()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "Ctrl-C is Python's again"
    assert read_json(tmp_path / "resumed" / "status.json")["status"] == "interrupted"
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["step"] == 13
    monkeypatch.undo()
    result = resume(tmp_path / "resumed", progress=False)
    assert result.status == "completed" and result.step == 40
    assert_same_weights(tmp_path / "straight", tmp_path / "resumed")


@pytest.mark.parametrize("order", ["simultaneous", "alternating"])
def test_an_update_order_takes_gs_gradient_where_it_says(order):
    # By hand: D's gradient at (G0, D0) on the step's batch and noise, and G's at D0 (simultaneous: both from
    # one forward's parameters, as PacGAN's and VEEGAN's session runs) or at D1, D after its update (alternating).
    import copy

    from ganzoo.data import load_dataset
    from ganzoo.training.trainer import ModuleStep
    from ganzoo.zoo.variants import build_loss

    cfg = dataclasses.replace(config("veegan-gan", steps=1, batch_size=16), update_order=order)
    data, cpu = load_dataset("ring8", "train"), torch.device("cpu")
    step = ModuleStep(cfg, data, cpu)
    G0, D0 = copy.deepcopy(step.G), copy.deepcopy(step.D)
    twin = ModuleStep(cfg, data, cpu)  # the same seed: the same batch and noise, drawn here by hand
    real = twin.batches.gather(twin.plan()[0])
    z = torch.randn(cfg.batch_samples, cfg.z_dim, generator=twin.rng)
    recorded = {}
    step_g = step.g_opt.step

    def record_then_step():
        recorded["G"] = [p.grad.clone() for p in step.G.parameters()]
        recorded["D1"] = copy.deepcopy(step.D)
        step_g()

    step.g_opt.step = record_then_step
    step.body(step.plan(), norms=False)
    loss = build_loss(cfg)
    D_at = D0 if order == "simultaneous" else recorded["D1"]
    by_hand = torch.autograd.grad(loss.generator_loss(fake=D_at(G0(z))), list(G0.parameters()))
    other = torch.autograd.grad(loss.generator_loss(fake=(recorded["D1"] if order == "simultaneous" else D0)(G0(z))),
                                list(G0.parameters()))
    # float32, the same operations on the same inputs: rounding is a few ulps of the largest gradient
    scale = max(g.abs().max().item() for g in by_hand)
    assert all(torch.allclose(a, b, rtol=0, atol=1e-5 * scale) for a, b in zip(recorded["G"], by_hand))
    assert max((a - b).abs().max().item() for a, b in zip(recorded["G"], other)) > 1e-3 * scale  # tells them apart


def test_simultaneous_updates_refuse_unrolling():
    from ganzoo.core.errors import GanzooError

    with pytest.raises(GanzooError, match="unroll looks ahead from D's update to G's"):
        resolve_config("veegan-unrolled", "ring8", overrides={"update_order": "simultaneous"})
