"""Protocol tables of the mode-collapse papers on the 2D mixtures (ganzoo.protocols): PacGAN's (Lin et
al. 2018) and VEEGAN's (Srivastava et al. 2017), each choice read from the code the authors released.

PacGAN's rows cite fjxmlzn/PacGAN@190853e, synthetic_data_experiments/2DRing_GAN&PacGAN/ (config.py,
pacgan_task.py, pacgan/bricks.py, pacgan/extensions.py; the grid's folder is the same). VEEGAN's cite
akashgit/VEEGAN@97f07b7: VEEGAN_2D_RING.ipynb (its only 2D code: VEEGAN itself, on the grid) and
index.md (the paper's page: five runs, 2,500 samples, five unrolled steps); its GAN and Unrolled GAN
rows have no code there, so theirs are VEEGAN's networks and optimiser, as the presets take them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganzoo.protocols.published import (
    HIGH_QUALITY,
    MODES,
    NO_SPREAD,
    REVERSE_KL,
    STANDARD_ERROR,
    published_table,
)
from ganzoo.protocols.tables import (
    Choice,
    Context,
    Reference,
    budget_text,
    number_text,
    register_reference,
)


def _noise(run: Mapping[str, Any]) -> str:
    return f"z ~ {'U(-1, 1)' if run.get('z_dist') == 'uniform' else 'N(0, 1)'} of {run['z_dim']} dimensions"


def _adam(run: Mapping[str, Any]) -> str:
    def one(adam: Mapping[str, Any]) -> str:
        return f"Adam lr {number_text(adam['lr'])}, beta1 {number_text(adam['beta1'])}, beta2 {number_text(adam['beta2'])}"

    g, d = one(run["g_adam"]), one(run["d_adam"])
    return g if g == d else f"G {g}; D {d}"


def _network(run: Mapping[str, Any]) -> str:
    """The architecture, with the mlp's G and D spelled out (its unset sizes the shared ones)."""
    p = run["arch_params"]
    if run["arch"] != "mlp":
        return run["arch"] + "".join(f" {k}={number_text(v)}" for k, v in sorted(p.items()))
    hidden, depth = p.get("hidden", 256), p.get("depth", 2)
    g = f"G {p.get('g_depth', depth)} x {p.get('g_hidden', hidden)} {p.get('g_activation', 'relu')}"
    d = f"D {p.get('d_depth', depth)} x {p.get('d_hidden', hidden)} {p.get('d_activation', 'leaky_relu')}"
    return f"mlp: {g}, {d}"


def _scored(c: Context) -> str:
    ev = c.settings.get("evaluation", {})
    rule = {"one-sample": "a mode covered by one high-quality sample",
            "one-percent": "a mode covered by 1% of the samples"}.get(ev.get("mode_rule", "one-sample"), "?")
    return f"{ev.get('n_samples', 0):,} samples; high quality within 3 std of the nearest mode; {rule}"


def _datasets(c: Context) -> str:
    return ", ".join(sorted({r["dataset"] for r in c.runs()}))


SCORED = "2,500 samples; high quality within 3 std of the nearest mode; a mode covered by one high-quality sample"
STATISTICS = "mean ± standard error over the seeds (the report's coverage table)"
ALTERNATING = ("compare_gan's order and ganzoo's default: D's update, then G's against the updated D; "
               "update_order=simultaneous runs the paper's (its ablation on table 1's GAN rows: results/README.md)")
# The update order a study's runs took, as the table shows it.
ORDERS = {"alternating": "D, then G", "simultaneous": "G and D at once (update_order=simultaneous)"}


def _order(c: Context) -> str:
    return c.values(lambda r: ORDERS[r.get("update_order", "alternating")])


# ---- PacGAN (Lin et al. 2018) ---------------------------------------------------------------------

# Lin et al. 2018, table 1 (fjxmlzn/PacGAN@f9282c7, synthetic_data_experiments/results/Table1.png): "averaged
# over 10 trials shown with the standard error"; 2,500 samples a run (config.py num_log_figure_sample). Its ALI
# row is not a GAN ganzoo has. Each value: table 1, its row and column, as printed.
PACGAN_TABLE_1 = published_table("Lin et al. 2018", "table 1", SCORED + "; reverse KL of the modes' distribution", 10,
                            STANDARD_ERROR, [
    ("GAN", "2D-ring", "pacgan-gan", "pacgan-ring", MODES, 6.3, 0.5),
    ("GAN", "2D-ring", "pacgan-gan", "pacgan-ring", HIGH_QUALITY, 98.2, 0.2),
    ("GAN", "2D-ring", "pacgan-gan", "pacgan-ring", REVERSE_KL, 0.45, 0.09),
    ("PacGAN2", "2D-ring", "pacgan2", "pacgan-ring", MODES, 7.9, 0.1),
    ("PacGAN2", "2D-ring", "pacgan2", "pacgan-ring", HIGH_QUALITY, 95.6, 2.0),
    ("PacGAN2", "2D-ring", "pacgan2", "pacgan-ring", REVERSE_KL, 0.07, 0.03),
    ("PacGAN3", "2D-ring", "pacgan3", "pacgan-ring", MODES, 7.8, 0.1),
    ("PacGAN3", "2D-ring", "pacgan3", "pacgan-ring", HIGH_QUALITY, 97.7, 0.3),
    ("PacGAN3", "2D-ring", "pacgan3", "pacgan-ring", REVERSE_KL, 0.10, 0.02),
    ("PacGAN4", "2D-ring", "pacgan4", "pacgan-ring", MODES, 7.8, 0.1),
    ("PacGAN4", "2D-ring", "pacgan4", "pacgan-ring", HIGH_QUALITY, 95.9, 1.4),
    ("PacGAN4", "2D-ring", "pacgan4", "pacgan-ring", REVERSE_KL, 0.07, 0.02),
    ("GAN", "2D-grid", "pacgan-gan", "grid25", MODES, 17.3, 0.8),
    ("GAN", "2D-grid", "pacgan-gan", "grid25", HIGH_QUALITY, 94.8, 0.7),
    ("GAN", "2D-grid", "pacgan-gan", "grid25", REVERSE_KL, 0.70, 0.07),
    ("PacGAN2", "2D-grid", "pacgan2", "grid25", MODES, 23.8, 0.7),
    ("PacGAN2", "2D-grid", "pacgan2", "grid25", HIGH_QUALITY, 91.3, 0.8),
    ("PacGAN2", "2D-grid", "pacgan2", "grid25", REVERSE_KL, 0.13, 0.04),
    ("PacGAN3", "2D-grid", "pacgan3", "grid25", MODES, 24.6, 0.4),
    ("PacGAN3", "2D-grid", "pacgan3", "grid25", HIGH_QUALITY, 94.2, 0.4),
    ("PacGAN3", "2D-grid", "pacgan3", "grid25", REVERSE_KL, 0.06, 0.02),
    ("PacGAN4", "2D-grid", "pacgan4", "grid25", MODES, 24.8, 0.2),
    ("PacGAN4", "2D-grid", "pacgan4", "grid25", HIGH_QUALITY, 93.6, 0.6),
    ("PacGAN4", "2D-grid", "pacgan4", "grid25", REVERSE_KL, 0.04, 0.01),
])

_PG = "synthetic_data_experiments/2DRing_GAN&PacGAN/"
PACGAN2018 = register_reference("pacgan2018", Reference(
    "Lin et al. 2018, PacGAN: The power of two samples in generative adversarial networks (2D mixtures)",
    f"fjxmlzn/PacGAN@190853e, {_PG}", [
        Choice("rows", "GAN, PacGAN2, PacGAN3, PacGAN4: D on packs of 1 to 4 samples concatenated (pacgan/bricks.py:46-48, "
               "63-67; config.py:46 num_packing)", lambda c: c.values(lambda r: f"pack {r.get('pack', 1)}"),
               "pack 1 / pack 2 / pack 3 / pack 4", moves=False),
        Choice("loss", "non-saturating: D softplus(-D(x)) + softplus(D(G(z))), G softplus(-D(G(z))) (pacgan/bricks.py:69-72)",
               lambda c: c.values(lambda r: r["loss"]), "ns"),
        Choice("networks", "G: 4 bias-free linear layers of 400 with batch norm and ReLU; D: 3 maxout layers of 200 "
               "units, 5 pieces (pacgan_task.py:43-95)", lambda c: c.values(_network), "pacgan"),
        Choice("initialisation", "weights N(0, 0.02), biases 0 (config.py:21-22)",
               lambda c: c.values(lambda r: r.get("init", "default")), "default",
               "the pacgan architecture's own is PacGAN's"),
        Choice("batch norm's running statistic", "a running standard deviation, 0.95 old + 0.05 batch "
               "(pacgan_task.py:123-149)", lambda c: "a running variance, momentum 0.05", None,
               "torch's BatchNorm; it enters only G's samples at evaluation"),
        Choice("noise", "z ~ N(0, I_2) (config.py:33-36)", lambda c: c.values(_noise), "z ~ N(0, 1) of 2 dimensions"),
        Choice("optimiser", "Adam lr 1e-4, beta1 0.8, Blocks' beta2 0.999, for G and D (config.py:23-24)",
               lambda c: c.values(_adam), "Adam lr 0.0001, beta1 0.8, beta2 0.999"),
        Choice("batch", "100 packs (config.py:25)", lambda c: str(c.settings["batch_size"]), "100"),
        Choice("budget", "400 epochs of 100,000 points at batch 100: 1,000 iterations an epoch (config.py:15, 30)",
               budget_text, "400,000 G updates (400 epochs of 100,000 images at batch 100)"),
        Choice("update order", "G and D updated at once from one graph (ALI's ali_algorithm, pacgan_task.py)",
               _order, None, ALTERNATING, undone=ORDERS["simultaneous"], may_move=True),
        Choice("data", "the ring: 8 modes, radius 1, std 0.01 (config.py:6-7); the 5x5 grid, spacing 2, std 0.05 "
               "(the grid's folder)", _datasets, "grid25, pacgan-ring"),
        Choice("runs", "10 a row (config.py:44-49)", lambda c: str(c.settings["seeds"]), "10", moves=False),
        Choice("scoring", "2,500 samples (config.py:32); modes with a high-quality sample, the high-quality share and "
               "the modes' distribution's KL from the uniform (pacgan/extensions.py:115-175)", _scored, SCORED),
        Choice("statistics", "mean and standard error over the runs (the paper's table)", lambda c: STATISTICS,
               STATISTICS, moves=False),
    ], published=PACGAN_TABLE_1))


# ---- VEEGAN (Srivastava et al. 2017) ----------------------------------------------------------------

# Srivastava et al. 2017, table 1 (akashgit/VEEGAN@20ad340 tab.png, the paper's table as its page shows it):
# no spread printed; "2500 samples from each model ... average the numbers over five runs" (index.md). Its ALI
# and VEEGAN rows are not GANs ganzoo has. Each value: table 1, its row and column, as printed.
VEEGAN_TABLE_1 = published_table("Srivastava et al. 2017", "table 1", SCORED, 5, NO_SPREAD, [
    ("GAN", "2D Ring", "veegan-gan", "ring8", MODES, 1, None),
    ("GAN", "2D Ring", "veegan-gan", "ring8", HIGH_QUALITY, 99.3, None),
    ("GAN", "2D Grid", "veegan-gan", "grid25", MODES, 3.3, None),
    ("GAN", "2D Grid", "veegan-gan", "grid25", HIGH_QUALITY, 0.5, None),
    ("Unrolled GAN", "2D Ring", "veegan-unrolled", "ring8", MODES, 7.6, None),
    ("Unrolled GAN", "2D Ring", "veegan-unrolled", "ring8", HIGH_QUALITY, 35.6, None),
    ("Unrolled GAN", "2D Grid", "veegan-unrolled", "grid25", MODES, 23.6, None),
    ("Unrolled GAN", "2D Grid", "veegan-unrolled", "grid25", HIGH_QUALITY, 16, None),
])

VEEGAN2017 = register_reference("veegan2017", Reference(
    "Srivastava et al. 2017, VEEGAN (2D mixtures, table 1: its GAN and Unrolled GAN rows)",
    "akashgit/VEEGAN@97f07b7, VEEGAN_2D_RING.ipynb and index.md", [
        Choice("rows", "GAN and Unrolled GAN with five unrolling steps (index.md)",
               lambda c: c.values(lambda r: f"unroll {r.get('unroll', 0)}"), "unroll 0 / unroll 5", moves=False),
        Choice("rows not run", "ALI and VEEGAN (table 1)", lambda c: "not in ganzoo", None,
               "they add an encoder (ALI) or a reconstructor network (VEEGAN) to the GAN: models of their own",
               moves=False),
        Choice("loss", "the minimax game the paper writes (index.md, O_gan); no code for the GAN rows",
               lambda c: c.values(lambda r: r["loss"]), "minimax"),
        Choice("networks", "noise to points: 2 hidden layers of 128 ReLU units, linear output (cell 10); D: 1 hidden "
               "layer of 128 ReLU units (cell 11)", lambda c: c.values(_network), "mlp: G 2 x 128 relu, D 1 x 128 relu"),
        Choice("D's input", "(z, x) pairs, VEEGAN's own D (cell 11 data_network)", lambda c: "x alone", None,
               "a GAN's D judges samples; the GAN rows take VEEGAN's D's width and depth"),
        Choice("initialisation", "slim's default: Glorot uniform, biases 0 (cells 9-11)",
               lambda c: c.values(lambda r: r.get("init", "default")), "xavier"),
        Choice("noise", "254 + 1 standard-normal inputs (cells 4, 10)", lambda c: c.values(_noise),
               "z ~ N(0, 1) of 255 dimensions"),
        Choice("optimiser", "one Adam, lr 1e-3, beta1 0.5, TensorFlow's beta2 0.999 (cell 19)",
               lambda c: c.values(_adam), "Adam lr 0.001, beta1 0.5, beta2 0.999"),
        Choice("Adam's bias correction", "one AdamOptimizer minimises both losses (cells 19-20): TensorFlow 1 keeps "
               "its beta powers per optimiser, and both train ops advance them, two steps an iteration",
               lambda c: "each network's Adam counts its own steps", None,
               "torch's Adam per network; the two differ only while 0.999^t is far from 0, the first few thousand "
               "of 100,000 iterations"),
        Choice("batch", "500 (cell 4)", lambda c: str(c.settings["batch_size"]), "500"),
        Choice("budget", "100 epochs of 1,000 iterations (cell 23)", budget_text, "100,000 G updates at batch 500"),
        Choice("update order", "G and D updated in one session run (cell 23)", _order, None, ALTERNATING,
               undone=ORDERS["simultaneous"], may_move=True),
        Choice("unrolling", "5 steps (index.md), as Unrolled GAN's demo replays D's Adam on the step's batch from "
               "before D's update, the first unrolled update being D's own (poolio/unrolled_gan@67e2c7a)", lambda c: c.values(lambda r: str(r["unroll"]), lambda r: r.get("unroll", 0) > 0),
               "5"),
        Choice("data", "the ring of 8 (index.md; its notebook samples the 5x5 grid: spacing 2, std 0.05, cell 6)",
               _datasets, "grid25, ring8",
               "the ring is ring8 (radius 2, std 0.02, Metz et al.'s paper's): the repository has no ring code and "
               "the paper page no geometry"),
        Choice("runs", "five (index.md)", lambda c: str(c.settings["seeds"]), "5", moves=False),
        Choice("scoring", "2,500 samples (cell 24); a mode covered by one high-quality sample within 3 std (cell 26, "
               "index.md)", _scored, SCORED),
        Choice("statistics", "the mean over the runs (index.md)", lambda c: STATISTICS, STATISTICS,
               "the standard error is ganzoo's addition", moves=False),
    ], published=VEEGAN_TABLE_1))
