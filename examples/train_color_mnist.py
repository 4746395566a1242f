"""Train a VAE or AVAE on ColorMNIST; report test reconstruction error and probe accuracy.

Steps i and ii of the evaluation protocol of Cemgil et al. (2020), Section 4:
train an encoder-decoder pair without labels, then freeze the encoder and fit
a linear classifier on the posterior mean f^mu for each task (digit, colour).
Step iii, the PGD attack, is not run here.

The reconstruction error is the mean over test images of the per-image sum of
squared errors between x and g(f^mu(x)), reported with pixels in [0, 1] and
again in the [0, 255] scale (255**2 times larger).

`--scale small` (the default) trains the MLP on 10000 images for a few
minutes on two CPU cores; `--scale paper` selects the full data set and the
paper's learning rate 1e-4 (Appendix F). Flags given explicitly override the
scale's values.

Examples:
    python examples/train_color_mnist.py --model avae --arch mlp
    python examples/train_color_mnist.py --model vae --arch conv --epochs 3
    python examples/train_color_mnist.py --model avae --arch conv --scale paper

Writes `model.keras` and `metrics.json` to `--out` (default
`runs/<model>_<arch>`, relative to the working directory).
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np

import keras_avae
from keras_avae import architectures, probes
from keras_avae.datasets import color_mnist
from keras_avae.datasets.color_mnist import MAX_PIXEL_VALUE, MNIST_PATH_ENV_VAR

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST_PATH = REPO_ROOT.parent / "shared" / "data" / "mnist.npz"
"""The project's local MNIST copy, used when neither `--data` nor the env var is set."""

MODELS = {"vae": keras_avae.VAE, "avae": keras_avae.AVAE}
ARCHITECTURES = {"mlp": architectures.mlp, "conv": architectures.conv}

# Per-scale defaults of the flags that the scale selects. The paper states the
# learning rate (Appendix F) but not the number of epochs; 100 is our choice.
SCALES = {
    "small": {"train_size": 10000, "test_size": 2000, "epochs": 50, "learning_rate": 1e-3},
    "paper": {"train_size": 60000, "test_size": 10000, "epochs": 100, "learning_rate": 1e-4},
}

DEFAULT_BATCH_SIZE = 64
DEFAULT_RHO = 0.975  # Section 4: "the coupling strengths are rho = 0.975".
DEFAULT_LATENT_DIM = 64  # Section 4: "In all models, we use a latent space dimension of 64".
DEFAULT_SEED = 0
# Colours are drawn with this seed for every run, so runs with different
# `--seed` are scored on the same images.
DATA_SEED = 0
EVAL_BATCH_SIZE = 256


# ------------------------------------------------------------------ arguments


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def build_parser():
    """The command-line interface; scale-dependent flags default to None (see `SCALES`)."""
    parser = argparse.ArgumentParser(
        description=(
            "Train a VAE or AVAE on ColorMNIST, then report test reconstruction error and "
            "the linear-probe accuracy of the posterior mean f^mu on digit and colour."
        ),
    )
    parser.add_argument("--model", choices=sorted(MODELS), default="avae", help="Model to train (default: %(default)s).")
    parser.add_argument(
        "--arch", choices=sorted(ARCHITECTURES), default="mlp",
        help="Encoder/decoder networks of Appendix F (default: %(default)s).",
    )
    parser.add_argument(
        "--scale", choices=sorted(SCALES), default="small",
        help=(
            "Preset for --train-size, --test-size, --epochs and --learning-rate: "
            + "; ".join(
                f"{name}: " + ", ".join(f"{key}={value}" for key, value in preset.items())
                for name, preset in SCALES.items()
            )
            + " (default: %(default)s)."
        ),
    )
    parser.add_argument(
        "--data", default=None,
        help=(
            f"Path of a local mnist.npz. Default: ${MNIST_PATH_ENV_VAR} if set, else "
            "../shared/data/mnist.npz from the repository root if it exists, else a download."
        ),
    )
    parser.add_argument(
        "--out", default=None,
        help="Output directory for model.keras and metrics.json. Default: runs/<model>_<arch>.",
    )
    parser.add_argument("--epochs", type=_positive_int, default=None, help="Training epochs. Default: from --scale.")
    parser.add_argument(
        "--train-size", type=_positive_int, default=None,
        help="Number of training images (the first ones of the split). Default: from --scale.",
    )
    parser.add_argument(
        "--test-size", type=_positive_int, default=None,
        help="Number of test images (the first ones of the split). Default: from --scale.",
    )
    parser.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE, help="Images per training step (default: %(default)s).")
    parser.add_argument(
        "--learning-rate", type=_positive_float, default=None,
        help="Adam learning rate (the paper uses 1e-4). Default: from --scale.",
    )
    parser.add_argument(
        "--rho", type=float, default=DEFAULT_RHO,
        help="AVAE coupling strength in (-1, 1); ignored for --model vae (default: %(default)s).",
    )
    parser.add_argument(
        "--obs-var", type=_positive_float, default=None,
        help="Variance v of the Gaussian likelihood N(x; g(z), v I). Default: the model's default (0.5).",
    )
    parser.add_argument("--latent-dim", type=_positive_int, default=DEFAULT_LATENT_DIM, help="Size of z (default: %(default)s).")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED,
        help=(
            "Seed of weight initialisation, shuffling, the model's noise and the probes "
            "(default: %(default)s). The colours of the data are always drawn with seed 0."
        ),
    )
    parser.add_argument(
        "--jit-compile", action=argparse.BooleanOptionalAction, default=None,
        help="Compile training steps with XLA. Default: Keras' 'auto'.",
    )
    return parser


def parse_args(argv=None):
    """Parses `argv` and fills the scale-dependent flags left unset from `SCALES`."""
    args = build_parser().parse_args(argv)
    for key, value in SCALES[args.scale].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is None:
        args.out = os.path.join("runs", f"{args.model}_{args.arch}")
    return args


def resolve_data_path(data=None):
    """The MNIST file to read: `data`, else the env var, else the shared copy, else None.

    None makes `color_mnist` download MNIST with Keras.
    """
    if data:
        return os.fspath(data)
    if os.environ.get(MNIST_PATH_ENV_VAR):
        return os.environ[MNIST_PATH_ENV_VAR]
    if SHARED_MNIST_PATH.exists():
        return os.fspath(SHARED_MNIST_PATH)
    return None


# ----------------------------------------------------------------- the steps


def load_data(path, train_size, test_size):
    """The first `train_size` training and `test_size` test images of ColorMNIST."""
    train = color_mnist("train", path=path, seed=DATA_SEED, limit=train_size)
    test = color_mnist("test", path=path, seed=DATA_SEED, limit=test_size)
    return train, test


def build_model(args, input_shape):
    """A compiled, built VAE or AVAE with the networks of `args.arch`."""
    encoder, decoder = ARCHITECTURES[args.arch](latent_dim=args.latent_dim, input_shape=input_shape)
    kwargs = {"seed": args.seed}
    if args.obs_var is not None:
        kwargs["obs_var"] = args.obs_var
    if args.model == "avae":
        kwargs["rho"] = args.rho
    model = MODELS[args.model](encoder, decoder, **kwargs)
    jit_compile = "auto" if args.jit_compile is None else args.jit_compile
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), jit_compile=jit_compile)
    model.build((None,) + tuple(input_shape))
    return model


def train(model, x_train, args):
    """Fits `model` with Keras progress bars; returns the last epoch's terms and the seconds taken."""
    start = time.perf_counter()
    history = model.fit(x_train, epochs=args.epochs, batch_size=args.batch_size, verbose=1)
    seconds = time.perf_counter() - start
    return {name: float(values[-1]) for name, values in history.history.items()}, seconds


def reconstruction_error(model, x, batch_size=EVAL_BATCH_SIZE):
    """Mean over images of the per-image sum of squared errors of g(f^mu(x)), pixels in [0, 1]."""
    per_image = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        x_mean = keras.ops.convert_to_numpy(model.reconstruct(batch))
        squared = np.square(x_mean.astype(np.float64) - batch.astype(np.float64))
        per_image.append(squared.reshape(len(batch), -1).sum(axis=1))
    return float(np.concatenate(per_image).mean())


def evaluate(model, train, test, args):
    """Test terms of the objective, reconstruction error and linear-probe accuracies."""
    x_test, _ = test
    test_terms = model.evaluate(x_test, batch_size=EVAL_BATCH_SIZE, return_dict=True, verbose=0)
    sse = reconstruction_error(model, x_test)
    accuracies = probes.probe_accuracies(model, train, test, seed=args.seed)
    return {
        "test_terms": {name: float(value) for name, value in test_terms.items()},
        "test_reconstruction_sse": sse,
        "test_reconstruction_sse_255": sse * MAX_PIXEL_VALUE**2,
        "probe_accuracy": accuracies,
    }


def save(model, metrics, out):
    """Writes `model.keras` and `metrics.json` to the directory `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    with open(out / "metrics.json", "w") as file:
        json.dump(metrics, file, indent=2)
        file.write("\n")


def report(metrics):
    """Prints the headline numbers."""
    print(f"\n{metrics['model'].upper()} / {metrics['arch']}: {metrics['num_train']} training images, "
          f"{metrics['config']['epochs']} epoch(s) in {metrics['train_seconds']:.1f} s")
    print(f"Test ELBO per image (nats): {metrics['test_terms']['elbo']:.1f}")
    print(
        f"Test reconstruction error, mean over {metrics['num_test']} images of the per-image sum "
        "of squared errors of g(f^mu(x)):"
    )
    print(f"  {metrics['test_reconstruction_sse']:.2f} with pixels in [0, 1]")
    print(f"  {metrics['test_reconstruction_sse_255']:.0f} with pixels in [0, 255]")
    accuracies = ", ".join(f"{task} {acc:.4f}" for task, acc in metrics["probe_accuracy"].items())
    print(f"Linear-probe test accuracy of f^mu: {accuracies}")
    print(f"Saved {metrics['out']}/model.keras and metrics.json")


def main(argv=None):
    """Runs the example; returns the metrics dict that it also writes to metrics.json."""
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    data_path = resolve_data_path(args.data)
    train_data, test_data = load_data(data_path, args.train_size, args.test_size)
    x_train = train_data[0]
    model = build_model(args, x_train.shape[1:])
    train_terms, train_seconds = train(model, x_train, args)
    metrics = {
        "model": args.model,
        "arch": args.arch,
        "config": vars(args),
        "data_path": data_path,
        "out": os.fspath(args.out),
        "num_train": int(len(x_train)),
        "num_test": int(len(test_data[0])),
        "train_seconds": train_seconds,
        "train_terms": train_terms,
        **evaluate(model, train_data, test_data, args),
    }
    save(model, metrics, args.out)
    report(metrics)
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
