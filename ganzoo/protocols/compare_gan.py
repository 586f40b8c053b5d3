"""The protocols of Lucic et al. 2018 and Kurach et al. 2019 as tables (ganzoo.protocols.tables): each
choice beside google/compare_gan's code.

A preset that follows a paper names it (``reference = "lucic2018"``); its table lists each choice of
the protocol, ganzoo's value as this sweep resolves it (from its settings and each pair's stored
record: search space, run settings, budget), the reference's value and the file it is read from,
and a status: as the reference, a deviation ganzoo makes on purpose (and why), or a difference
(the sweep's settings moved away from the reference). ``ganzoo sweep --dry-run`` prints it and every
report carries it, both from what a study stores, never from the trainer.

The Lucic et al. 2018 rows cite google/compare_gan@49495fd (compare_gan/src/..., the code released
with the paper); the Kurach et al. 2019 rows cite the same repository at 51029dc, which holds that
study's code (gans/gans_with_penalty.py, generate_tasks_lib.py).
"""


from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ganzoo.protocols.published import FID, STD, published_table
from ganzoo.protocols.summary import (
    evaluation_text,
    scoring_text,
    search_text,
    space_text,
)
from ganzoo.protocols.tables import (
    Choice,
    Reference,
    budget_text,
    register_reference,
)


def _loss(run: Mapping[str, Any]) -> str:
    """A run's loss in compare_gan's names where it is one of them."""
    loss, penalty, clip = run["loss"], run.get("penalty", "none"), run.get("d_weight_clip", 0.0)
    names = {("minimax", "none"): "GAN_MINMAX", ("ns", "none"): "GAN", ("ls", "none"): "LSGAN",
             ("wasserstein", "gp"): "WGAN_GP", ("ns", "dragan"): "DRAGAN", ("began", "none"): "BEGAN"}
    if loss == "wasserstein" and penalty == "none" and clip > 0:
        return "WGAN"
    return names.get((loss, penalty), f"{loss}+{penalty}")


def _penalty(run: Mapping[str, Any], key: str, default: Any) -> Any:
    return run.get("penalty_params", {}).get(key, default)


def _with(loss: str, penalty: str = "none") -> Callable[[Mapping[str, Any]], bool]:
    return lambda run: run["loss"] == loss and run.get("penalty", "none") == penalty


# ---- Lucic et al. 2018 -----------------------------------------------------------------------------

_CG = "compare_gan@49495fd"
# Lucic et al. 2018, the Fashion-MNIST column of its table of each loss's best FID ("the optimal FID obtained
# across a large-scale hyperparameter search"), as Dai & Wipf 2019 (table 2) and Zhang & Khoreva 2019 (PA-GAN)
# copy it; the paper's own page could not be read here, so the table's number is theirs to check. The spread:
# compare_gan's phase 3 runs the best of 100 wide-range trials on 50 seeds (generate_tasks_lib.py:175-199,
# num_repeat=50), so a std over 50 runs; the paper's wording of it is not checked. Its VAE row is not a GAN.
LUCIC_FASHION_MNIST = published_table(
    "Lucic et al. 2018", "the best-FID table, Fashion-MNIST column",
    "FID of the 2015 Inception's pool_3, 10,000 samples against the 10,000 test images; the best configuration "
    "of 100 wide-range trials", 50, STD, [
        ("MM GAN", "Fashion-MNIST", "vanilla", "fashion-mnist", FID, 29.6, 1.6),
        ("NS GAN", "Fashion-MNIST", "nsgan", "fashion-mnist", FID, 26.5, 1.6),
        ("LSGAN", "Fashion-MNIST", "lsgan", "fashion-mnist", FID, 30.7, 2.2),
        ("WGAN", "Fashion-MNIST", "wgan", "fashion-mnist", FID, 21.5, 1.6),
        ("WGAN GP", "Fashion-MNIST", "wgan-gp", "fashion-mnist", FID, 24.5, 2.1),
        ("DRAGAN", "Fashion-MNIST", "dragan", "fashion-mnist", FID, 27.7, 1.2),
        ("BEGAN", "Fashion-MNIST", "began", "fashion-mnist", FID, 22.9, 0.9),  # Dai & Wipf's copy alone
    ])

LUCIC2018 = register_reference("lucic2018", Reference(
    "Lucic et al. 2018, Are GANs Created Equal?", f"google/{_CG}, compare_gan/src/", [
        Choice("losses", "GAN, GAN_MINMAX, LSGAN, WGAN, WGAN_GP, DRAGAN, BEGAN (gan_lib.py:34-43 MODELS; its VAE is not a GAN)",
               lambda c: ", ".join(sorted({_loss(r) for r in c.runs()})),
               "BEGAN, DRAGAN, GAN, GAN_MINMAX, LSGAN, WGAN, WGAN_GP", moves=False),
        Choice("network", "the InfoGAN-style D and G of gans/abstract_gan.py:67-116 (BEGAN: the autoencoder D of "
               "gans/BEGAN.py:46-96)", lambda c: c.values(lambda r: r["arch"]), "infogan"),
        Choice("image range", "[0, 1] (gan_lib.py:77, / 255.0), G ends in a sigmoid (abstract_gan.py:115)",
               lambda c: "[-1, 1], G ends in tanh", None,
               "ganzoo's one data layer serves [-1, 1] to every variant: the same model class, as sigmoid(a) = "
               "(tanh(a / 2) + 1) / 2, but in compare_gan's coordinates G's last layer starts twice as large, D's "
               "first layer is twice as sensitive to the image, and WGAN's clip bounds D's first layer at 2c; the "
               "penalties measure slopes in compare_gan's unit (below)"),
        Choice("noise", "z ~ U(-1, 1) of 64 dimensions (abstract_gan.py:195-196 z_generator; gan_lib.py:167 z_dim)",
               lambda c: c.values(lambda r: f"z ~ {'U(-1, 1)' if r.get('z_dist') == 'uniform' else 'N(0, 1)'} of {r['z_dim']} dimensions"),
               "z ~ U(-1, 1) of 64 dimensions"),
        Choice("initialisation", "linear and transposed-convolution weights N(0, 0.02), convolution weights N(0, 0.02) "
               "truncated at 2 std, biases 0 (gans/ops.py:41-92 linear, conv2d, deconv2d)",
               lambda c: c.values(lambda r: r.get("init", "default")), "compare_gan"),
        Choice("batch norm", "eps 0.001, decay 0.999 = momentum 0.001, in G always, in D as searched (gans/ops.py:58-67)",
               lambda c: c.values(lambda r: f"eps {r.get('batchnorm_eps')}, momentum {r.get('batchnorm_momentum')}"),
               "eps 0.001, momentum 0.001"),
        Choice("batch norm's running variance", "TensorFlow keeps the batch's biased variance",
               lambda c: "torch keeps the unbiased one", None,
               "torch's BatchNorm; it enters only G's eval-mode samples, by n/(n-1) (64/63 in G's dense layers at batch 64)"),
        Choice("G's batch-norm moving averages", "moved at every training-mode forward of G: the D step's and again the "
               "G step's (updates_collections=None, gans/ops.py:61-67; abstract_gan.py:201-215), and BEGAN's k step",
               lambda c: "moved once a D update (G's update reuses the last D update's fakes)", None,
               "one G forward fewer a step; at n_critic 1 the averages G samples with at evaluation then reach back "
               "about 1,000 steps where compare_gan's reach back about 500 (its second move repeats the same "
               "batch's statistics: decay 0.999 twice)"),
        Choice("batch size", "64 (gan_lib.py:165-168 create_gan)", lambda c: str(c.settings["batch_size"]), "64"),
        Choice("budget", "15,625 D updates: 20 epochs of 50,000 images at batch 64 (the Fashion-MNIST split it reads "
               "has 60,000), G updated every disc_iters (generate_tasks_lib.py:141-145 TuneParams; gans/"
               "abstract_gan.py:198-215 run_single_train_step)",
               budget_text, "15,625 D updates (20 epochs of 50,000 images at batch 64)"),
        Choice("G's first update", "G also updated after the first D update: 3,126 G updates at disc_iters 5 "
               "(gans/abstract_gan.py:207: `if (counter - 1) % self.disc_iters == 0 or g_loss is None`)",
               lambda c: "G after every n_critic D updates: 3,125 at n_critic 5", None,
               "one step is n_critic D updates and one G update, the unit a population and a CUDA graph replay"),
        Choice("data stream", "the training split repeated and shuffled through a 10,000-image buffer, the shuffle "
               "seeded by 547 and the task's tf_seed (gan_lib.py:200-204, 222-225): one order for the whole search "
               "(tf_seed 0), another for each phase-3 seed",
               lambda c: "a permutation of the split per epoch, from the run's seed (0 in every search trial, the "
               "repeat's seeds their own), the last partial batch dropped", None,
               "batches are drawn by index from the data on the device (no input pipeline in the step); the orders "
               "are shared and varied where compare_gan's are"),
        Choice("optimiser", "Adam(learning_rate, beta1) for G and D alike, beta2 TensorFlow's 0.999 (gans/GAN.py:90-95 "
               "and each loss's)",
               lambda c: c.values(lambda r: "Adam, G and D alike, beta2 " + str(r["g_adam"]["beta2"])
                                  if r["g_adam"] == r["d_adam"] else "Adam, G and D apart"),
               "Adam, G and D alike, beta2 0.999"),
        Choice("Adam's epsilon", "TensorFlow adds 1e-8 to sqrt(v) of the uncorrected moments (epsilon hat)",
               lambda c: "torch adds 1e-8 to sqrt(v_hat)", None,
               "torch's Adam; in torch's terms TensorFlow's epsilon is 1e-8 / sqrt(1 - beta2^t): 32x larger at the "
               "first step, within 1% of it after 5,000"),
        Choice("arithmetic", "strict float32 (TensorFlow 1, before TF32)",
               lambda c: c.values(lambda r: "TF32 on CUDA" if r.get("fast", {}).get("tf32", "auto") != "off"
                                  else "strict float32"), None,
               "ganzoo's speed default on CUDA (fast.tf32); set fast.tf32 = \"off\" for strict float32. Its effect on "
               "FID over seeds is not measured yet"),
        Choice("LS loss", "on D's sigmoid probabilities (gans/LSGAN.py:62-71: tf.square(D_real - 1.0), D_real = sigmoid)",
               lambda c: c.values(lambda r: "on " + r["loss_params"].get("on", "logits"), _with("ls")),
               "on probabilities"),
        Choice("DRAGAN penalty", "the gradient of D's sigmoid output w.r.t. [0, 1] images at x + a * 0.5 std(x) U[0, 1), "
               "slopes sqrt(1e-4 + |g|^2) (gans/DRAGAN.py:45-46, 86-96)",
               lambda c: c.values(lambda r: f"gradient of {_penalty(r, 'on', 'logits')} x {_penalty(r, 'gradient_scale', 1.0)}, "
                                  f"slope eps {_penalty(r, 'slope_eps', 0.0)}", _with("ns", "dragan")),
               "gradient of probabilities x 2.0, slope eps 0.0001"),
        Choice("WGAN-GP penalty", "slopes sqrt(1e-4 + |g|^2) of D's logits w.r.t. [0, 1] images between data and "
               "samples (gans/WGAN_GP.py:73-83)",
               lambda c: c.values(lambda r: f"gradient x {_penalty(r, 'gradient_scale', 1.0)}, slope eps "
                                  f"{_penalty(r, 'slope_eps', 0.0)}", _with("wasserstein", "gp")),
               "gradient x 2.0, slope eps 0.0001"),
        Choice("WGAN-GP's G update", "fresh z for G's update (gans/WGAN_GP.py:111-112 resample_before_generator)",
               lambda c: "the last critic step's z", None,
               "ganzoo's step reuses the last critic step's z for G for every loss, as compare_gan does for the other six"),
        Choice("WGAN's clip", "grouped with Adam's update, unordered (gans/WGAN.py:94-97 tf.group)",
               lambda c: "after each D update", None, "the clip bounds the weights D's next update starts from"),
        Choice("BEGAN's k", "k += lambda (gamma L(x) - L(G(z))) after each step, unclipped (gans/BEGAN.py:130-131, 162-169)",
               lambda c: c.values(lambda r: "clipped to [0, 1]" if r["loss_params"].get("clip_k", True) else "unclipped",
                                  _with("began")), "unclipped",
               "except when k moves: ganzoo moves it after each D update with that update's outputs, compare_gan "
               "after each step with a second forward"),
        Choice("BEGAN's reconstruction error", "mean |D(x) - x| on [0, 1] images (gans/BEGAN.py:95)",
               lambda c: "mean |D(x) - x| / 2 on [-1, 1] images", None,
               "the same error on the [0, 1] scale, so that lambda's range means what it meant there"),
        Choice("search", "random search, the default configuration first, 100 trials of the wide ranges, 1 seed each "
               "(generate_tasks_lib.py:115-124 TuneParams, 231-233 phase1_*_sample100_rep1)",
               search_text, "random search over the wide ranges, 100 trials, 1 seed each; the default configuration first"),
        Choice("searched", "learning_rate, beta1, disc_iters, discriminator_batchnorm, and each loss's own: weight_clipping, "
               "lambda, gamma (src/params.py:63-238)", space_text,
               "adam.beta1, adam.lr, arch.d_batchnorm, d_weight_clip, loss.gamma, loss.lambda_k, n_critic, penalty.weight"),
        Choice("evaluation", "FID of the 2015-12-05 Inception's pool_3 (TF-GAN's frozen_inception_v1_2015_12_05), 10,000 "
               "float samples against the 10,000 test images (eval_gan_lib.py:33, 130-196; fid_score.py:157-164), G "
               "with batch norm's moving averages (is_training=False)",
               evaluation_text, "FID by inception features, 10,000 samples against all of the test split",
               "except that ganzoo rounds samples to uint8 before the network, as torch-fidelity and the TTUR FID code "
               "take images, and runs torch-fidelity's port of that network (not checked bit for bit against TF-GAN's)"),
        Choice("scoring", "every checkpoint, 5 epochs = 3,906 D updates apart, and the last; each run's best "
               "(generate_tasks_lib.py:145 save_checkpoint_steps; eval_gan_lib.py:210-262 RunTaskEval; "
               "generate_tasks_lib.py:152-163 BestFIDPerModel)",
               scoring_text, "FID every 3,906 D updates and at the end; each run's best FID",
               "to within a D update: compare_gan's checkpoints follow 3,907, 7,813, 11,719 and 15,625 updates "
               "(abstract_gan.py:166-169, after the step), ganzoo evaluates after 3,906, 7,812, 11,718, 15,624 and "
               "15,625 (at n_critic 5: 3,905 ... 15,620 and 15,625)"),
        Choice("repeat", "the best configuration of the search on 50 seeds (generate_tasks_lib.py:175-199 Phase3Auto, "
               "263-269 num_repeat=50)",
               lambda c: f"{c.settings.get('repeat_seeds', 0)} seeds", "50 seeds",
               "ganzoo's seeds are new (the search's were 0..K-1); compare_gan's tf_seed 0..49 include the "
               "one the search selected on. How the paper aggregated them is not in the code: ganzoo gives mean, std "
               "and a 95% interval"),
        Choice("G's moving average", "none", lambda c: c.values(
            lambda r: "off" if not r.get("g_ema_decay") else f"decay {r['g_ema_decay']}"), "off"),
    ], published=LUCIC_FASHION_MNIST))


# ---- Kurach et al. 2019 ----------------------------------------------------------------------------

KURACH2019 = register_reference("kurach2019", Reference(
    "Kurach et al. 2019, A Large-Scale Study on Regularization and Normalization in GANs",
    "google/compare_gan@51029dc, compare_gan/src/", [
        Choice("network", "SNDCGAN (Miyato et al. 2018) and a ResNet; the batch and layer norms only on DCGAN and the "
               "ResNet (consts.py:41-50; gans/gans_with_penalty.py:115-117; generate_tasks_lib.py:164-422)",
               lambda c: c.values(lambda r: r["arch"]), None,
               "ganzoo has no SNDCGAN yet: the preset uses Radford et al.'s DCGAN, sized from the data, under all "
               "four normalisations"),
        Choice("datasets", "CIFAR-10, CelebA-HQ 128, LSUN-Bedroom (generate_tasks_lib.py)",
               lambda c: ", ".join(sorted({r["dataset"] for r in c.runs()})), None,
               "Kurach et al. did not use Fashion-MNIST; it is the dataset every machine here has (CIFAR-10 joins where present)"),
        Choice("losses", "NS, LS and WGAN (gans/gans_with_penalty.py:358-378 GAN_PENALTY, LSGAN_PENALTY, WGAN_PENALTY)",
               lambda c: ", ".join(sorted({r["loss"] for r in c.runs()})), None,
               "the hinge loss in place of WGAN's, as SN-GANs train (Miyato et al. 2018)"),
        Choice("LS loss", "on D's sigmoid probabilities (gans/gans_with_penalty.py:374-378: tf.square(d_real - 1.0))",
               lambda c: c.values(lambda r: "on " + r["loss_params"].get("on", "logits"), _with("ls")),
               "on probabilities"),
        Choice("normalisation of D", "none, batch norm, layer norm, spectral norm (and weight norm) (consts.py:27-33 NORMALIZERS)",
               lambda c: ", ".join(c.settings.get("conditions") or ["(none)"]), "none, bn, ln, sn",
               "weight norm is left out"),
        Choice("noise", "z ~ U(-1, 1) of 128 dimensions (abstract_gan.py:263-265 z_generator; generate_tasks_lib.py:151)",
               lambda c: c.values(lambda r: f"z ~ {'U(-1, 1)' if r.get('z_dist') == 'uniform' else 'N(0, 1)'} of "
                                  f"{r['z_dim']} dimensions"), "z ~ U(-1, 1) of 128 dimensions"),
        Choice("searched", "learning_rate, beta1, beta2 [0, 1], disc_iters, with the normalisation, the penalty and "
               "lambda, which the grid's cells fix (params.py:258-296 GANPENALTYHyperParams; 51029dc ships no tuning "
               "experiment of its own, so the range definition is the source)",
               space_text, "adam.beta1, adam.beta2, adam.lr, n_critic"),
        Choice("default trial", "GAN_PENALTY's defaults beta1 0.0, lr 5e-5, 1 critic step; LSGAN_PENALTY the generic "
               "beta1 0.5, lr 1e-4 (params.py:280-289: LSGAN_PENALTY passes)",
               lambda c: "the Lucic et al. losses' defaults (lsgan: lr 2e-4) and the hinge variant's own", None,
               "the variants' spaces are Lucic et al.'s; only the LS loss's learning rate differs"),
        Choice("budget", "100,000 to 200,000 D updates at batch 64 (generate_tasks_lib.py, e.g. BestModelSNDCGan)",
               budget_text, None, "20 epochs of Fashion-MNIST: a grid a GPU finishes in hours"),
        Choice("evaluation", "FID, 10,000 samples (eval_gan_lib.py)", evaluation_text,
               "FID by inception features, 10,000 samples against all of the test split"),
    ], published_note="Kurach et al. 2019 report no Fashion-MNIST numbers (their studies are on "
       "CIFAR-10, CelebA-HQ-128 and LSUN-Bedroom: compare_gan's v2 generate_tasks_lib.py and its TF-Hub colab), so "
       "this preset has no published row to set beside its own."))


