"""``ganzoo report``: a study as report.md, a self-contained report.html and figures/*.png|svg. It reads only
what runs and studies wrote (JSONL, CSV, the study storage); it never trains.

- ``load``: a study's trials and runs, from its folder, trials.csv or storage;
- ``document``: the sections, and report.md / report.html; ``tables``, ``coverage``, ``verdict``: what they
  print; ``figures``: what they draw; ``formatting``: how numbers are shown.

Reference page: ``ganzoo/report/README.md``.
"""

from __future__ import annotations

from ganzoo.report.document import (
    FIGURES,
    REPORT_HTML,
    REPORT_MD,
    SUMMARY_CSV,
    Section,
    Table,
    build_sections,
    write_report,
)
from ganzoo.report.load import StudyResults, load

__all__ = ["FIGURES", "REPORT_HTML", "REPORT_MD", "SUMMARY_CSV", "Section", "StudyResults", "Table", "build_sections",
           "load", "write_report"]
