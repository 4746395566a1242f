"""Adversarial accuracy of a saved model's representation on ColorMNIST, as in Table 1.

Step iii of the evaluation protocol of Cemgil et al. (2020), Section 4, on a
model saved by `examples/train_color_mnist.py` (or any keras_avae `.keras`
file): freeze the encoder, train one linear probe per task (digit, colour) on
its mean f^mu, attack encoder + probe with L-inf PGD (CleverHans) at each
radius, and print the accuracies in percent (epsilon 0 is the clean
accuracy). See `keras_avae.callbacks.RobustnessEvaluator` for the attack:
every start is run with cross-entropy and with the Carlini-Wagner margin, and
an example counts as robust only if it survives all of them.

The defaults follow Appendix F (40 PGD steps, 10 restarts) on the first 10000
training and 2000 test images; `--train-size 60000 --test-size 10000` uses the
full splits, as the paper does.

Examples:
    python examples/evaluate_robustness.py runs/avae_mlp/model.keras
    python examples/evaluate_robustness.py runs/vae_mlp/model.keras --attack-steps 20 --restarts 2 \\
        --epsilons 0,0.1,0.2 --json runs/vae_mlp/robustness.json --sanity-check
"""

import argparse
import importlib.util
import math
import sys
import time
from pathlib import Path

import keras

import keras_avae  # noqa: F401  (registers the model classes for load_model)
from keras_avae.callbacks import robustness
from keras_avae.datasets.color_mnist import MNIST_PATH_ENV_VAR


def _load_training_example():
    """examples/train_color_mnist.py, for its data loading (one definition of the data path rules)."""
    path = Path(__file__).resolve().with_name("train_color_mnist.py")
    spec = importlib.util.spec_from_file_location("train_color_mnist", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_training_example = _load_training_example()
resolve_data_path = _training_example.resolve_data_path
load_data = _training_example.load_data

DEFAULT_TRAIN_SIZE = 10000
DEFAULT_TEST_SIZE = 2000


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _epsilons(text):
    try:
        values = tuple(float(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers, got {text!r}") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"must be finite numbers >= 0, got {text!r}")
    return values


def _losses(text):
    names = tuple(item.strip() for item in text.split(",") if item.strip())
    unknown = [name for name in names if name not in robustness.LOSSES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated names from {', '.join(robustness.LOSSES)}, got {text!r}"
        )
    return names


def build_parser():
    parser = argparse.ArgumentParser(
        description=(
            "Adversarial accuracy (Table 1 of Cemgil et al., 2020) of linear probes on the "
            "posterior mean f^mu of a saved keras_avae model, on ColorMNIST."
        ),
    )
    parser.add_argument("model_path", help="A saved model, e.g. runs/avae_mlp/model.keras.")
    parser.add_argument(
        "--data", default=None,
        help=(
            f"Path of a local mnist.npz. Default: ${MNIST_PATH_ENV_VAR} if set, else "
            "../shared/data/mnist.npz from the repository root if it exists, else a download."
        ),
    )
    parser.add_argument(
        "--train-size", type=_positive_int, default=DEFAULT_TRAIN_SIZE,
        help="Training images the probes are fitted on (default: %(default)s).",
    )
    parser.add_argument(
        "--test-size", type=_positive_int, default=DEFAULT_TEST_SIZE,
        help="Test images that are attacked (default: %(default)s).",
    )
    parser.add_argument(
        "--epsilons", type=_epsilons, default=robustness.DEFAULT_EPSILONS,
        help="Comma-separated L-inf radii, pixels in [0, 1] (default: 0,0.1,0.2).",
    )
    parser.add_argument(
        "--attack-steps", type=_positive_int, default=robustness.DEFAULT_ATTACK_STEPS,
        help="PGD steps per start (default: %(default)s, Appendix F).",
    )
    parser.add_argument(
        "--restarts", type=_positive_int, default=robustness.DEFAULT_RESTARTS,
        help="Starts per loss, the first from x itself (default: %(default)s, Appendix F).",
    )
    parser.add_argument(
        "--losses", type=_losses, default=robustness.DEFAULT_LOSSES,
        help="Comma-separated attack losses (default: cross_entropy,margin).",
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, default=robustness.DEFAULT_BATCH_SIZE,
        help="Test images per attacked batch (default: %(default)s).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the probes and random starts (default: %(default)s).")
    parser.add_argument("--model-name", default=None, help="Row label of the table. Default: the model's class name.")
    parser.add_argument("--json", default=None, help="Also write the results and settings to this JSON file.")
    parser.add_argument(
        "--sanity-check", action="store_true",
        help="Also check that a radius spanning the data range gives chance accuracy and that "
        "4x more PGD steps do not change the numbers (slower).",
    )
    return parser


def main(argv=None):
    """Runs the evaluation; returns `results[task][epsilon]` (accuracies in [0, 1])."""
    args = build_parser().parse_args(argv)
    model = keras.models.load_model(args.model_path)
    data_path = resolve_data_path(args.data)
    train_data, test_data = load_data(data_path, args.train_size, args.test_size)
    evaluator = robustness.RobustnessEvaluator(
        train_data,
        test_data,
        epsilons=args.epsilons,
        attack_steps=args.attack_steps,
        restarts=args.restarts,
        batch_size=args.batch_size,
        losses=args.losses,
        seed=args.seed,
        verbose=0,
    )
    model_name = args.model_name or type(model).__name__
    start = time.perf_counter()
    results = evaluator.evaluate(model)
    seconds = time.perf_counter() - start

    print(
        f"\n{model_name} ({args.model_path}): linear probes on f^mu fitted on {len(train_data[0])} "
        f"training images, attacked on {len(test_data[0])} test images with L-inf PGD, "
        f"{args.attack_steps} steps x {args.restarts} starts x losses {', '.join(args.losses)}; "
        "adversarial accuracy in %:\n"
    )
    print(robustness.to_markdown(results, model_name=model_name))
    print(f"Evaluated in {seconds:.1f} s.")
    if args.sanity_check:
        report = evaluator.sanity_check(model)
        print("Sanity checks passed." if report["passed"] else "Sanity checks FAILED:\n  " + "\n  ".join(report["problems"]))
    if args.json:
        config = {**evaluator.get_config(), "model_path": str(args.model_path), "data_path": data_path, "seconds": seconds}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(robustness.to_json(results, model_name=model_name, config=config) + "\n")
        print(f"Wrote {args.json}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
