"""The command line: bad input is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import page
from support.plugins import (
    RAISING_PLUGIN,  # a loss whose G loss raises at run time, not at registration
)

from ganzoo import VARIANTS
from ganzoo.checks import contract
from ganzoo.cli import main

TINY = ["--steps", "4", "--batch-size", "16", "--log-every", "2", "--sample-every", "4",
        "--checkpoint-every", "2", "--device", "cpu", "--no-progress"]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, env=env, cwd=cwd,
        timeout=300,
    )


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--variant", "nope", "--dataset", "ring8"], "unknown variant 'nope'; known: began, dcgan, dragan"),
        (["train", "--variant", "began", "--dataset", "digits", "--penalty", "gp"], "loss 'began' takes no penalty"),
        (["train", "--variant", "wgan", "--dataset", "digits", "--d-weight-clip", "-1"], "d_weight_clip must be >= 0"),
        (["train", "--variant", "nsgan", "--dataset", "nope"], "unknown dataset 'nope'; known:"),
        (["train", "--variant", "nsgan", "--dataset", "ring8", "--lr", "-0.001"], "learning rate) must be > 0"),
        (["train", "--variant", "nsgan", "--dataset", "ring8", "--steps", "0"], "--steps must be >= 1, got 0"),
        (["train", "--variant", "nsgan", "--dataset", "ring8", "--set", "loss.nope=1"],
         "unknown setting 'loss.nope': loss 'ns' takes no settings"),
        (["train", "--variant", "nsgan", "--dataset", "ring8", "--set", "arch.width=32"],
         "unknown setting 'arch.width': architecture 'mlp' takes arch.d_activation, arch.d_depth, "
         "arch.d_hidden, arch.depth, arch.g_activation, arch.g_depth, arch.g_hidden, arch.hidden"),
        (["train", "--variant", "nsgan", "--dataset", "ring8", "--set", "adam.lrr=0.1"],
         "unknown setting 'adam.lrr'; known: adam.beta1, adam.beta2, adam.lr"),
        (["train", "--variant", "nsgan", "--dataset", "ring8", "--penalty", "r1"],
         "unknown penalty 'r1'; known: none, dragan, gp"),
        (["train", "--variant", "nsgan", "--dataset", "ring8", "--set", "oops"], "expected KEY=VALUE"),
        (["train", "--variant", "nsgan", "--dataset", "ring8", "--stpes", "3"], "unrecognized arguments: --stpes"),
        (["train", "--variant", "nsgan", "--dataset", "ring8", "--steps", "ten"], "invalid int value"),
        (["train", "--plugin", "no_such_module_xyz", "--variant", "nsgan", "--dataset", "ring8"],
         "cannot load plugin 'no_such_module_xyz'"),
        (["train", "--plugin", "missing_file.py", "--variant", "nsgan", "--dataset", "ring8"], "no such file"),
        (["train", "--variant", "dcgan", "--dataset", "ring8", "--device", "cpu"],
         "architecture 'dcgan' cannot train on 'ring8': dcgan needs image data"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["train", "--dataset", "ring8"], "train needs --variant and --dataset"),
        (["train", "--variant", "nsgan", "--dataset", "ring8", "--seed", "-1"], "seed must be in [0, 2**32), got -1"),
        (["train", "--variant", "nsgan", "--dataset", "ring8", "--seed", str(2**64 + 1)], "seed must be in [0, 2**32)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        code = main(args)
        raise SystemExit(code)
    assert exit_info.value.code == 2
    assert message in one_line_error(capsys.readouterr().err)


def test_subprocess_error_has_no_traceback(tmp_path):
    result = run_cli("train", "--variant", "nsgan", "--dataset", "ring8", "--batch-size", "-3", cwd=tmp_path)
    assert result.returncode == 2
    assert "batch_size must be > 0" in one_line_error(result.stderr)


def test_list_names_everything(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("vanilla: loss=minimax arch=mlp", "nsgan: loss=ns arch=mlp", "dcgan: loss=ns arch=dcgan",
                 "lsgan", "wgan-gp", "fashion-mnist", "digits", "ring8", "grid25", "folder:PATH",
                 "penalties:     none, dragan, gp", "kurach: "):
        assert name in out
    # every variant with the paper it comes from
    for line in (line for line in out.splitlines() if " loss=" in line):
        assert re.search(r" - .*(19|20)\d\d", line), line


@pytest.mark.parametrize("variant, dataset", [(v, contract.datasets_for(v)[-1]) for v in VARIANTS])
def test_every_variant_trains_through_ganzoo_train(variant, dataset, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--variant", variant, "--dataset", dataset, "--out", str(out), *TINY]) == 0
    assert json.loads((out / "status.json").read_text())["status"] == "completed"


def test_train_flags_for_the_switches(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--variant", "hinge", "--dataset", "digits", "--out", str(out), "--d-spectral-norm",
                 "--g-ema-decay", "0.9", "--penalty", "dragan", "--set", "penalty.weight=2", "--set", "arch.width=8",
                 *TINY]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["d_spectral_norm"] is True and config["g_ema_decay"] == 0.9
    assert config["penalty"] == "dragan" and config["penalty_params"] == {"weight": 2}


def test_train_writes_a_run_and_refuses_to_overwrite_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--variant", "vanilla", "--dataset", "digits", "--out", str(out), *TINY]) == 0
    assert {"config.json", "stats.jsonl", "status.json", "checkpoint.pt", "samples_000004.png"} <= {
        p.name for p in out.iterdir()
    }
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["train", "--variant", "nsgan", "--dataset", "digits", "--out", str(out), *TINY]) == 2
    assert "already holds a run" in one_line_error(capsys.readouterr().err)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "nothing saved was touched"


def test_a_run_folder_is_reused_only_where_nothing_would_be_lost(tmp_path, capsys, monkeypatch):
    """Interrupted before any checkpoint (Ctrl-C twice, inside the first step): the message says so and the
    same command starts again; a run that may still be training, or a folder that holds no run, is refused."""
    from ganzoo.training.trainer import Trainer

    out = tmp_path / "run"
    command = ["train", "--variant", "nsgan", "--dataset", "ring8", "--out", str(out), *TINY]
    real_run = Trainer.run

    def stopped_at_once(self, *args, **kwargs):
        self.engine.in_step = True  # as a second Ctrl-C inside the first step leaves it
        monkeypatch.setattr(self.engine, "advance", lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "run", stopped_at_once)
    assert main(command) == 130
    err = capsys.readouterr().err
    assert "nothing to resume; the same command starts it again" in err and "--resume" not in err
    assert json.loads((out / "status.json").read_text())["status"] == "interrupted"
    assert not (out / "checkpoint.pt").exists()
    monkeypatch.undo()
    assert main(command) == 0, capsys.readouterr().err
    capsys.readouterr()

    status = json.loads((out / "status.json").read_text())
    (out / "checkpoint.pt").unlink()
    (out / "status.json").write_text(json.dumps({**status, "status": "running"}))
    assert main(command) == 2
    assert "no checkpoint (status running)" in one_line_error(capsys.readouterr().err)

    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep")
    assert main(["train", "--variant", "nsgan", "--dataset", "ring8", "--out", str(mine), *TINY]) == 2
    assert "not empty and holds no run" in one_line_error(capsys.readouterr().err)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    for flags in ([], ["--overwrite"]):
        assert main(["train", "--variant", "nsgan", "--dataset", "ring8", "--out", str(mine / "thesis.tex"), *TINY,
                     *flags]) == 2
        assert "is a file, not a folder" in one_line_error(capsys.readouterr().err)
    assert (mine / "thesis.tex").read_text() == "keep"


def test_resume_extends_a_finished_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--variant", "nsgan", "--dataset", "ring8", "--out", str(out), *TINY]) == 0
    assert main(["train", "--resume", str(out), "--steps", "8", "--no-progress"]) == 0
    assert "completed at 8 D updates" in capsys.readouterr().out
    steps = [json.loads(line)["step"] for line in (out / "stats.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]


def test_train_counts_steps_in_d_updates_as_a_sweep_does_and_g_updates_one_flag_away(tmp_path, capsys):
    # wgan's n_critic is 5: --steps 20 is 20 D updates (4 G updates), as a sweep's budget counts them.
    base = ["train", "--variant", "wgan", "--dataset", "ring8", "--arch", "mlp", "--batch-size", "16", "--log-every", "1",
            "--sample-every", "0", "--checkpoint-every", "0", "--device", "cpu", "--no-progress"]
    assert main([*base, "--steps", "20", "--out", str(tmp_path / "d")]) == 0
    assert "completed at 20 D updates (4 G updates)" in capsys.readouterr().out
    config = json.loads((tmp_path / "d" / "config.json").read_text())
    assert (config["steps"], config["length_unit"]) == (4, "d_updates")
    assert main([*base, "--steps", "20", "--unit", "g_updates", "--out", str(tmp_path / "g")]) == 0
    assert "completed at 20 G updates" in capsys.readouterr().out
    # --eval-every counts the same unit: every 10 D updates is every 2 G updates.
    assert main([*base, "--steps", "20", "--eval-every", "10", "--features", "points", "--n-samples", "64",
                 "--n-reference", "64", "--out", str(tmp_path / "e")]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "e" / "config.json").read_text())["callback_every"] == 2
    # A resumed run counts in its own unit: --steps 40 on the D-update run is 40 D updates.
    assert main(["train", "--resume", str(tmp_path / "d"), "--steps", "40", "--no-progress"]) == 0
    assert "completed at 40 D updates (8 G updates)" in capsys.readouterr().out


def test_a_run_made_when_steps_counted_g_updates_resumes_as_it_was(tmp_path, capsys):
    # config.json of a run begun before length_unit existed: its --steps counted G updates, and still do.
    out = tmp_path / "old"
    assert main(["train", "--variant", "wgan", "--dataset", "ring8", "--arch", "mlp", "--batch-size", "16",
                 "--log-every", "1", "--sample-every", "0", "--checkpoint-every", "0", "--device", "cpu",
                 "--steps", "3", "--unit", "g_updates", "--out", str(out), "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    del config["length_unit"]
    (out / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--steps", "6", "--no-progress"]) == 0
    assert "completed at 6 G updates" in capsys.readouterr().out
    assert [json.loads(line)["step"] for line in (out / "stats.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("args, message", [
    (["--set", "steps=5"], "--set steps=... is not taken: a run's length goes by --steps N (with --unit to say what it counts)"),
    (["--d-updates", "5", "--unit", "g_updates"], "--d-updates counts D updates, --unit g_updates says otherwise"),
    (["--steps", "5", "--epochs", "1"], "argument --epochs: not allowed with argument --steps"),
    (["--set", "pack=40", "--batch-size", "64", "--steps", "2"],
     "batch size 64 packs of 40 (2,560 samples) exceeds the dataset's 1,437 samples; lower batch_size or pack"),
])
def test_lengths_and_batches_that_cannot_be_read_one_way_are_refused(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:  # argparse's refusals exit; ganzoo's return
        raise SystemExit(main(["train", "--variant", "nsgan", "--dataset", "digits", "--device", "cpu", "--no-progress",
                               *args]))
    assert exit_info.value.code == 2 and message in one_line_error(capsys.readouterr().err)


def test_dry_run_prints_config_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--variant", "wgan-gp", "--dataset", "digits", "--arch", "mlp", "--set", "penalty.weight=2.5",
            "--out", str(out), "--dry-run"]
    assert main(args) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["arch"] == "mlp" and config["loss"] == "wasserstein" and config["penalty"] == "gp"
    assert config["penalty_params"] == {"weight": 2.5}
    assert not out.exists()


def test_installed_plugin_entry_point(tmp_path):
    """A package that declares a `ganzoo.plugins` entry point (the group 0.2 documented) is loaded by every command."""
    (tmp_path / "zoo_extra.py").write_text(
        "from ganzoo import Variant, register_variant\n"
        "register_variant('ns-dcgan-via-entry-point', Variant(loss='ns', arch='dcgan'))\n"
    )
    dist = tmp_path / "zoo_extra-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-extra\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ganzoo.plugins]\nzoo_extra = zoo_extra\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    result = run_cli("list", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ns-dcgan-via-entry-point: loss=ns arch=dcgan (plugin: zoo_extra)" in result.stdout


def test_list_marks_what_a_plugin_registered(tmp_path):
    (tmp_path / "raising.py").write_text(RAISING_PLUGIN)
    result = run_cli("list", "--plugin", "raising.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  test-plugin-raises-mlp: loss=test-plugin-raises arch=mlp (plugin: raising.py)" in lines
    losses = next(line for line in lines if line.startswith("losses:"))
    assert ", test-plugin-raises (plugin: raising.py), " in losses
    assert result.stdout.count("(plugin: ") == 2, "ganzoo's own entries are not marked"


def test_version_and_presets_and_defaults_in_help(capsys):
    from ganzoo import __version__
    from ganzoo.sweep import shipped_presets

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"ganzoo {__version__}"
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert set(shipped_presets()) >= {"smoke", "fashion-mnist"}
    for name, purpose in shipped_presets().items():
        assert purpose and f"  {name}: {purpose}" in out, name
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Default: the variant's, else 2000 G updates" in help_text
    assert "Exit 0: completed; 1: diverged" in help_text and "3: failed" in help_text
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert "(default: runs)" in " ".join(capsys.readouterr().out.split())


def test_the_set_examples_work_where_they_say(capsys):
    """Each --set example of the README and of train --help resolves on every variant, or on the
    variant or architecture it names ("arch.width=32 on dcgan")."""
    from ganzoo.cli.parser import key_value
    from ganzoo.zoo.variants import resolve_config

    readme = " ".join(page("training").read_text().split())
    flags = re.search(r"`--set KEY=VALUE` for any setting by dotted key \((.*?)\); `--device", readme).group(1)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    set_help = re.search(r"--set KEY=VALUE (.*?) --steps N", help_text).group(1)
    for text in (flags, set_help):
        examples = re.findall(r"`?([\w.]+=[^\s`,;]+)`?(?: on `?([\w-]+)`?)?", text)
        assert len(examples) >= 3 and any(e.startswith("arch.") for e, _ in examples), text
        for example, where in examples:
            on = [v for v in VARIANTS if not where or VARIANTS.get(v).arch == where]
            variants = [where] if where in VARIANTS else on
            assert variants, f"{example} on {where}: no such variant or architecture"
            for variant in variants:
                resolve_config(variant, "digits", overrides=dict([key_value(example)]))


def test_every_option_of_eval_says_what_it_does(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    device = "--device DEVICE auto, cpu or cuda[:N]: the device G and the feature extractor run on (default: auto)"
    assert device in help_text
    from ganzoo.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert all(a.help for a in commands["eval"]._actions if a.option_strings)


def test_user_runs_never_write_into_the_committed_results():
    """results/ holds the project's committed showcase; commands write under runs/ unless told."""
    from ganzoo.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["sweep"]).results == Path("runs")
    assert parser.parse_args(["bench"]).out == Path("runs") / "bench"
    assert parser.parse_args(["bench", "--quick"]).out == Path("runs") / "bench"


def test_bench_widths_writes_member_steps_per_second_and_the_protocol_hours(tmp_path):
    result = run_cli("bench", "--quick", "--widths", "1,2", "--steps", "5", "--device", "cpu", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    import pandas as pd

    frame = pd.read_csv(tmp_path / "population_width.csv")
    assert list(frame["members"]) == [1, 2] and (frame["member_steps_per_second"] > 0).all()
    assert {"device", "torch", "precision", "execution", "fashion_mnist_training_hours"} <= set(frame.columns)
    # 7 variants x (100 trials + 50 repeat runs) x 15,625 steps: the budget of 15,625 D updates (20 epochs
    # of 50,000 images at batch 64) at n_critic 1, its dearest case
    assert "fashion-mnist protocol at P=" in result.stderr and "16,406,250 member-steps" in result.stderr
    bad = run_cli("bench", "--widths", "1,x", "--out", str(tmp_path))
    assert bad.returncode == 2 and bad.stderr.strip() == "ganzoo bench: error: --widths must be comma-separated positive integers, got '1,x'"


def _raising_plugin(tmp_path: Path) -> Path:
    path = tmp_path / "raising_plugin.py"
    path.write_text(RAISING_PLUGIN)
    return path


def test_an_exception_in_plugin_code_fails_the_run_with_one_line(tmp_path):
    plugin = _raising_plugin(tmp_path)
    line = RAISING_PLUGIN.splitlines().index('        raise ValueError("no G loss today")') + 1
    args = ["train", "--plugin", str(plugin), "--variant", "test-plugin-raises-mlp", "--dataset", "ring8", *TINY]
    result = run_cli(*args, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 3, "failed, not 1 (diverged) or 2 (bad input)"
    error = one_line_error(result.stderr)
    assert "failed: ValueError: no G loss today" in error
    assert f"raising_plugin.py:{line}, in generator_loss" in error and "--debug" in error
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "failed" and "no G loss today" in status["message"]

    debug = run_cli(*args, "--out", str(tmp_path / "run2"), "--debug", cwd=tmp_path)
    assert debug.returncode == 3 and "Traceback" in debug.stderr and "raising_plugin.py" in debug.stderr


def test_a_sweep_whose_every_trial_failed_exits_3_and_says_why(tmp_path):
    plugin = _raising_plugin(tmp_path)
    preset = tmp_path / "failing.toml"
    preset.write_text('variants = ["test-plugin-raises-mlp"]\ndatasets = ["ring8"]\nn_trials = 2\nsampler = "random"\n'
                      'steps = 4\nbatch_size = 16\ndevice = "cpu"\n[evaluation]\nn_samples = 50\n')
    result = run_cli("sweep", "--plugin", str(plugin), "--preset", str(preset), "--results", str(tmp_path / "r"),
                     cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "test-plugin-raises-mlp@ring8: all 2 trials failed; first error: ValueError: no G loss today" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "r" / "failing" / "report.html").exists(), "the report is still written"


MISTAKES_PLUGIN = '''
import dataclasses
import math

import torch
from torch import nn

import ganzoo


@ganzoo.register_architecture("two-logits")
@dataclasses.dataclass(frozen=True)
class TwoLogits(ganzoo.Architecture):
    def build(self, sample_shape, z_dim, bounded):
        size = math.prod(sample_shape)
        return nn.Linear(z_dim, size), nn.Linear(size, 2)  # D: two logits per sample, not one


@ganzoo.register_architecture("wrong-samples")
@dataclasses.dataclass(frozen=True)
class WrongSamples(ganzoo.Architecture):
    def build(self, sample_shape, z_dim, bounded):
        return nn.Linear(z_dim, 3), nn.Sequential(nn.Linear(3, 1), nn.Flatten(0))  # G: 3 numbers, data has 2


@ganzoo.register_loss("per-sample")
@dataclasses.dataclass(frozen=True)
class PerSample(ganzoo.Loss):
    def discriminator_loss(self, real, fake):
        return nn.functional.softplus(-real) + nn.functional.softplus(fake)  # no mean: one per sample

    def generator_loss(self, fake):
        return nn.functional.softplus(-fake).mean()


def points(request, values):
    x = torch.randn(64, 2)
    x[3] = values
    return ganzoo.Data("p", x, None, "points", (2,))


@ganzoo.register_dataset("nan-points")
def nan_points(request):
    return points(request, float("nan"))


@ganzoo.register_dataset("bad-shape")
def bad_shape(request):
    return ganzoo.Data("b", torch.randn(64, 2), None, "points", (3,))


@ganzoo.register_dataset("bad-labels")
def bad_labels(request):
    return ganzoo.Data("l", torch.randn(64, 2), torch.arange(64) % 12, "points", (2,), num_classes=10)


@ganzoo.register_dataset("train-only")
def train_only(request):
    if request.split != "train":
        raise ganzoo.GanzooError(f"no {request.split} split")
    return points(request, 0.0)


ganzoo.register_variant("two-logits-gan", ganzoo.Variant("ns", "two-logits"))
ganzoo.register_variant("wrong-samples-gan", ganzoo.Variant("ns", "wrong-samples"))
ganzoo.register_variant("per-sample-gan", ganzoo.Variant("per-sample", "mlp"))
'''


def _line_of(text: str, needle: str, after: str = "") -> int:
    """The number of the first line holding ``needle`` after the first holding ``after``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines, 1) if i > start and needle in line)


@pytest.mark.parametrize("variant, expected", [
    ("two-logits-gan", ("architecture 'two-logits' (built at {plugin}:{two_logits}", "D(x) for 2 samples has shape (2, 2); expected (2,)")),
    ("wrong-samples-gan", ("architecture 'wrong-samples' (built at {plugin}:{wrong_samples}", "has shape (2, 3); expected (2, 2)")),
    ("per-sample-gan", ("PerSample.discriminator_loss (at {plugin}:{loss}) returned shape (32,)", "a loss returns a scalar")),
])
def test_a_plugins_output_mistake_fails_the_run_at_its_definition(variant, expected, tmp_path):
    """Before, a D of two logits per sample trained to 'completed', exit 0, and the others stopped in torch's
    internals with no file or line."""
    plugin = tmp_path / "mistakes.py"
    plugin.write_text(MISTAKES_PLUGIN)
    lines = {"two_logits": _line_of(MISTAKES_PLUGIN, "def build", after="class TwoLogits"),
             "wrong_samples": _line_of(MISTAKES_PLUGIN, "def build", after="class WrongSamples"),
             "loss": _line_of(MISTAKES_PLUGIN, "def discriminator_loss")}
    result = run_cli("train", "--plugin", str(plugin), "--variant", variant, "--dataset", "ring8", *TINY,
                     "--batch-size", "32", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    error = one_line_error(result.stderr)
    for text in expected:
        assert text.format_map({"plugin": plugin, **lines}) in error, error


@pytest.mark.parametrize("dataset, message", [
    ("nan-points", "dataset 'nan-points' (train split): 1 of 64 samples hold NaN or infinite values"),
    ("bad-shape", "dataset 'bad-shape' (train split): samples of shape (2,) but sample_shape (3,)"),
    ("bad-labels", "dataset 'bad-labels' (train split): labels y must lie in [0, num_classes = 10), got values in [0, 11]"),
    ("train-only", "evaluation compares G's samples with train-only's test split, which cannot be loaded: no test split"),
])
def test_a_plugin_datasets_mistake_is_bad_input_before_training(dataset, message, tmp_path):
    """Before, NaN data trained and was reported as the variant diverging, a wrong sample_shape was a bare
    torch error, and a missing test split failed only at the first evaluation, after training."""
    plugin = tmp_path / "mistakes.py"
    plugin.write_text(MISTAKES_PLUGIN)
    result = run_cli("train", "--plugin", str(plugin), "--variant", "nsgan", "--dataset", dataset, *TINY,
                     "--eval-every", "4", "--n-samples", "50", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in one_line_error(result.stderr)
    assert not (tmp_path / "run").exists(), "nothing was trained or written"
    preset = tiny_sweep(tmp_path, dataset)
    swept = run_cli("sweep", "--plugin", str(plugin), "--preset", str(preset), "--no-progress", cwd=tmp_path)
    assert swept.returncode == 2 and dataset in one_line_error(swept.stderr), swept.stderr


def tiny_sweep(tmp_path: Path, dataset: str) -> Path:
    preset = tmp_path / "tiny.toml"
    preset.write_text(f'variants = ["nsgan"]\ndatasets = ["{dataset}"]\nn_trials = 1\nsteps = 4\ndevice = "cpu"\n'
                      '[evaluation]\nn_samples = 50\n')
    return preset
