"""The contract every storage kind meets, run over each registered one (tests/storages.py supplies a
throwaway store of every kind, as Optuna's testing/storages.py does): a sweep resumes after Ctrl-C and
ends with exactly its trials; a trial whose worker died, even before its first heartbeat, is run
again; several workers share a study exactly where the kind allows them and are refused in one line
where it does not; a study of the same name with other settings is refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from support.presets import tiny_preset
from support.storages import open_study
from support.workers import (
    FAST_HEARTBEAT,
    PAIR,
    STUDY,
    TIMEOUT,
    assert_exact,
    spawner,
    sweep_command,
    trained,
    wait_for,
    worker_env,
)

from ganzoo.core.errors import GanzooError
from ganzoo.sweep import Sweep, load_preset
from ganzoo.sweep.storage import Storage, storage_kind
from ganzoo.training.trainer import Trainer


@pytest.fixture
def spawn(tmp_path):
    yield from spawner(tmp_path)


def study_of(url: str) -> optuna.Study:
    return open_study(url, f"{STUDY}/{PAIR}")


def test_a_sweep_resumes_after_ctrl_c_and_ends_with_exactly_its_trials(store, tmp_path, monkeypatch):
    config = load_preset(str(tiny_preset(tmp_path, n_trials=3, seeds=2)))
    real_run = Trainer.run
    calls = {"n": 0}

    def interrupted_third_run(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the second trial's first seed: Ctrl-C in the middle of a trial
            raise KeyboardInterrupt
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "run", interrupted_third_run)
    with pytest.raises(KeyboardInterrupt):
        Sweep(STUDY, config, tmp_path / "results", storage=store).run()
    trials = study_of(store).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    assert trials[1].user_attrs["status"] == "interrupted"
    assert trials[2].user_attrs["retry_of"] == 1, "the interrupted configuration is queued again"
    interrupted_params = trials[1].params
    assert len(pd.read_csv(tmp_path / "results" / STUDY / "trials.csv")) == 3, "trials.csv written after the trial"

    monkeypatch.setattr(Trainer, "run", real_run)
    Sweep(STUDY, config, tmp_path / "results", storage=store).run()  # the same command again: resumes
    trials = study_of(store).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3 and trials[0].number == 0 and trials[0].state == TrialState.COMPLETE
    assert trials[2].state == TrialState.COMPLETE and trials[2].params == interrupted_params
    first = complete[0]
    fids = json.loads(first.user_attrs["fid_per_seed"])
    assert len(fids) == 2 and first.value == pytest.approx(sum(fids) / 2), "objective = mean over seeds"
    assert first.user_attrs["extractor"].startswith("points-rff") and first.user_attrs["n_samples"] == 200
    configurations = [json.dumps(t.params, sort_keys=True) for t in complete]
    assert len(set(configurations)) == 3, f"the resumed process repeated a finished configuration: {configurations}"
    frame = pd.read_csv(tmp_path / "results" / STUDY / "trials.csv")
    for column in ("variant", "dataset", "params_adam.lr", "status", "fid_mean", "fid_std", "extractor",
                   "n_samples", "modes_covered", "train_images_per_second", "peak_memory_bytes", "device",
                   "wall_seconds", "run_dirs", "d_saturated_share"):
        assert column in frame.columns, column
    for run_dirs in frame.loc[frame["state"] == "COMPLETE", "run_dirs"]:
        for run_dir in json.loads(run_dirs):
            assert (Path(run_dir) / "stats.jsonl").exists() and (Path(run_dir) / "metrics.jsonl").exists()


def test_a_dead_workers_trial_is_run_again(store, tmp_path, spawn):
    """SIGKILL mid-training, as a power loss would: the trial stays RUNNING. The same command run
    again (on another machine, where the kind allows one) fails it and trains its configuration again:
    by its heartbeat going stale, or, without heartbeats, because no worker of this machine runs yet."""
    n_trials = 2
    preset = tiny_preset(tmp_path, n_trials=n_trials, steps=200)
    doomed = spawn("doomed", sweep_command(preset, tmp_path / "machine-a", store))
    # A seed's run has begun (its status.json), not only its trial's folder: on a loaded machine a kill
    # between the two left nothing for the run folder check at the end to find.
    runs = tmp_path / "machine-a" / STUDY / "runs" / PAIR
    wait_for(lambda: list(runs.glob("trial-*/seed-*/status.json")), [doomed], "a trial is training")
    doomed.kill()
    (dead,) = [t for t in study_of(store).get_trials() if t.state == TrialState.RUNNING]

    rescuer = spawn("rescuer", sweep_command(preset, tmp_path / "machine-b", store), env=FAST_HEARTBEAT)
    assert rescuer.wait() == 0, rescuer.stderr()
    trials = study_of(store).get_trials()
    assert_exact(trials, n_trials, killed={dead.number})
    assert trials[dead.number].state == TrialState.FAIL
    # Queued again once: by Optuna's retry callback (heartbeats), or as an orphan (journal).
    again = [t for t in trials if dead.number in (t.system_attrs.get("failed_trial"), t.user_attrs.get("retry_of"))]
    assert len(again) == 1 and again[0].state == TrialState.COMPLETE, [(t.number, t.state) for t in again]
    assert dead.params.items() <= again[0].params.items(), "with the configuration it had"
    assert again[0].number in trained(tmp_path / "machine-b")
    frame = pd.read_csv(tmp_path / "machine-b" / STUDY / "trials.csv").set_index("number")
    assert frame.loc[dead.number, "status"] == "lost", "the killed trial's row says what happened to it"
    # The killed worker's own folder: the same command there marks its run directory, never "running" for ever.
    again_a = spawn("again", sweep_command(preset, tmp_path / "machine-a", store), env=FAST_HEARTBEAT)
    assert again_a.wait() == 0, again_a.stderr()
    statuses = [json.loads(p.read_text()) for p in
                (tmp_path / "machine-a" / STUDY / "runs" / PAIR / f"trial-{dead.number:04d}").glob("seed-*/status.json")]
    assert statuses and all(s["status"] == "interrupted" and "its worker stopped" in s["message"] for s in statuses)


def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_run_again(store, tmp_path, spawn):
    """Exactly what a claim leaves behind when its worker dies at once: a RUNNING trial that never beat.
    Optuna's stale check skips such a trial; it must still be failed and run again, or every other
    worker would wait on it for ever."""
    preset = tiny_preset(tmp_path, n_trials=1, steps=20)
    storage = Storage(store, tmp_path / "lock")
    orphan = optuna.create_study(study_name=f"{STUDY}/{PAIR}", storage=storage.open(), direction="minimize").ask()
    rescuer = spawn("rescuer", sweep_command(preset, tmp_path / "machine-b", store), env=FAST_HEARTBEAT)
    # A healthy run takes about 10 s here.
    code = rescuer.wait(timeout=45, stuck=f": trial {orphan.number} stays RUNNING with no heartbeat")
    assert code == 0, rescuer.stderr()
    trials = study_of(store).get_trials()
    assert_exact(trials, 1, killed={orphan.number})
    assert trials[orphan.number].state == TrialState.FAIL


def test_several_workers_share_a_study_exactly_or_are_refused(store, tmp_path, spawn):
    n_trials = 4
    preset = tiny_preset(tmp_path, n_trials=n_trials, steps=60)
    kind = storage_kind(store)
    if not kind.workers:
        done = subprocess.run([sys.executable, *sweep_command(preset, tmp_path / "r", store, "--workers", "2")],
                              cwd=tmp_path, env=worker_env(), capture_output=True, text=True, timeout=TIMEOUT)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and "takes one worker at a time" in lines[0], done.stderr
        assert not (tmp_path / "r" / STUDY).exists()
        return
    if kind.machines:  # two machines, each with its own results folder, sharing only the store
        folders = [tmp_path / "machine-a", tmp_path / "machine-b"]
        workers = [spawn(f"worker-{i}", sweep_command(preset, f, store)) for i, f in enumerate(folders)]
        # Whichever trains first is paused until the other has a trial of its own, so both take part
        # however unevenly they start (far shorter than the 60 s grace: its trial is not taken for dead).
        first = wait_for(lambda: [i for i, f in enumerate(folders) if trained(f)], workers, "either worker trains")[0]
        os.killpg(workers[first].proc.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: trained(folders[1 - first]), [workers[1 - first]], "the other worker trains")
        finally:
            os.killpg(workers[first].proc.pid, signal.SIGCONT)
        for worker in workers:
            assert worker.wait() == 0, worker.stderr()
        ran = [trained(f) for f in folders]
        assert ran[0] and ran[1] and not ran[0] & ran[1], f"each machine runs its own trials: {ran}"
    else:  # one machine's workers: one command
        worker = spawn("workers", sweep_command(preset, tmp_path / "machine-a", store, "--workers", "2"))
        assert worker.wait() == 0, worker.stderr()
        ran = [trained(tmp_path / "machine-a")]
    trials = study_of(store).get_trials()
    assert_exact(trials, n_trials)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * n_trials and set().union(*ran) == set(range(n_trials))
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == n_trials, "workers propose different configurations"
    if store.startswith("postgresql"):  # the report reads a shared study straight from PostgreSQL
        report = subprocess.run([sys.executable, "-m", "ganzoo", "report", store, "--study", STUDY,
                                 "--out", str(tmp_path / "report")], cwd=tmp_path, capture_output=True, text=True,
                                timeout=TIMEOUT, env=worker_env())
        assert report.returncode == 0, report.stderr
        text = (tmp_path / "report" / "report.md").read_text()
        assert f"{n_trials} of {n_trials} requested trials finished" in text


def test_a_study_with_other_settings_is_refused(store, tmp_path):
    config = load_preset(str(tiny_preset(tmp_path, n_trials=1, steps=10)))
    Sweep(STUDY, config, tmp_path / "a", storage=store).run()
    before = [(t.number, t.state) for t in study_of(store).get_trials()]
    # Another machine (its own folder, so only the store knows the study) with other settings.
    with pytest.raises(GanzooError, match=r"was run with other settings: seeds 1 there, 2 now"):
        Sweep(STUDY, dataclasses.replace(config, seeds=2), tmp_path / "b", storage=store).run()
    assert [(t.number, t.state) for t in study_of(store).get_trials()] == before
