"""Steps per second of VAE and AVAE training: the library's `fit` against a hand-written step.

For each architecture of Cemgil et al. (2020), Appendix F, built by
`keras_avae.architectures.mlp()` and `.conv()` (latent 64, ColorMNIST images
of shape (28, 28, 3)), and each model (VAE, eq. 2; AVAE, eq. 13), this script
times one training step (batch 64, Adam 1e-4) in these configurations:

    fit              `model.compile(optimizer=Adam(1e-4))` with its defaults, then
                     `model.fit`, as a user would call it. On a CPU-only machine the
                     library resolves `jit_compile="auto"` per model (`VAE.compile`):
                     XLA for the MLP, none for the conv net (Keras' own "auto" turns
                     XLA off for both there); it runs the library's
                     `DEFAULT_STEPS_PER_EXECUTION` steps per execution.
    fit_graph        `compile(..., jit_compile=False, steps_per_execution=1)`: the plain
                     graph step, which was `fit`'s on a CPU before the per-model "auto".
                     This and the rows below but `fit_xla_spe` run one step per execution.
    fit_xla          the same with `compile(..., jit_compile=True)`.
    fit_xla_spe      `jit_compile=True` and `steps_per_execution=N` (`--steps-per-execution`).
    fit_xla_nocheck  diagnostic: `fit_xla` through `keras.Model.fit`, skipping the
                     `tf.data` map with which `VAE.fit` checks each batch's range
                     (`CheckedInputs._checked`), to price that check. By default it runs on
                     the MLP only: next to a conv step the check is lost in the noise.
    hand_xla         the baseline: a `tf.function(jit_compile=True)` step over the same
                     networks and objective, written with a `GradientTape`, the pure
                     functions of `keras_avae.objectives` and `optimizer.apply`. For
                     AVAE the delusion is `tf.stop_gradient(decoder(z))` re-encoded,
                     as in Algorithm 1.
    hand_graph       the same step as a plain graph `tf.function` (no XLA).

Every configuration reads random images in [0, 1] from one in-memory
`tf.data.Dataset`, batched and repeated; `fit` runs with `verbose=0` and
`steps_per_epoch`. Each configuration has its own freshly built networks and
optimizer. Warm-up calls come first and are not timed (the first call, which
traces and compiles, is reported apart as "first call"). Then every
configuration is timed `--repeats` times: each repeat runs all cases of one
architecture back to back, in an order rotated from repeat to repeat, so that a
noisy machine slows the cases that are compared alike. The median step time is
reported, and the best one beside it. `fit` is timed from `on_epoch_begin` to
`on_epoch_end` (a callback without batch hooks, so Keras keeps dispatching
batch callbacks asynchronously); the hand-written loop is timed around its
Python loop, up to a read of the last loss.

Columns: "x hand_xla" is the step time over the hand-written XLA step's;
"x same jit" is the step time over the hand-written step compiled the same
way (`hand_xla` for XLA configurations, `hand_graph` otherwise), which prices
the library's own overhead apart from what XLA gains or loses; "avae/vae" is
an AVAE step's time over a VAE step's in the same configuration. Each ratio is
the median over repeats of the ratio within one repeat. "spread" is
(max - min) / median of the repeats' times. "cpu ms" is the median CPU time
of this process (all its threads) per step: other processes on a shared
machine change it much less than the wall time, so it helps tell a slow spell
(wall time up, CPU time not) from a slow configuration (both up); with 2 cores
it can reach twice the wall time.

FLOPs. Each (architecture, model) has its training step's forward and backward pass counted once
(`flops.step_flops`: TensorFlow's profiler on the traced step, per batch; the optimizer's
elementwise update is not counted), the same for every configuration of it. "GFLOP/s" is that
count over the median step time; "% peak" is it over this CPU's float32 peak, cores x clock x
FLOP per cycle (`flops.cpu_peak`: the clock from /proc/cpuinfo, 32 FLOP per cycle for Zen 4's
AVX-512 on two 256-bit FMA pipes), which `--peak-gflops` replaces, or over what a 2048 x 2048
float32 matrix product reaches here (`flops.matmul_gflops`) where that is higher, which shows the
derived peak too low (`flops.ceiling`; the header says which; `--no-matmul` skips the product).

Targets:
    - the library's `fit` step within 1.2x the hand-written XLA step of the same
      model and architecture (column "x hand_xla");
    - the default, `fit`: within 1.2x the hand-written XLA step on the MLP, and on
      the conv net no slower than `fit_graph` (up to 1.1x, for noise), i.e. no XLA
      (column "x fit_graph"; printed under "defaults");
    - an AVAE step at most 1.4x a VAE step of the same architecture and
      configuration (column "avae/vae"; the paper's Table 1 reports x1.5
      wall-clock time for AVAE over VAE).

Usage:
    python benchmarks/train_step.py
    python benchmarks/train_step.py --archs conv --configs fit,fit_graph    # GFLOP/s of the conv step
    python benchmarks/train_step.py --archs mlp --steps 500 --repeats 7 --json runs/step.json
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_avae  # noqa: E402
from keras_avae import objectives  # noqa: E402
from keras_avae.models.compilation import DEFAULT_STEPS_PER_EXECUTION  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flops  # noqa: E402  (benchmarks/flops.py, beside this file)
from arguments import names, positive_int  # noqa: E402  (beside this file)

IMAGE_SHAPE = (28, 28, 3)
LATENT_DIM = 64
LEARNING_RATE = 1e-4
# The library's defaults, restated so the hand-written step uses the same objective.
OBS_VAR = 0.5
LIKELIHOOD = "gaussian"
RHO = 0.975

DEFAULT_BATCH_SIZE = 64
# Batches of random images held in memory; the dataset repeats them.
BATCHES_IN_MEMORY = 50
# Timed steps per repeat. On a 2-core CPU a conv step takes 0.1-0.7 s against the MLP's
# 5-10 ms, so the conv net gets fewer steps to keep the default run to a few minutes.
DEFAULT_STEPS = {"mlp": 100, "conv": 10}
DEFAULT_REPEATS = 5
DEFAULT_STEPS_PER_EXECUTION = 10
# Untimed calls before timing: the first traces and compiles, the rest settle caches.
WARMUP_CALLS = 2
SEED = 0

FIT_TARGET = 1.2
AVAE_TARGET = 1.4
# `fit` (the default) against `fit_graph` on the conv net, where the default must not be XLA:
# at most this ratio, which leaves room for noise.
DEFAULT_CONV_TOLERANCE = 1.1

ARCHITECTURES = {
    "mlp": keras_avae.architectures.mlp,
    "conv": keras_avae.architectures.conv,
}
MODELS = {"vae": keras_avae.VAE, "avae": keras_avae.AVAE}


@dataclasses.dataclass(frozen=True)
class Config:
    """One way of running a training step."""

    name: str
    hand_written: bool
    jit_compile: object = "auto"
    uses_steps_per_execution: bool = False
    # The library's default steps per execution (`compile` without the argument) instead of 1.
    default_steps_per_execution: bool = False
    input_check: bool = True
    # Architectures it runs on when `--configs` is not given; None for all.
    default_archs: tuple = None


CONFIGS = (
    Config("fit", hand_written=False, default_steps_per_execution=True),
    Config("fit_graph", hand_written=False, jit_compile=False),
    Config("fit_xla", hand_written=False, jit_compile=True),
    Config("fit_xla_spe", hand_written=False, jit_compile=True, uses_steps_per_execution=True),
    Config(
        "fit_xla_nocheck",
        hand_written=False,
        jit_compile=True,
        input_check=False,
        default_archs=("mlp",),
    ),
    Config("hand_xla", hand_written=True, jit_compile=True),
    Config("hand_graph", hand_written=True, jit_compile=False),
)
CONFIG_NAMES = tuple(config.name for config in CONFIGS)
BASELINE = "hand_xla"
# The hand-written step that a configuration without XLA is also compared with.
GRAPH_BASELINE = "hand_graph"
# The default configuration, and the library step it replaced on a CPU.
DEFAULT_CONFIG = "fit"
PREVIOUS_DEFAULT = "fit_graph"


# ------------------------------------------------------------------------- data


def make_dataset(batch_size):
    """Random images in [0, 1], in memory, batched and repeated forever."""
    rng = np.random.default_rng(SEED)
    # Drawn as float32 directly: no float64 copy to inflate a peak-memory measurement.
    images = rng.random(size=(BATCHES_IN_MEMORY * batch_size,) + IMAGE_SHAPE, dtype=np.float32)
    dataset = tf.data.Dataset.from_tensor_slices(images)
    return dataset.batch(batch_size, drop_remainder=True).repeat()


# ------------------------------------------------------------- library `fit`


def clocks():
    """Wall time and this process's CPU time (all threads), in seconds."""
    return time.perf_counter(), time.process_time()


def elapsed(start):
    """`(wall, cpu)` seconds since `start`, a value of `clocks()`."""
    return tuple(now - then for now, then in zip(clocks(), start))


class EpochTimer(keras.callbacks.Callback):
    """Times the last epoch. It has no batch hooks, so Keras keeps those asynchronous."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = clocks()

    def on_epoch_end(self, epoch, logs=None):
        self.elapsed = elapsed(self._start)


class FitRunner:
    """Runs `steps` training steps through the library's `fit`."""

    def __init__(self, model_name, arch, config, dataset, batch_size, steps_per_execution):
        encoder, decoder = ARCHITECTURES[arch](latent_dim=LATENT_DIM, input_shape=IMAGE_SHAPE)
        self.model = MODELS[model_name](encoder, decoder, seed=SEED)
        self.model.build((batch_size,) + IMAGE_SHAPE)
        compile_kwargs = {"optimizer": keras.optimizers.Adam(LEARNING_RATE)}
        if config.jit_compile != "auto":
            compile_kwargs["jit_compile"] = config.jit_compile
        if not config.default_steps_per_execution:
            compile_kwargs["steps_per_execution"] = steps_per_execution if config.uses_steps_per_execution else 1
        self.model.compile(**compile_kwargs)
        self.steps_per_execution = self.model.steps_per_execution
        self.jit_compile = bool(self.model.jit_compile)
        self.dataset = dataset
        # `keras.Model.fit` is the Keras loop without `VAE.fit`'s per-batch input check.
        self._fit = self.model.fit if config.input_check else self._fit_without_check

    def _fit_without_check(self, *args, **kwargs):
        return keras.Model.fit(self.model, *args, **kwargs)

    def run(self, steps):
        """`(wall, cpu)` seconds that `steps` steps take, from the first step to the last."""
        timer = EpochTimer()
        # `shuffle` does nothing for a dataset; False only silences Keras's warning.
        self._fit(
            self.dataset,
            epochs=1,
            steps_per_epoch=steps,
            verbose=0,
            callbacks=[timer],
            shuffle=False,
        )
        return timer.elapsed


# ---------------------------------------------------------- hand-written step


def negative_bound(model_name, encoder, decoder, x, noise_seed):
    """Batch mean of minus eq. (2) (VAE) or eq. (13) (AVAE), straight from `objectives`."""

    def encode(inputs):
        return tf.split(encoder(inputs, training=True), 2, axis=-1)

    z_mean, z_log_var = encode(x)
    noise = tf.random.stateless_normal(tf.shape(z_mean), seed=noise_seed)
    z = z_mean + tf.exp(0.5 * z_log_var) * noise
    x_mean = decoder(z, training=True)
    bound = objectives.reconstruction(x, x_mean, LIKELIHOOD, OBS_VAR)
    bound -= objectives.kl_to_standard_normal(z_mean, z_log_var)
    if model_name == "avae":
        # Algorithm 1, lines 7-8: the delusion decoded from the same z, encoded again.
        delusion = tf.stop_gradient(x_mean)
        aux_mean, aux_log_var = encode(delusion)
        bound += objectives.expected_coupling_log_prob(
            z_mean, z_log_var, aux_mean, aux_log_var, RHO
        )
        bound += objectives.gaussian_entropy(aux_log_var)
    return -tf.reduce_mean(bound)


def make_hand_step(model_name, encoder, decoder, optimizer, jit_compile):
    """A `tf.function` training step: GradientTape, then `optimizer.apply`."""
    variables = encoder.trainable_variables + decoder.trainable_variables
    optimizer.build(variables)
    seed_generator = keras.random.SeedGenerator(SEED)

    @tf.function(jit_compile=jit_compile)
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = negative_bound(model_name, encoder, decoder, x, seed_generator.next())
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    return train_step


class HandRunner:
    """Runs `steps` hand-written training steps in a Python loop over the dataset."""

    steps_per_execution = 1

    def __init__(self, model_name, arch, config, dataset, batch_size, steps_per_execution):
        del batch_size, steps_per_execution
        encoder, decoder = ARCHITECTURES[arch](latent_dim=LATENT_DIM, input_shape=IMAGE_SHAPE)
        optimizer = keras.optimizers.Adam(LEARNING_RATE)
        self.jit_compile = config.jit_compile
        self.step = make_hand_step(model_name, encoder, decoder, optimizer, config.jit_compile)
        self.iterator = iter(dataset)

    def run(self, steps):
        """`(wall, cpu)` seconds that `steps` steps take, up to reading the last loss."""
        start = clocks()
        for _ in range(steps):
            loss = self.step(next(self.iterator))
        float(loss)
        return elapsed(start)


# ----------------------------------------------------------------- measuring


@dataclasses.dataclass
class Case:
    """One (architecture, model, configuration) and its measurements."""

    arch: str
    model: str
    config: Config
    runner: object
    steps: int
    step_flops: int = 0
    first_call_s: float = 0.0
    seconds: list = dataclasses.field(default_factory=list)
    cpu_seconds: list = dataclasses.field(default_factory=list)

    @property
    def step_ms(self):
        return 1e3 * statistics.median(self.seconds) / self.steps

    @property
    def cpu_step_ms(self):
        return 1e3 * statistics.median(self.cpu_seconds) / self.steps

    @property
    def best_step_ms(self):
        return 1e3 * min(self.seconds) / self.steps

    @property
    def spread(self):
        """(max - min) / median of the repeats' times."""
        return (max(self.seconds) - min(self.seconds)) / statistics.median(self.seconds)


def round_up(value, multiple):
    return -(-value // multiple) * multiple


def configs_for(args, arch):
    """The configurations named by `--configs`, or else those that run on `arch` by default."""
    if args.configs:
        return [config for config in CONFIGS if config.name in args.configs]
    return [config for config in CONFIGS if arch in (config.default_archs or (arch,))]


def timed_steps(args, arch):
    """Steps per repeat, the same for every configuration: a whole number of executions."""
    steps = args.steps or DEFAULT_STEPS[arch]
    multiple = 1
    if any(config.uses_steps_per_execution for config in configs_for(args, arch)):
        multiple = math.lcm(multiple, args.steps_per_execution)
    if any(config.default_steps_per_execution for config in configs_for(args, arch)):
        multiple = math.lcm(multiple, DEFAULT_STEPS_PER_EXECUTION)
    return round_up(steps, multiple)


def count_step_flops(arch, model_name, batch_size):
    """FLOPs of one training step (forward and backward) of a fresh model of `arch`, `flops.step_flops`."""
    encoder, decoder = ARCHITECTURES[arch](latent_dim=LATENT_DIM, input_shape=IMAGE_SHAPE)
    model = MODELS[model_name](encoder, decoder, seed=SEED)
    model.build((batch_size,) + IMAGE_SHAPE)
    return flops.step_flops(model, batch_size)["total"]


def make_cases(args, dataset):
    """Builds every runner and warms it up; returns the cases in table order."""
    cases = []
    for arch in args.archs:
        steps = timed_steps(args, arch)
        for model_name in args.models:
            step_flops = count_step_flops(arch, model_name, args.batch_size)
            print(f"  counted {arch:<4} {model_name:<4} {step_flops / 1e9:.3f} GFLOP per step (forward and backward)",
                  flush=True)
            for config in configs_for(args, arch):
                runner_class = HandRunner if config.hand_written else FitRunner
                runner = runner_class(
                    model_name, arch, config, dataset, args.batch_size, args.steps_per_execution
                )
                case = Case(arch, model_name, config, runner, steps, step_flops)
                case.first_call_s = warm_up(runner)
                print(
                    f"  built {arch:<4} {model_name:<4} {config.name:<15} "
                    f"first call {case.first_call_s:6.1f} s",
                    flush=True,
                )
                cases.append(case)
    return cases


def warm_up(runner):
    """Untimed calls of one execution each; returns the wall time of the first."""
    start = time.perf_counter()
    runner.run(runner.steps_per_execution)
    first_call_s = time.perf_counter() - start
    for _ in range(WARMUP_CALLS - 1):
        runner.run(runner.steps_per_execution)
    return first_call_s


def measure(cases, repeats):
    """Times every case `repeats` times.

    Each repeat runs the architectures one after the other, and all cases of one
    architecture back to back, in an order rotated by 1/repeats of the list each
    repeat, so the cases that are compared run close together in time.
    """
    archs = list(dict.fromkeys(case.arch for case in cases))
    for repeat in range(repeats):
        start = time.perf_counter()
        for arch in archs:
            block = [case for case in cases if case.arch == arch]
            shift = repeat * len(block) // repeats
            for case in block[shift:] + block[:shift]:
                wall, cpu = case.runner.run(case.steps)
                case.seconds.append(wall)
                case.cpu_seconds.append(cpu)
        print(f"  repeat {repeat + 1}/{repeats}: {time.perf_counter() - start:.1f} s", flush=True)


# ----------------------------------------------------------------- reporting


def paired_ratio(case, other):
    """Median over repeats of the time ratio within a repeat, or None without `other`.

    Both cases run close together in each repeat, so a slow spell of a shared machine
    mostly cancels out of the ratio.
    """
    if other is None:
        return None
    return statistics.median(a / b for a, b in zip(case.seconds, other.seconds))


def summarise(cases, peak_gflops=None):
    """One row per case with its step time, its GFLOP/s (and fraction of `peak_gflops`) and its
    ratios to the baseline and to VAE."""
    by_key = {(c.arch, c.model, c.config.name): c for c in cases}
    rows = []
    for case in cases:
        baseline = by_key.get((case.arch, case.model, BASELINE))
        same_mode = by_key.get(
            (case.arch, case.model, BASELINE if case.runner.jit_compile else GRAPH_BASELINE)
        )
        vae = by_key.get((case.arch, "vae", case.config.name)) if case.model == "avae" else None
        previous = by_key.get((case.arch, case.model, PREVIOUS_DEFAULT))
        rows.append(
            {
                "arch": case.arch,
                "model": case.model,
                "config": case.config.name,
                "jit_compile": case.runner.jit_compile,
                "steps_per_execution": case.runner.steps_per_execution,
                "input_check": case.config.input_check and not case.config.hand_written,
                "steps": case.steps,
                "step_ms": case.step_ms,
                "best_step_ms": case.best_step_ms,
                "cpu_step_ms": case.cpu_step_ms,
                "steps_per_s": 1e3 / case.step_ms,
                "step_gflop": case.step_flops / 1e9,
                "gflops": case.step_flops / case.step_ms / 1e6,
                "peak_fraction": case.step_flops / case.step_ms / 1e6 / peak_gflops if peak_gflops else None,
                "spread": case.spread,
                "vs_hand_xla": paired_ratio(case, baseline),
                "vs_hand_same_jit": paired_ratio(case, same_mode),
                "avae_over_vae": paired_ratio(case, vae),
                "vs_fit_graph": paired_ratio(case, previous) if case.config.name == DEFAULT_CONFIG else None,
                "first_call_s": case.first_call_s,
                "repeat_seconds": case.seconds,
                "repeat_cpu_seconds": case.cpu_seconds,
            }
        )
    return rows


def _ratio(value):
    return f"{value:.2f}x" if value is not None else "-"


def _percent(value):
    return f"{value:.0%}" if value is not None else "-"


def print_table(rows):
    header = (
        f"{'arch':<5}{'model':<6}{'config':<16}{'xla':<6}{'spe':>4}{'steps/s':>9}"
        f"{'ms/step':>9}{'best ms':>9}{'cpu ms':>9}{'GFLOP/s':>9}{'% peak':>8}{'spread':>8}{'x ' + BASELINE:>11}"
        f"{'x same jit':>11}{'x fit_graph':>12}{'avae/vae':>10}{'first call':>12}"
    )
    print(header)
    print("-" * len(header))
    previous = None
    for row in rows:
        if previous and (row["arch"], row["model"]) != previous:
            print()
        previous = (row["arch"], row["model"])
        print(
            f"{row['arch']:<5}{row['model']:<6}{row['config']:<16}{str(row['jit_compile']):<6}"
            f"{row['steps_per_execution']:>4}{row['steps_per_s']:>9.1f}{row['step_ms']:>9.2f}"
            f"{row['best_step_ms']:>9.2f}{row['cpu_step_ms']:>9.2f}"
            f"{row['gflops']:>9.1f}{_percent(row['peak_fraction']):>8}"
            f"{row['spread']:>7.0%} {_ratio(row['vs_hand_xla']):>11}"
            f"{_ratio(row['vs_hand_same_jit']):>11}"
            f"{_ratio(row['vs_fit_graph']):>12}"
            f"{_ratio(row['avae_over_vae']):>10}{row['first_call_s']:>11.1f}s"
        )


def print_targets(rows):
    """Checks the two targets of the module docstring against the measured rows."""
    print()
    for row in rows:
        if not row["config"].startswith("fit") or row["vs_hand_xla"] is None:
            continue
        verdict = "ok  " if row["vs_hand_xla"] <= FIT_TARGET else "MISS"
        same_jit = row["vs_hand_same_jit"]
        print(
            f"  {verdict} {row['arch']:<4} {row['model']:<4} {row['config']:<15} "
            f"{row['vs_hand_xla']:.2f}x the hand-written XLA step (target <= {FIT_TARGET}x); "
            f"{_ratio(same_jit)} the hand-written step with the same jit_compile"
        )
    for row in rows:
        if row["avae_over_vae"] is None:
            continue
        verdict = "ok  " if row["avae_over_vae"] <= AVAE_TARGET else "MISS"
        print(
            f"  {verdict} {row['arch']:<4} avae {row['config']:<15} "
            f"{row['avae_over_vae']:.2f}x a VAE step (target <= {AVAE_TARGET}x)"
        )


def print_defaults(rows):
    """Checks the default `compile(optimizer)` side by side: XLA on the MLP, the graph step on conv."""
    defaults = [row for row in rows if row["config"] == DEFAULT_CONFIG]
    if not defaults:
        return
    print("\n  defaults: `compile(optimizer)`, jit_compile resolved per model")
    for row in defaults:
        hand, previous = row["vs_hand_xla"], row["vs_fit_graph"]
        if row["arch"] == "mlp":
            ok = hand is not None and hand <= FIT_TARGET
            target = f"target <= {FIT_TARGET}x the hand-written XLA step"
        else:
            ok = not row["jit_compile"] and (previous is None or previous <= DEFAULT_CONV_TOLERANCE)
            target = f"target: no XLA, <= {DEFAULT_CONV_TOLERANCE}x {PREVIOUS_DEFAULT}"
        print(
            f"  {'ok  ' if ok else 'MISS'} {row['arch']:<4} {row['model']:<4} jit_compile={row['jit_compile']!s:<5} "
            f"{row['step_ms']:.2f} ms/step: {_ratio(hand)} {BASELINE}, {_ratio(previous)} "
            f"{PREVIOUS_DEFAULT} ({target})"
        )


def environment():
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_avae": keras_avae.__version__,
        "backend": keras.backend.backend(),
        "cpu_count": os.cpu_count(),
        "devices": [d.device_type for d in tf.config.list_physical_devices()],
        "platform": platform.platform(),
    }


def machine_limits(args):
    """The float32 peak (`flops.cpu_peak`, or `--peak-gflops`) and, unless `--no-matmul`, what a
    float32 matrix product reaches (`flops.matmul_gflops`)."""
    peak = flops.cpu_peak("float32", override_gflops=args.peak_gflops)
    matmul = flops.matmul_gflops("float32") if args.matmul else None
    return {"peak": peak, "matmul_gflops": matmul, "ceiling": flops.ceiling(peak, matmul)}


def print_limits(limits):
    peak, matmul, ceiling = limits["peak"], limits["matmul_gflops"], limits["ceiling"]
    print(f"CPU {flops.cpu_model()}: float32 peak {peak['formula']}"
          + (f"; a {flops.MATMUL_SIZE}^2 float32 matmul reaches {matmul:.1f} GFLOP/s" if matmul else ""))
    print(f"% peak below: of {ceiling['gflops']:.1f} GFLOP/s ({ceiling['source']})")


def print_header(env, args):
    print(
        f"keras_avae {env['keras_avae']} train-step benchmark: TensorFlow {env['tensorflow']}, "
        f"Keras {env['keras']} ({env['backend']}), Python {env['python']}, "
        f"{env['cpu_count']} CPUs, devices {env['devices']}"
    )
    steps = {arch: timed_steps(args, arch) for arch in args.archs}
    print(
        f"batch {args.batch_size}, latent {LATENT_DIM}, images {IMAGE_SHAPE}, timed steps {steps}, "
        f"repeats {args.repeats} (median), steps_per_execution {args.steps_per_execution}"
    )


# ---------------------------------------------------------------------- main




def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=None,
                        help=f"timed steps per repeat for every arch (default {DEFAULT_STEPS})")
    parser.add_argument("--repeats", type=positive_int, default=DEFAULT_REPEATS,
                        help="timed repeats of every case; the median is reported")
    parser.add_argument("--archs", type=names(tuple(ARCHITECTURES)), default=tuple(ARCHITECTURES),
                        help="comma-separated, from " + ",".join(ARCHITECTURES))
    parser.add_argument("--models", type=names(tuple(MODELS)), default=tuple(MODELS),
                        help="comma-separated, from " + ",".join(MODELS))
    parser.add_argument("--configs", type=names(CONFIG_NAMES), default=None,
                        help=f"any of {','.join(CONFIG_NAMES)} (default: all; "
                        "fit_xla_nocheck on the MLP only)")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--steps-per-execution", type=positive_int,
                        default=DEFAULT_STEPS_PER_EXECUTION,
                        help="`compile(steps_per_execution=...)` of fit_xla_spe")
    flops.add_limit_arguments(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(SEED)
    env = environment()
    print_header(env, args)
    limits = machine_limits(args)
    print_limits(limits)
    started = time.perf_counter()
    dataset = make_dataset(args.batch_size)
    cases = make_cases(args, dataset)
    measure(cases, args.repeats)
    rows = summarise(cases, limits["ceiling"]["gflops"])
    print()
    print_table(rows)
    print_targets(rows)
    print_defaults(rows)
    total_s = time.perf_counter() - started
    print(f"\ntotal {total_s:.0f} s")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"environment": env, "args": vars(args), "limits": limits, "total_s": total_s, "rows": rows},
                      file, indent=2)


if __name__ == "__main__":
    sys.exit(main())
