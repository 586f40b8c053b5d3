"""The published protocols ganzoo runs, as data: each paper's choices beside the reference code's, the
search ranges and budgets they are written in, and the shipped presets (``presets/*.toml``).

- ``tables``: what a protocol table is made of (a choice, a reference, the registry of references);
- ``summary``: what every sweep states of its protocol, and the table of the one it follows;
- ``compare_gan``: Lucic et al. 2018's and Kurach et al. 2019's tables; ``mixtures``: PacGAN's and VEEGAN's;
- ``ranges``: the search-space distributions and Lucic et al.'s ranges; ``budget``: a run's length in D or G
  updates.

Reference pages: ``ganzoo/protocols/README.md``.
"""

from __future__ import annotations

# PacGAN's and VEEGAN's tables register before Lucic et al.'s and Kurach et al.'s, as they always have.
from ganzoo.protocols import mixtures  # noqa: F401  (isort: skip)
from ganzoo.protocols import compare_gan  # noqa: F401  (isort: skip)
from ganzoo.protocols.compare_gan import KURACH2019, LUCIC2018
from ganzoo.protocols.summary import reference_table, summary
from ganzoo.protocols.tables import (
    AS_REFERENCE,
    DIFFERS,
    ON_PURPOSE,
    REFERENCES,
    Choice,
    Context,
    Reference,
    Row,
    budget_text,
    markdown,
    number_text,
    register_reference,
    table,
    text,
)

__all__ = [
    "AS_REFERENCE", "DIFFERS", "KURACH2019", "LUCIC2018", "ON_PURPOSE", "REFERENCES", "Choice", "Context", "Reference",
    "Row", "budget_text", "markdown", "number_text", "reference_table", "register_reference", "summary", "table", "text",
]
