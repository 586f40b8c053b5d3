"""What ganzoo 0.2 users made and wrote keeps working after the move into packages by layer (0.3).

- Every old module path of the moved-names table (``ganzoo.core.deprecations.MOVED``) imports as the very
  module that holds its code now, with a DeprecationWarning that names the new path and the importing line;
  a monkeypatch through the old path changes what the new code runs.
- A run, an export and a study made by ganzoo 0.2.0 (commit 6cfbf06, before the move; tests/fixtures/
  ganzoo-0.2.0/README.md says how) evaluate, resume, load and continue.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import ganzoo
from ganzoo.core import rundir
from ganzoo.core.config import EvalSpec, TrainConfig
from ganzoo.core.deprecations import MOVED

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ganzoo-0.2.0"
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_is_the_moved_module_itself(old):
    sys.modules.pop(old, None)  # as in a process that has not imported it yet (put back below)
    with pytest.warns(DeprecationWarning, match=re.escape(f"{old} moved to {MOVED[old]}")):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])
    assert module.__name__ == MOVED[old] and module.__spec__.name == MOVED[old]  # it still knows itself
    assert sys.modules[old] is module


def test_the_warning_names_the_line_that_imported_the_old_path(fresh):
    fresh("ganzoo.losses")
    with pytest.warns(DeprecationWarning) as record:
        from ganzoo.losses import LOSSES  # noqa: F401
    assert [Path(w.filename) for w in record] == [Path(__file__)]


@pytest.fixture
def fresh(monkeypatch):
    """As in a process that has imported none of the old paths yet: ``fresh("ganzoo.trainer", ...)``."""

    def forget(*olds: str) -> None:
        for old in olds:
            monkeypatch.delitem(sys.modules, old, raising=False)
            monkeypatch.delattr(ganzoo, old.removeprefix("ganzoo."), raising=False)

    return forget


def test_old_names_of_the_public_api_and_of_deep_paths_are_the_same_objects(fresh):
    fresh("ganzoo.features", "ganzoo.trainer", "ganzoo.variants")
    with pytest.warns(DeprecationWarning):
        from ganzoo.features import FeatureExtractor
        from ganzoo.trainer import Trainer
        from ganzoo.variants import VARIANTS
    assert Trainer is ganzoo.Trainer and VARIANTS is ganzoo.VARIANTS and FeatureExtractor is ganzoo.FeatureExtractor
    fresh("ganzoo.trainer")
    with pytest.warns(DeprecationWarning):
        assert ganzoo.trainer is importlib.import_module("ganzoo.training.trainer")  # the old attribute
    with pytest.raises(AttributeError):
        ganzoo.no_such_module  # noqa: B018


def test_a_monkeypatch_through_an_old_path_changes_what_runs(monkeypatch, fresh):
    import ganzoo.training.trainer as trainer

    fresh("ganzoo.trainer")
    with pytest.warns(DeprecationWarning):
        monkeypatch.setattr("ganzoo.trainer.load_dataset", "patched")
    assert trainer.load_dataset == "patched"


def test_nothing_in_the_project_imports_an_old_path():
    """ganzoo's own code, its tests and benchmarks import the new paths (the old ones are for users)."""

    def imported(tree: ast.AST):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                yield node.module
                yield from (f"{node.module}.{alias.name}" for alias in node.names)

    found = [f"{path.relative_to(ROOT)}: {name}" for folder in ("ganzoo", "tests", "benchmarks", ".ci")
             for path in sorted((ROOT / folder).rglob("*.py")) if path != Path(__file__)
             for name in imported(ast.parse(path.read_text())) if name in MOVED]
    assert found == []


# ---- artefacts made by ganzoo 0.2.0 ---------------------------------------------------------------------


@pytest.fixture
def made_before(tmp_path) -> Path:
    """A copy of the 0.2.0 artefacts: the tests write into them (metrics, resumed steps, new trials)."""
    shutil.copytree(FIXTURES, tmp_path / "old")
    return tmp_path / "old"


def test_a_run_made_before_evaluates(made_before):
    from ganzoo.evaluate.metrics import evaluate_run

    run = made_before / "run"
    before = len(list(rundir.read_jsonl(run / rundir.METRICS)))
    result = evaluate_run(run, EvalSpec(n_samples=200), device="cpu")
    assert result["step"] == 40 and result["features"] == "points" and result["fid"] >= 0
    assert len(list(rundir.read_jsonl(run / rundir.METRICS))) == before + 1
    assert rundir.read_json(run / rundir.STABILITY)["final_fid"] == result["fid"]


def test_a_run_made_before_resumes_from_its_checkpoint(made_before):
    run = made_before / "run"
    saved = rundir.load_checkpoint(run / rundir.CHECKPOINT)
    result = ganzoo.resume(run, steps=60, progress=False)
    assert (result.status, result.step) == ("completed", 60)
    resumed = rundir.load_checkpoint(run / rundir.CHECKPOINT)
    assert resumed["step"] == 60
    # D and G went on from the saved weights, their Adam moments and step counts with them.
    for key in ("G", "D"):
        assert any(not torch.equal(saved[key][name], resumed[key][name]) for name in saved[key])
    counts = [s["step"] for s in resumed["g_opt"]["state"].values()]
    assert counts and all(int(c) == 60 for c in counts)
    steps = [r["step"] for r in rundir.read_jsonl(run / rundir.STATS)]
    assert steps == [10, 20, 30, 40, 50, 60]


def test_a_run_made_before_counts_its_length_in_g_updates_on_the_command_line(made_before, capsys):
    # 0.2.0's --steps counted G updates; its config.json has no length_unit and reads as such.
    from ganzoo.cli import main

    run = made_before / "run"
    assert main(["train", "--resume", str(run), "--steps", "50", "--no-progress"]) == 0
    assert "completed at 50 G updates" in capsys.readouterr().out
    assert rundir.read_json(run / rundir.CONFIG)["length_unit"] == "g_updates"


def test_an_export_made_before_loads_as_an_export_made_now(made_before, tmp_path):
    from ganzoo.zoo.export import export_run

    old = ganzoo.load_generator(made_before / "export")
    new = ganzoo.load_generator(export_run(made_before / "run", tmp_path / "now"))
    assert old.z_dim == new.z_dim == 64
    assert torch.equal(old.sample(16, seed=3), new.sample(16, seed=3))
    card = json.loads((made_before / "export" / "generator.json").read_text())
    now = json.loads((tmp_path / "now" / "generator.json").read_text())
    # The same card, its config read as 0.2.0's is now: settings added since (length_unit) at their defaults.
    card["config"] = TrainConfig.from_dict(card["config"]).to_dict()
    assert card == now


def test_a_study_made_before_continues_and_reports(made_before):
    """The 0.2 study was interrupted in its third trial (its configuration queued again): the same
    sweep, run now, resumes it and ends with exactly its three trials."""
    from ganzoo.report import write_report
    from ganzoo.sweep import Sweep, load_preset

    sweep = Sweep("tiny", load_preset(str(made_before / "tiny.toml")), made_before / "studies", progress=False,
                  log=lambda line: None)
    sweep.run()
    frame = pd.read_csv(sweep.export())
    finished = frame[frame["state"] == "COMPLETE"]
    assert list(finished["number"]) == [0, 1, 3], frame[["number", "state"]]
    assert write_report(made_before / "studies" / "tiny").name == "report.html"
