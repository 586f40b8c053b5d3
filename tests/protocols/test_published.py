"""The papers' own numbers (ganzoo.protocols.published), pinned as transcribed: each value with its table,
row and column, so that an edit to one is a deliberate, reviewed change."""

from __future__ import annotations

import pytest

from ganzoo.data import DATASETS
from ganzoo.protocols import REFERENCES
from ganzoo.protocols.published import FID, HIGH_QUALITY, MODES, NO_SPREAD, REVERSE_KL, STANDARD_ERROR, STD
from ganzoo.zoo.variants import VARIANTS

# (reference, paper row, paper dataset, metric): (value, spread) as printed
PINNED = {
    # Srivastava et al. 2017, table 1 (no spread; 5 runs)
    ("veegan2017", "GAN", "2D Ring", MODES): (1, None), ("veegan2017", "GAN", "2D Ring", HIGH_QUALITY): (99.3, None),
    ("veegan2017", "GAN", "2D Grid", MODES): (3.3, None), ("veegan2017", "GAN", "2D Grid", HIGH_QUALITY): (0.5, None),
    ("veegan2017", "Unrolled GAN", "2D Ring", MODES): (7.6, None),
    ("veegan2017", "Unrolled GAN", "2D Ring", HIGH_QUALITY): (35.6, None),
    ("veegan2017", "Unrolled GAN", "2D Grid", MODES): (23.6, None),
    ("veegan2017", "Unrolled GAN", "2D Grid", HIGH_QUALITY): (16, None),
    # Lin et al. 2018, table 1 (standard error over 10 trials)
    **{("pacgan2018", row, "2D-ring", metric): value for row, values in {
        "GAN": ((6.3, 0.5), (98.2, 0.2), (0.45, 0.09)), "PacGAN2": ((7.9, 0.1), (95.6, 2.0), (0.07, 0.03)),
        "PacGAN3": ((7.8, 0.1), (97.7, 0.3), (0.10, 0.02)), "PacGAN4": ((7.8, 0.1), (95.9, 1.4), (0.07, 0.02)),
    }.items() for metric, value in zip((MODES, HIGH_QUALITY, REVERSE_KL), values)},
    **{("pacgan2018", row, "2D-grid", metric): value for row, values in {
        "GAN": ((17.3, 0.8), (94.8, 0.7), (0.70, 0.07)), "PacGAN2": ((23.8, 0.7), (91.3, 0.8), (0.13, 0.04)),
        "PacGAN3": ((24.6, 0.4), (94.2, 0.4), (0.06, 0.02)), "PacGAN4": ((24.8, 0.2), (93.6, 0.6), (0.04, 0.01)),
    }.items() for metric, value in zip((MODES, HIGH_QUALITY, REVERSE_KL), values)},
    # Lucic et al. 2018, the best-FID table's Fashion-MNIST column (std over 50 runs)
    **{("lucic2018", row, "Fashion-MNIST", FID): value for row, value in {
        "MM GAN": (29.6, 1.6), "NS GAN": (26.5, 1.6), "LSGAN": (30.7, 2.2), "WGAN": (21.5, 1.6),
        "WGAN GP": (24.5, 2.1), "DRAGAN": (27.7, 1.2), "BEGAN": (22.9, 0.9)}.items()},
}
KINDS = {"veegan2017": (NO_SPREAD, 5), "pacgan2018": (STANDARD_ERROR, 10), "lucic2018": (STD, 50)}


def test_every_published_value_is_as_transcribed():
    found = {(name, p.row, p.dataset, p.metric): (p.value, p.spread)
             for name in REFERENCES for p in REFERENCES.get(name).published}
    assert found == PINNED
    for name, (kind, runs) in KINDS.items():
        assert {(p.spread_kind, p.runs) for p in REFERENCES.get(name).published} == {(kind, runs)}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_each_paper_preset_has_its_papers_rows_or_says_why_not(name):
    reference = REFERENCES.get(name)
    assert reference.published or reference.published_note
    for p in reference.published:  # each row names what ganzoo runs it as
        assert p.variant in VARIANTS and p.pair_dataset in DATASETS, p
    if name == "kurach2019":
        assert not reference.published and "no Fashion-MNIST" in reference.published_note
