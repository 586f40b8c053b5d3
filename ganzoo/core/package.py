"""Where ganzoo's own code lives, as one constant: the checks that tell ganzoo's frames and registrations
from a plugin's (ganzoo.core.registry, ganzoo.core.plugins) read it, wherever ganzoo is installed."""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the ganzoo package's folder
