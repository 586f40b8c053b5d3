"""The one data layer every variant trains and is scored on: datasets by name, loaded, checked and recorded.

- ``dataset``: ``DataRequest`` (what a loader is asked), ``Data`` (what it returns), ``DataSource`` (the files
  it read, for data.json) and ``check_data``;
- ``loading``: the registry (``register_dataset``), the data root and ``load_dataset``;
- ``idx``: MNIST and Fashion-MNIST; ``images``: CIFAR-10 and scikit-learn's digits; ``mixtures``: ring8,
  grid25, pacgan-ring; ``folders``: ``folder:PATH``; ``pixels``: the pixel conventions loaders share;
- ``batches``: batches drawn by index on the device, or streamed.

Reference page: ``ganzoo/data/README.md``.
"""

from __future__ import annotations

from ganzoo.data.dataset import (
    ROOTLESS_KINDS,
    SOURCE_DIGITS,
    SOURCE_DOWNLOAD,
    SOURCE_FOLDER,
    SOURCE_IDX,
    SOURCE_MIXTURE,
    SOURCE_PLUGIN,
    SOURCE_TORCHVISION,
    SPLITS,
    Data,
    DataRequest,
    DataSource,
    SourceFile,
    check_data,
    data_record,
)
from ganzoo.data.loading import (
    DATA_ROOT_ENV,
    DATASETS,
    Loader,
    default_data_root,
    load_dataset,
    register_dataset,
)

# The built-in datasets, registered in this order (``ganzoo list`` and ``auto`` read it).
from ganzoo.data.idx import (  # isort: skip
    DEBIAN_FASHION_MNIST_DIR,
    FASHION_MNIST_DIR_ENV,
    fashion_mnist,
    fashion_mnist_dir,
    mnist,
    read_idx,
)
from ganzoo.data.images import cifar10, digits  # isort: skip
from ganzoo.data.mixtures import POINT_COUNTS, POINT_SEEDS, grid25, grid_centers, pacgan_ring, ring8, ring_centers  # isort: skip
from ganzoo.data.folders import (  # isort: skip
    DEFAULT_FOLDER_RESOLUTION,
    IMAGE_SUFFIXES,
    ImageFolderStream,
    folder,
    max_in_memory_bytes,
)

__all__ = [
    "DATASETS", "DATA_ROOT_ENV", "DEBIAN_FASHION_MNIST_DIR", "DEFAULT_FOLDER_RESOLUTION", "FASHION_MNIST_DIR_ENV",
    "IMAGE_SUFFIXES", "POINT_COUNTS", "POINT_SEEDS", "ROOTLESS_KINDS", "SOURCE_DIGITS", "SOURCE_DOWNLOAD",
    "SOURCE_FOLDER", "SOURCE_IDX", "SOURCE_MIXTURE", "SOURCE_PLUGIN", "SOURCE_TORCHVISION", "SPLITS", "Data",
    "DataRequest", "DataSource", "ImageFolderStream", "Loader", "SourceFile", "check_data", "cifar10", "data_record",
    "default_data_root", "digits", "fashion_mnist", "fashion_mnist_dir", "folder", "grid25", "grid_centers",
    "load_dataset", "max_in_memory_bytes", "mnist", "pacgan_ring", "read_idx", "register_dataset", "ring8",
    "ring_centers",
]
