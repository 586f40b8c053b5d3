"""MNIST and Fashion-MNIST from their IDX files: torchvision's layout under the data root, Debian's
``dataset-fashion-mnist`` (read offline), else torchvision's download; every file checked against its header
and hashed from the very bytes decoded."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from ganzoo.core.errors import GanzooError
from ganzoo.data.dataset import (
    SOURCE_DOWNLOAD,
    SOURCE_IDX,
    Data,
    DataRequest,
    DataSource,
    SourceFile,
)
from ganzoo.data.loading import default_data_root, register_dataset
from ganzoo.data.pixels import first_line, from_uint8

# Where the Debian package dataset-fashion-mnist puts its gzip IDX files (read offline).
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_DIR_ENV = "GANZOO_FASHION_MNIST_DIR"


def _source_file(path: Path, blob: bytes) -> SourceFile:
    return SourceFile(os.path.abspath(path), len(blob), hashlib.sha256(blob).hexdigest())


def read_idx(path: Path) -> np.ndarray:
    """An IDX uint8 array (gzip or plain), checked against its header so truncation is caught."""
    return _read_idx(path)[0]


def _read_idx(path: Path) -> tuple[np.ndarray, SourceFile]:
    """The array and the file's record, hashed from the very bytes that were decoded."""
    try:
        blob = path.read_bytes()
        raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
    except (OSError, EOFError, zlib.error) as exc:
        raise GanzooError(f"corrupt or truncated IDX file {path}: {first_line(exc)}") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise GanzooError(f"corrupt or truncated IDX file {path}: not an unsigned-byte IDX header")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise GanzooError(f"corrupt or truncated IDX file {path}: header has {ndim} dims")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise GanzooError(
            f"corrupt or truncated IDX file {path}: {len(raw)} bytes, header {dims} needs {expected}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims), _source_file(path, blob)


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _idx_stems(split: str) -> tuple[str, str]:
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _idx_pair(folder: Path, split: str) -> tuple[Path, Path] | None:
    images, labels = (_idx_file(folder, stem) for stem in _idx_stems(split))
    return (images, labels) if images is not None and labels is not None else None


def _idx_data(name: str, images_path: Path, labels_path: Path, kind: str = SOURCE_IDX) -> Data:
    (images, images_file), (labels, labels_file) = _read_idx(images_path), _read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise GanzooError(
            f"IDX files {images_path} and {labels_path} do not match: "
            f"images {images.shape}, labels {labels.shape}"
        )
    if labels.size and labels.max() > 9:
        raise GanzooError(f"corrupt IDX file {labels_path}: label {labels.max()} outside 0..9")
    x = from_uint8(images[:, None])
    y = torch.from_numpy(labels.astype(np.int64))
    source = DataSource(kind, (images_file, labels_file))
    return Data(name, x, y, "image", tuple(x.shape[1:]), 10, source=source)


def root_missing(
    request: DataRequest, spec: str, looked: str, fallback: str, hint: str = ""
) -> GanzooError:
    """The one line for an explicit root without the dataset: what was looked for, and where."""
    root = request.root
    if not root.exists():
        problem = "does not exist"
    elif not root.is_dir():
        problem = "is a file, not a folder" if root.is_file() else "is not a folder"
    else:
        problem = f"holds no {spec} {request.split} split"
    return GanzooError(
        f"--data-root {root} {problem}: looked for {looked}{hint}; pass a folder holding "
        f"torchvision's layout, or drop --data-root to {fallback}"
    )


def _torchvision_idx(
    spec: str, tv_name: str, request: DataRequest, extra_dirs: list[Path], offline_hint: str
) -> Data:
    """Look in root/<tv_name>/raw, then ``extra_dirs``, then try torchvision's download; an
    explicit root is the only place looked."""
    raw_dir = request.root / tv_name / "raw"
    if request.explicit_root:
        if request.root.is_dir() and (pair := _idx_pair(raw_dir, request.split)) is not None:
            return _idx_data(spec, *pair)
        stems = _idx_stems(request.split)
        looked = " and ".join(f"{raw_dir / stem}[.gz]" for stem in stems)
        hint = ""
        if request.root.is_dir() and any(_idx_file(request.root, stem) for stem in stems):
            hint = f" ({request.root} holds IDX files itself; torchvision's layout keeps them in {raw_dir})"
        default_dirs = [default_data_root() / tv_name / "raw", *extra_dirs]
        found = next((d for d in default_dirs if _idx_pair(d, request.split) is not None), None)
        searched = " and ".join(str(d) for d in default_dirs)
        fallback = f"use {found}" if found else f"search {searched}, then download"
        raise root_missing(request, spec, looked, fallback, hint)
    for folder in [raw_dir, *extra_dirs]:
        if (pair := _idx_pair(folder, request.split)) is not None:
            return _idx_data(spec, *pair)
    reason = "downloading disabled"
    if request.download:
        import torchvision.datasets

        train = request.split == "train"
        try:
            getattr(torchvision.datasets, tv_name)(request.root, train=train, download=True)
        except Exception as exc:  # noqa: BLE001 -- network failures come in many types; report them
            reason = first_line(exc)
        else:
            if (pair := _idx_pair(raw_dir, request.split)) is not None:
                return _idx_data(spec, *pair, kind=SOURCE_DOWNLOAD)
            reason = f"no IDX files in {raw_dir} afterwards"
    looked = " and ".join(str(d) for d in [raw_dir, *extra_dirs])
    raise GanzooError(
        f"{spec} not found: looked in {looked}, and download failed ({reason}). Get it with: "
        f"{offline_hint}run once with network access, or pass --data-root DIR holding torchvision's "
        f"{tv_name}/raw files."
    )


def fashion_mnist_dir() -> Path:
    return Path(os.environ.get(FASHION_MNIST_DIR_ENV) or DEBIAN_FASHION_MNIST_DIR)


@register_dataset("fashion-mnist")
def fashion_mnist(request: DataRequest) -> Data:
    hint = "`apt-get install dataset-fashion-mnist` (offline), "
    return _torchvision_idx("fashion-mnist", "FashionMNIST", request, [fashion_mnist_dir()], hint)


@register_dataset("mnist")
def mnist(request: DataRequest) -> Data:
    return _torchvision_idx("mnist", "MNIST", request, [], "")
