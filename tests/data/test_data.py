from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo.data.folders as folders_module
from ganzoo.core.cache import file_sha256
from ganzoo.core.errors import GanzooError
from ganzoo.data import (
    DATA_ROOT_ENV,
    DATASETS,
    DEBIAN_FASHION_MNIST_DIR,
    FASHION_MNIST_DIR_ENV,
    Data,
    DataRequest,
    data_record,
    grid_centers,
    load_dataset,
    read_idx,
    ring_centers,
)


@pytest.fixture
def no_debian_fashion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Points the Debian fallback at an empty directory, so only ``root`` is searched."""
    empty = tmp_path / "no-debian"
    empty.mkdir()
    monkeypatch.setenv(FASHION_MNIST_DIR_ENV, str(empty))
    return empty


@pytest.fixture
def default_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty default root (``$GANZOO_DATA``), so no test reads or downloads into the user's
    cache, while ``load_dataset(root=None)`` keeps every default fallback."""
    root = tmp_path / "default-root"
    monkeypatch.setenv(DATA_ROOT_ENV, str(root))
    return root


# ---- Fashion-MNIST / IDX ------------------------------------------------------------------------

@pytest.mark.parametrize(("split", "n"), [("train", 60_000), ("test", 10_000)])
def test_fashion_mnist_from_debian_files(default_root: Path, split: str, n: int) -> None:
    data = load_dataset("fashion-mnist", split, download=False)
    assert data.x is not None and data.y is not None
    assert data.x.shape == (n, 1, 28, 28) and data.x.dtype == torch.float32
    assert data.x.min().item() == -1.0 and data.x.max().item() == 1.0
    assert data.y.dtype == torch.int64 and set(data.y.tolist()) == set(range(10))
    assert data.kind == "image" and data.bounded and data.num_classes == 10
    assert data.sample_shape == (1, 28, 28) and len(data) == n and data.name == "fashion-mnist"


def test_fashion_mnist_resolution_resizes_and_stays_in_range(default_root: Path) -> None:
    data = load_dataset("fashion-mnist", "test", resolution=16, download=False)
    assert data.x is not None and data.x.shape == (10_000, 1, 16, 16)
    assert data.sample_shape == (1, 16, 16)
    assert data.x.min() >= -1.0 and data.x.max() <= 1.0


def test_torchvision_layout_under_root_is_preferred(tmp_path: Path, no_debian_fashion: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    _write_idx(raw / "t10k-images-idx3-ubyte", images)  # plain, as torchvision leaves it
    _write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.array([0, 9, 4], dtype=np.uint8), gz=True)
    data = load_dataset("fashion-mnist", "test", root=tmp_path, download=False)
    assert data.y is not None and data.y.tolist() == [0, 9, 4]
    assert data.x is not None
    torch.testing.assert_close(data.x, torch.from_numpy(images).float().unsqueeze(1) / 127.5 - 1)


def test_truncated_idx_file_is_a_one_line_error(
    tmp_path: Path, default_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "debian-copy"
    copy.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(DEBIAN_FASHION_MNIST_DIR / name, copy / name)
    raw = gzip.decompress((copy / "t10k-images-idx3-ubyte.gz").read_bytes())
    (copy / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[: len(raw) // 2]))
    monkeypatch.setenv(FASHION_MNIST_DIR_ENV, str(copy))
    with pytest.raises(GanzooError, match="truncated") as info:
        load_dataset("fashion-mnist", "test", download=False)
    assert "\n" not in str(info.value)


def test_truncated_gzip_stream_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    blob = gzip.compress(b"\0\0\x08\x01" + (5).to_bytes(4, "big") + bytes(5))
    path.write_bytes(blob[: len(blob) - 6])
    with pytest.raises(GanzooError, match="corrupt or truncated IDX file"):
        read_idx(path)


def test_bad_magic_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"not an idx file at all")
    with pytest.raises(GanzooError, match="corrupt or truncated IDX file"):
        read_idx(path)


def test_fashion_mnist_missing_everywhere_names_every_fix(
    default_root: Path, no_debian_fashion: Path
) -> None:
    with pytest.raises(GanzooError) as info:
        load_dataset("fashion-mnist", download=False)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "--data-root" in message
    assert str(default_root / "FashionMNIST" / "raw") in message and str(no_debian_fashion) in message
    assert "\n" not in message


def test_mnist_missing_is_a_clear_error(default_root: Path) -> None:
    with pytest.raises(GanzooError, match="mnist not found.*--data-root"):
        load_dataset("mnist", download=False)


def test_cifar10_missing_is_a_clear_error(default_root: Path) -> None:
    with pytest.raises(GanzooError, match="cifar10 not available"):
        load_dataset("cifar10", download=False)


# ---- an explicit root (--data-root) is used as given, never silently replaced ---------------

def _write_fashion_split(root: Path, split: str = "test", gz: bool = False) -> tuple[Path, Path]:
    """Three tiny images and labels in torchvision's layout under ``root``."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    images, labels = raw / f"{prefix}-images-idx3-ubyte{suffix}", raw / f"{prefix}-labels-idx1-ubyte{suffix}"
    _write_idx(images, np.full((3, 28, 28), 7, dtype=np.uint8), gz=gz)
    _write_idx(labels, np.array([1, 2, 3], dtype=np.uint8), gz=gz)
    return images, labels


def _explicit_roots(tmp_path: Path) -> dict[str, Path]:
    """Each way an explicit root can hold no dataset; the Debian copy stays in place throughout."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    flat = tmp_path / "flat"  # the Debian copy's layout, not torchvision's
    flat.mkdir()
    _write_idx(flat / "t10k-images-idx3-ubyte.gz", np.zeros((1, 28, 28), dtype=np.uint8), gz=True)
    _write_idx(flat / "t10k-labels-idx1-ubyte.gz", np.zeros(1, dtype=np.uint8), gz=True)
    wrong = tmp_path / "wrong"  # MNIST's folder where Fashion-MNIST's belongs
    (wrong / "MNIST" / "raw").mkdir(parents=True)
    other_split = tmp_path / "train-only"
    _write_fashion_split(other_split, "train")
    return {
        "missing": tmp_path / "missing", "file": a_file, "empty": empty, "flat": flat,
        "wrong": wrong, "other-split": other_split,
    }


@pytest.mark.parametrize("case", ["missing", "file", "empty", "flat", "wrong", "other-split"])
@pytest.mark.parametrize("download", [False, True])
def test_explicit_root_without_the_dataset_is_a_one_line_error(
    tmp_path: Path, default_root: Path, case: str, download: bool
) -> None:
    root = _explicit_roots(tmp_path)[case]
    # download=True too: an explicit root is never replaced by a download or by Debian's copy.
    with pytest.raises(GanzooError) as info:
        load_dataset("fashion-mnist", "test", root=root, download=download)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"--data-root {root} ")
    assert str(root / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte") in message  # what, and where
    assert "drop --data-root" in message
    expected = {
        "missing": "does not exist", "file": "is a file, not a folder", "flat": "holds IDX files itself",
    }
    assert expected.get(case, "holds no fashion-mnist test split") in message
    if DEBIAN_FASHION_MNIST_DIR.is_dir():
        assert f"drop --data-root to use {DEBIAN_FASHION_MNIST_DIR}" in message


@pytest.mark.parametrize("spec", ["mnist", "cifar10"])
@pytest.mark.parametrize("case", ["missing", "file", "empty"])
def test_explicit_root_without_mnist_or_cifar10_names_the_path(
    tmp_path: Path, default_root: Path, spec: str, case: str
) -> None:
    root = _explicit_roots(tmp_path)[case]
    with pytest.raises(GanzooError) as info:
        load_dataset(spec, "test", root=root, download=True)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"--data-root {root} ")
    if spec == "mnist":
        assert str(root / "MNIST" / "raw" / "t10k-images-idx3-ubyte") in message
    else:
        assert str(root / "cifar-10-batches-py" / "test_batch") in message
    assert not default_root.exists()  # nothing was downloaded anywhere


@pytest.mark.parametrize("gz", [False, True])
def test_explicit_root_with_torchvision_layout_is_used_and_recorded(tmp_path: Path, gz: bool) -> None:
    root = tmp_path / "data"
    images, labels = _write_fashion_split(root, "test", gz=gz)
    data = load_dataset("fashion-mnist", "test", root=root, download=False)  # Debian's copy stays put
    assert data.y is not None and data.y.tolist() == [1, 2, 3] and len(data) == 3
    record = data_record(data)
    assert record == json.loads(json.dumps(record))
    assert record["dataset"] == "fashion-mnist" and record["split"] == "test"
    assert record["kind"] == "idx files" and record["samples"] == 3 and record["sample_shape"] == [1, 28, 28]
    assert record["files"] == [
        {"path": str(f), "bytes": f.stat().st_size, "sha256": _sha256(f)}
        for f in (images, labels)
    ]


def test_explicit_root_equal_to_the_default_keeps_the_fallbacks(default_root: Path) -> None:
    # The trainer resolves config.data_root to the default root itself; that is not a choice.
    data = load_dataset("fashion-mnist", "test", root=default_root, download=False)
    assert data.source is not None and len(data) == 10_000
    assert all(Path(f.path).parent == DEBIAN_FASHION_MNIST_DIR for f in data.source.files)


def test_default_root_records_debian_files(default_root: Path) -> None:
    data = load_dataset("fashion-mnist", "test", download=False)
    record = data_record(data)
    assert record["kind"] == "idx files" and record["split"] == "test" and record["samples"] == 10_000
    names = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    assert record["files"] == [
        {"path": str(DEBIAN_FASHION_MNIST_DIR / n), "bytes": (DEBIAN_FASHION_MNIST_DIR / n).stat().st_size,
         "sha256": file_sha256(DEBIAN_FASHION_MNIST_DIR / n)}
        for n in names
    ]


def test_default_root_layout_wins_over_debian_and_is_recorded(default_root: Path) -> None:
    images, labels = _write_fashion_split(default_root, "test")
    record = data_record(load_dataset("fashion-mnist", "test", download=False))
    assert [f["path"] for f in record["files"]] == [str(images), str(labels)]


@pytest.mark.parametrize(("spec", "kind"), [("digits", "sklearn digits"), ("ring8", "generated mixture"),
                                            ("grid25", "generated mixture")])
def test_datasets_without_files_ignore_an_explicit_root_and_say_so(
    tmp_path: Path, spec: str, kind: str
) -> None:
    # A sweep passes one data_root to every dataset it runs, so these ignore it; the record notes it.
    bogus = tmp_path / "missing"
    data = load_dataset(spec, "test", root=bogus)
    record = data_record(data)
    assert record["kind"] == kind and record["split"] == "test"
    assert f"data root {bogus} ignored" in record["detail"]
    plain = data_record(load_dataset(spec, "test"))
    assert "ignored" not in plain["detail"] and plain["files"] == record["files"]
    assert json.loads(json.dumps(plain)) == plain
    if spec == "digits":
        (bundled,) = plain["files"]
        assert bundled["path"].endswith("digits.csv.gz")
        assert bundled["sha256"] == file_sha256(Path(bundled["path"]))
    else:
        assert plain["files"] == [] and "seed 1" in plain["detail"]


def test_plugin_loader_without_a_source_is_recorded_as_such(registered) -> None:
    def tiny(request: DataRequest) -> Data:
        return Data("tiny", torch.zeros(4, 2), None, "points", (2,))

    registered(DATASETS, "tiny-plugin", tiny)
    record = data_record(load_dataset("tiny-plugin"))
    assert record["kind"] == "plugin loader" and record["files"] == [] and "tiny" in record["detail"]


# ---- digits -------------------------------------------------------------------------------------

def test_digits_split_shapes_range_and_disjointness() -> None:
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.x is not None and test.x is not None and train.y is not None and test.y is not None
    assert train.x.shape == (1437, 1, 8, 8) and test.x.shape == (360, 1, 8, 8)
    assert train.x.min() == -1.0 and train.x.max() == 1.0 and train.num_classes == 10
    assert set(test.y.tolist()) == set(range(10))
    train_rows = {row.numpy().tobytes() for row in train.x.flatten(1)}
    test_rows = {row.numpy().tobytes() for row in test.x.flatten(1)}
    # load_digits has a few exact duplicate images; the split must not add more overlap than that.
    assert len(train_rows & test_rows) <= 5
    again = load_dataset("digits", "test")
    assert again.x is not None and torch.equal(again.x, test.x)


# ---- Gaussian mixtures --------------------------------------------------------------------------

def test_ring_and_grid_centres() -> None:
    ring = ring_centers()
    assert ring.shape == (8, 2)
    torch.testing.assert_close(ring.norm(dim=1), torch.full((8,), 2.0))
    torch.testing.assert_close(ring[0], torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(ring[2], torch.tensor([0.0, 2.0]), atol=1e-6, rtol=0)
    grid = grid_centers()
    assert grid.shape == (25, 2)
    coords = (-4.0, -2.0, 0.0, 2.0, 4.0)
    assert {tuple(c) for c in grid.tolist()} == {(a, b) for a in coords for b in coords}


@pytest.mark.parametrize(("name", "modes", "std"), [("ring8", 8, 0.02), ("grid25", 25, 0.05)])
def test_mixture_samples_match_declared_modes(name: str, modes: int, std: float) -> None:
    data = load_dataset(name)
    assert data.x is not None and data.y is not None and data.centers is not None
    assert data.kind == "points" and not data.bounded and data.sample_shape == (2,)
    assert data.x.shape == (100_000, 2) and data.num_classes == modes and data.std == std
    assert data.centers.shape == (modes, 2)
    offsets = data.x - data.centers[data.y]
    assert torch.allclose(offsets.std(dim=0), torch.full((2,), std), rtol=0.02)
    assert offsets.abs().max() < 5 * std  # per coordinate
    nearest = torch.cdist(data.x, data.centers).argmin(dim=1)
    assert torch.equal(nearest, data.y)
    counts = torch.bincount(data.y, minlength=modes).float()
    assert counts.min() > 0.9 * counts.mean()  # every mode gets about its equal share


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_is_deterministic_and_splits_differ(name: str) -> None:
    train, again, test = load_dataset(name), load_dataset(name), load_dataset(name, "test")
    assert train.x is not None and again.x is not None and test.x is not None
    assert torch.equal(train.x, again.x)
    assert test.x.shape == (10_000, 2) and not torch.equal(train.x[:10_000], test.x)


def test_resolution_on_points_is_refused() -> None:
    with pytest.raises(GanzooError, match="points"):
        load_dataset("ring8", resolution=32)


# ---- image folders ------------------------------------------------------------------------------

def _write_images(folder: Path) -> None:
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (20, 12), (255, 0, 0)).save(folder / "a.png")
    Image.new("L", (10, 10), 0).save(folder / "sub" / "b.png")
    Image.new("RGB", (8, 16), (255, 255, 255)).save(folder / "sub" / "c.PNG")
    (folder / "notes.txt").write_text("not an image")


def test_folder_loads_recursively_resized_and_scaled(tmp_path: Path) -> None:
    _write_images(tmp_path)
    data = load_dataset(f"folder:{tmp_path}", resolution=8)
    assert data.x is not None and data.x.shape == (3, 3, 8, 8) and data.sample_shape == (3, 8, 8)
    assert data.y is None and data.kind == "image" and data.name == f"folder:{tmp_path}"
    assert data.x.min() >= -1.0 and data.x.max() <= 1.0
    torch.testing.assert_close(data.x[0, :, 0, 0], torch.tensor([1.0, -1.0, -1.0]))  # red, sorted first
    # b is 10x10 -> 8x8, so antialiased resampling leaves float rounding; c is cropped to 8x8 exactly.
    torch.testing.assert_close(data.x[1], torch.full((3, 8, 8), -1.0))
    assert torch.all(data.x[2] == 1.0)
    default = load_dataset(f"folder:{tmp_path}")
    assert default.sample_shape == (3, 64, 64)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder_manifest_sha(folder: Path) -> tuple[int, int, str]:
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".png")
    lines = "".join(
        f"{p.relative_to(folder).as_posix()}\t{p.stat().st_size}\t{_sha256(p)}\n"
        for p in images
    )
    return len(images), sum(p.stat().st_size for p in images), hashlib.sha256(lines.encode()).hexdigest()


@pytest.mark.parametrize("streamed", [False, True])
def test_folder_records_one_manifest_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    _write_images(tmp_path)
    if streamed:
        monkeypatch.setattr(folders_module, "max_in_memory_bytes", 0)
    record = data_record(load_dataset(f"folder:{tmp_path}", resolution=8))
    count, size, sha = _folder_manifest_sha(tmp_path)
    assert record["kind"] == "folder" and record["samples"] == 3
    assert record["files"] == [{"path": str(tmp_path), "bytes": size, "sha256": sha, "count": count}]
    (tmp_path / "a.png").write_bytes((tmp_path / "sub" / "b.png").read_bytes())  # same size, new bytes
    changed = data_record(load_dataset(f"folder:{tmp_path}", resolution=8))
    assert changed["files"][0]["sha256"] != sha


def test_folder_streams_when_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_images(tmp_path)
    monkeypatch.setattr(folders_module, "max_in_memory_bytes", 0)
    data = load_dataset(f"folder:{tmp_path}", resolution=8)
    assert data.x is None and data.stream is not None and len(data) == 3
    item = data.stream[2]
    assert item.shape == (3, 8, 8) and item.dtype == torch.float32 and torch.all(item == 1.0)


def test_folder_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(GanzooError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    with pytest.raises(GanzooError, match="no images"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(GanzooError, match="cannot read image") as info:
        load_dataset(f"folder:{tmp_path}")
    assert "\n" not in str(info.value)
    with pytest.raises(GanzooError, match="folder:PATH"):
        load_dataset("folder")


# ---- the registry front door --------------------------------------------------------------------

def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(GanzooError, match="unknown dataset 'imagenet'") as info:
        load_dataset("imagenet")
    for name in ("fashion-mnist", "mnist", "cifar10", "digits", "ring8", "grid25", "folder"):
        assert name in DATASETS and name in str(info.value)


def test_bad_split_is_refused() -> None:
    with pytest.raises(GanzooError, match="split"):
        load_dataset("ring8", "validation")


def _write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if gz else blob)
