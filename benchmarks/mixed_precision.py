"""mixed_bfloat16 against float32 on the conv VAE and AVAE: step time, and the bound and probes after a short run.

For each model (VAE, eq. 2; AVAE, eq. 13) and dtype policy (float32; mixed_bfloat16: bfloat16
compute, float32 variables, float32 output layers and objective), the networks of Appendix F are
built by `keras_avae.architectures.conv(latent_dim=64, dtype=policy)` (or `.mlp` with `--arch mlp`)
and compiled as a user would, `model.compile(optimizer=keras.optimizers.Adam(1e-4))`: the library's
defaults, no XLA for a conv net on a CPU and `DEFAULT_STEPS_PER_EXECUTION` steps per execution.

1. Speed. Each case trains through `fit` on random images in [0, 1] (batch 64, from memory),
   after untimed warm-up calls, `--timing-steps` steps per repeat, `--repeats` times; every repeat
   runs all cases, in an order rotated by one case per repeat, so that a slow spell of a shared
   machine falls on all alike. Reported: the median ms per step, the ratio to float32 of the same
   model (median over repeats of the ratio within a repeat), GFLOP/s (one step's forward and
   backward FLOPs, `flops.step_flops`, over the median step time) and the percentage of this CPU's
   peak for the policy (`flops.cpu_peak`: float32 at 32 FLOP per cycle and core, bfloat16 with
   AVX512_BF16 at 64), with what a float32 and a bfloat16 matrix product reach here beside them.

2. Results after a short run. Each case is trained again from the same initial weights (the
   same seed, whatever the policy) on real ColorMNIST (`--data`, the first `--images` training
   images, shuffled with a fixed seed so that both policies see the same batches) for `--steps`
   steps, then scored on the first `--test-images` test images: the test ELBO per image
   (`model.evaluate`, eq. 2 for both models) and the linear-probe accuracy of f^mu on digit and
   colour (`keras_avae.evaluation.probes.probe_accuracies`, probes fitted on the training images).
   The two policies differ only by bfloat16's rounding and what it does to training.

Verdicts: mixed_bfloat16 is "faster" when its step takes at most `FASTER` times float32's, and its
results "agree" when its test ELBO is within `ELBO_TOLERANCE` (relative) of float32's and each probe
accuracy within `ACCURACY_TOLERANCE`. These are judgement thresholds for one short run per case,
not a test of significance: run-to-run noise of one policy is not measured here.

The defaults are sized for about ten minutes on a 2-core CPU with nothing else running (an
estimate from the conv step times on the documentation's speed page, not a measurement).

Usage:
    python benchmarks/mixed_precision.py --data ../shared/data/mnist.npz
    python benchmarks/mixed_precision.py --data ../shared/data/mnist.npz --steps 3 --images 256 \\
        --test-images 128 --timing-steps 2 --repeats 1 --probe-epochs 1 --no-matmul      # a smoke test
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_avae  # noqa: E402
from keras_avae import architectures  # noqa: E402
from keras_avae.datasets import color_mnist  # noqa: E402
from keras_avae.evaluation import probes  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flops  # noqa: E402  (benchmarks/flops.py, beside this file)
import train_step  # noqa: E402  (its timer, its random images and its environment)
from arguments import names, positive_int  # noqa: E402  (beside this file)
from train_step import IMAGE_SHAPE, LATENT_DIM, LEARNING_RATE  # noqa: E402  (the same networks and optimizer)

BATCH_SIZE = 64
SEED = 0
DATA_SEED = 0
"""Seed of the ColorMNIST colours, as in the experiments."""

POLICIES = architectures.DTYPE_POLICIES
REFERENCE = "float32"
ARCHITECTURES = {"conv": architectures.conv, "mlp": architectures.mlp}
MODELS = {"vae": keras_avae.VAE, "avae": keras_avae.AVAE}

DEFAULT_TIMING_STEPS = 20
DEFAULT_REPEATS = 5
WARMUP_CALLS = 2
DEFAULT_STEPS = 1000
DEFAULT_IMAGES = 10000
DEFAULT_TEST_IMAGES = 5000
EVALUATE_BATCH_SIZE = 256

FASTER = 0.9
"""mixed_bfloat16 is "faster" when its step takes at most this times float32's."""

ELBO_TOLERANCE = 0.01
"""The test ELBOs "agree" within this relative difference."""

ACCURACY_TOLERANCE = 0.02
"""The probe accuracies "agree" within this absolute difference."""


def build_model(arch, model_name, policy, seed=SEED):
    """A built, compiled model of `arch` in `policy`; the same seed gives the same initial weights under
    either policy (the variables are float32 under both)."""
    keras.utils.set_random_seed(seed)
    encoder, decoder = ARCHITECTURES[arch](latent_dim=LATENT_DIM, input_shape=IMAGE_SHAPE, dtype=policy)
    model = MODELS[model_name](encoder, decoder, seed=seed)
    model.build((None,) + IMAGE_SHAPE)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    return model


# ------------------------------------------------------------------- speed


class Case:
    """One (model, policy): its model, its FLOPs per step and its timed repeats."""

    def __init__(self, arch, model_name, policy, batch_size):
        self.model_name, self.policy = model_name, policy
        self.model = build_model(arch, model_name, policy)
        self.step_flops = flops.step_flops(self.model, batch_size)["total"]
        self.seconds, self.cpu_seconds = [], []

    def run(self, dataset, steps):
        """`(wall, cpu)` seconds of `steps` steps of `fit`, first step to last (`train_step.EpochTimer`)."""
        timer = train_step.EpochTimer()
        self.model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[timer], shuffle=False)
        return timer.elapsed


def measure_speed(cases, dataset, steps, repeats, report=print):
    """Times every case `repeats` times, in an order rotated by one case per repeat."""
    for case in cases:
        start = time.perf_counter()
        for _ in range(WARMUP_CALLS):
            case.run(dataset, case.model.steps_per_execution)
        report(f"  warmed up {case.model_name:<4} {case.policy:<15} {time.perf_counter() - start:6.1f} s")
    for repeat in range(repeats):
        start = time.perf_counter()
        shift = repeat % len(cases)
        for case in cases[shift:] + cases[:shift]:
            wall, cpu = case.run(dataset, steps)
            case.seconds.append(wall)
            case.cpu_seconds.append(cpu)
        report(f"  repeat {repeat + 1}/{repeats}: {time.perf_counter() - start:.1f} s")


def speed_rows(cases, steps, peaks):
    """One row per case: ms/step, ratio to float32 of the same model, GFLOP/s and % of the policy's
    peak (`peaks`: policy -> a dict with `gflops`, `flops.cpu_peak` or `flops.ceiling`)."""
    reference = {case.model_name: case for case in cases if case.policy == REFERENCE}
    rows = []
    for case in cases:
        step_s = statistics.median(case.seconds) / steps
        gflops = case.step_flops / step_s / 1e9
        peak = peaks[case.policy]["gflops"]
        other = reference.get(case.model_name)
        rows.append({
            "model": case.model_name,
            "policy": case.policy,
            "step_ms": 1e3 * step_s,
            "best_step_ms": 1e3 * min(case.seconds) / steps,
            "cpu_step_ms": 1e3 * statistics.median(case.cpu_seconds) / steps,
            "vs_float32": statistics.median(a / b for a, b in zip(case.seconds, other.seconds)) if other else None,
            "step_gflop": case.step_flops / 1e9,
            "gflops": gflops,
            "peak_gflops": peak,
            "peak_fraction": gflops / peak if peak else None,
            "repeat_seconds": case.seconds,
        })
    return rows


# ---------------------------------------------------------------- results


def load_data(path, images, test_images):
    """The first `images` training and `test_images` test images of ColorMNIST, with their labels."""
    train = color_mnist("train", path=path, seed=DATA_SEED, limit=images)
    test = color_mnist("test", path=path, seed=DATA_SEED, limit=test_images)
    return train, test


def training_batches(x, batch_size, seed=SEED):
    """`x` shuffled with a fixed seed each pass, batched, repeated: the same batches for every case."""
    dataset = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.repeat().batch(batch_size, drop_remainder=True)


def short_run(arch, model_name, policy, train, test, *, steps, batch_size, probe_epochs):
    """Trains a fresh model `steps` steps on `train`'s images; its test ELBO and probe accuracies."""
    model = build_model(arch, model_name, policy)
    start = time.perf_counter()
    history = model.fit(
        training_batches(train[0], batch_size), epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False
    )
    train_seconds = time.perf_counter() - start
    terms = model.evaluate(test[0], batch_size=EVALUATE_BATCH_SIZE, return_dict=True, verbose=0)
    accuracy = probes.probe_accuracies(model, train, test, epochs=probe_epochs, seed=SEED)
    return {
        "model": model_name,
        "policy": policy,
        "steps": steps,
        "train_seconds": train_seconds,
        "train_elbo": float(history.history["elbo"][-1]),
        "test_elbo": float(terms["elbo"]),
        "test_terms": {name: float(value) for name, value in terms.items()},
        "probe_accuracy": {task: float(value) for task, value in accuracy.items()},
    }


def verdicts(speed, results):
    """Per model: whether mixed_bfloat16 is faster (`FASTER`) and its results agree with float32's."""
    lines = {}
    for model_name in dict.fromkeys(row["model"] for row in speed):
        mixed = next((row for row in speed if row["model"] == model_name and row["policy"] != REFERENCE), None)
        ours = {row["policy"]: row for row in results if row["model"] == model_name}
        if mixed is None or len(ours) < 2:
            continue
        reference, other = ours[REFERENCE], ours[mixed["policy"]]
        elbo_gap = abs(other["test_elbo"] - reference["test_elbo"]) / abs(reference["test_elbo"])
        accuracy_gap = max(
            abs(other["probe_accuracy"][task] - reference["probe_accuracy"][task]) for task in reference["probe_accuracy"]
        )
        lines[model_name] = {
            "faster": mixed["vs_float32"] <= FASTER,
            "agree": elbo_gap <= ELBO_TOLERANCE and accuracy_gap <= ACCURACY_TOLERANCE,
            "step_ratio": mixed["vs_float32"],
            "elbo_gap": elbo_gap,
            "accuracy_gap": accuracy_gap,
        }
    return lines


# -------------------------------------------------------------- reporting


def _maybe(value, spec, missing="-"):
    return format(value, spec) if value is not None else missing


def table(speed, results):
    """The results as a Markdown table, one row per (model, policy)."""
    by_key = {(row["model"], row["policy"]): row for row in results}
    tasks = sorted({task for row in results for task in row["probe_accuracy"]})
    lines = [
        "| model | policy | ms/step | x float32 | GFLOP/s | % peak | test ELBO | "
        + " | ".join(f"{task} probe" for task in tasks) + " |",
        "|---|---|--:|--:|--:|--:|--:|" + "--:|" * len(tasks),
    ]
    for row in speed:
        result = by_key.get((row["model"], row["policy"]), {})
        accuracies = result.get("probe_accuracy", {})
        lines.append(
            f"| {row['model'].upper()} | {row['policy']} | {row['step_ms']:.1f} | {_maybe(row['vs_float32'], '.2f')} | "
            f"{row['gflops']:.1f} | {_maybe(row['peak_fraction'] and 100 * row['peak_fraction'], '.0f')} | "
            f"{_maybe(result.get('test_elbo'), '.1f')} | "
            + " | ".join(_maybe(accuracies.get(task) and 100 * accuracies[task], ".1f") for task in tasks) + " |"
        )
    return "\n".join(lines)


def print_verdicts(lines):
    for model_name, verdict in lines.items():
        print(
            f"  {model_name.upper():<4} mixed_bfloat16: {verdict['step_ratio']:.2f}x float32's step "
            f"({'faster' if verdict['faster'] else 'not faster'}, threshold {FASTER}x); test ELBO "
            f"{100 * verdict['elbo_gap']:.2f}% apart, probe accuracies up to {100 * verdict['accuracy_gap']:.1f} points "
            f"apart ({'agree' if verdict['agree'] else 'differ'}, thresholds {100 * ELBO_TOLERANCE:g}% and "
            f"{100 * ACCURACY_TOLERANCE:g} points)"
        )


# ------------------------------------------------------------------- main



def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="a local mnist.npz (default: the keras.datasets download)")
    parser.add_argument("--arch", choices=tuple(ARCHITECTURES), default="conv")
    parser.add_argument("--models", type=names(tuple(MODELS)), default=tuple(MODELS),
                        help="comma-separated, from " + ",".join(MODELS))
    parser.add_argument("--timing-steps", type=positive_int, default=DEFAULT_TIMING_STEPS,
                        help="timed steps per repeat (rounded up to whole executions)")
    parser.add_argument("--repeats", type=positive_int, default=DEFAULT_REPEATS)
    parser.add_argument("--steps", type=positive_int, default=DEFAULT_STEPS, help="training steps of the short run")
    parser.add_argument("--images", type=positive_int, default=DEFAULT_IMAGES,
                        help="training images (the short run's batches and the probes' training set)")
    parser.add_argument("--test-images", type=positive_int, default=DEFAULT_TEST_IMAGES)
    parser.add_argument("--probe-epochs", type=positive_int, default=probes.PROBE_EPOCHS)
    parser.add_argument("--no-results", dest="results", action="store_false", help="time the steps only")
    flops.add_limit_arguments(parser, "float32 and bfloat16 matrix products")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    env = train_step.environment()
    peaks = {policy: flops.cpu_peak(policy, override_gflops=args.peak_gflops) for policy in POLICIES}
    matmul = {dtype: flops.matmul_gflops(dtype) for dtype in ("float32", "bfloat16")} if args.matmul else {}
    print(f"keras_avae {env['keras_avae']} mixed-precision benchmark: TensorFlow {env['tensorflow']}, "
          f"Keras {env['keras']}, {env['cpu_count']} CPUs; {args.arch} net, batch {BATCH_SIZE}, Adam {LEARNING_RATE:g}")
    for policy in POLICIES:
        print(f"  peak {policy}: {peaks[policy]['formula']}")
    for dtype, gflops in matmul.items():
        print(f"  a {flops.MATMUL_SIZE}^2 {dtype} matmul reaches {gflops:.1f} GFLOP/s")
    ceilings = {policy: flops.ceiling(peaks[policy], matmul.get(keras.DTypePolicy(policy).compute_dtype))
                for policy in POLICIES}
    for policy in POLICIES:
        print(f"  % peak of {policy}: of {ceilings[policy]['gflops']:.1f} GFLOP/s ({ceilings[policy]['source']})")

    cases = [Case(args.arch, model_name, policy, BATCH_SIZE) for model_name in args.models for policy in POLICIES]
    spe = cases[0].model.steps_per_execution
    timing_steps = -(-args.timing_steps // spe) * spe
    measure_speed(cases, train_step.make_dataset(BATCH_SIZE), timing_steps, args.repeats)
    speed = speed_rows(cases, timing_steps, ceilings)
    del cases

    results = []
    if args.results:
        train, test = load_data(args.data, args.images, args.test_images)
        for model_name in args.models:
            for policy in POLICIES:
                row = short_run(args.arch, model_name, policy, train, test, steps=args.steps, batch_size=BATCH_SIZE,
                                probe_epochs=args.probe_epochs)
                print(f"  trained {model_name:<4} {policy:<15} {args.steps} steps in {row['train_seconds']:.1f} s: "
                      f"test ELBO {row['test_elbo']:.1f}, probes {row['probe_accuracy']}", flush=True)
                results.append(row)

    print()
    print(table(speed, results))
    lines = verdicts(speed, results)
    print()
    print_verdicts(lines)
    total_s = time.perf_counter() - started
    print(f"\ntimed steps per repeat {timing_steps}, repeats {args.repeats}; short run {args.steps} steps on "
          f"{args.images} images, scored on {args.test_images}; total {total_s:.0f} s")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"environment": env, "args": vars(args), "peaks": peaks, "ceilings": ceilings, "matmul_gflops": matmul,
                       "speed": speed, "results": results, "verdicts": lines, "total_s": total_s}, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
