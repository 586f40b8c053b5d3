"""The committed showcase (results/smoke, the README's main job) stays what the code makes.

CI runs the README's main command itself (into runs/); these tests make sure the committed copy
beside it cannot silently go stale: regenerate it with ``ganzoo sweep --preset smoke --results
results`` (then remove results/smoke/study.db) whenever they fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ganzoo.core.config import to_dict
from ganzoo.sweep import SWEEP_FILE, TRIALS_CSV, Sweep, load_preset

SHOWCASE = Path(__file__).resolve().parent.parent / "results" / "smoke"


def test_the_showcase_was_made_with_the_smoke_preset_as_the_code_defines_it_now():
    meta = json.loads((SHOWCASE / SWEEP_FILE).read_text())
    # Exact equality, not settings_difference: a setting added since must show up in the showcase.
    assert meta["settings"] == to_dict(load_preset("smoke")), "regenerate results/smoke (see this file's docstring)"
    # and each pair's protocol (ranges, defaults, run settings, budget) is what this code resolves
    sweep = Sweep("smoke", load_preset("smoke"), SHOWCASE.parent)
    for pair in sweep.pairs:
        assert meta["protocol"][pair.name] == sweep.pair_record(pair), f"{pair.name}: regenerate results/smoke"


def test_the_showcase_holds_every_trial_and_its_report():
    meta = json.loads((SHOWCASE / SWEEP_FILE).read_text())
    trials = pd.read_csv(SHOWCASE / TRIALS_CSV)
    n_trials, repeats = meta["settings"]["n_trials"], meta["settings"]["repeat_seeds"]
    for pair in meta["pairs"]:
        variant, dataset = pair.split("@")
        rows = trials[(trials["variant"] == variant) & (trials["dataset"] == dataset)]
        assert (rows[rows["phase"] == "search"]["state"] == "COMPLETE").sum() == n_trials, pair
        assert (rows[rows["phase"] == "repeat"]["state"] == "COMPLETE").sum() == repeats, pair
        for run_dirs in rows["run_dirs"]:  # relative to the repository, where the showcase was made
            for run_dir in json.loads(run_dirs):
                assert (SHOWCASE.parent.parent / run_dir / "stats.jsonl").is_file(), run_dir
    for name in ("report.md", "report.html"):
        assert (SHOWCASE / name).stat().st_size > 0, name
