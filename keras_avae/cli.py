"""`keras-avae`: train, evaluate and reproduce the experiments of Cemgil et al. (2020) from the shell.

    keras-avae train --model avae --arch mlp                 one model on ColorMNIST
    keras-avae evaluate runs/avae_mlp/model.keras            robust accuracy, MSE, FID of a saved model
    keras-avae reproduce table1 --arch mlp,conv              Table 1
    keras-avae reproduce ablation --arch mlp,conv            the paper's open choices
    keras-avae reproduce rho-sweep --rhos 0.5,0.9,0.975      Figure 5, left
    keras-avae reproduce celeba --data-dir DIR               Tables 2 and 3 (needs CelebA, a GPU)

Every command writes a run directory (model.keras, config.json,
metrics.json, summary.md, figures/, logs/ for TensorBoard) and prints its
results. The flags map one to one onto the settings of the library functions
in `keras_avae.experiments` (dashes become underscores), which hold the
logic; a flag left out keeps the function's default or its `--scale` preset.

Example:
    from keras_avae import cli
    metrics = cli.run(["train", "--model", "vae", "--scale", "tiny"])
"""

import argparse
import importlib
import math
import sys
import zipfile

import keras_avae
from keras_avae import constants
from keras_avae.experiments.scale import ABLATION_SCALES, CELEBA_SCALES, TABLE1_SCALES, TRAIN_SCALES

# Only light modules above: `keras-avae --help` imports no TensorFlow. Each command's library
# function (its `handler`, "module:function") is imported when the command runs.

PROG = "keras-avae"

_FORMATTER = argparse.RawDescriptionHelpFormatter

_SIZE_HELP = {
    "train_size": "training images, the first ones of the split",
    "test_size": "test images for the reconstruction MSE, the clean probe accuracy and the real side of FID",
    "attack_size": "test images attacked with PGD (the first ones of the test images)",
    "epochs": "training epochs (AVAE-SS: epochs of as many steps as one pass over the training images)",
    "batch_size": "images per training step",
    "learning_rate": "Adam's learning rate (Appendix F: 1e-4)",
    "train_attack_steps": "PGD steps per training step of SE and SE-AVAE (Appendix F: 20 on ColorMNIST)",
    "attack_steps": "PGD steps per start in the evaluation attack (Appendix F: 40 on ColorMNIST)",
    "restarts": "PGD starts per attack loss in evaluation, the first from x itself (Appendix F: 10)",
    "square_queries": "queries per example of the evaluation's gradient-free Square attack",
    "check_size": "test images the evaluation's checks (more steps and restarts, huge epsilon) attack again",
    "latent_dim": "size of z (Section 4: 64)",
    "fid_samples": "generated images per FID, compared with as many test images",
    "extractor_epochs": "epochs of the ColorMNIST classifier trained as FID extractor",
}


# -------------------------------------------------------------------- types


def _number(convert, accept, description):
    """An argparse type: `convert(text)`, refused unless `accept(value)`."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {description}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {description}, got {text}")
        return value

    return parse


_positive_int = _number(int, lambda value: value >= 1, "a positive integer")
_non_negative_int = _number(int, lambda value: value >= 0, "an integer >= 0")
_positive_float = _number(float, lambda value: math.isfinite(value) and value > 0, "a finite number > 0")


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _rho(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (-1, 1), got {text!r}") from None
    if not -1 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (-1, 1), got {text}")
    return value


def _epsilons(text):
    try:
        values = tuple(float(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers, got {text!r}") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"must be finite numbers >= 0, got {text!r}")
    return values


def _choices_list(choices, what):
    def parse(text):
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in choices]
        if not items or unknown:
            raise argparse.ArgumentTypeError(
                f"must be comma-separated {what} from {', '.join(choices)}; got {text!r}"
            )
        return tuple(dict.fromkeys(items))

    return parse


def _attacks(text):
    if text in constants.ENSEMBLES:
        return text
    return _choices_list(constants.ATTACKS, "attack names, or one of " + ", ".join(constants.ENSEMBLES))(text)


def _data_range(text):
    try:
        low, high = (float(item) for item in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be two numbers LOW,HIGH, got {text!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise argparse.ArgumentTypeError(f"must be finite numbers with LOW < HIGH, got {text!r}")
    return (low, high)


def _rhos(text):
    """Sorted distinct rho in (-1, 1), as `rho_sweep.parse_rhos` reads them (which also runs on them)."""
    try:
        rhos = sorted({float(item) for item in text.split(",") if item.strip()})
    except ValueError:
        rhos = []
    if not rhos or not all(-1 < rho < 1 for rho in rhos):
        raise argparse.ArgumentTypeError(f"`rhos` must be numbers in (-1, 1). Received: rhos={text!r}")
    return tuple(rhos)


# ------------------------------------------------------------ option groups


def _preset_values(scales, field):
    def show(value):
        if value is None:
            return "all" if field.endswith("_size") else "each row's own"
        if isinstance(value, dict):
            return ", ".join(f"{arch} {v}" for arch, v in value.items())
        return f"{value:g}" if isinstance(value, float) else str(value)

    return "; ".join(f"{name}: {show(getattr(scale, field))}" for name, scale in scales.items())


def _add_scale(parser, scales):
    presets = " ".join(f"'{name}': {scale.description}" for name, scale in scales.items())
    parser.add_argument(
        "--scale",
        choices=list(scales),
        default=None,
        help=f"preset of the sizes and budgets below (default: small). {presets}".replace("%", "%%"),
    )


def _add_scale_fields(parser, scales, fields):
    group = parser.add_argument_group("sizes and budgets (each defaults to its --scale preset)")
    types = {"learning_rate": _positive_float}
    for field in fields:
        group.add_argument(
            "--" + field.replace("_", "-"),
            type=types.get(field, _positive_int),
            default=None,
            metavar="N" if field != "learning_rate" else "LR",
            help=f"{_SIZE_HELP[field]} ({_preset_values(scales, field)})",
        )


def _add_hyperparameters(parser, rho=True, rho_se=True):
    group = parser.add_argument_group("hyper-parameters (the paper's by default)")
    if rho:
        group.add_argument(
            "--rho", type=_rho, default=None, metavar="RHO",
            help=f"coupling strength of AVAE, SE-AVAE and AVAE-SS, in (-1, 1) (default: {constants.RHO}, Table 1)",
        )
    if rho_se:
        group.add_argument(
            "--rho-se", type=_rho, default=None, metavar="RHO",
            help="coupling strength of the smooth encoder (SE, SE-AVAE), in (-1, 1) "
            f"(default: {constants.RHO_SE}, Table 1)",
        )
    group.add_argument(
        "--obs-var", type=_positive_float, default=None, metavar="V",
        help="variance v of the Gaussian likelihood N(x; g(z), v I) (default: the models' 0.5)",
    )
    return group


_CHOICE_HELP = {
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


def _add_choices(parser):
    group = parser.add_argument_group(
        "the paper's open choices (each applies to the models that have it; default: each model's own)"
    )
    for name, values in constants.CHOICE_VALUES.items():
        group.add_argument(
            "--" + name.replace("_", "-"), choices=values, default=None, help=_CHOICE_HELP[name]
        )
    return group


def _add_attack(parser, epsilons=constants.EPSILONS):
    group = parser.add_argument_group("evaluation attack (RobustnessEvaluator)")
    group.add_argument(
        "--epsilons", type=_epsilons, default=None, metavar="E1,E2,...",
        help="L-inf attack radii, pixels in [0, 1]; 0 is the clean accuracy "
        f"(default: {','.join(f'{e:g}' for e in epsilons)})",
    )
    group.add_argument(
        "--losses", type=_choices_list(constants.PGD_LOSSES, "loss names"), default=None, metavar="L1,L2",
        help="PGD losses, each run from every start: cross_entropy, margin (Carlini-Wagner), "
        "targeted_margin (default: cross_entropy,margin)",
    )
    group.add_argument(
        "--attacks", type=_attacks, default=None, metavar="A1,A2",
        help="'standard' (the ensemble: "
        f"{', '.join(constants.ATTACKS)}, each on the examples still robust), 'pgd' (PGD alone, "
        "the evaluation before the ensemble), or comma-separated names from those (default: standard)",
    )
    group.add_argument(
        "--checks", action=argparse.BooleanOptionalAction, default=None,
        help="check the attack after each evaluation: accuracy monotone in epsilon, black-box no "
        "stronger than white-box, twice the steps and restarts change nothing, a huge epsilon gives "
        "chance, every input in the ball (default: on)",
    )
    return group


def _add_fid(parser, extractor_default, fid_on=True):
    group = parser.add_argument_group("FID")
    group.add_argument(
        "--fid", action=argparse.BooleanOptionalAction, default=None,
        help=f"compute the FID of the decoder's samples against test images (default: {'on' if fid_on else 'off'})",
    )
    group.add_argument(
        "--fid-extractor", default=None, metavar="PATH",
        help=f"a saved Keras feature extractor (.keras) for FID, e.g. the fid_extractor.keras of an "
        f"earlier run, so that FIDs of several runs compare (default: {extractor_default})",
    )
    group.add_argument(
        "--inception-weights", default=None, metavar="PATH",
        help="a local InceptionV3 weights file (no top, e.g. Keras' "
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5): FID with the standard "
        "InceptionV3 pool3 features instead (slow on a CPU)",
    )
    return group


def _add_run(parser, out_default, figures_help, overwrite_help):
    group = parser.add_argument_group("run")
    group.add_argument("--out", default=None, metavar="DIR", help=f"output directory (default: {out_default})")
    group.add_argument("--overwrite", action="store_true", default=None, help=overwrite_help)
    group.add_argument(
        "--seed", type=_non_negative_int, default=None,
        help="seed of weight initialisation, shuffling, the models' noise, the probes and the attacks' "
        "random starts, an integer >= 0 (default: 0); the colours of ColorMNIST are always drawn with seed 0",
    )
    group.add_argument(
        "--figures", action=argparse.BooleanOptionalAction, default=None,
        help=f"draw the figures (default: on): {figures_help}",
    )
    group.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=None,
        help="0: results only; 1: Keras progress bars and a progress line per model (default); "
        "2: one line per epoch",
    )
    return group


def _add_training(group):
    group.add_argument(
        "--jit-compile", action=argparse.BooleanOptionalAction, default=None,
        help="compile training steps with XLA (default: Keras' 'auto', which is off on a CPU)",
    )
    group.add_argument(
        "--robustness-every-n-epochs", type=_non_negative_int, default=None, metavar="N",
        help="also attack the model after every N-th epoch of training, logged to TensorBoard and "
        "metrics.json (Figure 5, middle: training dynamics; default: 0, only after training)",
    )


def _add_mnist_data(parser):
    parser.add_argument(
        "--data", default=None, metavar="PATH",
        help="a local mnist.npz (default: $KERAS_AVAE_MNIST_PATH if set, else ../shared/data/mnist.npz "
        "next to the repository if it exists, else a download)",
    )


# ----------------------------------------------------------------- commands


def _train_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train and evaluate one model on ColorMNIST",
        formatter_class=_FORMATTER,
        description=(
            "Train one model on ColorMNIST (steps i-iii of Section 4), then evaluate it: test terms,\n"
            "reconstruction MSE, linear-probe accuracy of f^mu on digit and colour, adversarial\n"
            "accuracy at each --epsilons (RobustnessEvaluator), FID, and figures.\n\n"
            "Writes to --out: model.keras, config.json, metrics.json, summary.md, figures/,\n"
            "logs/ (TensorBoard: tensorboard --logdir <out>/logs) and, unless --fid-extractor or\n"
            "--inception-weights is given, fid_extractor.keras."
        ),
        epilog=(
            "examples:\n"
            "  keras-avae train --model avae --arch mlp\n"
            "  keras-avae train --model se --se-epsilon 0.2 --arch conv --epochs 5\n"
            "  keras-avae train --model avae_ss --pretrained runs/vae_mlp/model.keras\n"
            "  keras-avae train --model vae --scale paper --arch conv   # Appendix F, needs a GPU"
        ),
    )
    parser.add_argument(
        "--model", choices=constants.MODEL_NAMES, default=None,
        help="vae (eq. 2), avae (eq. 13), se (smooth encoder, Algorithm 2), seavae (eq. 35), "
        "avae_ss (eq. 34: post-trains a trained VAE without data) (default: avae)",
    )
    parser.add_argument(
        "--arch", choices=constants.ARCHITECTURES, default=None,
        help="networks of Appendix F: mlp (4 x 200 units) or conv (7-layer VGG) (default: mlp)",
    )
    _add_scale(parser, TRAIN_SCALES)
    _add_mnist_data(parser)
    parser.add_argument(
        "--pretrained", default=None, metavar="PATH",
        help="for --model avae_ss: the saved model (.keras) to post-train (default: train a VAE with "
        "the same settings first, in <out>/vae)",
    )
    _add_scale_fields(parser, TRAIN_SCALES, [field for field in _SIZE_HELP])
    group = _add_hyperparameters(parser)
    group.add_argument(
        "--se-epsilon", type=_non_negative_float, default=None, metavar="EPS",
        help=f"L-inf radius of the training attack of SE and SE-AVAE (default: {constants.SE_EPSILON}; "
        "Table 1 has 0.1 and 0.2)",
    )
    _add_choices(parser)
    attack = _add_attack(parser)
    attack.add_argument(
        "--robustness", action=argparse.BooleanOptionalAction, default=None,
        help="run the evaluation attack (default: on; the clean probe accuracy is always reported)",
    )
    _add_fid(parser, "a ColorMNIST classifier trained on the training images")
    group = _add_run(
        parser, "runs/<model>_<arch>",
        "reconstructions, samples, encode-decode chains (Figure 1), accuracy against epsilon",
        "replace a finished run in --out (its metrics.json) or an interrupted one (its backup/); "
        "without it, either stops the command with an error",
    )
    group.add_argument(
        "--resume", action="store_true", default=None,
        help="continue the interrupted run in --out (killed, or stopped with Ctrl-C) from its last completed "
        "epoch, backed up in <out>/backup after every epoch; with the same flags the result is that of an "
        "uninterrupted run",
    )
    _add_training(group)
    parser.set_defaults(handler="keras_avae.experiments.color_mnist:train")
    return parser


def _evaluate_parser(subparsers):
    defaults = constants.EVALUATE_DEFAULTS
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a saved model on ColorMNIST (robust accuracy, MSE, FID)",
        formatter_class=_FORMATTER,
        description=(
            "Steps ii and iii of Section 4 on a saved model: fit a linear probe per task (digit,\n"
            "colour) on the frozen f^mu of the training images, attack encoder + probe at each radius\n"
            "with the ensemble (PGD with each --losses, APGD-CE, targeted APGD-DLR, the black-box\n"
            "Square attack, each on the examples still robust), check the attack, and print the\n"
            "adversarial accuracy in % (Table 1's layout); also the reconstruction MSE and FID.\n"
            "--encoder evaluates any saved Keras encoder (.keras) or TF SavedModel mapping images\n"
            "to f^mu(x) instead (robustness only).\n\n"
            "Writes to --out: metrics.json, config.json, summary.md and figures/."
        ),
        epilog=(
            "examples:\n"
            "  keras-avae evaluate runs/avae_mlp/model.keras\n"
            "  keras-avae evaluate runs/vae_mlp/model.keras --attack-steps 20 --restarts 2 \\\n"
            "      --epsilons 0,0.1,0.2 --json runs/vae_mlp/robustness.json\n"
            "  keras-avae evaluate --encoder my_encoder_savedmodel/ --data-range 0,1"
        ),
    )
    parser.add_argument(
        "model_path", metavar="MODEL", nargs="?", default=None, help="a saved keras_avae model (.keras)"
    )
    parser.add_argument(
        "--encoder", default=None, metavar="PATH",
        help="instead of MODEL: a saved Keras encoder (.keras) or TF SavedModel folder mapping images "
        "to the representation f^mu(x), (batch, features)",
    )
    parser.add_argument(
        "--data-range", type=_data_range, default=None, metavar="LOW,HIGH",
        help="the range of the --encoder's inputs; attacks clip to it (default: 0,1, ColorMNIST's)",
    )
    _add_mnist_data(parser)
    parser.add_argument(
        "--train-size", type=_positive_int, metavar="N", default=defaults["train_size"],
        help="training images the probes are fitted on (default: %(default)s; 60000 is all)",
    )
    parser.add_argument(
        "--test-size", type=_positive_int, metavar="N", default=defaults["test_size"],
        help="test images for MSE, clean accuracy and FID (default: %(default)s; 10000 is all)",
    )
    parser.add_argument(
        "--attack-size", type=_positive_int, metavar="N", default=None,
        help="test images attacked, the first ones (default: all of --test-size)",
    )
    attack = _add_attack(parser)
    attack.add_argument(
        "--attack-steps", type=_positive_int, metavar="N", default=defaults["attack_steps"],
        help="PGD steps per start (default: %(default)s, Appendix F)",
    )
    attack.add_argument(
        "--restarts", type=_positive_int, metavar="N", default=defaults["restarts"],
        help="starts per loss, the first from x itself (default: %(default)s, Appendix F)",
    )
    attack.add_argument(
        "--batch-size", type=_positive_int, metavar="N", default=defaults["batch_size"],
        help="test images per attacked batch (default: %(default)s)",
    )
    for field in ("square_queries", "check_size"):
        attack.add_argument(
            "--" + field.replace("_", "-"), type=_positive_int, metavar="N", default=defaults[field],
            help=f"{_SIZE_HELP[field]} (default: %(default)s)",
        )
    group = _add_fid(parser, "a ColorMNIST classifier trained on the training images")
    group.add_argument(
        "--fid-samples", type=_positive_int, metavar="N", default=None,
        help=f"generated images per FID, against as many test images (default: {defaults['fid_samples']})",
    )
    group.add_argument(
        "--extractor-epochs", type=_positive_int, metavar="N", default=None,
        help=f"epochs of the ColorMNIST classifier trained as FID extractor (default: {defaults['extractor_epochs']})",
    )
    group = _add_run(
        parser, "<folder of MODEL>/evaluation", "reconstructions, samples, chains, accuracy against epsilon",
        "replace an earlier evaluation in --out (its metrics.json); without it, that stops the command with an error",
    )
    group.add_argument(
        "--model-name", default=None, metavar="NAME", help="row label of the table (default: the model's class name)"
    )
    group.add_argument(
        "--json", default=None, metavar="PATH",
        help="also write the robust accuracies, the checks, the per-example records and the attack "
        "settings to this JSON file (keras_avae.evaluation.report.to_document's layout)",
    )
    parser.set_defaults(handler="keras_avae.experiments.color_mnist:evaluate")
    return parser


def _table1_parser(subparsers):
    parser = subparsers.add_parser(
        "table1",
        help="Table 1: seven models x two architectures on ColorMNIST",
        formatter_class=_FORMATTER,
        description=(
            "Table 1 of Cemgil et al. (2020) on ColorMNIST: for each --arch, train and evaluate\n"
            f"the rows {', '.join(constants.TABLE1_ROW_LABELS)}\n"
            "(AVAE-SS post-trains the trained VAE without data). Columns: digit and colour accuracy\n"
            "at each radius, time factor (median seconds per training step relative to the VAE,\n"
            "measured in this run), reconstruction MSE (per pixel, 0..255 units) and FID.\n\n"
            "Writes to --out: table1.md, table1.json, figures/ (accuracy against epsilon, Figure 5\n"
            "right; encode-decode chains, Figure 1), fid_extractor.keras, and one run directory per\n"
            "row, <arch>/<row>/ (model.keras, config.json, metrics.json, logs/)."
        ),
        epilog=(
            "examples:\n"
            "  keras-avae reproduce table1                      # scale small: under an hour on 2 CPU cores\n"
            "  keras-avae reproduce table1 --arch mlp --rows VAE,AVAE,AVAE-SS\n"
            "  keras-avae reproduce table1 --scale paper --arch conv   # Appendix F, needs a GPU"
        ),
    )
    _add_arch_and_rows(parser, constants.TABLE1_ROW_LABELS, "AVAE-SS brings in VAE")
    _add_common_reproduction(parser, TABLE1_SCALES, "runs/table1_<scale>")
    parser.set_defaults(handler="keras_avae.experiments.table1:reproduce")
    return parser


def _add_arch_and_rows(parser, row_labels, brings_in):
    parser.add_argument(
        "--arch", type=_choices_list(constants.ARCHITECTURES, "architectures"), default=None,
        metavar="A1,A2", help="architectures, comma-separated: mlp, conv (default: mlp,conv)",
    )
    parser.add_argument(
        "--rows", type=_choices_list(row_labels, "rows"), default=None, metavar="R1,R2",
        help=f"rows to run, comma-separated, from {'; '.join(row_labels)} (default: all; {brings_in})",
    )


def _ablation_parser(subparsers):
    parser = subparsers.add_parser(
        "ablation",
        help="the study of the paper's open choices: one AVAE, AVAE-SS or SE per changed choice",
        formatter_class=_FORMATTER,
        description=(
            "The ablation study of the choices the paper leaves open (keras_avae.experiments.ablation):\n"
            "for each --arch, the VAE, the AVAE of Algorithm 1, one AVAE per changed choice (posterior\n"
            "sampling, joint coupling, sampled delusion, BatchNorm statistics), AVAE-SS from the VAE with\n"
            "each coupling, and SE_0.1 with each attack mode and BatchNorm setting, on one budget and one\n"
            "evaluation. Columns: digit and colour accuracy at each radius, shift ratio, class-centroid\n"
            "distance, MSE (both readings), time factor.\n\n"
            "Writes to --out: ablation.md, ablation.json, figures/ and one run directory per row."
        ),
        epilog=(
            "examples:\n"
            "  keras-avae reproduce ablation --arch conv          # scale small: about an hour on 2 CPU cores\n"
            "  keras-avae reproduce ablation --arch mlp --rows 'AVAE (Alg. 1),AVAE delusion=sample'"
        ),
    )
    _add_arch_and_rows(parser, constants.ABLATION_ROW_LABELS, "AVAE-SS rows bring in VAE")
    _add_common_reproduction(
        parser, ABLATION_SCALES, "runs/ablation_<scale>", epsilons=constants.ABLATION_EPSILONS, choices=False,
        fid_on=constants.ABLATION_FID,
    )
    parser.set_defaults(handler="keras_avae.experiments.ablation:reproduce")
    return parser


def _rho_sweep_parser(subparsers):
    parser = subparsers.add_parser(
        "rho-sweep",
        help="Figure 5 (left): AVAE adversarial accuracy against rho on ColorMNIST",
        formatter_class=_FORMATTER,
        description=(
            "Figure 5 (left) of Cemgil et al. (2020): train and evaluate one AVAE per --rhos and\n"
            "--arch on ColorMNIST, and plot its adversarial accuracy against rho, one line per radius.\n"
            "Same scales as table1; at --scale small the default six rho x two architectures take\n"
            "about half as long as table1.\n\n"
            "Writes to --out: rho_sweep.md, rho_sweep.json, figures/<arch>_accuracy_vs_rho_<task>.png\n"
            "and one run directory per model."
        ),
        epilog="example:\n  keras-avae reproduce rho-sweep --arch mlp --rhos 0.5,0.9,0.975,0.99",
    )
    parser.add_argument(
        "--arch", type=_choices_list(constants.ARCHITECTURES, "architectures"), default=None,
        metavar="A1,A2", help="architectures, comma-separated: mlp, conv (default: mlp,conv)",
    )
    parser.add_argument(
        "--rhos", type=_rhos, default=None, metavar="R1,R2,...",
        help=f"coupling strengths in (-1, 1) (default: {','.join(f'{r:g}' for r in constants.DEFAULT_RHOS)})",
    )
    _add_common_reproduction(parser, TABLE1_SCALES, "runs/rho_sweep_<scale>", rho=False, se=False)
    parser.set_defaults(handler="keras_avae.experiments.rho_sweep:reproduce")
    return parser


def _celeba_parser(subparsers):
    parser = subparsers.add_parser(
        "celeba",
        help="Tables 2 and 3: six models on the 17 CelebA tasks (needs CelebA and a GPU)",
        formatter_class=_FORMATTER,
        description=(
            "Tables 2 and 3 of Cemgil et al. (2020) on 64x64 CelebA with the convnet of Appendix F:\n"
            f"the rows {', '.join(constants.CELEBA_ROW_LABELS)} (SE^L: L PGD steps per\n"
            "training step), scored by linear probes per binary attribute at epsilon 0 and 0.1,\n"
            "time factor, MSE and FID (InceptionV3).\n\n"
            "CelebA must be prepared as a tensorflow-datasets folder (see keras_avae.datasets.celeba);\n"
            "without it the command stops at once with the loader's instructions.\n\n"
            "Writes to --out: table2.md, table3.md, celeba.json, figures/ and a run directory per row."
        ),
        epilog=(
            "example:\n"
            "  keras-avae reproduce celeba --data-dir ~/tensorflow_datasets \\\n"
            "      --inception-weights inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
        ),
    )
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR",
        help="tensorflow-datasets folder with the prepared celeb_a (default: $KERAS_AVAE_CELEBA_DIR, "
        "else tfds' default ~/tensorflow_datasets)",
    )
    parser.add_argument(
        "--rows", type=_choices_list(constants.CELEBA_ROW_LABELS, "rows"), default=None, metavar="R1,R2",
        help=f"rows to run, comma-separated, from {','.join(constants.CELEBA_ROW_LABELS)} (default: all; "
        "AVAE-SS brings in VAE)",
    )
    parser.add_argument(
        "--attributes", type=_choices_list(constants.CELEBA_ATTRIBUTES, "attributes"), default=None,
        metavar="A1,A2", help="tasks, comma-separated CelebA attributes of Table 3 (default: all 17)",
    )
    parser.add_argument(
        "--probe-train-size", type=_positive_int, default=None, metavar="N",
        help=f"training images the probes are fitted on ({_preset_values(CELEBA_SCALES, 'probe_train_size')})",
    )
    parser.add_argument(
        "--image-size", type=_positive_int, default=None, metavar="N",
        help=f"side of the images, a multiple of 16 ({_preset_values(CELEBA_SCALES, 'image_size')})",
    )
    _add_common_reproduction(
        parser, CELEBA_SCALES, "runs/celeba_<scale>", mnist=False, epsilons=constants.CELEBA_EPSILONS,
        fields=[field for field in _SIZE_HELP if field != "extractor_epochs"],
        extractor_default="InceptionV3 with the ImageNet weights, which Keras downloads",
    )
    parser.set_defaults(handler="keras_avae.experiments.celeba:reproduce")
    return parser


def _add_common_reproduction(
    parser, scales, out_default, rho=True, se=True, mnist=True, epsilons=constants.EPSILONS, fields=None,
    extractor_default="a ColorMNIST classifier trained on the training images, shared by all rows",
    choices=True, fid_on=True,
):
    _add_scale(parser, scales)
    if mnist:
        _add_mnist_data(parser)
    parser.add_argument(
        "--resume", action="store_true", default=None,
        help="load the rows whose run directory already holds a finished run with the same settings "
        "instead of running them again",
    )
    if fields is None:
        fields = [field for field in _SIZE_HELP if se or field != "train_attack_steps"]
    _add_scale_fields(parser, scales, fields)
    group = _add_hyperparameters(parser, rho=rho, rho_se=se)
    if se:
        group.add_argument(
            "--se-epsilon", type=_non_negative_float, default=None, metavar="EPS",
            help="L-inf radius of the SE rows' training attack, for rows that do not set their own "
            f"(default: {constants.SE_EPSILON})",
        )
    if choices:
        _add_choices(parser)
    _add_attack(parser, epsilons)
    _add_fid(parser, extractor_default, fid_on=fid_on)
    group = _add_run(
        parser, out_default, "the table's figures",
        "run again the rows whose run directory already holds a finished run (metrics.json); without it "
        "or --resume, such rows stop the command with an error before anything runs",
    )
    _add_training(group)


def build_parser():
    """The `keras-avae` argument parser, with the subcommands train, evaluate and reproduce."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=_FORMATTER,
        description=(
            "Train, evaluate and reproduce the experiments of Cemgil et al. (2020), \"The Autoencoding\n"
            "Variational Autoencoder\": VAE, AVAE, smooth encoder (SE), SE-AVAE and AVAE-SS on\n"
            "ColorMNIST and CelebA, scored by the adversarial accuracy of linear probes on the\n"
            "representation, reconstruction MSE and FID. Run `keras-avae COMMAND --help` for the flags."
        ),
        epilog=(
            "scales: every command has presets (--scale): 'tiny' for tests, 'small' for two CPU cores\n"
            "(the default), 'paper' for Appendix F's settings on a GPU; each size flag overrides its preset.\n"
            "outputs: a run directory with model.keras, config.json, metrics.json, summary.md, figures/\n"
            "and TensorBoard logs/ (tensorboard --logdir DIR)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {keras_avae.__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    _train_parser(subparsers)
    _evaluate_parser(subparsers)
    reproduce = subparsers.add_parser(
        "reproduce",
        help="reproduce a table or figure of the paper: table1, ablation, rho-sweep, celeba",
        formatter_class=_FORMATTER,
        description="Reproduce a result of the paper; run `keras-avae reproduce EXPERIMENT --help` for its flags.",
    )
    experiments = reproduce.add_subparsers(
        dest="experiment", required=True, metavar="EXPERIMENT", help="the result to reproduce"
    )
    _table1_parser(experiments)
    _ablation_parser(experiments)
    _rho_sweep_parser(experiments)
    _celeba_parser(experiments)
    _add_debug(parser, top=True)
    for child in _subparsers(parser):
        _add_debug(child)
    return parser


DEBUG_HELP = "on an error, show the Python traceback instead of the one-line message"


def _add_debug(parser, top=False):
    # Accepted before the command and after it; a subcommand's default must not reset the global flag.
    parser.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS, help=DEBUG_HELP)


def _subparsers(parser):
    """Every parser below `parser` (the commands and the experiments of `reproduce`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield child
                yield from _subparsers(child)


def settings(args):
    """The settings a parsed command line passes to its library function (None: left to the default)."""
    return {
        key: value for key, value in vars(args).items() if key not in ("command", "experiment", "handler", "debug")
    }


def handler(args):
    """The library function of a parsed command line, imported now (it loads TensorFlow)."""
    module, _, function = args.handler.partition(":")
    return getattr(importlib.import_module(module), function)


def run(argv=None):
    """Parses `argv` (default `sys.argv[1:]`), runs the command and returns its result."""
    args = build_parser().parse_args(argv)
    return handler(args)(settings(args))


USER_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile)
"""What bad input raises: a bad setting or file (ValueError; a corrupt .npz or .keras), a missing,
existing or unreadable file or a run directory in use (OSError: FileNotFoundError, FileExistsError,
PermissionError, ...). `main` prints them in one line; other exceptions are bugs and keep their traceback."""


def error_line(error):
    """The first line of `error`'s message (its type's name if it has none)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def main(argv=None):
    """The `keras-avae` console script: runs the command; returns the exit status.

    A user error (`USER_ERRORS`: a bad setting, a missing or corrupt file, a run directory
    that is in use or holds a finished run) is printed as one line,
    `keras-avae: error: <message>`, on stderr, with status 1; flag errors are argparse's
    (status 2). Ctrl-C prints one line and returns 130; the epochs `train` finished are
    kept for `--resume`. With `--debug` both are raised with their traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        handler(args)(settings(args))
    except KeyboardInterrupt:
        if args.debug:
            raise
        resume = " (run it again with --resume to continue from the last finished epoch)" if args.command == "train" else ""
        print(f"{PROG}: interrupted{resume}", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"{PROG}: error: {error_line(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
