"""keras_avae's `fit` against the authors' JAX update step, side by side: steps/s per cycle and their ratio.

The authors' side is their released code (google-deepmind/deepmind-research, folder `avae/`),
imported at run time from `--code-dir` and run as `benchmarks/authors_code.py` runs it: their
`train.train` (Adam b1=0.9, b2=0.999, eps=1e-8, one jitted `update_step` per step) on their
`ColorMnistMLPEncoder` / `ColorMnistMLPDecoder` with their `vae_elbo` or `avae_elbo`, fed with
this library's ColorMNIST in their `types.LabelledData` layout, under the same run-time shims
(`authors_code.authors_shims`). Each cycle calls `train.train` afresh, so it traces and compiles
again; the clock starts when the batch of step `WARMUP_STEPS` is drawn (their first steps,
compilation included, are done by then) and stops when the last step's parameters are ready.

The library's side is the README's: `model.compile(optimizer=keras.optimizers.Adam(lr))` at every
other default (`jit_compile="auto"`, `steps_per_execution` the library's
`DEFAULT_STEPS_PER_EXECUTION`, lowered to its greatest common divisor with `--steps`), then
`model.fit(x_train, batch_size=..., epochs=1, steps_per_epoch=steps)` on the same images; the clock runs from the
epoch's start to its end (a callback), so the whole-array input check and the set-up of `fit`,
which a real run pays once, are outside it. `verbose=0`: no progress bar.

Rows (each a pair timed in the same cycle):

    VAE             their `vae_elbo`   vs `keras_avae.VAE` at its defaults
    AVAE (theirs)   their `avae_elbo`  vs `keras_avae.AVAE(delusion="mean", posterior_sampling="variance")`,
                    the authors' choices (like for like)
    AVAE (default)  their `avae_elbo`  vs `keras_avae.AVAE` at its defaults (sampled delusion)

The two AVAE rows share one timing of the authors' step per cycle. Every cycle runs every
runner once, in an order rotated by one each cycle, so a machine that slows down slows them
alike; the ratio is keras_avae's steps/s over the authors' in the same cycle.

Needs the `authors` extra (`pip install -e ".[authors]"`). No measured number lives here: the
results go on the speed page, with the command that made them.

Usage:
    python benchmarks/peer.py --code-dir /path/to/deepmind-research/avae
    python benchmarks/peer.py --code-dir DIR --steps 20 --cycles 1    # a smoke run
"""

import argparse
import contextlib
import io
import math
import statistics
import sys
import time
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).resolve().parent))

import arguments  # noqa: E402  (benchmarks/arguments.py, beside this file)
import authors_code  # noqa: E402  (benchmarks/authors_code.py, beside this file)

import keras_avae  # noqa: E402
from keras_avae.experiments import color_mnist as color_mnist_experiment  # noqa: E402
from keras_avae.models.compilation import DEFAULT_STEPS_PER_EXECUTION  # noqa: E402

DEFAULT_STEPS = 500
DEFAULT_CYCLES = 5
WARMUP_STEPS = 2
"""Authors' steps before the clock starts (the first traces and compiles their step); the library's
runners take as many steps in a `fit` before the first cycle."""

ROWS = (
    # (row, the authors' runner, the library's runner)
    ("VAE", "authors_vae", "keras_vae"),
    ("AVAE (theirs)", "authors_avae", "keras_avae_theirs"),
    ("AVAE (default)", "authors_avae", "keras_avae_default"),
)

KERAS_MODELS = {
    "keras_vae": lambda networks, args: keras_avae.VAE(*networks, obs_var=args.obs_var, seed=args.seed),
    "keras_avae_theirs": lambda networks, args: keras_avae.AVAE(
        *networks, rho=args.rho, obs_var=args.obs_var, seed=args.seed, delusion="mean", posterior_sampling="variance"
    ),
    "keras_avae_default": lambda networks, args: keras_avae.AVAE(
        *networks, rho=args.rho, obs_var=args.obs_var, seed=args.seed
    ),
}
AUTHORS_MODELS = {"authors_vae": "vae", "authors_avae": "avae"}


class _MarkedBatches:
    """Their training iterator, noting the time at which the batch of step `mark_step` is drawn.

    `train.train` draws one batch for `elbo_fun.init`, then one per step: draw `mark_step + 2`
    is step `mark_step`'s, made after steps `0 .. mark_step - 1` were dispatched.
    """

    def __init__(self, batches, marks, mark_step):
        self.batches, self.marks, self.draws, self.mark_draw = batches, marks, 0, mark_step + 2

    def __iter__(self):
        return self

    def __next__(self):
        self.draws += 1
        if self.draws == self.mark_draw:
            self.marks["start"] = time.perf_counter()
        return next(self.batches)


def _stopwatch_checkpointer(marks, last_step):
    """A stand-in for their `checkpointer.Checkpointer` that stops the clock once the last step's parameters are ready."""
    import jax

    class StopwatchCheckpointer:
        def __init__(self, checkpoint_dir, filename):
            del checkpoint_dir, filename  # nothing is written

        def load_checkpoint(self):
            return None  # always start afresh

        def save_checkpoint(self, experiment_state, opt_state, step, extra_checkpoint_info=None):
            if step == last_step:
                jax.block_until_ready(experiment_state)
                marks["end"] = time.perf_counter()

    return StopwatchCheckpointer


class AuthorsRunner:
    """Their `train.train` with their `vae_elbo` or `avae_elbo`, as `authors_code.train_authors_model` sets it up."""

    def __init__(self, modules, model, train_data, test_data, args):
        import haiku as hk

        self.modules, self.args = modules, args
        self.train_data, self.test_data = train_data, test_data

        def _elbo_fun(input_data):  # their train_main.py's `_elbo_fun`, with these settings
            encoder = modules["encoders"].ColorMnistMLPEncoder(args.latent_dim)
            decoder = modules["decoders"].ColorMnistMLPDecoder(args.obs_var)
            vae_obj = modules["vae"].VAE(encoder, decoder, args.rho)
            return getattr(vae_obj, authors_code.ELBO_METHODS[model])(input_data, hk.next_rng_key())

        self.elbo_fun = hk.transform(_elbo_fun)
        self.cycle = 0

    def run(self, steps):
        """Steps per second of `steps` of their steps, after `WARMUP_STEPS` untimed ones."""
        marks = {}
        labelled_data = self.modules["types"].LabelledData
        images, labels = self.train_data
        batches = authors_code.LabelledBatches(
            labelled_data, images, labels["digit"], self.args.batch_size, self.args.seed + self.cycle
        )
        test_batches = authors_code.LabelledBatches(
            labelled_data, self.test_data[0], self.test_data[1]["digit"], self.args.batch_size
        )
        iterations = WARMUP_STEPS + steps
        self.modules["checkpointer"].Checkpointer = _stopwatch_checkpointer(marks, iterations - 1)
        with contextlib.redirect_stdout(io.StringIO()):  # their step-0 test line, before the clock starts
            self.modules["train"].train(
                train_data_iterator=_MarkedBatches(batches, marks, WARMUP_STEPS),
                test_data_iterator=test_batches,
                elbo_fun=self.elbo_fun,
                learning_rate=self.args.learning_rate,
                checkpoint_dir="unused: nothing is written",
                checkpoint_filename="unused",
                checkpoint_every=1,  # the stopwatch sees every step, and stops at the last
                test_every=iterations + 1,  # their test loss at step 0 only, before the clock starts
                iterations=iterations,
                rng_seed=self.args.seed + self.cycle,
            )
        self.cycle += 1
        return steps / (marks["end"] - marks["start"])


class _EpochClock(keras.callbacks.Callback):
    """Times one epoch; it has no batch hooks, so Keras keeps its steps asynchronous."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


class KerasRunner:
    """A keras_avae model compiled and fitted the README's way, on the same images."""

    def __init__(self, name, images, args):
        networks = keras_avae.architectures.mlp(latent_dim=args.latent_dim, input_shape=authors_code.IMAGE_SHAPE)
        self.model = KERAS_MODELS[name](networks, args)
        self.model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
        self.images, self.batch_size = images, args.batch_size
        # Trace (and compile) the step before the first cycle, with the steps per execution the
        # timed runs get (`steps_per_epoch` sets them, `Compilation._steps_per_execution_for`).
        self.run(math.gcd(DEFAULT_STEPS_PER_EXECUTION, args.steps))

    def run(self, steps):
        clock = _EpochClock()
        self.model.fit(
            self.images, batch_size=self.batch_size, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[clock]
        )
        return steps / clock.seconds


def measure(runners, steps, cycles, report=print):
    """Every runner once per cycle, the order rotated by one each cycle; returns `{name: [steps/s per cycle]}`."""
    names = list(runners)
    rates = {name: [] for name in names}
    for cycle in range(cycles):
        order = names[cycle % len(names):] + names[: cycle % len(names)]
        for name in order:
            rates[name].append(runners[name].run(steps))
        cells = "  ".join(f"{row}: {rates[mine][-1]:.1f} / {rates[theirs][-1]:.1f} = "
                          f"{rates[mine][-1] / rates[theirs][-1]:.2f}" for row, theirs, mine in ROWS
                          if mine in rates)
        report(f"cycle {cycle + 1}/{cycles} ({', '.join(order)}): keras_avae / authors' steps/s  {cells}")
    return rates


def table(rates):
    """Markdown: per row, the median steps/s of each side and the median and range of the per-cycle ratio."""
    lines = [
        "| model | authors' JAX, steps/s | keras_avae `fit`, steps/s | ratio (median) | ratio per cycle |",
        "|---|--:|--:|--:|---|",
    ]
    for row, theirs, mine in ROWS:
        if mine not in rates:
            continue
        ratios = [a / b for a, b in zip(rates[mine], rates[theirs])]
        lines.append(
            f"| {row} | {statistics.median(rates[theirs]):.1f} | {statistics.median(rates[mine]):.1f} | "
            f"{statistics.median(ratios):.2f} | {', '.join(f'{r:.2f}' for r in ratios)} |"
        )
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--code-dir", required=True,
                        help="the authors' `avae/` folder (google-deepmind/deepmind-research), or the folder holding it")
    parser.add_argument("--steps", type=arguments.positive_int, default=DEFAULT_STEPS, help="timed steps per run")
    parser.add_argument("--cycles", type=arguments.positive_int, default=DEFAULT_CYCLES)
    parser.add_argument("--rows", default="vae,avae_theirs,avae_default",
                        help="comma-separated from vae, avae_theirs, avae_default")
    parser.add_argument("--batch-size", type=arguments.positive_int, default=authors_code.DEFAULT_BATCH_SIZE)
    parser.add_argument("--learning-rate", type=float, default=authors_code.DEFAULT_LEARNING_RATE)
    parser.add_argument("--rho", type=float, default=authors_code.DEFAULT_RHO)
    parser.add_argument("--obs-var", type=float, default=authors_code.DEFAULT_OBS_VAR)
    parser.add_argument("--latent-dim", type=arguments.positive_int, default=authors_code.DEFAULT_LATENT_DIM)
    parser.add_argument("--seed", type=int, default=authors_code.DEFAULT_SEED)
    parser.add_argument("--data", default=None, help="mnist.npz (default: $KERAS_AVAE_MNIST_PATH or shared/data)")
    parser.add_argument("--train-size", type=arguments.positive_int, default=None,
                        help="training images (default all)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.rows.split(",") if name.strip()]
    known = {"vae": "keras_vae", "avae_theirs": "keras_avae_theirs", "avae_default": "keras_avae_default"}
    unknown = sorted(set(chosen) - set(known))
    if unknown or not chosen:
        parser.error(f"--rows must come from {', '.join(known)}; unknown: {unknown}")
    args.keras_runners = [known[name] for name in known if name in chosen]
    return args


def main(argv=None):
    args = parse_args(argv)
    modules = authors_code.import_authors_package(args.code_dir)
    keras.utils.set_random_seed(args.seed)
    data_path = color_mnist_experiment.resolve_data_path(args.data)
    train_data, test_data = color_mnist_experiment.load_data(data_path, args.train_size, args.batch_size)
    wanted = [(theirs, mine) for _, theirs, mine in ROWS if mine in args.keras_runners]
    import jax

    print(
        f"peer: {args.steps} steps x {args.cycles} cycles, batch {args.batch_size}, MLP latent {args.latent_dim}, "
        f"{len(train_data[0])} ColorMNIST images; JAX {jax.__version__} ({jax.default_backend()}), "
        f"Keras {keras.__version__}, keras_avae at its defaults",
        flush=True,
    )
    with authors_code.authors_shims(modules["vae"], modules["checkpointer"]):
        runners = {}
        for theirs, mine in wanted:
            if theirs not in runners:
                runners[theirs] = AuthorsRunner(modules, AUTHORS_MODELS[theirs], train_data, test_data, args)
            runners[mine] = KerasRunner(mine, train_data[0], args)
        print("jit_compile resolved: " + ", ".join(
            f"{name} {runner.model.jit_compile}" for name, runner in runners.items() if isinstance(runner, KerasRunner)
        ), flush=True)
        rates = measure(runners, args.steps, args.cycles, report=lambda line: print(line, flush=True))
    print("\n" + table(rates))
    return rates


if __name__ == "__main__":
    main()
