"""Files of a run directory, written so that an interruption never leaves one half-written.

config.json   the resolved TrainConfig (enough to rerun the run)
status.json   running / completed / diverged / failed / interrupted / a callback's status, with the step reached
data.json     which files the data came from (paths, sizes, sha256)
stats.jsonl   one JSON line per log point
checkpoint.pt tensors only (models, optimisers, RNG and data-order state), read with weights_only=True
samples_<step>.png
metrics.jsonl one JSON line per evaluation (FID and the other metrics), written by evaluation callbacks
stability.json the run's stability summary (divergence, oscillation, the FID curve), from the records above
throughput.json training speed, peak memory, device, precision and the step's execution path

Every file name a run directory holds is defined here and nowhere else.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from ganzoo.core.errors import GanzooError

CONFIG = "config.json"
STATUS = "status.json"
STATS = "stats.jsonl"
CHECKPOINT = "checkpoint.pt"
DATA = "data.json"
METRICS = "metrics.jsonl"
STABILITY = "stability.json"
THROUGHPUT = "throughput.json"
SAMPLES = "samples_{step:06d}.png"
SAMPLES_GLOB = "samples_*.png"
RUN_FILES = (CONFIG, STATUS, STATS, CHECKPOINT, DATA)  # what a run writes as it trains
DERIVED_FILES = (METRICS, STABILITY, THROUGHPUT)  # what is written from them


def umask() -> int:
    """The process's umask. Linux (>= 4.7) tells it; setting it to read it back, the only other way,
    would for that moment give files other threads create the wrong mode."""
    try:
        with open("/proc/self/status") as status:
            found = next((int(line.split()[1], 8) for line in status if line.startswith("Umask:")), None)
    except (OSError, ValueError, IndexError):
        found = None
    if found is None:
        found = os.umask(0o022)
        os.umask(found)
    return found


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates 0600 files and the rename keeps that mode: give the mode a plain open() would.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise GanzooError(f"{path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GanzooError(f"{path} is not valid JSON: {e}") from None


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    # One write() of one line: a crash leaves at most a truncated last line, which read_jsonl skips.
    with path.open("a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Drop records logged after ``last_step``: a resumed run logs those steps again."""
    kept = [r for r in read_jsonl(path) if r.get("step", 0) <= last_step]
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
    atomic_write(path, lambda f: f.write(text.encode()))


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(dict(state), f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        # weights_only: a checkpoint is data, never code; arbitrary pickles are refused.
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GanzooError(f"no checkpoint at {path}") from None
    except Exception as e:  # torch raises several types for a corrupt or hostile file
        raise GanzooError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}") from None
