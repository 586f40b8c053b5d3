"""Metrics with known answers: FID/KID of a distribution with itself and under a known shift,
stability figures of constructed logs, throughput fields, `ganzoo eval` and `--eval-every`."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from ganzoo import resolve_config
from ganzoo.cli import main
from ganzoo.core.config import EvalSpec
from ganzoo.core.rundir import append_jsonl, read_jsonl, write_json
from ganzoo.data import load_dataset
from ganzoo.evaluate.metrics import evaluate
from ganzoo.evaluate.stability import fid_curve, run_stability, seed_summary
from ganzoo.zoo.samples import generate

CPU = torch.device("cpu")


class MixtureSampler(nn.Module):
    """A perfect generator for a Gaussian mixture, optionally shifted: a known answer for FID."""

    def __init__(self, centers: torch.Tensor, std: float, shift: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("centers", centers)
        self.std, self.shift = std, shift
        self.dummy = nn.Parameter(torch.zeros(()))  # so the sampler has a device

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        mode = (torch.special.ndtr(z[:, 0]) * len(self.centers)).long().clamp_(max=len(self.centers) - 1)
        return self.centers[mode] + self.std * z[:, 1:3] + self.shift


@pytest.fixture(scope="module")
def ring_test():
    return load_dataset("ring8", "test")


def test_points_fid_is_near_zero_for_the_true_distribution_and_grows_with_a_shift(ring_test):
    spec = EvalSpec(features="points", n_samples=10_000, metrics=("fid", "kid"))
    perfect = evaluate(MixtureSampler(ring_test.centers, ring_test.std), 3, "ring8", ring_test, spec, CPU)
    shifted = evaluate(MixtureSampler(ring_test.centers, ring_test.std, shift=0.1), 3, "ring8", ring_test, spec, CPU)
    shifted_more = evaluate(MixtureSampler(ring_test.centers, ring_test.std, shift=1.0), 3, "ring8", ring_test, spec, CPU)
    assert perfect["fid"] < 0.01 < shifted["fid"] < shifted_more["fid"]
    assert shifted["kid_mean"] > 100 * perfect["kid_mean"]
    assert perfect["modes_covered"] == 8 and perfect["high_quality_share"] > 0.97
    assert shifted_more["modes_covered"] == 0
    # The per-mode counts are in the result; 10,000 samples spread evenly: the reverse KL is near 0.
    assert len(perfect["mode_counts"]) == 8 and sum(perfect["mode_counts"]) == round(perfect["high_quality_share"] * 10_000)
    assert 0 <= perfect["mode_reverse_kl"] < 0.01 and shifted_more["mode_reverse_kl"] is None
    for r in (perfect, shifted):
        assert r["extractor"] == "points-rff256@0.2" and r["n_samples"] == 10_000 and r["n_reference"] == 10_000
        assert r["eval_images_per_second"] > 0 and r["torch"] == torch.__version__


class BlobSampler(nn.Module):
    """A Gaussian with the ring's own mean and covariance: it covers no mode."""

    def __init__(self, cov: torch.Tensor) -> None:
        super().__init__()
        self.chol = nn.Parameter(torch.linalg.cholesky(cov), requires_grad=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, :2] @ self.chol.T


def test_points_fid_tells_a_ring_from_a_blob_with_the_same_moments(ring_test):
    from torch_fidelity.metric_fid import (
        fid_features_to_statistics,
        fid_statistics_to_metric,
    )

    cov = torch.cov(ring_test.x.double().T).float()
    spec = EvalSpec(features="points", n_samples=10_000, metrics=("fid",))
    blob = evaluate(BlobSampler(cov), 3, "ring8", ring_test, spec, CPU)
    perfect = evaluate(MixtureSampler(ring_test.centers, ring_test.std), 3, "ring8", ring_test, spec, CPU)
    # On raw coordinates the two are indistinguishable: that is why points are lifted first.
    raw = fid_statistics_to_metric(fid_features_to_statistics(generate(BlobSampler(cov), 3, 10_000, 0, CPU).double()),
                                   fid_features_to_statistics(ring_test.x.double()), False)
    assert raw["frechet_inception_distance"] < 0.01
    assert blob["fid"] > 50 * max(perfect["fid"], 1e-3)
    # Mode coverage as VEEGAN and PacGAN count it (one high-quality sample a mode) sees the blob's 10,000
    # samples touch every mode; its share of high-quality samples gives it away, and the 1% rule too.
    assert blob["mode_rule"] == "one-sample" and blob["modes_covered"] == 8
    assert blob["high_quality_share"] < 0.1 < perfect["high_quality_share"]
    one_percent = evaluate(BlobSampler(cov), 3, "ring8", ring_test, dataclasses.replace(spec, mode_rule="one-percent"), CPU)
    assert one_percent["mode_rule"] == "one-percent" and one_percent["modes_covered"] == 0


def test_points_precision_recall_see_mode_collapse(ring_test):
    one_mode = ring_test.centers[:1]
    collapsed = evaluate(MixtureSampler(one_mode, ring_test.std), 3, "ring8", ring_test,
                         EvalSpec(features="points", n_samples=2000, metrics=("prc",)), CPU)
    # Every sample is realistic (high precision) but most of the data is missed (low recall).
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.3
    assert collapsed["modes_covered"] == 1


def write_run(run_dir, records, status="completed", metrics=()):
    write_json(run_dir / "status.json", {"status": status, "step": records[-1]["step"], "steps": 100, "message": ""})
    for r in records:
        append_jsonl(run_dir / "stats.jsonl", r)
    for m in metrics:
        append_jsonl(run_dir / "metrics.jsonl", m)


def stats(step, d_real, d_fake, g_loss=1.0):
    return {"step": step, "d_real": d_real, "d_fake": d_fake, "d_loss": 0.5, "g_loss": g_loss,
            "d_grad_norm": step / 10, "g_grad_norm": 1.0}


def test_stability_of_a_constructed_log(tmp_path):
    # Saturated from step 30 to step 60 (three log points after step 30), then recovered.
    records = [stats(10, 0.6, 0.4), stats(20, 0.7, 0.3), stats(30, 0.7, 0.3), stats(40, 0.999, 0.001),
               stats(50, 0.999, 0.001), stats(60, 0.999, 0.001), stats(70, 0.6, 0.4, g_loss=3.0),
               stats(80, 0.6, 0.4, g_loss=1.0), stats(90, 0.6, 0.4, g_loss=3.0), stats(100, 0.6, 0.4)]
    metrics = [{"step": 50, "fid": 9.0, "extractor": "x", "n_samples": 10, "reference": "r"},
               {"step": 100, "fid": 12.0, "extractor": "x", "n_samples": 10, "reference": "r"}]
    write_run(tmp_path, records, metrics=metrics)
    s = run_stability(tmp_path)
    assert s["d_saturated_share"] == pytest.approx(0.3)
    assert s["d_saturated_longest_steps"] == 30
    assert s["g_loss_oscillation"] > 1.0 and s["d_loss_oscillation"] == 0.0
    assert s["d_grad_norm_max"] == 10.0 and s["d_grad_norm_median"] == pytest.approx(5.5)
    assert (s["best_fid"], s["best_fid_step"], s["final_fid"]) == (9.0, 50, 12.0)


def test_fid_curve_ignores_incomparable_results():
    metrics = [{"step": 1, "fid": 1.0, "extractor": "inception", "n_samples": 10, "reference": "r"},
               {"step": 2, "fid": 5.0, "extractor": "domain", "n_samples": 10, "reference": "r"}]
    assert fid_curve(metrics)["best_fid"] == 5.0, "an inception FID is not better than a domain FID"


def test_seed_summary():
    s = seed_summary([10.0, 12.0, 11.0, 13.0, 9.0])
    assert s["mean"] == pytest.approx(11.0) and s["std"] == pytest.approx(1.5811, abs=1e-3)
    assert s["ci_low"] < 11.0 < s["ci_high"] and s["ci_high"] - s["ci_low"] < 4
    assert seed_summary([7.0])["std"] == 0.0 and seed_summary([7.0])["ci_low"] is None
    assert seed_summary([])["mean"] is None


def tiny_run(tmp_path, *extra: str) -> int:
    return main(["train", "--variant", "nsgan", "--dataset", "ring8", "--steps", "40", "--batch-size", "64",
                 "--log-every", "10", "--sample-every", "0", "--checkpoint-every", "10", "--device", "cpu",
                 "--no-progress", "--out", str(tmp_path), *extra])


def test_every_run_records_throughput_and_stability(tmp_path):
    assert tiny_run(tmp_path) == 0
    t = json.loads((tmp_path / "throughput.json").read_text())
    assert t["train_images_per_second"] > 0 and t["ms_per_step"] > 0 and t["peak_memory_bytes"] > 0
    assert t["warmup_excluded"] and t["timed_steps"] == 30, "the first log interval is warm-up"
    assert t["device"].startswith("cpu") and t["torch"] == torch.__version__ and t["dtype"] == "float32"
    s = json.loads((tmp_path / "stability.json").read_text())
    assert s["status"] == "completed" and s["d_grad_norm_max"] > 0


def test_eval_every_and_ganzoo_eval(tmp_path, capsys):
    assert tiny_run(tmp_path, "--eval-every", "20", "--n-samples", "500") == 0
    steps = [m["step"] for m in read_jsonl(tmp_path / "metrics.jsonl")]
    assert steps == [20, 40]
    assert json.loads((tmp_path / "stability.json").read_text())["fid_curve"][-1][0] == 40
    capsys.readouterr()
    assert main(["eval", str(tmp_path), "--n-samples", "800", "--metrics", "fid,kid,prc", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 40 and result["n_samples"] == 800 and result["extractor"].startswith("points-rff")
    assert {"fid", "kid_mean", "precision", "recall", "modes_covered"} <= set(result)
    assert len(list(read_jsonl(tmp_path / "metrics.jsonl"))) == 3


@pytest.mark.parametrize("args, message", [
    (["--features", "inception"], "--features inception applies to images, and ring8 is 2D points: use points"),
    (["--metrics", "fid,bogus"], "metrics must be a non-empty subset"),
    (["--n-samples", "1"], "n_samples must be at least 2"),
])
def test_eval_bad_input(tmp_path, capsys, args, message):
    assert tiny_run(tmp_path) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path), "--device", "cpu", *args]) == 2
    assert message in capsys.readouterr().err


def test_train_refuses_an_extractor_that_does_not_apply_before_training(tmp_path, capsys):
    """``--features`` that does not apply to the data is refused before the first step: no run directory,
    not an error at the first evaluation after the training it would have scored."""
    assert tiny_run(tmp_path / "run", "--eval-every", "20", "--features", "domain") == 2
    err = capsys.readouterr().err
    assert "--features domain applies to labelled images, and ring8 is 2D points: use points" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_eval_of_a_missing_run_is_one_line(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert "config.json not found" in capsys.readouterr().err


def test_evaluation_settings_round_trip_in_config():
    config = resolve_config("nsgan", "ring8", overrides={"evaluation": {"features": "points", "n_samples": 64}})
    assert config.evaluation == EvalSpec(features="points", n_samples=64)


class LookupGenerator(nn.Module):
    """Returns images of a fixed set, picked by the noise: the data itself, optionally noised."""

    def __init__(self, images: torch.Tensor, noise: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("images", images)
        self.noise = noise

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        index = (torch.special.ndtr(z[:, 0]) * len(self.images)).long().clamp_(max=len(self.images) - 1)
        out = self.images[index]
        return (out + self.noise * z[:, 1:2, None, None]).clamp(-1, 1) if self.noise else out


@pytest.fixture(scope="module")
def digits_test():
    return load_dataset("digits", "test")


def test_domain_fid_through_torch_fidelity(digits_test, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path_factory.mktemp("cache")))
    spec = EvalSpec(features="domain", n_samples=1000, metrics=("fid", "kid", "prc"))
    real = evaluate(LookupGenerator(digits_test.x), 2, "digits", digits_test, spec, CPU)
    noisy = evaluate(LookupGenerator(digits_test.x, noise=0.5), 2, "digits", digits_test, spec, CPU)
    assert real["extractor"].startswith("domain:digits@") and real["n_reference"] == 360
    assert real["fid"] < 0.1 * noisy["fid"] and noisy["kid_mean"] > real["kid_mean"]
    # The domain classifier's class histogram of generated samples: the data's own covers all ten.
    assert real["classes_covered"] == 10 and real["class_kl"] < 0.05 and real["domain_test_accuracy"] >= 0.95
    one_class = digits_test.x[digits_test.y == 3]
    collapsed = evaluate(LookupGenerator(one_class), 2, "digits", digits_test, spec, CPU)
    assert collapsed["classes_covered"] <= 2 and collapsed["class_kl"] > 1.0
    # Coverage (Naeem et al. 2020): 1000 draws of the 360 test images leave a given image undrawn with
    # probability e^-2.8 = 0.06, and its ball holds neighbours' copies too; one class of ten covers at
    # most its own tenth of the balls and those of its nearest neighbours in other classes.
    assert real["coverage"] >= 0.9 and collapsed["coverage"] < 0.3
    assert real["precision"] >= 0.9 and collapsed["recall"] < real["recall"]


def test_inception_fid_reports_no_inception_score_without_a_classifier_head(digits_test):
    """The offline weights (prepared by the test_inception fixture or `ganzoo fid-weights`) carry no
    classifier: the Inception Score is None with a reason, never 0."""
    from ganzoo.evaluate.inception import prepare_inception_weights

    prepare_inception_weights()
    spec = EvalSpec(features="inception", n_samples=8, n_reference=8, metrics=("fid", "isc"), batch_size=8)
    result = evaluate(LookupGenerator(digits_test.x[:8]), 2, "digits", digits_test, spec, CPU)
    assert result["extractor"].startswith("inception-v3-compat@") and result["extractor"].endswith("-nohead")
    assert result["inception_score"] is None and "no classifier head" in result["inception_score_note"]
    assert result["n_samples"] == 8 and result["n_reference"] == 8 and result["fid"] == result["fid"]
