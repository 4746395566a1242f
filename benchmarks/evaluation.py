"""The evaluation's cost: the attack ensemble against the evaluator before it, side by side, per example.

Issue 10's target: the paper's protocol (40 steps, 10 restarts) with the whole
ensemble (PGD with cross-entropy and margin, APGD-CE, targeted APGD-DLR,
Square) and its checks, on digit and colour at epsilon 0.1 and 0.2, at least
5x faster than the PGD-only evaluator of `--baseline-rev` for a model that is
not robust, and never a higher robust accuracy on any example.

For each saved model the script trains the linear probes once (this
library's `train_probes`), saves them, and evaluates the same probes on the
same test images twice:

- "before": the evaluator at git revision `--baseline-rev` (PGD only, every run
  on every example, last iterate), run from a temporary `git worktree` of that
  revision in a subprocess, so its code is the code as it was;
- "ensemble": `keras_avae.evaluation.AdversarialEvaluator` with `--attacks`.

It prints the seconds of each, the speed-up, the images per second (test
images x tasks x radii over seconds), the robust accuracies, and the number of
examples the ensemble calls robust that the baseline broke (must be 0, up to
random starts: `--seed` draws those of both from another seed, and two saved
baselines of one model compared give the baseline's own seed-to-seed
disagreement). The two runs of a model follow each other, so a load that changes slowly slows
them alike.

Usage:
    python benchmarks/evaluation.py runs/table1_small/mlp/VAE/model.keras runs/table1_small/mlp/AVAE/model.keras
    python benchmarks/evaluation.py runs/table1_small/conv/VAE/model.keras --test-size 100 --restarts 2

The baseline is slow on a conv net (docs/speed.md):
`--save-baseline` keeps its result and `--reuse-baseline` times a changed
ensemble against it, for the same model and settings only.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]

BASELINE_REV = "5caa0cb"
"""The last revision whose evaluator ran PGD only (callbacks/robustness.py before the ensemble)."""

_BASELINE_SCRIPT = """
import json, sys, time
import numpy as np, keras
import keras_avae
from keras_avae.callbacks.robustness import RobustnessEvaluator
arguments = json.loads(sys.argv[1])
data = np.load(arguments["data"])
model = keras.saving.load_model(arguments["model"])
probes = {task: keras.saving.load_model(path) for task, path in arguments["probes"].items()}
labels = {task: data["y_" + task] for task in probes}
evaluator = RobustnessEvaluator(
    (data["x"], labels), (data["x"], labels), epsilons=arguments["epsilons"],
    attack_steps=arguments["steps"], restarts=arguments["restarts"], seed=arguments["seed"], verbose=0,
)
start = time.perf_counter()
masks = evaluator._robust_masks(model, probes, evaluator.epsilons, evaluator.attack_steps)
seconds = time.perf_counter() - start
np.savez(arguments["out"], seconds=seconds, **{f"{task}_{e:g}": m for task, by in masks.items() for e, m in by.items()})
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="saved keras_avae models (.keras)")
    parser.add_argument("--data", default=None, help="mnist.npz (default: ../shared/data/mnist.npz)")
    parser.add_argument("--train-size", type=int, default=10000, help="images the probes are fitted on")
    parser.add_argument("--test-size", type=int, default=1000, help="test images attacked")
    parser.add_argument("--epsilons", default="0.1,0.2")
    parser.add_argument("--attack-steps", type=int, default=40)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--attacks", default="standard", help="the ensemble's attacks (default: standard)")
    parser.add_argument("--no-checks", action="store_true", help="time the ensemble without its checks")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random starts, of the ensemble and of the baseline alike (default: 0)")
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument("--save-baseline", default=None, metavar="PATHS",
                        help="comma-separated .npz files, one per model: keep the baseline's result there")
    parser.add_argument("--reuse-baseline", default=None, metavar="PATHS",
                        help="comma-separated .npz files from --save-baseline, one per model: take the baseline's "
                             "result from them instead of running it (the same model and settings are required)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import keras

    from keras_avae.datasets import color_mnist
    from keras_avae.evaluation import AdversarialEvaluator, probes
    from keras_avae.experiments.color_mnist import resolve_data_path

    reuse, save = (_paths(value, len(args.models), flag) for value, flag in
                   ((args.reuse_baseline, "--reuse-baseline"), (args.save_baseline, "--save-baseline")))
    path = resolve_data_path(args.data)
    train = color_mnist("train", path=path, limit=args.train_size)
    test = color_mnist("test", path=path, limit=args.test_size)
    epsilons = tuple(float(e) for e in args.epsilons.split(","))
    scratch = Path(tempfile.mkdtemp(prefix="evaluation_benchmark_"))
    baseline = scratch / "baseline"
    subprocess.run(["git", "-C", str(REPOSITORY), "worktree", "add", "-f", "--detach", str(baseline), args.baseline_rev],
                   check=True, capture_output=True)
    figures = []
    try:
        np.savez(scratch / "test.npz", x=test[0], **{f"y_{task}": y for task, y in test[1].items()})
        for index, model_path in enumerate(args.models):
            model = keras.saving.load_model(model_path)
            trained = probes.train_probes(model, train)
            probe_paths = {}
            for task, probe in trained.items():
                probe_paths[task] = os.fspath(scratch / f"probe_{index}_{task}.keras")
                probe.save(probe_paths[task])
            evaluator = AdversarialEvaluator(
                train, test, epsilons=epsilons, attack_steps=args.attack_steps, restarts=args.restarts,
                attacks=args.attacks.split(",") if "," in args.attacks else args.attacks, checks=not args.no_checks,
                seed=args.seed,
            )
            start = time.perf_counter()
            results = evaluator.evaluate_with_probes(model, trained)
            ensemble_seconds = time.perf_counter() - start
            out = scratch / f"baseline_{index}.npz"
            arguments = {
                "data": os.fspath(scratch / "test.npz"), "model": os.fspath(Path(model_path).resolve()),
                "probes": probe_paths, "epsilons": list(epsilons), "steps": args.attack_steps,
                "restarts": args.restarts, "seed": args.seed, "out": os.fspath(out),
            }
            baseline_settings = json.dumps({
                "model": arguments["model"], "test_size": len(test[0]), "train_size": len(train[0]),
                "epsilons": list(epsilons), "steps": args.attack_steps, "restarts": args.restarts,
                "baseline_rev": args.baseline_rev, **({"seed": args.seed} if args.seed else {}),
            }, sort_keys=True)
            if reuse:
                before = _reused_baseline(reuse[index], baseline_settings)
            else:
                subprocess.run(
                    [sys.executable, "-c", _BASELINE_SCRIPT, json.dumps(arguments)],
                    check=True, cwd=baseline, env={**os.environ, "PYTHONPATH": os.fspath(baseline)},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
                before = dict(np.load(out))
            if save:
                np.savez(save[index], settings=baseline_settings, **{k: v for k, v in before.items() if k != "settings"})
            figure = {"model": model_path, "ensemble_seconds": ensemble_seconds,
                      "baseline_seconds": float(before["seconds"]), "accuracy": {}, "baseline_accuracy": {},
                      "robust_only_in_ensemble": 0, "broken_by": {}, "flagged": results.flagged,
                      "attack_seconds": results.seconds, "baseline_reused_from": reuse[index] if reuse else None}
            for task in trained:
                for epsilon in epsilons:
                    mine = np.array([r is None for r in results.records[task][epsilon]])
                    theirs = before[f"{task}_{epsilon:g}"]
                    figure["accuracy"][f"{task} {epsilon:g}"] = float(mine.mean())
                    figure["baseline_accuracy"][f"{task} {epsilon:g}"] = float(theirs.mean())
                    figure["robust_only_in_ensemble"] += int((mine & ~theirs).sum())
                    figure["broken_by"][f"{task} {epsilon:g}"] = results.broken_by[task][epsilon]
            evaluations = len(test[0]) * len(trained) * len(epsilons)
            figure["speedup"] = figure["baseline_seconds"] / ensemble_seconds
            figure["ensemble_images_per_second"] = evaluations / ensemble_seconds
            figure["baseline_images_per_second"] = evaluations / figure["baseline_seconds"]
            figures.append(figure)
            print(
                f"{model_path}: before {figure['baseline_seconds']:.1f} s ({figure['baseline_images_per_second']:.1f} img/s), "
                f"ensemble {ensemble_seconds:.1f} s ({figure['ensemble_images_per_second']:.1f} img/s), "
                f"speed-up x{figure['speedup']:.2f}; robust only in the ensemble: {figure['robust_only_in_ensemble']}",
                flush=True,
            )
            if reuse:
                print(f"  (the baseline's seconds and verdicts are those saved in {reuse[index]})", flush=True)
            print("  seconds per attack (evaluation, without the checks): " + "; ".join(
                f"{task} " + ", ".join(f"{attack} {seconds:.1f}" for attack, seconds in by_attack.items())
                for task, by_attack in results.seconds.items()), flush=True)
            print("  accuracy before / ensemble: " + ", ".join(
                f"{key} {100 * figure['baseline_accuracy'][key]:.1f} / {100 * value:.1f}"
                for key, value in figure["accuracy"].items()), flush=True)
    finally:
        subprocess.run(["git", "-C", str(REPOSITORY), "worktree", "remove", "--force", str(baseline)], capture_output=True)
    settings = {"test_size": len(test[0]), "epsilons": list(epsilons), "attack_steps": args.attack_steps,
                "restarts": args.restarts, "attacks": args.attacks, "checks": not args.no_checks,
                "seed": args.seed, "baseline_rev": args.baseline_rev}
    if args.json:
        from keras_avae import files

        files.write_json(args.json, {"settings": settings, "models": figures})
    return figures


def _paths(value, count, flag):
    if value is None:
        return None
    paths = value.split(",")
    if len(paths) != count:
        raise SystemExit(f"{flag} needs one path per model ({count}); got {len(paths)}")
    return paths


def _reused_baseline(path, settings):
    """The baseline's result saved by --save-baseline, refused unless its model and settings are these."""
    before = dict(np.load(path))
    if str(before.pop("settings", "")) != settings:
        raise SystemExit(f"{path} was saved for other settings than {settings}; run the baseline again")
    return before


if __name__ == "__main__":
    main()
