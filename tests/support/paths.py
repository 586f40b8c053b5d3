"""Where the project's files are, for the tests that read them (the README's blocks, the reference pages
beside the packages, pyproject.toml, the committed results)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PACKAGE = ROOT / "ganzoo"


def page(package: str) -> Path:
    """A package's reference page: ``page("protocols")`` is ganzoo/protocols/README.md."""
    return PACKAGE / package / "README.md"


def docs_text() -> str:
    """The README and every package's reference page, as one text."""
    return "\n".join(p.read_text() for p in [README, *sorted(PACKAGE.glob("*/README.md"))])
