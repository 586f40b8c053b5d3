"""Datasets: a name -> loader registry and the loaders every variant is benchmarked on.

A loader turns a ``DataRequest`` into a ``Data``: images as float32 (N, C, H, W) in [-1, 1], or 2-d
points from a Gaussian mixture whose centres are known (so mode coverage can be counted). Every
missing, corrupt or truncated file surfaces as a one-line ``GanzooError`` naming how to fix it.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from ganzoo.errors import GanzooError
from ganzoo.registry import Registry

SPLITS = ("train", "test")
# Where the Debian package dataset-fashion-mnist puts its gzip IDX files (read offline).
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_DIR_ENV = "GANZOO_FASHION_MNIST_DIR"
DATA_ROOT_ENV = "GANZOO_DATA"
# A folder whose decoded float32 tensor would exceed this is streamed from disk instead.
max_in_memory_bytes = 2 * 1024**3
DEFAULT_FOLDER_RESOLUTION = 64
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
# Points splits use distinct seeds, so the test split is a fresh draw from the same mixture.
POINT_SEEDS = {"train": 0, "test": 1}
POINT_COUNTS = {"train": 100_000, "test": 10_000}


@dataclass(frozen=True)
class DataRequest:
    arg: str | None  # text after ':' in the spec ("folder:PATH" -> PATH)
    split: str  # "train" | "test"
    root: Path  # where torchvision downloads to and looks
    resolution: int | None  # resize images to resolution x resolution when given
    download: bool  # allowed to try torchvision's download


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


Loader = Callable[[DataRequest], Data]
LoaderT = TypeVar("LoaderT", bound=Loader)
DATASETS: Registry[Loader] = Registry("dataset")


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
    request = DataRequest(arg if sep else None, split, data_root, resolution, download)
    data = loader(request)
    if resolution is not None:
        data = _resized(data, resolution)
    return data


def _resized(data: Data, resolution: int) -> Data:
    """Applied after every loader, so plugin datasets honour --resolution without doing it themselves."""
    if data.kind == "points":
        raise GanzooError(f"dataset {data.name!r} is 2-d points; a resolution applies only to images")
    if data.x is None or tuple(data.x.shape[-2:]) == (resolution, resolution):
        return data  # streamed loaders resize per item
    x = _resize(data.x, resolution)
    return replace(data, x=x, sample_shape=tuple(x.shape[1:]))


def _resize(x: Tensor, resolution: int, chunk: int = 4096) -> Tensor:
    # Chunked so the antialiased passes never allocate scratch buffers for all 60k images at once.
    out = torch.empty((x.shape[0], x.shape[1], resolution, resolution), dtype=torch.float32)
    for start in range(0, x.shape[0], chunk):
        part = torch.nn.functional.interpolate(
            x[start : start + chunk], size=(resolution, resolution),
            mode="bilinear", antialias=True, align_corners=False,
        )
        out[start : start + chunk] = part.clamp_(-1.0, 1.0)
    return out


def _from_uint8(images: np.ndarray) -> Tensor:
    """uint8 (N, C, H, W) -> float32 in [-1, 1]; 0 and 255 map exactly to -1 and 1."""
    return torch.from_numpy(np.asarray(images, dtype=np.float32)).div_(127.5).sub_(1.0)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# ---- IDX files (MNIST, Fashion-MNIST) ----------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """An IDX uint8 array (gzip or plain), checked against its header so truncation is caught."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise GanzooError(f"corrupt or truncated IDX file {path}: {_first_line(exc)}") from None
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
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _idx_pair(folder: Path, split: str) -> tuple[Path, Path] | None:
    prefix = "train" if split == "train" else "t10k"
    images = _idx_file(folder, f"{prefix}-images-idx3-ubyte")
    labels = _idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    return (images, labels) if images is not None and labels is not None else None


def _idx_data(name: str, images_path: Path, labels_path: Path) -> Data:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise GanzooError(
            f"IDX files {images_path} and {labels_path} do not match: "
            f"images {images.shape}, labels {labels.shape}"
        )
    if labels.size and labels.max() > 9:
        raise GanzooError(f"corrupt IDX file {labels_path}: label {labels.max()} outside 0..9")
    x = _from_uint8(images[:, None])
    return Data(name, x, torch.from_numpy(labels.astype(np.int64)), "image", tuple(x.shape[1:]), 10)


def _torchvision_idx(
    spec: str, tv_name: str, request: DataRequest, extra_dirs: list[Path], offline_hint: str
) -> Data:
    """Look in root/<tv_name>/raw, then ``extra_dirs``, then try torchvision's download."""
    raw_dir = request.root / tv_name / "raw"
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
            reason = _first_line(exc)
        else:
            if (pair := _idx_pair(raw_dir, request.split)) is not None:
                return _idx_data(spec, *pair)
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


@register_dataset("cifar10")
def cifar10(request: DataRequest) -> Data:
    import torchvision.datasets

    try:
        train = request.split == "train"
        ds = torchvision.datasets.CIFAR10(request.root, train=train, download=request.download)
    except Exception as exc:  # noqa: BLE001 -- missing, corrupt pickles and network errors alike
        raise GanzooError(
            f"cifar10 not available under {request.root / 'cifar-10-batches-py'} ({_first_line(exc)}). "
            "Run once with network access, or pass --data-root DIR holding torchvision's "
            "cifar-10-batches-py."
        ) from None
    x = _from_uint8(ds.data.transpose(0, 3, 1, 2))  # stored as (N, H, W, C)
    y = torch.tensor(ds.targets, dtype=torch.int64)
    return Data("cifar10", x, y, "image", tuple(x.shape[1:]), 10)


@register_dataset("digits")
def digits(request: DataRequest) -> Data:
    """sklearn's bundled 8x8 digits: tiny, offline, good for smoke tests."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    index = np.arange(len(bunch.target))
    train, test = train_test_split(index, test_size=0.2, random_state=0, stratify=bunch.target)
    keep = train if request.split == "train" else test
    x = torch.from_numpy(bunch.images[keep]).float().div_(8.0).sub_(1.0).unsqueeze(1)  # 0..16 -> [-1, 1]
    y = torch.from_numpy(bunch.target[keep].astype(np.int64))
    return Data("digits", x, y, "image", (1, 8, 8), 10)


# ---- Gaussian mixtures --------------------------------------------------------------------------

def ring_centers(n: int = 8, radius: float = 2.0) -> Tensor:
    angles = torch.arange(n, dtype=torch.float64) * (2 * torch.pi / n)
    return (torch.stack([angles.cos(), angles.sin()], dim=1) * radius).float()


def grid_centers(side: int = 5, spacing: float = 2.0) -> Tensor:
    coords = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(coords, coords)


def _mixture(name: str, request: DataRequest, centers: Tensor, std: float) -> Data:
    if request.resolution is not None:
        raise GanzooError(f"dataset {name!r} is 2-d points; a resolution applies only to images")
    generator = torch.Generator().manual_seed(POINT_SEEDS[request.split])
    n = POINT_COUNTS[request.split]
    mode = torch.randint(len(centers), (n,), generator=generator)
    x = centers[mode] + std * torch.randn((n, 2), generator=generator)
    return Data(name, x, mode, "points", (2,), len(centers), centers, std)


@register_dataset("ring8")
def ring8(request: DataRequest) -> Data:
    """8 modes on a radius-2 circle, std 0.02 (Metz et al., Unrolled GANs)."""
    return _mixture("ring8", request, ring_centers(), 0.02)


@register_dataset("grid25")
def grid25(request: DataRequest) -> Data:
    """5x5 modes on {-4,-2,0,2,4}^2, std 0.05 (Srivastava et al., VEEGAN)."""
    return _mixture("grid25", request, grid_centers(), 0.05)


# ---- image folders ------------------------------------------------------------------------------

def _decode_image(path: Path, resolution: int) -> Tensor:
    """RGB, centre-cropped to a square, resized -> (3, R, R) float32 in [-1, 1]."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise GanzooError(f"cannot read image {path}: {_first_line(exc)}") from None
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = rgb[top : top + side, left : left + side].transpose(2, 0, 1)
    x = _from_uint8(square[None])
    return x[0] if side == resolution else _resize(x, resolution)[0]


class ImageFolderStream(torch.utils.data.Dataset):
    """Decodes one image per item, for folders too large to hold in memory."""

    def __init__(self, paths: list[Path], resolution: int) -> None:
        self.paths = paths
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        return _decode_image(self.paths[index], self.resolution)


def _image_paths(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise GanzooError(f"image folder {folder} does not exist or is not a directory")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise GanzooError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return paths


@register_dataset("folder")
def folder(request: DataRequest) -> Data:
    """``folder:PATH``: every image under PATH, recursively; the split is ignored (no labels)."""
    if not request.arg:
        raise GanzooError("dataset 'folder' needs a path: folder:PATH")
    paths = _image_paths(Path(request.arg).expanduser())
    resolution = request.resolution or DEFAULT_FOLDER_RESOLUTION
    name, shape = f"folder:{request.arg}", (3, resolution, resolution)
    if len(paths) * 3 * resolution * resolution * 4 > max_in_memory_bytes:
        stream = ImageFolderStream(paths, resolution)
        stream[0]  # fail now, not mid-training, if the images cannot be read at all
        return Data(name, None, None, "image", shape, stream=stream)
    x = torch.stack([_decode_image(p, resolution) for p in paths])
    return Data(name, x, None, "image", shape)
