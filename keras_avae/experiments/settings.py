"""The settings of every experiment command, typed once: one frozen dataclass per command.

    RunConfig           one run (`run.run_one`): the model, its networks, budget, evaluation
    TrainSettings       `keras-avae train`: a RunConfig with its data and run-directory flags
    EvaluateSettings    `keras-avae evaluate`: a saved model or encoder and the evaluation
    Table1Settings      `keras-avae reproduce table1`
    AblationSettings    `keras-avae reproduce ablation` (each row fixes the open choices)
    RhoSweepSettings    `keras-avae reproduce rho-sweep` (each row fixes rho)
    CelebASettings      `keras-avae reproduce celeba`
    LearningCurveSettings   `keras-avae reproduce learning-curve` (one model, checkpoints evaluated)
    CurveComparisonSettings `keras-avae reproduce compare-curves` (learning curves side by side)

The classes are built from mixins that hold the settings several commands
share (`scale.Budget`, `Hyperparameters`, `Choices`, `Evaluation`, `FID`, `Distribution`,
`Output`, `Training`). Every field is checked when an instance is made
(`fields.Settings`), and `keras_avae.cli` generates each command's flags,
their types, ranges and `--help` from the same fields. A run's config.json
is its `RunConfig` as run (`RunConfig.record`): the budget filled from the
scale and the sizes the data set actually held.

The library functions take a dict of settings (None: the default) or an
instance; `from_dict` refuses unknown keys.

This module is light (no TensorFlow), for `keras-avae --help`.

Example:
    settings = Table1Settings.from_dict({"arch": "mlp", "epochs": 3})
    config = settings.run_config(arch="mlp", model="vae")     # a RunConfig, budget from the scale
"""

import dataclasses
import os
from pathlib import Path
from typing import ClassVar

from keras_avae import constants
from keras_avae.experiments import fields
from keras_avae.experiments.fields import (
    BOOL,
    EPOCH_LIST,
    POSITIVE_INT,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    PATH,
    PATHS,
    RADII,
    RHO,
    RHOS,
    SWITCH,
    TEXT,
    Settings,
    like,
    names,
    one_of,
    setting,
)
from keras_avae.experiments.scale import (
    ABLATION_SCALES,
    BUDGET_FIELDS,
    CELEBA_SCALES,
    TABLE1_SCALES,
    TRAIN_SCALES,
    Budget,
)

HYPERPARAMETERS = "hyper-parameters (the paper's by default)"
CHOICES = "the paper's open choices (each applies to the models that have it; default: each model's own)"
ATTACK = "evaluation attack (AdversarialEvaluator)"
FID_GROUP = "FID"
RUN = "run"
COMMAND = None
"""The `--help` sections (COMMAND: the command's own options, first)."""

CHOICE_HELP = {
    "posterior_sampling": "how z is drawn from q(z|x): std (z = mu + eps sigma, Algorithm 1) or variance "
    "(z = mu + eps sigma^2, the authors' released code)",
    "coupling": "AVAE, SE-AVAE, AVAE-SS: factorised (eq. 13) or joint (log p_rho(z'|z) at the z that "
    "generated the delusion, eq. 10's derivation)",
    "delusion": "AVAE, SE-AVAE, AVAE-SS: sample (x~ drawn from p(x~|z), eq. 10) or mean (x~ = g(z), "
    "Algorithm 1)",
    "extra_pass_statistics": "AVAE, SE, SE-AVAE, AVAE-SS: whether the extra encoder passes (delusion, "
    "adversarial input) update or keep BatchNorm's moving statistics",
    "attack_mode": "SE, SE-AVAE: the mode the training attack runs the encoder in: inference, or training "
    "(the bound's mode)",
}

RUN_OUTPUT_ONLY = ("resume", "overwrite")
"""Settings of how a command treats its run directory, not of the run: left out of config.json."""


# ------------------------------------------------------------------- mixins


@dataclasses.dataclass(frozen=True, kw_only=True)
class Hyperparameters(Settings):
    """The models' hyper-parameters (Table 1 caption)."""

    rho: float = setting(constants.RHO, "coupling strength of AVAE, SE-AVAE and AVAE-SS, in (-1, 1) (Table 1)", RHO, group=HYPERPARAMETERS)
    rho_se: float = setting(
        constants.RHO_SE, "coupling strength of the smooth encoder (SE, SE-AVAE), in (-1, 1) (Table 1)", RHO,
        group=HYPERPARAMETERS,
    )
    se_epsilon: float = setting(
        constants.SE_EPSILON, "L-inf radius of the training attack of SE and SE-AVAE, for rows that do not set "
        "their own (Table 1 has 0.1 and 0.2)", dataclasses.replace(NON_NEGATIVE, metavar="EPS"), group=HYPERPARAMETERS,
    )
    obs_var: float | None = setting(
        None, "variance v of the Gaussian likelihood N(x; g(z), v I) (default: the models' 0.5)",
        dataclasses.replace(fields.POSITIVE, metavar="V"), group=HYPERPARAMETERS,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Choices(Settings):
    """The paper's open choices (`keras_avae.models`' `OPEN_CHOICES`); None: each model's own default."""

    posterior_sampling: str | None = setting(
        None, CHOICE_HELP["posterior_sampling"], one_of(constants.CHOICE_VALUES["posterior_sampling"]), group=CHOICES
    )
    coupling: str | None = setting(None, CHOICE_HELP["coupling"], one_of(constants.CHOICE_VALUES["coupling"]), group=CHOICES)
    delusion: str | None = setting(None, CHOICE_HELP["delusion"], one_of(constants.CHOICE_VALUES["delusion"]), group=CHOICES)
    extra_pass_statistics: str | None = setting(
        None, CHOICE_HELP["extra_pass_statistics"], one_of(constants.CHOICE_VALUES["extra_pass_statistics"]),
        group=CHOICES,
    )
    attack_mode: str | None = setting(
        None, CHOICE_HELP["attack_mode"], one_of(constants.CHOICE_VALUES["attack_mode"]), group=CHOICES
    )


CHOICE_NAMES = tuple(field.name for field in dataclasses.fields(Choices))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Evaluation(Settings):
    """The evaluation attack's settings (`keras_avae.evaluation.AdversarialEvaluator`) besides its budget."""

    epsilons: tuple = setting(
        constants.EPSILONS, "L-inf attack radii, pixels in [0, 1]; 0 is the clean accuracy", RADII, group=ATTACK
    )
    losses: tuple = setting(
        constants.DEFAULT_LOSSES, "PGD losses, each run from every start: cross_entropy, margin (Carlini-Wagner), "
        "targeted_margin", names(constants.PGD_LOSSES, "loss names", metavar="L1,L2"), group=ATTACK,
    )
    attacks: str | tuple = setting(
        "standard", f"'standard' (the ensemble: {', '.join(constants.ATTACKS)}, each on the examples still "
        "robust), 'pgd' (PGD alone, the evaluation before the ensemble), or comma-separated names from those",
        names(constants.ATTACKS, "attack names", extra=tuple(constants.ENSEMBLES)), group=ATTACK,
    )
    checks: bool = setting(
        True, "check the attack after each evaluation: accuracy monotone in epsilon, black-box no stronger than "
        "white-box, twice the steps and restarts change nothing, a huge epsilon gives chance, every input in "
        "the ball", BOOL, group=ATTACK,
    )


EVALUATION_FIELDS = tuple(field.name for field in dataclasses.fields(Evaluation))


@dataclasses.dataclass(frozen=True, kw_only=True)
class FID(Settings):
    """How FID is computed."""

    fid: bool = setting(True, "compute the FID of the decoder's samples against test images", BOOL, group=FID_GROUP)
    fid_extractor: str | None = setting(
        None, "a saved Keras feature extractor (.keras) for FID, e.g. the fid_extractor.keras of an earlier run, "
        "so that FIDs of several runs compare (default: a ColorMNIST classifier trained on the training images)",
        PATH, group=FID_GROUP,
    )
    inception_weights: str | None = setting(
        None, "a local InceptionV3 weights file (no top, e.g. Keras' "
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5): FID with the standard InceptionV3 pool3 "
        "features instead (slow on a CPU)", PATH, group=FID_GROUP,
    )

    def __post_init__(self):
        super().__post_init__()
        if self.fid_extractor is not None and self.inception_weights is not None:
            raise ValueError("Pass either `inception_weights` or `fid_extractor`, not both.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Output(Settings):
    """Where a command writes and what it prints."""

    out: str | None = setting(None, "output directory", dataclasses.replace(PATH, metavar="DIR"), group=RUN)
    seed: int = setting(
        0, "seed of weight initialisation, shuffling, the models' noise, the probes and the attacks' random "
        "starts, an integer >= 0; the colours of ColorMNIST are always drawn with seed 0",
        dataclasses.replace(NON_NEGATIVE_INT, metavar="SEED"), group=RUN,
    )
    figures: bool = setting(True, "draw the figures", BOOL, group=RUN)
    verbose: int = setting(
        1, "0: results only; 1: Keras progress bars and a progress line per model; 2: one line per epoch",
        one_of((0, 1, 2)), group=RUN,
    )

    def record(self):
        """The settings for config.json: all but how the command treated its folder (`RUN_OUTPUT_ONLY`)."""
        return {key: value for key, value in self.to_dict().items() if key not in RUN_OUTPUT_ONLY}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Distribution(Settings):
    """How a command spreads over devices and workers (`keras_avae.distribute`)."""

    distribute: str = setting(
        "none", "none: one device; mirrored: every GPU of this machine (MirroredStrategy); multi-worker: "
        "every device of several processes or machines (MultiWorkerMirroredStrategy; start the same command "
        "on each worker, worker 0 writes --out). Training is synchronous over the global --batch-size and the "
        "evaluation attacks split the test images", one_of(constants.DISTRIBUTE_STRATEGIES), group=RUN,
    )
    cluster: str = setting(
        "tf-config", "for --distribute multi-worker: where the workers are listed, the TF_CONFIG environment "
        "variable (tf-config; Kubernetes and most launchers set it) or Slurm's (slurm, SlurmClusterResolver: "
        "start each worker with srun)", one_of(constants.CLUSTERS), group=RUN,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Training(Settings):
    """How training runs."""

    jit_compile: bool | None = setting(
        None, "compile training steps with XLA (default: 'auto', resolved per model: on for networks without "
        "convolutions, off otherwise, on a CPU)", BOOL, group=RUN,
    )
    dtype_policy: str = setting(
        "float32", "the networks' Keras dtype policy: float32, or mixed_bfloat16 (bfloat16 compute and float32 "
        "variables, for a CPU with AVX512_BF16 or AMX, a TPU or a recent GPU; the networks' output layers and "
        "every term of the objective stay float32)", one_of(constants.DTYPE_POLICIES), group=RUN,
    )
    robustness_every_n_epochs: int = setting(
        0, "also attack the model after every N-th epoch of training, logged to TensorBoard and metrics.json "
        "(Figure 5, middle: training dynamics; 0: only after training)", NON_NEGATIVE_INT, group=RUN,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scaled(Settings):
    """A command with `--scale` presets (`SCALES`) of its budget."""

    SCALES: ClassVar[dict] = TABLE1_SCALES

    scale: str = setting("small", "preset of the sizes and budgets", TEXT, group=COMMAND)

    def __post_init__(self):
        super().__post_init__()
        if self.scale not in self.SCALES:
            raise ValueError(f"`scale` must be one of {tuple(self.SCALES)}. Received: scale={self.scale!r}")

    @property
    def preset(self):
        """The `scale.Scale` named by `scale`."""
        return self.SCALES[self.scale]


# -------------------------------------------------------------------- one run


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunConfig(Budget, Hyperparameters, Choices, Evaluation, FID, Output, Training, Distribution):
    """The settings of one run (`keras_avae.experiments.run.run_one`); config.json records them.

    The budget fields left None come from the scale (`Budget.filled`).
    """

    model: str | None = setting(
        None, "vae (eq. 2), avae (eq. 13), se (smooth encoder, Algorithm 2), seavae (eq. 35), avae_ss (eq. 34: "
        "post-trains a trained VAE without data)", one_of(constants.MODEL_NAMES), group=COMMAND,
    )
    arch: str | None = setting(
        None, "networks of Appendix F: mlp (4 x 200 units), conv (7-layer VGG) or celeba",
        one_of(constants.ARCHITECTURES + ("celeba",)), group=COMMAND,
    )
    scale: str | None = setting(None, "the preset the budget came from", TEXT, flag=False)
    robustness: bool = setting(
        True, "run the evaluation attack (the clean probe accuracy is always reported)", BOOL, group=ATTACK
    )

    def evaluator_settings(self):
        """The arguments of `run.make_evaluator` among the settings."""
        return self.pick(("attack_size", "attack_steps", "restarts", "square_queries", "check_size", *EVALUATION_FIELDS))

    def choices(self):
        """The open choices that are set, name -> value."""
        return {name: getattr(self, name) for name in CHOICE_NAMES if getattr(self, name) is not None}


RUN_FIELDS = RunConfig.field_names()

EVALUATION_SETTINGS = ("attack_size", "attack_steps", "restarts", "square_queries", "check_size", *EVALUATION_FIELDS)
"""The settings of a run that decide only its robustness evaluation: `--resume` re-evaluates a
finished run whose other settings match instead of training it again."""


def run_config(settings, **changes):
    """The `RunConfig` of `settings` (any settings class): its run fields, updated with `changes`."""
    values = {name: getattr(settings, name) for name in RUN_FIELDS if hasattr(settings, name)}
    return RunConfig(**{**values, **changes})


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainSettings(RunConfig, Scaled):
    """`keras-avae train`: one model on ColorMNIST."""

    SCALES: ClassVar[dict] = TRAIN_SCALES
    HIDDEN: ClassVar[tuple] = ("probe_train_size", "image_size")
    HELP: ClassVar[dict] = {
        "out": "output directory (default: runs/<model>_<arch>)",
        "overwrite": "replace a finished run in --out (its metrics.json) or an interrupted one (its backup/); "
        "without it, either stops the command with an error",
        "figures": "draw the figures (default: on): reconstructions, samples, encode-decode chains (Figure 1), "
        "accuracy against epsilon",
        "arch": "networks of Appendix F: mlp (4 x 200 units) or conv (7-layer VGG) (default: mlp)",
    }

    model: str = like(RunConfig, "model", "avae")
    arch: str = like(RunConfig, "arch", "mlp", kind=one_of(constants.ARCHITECTURES))
    scale: str = like(Scaled, "scale", "small")
    data: str | None = setting(
        None, "a local mnist.npz (default: $KERAS_AVAE_MNIST_PATH if set, else ../shared/data/mnist.npz next to "
        "the repository if it exists, else the keras.datasets download)", PATH, group=COMMAND,
    )
    pretrained: str | None = setting(
        None, "for --model avae_ss: the saved model (.keras) to post-train (default: train a VAE with the same "
        "settings first, in <out>/vae)", PATH, group=COMMAND,
    )
    resume: bool = setting(
        False, "continue the interrupted run in --out (killed, or stopped with Ctrl-C) from its last completed "
        "epoch, backed up in <out>/backup after every epoch; with the same flags the result is that of an "
        "uninterrupted run, and a change of any setting but --verbose is refused", SWITCH, group=RUN,
    )
    overwrite: bool = setting(False, "replace a finished run in --out", SWITCH, group=RUN)

    def __post_init__(self):
        super().__post_init__()
        if self.pretrained is not None and self.model != "avae_ss":
            raise ValueError(f"`pretrained` is only for model='avae_ss'. Received: model={self.model!r}")

    def resolved(self):
        """A copy with the budget filled from the scale and the default `out`."""
        out = self.out or f"runs/{self.model}_{self.arch}"
        return self.filled(self.preset, self.arch).replace(out=out)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LearningCurveSettings(TrainSettings):
    """`keras-avae reproduce learning-curve`: one model trained to its budget, evaluated at checkpoints.

    The checkpoints' curve uses the lighter `curve_*` attack; the last checkpoint is also evaluated
    with the run's full evaluation settings (`attacks`, `attack_steps`, `restarts`). No FID.
    """

    HIDDEN: ClassVar[tuple] = TrainSettings.HIDDEN + (
        "pretrained", "robustness", "robustness_every_n_epochs", "fid", "fid_extractor", "inception_weights",
        "fid_samples", "extractor_epochs",
    )
    HELP: ClassVar[dict] = {
        **TrainSettings.HELP,
        "out": "output directory (default: runs/learning_curve_<model>_<arch>_<scale>)",
        "model": "vae (eq. 2), avae (eq. 13), se (smooth encoder, Algorithm 2) or seavae (eq. 35) (default: avae)",
        "resume": "continue the interrupted curve in --out: training from its last completed epoch (backup/), "
        "then the checkpoints not yet evaluated; refuses settings that differ from the run's config.json",
        "overwrite": "delete the curve in --out (checkpoints, points, backup) and start again",
        "figures": "draw the curve's figures (default: on)",
    }

    fid: bool = like(FID, "fid", False)
    checkpoint_epochs: tuple = setting(
        constants.LEARNING_CURVE_EPOCHS, "epochs after which the model is saved and evaluated; those beyond "
        "--epochs are left out and the last epoch is always in", EPOCH_LIST, group=COMMAND,
    )
    curve_attacks: str | tuple = like(
        Evaluation, "attacks", "pgd", help="the attacks of the checkpoints' curve (the last checkpoint is also "
        "evaluated with --attacks)",
    )
    curve_attack_steps: int = setting(
        constants.LEARNING_CURVE_ATTACK_STEPS, "PGD steps per start of the curve's attack", POSITIVE_INT, group=ATTACK
    )
    curve_restarts: int = setting(
        constants.LEARNING_CURVE_RESTARTS, "PGD starts per loss of the curve's attack", POSITIVE_INT, group=ATTACK
    )

    def __post_init__(self):
        super().__post_init__()
        if self.model == "avae_ss":
            raise ValueError(
                "`model` must be one of ('vae', 'avae', 'se', 'seavae') for a learning curve: AVAE-SS post-trains "
                "a trained model (keras-avae train --model avae_ss). Received: model='avae_ss'"
            )

    def resolved(self):
        """A copy with the budget filled from the scale and the default `out`."""
        out = self.out or f"runs/learning_curve_{self.model}_{self.arch}_{self.scale}"
        return self.filled(self.preset, self.arch).replace(out=out)

    def curve_epochs(self):
        """The epochs whose checkpoints are evaluated: `checkpoint_epochs` up to `epochs`, and `epochs`."""
        return tuple(sorted({epoch for epoch in self.checkpoint_epochs if epoch < self.epochs} | {self.epochs}))

    def curve_evaluator_settings(self):
        """`evaluator_settings` with the curve's lighter attack."""
        return {
            **self.evaluator_settings(),
            "attacks": self.curve_attacks, "attack_steps": self.curve_attack_steps, "restarts": self.curve_restarts,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class CurveComparisonSettings(Settings):
    """`keras-avae reproduce compare-curves`: learning curves already run, side by side (Figure 5, middle).

    Reads each folder's learning curve (learning_curve.json, or the points evaluated so far while the
    curve still trains); trains and evaluates nothing.
    """

    curves: tuple | None = setting(
        None, "the folders of the learning curves to compare (each written by `keras-avae reproduce "
        "learning-curve --out DIR`), comma-separated", PATHS, group=COMMAND,
    )
    epsilons: tuple = setting(
        constants.CURVE_COMPARISON_EPSILONS, "the radii drawn, one figure per task and radius (the paper's "
        "Figure 5 shows 0.1)", RADII, group=COMMAND,
    )
    out: str = setting("runs/curve_comparison", "output directory", dataclasses.replace(PATH, metavar="DIR"), group=RUN)
    figures: bool = like(Output, "figures", True)

    def __post_init__(self):
        super().__post_init__()
        if self.curves is None:
            raise ValueError("`curves` is required: the folders of the learning curves to compare (--curves DIR1,DIR2).")


# ------------------------------------------------------------------ evaluate


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluateSettings(Evaluation, FID, Output, Distribution):
    """`keras-avae evaluate`: a saved keras_avae model (`model_path`) or any saved encoder (`encoder`).

    Defaults: probes on 10,000 training images, 2,000 test images attacked by the ensemble with
    Appendix F's 40 steps x 10 PGD restarts, FID on 2,000 images.
    """

    HIDDEN: ClassVar[tuple] = ()
    HELP: ClassVar[dict] = {
        "out": "output directory (default: <folder of MODEL>/evaluation)",
        "figures": "draw the figures (default: on): reconstructions, samples, chains, accuracy against epsilon",
    }

    model_path: str | None = setting(None, "a saved keras_avae model (.keras)", dataclasses.replace(PATH, metavar="MODEL"), group=COMMAND, positional=True)
    encoder: str | None = setting(
        None, "instead of MODEL: a saved Keras encoder (.keras) or TF SavedModel folder mapping images to the "
        "representation f^mu(x), (batch, features)", PATH, group=COMMAND,
    )
    data_range: tuple | None = setting(
        None, "the range of the --encoder's inputs; attacks clip to it (default: 0,1, ColorMNIST's)",
        fields.DATA_RANGE, group=COMMAND,
    )
    data: str | None = like(TrainSettings, "data", None)
    train_size: int = like(Budget, "train_size", constants.EVALUATE_DEFAULTS["train_size"],
                           help="training images the probes are fitted on (60000 is all)", group=COMMAND)
    test_size: int = like(Budget, "test_size", constants.EVALUATE_DEFAULTS["test_size"],
                          help="test images for MSE, clean accuracy and FID (10000 is all)", group=COMMAND)
    attack_size: int | None = like(Budget, "attack_size", None, help="test images attacked, the first ones (default: all of --test-size)", group=ATTACK)
    attack_steps: int = like(Budget, "attack_steps", constants.EVALUATE_DEFAULTS["attack_steps"], group=ATTACK)
    restarts: int = like(Budget, "restarts", constants.EVALUATE_DEFAULTS["restarts"], group=ATTACK)
    batch_size: int = like(Budget, "batch_size", constants.EVALUATE_DEFAULTS["batch_size"], help="test images per attacked batch", group=ATTACK)
    square_queries: int = like(Budget, "square_queries", constants.EVALUATE_DEFAULTS["square_queries"], group=ATTACK)
    check_size: int = like(Budget, "check_size", constants.EVALUATE_DEFAULTS["check_size"], group=ATTACK)
    fid_samples: int = like(Budget, "fid_samples", constants.EVALUATE_DEFAULTS["fid_samples"], group=FID_GROUP)
    extractor_epochs: int = like(Budget, "extractor_epochs", constants.EVALUATE_DEFAULTS["extractor_epochs"], group=FID_GROUP)
    model_name: str | None = setting(None, "row label of the table (default: the model's class name)", dataclasses.replace(TEXT, metavar="NAME"), group=RUN)
    json: str | None = setting(
        None, "also write the robust accuracies, the checks, the per-example records and the attack settings "
        "to this JSON file (keras_avae.evaluation.report.to_document's layout)", PATH, group=RUN,
    )
    overwrite: bool = setting(
        False, "replace an earlier evaluation in --out (its metrics.json); without it, that stops the command "
        "with an error", SWITCH, group=RUN,
    )

    def __post_init__(self):
        super().__post_init__()
        if (self.model_path is None) == (self.encoder is None):
            raise ValueError(
                "Give exactly one of `model_path` (a saved keras_avae model) and `encoder` (a saved Keras "
                "encoder or SavedModel)."
            )

    @property
    def source(self):
        """The path evaluated: `model_path` or `encoder`."""
        return self.model_path or self.encoder

    def resolved(self):
        """A copy with the default `out` (next to the model) and, for an encoder, the default data range."""
        out = self.out or os.fspath(Path(self.source.rstrip("/")).parent / "evaluation")
        data_range = self.data_range if self.data_range is not None or self.encoder is None else constants.COLOR_MNIST_RANGE
        return self.replace(out=out, data_range=data_range)

    def evaluator_settings(self):
        return self.pick(("attack_size", "attack_steps", "restarts", "square_queries", "check_size", "batch_size", *EVALUATION_FIELDS))


# ---------------------------------------------------------------- reproduce


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reproduction(Budget, Hyperparameters, Evaluation, FID, Output, Training, Distribution, Scaled):
    """What every `keras-avae reproduce` command has: many runs into one folder."""

    HIDDEN: ClassVar[tuple] = ("probe_train_size", "image_size")
    STEM: ClassVar[str] = ""
    HELP: ClassVar[dict] = {
        "figures": "draw the figures (default: on): the table's figures",
        "overwrite": "run again the rows whose run directory already holds a finished run (metrics.json); "
        "without it or --resume, such rows stop the command with an error before anything runs",
        "fid_extractor": FID.__dataclass_fields__["fid_extractor"].metadata["help"].replace(
            "training images)", "training images, shared by all rows)"
        ),
    }

    resume: bool = setting(
        False, "load the rows whose run directory already holds a finished run with the same settings instead "
        "of running them again", SWITCH, group=COMMAND,
    )
    overwrite: bool = setting(False, "run the finished rows again", SWITCH, group=RUN)

    def output_folder(self):
        """`out`, or `runs/<STEM>_<scale>`."""
        return self.out or f"runs/{self.STEM}_{self.scale}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ColorMNISTReproduction(Reproduction):
    """A reproduction on ColorMNIST, for one or more architectures."""

    arch: tuple = setting(
        constants.ARCHITECTURES, "architectures, comma-separated: mlp, conv",
        names(constants.ARCHITECTURES, "architectures"), group=COMMAND,
    )
    data: str | None = like(TrainSettings, "data", None)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Table1Settings(ColorMNISTReproduction, Choices):
    """`keras-avae reproduce table1`."""

    STEM: ClassVar[str] = "table1"

    rows: tuple = setting(
        constants.TABLE1_ROW_LABELS, "rows to run, comma-separated (AVAE-SS brings in VAE)",
        names(constants.TABLE1_ROW_LABELS, "rows", metavar="R1,R2"), group=COMMAND,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class AblationSettings(ColorMNISTReproduction):
    """`keras-avae reproduce ablation`: each row fixes its open choices, so the settings have none."""

    SCALES: ClassVar[dict] = ABLATION_SCALES
    STEM: ClassVar[str] = "ablation"

    rows: tuple = setting(
        constants.ABLATION_ROW_LABELS, "rows to run, comma-separated (AVAE-SS rows bring in VAE)",
        names(constants.ABLATION_ROW_LABELS, "rows", metavar="R1,R2"), group=COMMAND,
    )
    epsilons: tuple = like(Evaluation, "epsilons", constants.ABLATION_EPSILONS)
    fid: bool = like(FID, "fid", constants.ABLATION_FID)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RhoSweepSettings(ColorMNISTReproduction, Choices):
    """`keras-avae reproduce rho-sweep`: one AVAE per rho (the rows set rho; SE's settings do not apply)."""

    STEM: ClassVar[str] = "rho_sweep"
    HIDDEN: ClassVar[tuple] = Reproduction.HIDDEN + ("rho", "rho_se", "se_epsilon", "train_attack_steps")

    rhos: tuple = setting(constants.DEFAULT_RHOS, "coupling strengths in (-1, 1)", RHOS, group=COMMAND)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CelebASettings(Reproduction, Choices):
    """`keras-avae reproduce celeba`: Tables 2 and 3."""

    SCALES: ClassVar[dict] = CELEBA_SCALES
    STEM: ClassVar[str] = "celeba"
    HIDDEN: ClassVar[tuple] = ("extractor_epochs",)
    HELP: ClassVar[dict] = {
        **Reproduction.HELP,
        "fid_extractor": "a saved Keras feature extractor (.keras) for FID (default: InceptionV3 with the "
        "ImageNet weights, which Keras downloads)",
    }

    data_dir: str | None = setting(
        None, "tensorflow-datasets folder with the prepared celeb_a (default: $KERAS_AVAE_CELEBA_DIR, else tfds' "
        "default ~/tensorflow_datasets)", dataclasses.replace(PATH, metavar="DIR"), group=COMMAND,
    )
    rows: tuple = setting(
        constants.CELEBA_ROW_LABELS, "rows to run, comma-separated (AVAE-SS brings in VAE)",
        names(constants.CELEBA_ROW_LABELS, "rows", metavar="R1,R2"), group=COMMAND,
    )
    attributes: tuple = setting(
        constants.CELEBA_ATTRIBUTES, "tasks, comma-separated CelebA attributes of Table 3",
        names(constants.CELEBA_ATTRIBUTES, "attributes"), group=COMMAND,
    )
    epsilons: tuple = like(Evaluation, "epsilons", constants.CELEBA_EPSILONS)


def budget_of(settings, arch):
    """The budget fields of `settings` filled from its scale for `arch`, as a dict."""
    budget = Budget(**{name: getattr(settings, name) for name in BUDGET_FIELDS}).filled(settings.preset, arch)
    return budget.pick(BUDGET_FIELDS)
