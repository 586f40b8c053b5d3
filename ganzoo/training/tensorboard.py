"""A run's TensorBoard event files (``torch.utils.tensorboard``), written beside its JSONL records: the
training statistics at every log point (``train/...``), every evaluation's metrics (``eval/...``) and
the sample pictures. A sweep gives each run a folder under one log directory per study, so
``tensorboard --logdir runs/STUDY/tensorboard`` opens the whole sweep, run beside run."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from ganzoo.core.errors import GanzooError

# What each record holds beyond the numbers to plot.
_NOT_SCALARS = {"step", "population"}
EVAL_SCALARS = ("fid", "kid_mean", "precision", "recall", "density", "coverage", "inception_score", "modes_covered",
                "high_quality_share", "mode_reverse_kl", "classes_covered", "class_kl", "extraction_images_per_second")


class TensorBoard:
    def __init__(self, log_dir: Path | str) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch.utils.tensorboard needs the tensorboard package
            raise GanzooError("TensorBoard logging needs the tensorboard package: pip install 'ganzoo[tensorboard]'") from None
        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def statistics(self, record: dict[str, Any]) -> None:
        """A stats.jsonl record: losses, D's outputs, gradient norms, images/s, the loss's state."""
        for key, value in record.items():
            if key not in _NOT_SCALARS and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"train/{key}", value, record["step"])
        self.writer.flush()  # at every log point, so that a running sweep is seen as it runs

    def metrics(self, result: dict[str, Any]) -> None:
        """A metrics.jsonl record: FID and the other metrics of one evaluation."""
        for key in EVAL_SCALARS:
            value = result.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"eval/{key}", value, result["step"])

    def samples(self, step: int, png: bytes) -> None:
        """The run's sample picture at ``step``: the PNG samples_<step>.png holds (drawn once, for both)."""
        import numpy as np
        from PIL import Image

        picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        self.writer.add_image("samples", picture, step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()
