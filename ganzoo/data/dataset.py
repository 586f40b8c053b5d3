"""What a dataset is to ganzoo: the request a loader is called with, the ``Data`` it returns, where the
data came from (``DataSource``, for each run's data.json), and the check every loaded ``Data`` passes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganzoo.core.errors import GanzooError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DataRequest:
    arg: str | None  # text after ':' in the spec ("folder:PATH" -> PATH)
    split: str  # "train" | "test"
    root: Path  # where torchvision downloads to and looks
    resolution: int | None  # resize images to resolution x resolution when given
    download: bool  # allowed to try torchvision's download
    # True when the caller named ``root`` (--data-root): then it must hold the files, and nothing
    # else is searched or downloaded; False for the default root, which keeps every fallback.
    explicit_root: bool = False


# DataSource.kind values of the built-in loaders; a plugin may use its own words.
SOURCE_IDX = "idx files"
SOURCE_TORCHVISION = "torchvision files"  # files torchvision reads itself (cifar10), already on disk
SOURCE_DOWNLOAD = "torchvision download"  # fetched by torchvision during this load
SOURCE_DIGITS = "sklearn digits"
SOURCE_MIXTURE = "generated mixture"
SOURCE_FOLDER = "folder"
SOURCE_PLUGIN = "plugin loader"  # a registered loader that returned no source of its own
ROOTLESS_KINDS = frozenset({SOURCE_DIGITS, SOURCE_MIXTURE, SOURCE_FOLDER})


@dataclass(frozen=True)
class SourceFile:
    path: str  # absolute
    bytes: int
    sha256: str  # of the bytes as read (a .gz file's compressed bytes)
    # Set for a folder of images, which is summarised in one entry rather than one per image:
    # ``bytes`` is then their total and ``sha256`` covers the manifest of "relative path, size,
    # sha256" lines, so any changed, added or removed image changes it.
    count: int | None = None


@dataclass(frozen=True)
class DataSource:
    """Where a ``Data`` came from: enough to tell, after the fact, which bytes a run trained on."""

    kind: str  # one of the SOURCE_* values for built-in datasets
    files: tuple[SourceFile, ...] = ()  # empty for data that is generated or bundled in code
    detail: str = ""  # whatever else decides the data: generator parameters, library version, ...
    split: str | None = None  # filled in by load_dataset


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no useful ==
class Data:
    name: str
    x: Tensor | None  # (N, C, H, W) in [-1, 1] or (N, 2); None when streamed
    y: Tensor | None  # int64 (N,) labels
    kind: str  # "image" | "points"
    sample_shape: tuple[int, ...]
    num_classes: int | None = None
    centers: Tensor | None = None  # (M, 2) mixture mode centres
    std: float | None = None  # per-mode standard deviation of the mixture
    stream: torch.utils.data.Dataset | None = None  # lazily decoded (C, H, W) items in [-1, 1]
    source: DataSource | None = None  # load_dataset fills it in for loaders that leave it out

    def __post_init__(self) -> None:
        if self.kind not in ("image", "points"):
            raise GanzooError(
                f"dataset {self.name!r}: kind must be 'image' or 'points', got {self.kind!r}"
            )
        if (self.x is None) == (self.stream is None):
            raise GanzooError(f"dataset {self.name!r}: give exactly one of x and stream")

    @property
    def bounded(self) -> bool:
        """Images live in [-1, 1], so the generator ends in tanh; points are unbounded."""
        return self.kind == "image"

    def __len__(self) -> int:
        if self.x is not None:
            return int(self.x.shape[0])
        return len(self.stream)  # type: ignore[arg-type]


def check_data(data: Any, name: str, split: str) -> Data:
    """What a loader returned, checked where it is loaded (a mistake in a plugin's loader named here, not as
    a shape error inside training or a run reported as diverged): a ``Data`` with samples of its
    ``sample_shape`` ((C, H, W) images in [-1, 1], or points (D,)), finite, labels and centres to match."""
    where = f"dataset {name!r} ({split} split)"
    if not isinstance(data, Data):
        raise GanzooError(f"{where}: its loader returned {type(data).__name__}, not ganzoo.Data")
    shape = tuple(data.sample_shape)
    if len(shape) != (3 if data.kind == "image" else 1) or not all(isinstance(n, int) and n > 0 for n in shape):
        expected = "(C, H, W)" if data.kind == "image" else "(D,), e.g. (2,)"
        raise GanzooError(f"{where}: sample_shape of {data.kind} data must be {expected}, got {data.sample_shape}")
    if len(data) == 0:
        raise GanzooError(f"{where}: no samples")
    if data.x is not None:
        x = data.x
    else:  # a stream: its first item, (C, H, W) or (image, label)
        first = data.stream[0]  # type: ignore[index]
        x = (first if isinstance(first, Tensor) else first[0])[None]
    # float32, the networks' dtype (or torch's default, where a caller made it float64 and converts)
    if not isinstance(x, Tensor) or x.dtype not in (torch.float32, torch.get_default_dtype()):
        raise GanzooError(f"{where}: samples must be a float32 tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if tuple(x.shape[1:]) != shape:
        raise GanzooError(f"{where}: samples of shape {tuple(x.shape[1:])} but sample_shape {shape}")
    low, high = (float(v) for v in torch.aminmax(x))  # one pass; a NaN or an infinity shows in them
    if not (math.isfinite(low) and math.isfinite(high)):
        bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
        raise GanzooError(f"{where}: {bad} of {len(x)} samples hold NaN or infinite values")
    if data.kind == "image" and (low < -1 or high > 1):
        raise GanzooError(f"{where}: images must lie in [-1, 1] (G ends in tanh), got values in [{low:.4g}, {high:.4g}]")
    if data.y is not None and (data.y.dtype != torch.int64 or tuple(data.y.shape) != (len(data),)):
        raise GanzooError(f"{where}: labels y must be int64 of shape ({len(data)},), got {data.y.dtype} "
                          f"{tuple(data.y.shape)}")
    if data.y is not None and data.num_classes is not None:  # else the first evaluation fails on an IndexError
        y_low, y_high = (int(v) for v in torch.aminmax(data.y))
        if y_low < 0 or y_high >= data.num_classes:
            raise GanzooError(f"{where}: labels y must lie in [0, num_classes = {data.num_classes}), got values in "
                              f"[{y_low}, {y_high}]")
    if data.centers is not None and (data.centers.ndim != 2 or data.centers.shape[1] != shape[0]):
        raise GanzooError(f"{where}: centers must have shape (modes, {shape[0]}), got {tuple(data.centers.shape)}")
    return data


def data_record(data: Data) -> dict[str, Any]:
    """JSON-ready provenance of ``data``, for a run's data.json: the dataset, split, sample count
    and shape, the source kind, and each file with its absolute path, size and sha256."""
    source = data.source or DataSource(SOURCE_PLUGIN)
    files = [{k: v for k, v in asdict(f).items() if v is not None} for f in source.files]
    return {
        "dataset": data.name,
        "split": source.split,
        "kind": source.kind,
        "files": files,
        "detail": source.detail,
        "samples": len(data),
        "sample_shape": list(data.sample_shape),
    }
