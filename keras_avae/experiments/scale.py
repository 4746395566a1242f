"""Presets of an experiment's size: `tiny` (tests), `small` and `medium` (two CPU cores), `paper` (Appendix F).

A `Scale` fixes every number that decides how long an experiment runs: how
many images it trains and tests on, for how many epochs, the PGD budgets in
training and evaluation, and the FID sample size. Each command has its own
presets, because one model and a table of fourteen models have different
budgets; any field can be overridden by its command-line flag.

What the paper states (Appendix F and the Table 1 caption) and what is our
choice:

- `paper`: Adam with learning rate 1e-4; on ColorMNIST, PGD with 20 steps and
  no restarts in training, 40 steps and 10 restarts in evaluation, the full
  60,000 / 10,000 images; on CelebA, 5 training steps (20 for SE^20), 20
  evaluation steps and 10 restarts. The paper states neither the number of
  epochs nor the batch size: 100 epochs (ColorMNIST) and 20 (CelebA), batch
  64, are our choices, as are the FID sample sizes.
- `small`: our budget for a quick look on two CPU cores (10,000 training images).
- `medium`: all 60,000 training images for a budget that two CPU cores train
  the default conv AVAE in within about half an hour (the epochs were sized by
  timing it; the measured times are on the documentation's speed page), Adam
  1e-3 (`MEDIUM_LEARNING_RATE`), and the paper's evaluation protocol on 1,000
  test images.
- `tiny`: a few dozen images and single steps, for tests; numbers mean nothing.

Each preset is a `Scale`, a `Budget` with a name and a description; its
fields are checked like every setting (`keras_avae.experiments.fields`).

Example:
    scale = TABLE1_SCALES["small"]
    scale.epochs_for("conv")        # 3
    budget = Budget(epochs=5).filled(scale, "mlp")   # epochs 5, the rest from the preset
"""

import dataclasses
import math

from keras_avae import constants  # light: no TensorFlow
from keras_avae.experiments.fields import EPOCHS, POSITIVE, POSITIVE_INT, Settings, like, setting

BUDGET_GROUP = "sizes and budgets (each defaults to its --scale preset)"
"""The `--help` section of the budget's flags."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Budget(Settings):
    """The sizes and budgets that decide how long an experiment runs.

    In a run's settings (`settings.RunConfig`) a field left None is taken from
    the command's `--scale` preset (`filled`); in a preset (`Scale`) None
    means "all" for a size and "each row's own" for `train_attack_steps`.
    """

    train_size: int | None = setting(None, "training images, the first ones of the split", POSITIVE_INT, group=BUDGET_GROUP)
    test_size: int | None = setting(
        None, "test images for the reconstruction MSE, the clean probe accuracy and the real side of FID",
        POSITIVE_INT, group=BUDGET_GROUP,
    )
    attack_size: int | None = setting(
        None, "test images attacked (the first ones of the test images)", POSITIVE_INT, group=BUDGET_GROUP
    )
    epochs: int | dict | None = setting(
        None, "training epochs (AVAE-SS: epochs of as many steps as one pass over the training images)",
        EPOCHS, group=BUDGET_GROUP,
    )
    batch_size: int | None = setting(None, "images per training step", POSITIVE_INT, group=BUDGET_GROUP)
    learning_rate: float | None = setting(
        None, "Adam's learning rate (Appendix F: 1e-4)", dataclasses.replace(POSITIVE, metavar="LR"), group=BUDGET_GROUP
    )
    train_attack_steps: int | None = setting(
        None, "PGD steps per training step of SE and SE-AVAE (Appendix F: 20 on ColorMNIST)", POSITIVE_INT,
        group=BUDGET_GROUP,
    )
    attack_steps: int | None = setting(
        None, "PGD steps per start in the evaluation attack (Appendix F: 40 on ColorMNIST)", POSITIVE_INT,
        group=BUDGET_GROUP,
    )
    restarts: int | None = setting(
        None, "PGD starts per attack loss in evaluation, the first from x itself (Appendix F: 10)", POSITIVE_INT,
        group=BUDGET_GROUP,
    )
    square_queries: int | None = setting(
        None, "queries per example of the evaluation's gradient-free Square attack", POSITIVE_INT, group=BUDGET_GROUP
    )
    check_size: int | None = setting(
        None, "test images the evaluation's checks (more steps and restarts, huge epsilon) attack again",
        POSITIVE_INT, group=BUDGET_GROUP,
    )
    latent_dim: int | None = setting(None, "size of z (Section 4: 64)", POSITIVE_INT, group=BUDGET_GROUP)
    mlp_hidden_units: int | None = setting(
        None, "units per hidden layer of the MLP (None: the paper's 200)", POSITIVE_INT, flag=False
    )
    mlp_hidden_layers: int | None = setting(
        None, "hidden layers of the MLP (None: the paper's 4)", POSITIVE_INT, flag=False
    )
    fid_samples: int | None = setting(
        None, "generated images per FID, compared with as many test images", POSITIVE_INT, group=BUDGET_GROUP
    )
    extractor_epochs: int | None = setting(
        None, "epochs of the ColorMNIST classifier trained as FID extractor", POSITIVE_INT, group=BUDGET_GROUP
    )
    probe_train_size: int | None = setting(
        None, "CelebA: training images the linear probes are fitted on", POSITIVE_INT, group=BUDGET_GROUP
    )
    image_size: int | None = setting(
        None, "CelebA: side of the square images, a multiple of 16", POSITIVE_INT, group=BUDGET_GROUP
    )

    def filled(self, scale, arch):
        """A copy whose unset (None) budget fields are `scale`'s, with its epochs for `arch`."""
        changes = {}
        for name in BUDGET_FIELDS:
            if getattr(self, name) is None:
                changes[name] = scale.epochs_for(arch) if name == "epochs" else getattr(scale, name)
        return dataclasses.replace(self, **changes)


BUDGET_FIELDS = tuple(field.name for field in dataclasses.fields(Budget))
"""The fields of `Budget`: a run's settings that its scale fills when they are left unset."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scale(Budget):
    """A preset of the budget (`--scale`): its name, what it is for, and every size.

    Args:
        name: the preset's name.
        description: one sentence on what it is for and how long it takes.
        epochs: an int, or a dict architecture -> int.
        (the other fields: `Budget`'s.)
    """

    name: str
    description: str
    square_queries: int = like(Budget, "square_queries", constants.DEFAULT_SQUARE_QUERIES)
    check_size: int = like(Budget, "check_size", constants.DEFAULT_CHECK_SIZE)
    latent_dim: int = like(Budget, "latent_dim", 64)
    fid_samples: int = like(Budget, "fid_samples", 10000)
    extractor_epochs: int = like(Budget, "extractor_epochs", 3)

    def epochs_for(self, arch):
        """The number of epochs for architecture `arch`."""
        if isinstance(self.epochs, dict):
            if arch not in self.epochs:
                raise ValueError(
                    f"Scale {self.name!r} sets epochs for {sorted(self.epochs)}, not for arch={arch!r}."
                )
            return self.epochs[arch]
        return self.epochs


TINY_SQUARE_QUERIES = 10
TINY_CHECK_SIZE = 8

MNIST_TRAIN_SIZE = 60000
MNIST_TEST_SIZE = 10000

_TINY = dict(
    train_size=64,
    test_size=32,
    attack_size=32,
    epochs=1,
    batch_size=16,
    learning_rate=1e-3,
    train_attack_steps=1,
    attack_steps=1,
    restarts=1,
    square_queries=TINY_SQUARE_QUERIES,
    check_size=TINY_CHECK_SIZE,
    latent_dim=8,
    mlp_hidden_units=32,
    mlp_hidden_layers=1,
    fid_samples=32,
    extractor_epochs=1,
)

_PAPER_COLOR_MNIST = dict(
    train_size=MNIST_TRAIN_SIZE,
    test_size=MNIST_TEST_SIZE,
    attack_size=MNIST_TEST_SIZE,
    epochs=100,
    batch_size=64,
    learning_rate=1e-4,
    train_attack_steps=20,
    attack_steps=40,
    restarts=10,
    fid_samples=MNIST_TEST_SIZE,
    extractor_epochs=5,
)

MEDIUM_ATTACK_SIZE = 1000
"""Test images the `medium` scale attacks with the paper's protocol (the paper attacks all 10,000)."""

MEDIUM_LEARNING_RATE = 1e-3
"""Adam's rate at the `medium` scale: ten times the paper's, because at this budget the conv AVAE
trained with it was far more robust (docs/results.md, "Defaults at the medium budget")."""

_MEDIUM_COLOR_MNIST = dict(
    _PAPER_COLOR_MNIST,  # all the images and the paper's evaluation protocol; less of the rest
    attack_size=MEDIUM_ATTACK_SIZE,
    epochs={"mlp": 50, "conv": 10},
    learning_rate=MEDIUM_LEARNING_RATE,
    train_attack_steps=5,
    extractor_epochs=3,
)
_MEDIUM_DESCRIPTION = (
    "two CPU cores, all 60,000 training images: 50 epochs for the MLP and 10 for the convnet "
    "(sized so that the default conv AVAE trains in about half an hour), batch 64, Adam 1e-3; 5 PGD "
    "steps per SE training step; the paper's evaluation (40 steps x 10 restarts, both losses, APGD, "
    "Square, the checks) on 1,000 test images; MSE, clean accuracy and FID on all 10,000."
)

TRAIN_SCALES = {
    "tiny": Scale(
        name="tiny",
        description="tests only: 64 training images, 1 epoch, a 1-layer MLP of 32 units, latent 8; seconds.",
        **_TINY,
    ),
    "small": Scale(
        name="small",
        description=(
            "one model on two CPU cores: 10,000 training images, 50 epochs, Adam 1e-3; "
            "5 PGD steps per SE training step; evaluation attacks 1,000 test images with "
            "20 steps x 2 restarts; FID on 2,000 images."
        ),
        train_size=10000,
        test_size=2000,
        attack_size=1000,
        epochs=50,
        batch_size=64,
        learning_rate=1e-3,
        train_attack_steps=5,
        attack_steps=20,
        restarts=2,
        fid_samples=2000,
        extractor_epochs=3,
    ),
    "medium": Scale(name="medium", description=_MEDIUM_DESCRIPTION, **_MEDIUM_COLOR_MNIST),
    "paper": Scale(
        name="paper",
        description=(
            "Appendix F: all 60,000 / 10,000 images, Adam 1e-4, PGD 20 steps in training, "
            "40 steps x 10 restarts in evaluation; 100 epochs and batch 64 are our choices. "
            "Needs a GPU."
        ),
        **_PAPER_COLOR_MNIST,
    ),
}
"""Presets of `keras-avae train` and `examples/train_color_mnist.py` (one model)."""

TABLE1_SCALES = {
    "tiny": Scale(
        name="tiny",
        description="tests only: 64 training images, 1 epoch, single PGD steps; under a minute for 7 MLP rows.",
        **_TINY,
    ),
    "small": Scale(
        name="small",
        description=(
            "the whole table on two CPU cores: 10,000 training images, Adam 1e-3, "
            "20 epochs for the MLP (3,140 steps) and 3 for the convnet (471 steps, "
            "whose steps cost about 10x more); 5 PGD steps per SE training step; evaluation "
            "attacks 500 test images with 10 steps x 2 restarts x 2 losses; MSE, probe "
            "accuracy and FID on 1,000 test images."
        ),
        train_size=10000,
        test_size=1000,
        attack_size=500,
        epochs={"mlp": 20, "conv": 3},
        batch_size=64,
        learning_rate=1e-3,
        train_attack_steps=5,
        attack_steps=10,
        restarts=2,
        fid_samples=1000,
        extractor_epochs=2,
    ),
    "medium": TRAIN_SCALES["medium"],
    "paper": Scale(
        name="paper",
        description=TRAIN_SCALES["paper"].description,
        **_PAPER_COLOR_MNIST,
    ),
}
"""Presets of `keras-avae reproduce table1` and `reproduce rho-sweep` (ColorMNIST, many models)."""

ABLATION_SCALES = {
    "tiny": TABLE1_SCALES["tiny"],
    "small": dataclasses.replace(
        TABLE1_SCALES["small"],
        description=(
            "the study on two CPU cores: 10,000 training images, Adam 1e-3, "
            "20 epochs for the MLP (3,140 steps) and 4 for the convnet (628 steps); 5 PGD steps "
            "per SE training step; probes on the 10,000 training images; evaluation attacks 300 test "
            "images with 10 steps x 1 start (from x) x 2 losses; MSE and probe accuracy on 1,000 test images."
        ),
        attack_size=300,
        epochs={"mlp": 20, "conv": 4},
        restarts=1,
    ),
    "medium": TABLE1_SCALES["medium"],
    "paper": TABLE1_SCALES["paper"],
}
"""Presets of `keras-avae reproduce ablation` (the study of the paper's open choices)."""

CELEBA_SCALES = {
    "tiny": Scale(
        name="tiny",
        description="tests only: 16x16 images, 32 training images, 1 epoch, single PGD steps.",
        train_size=32,
        test_size=16,
        attack_size=16,
        epochs=1,
        batch_size=8,
        learning_rate=1e-3,
        train_attack_steps=1,
        attack_steps=1,
        restarts=1,
        square_queries=TINY_SQUARE_QUERIES,
        check_size=TINY_CHECK_SIZE,
        latent_dim=8,
        fid_samples=16,
        probe_train_size=32,
        image_size=16,
    ),
    "small": Scale(
        name="small",
        description=(
            "one GPU, a few hours: 20,000 training images, 10 epochs, Adam 1e-4; probes on "
            "10,000 images; 1,000 test images attacked with 20 steps x 2 restarts; FID on "
            "2,000 images."
        ),
        train_size=20000,
        test_size=2000,
        attack_size=1000,
        epochs=10,
        batch_size=64,
        learning_rate=1e-4,
        train_attack_steps=None,
        attack_steps=20,
        restarts=2,
        fid_samples=2000,
        probe_train_size=10000,
        image_size=64,
    ),
    "paper": Scale(
        name="paper",
        description=(
            "Appendix F: the whole training split, Adam 1e-4, SE^5 and SE^20, evaluation with "
            "20 steps x 10 restarts; 20 epochs, batch 64, probes on 20,000 training images, "
            "10,000 test images (2,000 attacked) and FID on 10,000 are our choices. Needs a GPU."
        ),
        train_size=None,
        test_size=10000,
        attack_size=2000,
        epochs=20,
        batch_size=64,
        learning_rate=1e-4,
        train_attack_steps=None,
        attack_steps=20,
        restarts=10,
        fid_samples=10000,
        probe_train_size=20000,
        image_size=64,
    ),
}
"""Presets of `keras-avae reproduce celeba` (Tables 2 and 3)."""


def steps_per_epoch(num_train, batch_size):
    """Training steps in one pass over `num_train` images."""
    return max(1, math.ceil(num_train / batch_size))
