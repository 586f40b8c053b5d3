"""Sweeps: presets, the command line (Ctrl-C, bad input, a study with other settings), pruning, records,
populations, conditions. What every storage kind promises is tests/test_sweep_storages.py's."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from support.presets import TINY, tiny_preset

from ganzoo.core.errors import GanzooError
from ganzoo.sweep import Sweep, SweepConfig, load_preset, summarise
from ganzoo.sweep.trials import Pruning, Siblings
from ganzoo.training.trainer import StopTraining


def study_trials(results: Path, name: str = "s", pair: str = "nsgan@ring8", storage: str | None = None):
    url = storage or f"sqlite:///{results / name / 'study.db'}"
    return optuna.load_study(study_name=f"{name}/{pair}", storage=url).get_trials()


def load_trials(study_dir: Path, pair: str = "nsgan@ring8"):
    """A study's trials from the store its sweep.json names (a journal file for several workers)."""
    from ganzoo.sweep.storage import Storage

    kind, _, path = json.loads((study_dir / "sweep.json").read_text())["storage"].partition(":")
    assert kind == "journal", "one file store per study folder takes several workers"
    storage = Storage(f"journal:{study_dir / Path(path).name}", study_dir / "unused.lock").open()
    return optuna.load_study(study_name=f"{study_dir.name}/{pair}", storage=storage).get_trials()


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_shipped_presets_load():
    smoke = load_preset("smoke")
    assert smoke.device == "cpu" and set(smoke.variants) == {"vanilla", "nsgan", "dcgan"}
    lucic = load_preset("fashion-mnist")
    assert lucic.arch == "infogan" and lucic.n_trials == 100 and lucic.evaluation.features == "inception"
    assert lucic.evaluation.n_samples == 10_000 and lucic.epochs == 20 and lucic.settings["z_dim"] == 64


def test_the_lucic_preset_covers_all_seven_losses_of_the_study_on_the_shared_network(tmp_path):
    from ganzoo.zoo.variants import VARIANTS

    lucic = load_preset("fashion-mnist")
    sweep = Sweep("lucic", lucic, tmp_path)
    # MM, NS, LSGAN, WGAN, WGAN-GP, DRAGAN, BEGAN
    configs = {p.variant: lucic.run_config(p) for p in sweep.pairs}
    assert {c.loss for c in configs.values()} == {"minimax", "ns", "ls", "wasserstein", "began"}
    assert {v: (c.penalty, c.d_weight_clip) for v, c in configs.items() if v.startswith(("wgan", "dragan"))} == {
        "wgan": ("none", 0.01), "wgan-gp": ("gp", 0.0), "dragan": ("dragan", 0.0)}
    assert all(c.arch == "infogan" for c in configs.values()), "one shared network"
    assert configs["began"].arch_params["d_autoencoder"] is True  # BEGAN's D: the shared network as an autoencoder
    assert len(lucic.variants) == 7 and all(v in VARIANTS for v in lucic.variants)


def test_the_kurach_preset_is_a_loss_by_normalisation_grid_on_one_architecture(tmp_path):
    kurach = load_preset("kurach")
    sweep = Sweep("kurach", kurach, tmp_path)
    cells = {(p.variant, p.condition): kurach.run_config(p) for p in sweep.pairs if p.dataset == "fashion-mnist"}
    assert {c.loss for c in cells.values()} == {"ns", "ls", "hinge"}
    assert {c.arch for c in cells.values()} == {"dcgan"}
    norms = {cond: (c.arch_params["d_norm"], c.d_spectral_norm) for (_, cond), c in cells.items()}
    assert norms == {"none": ("none", False), "bn": ("batch", False), "ln": ("layer", False), "sn": ("none", True)}
    assert len(cells) == 3 * 4 and [p.name for p in sweep.pairs][:2] == ["nsgan+none@fashion-mnist", "nsgan+bn@fashion-mnist"]


def test_every_registered_variant_runs_through_a_sweep(tmp_path):
    """Each variant, the new losses and their states and penalties among them, completes a trial of a
    sweep on the CPU, is scored, and is recorded under its name."""
    from ganzoo.core.config import EvalSpec
    from ganzoo.zoo.variants import VARIANTS

    # digits, and ring8 for the networks of points only (PacGAN's); each pair an architecture refuses is skipped
    config = SweepConfig(variants=tuple(VARIANTS), datasets=("digits", "ring8"), n_trials=1, sampler="random", space="narrow",
                         steps=4, batch_size=16, device="cpu", evaluation=EvalSpec(features="auto", n_samples=100),
                         variant_settings={v: {"arch.width": 8} for v in VARIANTS if VARIANTS.get(v).arch == "dcgan"})
    Sweep("zoo", config, tmp_path).run()
    frame = pd.read_csv(tmp_path / "zoo" / "trials.csv")
    assert set(frame["variant"]) == set(VARIANTS)
    assert (frame["state"] == "COMPLETE").all() and frame["fid_mean"].notna().all(), frame[["variant", "state"]]
    assert (frame["g_ema_decay"] == 0.0).all()


def test_conditions_give_each_variant_a_study_per_set_of_settings(tmp_path):
    config = dataclasses.replace(load_preset(str(tiny_preset(tmp_path, n_trials=1, steps=10))),
                                 conditions={"plain": {"g_ema_decay": 0.0}, "ema": {"g_ema_decay": 0.9}})
    Sweep("s", config, tmp_path / "results").run()
    frame = pd.read_csv(tmp_path / "results" / "s" / "trials.csv")
    assert sorted(frame["variant"]) == ["nsgan+ema", "nsgan+plain"] and (frame["state"] == "COMPLETE").all()
    assert dict(zip(frame["variant"], frame["g_ema_decay"])) == {"nsgan+ema": 0.9, "nsgan+plain": 0.0}
    trial = study_trials(tmp_path / "results", pair="nsgan+ema@ring8")[0]
    run_dir = Path(json.loads(trial.user_attrs["run_dirs"])[0])
    assert json.loads((run_dir / "config.json").read_text())["g_ema_decay"] == 0.9
    assert "nsgan+ema@ring8" in str(run_dir)
    study = optuna.load_study(study_name="s/nsgan+ema@ring8", storage=f"sqlite:///{tmp_path / 'results' / 's' / 'study.db'}")
    assert study.user_attrs["variant"] == "nsgan" and study.user_attrs["condition"] == "ema"
    from ganzoo.report import write_report

    write_report(tmp_path / "results" / "s")
    report = (tmp_path / "results" / "s" / "report.md").read_text()
    assert "Each variant ran under every condition, a study of its own (VARIANT+LABEL): +ema: g_ema_decay=0.9; " \
           "+plain: g_ema_decay=0.0." in report
    assert "1 of 2 trials were scored on a moving average of G's weights (decay 0.9), the others on G itself." in report


@pytest.mark.parametrize("conditions, message", [
    ({"a b": {"d_spectral_norm": True}}, "condition label must be a plain word"),
    ({"sn": {}}, "conditions.sn: expected a table of settings"),
    ({"sn": {"d_spectral_nrom": True}}, "nsgan+sn@ring8: conditions.sn: unknown setting 'd_spectral_nrom'"),
])
def test_bad_conditions_are_refused_before_any_trial(tmp_path, conditions, message):
    config = dataclasses.replace(load_preset(str(tiny_preset(tmp_path))), conditions=conditions)
    with pytest.raises(GanzooError) as refused:
        Sweep("s", config, tmp_path / "results").run()
    assert message in str(refused.value)
    assert not (tmp_path / "results" / "s" / "trials.csv").exists()


def running_trial_exists(results: Path) -> bool:
    """Whether the sweep has a RUNNING trial yet, read straight from its SQLite file, read-only: opening
    it through Optuna while the sweep creates its tables would race it (Optuna's RDBStorage writes
    its version rows when it finds none, even with skip_table_creation: a UNIQUE constraint on
    alembic_version then fails one side)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{results / 's' / 'study.db'}?mode=ro", uri=True)) as db:
            return db.execute("SELECT 1 FROM trials WHERE state = 'RUNNING' LIMIT 1").fetchone() is not None
    except sqlite3.OperationalError:  # no file, no table yet, or locked by the writer
        return False


def test_ctrl_c_on_the_command_line(tmp_path):
    """The sweep's own command, as a user types it: its study goes to runs/ (the default)."""
    preset = tiny_preset(tmp_path, n_trials=2, steps=3000)
    proc = subprocess.Popen([sys.executable, "-m", "ganzoo", "sweep", "--preset", str(preset), "--study", "s"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = tmp_path / "runs" / "s" / "study.db"
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        if db.exists() and running_trial_exists(tmp_path / "runs"):
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "re-run the same command to resume" in err and "Traceback" not in err
    states = [t.state for t in study_trials(tmp_path / "runs")]
    assert states == [TrialState.FAIL, TrialState.WAITING]


def test_existing_study_with_other_settings_is_refused_untouched(tmp_path):
    preset = tiny_preset(tmp_path, n_trials=1)
    assert cli("sweep", "--preset", str(preset), "--study", "s", cwd=tmp_path).returncode == 0
    folder = tmp_path / "runs" / "s"
    assert (folder / "report.html").exists() and (folder / "report.md").exists(), "the sweep writes its report"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    result = cli("sweep", "--preset", str(preset), "--study", "s", "--seeds", "3", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "was run with other settings: seeds 1 there, 3 now." in lines[0]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("text, message", [
    ('variants = ["nope"]\ndatasets = ["ring8"]\n', "unknown variant 'nope'"),
    ('variants = ["nsgan"]\ndatasets = ["ring8"]\nsampler = "bayes"\n', "sampler must be one of"),
    ('variants = ["nsgan"]\ndatasets = ["ring8"]\nn_trails = 3\n', "unknown preset key(s) n_trails"),
    ('variants = ["nsgan"\n', "not valid TOML"),
    ('variants = ["nsgan"]\ndatasets = ["ring8"]\n[evaluation]\nfeatures = "domain"\n',
     "evaluation.features: --features domain applies to labelled images, and ring8 is 2D points: use points"),
])
def test_bad_preset_is_one_line_exit_2(tmp_path, text, message):
    (tmp_path / "bad.toml").write_text(text)
    result = cli("sweep", "--preset", str(tmp_path / "bad.toml"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not (tmp_path / "runs" / "bad").exists()


LENGTHS = 'variants = ["nsgan"]\ndatasets = ["ring8"]\ndevice = "cpu"\n'


@pytest.mark.parametrize("text, flags, changes, message", [
    (LENGTHS + "steps = 5\nepochs = 1\n", [], {},
     "sets two lengths for one run, steps = 5 and epochs = 1: keep one of them"),
    (LENGTHS + "epochs = 0.01\n", ["--steps", "7"], {"steps": 7},
     "--steps 7 against preset PRESET's epochs = 0.01: two lengths for one run; give its length as it does "
     "(--epochs), or use a copy of the preset without epochs"),
    (LENGTHS + "steps = 5\n", ["--epochs", "2"], {"epochs": 2.0}, "--epochs 2.0 against preset PRESET's steps = 5"),
    (LENGTHS + 'sampler = "grid"\ndefault_trial = true\n', [], {},
     'sets default_trial = true, which its sampler = "grid" cannot honour'),
    (LENGTHS + "default_trial = true\n", ["--sampler", "grid"], {"sampler": "grid"},
     "sets default_trial = true, which --sampler grid cannot honour (a grid runs its own points, so the default "
     "configuration cannot go first): set default_trial = false, or use the random or tpe sampler"),
], ids=["two-lengths", "steps-against-epochs", "epochs-against-steps", "grid-default", "grid-flag-default"])
def test_ambiguous_settings_are_refused_naming_both_sides(tmp_path, text, flags, changes, message):
    # Before: epochs silently won over steps, --steps was ignored, and an explicit default_trial was dropped.
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(GanzooError) as refused:
        load_preset(str(tmp_path / "bad.toml"), changes)
    assert message.replace("PRESET", str(tmp_path / "bad.toml")) in str(refused.value)
    result = cli("sweep", "--preset", str(tmp_path / "bad.toml"), *flags, "--dry-run", cwd=tmp_path)
    assert result.returncode == 2 and one_line(result.stderr) == f"ganzoo sweep: error: {refused.value}"


def test_a_flag_replacing_the_presets_own_length_is_taken(tmp_path):
    (tmp_path / "p.toml").write_text(LENGTHS + "epochs = 1\n")
    assert load_preset(str(tmp_path / "p.toml"), {"epochs": 0.5}).epochs == 0.5
    (tmp_path / "q.toml").write_text(LENGTHS + "steps = 5\n")
    assert load_preset(str(tmp_path / "q.toml"), {"steps": 7, "budget": "g_updates"}).steps == 7


def test_the_dry_run_counts_in_words_that_agree_with_their_numbers(tmp_path):
    (tmp_path / "p.toml").write_text(LENGTHS + "epochs = 1\nseeds = 1\nn_trials = 1\nrepeat_seeds = 1\n")
    out = cli("sweep", "--preset", str(tmp_path / "p.toml"), "--dry-run", cwd=tmp_path).stdout
    assert "(1 epoch of 100,000 images at batch 64)" in out and "1 trial, 1 seed each" in out
    assert "again on 1 new seed (1..1)" in out and "seeds" not in out.replace("new seeds", "")


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("damage", ["empty", "garbage"])
def test_a_study_file_that_is_not_a_study_is_refused_and_nothing_is_retrained(tmp_path, damage):
    preset = tiny_preset(tmp_path, n_trials=1, steps=4)
    assert cli("sweep", "--preset", str(preset), "--study", "s", cwd=tmp_path).returncode == 0
    folder = tmp_path / "runs" / "s"
    (folder / "study.db").write_bytes(b"" if damage == "empty" else b"not a database at all, truncated" * 64)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "study.db"}
    result = cli("sweep", "--preset", str(preset), "--study", "s", cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result.stderr)
    if damage == "empty":  # before: taken as a new study, trial 0 retrained over its run folder
        assert "was begun in runs/s (sweep.json names it), but sqlite:///runs/s/study.db holds no such study" in line
    else:
        assert "cannot open storage sqlite:///runs/s/study.db: " in line and "file is not a database" in line
    assert "start over" in line and "rm -r runs/s" in line or "removing it and its study folder" in line
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "study.db"} == before


def test_pruning_callback_prunes_a_designed_case():
    """With two finished trials at FID 1 at step 10, a trial reporting FID 100 at step 10 is pruned
    by the median rule; one reporting 0.5 goes on."""
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    for _ in range(2):
        t = study.ask()
        t.report(1.0, 10)
        study.tell(t, 1.0)

    class Evaluator:
        last = None

    class State:
        step, final = 10, False

    for fid, pruned in ((0.5, False), (100.0, True)):
        trial = study.ask()
        Evaluator.last = {"fid": fid}
        siblings = Siblings()  # the trial's other seeds, in a population
        callback = Pruning(trial, Evaluator, siblings)
        if pruned:
            with pytest.raises(StopTraining) as stop:
                callback(State)
            assert stop.value.status == "pruned"
            with pytest.raises(StopTraining, match="first seed was pruned at step 10"):
                siblings(State)
        else:
            callback(State)
            siblings(State)  # goes on
        study.tell(trial, fid)


def seed(status: str, fid: float | None) -> dict:
    return {"seed": 0, "status": status, "run_dir": "x", "metrics": None if fid is None else {"fid": fid},
            "stability": {}, "throughput": {"device": "cpu"}}


def test_seed_aggregation():
    s = summarise([seed("completed", 10.0), seed("completed", 14.0)])
    assert s["objective"] == 12.0 and s["fid_std"] == pytest.approx(2 ** 1.5) and s["status"] == "complete"
    d = summarise([seed("completed", 10.0), seed("diverged", None)])
    assert math.isinf(d["objective"]) and d["status"] == "diverged" and d["diverged_seeds"] == 1


def test_grid_sampler_covers_its_grid(tmp_path):
    text = TINY.format(n_trials=2, seeds=1, steps=10).replace('sampler = "random"', 'sampler = "grid"')
    (tmp_path / "grid.toml").write_text(text)
    config = load_preset(str(tmp_path / "grid.toml"))
    Sweep("g", config, tmp_path / "results").run()
    trials = study_trials(tmp_path / "results", name="g")
    assert len({t.params["adam.lr"] for t in trials}) == 2, "grid points are not repeated"


def test_sweep_config_validation():
    with pytest.raises(GanzooError, match="a pruner needs intermediate results"):
        SweepConfig(variants=("nsgan",), datasets=("ring8",), pruner="median").validate()
    with pytest.raises(GanzooError, match="variant_settings for variants not in the sweep"):
        SweepConfig(variants=("nsgan",), datasets=("ring8",), variant_settings={"dcgan": {}}).validate()


def test_population_sweep_records_trials_as_one_at_a_time(tmp_path, float64):
    """--population 3: the same study records as trials run one by one (the random sampler proposes
    the same configurations either way). In float64 members follow their single runs to ~1e-14
    (test_population.py), so FIDs agree far inside 1e-6 and no sample changes its nearest mode; in
    float32 a ReLU flip can move a run by ~lr, and the figures would hold on one CPU only."""
    config = load_preset(str(tiny_preset(tmp_path, n_trials=3, seeds=2, steps=40)))
    Sweep("one", config, tmp_path / "results").run()
    Sweep("pop", config, tmp_path / "results", population=3).run()
    one, pop = (study_trials(tmp_path / "results", name=n) for n in ("one", "pop"))
    assert [t.state for t in pop] == [TrialState.COMPLETE] * 3
    assert [t.params for t in pop] == [t.params for t in one]
    for a, b in zip(one, pop):
        assert b.user_attrs["population"] == 3 and "population" not in a.user_attrs
        assert set(a.user_attrs) <= set(b.user_attrs)
        assert json.loads(b.user_attrs["fid_per_seed"]) == pytest.approx(json.loads(a.user_attrs["fid_per_seed"]), rel=1e-6)
        assert b.user_attrs["modes_covered"] == a.user_attrs["modes_covered"]
        for run_dir in json.loads(b.user_attrs["run_dirs"]):
            assert (Path(run_dir) / "metrics.jsonl").exists() and (Path(run_dir) / "stability.json").exists()


def test_population_flag_on_the_command_line(tmp_path):
    preset = tiny_preset(tmp_path, n_trials=2)
    result = cli("sweep", "--preset", str(preset), "--study", "s", "--population", "auto", cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # auto on a CPU: one trial at a time
    bad = cli("sweep", "--preset", str(preset), "--study", "t", "--population", "many", cwd=tmp_path)
    assert bad.returncode == 2 and "--population must be a positive integer or auto" in bad.stderr


SPECTRAL_NORM_PLUGIN = """
import dataclasses, math
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
import ganzoo

@ganzoo.register_architecture("sn-mlp")
@dataclasses.dataclass(frozen=True)
class SNMLP(ganzoo.Architecture):
    hidden: int = 32

    def build(self, sample_shape, z_dim, bounded):
        size = math.prod(sample_shape)
        G = nn.Sequential(nn.Linear(z_dim, self.hidden), nn.ReLU(), nn.Linear(self.hidden, size))
        D = nn.Sequential(spectral_norm(nn.Linear(size, self.hidden)), nn.LeakyReLU(0.2),
                          spectral_norm(nn.Linear(self.hidden, 1)), nn.Flatten(0))
        return G, D

ganzoo.register_variant("sn-nsgan", ganzoo.Variant("ns", "sn-mlp", "spectral-norm D"))
"""


def test_a_plugin_vmap_cannot_batch_trains_one_trial_at_a_time(tmp_path):
    """torch's spectral_norm parametrisation has no vmap batching rule (aten::div.out): the probe step
    finds it before trials are claimed, the pair trains one trial at a time, and every trial completes."""
    (tmp_path / "sn_gan.py").write_text(SPECTRAL_NORM_PLUGIN)
    preset = tiny_preset(tmp_path, n_trials=2)
    preset.write_text(preset.read_text().replace('variants = ["nsgan"]', 'variants = ["sn-nsgan"]'))
    result = cli("sweep", "--plugin", "sn_gan.py", "--preset", str(preset), "--study", "s", "--population", "2",
                 "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sn-nsgan@ring8: trained one trial at a time" in result.stderr and "aten::div.out" in result.stderr
    trials = study_trials(tmp_path / "runs", pair="sn-nsgan@ring8")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert all("population" not in t.user_attrs for t in trials)


def test_population_sweep_with_a_pruner_finishes_every_trial(tmp_path):
    config = load_preset(str(tiny_preset(tmp_path, n_trials=4, seeds=2, steps=40)))
    config = dataclasses.replace(config, pruner="median", eval_every=10)
    Sweep("s", config, tmp_path / "results", population=2).run()
    trials = study_trials(tmp_path / "results")
    assert len(trials) == 4 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    for t in trials:
        assert t.user_attrs["status"] == ("pruned" if t.state == TrialState.PRUNED else "complete")
        assert t.user_attrs["population"] == 2
        if t.state == TrialState.COMPLETE:
            assert sorted(t.intermediate_values) == [10, 20, 30], "per-member FIDs reported (the final is the value)"
        else:  # pruned on its first seed: the second stopped with it
            seed_1 = tmp_path / "results" / "s" / "runs" / "nsgan@ring8" / f"trial-{t.number:04d}" / "seed-1"
            assert json.loads((seed_1 / "status.json").read_text())["status"] == "pruned"


def test_a_settings_mismatch_names_each_field_and_the_commands_that_resolve_it(tmp_path):
    from ganzoo.core.config import to_dict
    from ganzoo.sweep import settings_difference

    preset = tiny_preset(tmp_path, n_trials=1, steps=4)
    config = load_preset(str(preset))
    Sweep("s", config, tmp_path / "results").prepare()
    changed = dataclasses.replace(config, steps=8, evaluation=dataclasses.replace(config.evaluation, n_samples=300))
    command = ["ganzoo", "sweep", "--preset", str(preset), "--steps", "8", "--results", str(tmp_path / "results"),
               "--study", "s"]
    with pytest.raises(GanzooError) as error:
        Sweep("s", changed, tmp_path / "results", command=command).prepare()
    message = str(error.value)
    assert "\n" not in message
    assert "steps 4 there, 8 now" in message and "evaluation.n_samples 200 there, 300 now" in message
    assert "--study s-2" in message and f"rm -r {tmp_path / 'results' / 's'}" in message
    assert "resume it as it was" not in message, "n_samples has no flag: no resume command can be given"
    only_steps = dataclasses.replace(config, steps=8)
    with pytest.raises(GanzooError, match=r"resume it as it was: ganzoo sweep --preset \S+ --results \S+ "
                                          r"--study s --steps 4;"):
        Sweep("s", only_steps, tmp_path / "results", command=command).prepare()
    assert settings_difference(to_dict(config), to_dict(config)) == []


def test_settings_added_to_ganzoo_since_a_study_began_count_as_their_defaults(tmp_path):
    """A study written before a setting existed resumes after an upgrade (it ran with the
    setting's default); one whose user changed that setting is still refused."""
    config = load_preset(str(tiny_preset(tmp_path, n_trials=1, steps=4)))
    sweep = Sweep("s", config, tmp_path / "results")
    sweep.prepare()
    path = tmp_path / "results" / "s" / "sweep.json"
    old = json.loads(path.read_text())
    del old["settings"]["evaluation"]["precision"], old["settings"]["optional_datasets"]  # as an older ganzoo wrote it
    old["settings"]["a_setting_ganzoo_no_longer_has"] = 1
    path.write_text(json.dumps(old))
    Sweep("s", config, tmp_path / "results").prepare()
    assert json.loads(path.read_text())["settings"]["evaluation"]["precision"] == "auto", "migrated on resume"
    path.write_text(json.dumps(old))
    strict = dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation, precision="float32"))
    with pytest.raises(GanzooError, match='evaluation.precision "auto" there, "float32" now'):
        Sweep("s", strict, tmp_path / "results").prepare()


@pytest.mark.parametrize("kind", ["random", "tpe"])
def test_a_trials_draws_follow_its_number_not_the_process(kind):
    """A sampler made afresh (a resumed process, another worker) continues the study's sequence: trial n
    gets what an uninterrupted sampler gives trial n, never trial 0's configuration again."""
    import optuna

    from ganzoo.sweep.samplers import make_sampler

    def draw(trial):
        return (trial.suggest_float("lr", 1e-5, 1e-2, log=True), trial.suggest_categorical("bn", [True, False]),
                trial.suggest_float("beta1", 0.0, 0.9))

    def run(study, n):
        for _ in range(n):
            trial = study.ask()
            study.tell(trial, sum(draw(trial)[::2]))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    resumed = optuna.create_study(storage=storage, study_name="s", sampler=make_sampler(kind, 0))
    run(resumed, 2)
    resumed = optuna.load_study(storage=storage, study_name="s", sampler=make_sampler(kind, 0))  # a new process
    run(resumed, 2)
    straight = optuna.create_study(sampler=make_sampler(kind, 0))
    run(straight, 4)
    params = [t.params for t in resumed.trials]
    assert params == [t.params for t in straight.trials]
    assert len({json.dumps(p, sort_keys=True) for p in params}) == 4, params
    other = optuna.create_study(sampler=make_sampler(kind, 1))
    run(other, 1)
    assert other.trials[0].params != params[0], "the sampler seed still chooses the sequence"


def test_a_sweeps_plugin_is_carried_by_its_workers_its_runs_and_their_exports(tmp_path):
    """--plugin loads in every worker, and each run's config.json (and sweep.json) names it: eval and export
    of a run, and load_generator of the export, then need no --plugin, from any folder."""
    (tmp_path / "sn_gan.py").write_text(SPECTRAL_NORM_PLUGIN)
    plugin = str((tmp_path / "sn_gan.py").resolve())
    preset = tiny_preset(tmp_path, n_trials=2, steps=10)
    preset.write_text(preset.read_text().replace('variants = ["nsgan"]', 'variants = ["sn-nsgan"]'))
    result = cli("sweep", "--plugin", "sn_gan.py", "--preset", str(preset), "--study", "s", "--workers", "2",
                 "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "runs" / "s" / "sweep.json").read_text())["settings"]["plugins"] == [plugin]
    trials = load_trials(tmp_path / "runs" / "s", pair="sn-nsgan@ring8")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    run_dir = str(tmp_path / json.loads(trials[0].user_attrs["run_dirs"])[0])
    assert json.loads((Path(run_dir) / "config.json").read_text())["plugins"] == [plugin]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("eval", run_dir, "--n-samples", "200", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    result = cli("export", run_dir, "--out", "G", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    card = (elsewhere / "G" / "README.md").read_text()
    assert f"`{plugin}`" in card and "`sn-mlp`" in card, card
    load = subprocess.run([sys.executable, "-c", "import ganzoo; print(tuple(ganzoo.load_generator('G').sample(3).shape))"],
                          cwd=elsewhere, capture_output=True, text=True)
    assert load.returncode == 0 and load.stdout.strip() == "(3, 2)", load.stderr


def test_a_sweep_of_a_finished_study_says_there_is_nothing_to_train(tmp_path):
    preset = tiny_preset(tmp_path, n_trials=1, steps=4)
    first = cli("sweep", "--preset", str(preset), "--study", "s", "--no-progress", cwd=tmp_path)
    assert first.returncode == 0 and "nothing to train" not in first.stderr, first.stderr
    again = cli("sweep", "--preset", str(preset), "--study", "s", "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "study s: every pair has its 1 trials; nothing to train" in again.stderr
    assert len(study_trials(tmp_path / "runs")) == 1


def test_a_preset_names_its_plugins_relative_to_itself(tmp_path):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "sn_gan.py").write_text(SPECTRAL_NORM_PLUGIN)
    preset = tiny_preset(tmp_path / "presets", n_trials=1)
    preset.write_text('plugins = ["sn_gan.py"]\n' + preset.read_text().replace('"nsgan"', '"sn-nsgan"'))
    result = cli("sweep", "--preset", str(preset), "--study", "s", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sn-nsgan@ring8" in result.stdout
