"""The shipped presets: TOML files that are package data of ganzoo.protocols (``presets/*.toml``), found
through importlib.resources, so they are where an installed wheel put them as well as in a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def preset_dir() -> Path:
    """The folder of the shipped presets."""
    return Path(str(resources.files("ganzoo.protocols") / "presets"))


def shipped_presets() -> dict[str, str]:
    """Name -> purpose of each shipped preset: the first line of its leading comment."""
    out = {}
    for path in sorted(preset_dir().glob("*.toml")):
        first = next((line for line in path.read_text().splitlines() if line.strip()), "")
        out[path.stem] = first.lstrip("# ").strip() if first.startswith("#") else ""
    return out
