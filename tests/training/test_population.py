"""Population training: member i follows the single run of its configuration and seed; a diverged
member is frozen without touching the others; members write ordinary run directories.

Members and single runs compute the same arithmetic through different kernels (vmap and
torch.func against plain autograd, StackedAdam against torch's Adam), so in float32 they round
differently, and differently again on another CPU. Over a run that rounding is not bounded by
anything useful: a pre-activation within rounding of zero lands on either side of a ReLU or
LeakyReLU kink, and the gradient of that sample changes by O(1) (the gradient penalty's double
backward makes even its loss jump); Adam, dividing by sqrt(v) + eps, passes that on as a change
of up to ~lr in an update. In float32, 30 steps meet one or two such flips (measured for wgan-gp: a
member's max |dweight| jumps between two steps from 8e-8 to 3e-6, or from 5e-6 to 1.6e-4, at steps
that change with the CPU's kernels; with SiLU in place of the kinks the same runs grow smoothly to
6e-6). So trajectories are compared in float64, where a flip needs one of the ~2e7 pre-activations
of a run within ~1e-16 of zero (expected ~2e-9 flips), and float32 on the first critic gradient,
before any Adam step.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from support.populations import STEPS, TRAJECTORY_TOLERANCE, U32, max_difference, member  # noqa: F401

from ganzoo import resolve_config
from ganzoo.core.errors import GanzooError
from ganzoo.core.rundir import load_checkpoint, read_json, read_jsonl
from ganzoo.training.population import PopulationTrainer, check_population
from ganzoo.training.trainer import Trainer

# Float32, the first critic gradient: the same function of the same weights, batch, noise and penalty
# noise on both sides. It is a chain of products: G's forward making the fakes (inner sizes 100 and
# <= 256), D's forward (<= 1024: its last 8x8 conv at width 64) and backward, the sum over batch and
# positions for a weight (32 x 16), and for wgan-gp the penalty's double backward repeating D's passes:
# <= 5e3 along the chain. Normwise a product with inner size n errs by <= n u ||A|| ||B|| (Higham 2002,
# sec. 3.5) and the chain adds these up: <= 5e3 u32 = 3e-4 of the gradient's norm, which at
# initialisation is of the order of its terms'. A wrong batch, noise or penalty weight, or a bf16
# cast (u = 4e-3), is far outside. Entry-wise there is no such bound: D's last bias collects terms of
# ~0.5 (sigmoids of logits near 0) that cancel to 7e-4, so its own relative error reaches 1e-4.
FIRST_GRADIENT_TOLERANCE = 5e3 * U32


# What differs per member beyond seed, learning rate and beta1: each case's own per-member settings.
PER_MEMBER_SETTINGS: dict[str, list[dict[str, object]]] = {
    "wgan-gp": [{"penalty.weight": w} for w in (10.0, 1.0, 30.0)],
    "dragan": [{"penalty.weight": w} for w in (10.0, 1.0, 30.0)],
    # WGAN's own small learning rates, and clipping bounds that hold 15-40% of D's weights at the bound
    # by step 30. Where nearly all of them sit there (lr 1e-3, beta1 0: 90% by step 11), whole kernels
    # are exactly +-c, a sum over a constant background patch meets a LeakyReLU's kink exactly, and
    # rounding picks its side: members and single runs then part (seen: 3e-8 at step 11, 2e-3 by 30).
    "wgan": [{"d_weight_clip": c, "adam.lr": lr} for c, lr in ((0.04, 5e-5), (0.03, 1e-4), (0.05, 2e-4))],
    # k rises for the first two (to ~0.16 and ~0.02 by step 30) and stays clipped at 0 for the third.
    # BEGAN's paper learning rate, 1e-4: the infogan G has biases just before BatchNorm, whose gradient is
    # 0 up to rounding; Adam divides that by eps (1e-8), so both sides move them by ~1e-12, differently,
    # at the first step, and at lr 1e-3 with beta1 0 the run amplifies that to 6e-8 by step 30 (at these
    # settings: ~1e-12).
    "began": [{"loss.gamma": g, "loss.lambda_k": lk, "adam.lr": 1e-4, "adam.beta1": b1}
              for g, lk, b1 in ((1.0, 1e-1, 0.5), (0.9, 5e-2, 0.0), (0.3, 1e-1, 0.9))],
    "hinge": [{"d_spectral_norm": True}] * 3,  # the SN-GAN pairing: spectral norm under vmap
    "nsgan": [{"g_ema_decay": d} for d in (0.9, 0.0, 0.5)],  # G's moving average, off for one member
}


def three_members(variant: str) -> list:
    extra = PER_MEMBER_SETTINGS.get(variant, [{}] * 3)
    return [member(variant, 0, 2e-4, 0.5, **extra[0]), member(variant, 1, 1e-3, 0.0, **extra[1]),
            member(variant, 2, 5e-4, 0.9, **extra[2])]


# nsgan: G's moving average per member (one without); dcgan: BatchNorm in G; wgan-gp: 5 critic steps and
# a gradient penalty whose weight differs; wgan: weight clipping per member; dragan: its penalty's draws;
# began: the autoencoder D and k, a loss state per member; rsgan and ragan: G's loss sees D's real logits;
# hinge: with D spectrally normalised (its u and v per member).
def assert_members_follow_their_single_runs(tmp_path: Path, configs: list) -> list[tuple[torch.nn.Module, list]]:
    """Train ``configs`` as one population and each alone; every member's weights, buffers and logged
    figures must be its single run's. Returns each member's D and stats records."""
    population = PopulationTrainer(configs, [tmp_path / f"member-{i}" for i in range(len(configs))])
    assert [r.status for r in population.run()] == ["completed"] * len(configs)
    members = []
    for i, config in enumerate(configs):
        single = Trainer(config, tmp_path / f"single-{i}", quiet=True)
        single.run()
        G, D = population.member_modules(i)
        single_G, single_D = single.body.modules(0)  # G's moving average where the member keeps one
        assert next(G.parameters()).dtype == next(single.G.parameters()).dtype == torch.float64
        # Weights and buffers: BatchNorm running statistics, spectral norm's vectors (per member, never shared).
        assert max_difference(G, single_G) < TRAJECTORY_TOLERANCE, i
        assert max_difference(D, single_D) < TRAJECTORY_TOLERANCE, i
        ours = list(read_jsonl(tmp_path / f"member-{i}" / "stats.jsonl"))
        theirs = list(read_jsonl(tmp_path / f"single-{i}" / "stats.jsonl"))
        assert [r["step"] for r in ours] == [r["step"] for r in theirs]
        # Means of losses and norms of the same weights: the same relative bound (approx's abs 1e-12
        # covers a penalty that is 0 on both sides), and the loss's own state (BEGAN's k).
        for record, other in zip(ours, theirs):
            assert set(record) == set(other) | {"population"}
            keys = ["d_loss", "g_loss", "penalty", "d_real", "d_fake", "d_grad_norm", "g_grad_norm",
                    *(k for k in record if k.startswith("loss_"))]
            for key in keys:
                assert record[key] == pytest.approx(other[key], rel=TRAJECTORY_TOLERANCE, abs=1e-12), (i, record["step"], key)
        # The checkpoint keeps what ganzoo eval reads: G's moving average where there is one.
        saved = load_checkpoint(tmp_path / f"member-{i}" / "checkpoint.pt")
        assert ("G_ema" in saved) == (config.g_ema_decay > 0)
        members.append((D, ours))
    return members


# nsgan: G's moving average per member (one without); dcgan: BatchNorm in G; wgan-gp: 5 critic steps and
# a gradient penalty whose weight differs; wgan: weight clipping per member; dragan: its penalty's draws;
# began: the autoencoder D and k, a loss state per member; rsgan and ragan: G's loss sees D's real logits;
# hinge: with D spectrally normalised (its u and v per member).
@pytest.mark.parametrize("variant", ["nsgan", "dcgan", "wgan-gp", "wgan", "dragan", "began", "rsgan", "ragan", "hinge"])
def test_each_member_follows_its_single_run(tmp_path: Path, variant: str, float64: None) -> None:
    configs = three_members(variant)
    members = assert_members_follow_their_single_runs(tmp_path, configs)
    if variant == "began":  # k has moved: the state really is compared, not two zeros
        assert [records[-1]["loss_k"] > 0 for _, records in members] == [True, True, False]
    if variant == "wgan":  # the clip is at work: D's weights reach the bound and never pass it
        for (D, _), config in zip(members, configs):
            assert max(p.abs().max().item() for p in D.parameters()) == config.d_weight_clip


def test_a_penalty_through_batchnorm_and_spectral_norm_follows_its_single_run(tmp_path: Path, float64: None) -> None:
    """A gradient penalty runs D inside torch.func's inner grad, where D's forward updates its buffers
    in place (BatchNorm's statistics, spectral norm's vectors), as a single run's does: the members'
    buffers are inputs of that transform, which torch.func requires (it refused a captured tensor's
    update: the Lucic preset's wgan-gp and dragan with D's BatchNorm then trained one trial at a time)."""
    configs = [resolve_config("dragan", "digits", arch="infogan", overrides={
        "steps": 10, "batch_size": 32, "device": "cpu", "log_every": 5, "sample_every": 0, "checkpoint_every": 0,
        "seed": seed, "adam.lr": lr, "fast.fused_adam": False, "arch.d_batchnorm": True, "d_spectral_norm": True,
        "penalty.weight": weight}) for seed, lr, weight in ((0, 2e-4, 10.0), (1, 1e-4, 1.0))]
    for D, _ in assert_members_follow_their_single_runs(tmp_path, configs):
        # D's BatchNorm counted every forward, the penalty's among them: 3 a step (real, fake, penalty) + G's
        assert int(D.state_dict()["7.num_batches_tracked"]) == 10 * 4


# The Lucic et al. protocol's settings (ganzoo/presets/fashion-mnist.toml), each in a population: compare_gan's
# initialisation, batch norm and U(-1, 1) noise for all; the LS loss on probabilities; DRAGAN on the sigmoid's
# gradient with a slope epsilon that differs per member; BEGAN's k unclipped; G's average from a start step.
LUCIC_SETTINGS = {"init": "compare_gan", "batchnorm_eps": 1e-3, "batchnorm_momentum": 1e-3, "z_dist": "uniform",
                  "arch.d_batchnorm": True}
LUCIC_MEMBERS: dict[str, list[dict[str, object]]] = {
    "lsgan": [{"loss.on": "probabilities"}] * 3,
    # A slope epsilon of 0 would leave the penalty's double backward dividing by |grad|, which the sigmoid's
    # saturation takes near 0: rounding is then amplified past any bound (compare_gan's 1e-4 keeps the root >= 0.01).
    "dragan": [{"penalty.on": "probabilities", "penalty.slope_eps": e} for e in (1e-4, 1e-3, 1e-2)],
    # gamma 0: k += lambda (0 - L(G(z))) falls at every update, below 0 at once where unclipped
    "began": [{"loss.clip_k": False, "arch.d_batchnorm": False, "loss.gamma": 0.0, "loss.lambda_k": 1e-1}] * 3,
    "nsgan": [{"g_ema_decay": d, "g_ema_start": s} for d, s in ((0.9, 0), (0.5, 3), (0.0, 0))],
}


@pytest.mark.parametrize("variant", ["nsgan", "dcgan", "wgan-gp"])
def test_packed_members_follow_their_single_runs(tmp_path: Path, variant: str, float64: None) -> None:
    # PacGAN's packing (D on pairs of samples) in the stacked step: vmap over the packed D, and a member's
    # draws of batch_size x pack samples, as its single run takes them.
    configs = [dataclasses.replace(c, pack=2) for c in three_members(variant)]
    assert_members_follow_their_single_runs(tmp_path, configs)


@pytest.mark.parametrize("variant", sorted(LUCIC_MEMBERS))
def test_the_lucic_protocols_settings_follow_their_single_runs(tmp_path: Path, variant: str, float64: None) -> None:
    configs = [resolve_config(variant, "digits", arch="infogan", overrides={
        "steps": 10, "batch_size": 32, "device": "cpu", "log_every": 5, "sample_every": 0, "checkpoint_every": 0,
        "seed": seed, "adam.lr": lr, "adam.beta1": beta1, "fast.fused_adam": False, **LUCIC_SETTINGS, **extra})
        # The infogan D's biases before BatchNorm have gradient 0 up to rounding, which Adam scales up (see
        # "began" in PER_MEMBER_SETTINGS): learning rates of compare_gan's defaults' order keep that below 1e-12.
        for (seed, lr, beta1), extra in zip(((0, 2e-4, 0.5), (1, 1e-4, 0.0), (2, 5e-5, 0.9)), LUCIC_MEMBERS[variant])]
    members = assert_members_follow_their_single_runs(tmp_path, configs)
    if variant == "began":  # unclipped, k went below 0 where the fakes reconstruct worse than gamma says
        assert all(records[-1]["loss_k"] < 0 for _, records in members)


@pytest.mark.parametrize("variant", ["nsgan", "dcgan", "wgan-gp"])
def test_simultaneous_members_follow_their_single_runs(tmp_path: Path, variant: str, float64: None) -> None:
    # PacGAN's and VEEGAN's update order: G's gradient at D as its last update started (dcgan: D's BatchNorm
    # statistics on copies; wgan-gp: 5 critic steps and a penalty).
    configs = [dataclasses.replace(c, update_order="simultaneous") for c in three_members(variant)]
    assert_members_follow_their_single_runs(tmp_path, configs)


def test_members_that_differ_in_a_losss_switch_are_refused() -> None:
    """A loss's or penalty's field that is not a number decides the step's control flow: members must agree."""
    configs = [member("lsgan", 0, 2e-4, 0.5, **{"loss.on": on}) for on in ("logits", "probabilities")]
    with pytest.raises(GanzooError, match="member 1 differs from member 0 in loss_fields"):
        check_population(configs)
    check_population([member("dragan", s, 2e-4, 0.5, **{"penalty.slope_eps": e}) for s, e in ((0, 0.0), (1, 1e-4))])


@pytest.mark.parametrize("variant", ["nsgan", "dcgan", "wgan-gp", "dragan", "began"])
def test_first_critic_gradients_match_in_float32(tmp_path: Path, variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = three_members(variant)
    population = PopulationTrainer(configs, [tmp_path / f"member-{i}" for i in range(3)])
    assert population.g_opt.flat.dtype == torch.float32
    ours: list[dict[str, torch.Tensor]] = []
    step = population.d_opt.step
    monkeypatch.setattr(population.d_opt, "step", lambda grads, active: (
        ours.append({k: g.clone() for k, g in grads.items()}), step(grads, active)))
    population.train_step()
    for i, config in enumerate(configs):
        single = Trainer(config, tmp_path / f"single-{i}", quiet=True)
        theirs: list[dict[str, torch.Tensor]] = []
        single.d_opt.register_step_pre_hook(lambda *_: theirs.append(
            {k: p.grad.clone() for k, p in single.D.named_parameters()}))
        single.train_step()
        assert len(theirs) == len(ours) == config.n_critic
        norm = torch.cat([g.flatten() for g in theirs[0].values()]).norm().item()
        for name, expected in theirs[0].items():
            difference = (ours[0][name][i] - expected).norm().item()
            assert difference <= FIRST_GRADIENT_TOLERANCE * norm, (i, name, difference, norm)

def test_a_diverged_member_is_frozen_and_the_others_unharmed(tmp_path: Path, float64: None) -> None:
    # lr 1e300: the first update takes D's weights to 1e300 and the next forward overflows float64
    configs = [member("nsgan", 0, 2e-4, 0.5), member("nsgan", 1, 1e300, 0.5)]
    population = PopulationTrainer(configs, [tmp_path / "ok", tmp_path / "bad"])
    results = population.run()
    assert [r.status for r in results] == ["completed", "diverged"]
    assert read_json(tmp_path / "bad" / "status.json")["status"] == "diverged"
    single = Trainer(configs[0], tmp_path / "single", quiet=True)
    single.run()
    G, D = population.member_modules(0)
    assert max_difference(G, single.G) < TRAJECTORY_TOLERANCE and max_difference(D, single.D) < TRAJECTORY_TOLERANCE


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


def test_a_member_stopped_by_its_callback_is_stopped_alone(tmp_path: Path, float64: None) -> None:
    """Pruning is per member: a callback that stops member 1 at step 10 leaves member 0 on course."""
    from ganzoo.training.trainer import StopTraining

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
    assert max_difference(G, single.G) < TRAJECTORY_TOLERANCE


def test_members_are_evaluated_in_one_pass_as_each_would_be_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a callback point the engine extracts every member's samples together; each member gets the
    metrics evaluate() gives it alone. The samples are the same; only the extraction's batches differ
    (2 x 100 images instead of 100), which in float32 moves a feature by rounding at most, and the FID
    by <= ~1e-4 relative (the bound derived in test_fast_paths' compiled-extraction test)."""
    from ganzoo.core.config import EvalSpec
    from ganzoo.evaluate.metrics import EvalCallback, evaluate, load_reference

    spec = EvalSpec(features="domain", n_samples=200, batch_size=100, metrics=("fid", "prc"))
    configs = [member("dcgan", s, 2e-4, 0.5, callback_every=STEPS) for s in (0, 1)]
    evaluators = [EvalCallback(spec), EvalCallback(spec)]
    population = PopulationTrainer(configs, [tmp_path / "a", tmp_path / "b"], callbacks=[[e] for e in evaluators])
    population.run()
    assert torch.is_grad_enabled(), "evaluation leaves the thread's grad mode as it found it"
    reference = load_reference(configs[0], spec.split)
    for i, evaluator in enumerate(evaluators):
        assert evaluator.last is not None and evaluator.last["evaluated_together"] == 2
        G, _ = population.member_modules(i)
        alone = evaluate(G, configs[i].z_dim, "digits", reference, spec, torch.device("cpu"))
        assert evaluator.last["fid"] == pytest.approx(alone["fid"], rel=1e-4)
        # Shares of 200 samples from strict comparisons: a rounding flip of one comparison moves one by
        # 1/200 (density by 1/(5 x 200)); two flips allowed, though none is expected.
        for key in ("density", "coverage", "precision", "recall"):
            assert evaluator.last[key] == pytest.approx(alone[key], abs=2 / 200), (i, key)
        assert [r["step"] for r in read_jsonl(tmp_path / "ab"[i] / "metrics.jsonl")] == [STEPS]
    # Features beyond the pass budget go in several passes (here one member each), to the same results.
    import ganzoo.evaluate.features
    from ganzoo.evaluate.metrics import evaluate_together

    monkeypatch.setattr(ganzoo.evaluate.features, "PASS_BYTES", 1)
    Gs = [population.member_modules(i)[0] for i in range(2)]
    apart = evaluate_together(Gs, configs[0].z_dim, "digits", reference, spec, torch.device("cpu"))
    for evaluator, result in zip(evaluators, apart):
        assert result["fid"] == pytest.approx(evaluator.last["fid"], rel=1e-4)
