"""Datasets by name: the registry of loaders, the data root, and ``load_dataset``, which every command loads
data through (the loader's result checked, its source recorded, images resized)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from ganzoo.core.errors import GanzooError
from ganzoo.core.registry import Registry, callable_with
from ganzoo.data.dataset import (
    ROOTLESS_KINDS,
    SOURCE_PLUGIN,
    SPLITS,
    Data,
    DataRequest,
    DataSource,
    check_data,
)
from ganzoo.data.pixels import resize

DATA_ROOT_ENV = "GANZOO_DATA"

Loader = Callable[[DataRequest], Data]
LoaderT = TypeVar("LoaderT", bound=Loader)
# A loader is called with one DataRequest; registration refuses one that cannot be.
DATASETS: Registry[Loader] = Registry("dataset", callable_with("request", what="loader", see="ganzoo.DataRequest"))


def register_dataset(name: str) -> Callable[[LoaderT], LoaderT]:
    return DATASETS.decorator(name)  # type: ignore[return-value]


def default_data_root() -> Path:
    return Path(os.environ.get(DATA_ROOT_ENV) or Path.home() / ".cache" / "ganzoo" / "data")


def load_dataset(
    spec: str,
    split: str = "train",
    *,
    root: Path | str | None = None,
    resolution: int | None = None,
    download: bool = True,
) -> Data:
    name, sep, arg = spec.partition(":")
    loader = DATASETS.get(name)
    if split not in SPLITS:
        raise GanzooError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if resolution is not None and resolution < 1:
        raise GanzooError(f"resolution must be a positive integer, got {resolution}")
    data_root = Path(root).expanduser() if root is not None else default_data_root()
    # Naming the default root is the same as naming none: it keeps the default's fallbacks.
    explicit = root is not None and os.path.abspath(data_root) != os.path.abspath(default_data_root())
    request = DataRequest(arg if sep else None, split, data_root, resolution, download, explicit)
    data = check_data(loader(request=request), name, split)
    source = data.source or DataSource(SOURCE_PLUGIN, detail=f"{loader.__module__}.{loader.__qualname__}")
    if explicit and source.kind in ROOTLESS_KINDS:
        # Ignored rather than refused: a sweep or preset passes one data_root to every dataset it
        # runs, ring8 and fashion-mnist alike, and refusing would make that config unusable. The
        # record says so, and a file-less dataset cannot read the wrong files anyway.
        note = f"data root {data_root} ignored: {name} reads no files from it"
        source = replace(source, detail=f"{source.detail}; {note}" if source.detail else note)
    data = replace(data, source=replace(source, split=split))
    if resolution is not None:
        data = _resized(data, resolution)
    return data


def _resized(data: Data, resolution: int) -> Data:
    """Applied after every loader, so plugin datasets honour --resolution without doing it themselves."""
    if data.kind == "points":
        raise GanzooError(f"dataset {data.name!r} is 2-d points; a resolution applies only to images")
    if data.x is None or tuple(data.x.shape[-2:]) == (resolution, resolution):
        return data  # streamed loaders resize per item
    x = resize(data.x, resolution)
    return replace(data, x=x, sample_shape=tuple(x.shape[1:]))
