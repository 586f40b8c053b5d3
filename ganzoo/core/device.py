"""Devices: the one place a setting (``auto``, ``cpu``, ``cuda[:N]``) becomes a torch device and a
device gets the name results record it under."""

from __future__ import annotations

import platform

import torch

from ganzoo.core.errors import GanzooError


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else the CPU; a CUDA device asked for where there is none is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanzooError(f"device {name!r} asked for, but CUDA is not available here")
    return device


def device_name(device: torch.device) -> str:
    """The GPU's model, or the CPU's architecture and the threads torch uses on it."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
