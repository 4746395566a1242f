"""The paper's "Time" column: wall-clock time of a training step of each model relative to a VAE.

Table 1 of Cemgil et al. (2020) reports, on a GPU, AVAE x1.5, SE with 5 attack
steps x4 and SE-AVAE x4.7 the time of a VAE step (AVAE-SS x1.5). This script
times one `fit` step (batch 64, Adam 1e-4, the paper's ColorMNIST networks) of
VAE, AVAE (its default sampled delusion, and `avae_mean`, the decoder mean of
Algorithm 1, so the sample's cost shows), SmoothEncoder (epsilon 0.1, 5 PGD
steps), SEAVAE (the same attack) and AVAESelfSupervised, all side by side in one run: every model is timed
`--repeats` times in a rotating order, so a noisy machine slows them alike,
and the median is reported with its ratio to the VAE, and as training images
per second (batch size over step time).

Peak memory is measured apart, each model in a fresh subprocess (it cannot be
told apart among models that share one process). Just before the model is
built, the process's high-water mark of resident memory is reset (Linux:
writing 5 to /proc/self/clear_refs resets VmHWM); after the model has trained
`--memory-steps` steps, the new high-water mark is its peak, and its growth over
the resident set at the reset is what the model, its optimizer state and its
training step add on top of TensorFlow and the data. On a GPU also TensorFlow's
peak device allocation (`tf.config.experimental.get_memory_info`).
`--no-memory` skips it.

Target on this 2-core CPU: SE with 5 attack steps at most 3.5x a VAE step.

Usage:
    python benchmarks/time_factor.py
    python benchmarks/time_factor.py --arch conv --steps 10 --repeats 3 --json runs/time.json
"""

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

import keras
import tensorflow as tf
from train_step import ARCHITECTURES, EpochTimer, environment, make_dataset

import keras_avae
from keras_avae.models.compilation import DEFAULT_STEPS_PER_EXECUTION

LATENT_DIM = 64
LEARNING_RATE = 1e-4
SEED = 0
# Table 1: SE trained at radius 0.1 with 5 PGD steps; rho = 0.975, rho_SE = 0.95.
SE_EPSILON = 0.1
SE_ATTACK_STEPS = 5
SE_TARGET = 3.5
PAPER_TIME_FACTORS = {"vae": 1.0, "avae": 1.5, "avae_mean": 1.5, "se": 4.0, "seavae": 4.7, "avae_ss": 1.5}

MODELS = {
    "vae": lambda networks: keras_avae.VAE(*networks, seed=SEED),
    # The default AVAE draws its delusion from p(x~|z); avae_mean decodes the mean (Algorithm 1),
    # so the two rows side by side give the sampled delusion's cost.
    "avae": lambda networks: keras_avae.AVAE(*networks, seed=SEED),
    "avae_mean": lambda networks: keras_avae.AVAE(*networks, delusion="mean", seed=SEED),
    "se": lambda networks: keras_avae.SmoothEncoder(
        *networks, epsilon=SE_EPSILON, train_attack_steps=SE_ATTACK_STEPS, seed=SEED
    ),
    "seavae": lambda networks: keras_avae.SEAVAE(
        *networks, epsilon=SE_EPSILON, train_attack_steps=SE_ATTACK_STEPS, seed=SEED
    ),
    "avae_ss": lambda networks: keras_avae.AVAESelfSupervised(*networks, seed=SEED),
}
DEFAULT_STEPS = {"mlp": 100, "conv": 10}
DEFAULT_MEMORY_STEPS = 5
KIB_PER_MIB = 1024
# What /proc/self/clear_refs takes to reset the resident high-water mark (proc(5)).
RESET_PEAK_RSS = "5"
BYTES_PER_MIB = 1024**2


class Runner:
    """One model, compiled as a user would (`compile(optimizer, jit_compile=...)`)."""

    def __init__(self, name, arch, batch_size, jit_compile, dataset):
        self.name = name
        self.model = MODELS[name](ARCHITECTURES[arch](latent_dim=LATENT_DIM))
        self.model.build((None,) + self.model.encoder.input_shape[1:])
        self.model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), jit_compile=jit_compile)
        self.batch_size = batch_size
        self.dataset = dataset
        self.seconds = []

    def run(self, steps):
        timer = EpochTimer()
        kwargs = {"epochs": 1, "steps_per_epoch": steps, "verbose": 0, "callbacks": [timer]}
        if isinstance(self.model, keras_avae.AVAESelfSupervised):
            self.model.fit(batch_size=self.batch_size, **kwargs)
        else:
            self.model.fit(self.dataset, shuffle=False, **kwargs)
        wall_seconds, _ = timer.elapsed
        return wall_seconds / steps


def measure(runners, steps, repeats):
    for runner in runners:
        # Trace and compile, with the steps per execution the timed runs get: the library's default,
        # lowered to its greatest common divisor with `steps_per_epoch` (`Compilation._steps_per_execution_for`).
        runner.run(math.gcd(DEFAULT_STEPS_PER_EXECUTION, steps))
    for repeat in range(repeats):
        order = runners[repeat % len(runners):] + runners[: repeat % len(runners)]
        for runner in order:
            runner.seconds.append(runner.run(steps))


def memory_status_mib(field):
    """A memory field of /proc/self/status (Linux), e.g. VmRSS (now) or VmHWM (peak), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / KIB_PER_MIB
    raise RuntimeError(f"/proc/self/status has no {field}: peak memory needs Linux (or pass --no-memory)")


def reset_peak_rss():
    """Resets this process's resident high-water mark VmHWM to the current resident set (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write(RESET_PEAK_RSS)


def measure_memory_here(name, arch, batch_size, jit_compile, steps):
    """Peak memory that training model `name` adds to this process: host RSS, and the GPU's if any."""
    dataset = make_dataset(batch_size)
    next(iter(dataset))
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        tf.config.experimental.reset_memory_stats(gpus[0].name)
    reset_peak_rss()
    before = memory_status_mib("VmRSS")
    Runner(name, arch, batch_size, jit_compile, dataset).run(steps)
    peak = memory_status_mib("VmHWM")
    result = {"model": name, "peak_rss_mib": peak, "peak_rss_growth_mib": peak - before}
    if gpus:
        result["gpu_peak_mib"] = tf.config.experimental.get_memory_info(gpus[0].name)["peak"] / BYTES_PER_MIB
    return result


def measure_memory(args):
    """`measure_memory_here` for each model, each in a fresh Python process."""
    results = {}
    for name in args.models:
        command = [sys.executable, __file__, "--arch", args.arch, "--batch-size", str(args.batch_size),
                   "--memory-steps", str(args.memory_steps), "--memory-of", name]
        if args.jit_compile:
            command.append("--jit-compile")
        completed = subprocess.run(command, capture_output=True, text=True, check=True)
        results[name] = json.loads(completed.stdout.strip().splitlines()[-1])
    return results


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="mlp")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, from " + ",".join(MODELS))
    parser.add_argument("--steps", type=int, default=None, help=f"timed steps per repeat (default {DEFAULT_STEPS})")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--jit-compile", action="store_true", help="compile(jit_compile=True); default: Keras's auto")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure each model's peak memory in a subprocess (default: on)")
    parser.add_argument("--memory-steps", type=int, default=DEFAULT_MEMORY_STEPS,
                        help=f"training steps of the memory measurement (default {DEFAULT_MEMORY_STEPS})")
    parser.add_argument("--memory-of", choices=sorted(MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    requested = {name.strip() for name in args.models.split(",") if name.strip()}
    unknown = sorted(requested - set(MODELS))
    args.models = [name for name in MODELS if name in requested]  # the VAE first
    if unknown or "vae" not in requested:
        parser.error(f"--models must include vae and come from {','.join(MODELS)}; unknown: {unknown}")
    return args


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(SEED)
    jit_compile = True if args.jit_compile else "auto"
    if args.memory_of:  # the child process of `measure_memory`
        print(json.dumps(measure_memory_here(args.memory_of, args.arch, args.batch_size, jit_compile,
                                             args.memory_steps)))
        return None
    steps = args.steps or DEFAULT_STEPS[args.arch]
    env = environment()
    print(f"time factor: {args.arch}, batch {args.batch_size}, {steps} steps x {args.repeats} repeats, "
          f"TensorFlow {env['tensorflow']}, Keras {env['keras']}, {env['cpu_count']} CPUs")
    dataset = make_dataset(args.batch_size)
    runners = [Runner(name, args.arch, args.batch_size, jit_compile, dataset) for name in args.models]
    started = time.perf_counter()
    measure(runners, steps, args.repeats)
    memory = measure_memory(args) if args.memory else {}
    vae_ms = 1000 * statistics.median(runners[0].seconds)
    rows = []
    print(f"\n{'model':<9} {'ms/step':>8} {'images/s':>9} {'x VAE':>7} {'paper (GPU)':>12} {'peak MiB':>9} {'growth':>7}")
    for runner in runners:
        ms = 1000 * statistics.median(runner.seconds)
        row = {"model": runner.name, "ms_per_step": ms, "images_per_second": 1000 * args.batch_size / ms,
               "time_factor": ms / vae_ms, **memory.get(runner.name, {})}
        rows.append(row)
        peak = f"{row['peak_rss_mib']:9.0f} {row['peak_rss_growth_mib']:7.0f}" if memory else f"{'-':>9}"
        if "gpu_peak_mib" in row:
            peak += f" (GPU {row['gpu_peak_mib']:.0f})"
        print(f"{runner.name:<9} {ms:8.2f} {row['images_per_second']:9.0f} {ms / vae_ms:6.2f}x "
              f"{PAPER_TIME_FACTORS[runner.name]:11.1f}x {peak}")
    if memory:
        print(f"peak MiB: peak resident set of a fresh process that trained the model {args.memory_steps} steps; "
              "growth: over its resident set just before the model was built")
    for row in rows:
        if row["model"] == "se":
            verdict = "ok" if row["time_factor"] <= SE_TARGET else "MISS"
            print(f"\n{verdict}: SE with {SE_ATTACK_STEPS} attack steps is {row['time_factor']:.2f}x a VAE step "
                  f"(target <= {SE_TARGET}x)")
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"environment": env, "args": vars(args), "rows": rows}, file, indent=2)
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
