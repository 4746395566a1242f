"""`keras-avae`: train, evaluate and reproduce the experiments of Cemgil et al. (2020) from the shell.

    keras-avae train --model avae --arch mlp                 one model on ColorMNIST
    keras-avae evaluate runs/avae_mlp/model.keras            robust accuracy, MSE, FID of a saved model
    keras-avae reproduce table1 --arch mlp,conv              Table 1
    keras-avae reproduce ablation --arch mlp,conv            the paper's open choices
    keras-avae reproduce rho-sweep --rhos 0.5,0.9,0.975      Figure 5, left
    keras-avae reproduce learning-curve --model avae         Figure 5, middle (one model)
    keras-avae reproduce compare-curves --curves A,B         Figure 5, middle (curves side by side)
    keras-avae reproduce celeba --data-dir DIR               Tables 2 and 3 (needs CelebA, a GPU)

Every command writes a run directory (model.keras, config.json,
metrics.json, summary.md, figures/, logs/ for TensorBoard) and prints its
results. Each command's flags are generated from the fields of its settings
class (`keras_avae.experiments.settings`: name, type, range check, help and
default), so a flag is validated once, by the same check as the library
function's argument; a flag left out keeps the default or its `--scale` preset.

Example:
    from keras_avae import cli
    metrics = cli.run(["train", "--model", "vae", "--scale", "tiny"])
"""

import argparse
import dataclasses
import importlib
import sys
import zipfile

import keras_avae
from keras_avae import console, constants
from keras_avae.experiments import settings as settings_lib
from keras_avae.experiments.scale import BUDGET_FIELDS, BUDGET_GROUP

# Only light modules above: `keras-avae --help` imports no TensorFlow. Each command's library
# function (its `handler`, "module:function") is imported when the command runs.

PROG = "keras-avae"

_FORMATTER = argparse.RawDescriptionHelpFormatter

GROUP_ORDER = (
    BUDGET_GROUP, settings_lib.HYPERPARAMETERS, settings_lib.CHOICES, settings_lib.ATTACK, settings_lib.FID_GROUP,
    settings_lib.RUN,
)
"""The order of the `--help` sections (a command's own options come first)."""


# ---------------------------------------------------------- flags from fields


def flag_type(kind, name):
    """The argparse type of a setting: its kind's `parse`, then its `check` (the one validation)."""

    def parse(text):
        try:
            value = kind.parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {kind.expects}, got {text!r}") from None
        try:
            return kind.check(value, name)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _show(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return ",".join(_show(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key} {_show(item)}" for key, item in value.items())
    return f"{value:g}" if isinstance(value, float) else str(value)


def _preset_values(scales, name):
    def show(value):
        if value is None:
            return "all" if name.endswith("_size") else "each row's own"
        return _show(value)

    return "; ".join(f"{preset}: {show(getattr(scale, name))}" for preset, scale in scales.items())


def _default(field):
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def _help(cls, field):
    """A flag's help: the command's own text (`HELP`), or the field's with its default or presets."""
    if field.name in getattr(cls, "HELP", {}):
        return cls.HELP[field.name]
    text = field.metadata["help"]
    scales = getattr(cls, "SCALES", None)
    if scales and field.name in BUDGET_FIELDS and field.metadata["group"] == BUDGET_GROUP:
        return f"{text} ({_preset_values(scales, field.name)})"
    default = _default(field)
    if field.metadata["kind"].action == "switch" or default is None or "(default:" in text:
        return text
    return f"{text} (default: {_show(default)})"


def add_setting_flags(parser, cls):
    """Adds a flag for every field of the settings class `cls` that has one (not in `cls.HIDDEN`),
    generated from the field: name, type and check, metavar, choices, help with its default."""
    groups = {None: parser}
    for group in GROUP_ORDER:
        groups[group] = parser.add_argument_group(group)
    hidden = getattr(cls, "HIDDEN", ())
    order = (None,) + GROUP_ORDER
    for field in sorted(dataclasses.fields(cls), key=lambda field: order.index(field.metadata.get("group"))):
        metadata = field.metadata
        if not metadata.get("flag") or field.name in hidden:
            continue
        target = groups[metadata["group"]]
        kind = metadata["kind"]
        text = _help(cls, field).replace("%", "%%")
        if field.name == "scale":
            presets = " ".join(f"'{name}': {scale.description}" for name, scale in cls.SCALES.items())
            target.add_argument(
                "--scale", choices=list(cls.SCALES), default=None,
                help=f"preset of the sizes and budgets below (default: {_show(_default(field))}). {presets}".replace("%", "%%"),
            )
        elif metadata["positional"]:
            target.add_argument(field.name, metavar=kind.metavar, nargs="?", default=None, type=flag_type(kind, field.name), help=text)
        elif kind.action == "switch":
            target.add_argument(_flag(field.name), action="store_true", default=None, help=text)
        elif kind.action == "toggle":
            target.add_argument(_flag(field.name), action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            target.add_argument(
                _flag(field.name), type=flag_type(kind, field.name), default=None, metavar=kind.metavar,
                choices=kind.choices, help=text,
            )
    for group in GROUP_ORDER:  # argparse prints empty sections' titles too
        if not groups[group]._group_actions:
            parser._action_groups.remove(groups[group])


def _flag(name):
    return "--" + name.replace("_", "-")


# ----------------------------------------------------------------- commands

COMMANDS = {
    "train": (
        settings_lib.TrainSettings,
        "keras_avae.experiments.color_mnist:train",
        "train and evaluate one model on ColorMNIST",
        "Train one model on ColorMNIST (steps i-iii of Section 4), then evaluate it: test terms,\n"
        "reconstruction MSE, linear-probe accuracy of f^mu on digit and colour, adversarial\n"
        "accuracy at each --epsilons (AdversarialEvaluator), FID, and figures.\n\n"
        "Writes to --out: model.keras, config.json, metrics.json, summary.md, figures/,\n"
        "logs/ (TensorBoard: tensorboard --logdir <out>/logs) and, unless --fid-extractor or\n"
        "--inception-weights is given, fid_extractor.keras.",
        "examples:\n"
        "  keras-avae train --model avae --arch mlp\n"
        "  keras-avae train --model se --se-epsilon 0.2 --arch conv --epochs 5\n"
        "  keras-avae train --model avae_ss --pretrained runs/vae_mlp/model.keras\n"
        "  keras-avae train --model vae --scale paper --arch conv   # Appendix F, needs a GPU",
    ),
    "evaluate": (
        settings_lib.EvaluateSettings,
        "keras_avae.experiments.color_mnist:evaluate",
        "evaluate a saved model on ColorMNIST (robust accuracy, MSE, FID)",
        "Steps ii and iii of Section 4 on a saved model: fit a linear probe per task (digit,\n"
        "colour) on the frozen f^mu of the training images, attack encoder + probe at each radius\n"
        "with the ensemble (PGD with each --losses, APGD-CE, targeted APGD-DLR, the black-box\n"
        "Square attack, each on the examples still robust), check the attack, and print the\n"
        "adversarial accuracy in % (Table 1's layout); also the reconstruction MSE and FID.\n"
        "--encoder evaluates any saved Keras encoder (.keras) or TF SavedModel mapping images\n"
        "to f^mu(x) instead (robustness only).\n\n"
        "Writes to --out: metrics.json, config.json, summary.md and figures/.",
        "examples:\n"
        "  keras-avae evaluate runs/avae_mlp/model.keras\n"
        "  keras-avae evaluate runs/vae_mlp/model.keras --attack-steps 20 --restarts 2 \\\n"
        "      --epsilons 0,0.1,0.2 --json runs/vae_mlp/robustness.json\n"
        "  keras-avae evaluate --encoder my_encoder_savedmodel/ --data-range 0,1",
    ),
}
"""The top-level commands: name -> (settings class, library function, help, description, epilog)."""

EXPERIMENTS = {
    "table1": (
        settings_lib.Table1Settings,
        "keras_avae.experiments.table1:reproduce",
        "Table 1: seven models x two architectures on ColorMNIST",
        "Table 1 of Cemgil et al. (2020) on ColorMNIST: for each --arch, train and evaluate\n"
        f"the rows {', '.join(constants.TABLE1_ROW_LABELS)}\n"
        "(AVAE-SS post-trains the trained VAE without data). Columns: digit and colour accuracy\n"
        "at each radius, time factor (median seconds per training step relative to the VAE,\n"
        "measured in this run), reconstruction MSE (per pixel, 0..255 units) and FID.\n\n"
        "Writes to --out: table1.md, table1.json, figures/ (accuracy against epsilon, Figure 5\n"
        "right; encode-decode chains, Figure 1), fid_extractor.keras, and one run directory per\n"
        "row, <arch>/<row>/ (model.keras, config.json, metrics.json, logs/).",
        "examples:\n"
        "  keras-avae reproduce table1                      # scale small, sized for a CPU\n"
        "  keras-avae reproduce table1 --arch mlp --rows VAE,AVAE,AVAE-SS\n"
        "  keras-avae reproduce table1 --scale paper --arch conv   # Appendix F, needs a GPU",
    ),
    "ablation": (
        settings_lib.AblationSettings,
        "keras_avae.experiments.ablation:reproduce",
        "the study of the paper's open choices: one AVAE, AVAE-SS or SE per changed choice",
        "The ablation study of the choices the paper leaves open (keras_avae.experiments.ablation):\n"
        "for each --arch, the VAE, the AVAE of Algorithm 1, one AVAE per changed choice (posterior\n"
        "sampling, joint coupling, sampled delusion, BatchNorm statistics), AVAE-SS from the VAE with\n"
        "each coupling, and SE_0.1 with each attack mode and BatchNorm setting, on one budget and one\n"
        "evaluation. Columns: digit and colour accuracy at each radius, shift ratio, class-centroid\n"
        "distance, MSE (both readings), time factor.\n\n"
        "Writes to --out: ablation.md, ablation.json, figures/ and one run directory per row.",
        "examples:\n"
        "  keras-avae reproduce ablation --arch conv          # scale small, sized for a CPU\n"
        "  keras-avae reproduce ablation --arch mlp --rows 'AVAE (Alg. 1),AVAE delusion=sample'",
    ),
    "rho-sweep": (
        settings_lib.RhoSweepSettings,
        "keras_avae.experiments.rho_sweep:reproduce",
        "Figure 5 (left): AVAE adversarial accuracy against rho on ColorMNIST",
        "Figure 5 (left) of Cemgil et al. (2020): train and evaluate one AVAE per --rhos and\n"
        "--arch on ColorMNIST, and plot its adversarial accuracy against rho, one line per radius.\n"
        "Same scales as table1 (the wall times of each are on the documentation's speed page).\n\n"
        "Writes to --out: rho_sweep.md, rho_sweep.json, figures/<arch>_accuracy_vs_rho_<task>.png\n"
        "and one run directory per model.",
        "example:\n  keras-avae reproduce rho-sweep --arch mlp --rhos 0.5,0.9,0.975,0.99",
    ),
    "learning-curve": (
        settings_lib.LearningCurveSettings,
        "keras_avae.experiments.learning_curve:reproduce",
        "Figure 5 (middle): robust accuracy against training steps of one model on ColorMNIST",
        "Figure 5 (middle) of Cemgil et al. (2020): train one model on ColorMNIST to the budget of\n"
        "--scale (or --epochs), save a checkpoint after each of --checkpoint-epochs and the last epoch,\n"
        "and evaluate every checkpoint (read back from its file, so the trained model is untouched):\n"
        "clean and adversarial probe accuracy under the lighter --curve-* attack, reconstruction MSE\n"
        "and the shift ratio; the last checkpoint also under the full evaluation (--attacks,\n"
        "--attack-steps, --restarts). Evaluation runs alongside training, after each checkpoint's\n"
        "epoch is backed up; --resume continues both after an interruption.\n\n"
        "Writes to --out: learning_curve.md, learning_curve.json, config.json, checkpoints/,\n"
        "points/ (one JSON per evaluation), figures/learning_curve_<task>.png (one line per radius,\n"
        "the paper's Table 1 value marked at the paper's budget), figures/learning_curve_quality.png\n"
        "(clean accuracy, MSE, shift ratio) and logs/ (TensorBoard).",
        "examples:\n"
        "  keras-avae reproduce learning-curve --model avae --arch conv --scale paper --attack-size 1000\n"
        "  keras-avae reproduce learning-curve --model vae --arch conv --scale paper --epochs 20 --resume",
    ),
    "compare-curves": (
        settings_lib.CurveComparisonSettings,
        "keras_avae.experiments.curve_comparison:reproduce",
        "Figure 5 (middle): learning curves of several models side by side",
        "Figure 5 (middle) of Cemgil et al. (2020): read the learning curves that `reproduce\n"
        "learning-curve` wrote (--curves, one folder each) and draw, per task and radius, every model's\n"
        "robust accuracy against its training steps on one plot (each curve's lighter attack as a line,\n"
        "its last checkpoint under the full evaluation as a large marker, the paper's Table 1 value as\n"
        "a star). Trains nothing, so a curve still running is compared as far as it has come.\n\n"
        "Writes to --out: curve_comparison.md, curve_comparison.json and\n"
        "figures/curves_<task>_eps<radius>.png.",
        "example:\n"
        "  keras-avae reproduce compare-curves --curves runs/curve_avae,runs/curve_vae,runs/curve_se \\\n"
        "      --out runs/figure5_middle",
    ),
    "celeba": (
        settings_lib.CelebASettings,
        "keras_avae.experiments.celeba:reproduce",
        "Tables 2 and 3: six models on the 17 CelebA tasks (needs CelebA and a GPU)",
        "Tables 2 and 3 of Cemgil et al. (2020) on 64x64 CelebA with the convnet of Appendix F:\n"
        f"the rows {', '.join(constants.CELEBA_ROW_LABELS)} (SE^L: L PGD steps per\n"
        "training step), scored by linear probes per binary attribute at epsilon 0 and 0.1,\n"
        "time factor, MSE and FID (InceptionV3).\n\n"
        "CelebA must be prepared as a tensorflow-datasets folder (see keras_avae.datasets.celeba);\n"
        "without it the command stops at once with the loader's instructions.\n\n"
        "Writes to --out: table2.md, table3.md, celeba.json, figures/ and a run directory per row.",
        "example:\n"
        "  keras-avae reproduce celeba --data-dir ~/tensorflow_datasets \\\n"
        "      --inception-weights inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
}
"""The experiments of `keras-avae reproduce`, as `COMMANDS`."""


def _add_command(subparsers, name, spec):
    cls, handler_path, help_text, description, epilog = spec
    parser = subparsers.add_parser(
        name, help=help_text, formatter_class=_FORMATTER, description=description, epilog=epilog
    )
    add_setting_flags(parser, cls)
    parser.set_defaults(handler=handler_path, settings_class=cls)
    return parser


def build_parser():
    """The `keras-avae` argument parser, with the subcommands train, evaluate and reproduce."""
    return build_parsers()[()]


def build_parsers():
    """The `keras-avae` parser and each subcommand's, by path: `()`, `("train",)`,
    `("reproduce",)`, `("reproduce", "table1")`, ... (argparse lists a parser's subparsers only
    through private attributes, so they are kept here as they are made)."""
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
            "scales: every command has presets (--scale): 'tiny' for tests, 'small' sized for a CPU\n"
            "(the default), 'medium' for all 60,000 training images on a CPU, 'paper' for Appendix F's settings\n"
            "on a GPU; each size flag overrides its preset.\n"
            "outputs: a run directory with model.keras, config.json, metrics.json, summary.md, figures/\n"
            "and TensorBoard logs/ (tensorboard --logdir DIR)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {keras_avae.__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    parsers = {(): parser}
    for name, spec in COMMANDS.items():
        parsers[(name,)] = _add_command(subparsers, name, spec)
    reproduce = subparsers.add_parser(
        "reproduce",
        help="reproduce a table or figure of the paper: table1, ablation, rho-sweep, learning-curve, compare-curves, celeba",
        formatter_class=_FORMATTER,
        description="Reproduce a result of the paper; run `keras-avae reproduce EXPERIMENT --help` for its flags.",
    )
    parsers[("reproduce",)] = reproduce
    experiments = reproduce.add_subparsers(
        dest="experiment", required=True, metavar="EXPERIMENT", help="the result to reproduce"
    )
    for name, spec in EXPERIMENTS.items():
        parsers[("reproduce", name)] = _add_command(experiments, name, spec)
    for path, child in parsers.items():
        _add_debug(child, top=path == ())
    return parsers


DEBUG_HELP = (
    "on an error, show the Python traceback instead of the one-line message; also show TensorFlow's "
    "log lines and Python warnings in full"
)


def _add_debug(parser, top=False):
    # Accepted before the command and after it; a subcommand's default must not reset the global flag.
    parser.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS, help=DEBUG_HELP)


def settings(args):
    """The settings a parsed command line passes to its library function (None: left to the default)."""
    return {
        key: value for key, value in vars(args).items()
        if key not in ("command", "experiment", "handler", "settings_class", "debug")
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

    TensorFlow's C++ log lines are off and Python warnings are one line each
    (`keras_avae.console`), unless `--debug` is given; progress bars stay.
    """
    args = build_parser().parse_args(argv)
    with console.quiet(active=not args.debug) as level_set_here:
        return _run_main(args, level_set_here)


def _run_main(args, level_set_here):
    try:
        with console.native_log_filtered(level_set_here):
            function = handler(args)
        function(settings(args))
    except KeyboardInterrupt:
        if args.debug:
            raise
        resume = " (run it again with --resume to continue from the last finished epoch)" if args.command == "train" else ""
        print(f"{PROG}: interrupted{resume}", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug or not (isinstance(error, USER_ERRORS) or is_worker_failure(error)):
            raise
        print(f"{PROG}: error: {error_line(error)}", file=sys.stderr)
        return 1
    return 0


WORKER_FAILURES = ("UnavailableError", "DeadlineExceededError", "AbortedError")
"""TensorFlow's errors (`tf.errors`) when a worker of a multi-worker job stops or cannot be reached:
the others fail with one of these, which names the worker (a fault, not a bug: one line, status 1;
`--resume` continues the run)."""


def is_worker_failure(error):
    """Whether `error` is a TensorFlow error of a lost worker (`WORKER_FAILURES`), told by name so this
    module imports no TensorFlow."""
    return type(error).__module__.startswith("tensorflow") and type(error).__name__ in WORKER_FAILURES


if __name__ == "__main__":
    sys.exit(main())
