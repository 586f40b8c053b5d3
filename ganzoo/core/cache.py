"""Where ganzoo caches derived artefacts (converted weights, domain classifiers, reference
statistics), and the data fingerprints that key them: a cache keyed by a dataset's name alone
would silently serve stale results after the data changed."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import torch

CACHE_ENV = "GANZOO_CACHE"


def cache_dir(kind: str) -> Path:
    """``$GANZOO_CACHE/<kind>`` (default ``~/.cache/ganzoo/<kind>``), created on demand."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ganzoo")
    path = root / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def tensor_fingerprint(*tensors: torch.Tensor | None) -> str:
    """sha256 over shapes, dtypes and bytes; 16 hex digits are plenty to tell datasets apart."""
    digest = hashlib.sha256()
    for t in tensors:
        if t is None:
            digest.update(b"none")
            continue
        t = t.detach().cpu().contiguous()
        digest.update(f"{tuple(t.shape)}{t.dtype}".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if need be) while the block runs: processes that would
    make the same cache entry make it one at a time, so the second finds it made. The lock goes with the
    process, however it ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
