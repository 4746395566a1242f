"""Names and defaults that light modules need without importing TensorFlow.

`keras-avae --help` (keras_avae/cli.py) and the scale presets
(keras_avae/experiments/scale.py) show these values; their homes, the modules
that use them, import TensorFlow. Each is stated here once more, and
tests/test_constants.py checks that it equals its home's constant.
"""

MODEL_NAMES = ("vae", "avae", "se", "seavae", "avae_ss")
"""`keras_avae.experiments.registry.MODEL_NAMES`."""

RHO = 0.975
"""`registry.RHO` (Table 1 caption)."""

RHO_SE = 0.95
"""`registry.RHO_SE` (Table 1 caption)."""

SE_EPSILON = 0.1
"""`registry.SE_EPSILON`."""

CHOICE_VALUES = {
    "posterior_sampling": ("std", "variance"),
    "coupling": ("factorised", "joint"),
    "delusion": ("mean", "sample"),
    "extra_pass_statistics": ("update", "keep"),
    "attack_mode": ("inference", "training"),
}
"""`registry.CHOICE_VALUES`: the paper's open choices and their values."""

EPSILONS = (0.0, 0.1, 0.2)
"""`keras_avae.evaluation.robustness.DEFAULT_EPSILONS` (Table 1's radii)."""

DEFAULT_LOSSES = ("cross_entropy", "margin")
"""`keras_avae.evaluation.robustness.DEFAULT_LOSSES`."""

COLOR_MNIST_RANGE = (0.0, 1.0)
"""`keras_avae.experiments.color_mnist.COLOR_MNIST_RANGE`: the pixel range of ColorMNIST images."""

ATTACKS = ("pgd", "apgd_ce", "apgd_dlr_targeted", "square")
"""`keras_avae.evaluation.engine.ATTACKS`."""

ENSEMBLES = {"standard": ATTACKS, "pgd": ("pgd",)}
"""`engine.ENSEMBLES`."""

PGD_LOSSES = ("cross_entropy", "margin", "targeted_margin")
"""The names of `engine.PGD_LOSSES`."""

DEFAULT_SQUARE_QUERIES = 1000
"""`engine.DEFAULT_SQUARE_QUERIES`."""

DEFAULT_CHECK_SIZE = 100
"""`keras_avae.evaluation.robustness.DEFAULT_CHECK_SIZE`."""

ARCHITECTURES = ("mlp", "conv")
"""The names of `keras_avae.experiments.color_mnist.ARCHITECTURES`."""

DTYPE_POLICIES = ("float32", "mixed_bfloat16")
"""`keras_avae.architectures.DTYPE_POLICIES`: the networks' dtype policies a run offers."""

# The defaults below have no heavier home: `keras_avae.experiments.settings` declares the settings with them.

EVALUATE_DEFAULTS = {
    "train_size": 10000,
    "test_size": 2000,
    "attack_steps": 40,
    "restarts": 10,
    "batch_size": 256,
    "square_queries": DEFAULT_SQUARE_QUERIES,
    "check_size": DEFAULT_CHECK_SIZE,
    "fid_samples": 2000,
    "extractor_epochs": 3,
}
"""The defaults of `settings.EvaluateSettings`' sizes (the attack's equal `robustness.DEFAULT_*`)."""

TABLE1_ROW_LABELS = ("VAE", "SE_0.1", "SE_0.2", "AVAE", "SE_0.1-AVAE", "SE_0.2-AVAE", "AVAE-SS")
"""`keras_avae.experiments.table1.ROW_LABELS`."""

ABLATION_ROW_LABELS = (
    "VAE",
    "AVAE (Alg. 1)",
    "AVAE posterior=variance",
    "AVAE coupling=joint",
    "AVAE delusion=sample",
    "AVAE statistics=keep",
    "AVAE-SS (Alg. 4)",
    "AVAE-SS coupling=joint",
    "AVAE-SS coupling=joint delusion=sample",
    "SE_0.1",
    "SE_0.1 attack=training",
    "SE_0.1 statistics=keep",
)
"""`keras_avae.experiments.ablation.ROW_LABELS`."""

ABLATION_EPSILONS = (0.0, 0.05, 0.1, 0.2)
"""The ablation study's radii (`settings.AblationSettings`): Table 1's, and 0.05, where a weaker
robustness still shows."""

ABLATION_FID = False
"""Whether the ablation study computes FID by default (`settings.AblationSettings`): no, it is
about the encoder."""

DEFAULT_RHOS = (0.5, 0.8, 0.9, 0.95, 0.975, 0.99)
"""The rho sweep's coupling strengths (`settings.RhoSweepSettings`; the paper does not list
Figure 5's; 0.975 is Table 1's)."""

CELEBA_ROW_LABELS = ("VAE", "AVAE", "SE^5", "SE^20", "SE^5-AVAE", "AVAE-SS")
"""`keras_avae.experiments.celeba.ROW_LABELS`."""

CELEBA_ATTRIBUTES = (
    "Bald", "Mustache", "Eyeglasses", "Necklace", "Smiling", "Lipstick", "Bangs", "Black Hair", "Blond Hair",
    "Brown Hair", "Gender", "Beard", "Straight Hair", "Wavy Hair", "Earrings", "Hat", "Necktie",
)
"""`keras_avae.datasets.celeba.CELEBA_ATTRIBUTES` (Table 3's tasks)."""

CELEBA_EPSILONS = (0.0, 0.1)
"""`keras_avae.experiments.celeba.EPSILONS`."""

LEARNING_CURVE_EPOCHS = (5, 10, 20, 50, 100)
"""The epochs whose checkpoints `keras-avae reproduce learning-curve` evaluates by default (the issue's
5, 10, 20, 50 and 100 epochs; the paper's Figure 5, middle, does not list its points)."""

LEARNING_CURVE_ATTACK_STEPS = 20
LEARNING_CURVE_RESTARTS = 1
"""The learning curve's lighter attack on its checkpoints: PGD 20 steps x 1 start per loss (the last
checkpoint is also evaluated with the full protocol)."""

CURVE_COMPARISON_EPSILONS = (0.1,)
"""The radius of the paper's Figure 5 (middle), where `keras-avae reproduce compare-curves` compares
models by default."""

DISTRIBUTE_STRATEGIES = ("none", "mirrored", "multi-worker")
"""`keras_avae.distribute.STRATEGIES`: the values of `--distribute`."""

CLUSTERS = ("tf-config", "slurm")
"""`keras_avae.distribute.CLUSTERS`: how a multi-worker job finds its workers (`--cluster`)."""
