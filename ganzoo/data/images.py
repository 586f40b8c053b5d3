"""Image datasets read by their own libraries: CIFAR-10 (torchvision's files) and scikit-learn's bundled
8x8 digits."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ganzoo.core.cache import file_sha256
from ganzoo.core.errors import GanzooError
from ganzoo.data.dataset import (
    SOURCE_DIGITS,
    SOURCE_DOWNLOAD,
    SOURCE_TORCHVISION,
    Data,
    DataRequest,
    DataSource,
    SourceFile,
)
from ganzoo.data.idx import root_missing
from ganzoo.data.loading import default_data_root, register_dataset
from ganzoo.data.pixels import first_line, from_uint8


@register_dataset("cifar10")
def cifar10(request: DataRequest) -> Data:
    import torchvision.datasets

    train = request.split == "train"
    folder = request.root / "cifar-10-batches-py"
    batches = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    files = [folder / name for name in [*batches, "batches.meta"]]
    present = request.root.is_dir() and all(f.is_file() for f in files)
    if request.explicit_root and not present:
        looked = f"{folder}/{'data_batch_1..5' if train else 'test_batch'} and batches.meta"
        fallback = f"use the default root {default_data_root()} (downloaded there when allowed)"
        raise root_missing(request, "cifar10", looked, fallback)
    try:
        download = request.download and not request.explicit_root
        ds = torchvision.datasets.CIFAR10(request.root, train=train, download=download)
    except Exception as exc:  # noqa: BLE001 -- missing, corrupt pickles and network errors alike
        raise GanzooError(
            f"cifar10 not available under {request.root / 'cifar-10-batches-py'} ({first_line(exc)}). "
            "Run once with network access, or pass --data-root DIR holding torchvision's "
            "cifar-10-batches-py."
        ) from None
    x = from_uint8(ds.data.transpose(0, 3, 1, 2))  # stored as (N, H, W, C)
    y = torch.tensor(ds.targets, dtype=torch.int64)
    # torchvision reads the pickles itself, so they are hashed once more here (170 MB: well under
    # a second); the decoded tensor's fingerprint (cache.tensor_fingerprint) is not a file hash.
    source = DataSource(
        SOURCE_TORCHVISION if present else SOURCE_DOWNLOAD,
        tuple(SourceFile(os.path.abspath(f), f.stat().st_size, file_sha256(f)) for f in files),
    )
    return Data("cifar10", x, y, "image", tuple(x.shape[1:]), 10, source=source)


@register_dataset("digits")
def digits(request: DataRequest) -> Data:
    """sklearn's bundled 8x8 digits: tiny, offline, good for smoke tests."""
    from importlib import resources

    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    index = np.arange(len(bunch.target))
    train, test = train_test_split(index, test_size=0.2, random_state=0, stratify=bunch.target)
    keep = train if request.split == "train" else test
    x = torch.from_numpy(bunch.images[keep]).float().div_(8.0).sub_(1.0).unsqueeze(1)  # 0..16 -> [-1, 1]
    y = torch.from_numpy(bunch.target[keep].astype(np.int64))
    bundled = Path(str(resources.files("sklearn.datasets") / "data" / "digits.csv.gz"))
    files: tuple[SourceFile, ...] = ()
    if bundled.is_file():  # absent only if scikit-learn moves it; the version in detail still says which
        files = (SourceFile(str(bundled), bundled.stat().st_size, file_sha256(bundled)),)
    detail = f"scikit-learn {sklearn.__version__} load_digits; stratified 80/20 split, random_state=0"
    return Data("digits", x, y, "image", (1, 8, 8), 10, source=DataSource(SOURCE_DIGITS, files, detail))
