"""``folder:PATH``: every image under a folder, held in memory as one tensor, or streamed from disk when
that tensor would be too large; one manifest hash covers the whole folder."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganzoo.core.cache import file_sha256
from ganzoo.core.errors import GanzooError
from ganzoo.data.dataset import SOURCE_FOLDER, Data, DataRequest, DataSource, SourceFile
from ganzoo.data.loading import register_dataset
from ganzoo.data.pixels import first_line, from_uint8, resize

# A folder whose decoded float32 tensor would exceed this is streamed from disk instead.
max_in_memory_bytes = 2 * 1024**3
DEFAULT_FOLDER_RESOLUTION = 64
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})


def _decode_image(path: Path, resolution: int, raw: bytes | None = None) -> Tensor:
    """RGB, centre-cropped to a square, resized -> (3, R, R) float32 in [-1, 1]; ``raw``: the
    file's bytes when the caller has read them already."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw) if raw is not None else path) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise GanzooError(f"cannot read image {path}: {first_line(exc)}") from None
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = rgb[top : top + side, left : left + side].transpose(2, 0, 1)
    x = from_uint8(square[None])
    return x[0] if side == resolution else resize(x, resolution)[0]


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
        raise GanzooError(f"cannot read image {path}: {first_line(exc)}") from None


def _hashed(path: Path) -> tuple[int, str]:
    try:
        return path.stat().st_size, file_sha256(path)
    except OSError as exc:
        raise GanzooError(f"cannot read image {path}: {first_line(exc)}") from None


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
