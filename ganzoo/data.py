"""Datasets: a name -> loader registry and the loaders every variant is benchmarked on.

A loader turns a ``DataRequest`` into a ``Data``: images as float32 (N, C, H, W) in [-1, 1], or 2-d
points from a Gaussian mixture whose centres are known (so mode coverage can be counted). Every
missing, corrupt or truncated file surfaces as a one-line ``GanzooError`` naming how to fix it.

A root passed to ``load_dataset`` (``--data-root``) is used as given: it must hold the dataset's
files, or loading fails. With no root, the default root is searched, then Debian's copy, then a
download. Either way every ``Data`` carries a ``DataSource`` naming the files it was read from and
their sha256, which ``data_record`` turns into the JSON written beside each run.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from ganzoo.cache import file_sha256
from ganzoo.errors import GanzooError
from ganzoo.registry import Registry, callable_with

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
    data = check_data(loader(request), name, split)
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
    x = _from_uint8(images[:, None])
    y = torch.from_numpy(labels.astype(np.int64))
    source = DataSource(kind, (images_file, labels_file))
    return Data(name, x, y, "image", tuple(x.shape[1:]), 10, source=source)


def _root_missing(
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
        raise _root_missing(request, spec, looked, fallback, hint)
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
        raise _root_missing(request, "cifar10", looked, fallback)
    try:
        download = request.download and not request.explicit_root
        ds = torchvision.datasets.CIFAR10(request.root, train=train, download=download)
    except Exception as exc:  # noqa: BLE001 -- missing, corrupt pickles and network errors alike
        raise GanzooError(
            f"cifar10 not available under {request.root / 'cifar-10-batches-py'} ({_first_line(exc)}). "
            "Run once with network access, or pass --data-root DIR holding torchvision's "
            "cifar-10-batches-py."
        ) from None
    x = _from_uint8(ds.data.transpose(0, 3, 1, 2))  # stored as (N, H, W, C)
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


# ---- Gaussian mixtures --------------------------------------------------------------------------

def ring_centers(n: int = 8, radius: float = 2.0) -> Tensor:
    angles = torch.arange(n, dtype=torch.float64) * (2 * torch.pi / n)
    return (torch.stack([angles.cos(), angles.sin()], dim=1) * radius).float()


def grid_centers(side: int = 5, spacing: float = 2.0) -> Tensor:
    coords = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(coords, coords)


def _mixture(name: str, request: DataRequest, centers: Tensor, std: float, layout: str) -> Data:
    if request.resolution is not None:
        raise GanzooError(f"dataset {name!r} is 2-d points; a resolution applies only to images")
    generator = torch.Generator().manual_seed(POINT_SEEDS[request.split])
    n = POINT_COUNTS[request.split]
    mode = torch.randint(len(centers), (n,), generator=generator)
    x = centers[mode] + std * torch.randn((n, 2), generator=generator)
    seed = POINT_SEEDS[request.split]
    source = DataSource(SOURCE_MIXTURE, detail=f"{n} points, {layout}, std {std}, seed {seed}")
    return Data(name, x, mode, "points", (2,), len(centers), centers, std, source=source)


@register_dataset("ring8")
def ring8(request: DataRequest) -> Data:
    """8 modes on a radius-2 circle, std 0.02 (Metz et al., Unrolled GANs)."""
    return _mixture("ring8", request, ring_centers(), 0.02, "8 modes on a radius-2 circle")


@register_dataset("pacgan-ring")
def pacgan_ring(request: DataRequest) -> Data:
    """8 modes on a radius-1 circle, std 0.01: PacGAN's ring (Lin et al. 2018; fjxmlzn/PacGAN@190853e
    synthetic_data_experiments/2DRing_GAN&PacGAN/config.py:6-7), ring8's shape at half its scale."""
    return _mixture("pacgan-ring", request, ring_centers(radius=1.0), 0.01, "8 modes on a radius-1 circle")


@register_dataset("grid25")
def grid25(request: DataRequest) -> Data:
    """5x5 modes on {-4,-2,0,2,4}^2, std 0.05 (Srivastava et al., VEEGAN)."""
    return _mixture("grid25", request, grid_centers(), 0.05, "5x5 modes on {-4,-2,0,2,4}^2")


# ---- image folders ------------------------------------------------------------------------------

def _decode_image(path: Path, resolution: int, raw: bytes | None = None) -> Tensor:
    """RGB, centre-cropped to a square, resized -> (3, R, R) float32 in [-1, 1]; ``raw``: the
    file's bytes when the caller has read them already."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw) if raw is not None else path) as image:
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
    root = Path(request.arg).expanduser()
    paths = _image_paths(root)
    resolution = request.resolution or DEFAULT_FOLDER_RESOLUTION
    name, shape = f"folder:{request.arg}", (3, resolution, resolution)
    manifest = _FolderManifest(root)
    if len(paths) * 3 * resolution * resolution * 4 > max_in_memory_bytes:
        # Hashing reads every image once up front: far cheaper than the decoding of one epoch.
        for p in paths:
            manifest.add(p, *_hashed(p))
        stream = ImageFolderStream(paths, resolution)
        stream[0]  # fail now, not mid-training, if the images cannot be read at all
        return Data(name, None, None, "image", shape, stream=stream, source=manifest.source())
    images = []
    for p in paths:
        raw = _read_image_bytes(p)
        manifest.add(p, len(raw), hashlib.sha256(raw).hexdigest())
        images.append(_decode_image(p, resolution, raw))
    return Data(name, torch.stack(images), None, "image", shape, source=manifest.source())


def _read_image_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise GanzooError(f"cannot read image {path}: {_first_line(exc)}") from None


def _hashed(path: Path) -> tuple[int, str]:
    try:
        return path.stat().st_size, file_sha256(path)
    except OSError as exc:
        raise GanzooError(f"cannot read image {path}: {_first_line(exc)}") from None


class _FolderManifest:
    """One SourceFile for a whole folder: a record per image would make data.json as long as the
    folder (hundreds of thousands of lines for a face dataset)."""

    def __init__(self, root: Path) -> None:
        self.root, self.count, self.bytes, self.digest = root, 0, 0, hashlib.sha256()

    def add(self, path: Path, size: int, sha256: str) -> None:
        self.count, self.bytes = self.count + 1, self.bytes + size
        self.digest.update(f"{path.relative_to(self.root).as_posix()}\t{size}\t{sha256}\n".encode())

    def source(self) -> DataSource:
        entry = SourceFile(os.path.abspath(self.root), self.bytes, self.digest.hexdigest(), self.count)
        how = "sha256 over sorted 'relative path<TAB>size<TAB>sha256' lines"
        return DataSource(SOURCE_FOLDER, (entry,), how)
