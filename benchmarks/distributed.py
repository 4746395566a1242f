"""Images per second of training and of the evaluation on one process against two workers.

    python benchmarks/distributed.py                          # the defaults below, a few minutes
    python benchmarks/distributed.py --train-steps 4 --eval-images 12 --attack-steps 2   # a smoke run

Every configuration runs in fresh processes on this machine, on random ColorMNIST-shaped
images (28, 28, 3) and the MLP of Appendix F (`keras_avae.architectures.mlp`, latent 64):

    one, 1 thread      one process limited to one thread (`tf.config.threading`), global batch B
    one, 2 threads     one process with two threads, global batch B (what one process gets from
                       both cores of this machine)
    one, B/2, 1 thread one process, one thread, batch B/2: one worker's compute with no
                       communication, the reference of the communication share
    two workers        `--distribute multi-worker`: two processes (TF_CONFIG on free localhost
                       ports), one thread each, global batch B (B/2 per worker)

Training: a VAE's `fit` steps (Adam 1e-4, no XLA), timed over `--train-steps` steps after one
warm-up epoch; images/s = B x steps / seconds. Evaluation: the attack ensemble
(`keras_avae.evaluation.sharded`, PGD with both losses and Square, the checks off) on
`--eval-images` test images split across the workers; images/s = images / seconds.

Columns: "scaling efficiency" is the two workers' images/s over twice the one-thread process's;
"communication share" is 1 - (the B/2 step's time) / (the two workers' step time): the part of a
distributed step spent beyond its own compute (all-reduce, and waiting for the slower worker).
The evaluation exchanges its records once, at the end, so its share is that of the whole run.

Honest about this machine: it has two cores, shared with whatever else runs; two one-thread
workers can at best match one two-thread process, and gRPC on localhost is not a network. The
numbers say whether the distribution costs much, not how a GPU cluster scales.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
IMAGE_SHAPE = (28, 28, 3)


# ------------------------------------------------------------------ one process


def _worker(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from keras_avae import distribute

    strategy = distribute.make_strategy("multi-worker" if "TF_CONFIG" in os.environ else "none")
    import keras
    import numpy as np

    import keras_avae
    from keras_avae import architectures

    rng = np.random.default_rng(0)
    result = {}
    if args.job == "train":
        x = rng.random((args.batch_size * args.train_steps,) + IMAGE_SHAPE, dtype=np.float32)
        with strategy.scope():
            model = keras_avae.VAE(*architectures.mlp(latent_dim=64, input_shape=IMAGE_SHAPE), seed=0)
            model(x[:1])
            model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
        model.fit(x, batch_size=args.batch_size, epochs=1, verbose=0)  # warm-up: traces the step
        start = time.perf_counter()
        model.fit(x, batch_size=args.batch_size, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
        result = {"seconds": seconds, "images": len(x), "steps": args.train_steps}
    else:
        import warnings

        from keras_avae.evaluation import RobustnessEvaluator, sharded

        x_train = rng.random((256,) + IMAGE_SHAPE, dtype=np.float32)
        x_test = rng.random((args.eval_images,) + IMAGE_SHAPE, dtype=np.float32)
        labels = lambda n: {"digit": rng.integers(0, 10, n)}  # noqa: E731
        model = keras_avae.VAE(*architectures.mlp(latent_dim=64, input_shape=IMAGE_SHAPE), seed=0)
        model(x_train[:1])
        evaluator = RobustnessEvaluator(
            (x_train, labels(256)), (x_test, labels(args.eval_images)), epsilons=(0.0, 0.1),
            attack_steps=args.attack_steps, restarts=args.restarts, attacks=("pgd", "square"), square_queries=20,
            checks=False, batch_size=args.eval_chunk, probe_kwargs={"epochs": 1},
        )
        probes = evaluator.train_probes(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warm = RobustnessEvaluator(  # traces the attacks' functions on a chunk's shapes
                evaluator.train_data, (x_test[: args.eval_chunk], {"digit": evaluator.test_data[1]["digit"][: args.eval_chunk]}),
                epsilons=(0.0, 0.1), attack_steps=1, restarts=1, attacks=("pgd", "square"), square_queries=2,
                checks=False, batch_size=args.eval_chunk,
            )
            sharded.evaluate_with_probes(warm, model, probes, strategy=strategy)
            start = time.perf_counter()
            sharded.evaluate_with_probes(evaluator, model, probes, strategy=strategy)
            seconds = time.perf_counter() - start
        result = {"seconds": seconds, "images": args.eval_images}
    if distribute.is_chief(strategy):
        Path(args.out).write_text(json.dumps(result))


# ---------------------------------------------------------------------- driver


def _launch(args, job, workers, threads, batch_size, folder, name):
    from keras_avae import distribute

    out = Path(folder) / f"{name}.json"
    configs = distribute.local_tf_configs(workers) if workers > 1 else [None]
    base = [sys.executable, __file__, "--role", "worker", "--job", job, "--threads", str(threads),
            "--batch-size", str(batch_size), "--out", str(out), *_shared(args)]
    processes = []
    for config in configs:
        env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
        env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(REPOSITORY), env.get("PYTHONPATH")])),
                   TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        if config is not None:
            env["TF_CONFIG"] = config
        processes.append(subprocess.Popen(base, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + args.timeout
    try:
        for process in processes:
            _, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if process.returncode:
                raise RuntimeError(f"{name}: a worker failed:\n{stderr[-2000:]}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return json.loads(out.read_text())


def _shared(args):
    return ["--train-steps", str(args.train_steps), "--eval-images", str(args.eval_images),
            "--eval-chunk", str(args.eval_chunk), "--attack-steps", str(args.attack_steps),
            "--restarts", str(args.restarts)]


def run(args):
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for job in ("train", "evaluate"):
            half = max(1, args.batch_size // 2)
            cases = {
                "one, 1 thread": (1, 1, args.batch_size),
                "one, 2 threads": (1, 2, args.batch_size),
                "two workers": (2, 1, args.batch_size),
            }
            if job == "train":
                cases["one, B/2, 1 thread"] = (1, 1, half)
            results = {}
            for name, (workers, threads, batch_size) in cases.items():
                print(f"{job}: {name} ...", flush=True)
                results[name] = _launch(args, job, workers, threads, batch_size, folder, f"{job}_{name.replace(' ', '_').replace(',', '').replace('/', '')}")
                results[name]["images_per_second"] = results[name]["images"] / results[name]["seconds"]
            one, two = results["one, 1 thread"], results["two workers"]
            summary = {"scaling_efficiency": two["images_per_second"] / (2 * one["images_per_second"])}
            if job == "train":
                step_two = two["seconds"] / two["steps"]
                step_half = results["one, B/2, 1 thread"]["seconds"] / results["one, B/2, 1 thread"]["steps"]
                summary["communication_share"] = 1 - step_half / step_two
            else:
                summary["communication_share"] = None
            rows[job] = {"cases": results, **summary}
    return rows


def markdown(rows, args):
    lines = [
        f"Global batch {args.batch_size}, {args.train_steps} timed training steps; evaluation of {args.eval_images} "
        f"images (PGD {args.attack_steps} steps x {args.restarts} restarts x 2 losses, Square 20 queries), "
        f"{os.cpu_count()} CPU cores.",
        "",
        "| job | configuration | seconds | images/s |",
        "|---|---|---:|---:|",
    ]
    for job, row in rows.items():
        for name, case in row["cases"].items():
            lines.append(f"| {job} | {name} | {case['seconds']:.2f} | {case['images_per_second']:.1f} |")
    lines.append("")
    for job, row in rows.items():
        share = row["communication_share"]
        lines.append(
            f"{job}: scaling efficiency {row['scaling_efficiency']:.2f}"
            + (f", communication share {share:.2f}" if share is not None else "")
        )
    return "\n".join(lines)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=("driver", "worker"), default="driver", help=argparse.SUPPRESS)
    parser.add_argument("--job", choices=("train", "evaluate"), default="train", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=128, help="global batch of training")
    parser.add_argument("--train-steps", type=int, default=40, help="timed training steps")
    parser.add_argument("--eval-images", type=int, default=96, help="test images the ensemble attacks")
    parser.add_argument("--eval-chunk", type=int, default=24, help="images per chunk of the sharded evaluation")
    parser.add_argument("--attack-steps", type=int, default=10, help="PGD steps")
    parser.add_argument("--restarts", type=int, default=2, help="PGD restarts per loss")
    parser.add_argument("--timeout", type=float, default=900, help="seconds each configuration may take")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.role == "worker":
        _worker(args)
        return 0
    rows = run(args)
    print(markdown(rows, args))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
