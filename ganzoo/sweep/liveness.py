"""Liveness: how a study notices a worker that died (SIGKILL, power loss) and runs its trial again.

On RDB storages (SQLite, PostgreSQL) a running trial's worker beats every ``heartbeat_seconds()``;
a trial without a beat for ``grace_seconds()`` is failed by the next worker that looks, and Optuna's
retry callback queues it again as WAITING. A journal study has no heartbeats and only one machine's
workers: a RUNNING trial found before they start was left by a process that died.

Every use of Optuna's internals is in this module, each with why: ganzoo drives trials through
ask/tell rather than ``study.optimize``, which is where Optuna would beat and check itself.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from ganzoo.core.errors import GanzooError
from ganzoo.sweep.files import IDENTITY, LOST

# How often a running trial's worker signals it is alive, and after how long without a signal its
# trial counts as dead. GANZOO_HEARTBEAT_SECONDS / GANZOO_GRACE_SECONDS override them.
HEARTBEAT_SECONDS, GRACE_SECONDS = 10, 60
MAX_RETRIES = 3  # a dead trial is queued again at most this often
RETRIES = "retries"  # a requeued trial's user attribute: how many times its configuration was queued again



def _seconds(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise GanzooError(f"{name} must be a positive whole number of seconds, got {value!r}")
    return int(value)


def heartbeat_seconds() -> int:
    return _seconds("GANZOO_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS)


def grace_seconds() -> int:
    return _seconds("GANZOO_GRACE_SECONDS", GRACE_SECONDS)


def _storage(study: Any) -> Any:
    # Optuna has no public accessor for a study's storage object, which records heartbeats.
    return study._storage


def first_heartbeat(study: Any, trial: Any) -> None:
    """Beat once for a trial just claimed, before the claim's lock is released: a RUNNING trial
    without a beat can then only belong to a worker that died (``fail_dead_trials`` relies on it)."""
    _storage(study).record_heartbeat(trial._trial_id)  # Trial has no public id but its number


def fail_dead_trials(study: Any) -> list[Any]:
    """Fail (and queue again) the RUNNING trials whose worker stopped beating, and those that never
    beat. Optuna's stale check skips trials without a heartbeat, so a worker dying between its claim
    and its first beat (older ganzoo, or a crash inside the claim) would keep every other worker
    waiting for ever without the second half. Returns the trials it failed."""
    import optuna
    import sqlalchemy
    from optuna.trial import TrialState

    before = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not before:
        return []
    optuna.storages.fail_stale_trials(study)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return _failed_of(study, before)
    storage = _storage(study)
    backend = getattr(storage, "_backend", storage)  # Optuna wraps RDBStorage in a cache
    # Which trials ever beat is only in Optuna's trial_heartbeats table: no API lists them.
    with backend.engine.connect() as conn:
        beaten = {row[0] for row in conn.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))}
    for t in running:
        # set_trial_state_values returns False when another worker changed the state first.
        if t._trial_id not in beaten and storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
            retry_stale(study, storage.get_trial(t._trial_id))
    return _failed_of(study, before)


def _failed_of(study: Any, trials: list[Any]) -> list[Any]:
    from optuna.trial import TrialState

    numbers = {t.number for t in trials}
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in numbers]


def requeue_orphans(study: Any) -> list[Any]:
    """A journal study's RUNNING trials before this machine's workers start: failed, and queued again
    with the same parameters. Returns them."""
    from optuna.trial import TrialState

    orphans = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in orphans:
        _storage(study).set_trial_user_attr(t._trial_id, "status", LOST)  # Study has no setter for a trial by number
        study.tell(t.number, state=TrialState.FAIL)
        requeue(study, t)
    return orphans


def requeue(study: Any, trial: Any) -> None:
    """Queue ``trial`` again: its parameters and what makes it the trial it is (a default trial's or a
    repeat's settings, its phase and seeds), so that the retry runs the same configuration. Enqueued as
    fixed values, which may lie outside their ranges, as compare_gan's narrow defaults do (Optuna's own
    retry callback re-creates a trial against its distributions and refuses them)."""
    import warnings

    carried = {key: trial.user_attrs[key] for key in IDENTITY if key in trial.user_attrs}
    retries = trial.user_attrs.get(RETRIES, 0) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna warns that enqueued trials are experimental
        study.enqueue_trial(trial.params, user_attrs={**carried, "retry_of": trial.number, RETRIES: retries})


def retry_stale(study: Any, trial: Any) -> None:
    """The heartbeat storage's callback for a trial whose worker died: queued again (``requeue``), at most
    MAX_RETRIES times in a row."""
    if trial.user_attrs.get(RETRIES, 0) < MAX_RETRIES:
        requeue(study, trial)


@contextlib.contextmanager
def heartbeat(trial: Any, enabled: bool) -> Iterator[None]:
    """Heartbeats for a running trial from a thread of its own, while the block runs (``enabled``: an
    RDB storage). Optuna beats only inside study.optimize(); ganzoo drives trials through ask/tell."""
    if not enabled:
        yield
        return
    storage, trial_id = _storage(trial.study), trial._trial_id
    interval = heartbeat_seconds()
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            storage.record_heartbeat(trial_id)
            stop.wait(interval)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
