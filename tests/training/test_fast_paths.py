"""Each fast path of the trainer computes the same training as the plain path, for the same seed.

Fused Adam reorders the optimiser's arithmetic, channels_last changes the convolution algorithm,
torch.compile fuses kernels: each rounds differently from the plain path, and differently on
another CPU or GPU. In float32 that difference is not bounded over a run (a pre-activation within
rounding of zero flips a ReLU, Adam turns the changed gradient into an update change of up to ~lr;
measured: fused against plain Adam for wgan-gp, 4e-8 for 80 steps, then 8e-6), so the paths are
compared in float64, as members and single runs are in test_population.py, with its tolerance.
CUDA-only paths (bf16 autocast, CUDA graphs) are covered by the tests marked ``gpu``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from support.populations import TRAJECTORY_TOLERANCE

from ganzoo import resolve_config
from ganzoo.checks.bench import BenchSpec, TutorialLoop, measure
from ganzoo.core.errors import GanzooError
from ganzoo.data import load_dataset
from ganzoo.training.trainer import Trainer

STEPS = 20  # within the 30 steps TRAJECTORY_TOLERANCE is derived for


def trained(tmp_path: Path, variant: str, dataset: str, name: str, **fast: object) -> Trainer:
    overrides = {"steps": STEPS, "batch_size": 32, "device": "cpu", "log_every": 10, "sample_every": 0,
                 "checkpoint_every": 0, **{f"fast.{k}": v for k, v in fast.items()}}
    if variant == "dcgan":
        overrides["arch.width"] = 8  # tiny shapes: seconds on a CPU
    trainer = Trainer(resolve_config(variant, dataset, overrides=overrides), tmp_path / name, quiet=True)
    trainer.run()
    return trainer


def assert_same_weights(a: Trainer, b: Trainer, rtol: float, atol: float) -> None:
    for net in ("G", "D"):
        for (name, x), (_, y) in zip(getattr(a, net).state_dict().items(), getattr(b, net).state_dict().items()):
            torch.testing.assert_close(x.contiguous(), y.contiguous(), rtol=rtol, atol=atol, msg=f"{net}.{name}")


def test_plain_path_is_bitwise_reproducible(tmp_path):
    a = trained(tmp_path, "nsgan", "digits", "a", fused_adam=False)
    b = trained(tmp_path, "nsgan", "digits", "b", fused_adam=False)
    assert_same_weights(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("variant", ["nsgan", "wgan-gp"])
def test_fused_adam_matches_the_plain_optimiser(tmp_path, variant, float64):
    plain = trained(tmp_path, variant, "digits", "plain", fused_adam=False)
    fused = trained(tmp_path, variant, "digits", "fused", fused_adam=True)
    assert "fused-adam" in fused.fast_paths() and "foreach-adam" in plain.fast_paths()
    assert_same_weights(plain, fused, rtol=0, atol=TRAJECTORY_TOLERANCE)


def test_channels_last_matches_contiguous_convolutions(tmp_path, float64):
    plain = trained(tmp_path, "dcgan", "digits", "plain", channels_last="off")
    nhwc = trained(tmp_path, "dcgan", "digits", "nhwc", channels_last="on")
    assert "channels-last" in nhwc.fast_paths()
    assert nhwc.body.batches.x.is_contiguous(memory_format=torch.channels_last)
    assert_same_weights(plain, nhwc, rtol=0, atol=TRAJECTORY_TOLERANCE)


def test_compiled_step_matches_eager(tmp_path, float64):
    eager = trained(tmp_path, "nsgan", "digits", "eager", compile="off")
    compiled = trained(tmp_path, "nsgan", "digits", "compiled", compile="default")
    assert "compile:default" in compiled.fast_paths()
    assert_same_weights(eager, compiled, rtol=0, atol=TRAJECTORY_TOLERANCE)
    # Compiled in place: checkpoints keep the plain modules' keys.
    assert list(compiled.G.state_dict()) == list(eager.G.state_dict())


def test_auto_paths_resolve_by_device(tmp_path):
    t = trained(tmp_path, "dcgan", "digits", "auto", channels_last="auto", compile="auto")
    assert t.body.memory_format == torch.contiguous_format and t.body.compile_mode == "off", "CPU: neither pays"


def test_bad_fast_path_setting_is_refused():
    with pytest.raises(GanzooError, match="fast.compile must be one of"):
        from ganzoo.zoo.variants import validate

        validate(resolve_config("nsgan", "digits", overrides={"fast.compile": "max"}))
    with pytest.raises(GanzooError, match="unknown"):
        resolve_config("nsgan", "digits", overrides={"fast.fused": True})


def test_tutorial_loop_trains_the_same_architecture_from_the_same_seed():
    config = resolve_config("dcgan", "digits", overrides={"batch_size": 16, "device": "cpu", "arch.width": 8})
    data = load_dataset("digits", "train")
    loop = TutorialLoop(config, data, torch.device("cpu"))
    trainer_G = Trainer(config, Path("/nonexistent-never-written"), quiet=True).G
    for x, y in zip(loop.G.state_dict().values(), trainer_G.state_dict().values()):
        assert torch.equal(x, y), "both sides start from the same weights"
    assert isinstance(loop.D[-1], torch.nn.Sigmoid) and isinstance(loop.criterion, torch.nn.BCELoss)
    loop.train_step()
    assert len(loop.losses) == 1 and all(torch.isfinite(torch.tensor(loop.losses[0])))


def test_tutorial_loop_builds_each_optimiser_from_its_own_settings():
    config = resolve_config("nsgan", "digits", overrides={"device": "cpu", "g_adam.lr": 1e-4, "g_adam.beta1": 0.0,
                                                          "d_adam.lr": 4e-4, "d_adam.beta2": 0.9})
    loop = TutorialLoop(config, load_dataset("digits", "train"), torch.device("cpu"))
    g, d = loop.opt_g.param_groups[0], loop.opt_d.param_groups[0]
    assert (g["lr"], g["betas"]) == (1e-4, (0.0, 0.999))
    assert (d["lr"], d["betas"]) == (4e-4, (0.5, 0.9))


def test_the_bench_builds_the_networks_once_and_each_loop_trains_its_own_copy(monkeypatch):
    import ganzoo.checks.bench as bench
    import ganzoo.training.trainer as trainer
    import ganzoo.zoo.variants as variants

    builds, made = [], {}
    build = variants.build_networks

    def counted(*args, **kwargs):
        builds.append(args[0].variant)
        return build(*args, **kwargs)

    def loop(config, data, device, networks=None):
        made["networks"] = [{k: v.clone() for k, v in m.state_dict().items()} for m in networks]
        return real_loop(config, data, device, networks)

    real_loop = bench.TutorialLoop
    monkeypatch.setattr(variants, "build_networks", counted)
    monkeypatch.setattr(trainer, "build_networks", counted)
    monkeypatch.setattr(bench, "TutorialLoop", loop)
    measure("nsgan", 32, BenchSpec.quick(steps=1, warmup=0, repeats=1))
    assert builds == ["nsgan"]
    # The tutorial loop got the very weights the trainer would have built from the seed.
    config = resolve_config("nsgan", "digits", overrides={"batch_size": 32, "device": "cpu"})
    G = Trainer(config, Path("/nonexistent-never-written"), quiet=True).G
    assert all(torch.equal(a, b) for a, b in zip(made["networks"][0].values(), G.state_dict().values()))


def test_bench_measures_both_loops_in_one_run():
    rows = measure("nsgan", 32, BenchSpec.quick(steps=5, warmup=1, repeats=1))
    assert [r["loop"] for r in rows] == ["ganzoo", "baseline"]
    assert all(r["images_per_second"] > 0 for r in rows)
    assert rows[0]["speedup_vs_baseline"] == pytest.approx(rows[0]["images_per_second"] / rows[1]["images_per_second"])
    assert rows[0]["device"] and rows[0]["torch"] == torch.__version__ and rows[1]["fast_paths"] == "tutorial"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fast_paths_match_the_plain_path(tmp_path, float64):
    def run(name: str, **fast: object) -> Trainer:
        config = resolve_config("dcgan", "digits", overrides={
            "steps": STEPS, "batch_size": 64, "device": "cuda", "log_every": 10, "sample_every": 0,
            "checkpoint_every": 0, **{f"fast.{k}": v for k, v in fast.items()}})
        trainer = Trainer(config, tmp_path / name, quiet=True)
        trainer.run()
        return trainer

    plain = run("plain", fused_adam=False, channels_last="off", compile="off", cuda_graph="off")
    fast = run("fast", fused_adam=True, channels_last="on", compile="reduce-overhead")
    # cuDNN picks algorithms per layout, and its weight gradients may sum in any order; in float32 its
    # convolutions may also run in TF32 (u = 5e-4). In float64 (no TF32) the CPU's bound holds.
    assert_same_weights(plain, fast, rtol=0, atol=TRAJECTORY_TOLERANCE)


def test_compiled_feature_extraction_keeps_the_fid():
    """torch-fidelity compiles the extractor (here ganzoo's domain classifier); the FID must stay
    within 1e-3 relative of the eager extractor's for the same samples."""
    import dataclasses

    from ganzoo.core.config import EvalSpec
    from ganzoo.evaluate.metrics import evaluate
    from ganzoo.zoo.variants import build_architecture

    data = load_dataset("digits", "test")
    config = resolve_config("dcgan", "digits", overrides={"arch.width": 8})
    torch.manual_seed(0)
    G, _ = build_architecture(config).build(data.sample_shape, config.z_dim, data.bounded)
    spec = EvalSpec(features="domain", n_samples=500, batch_size=250)
    eager = evaluate(G, config.z_dim, "digits", data, spec, torch.device("cpu"))
    compiled = evaluate(G, config.z_dim, "digits", data, dataclasses.replace(spec, precision="float32+compile"),
                        torch.device("cpu"))
    assert compiled["extractor_precision"] == "float32+compile" and eager["extractor_precision"] == "float32"
    # Features: a 4-layer float32 forward, <= 3e3 products along it, rounding lambda sqrt(n) u32 = 2e-5
    # (lambda ~ 5, Higham and Mary 2019) and nothing to amplify it; FID is quadratic in them, and here
    # (|mu1|^2 + |mu2|^2 + tr S1 + tr S2) / FID = 3.2, so FID moves by <= 2 x 3.2 x 2e-5 ~ 1e-4 relative:
    # the 1e-3 asked for holds on any CPU with 10x to spare (measured on a 2-core x86 CPU, torch 2.14, the
    # network compiled for real: 1.4e-8 relative; not bitwise equal, inductor's kernels round otherwise).
    assert compiled["fid"] == pytest.approx(eager["fid"], rel=1e-3)
    assert compiled["extractor"] == eager["extractor"], "comparable: the same extractor and weights"


def test_cuda_extraction_precisions_are_refused_off_cuda():
    from ganzoo.core.config import EvalSpec
    from ganzoo.evaluate.metrics import evaluate
    from ganzoo.zoo.variants import build_architecture

    data = load_dataset("digits", "test")
    config = resolve_config("dcgan", "digits", overrides={"arch.width": 8})
    G, _ = build_architecture(config).build(data.sample_shape, config.z_dim, data.bounded)
    for precision in ("bf16+channels_last", "tf32"):
        with pytest.raises(GanzooError, match=re.escape(f"extraction precision '{precision}' needs a CUDA device")):
            evaluate(G, config.z_dim, "digits", data, EvalSpec(features="domain", n_samples=100, precision=precision),
                     torch.device("cpu"))
    with pytest.raises(GanzooError, match="evaluation precision must be auto or one of float32, tf32, bf16"):
        EvalSpec(precision="compile+tf32").validate()
