"""ColorMNIST experiments: train one model (`train`) and evaluate a saved one (`evaluate`).

Section 4 of Cemgil et al. (2020): i) train an encoder-decoder pair without
labels; ii) freeze the encoder and fit a linear classifier on its mean f^mu
per task (digit, colour); iii) attack encoder + classifier with L-inf PGD.
Besides the robust accuracy, the decoder is scored by its reconstruction
MSE and the FID of its samples.

FID extractor. The standard InceptionV3 weights cannot be downloaded on
machines without a network, so unless `inception_weights` names a local
weights file, FID uses the 128-d penultimate features of a small ColorMNIST
classifier (digit x colour, 70 classes) trained here on the training images
and saved as `fid_extractor.keras` (pass it back as `fid_extractor` so that
FIDs of several runs compare). Such FIDs compare models with each other, not
with the paper's InceptionV3 numbers.

Data. MNIST is read from `data`, else `$KERAS_AVAE_MNIST_PATH`, else
`../shared/data/mnist.npz` next to the repository, else downloaded. Colours
are drawn with seed 0 for every run, so runs with different seeds are scored
on the same images.

Example:
    metrics = train({"model": "avae", "arch": "mlp", "scale": "small", "out": "runs/avae_mlp"})
    metrics = evaluate({"model_path": "runs/avae_mlp/model.keras", "attack_steps": 20, "restarts": 2})
"""

import os
import time
from pathlib import Path

import keras

from keras_avae import architectures, distribute, files
from keras_avae.evaluation import checks as checks_lib
from keras_avae.evaluation import encoders, report, robustness
from keras_avae.datasets.color_mnist import (
    COLOR_NAMES,
    MAX_PIXEL_VALUE,
    MNIST_PATH_ENV_VAR,
    NUM_DIGITS,
    color_mnist,
)
from keras_avae.experiments import registry, run, run_directory, summaries
from keras_avae.experiments.fid_scorer import FIDScorer
from keras_avae.experiments.settings import EvaluateSettings, TrainSettings

SHARED_MNIST_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist.npz"
"""The project's local MNIST copy, used when neither `data` nor the env var is set."""

DATA_SEED = 0
"""Seed of the colours, the same for every run."""

ARCHITECTURES = {"mlp": architectures.mlp, "conv": architectures.conv}
"""The ColorMNIST networks of Appendix F."""

NUM_COLORS = len(COLOR_NAMES)

EXTRACTOR_FEATURES = 128
"""Width of the FID classifier's penultimate layer (its features)."""

EXTRACTOR_BATCH_SIZE = 128
EXTRACTOR_LEARNING_RATE = 1e-3

COLOR_MNIST_RANGE = (0.0, 1.0)
"""The pixel range of `keras_avae.datasets.color_mnist` images (`settings.EvaluateSettings`' default
`data_range` for a bare encoder)."""


# --------------------------------------------------------------------- data


def resolve_data_path(data=None):
    """The MNIST file to read: `data`, else the env var, else the shared copy, else None (download)."""
    if data:
        return os.fspath(data)
    if os.environ.get(MNIST_PATH_ENV_VAR):
        return os.environ[MNIST_PATH_ENV_VAR]
    if SHARED_MNIST_PATH.exists():
        return os.fspath(SHARED_MNIST_PATH)
    return None


def load_data(path, train_size, test_size):
    """The first `train_size` training and `test_size` test images of ColorMNIST."""
    train = color_mnist("train", path=path, seed=DATA_SEED, limit=train_size)
    test = color_mnist("test", path=path, seed=DATA_SEED, limit=test_size)
    return train, test


def experiment_data(train_data, test_data, source):
    """The `data` dict of `run.run_one` for ColorMNIST arrays."""
    return {
        "train_inputs": train_data[0],
        "probe_data": train_data,
        "test_data": test_data,
        "num_train": len(train_data[0]),
        "source": source,
    }


def networks(config, input_shape):
    """The encoder and decoder of `config.arch` (Appendix F; the MLP's size may come from the scale),
    in `config.dtype_policy`."""
    arch = config.arch
    if arch not in ARCHITECTURES:
        raise ValueError(f"`arch` must be one of {tuple(ARCHITECTURES)}. Received: arch={arch!r}")
    kwargs = {"latent_dim": config.latent_dim, "input_shape": input_shape, "dtype": config.dtype_policy}
    if arch == "mlp":
        for key, name in (("mlp_hidden_units", "hidden_units"), ("mlp_hidden_layers", "hidden_layers")):
            if getattr(config, key) is not None:
                kwargs[name] = getattr(config, key)
    return ARCHITECTURES[arch](**kwargs)


def build_model(config, input_shape, pretrained=None):
    """The model of a resolved `train` config (`TrainSettings.resolved`), built, not compiled."""
    return registry.model_from_config(config, networks, input_shape, pretrained)


# ------------------------------------------------------------ FID extractor


def fid_classifier(input_shape=(28, 28, 3), num_classes=NUM_DIGITS * NUM_COLORS):
    """A small convnet classifying ColorMNIST into digit x colour; its `features` layer is the FID extractor."""
    inputs = keras.Input(input_shape, name="x")
    h = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv_0")(inputs)
    h = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="conv_1")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    features = keras.layers.Dense(EXTRACTOR_FEATURES, activation="relu", name="features")(h)
    logits = keras.layers.Dense(num_classes, name="logits")(features)
    return keras.Model(inputs, logits, name="color_mnist_classifier")


def joint_labels(labels):
    """The 70-class label digit * 7 + colour."""
    return labels["digit"] * NUM_COLORS + labels["color"]


def train_fid_extractor(train_data, test_data=None, epochs=3, seed=0, verbose=0):
    """Trains `fid_classifier` and returns its feature model and a description.

    Returns:
        `(features, info)`: `features` maps images to the `(batch, 128)`
        penultimate ReLU features (a Keras model named
        "color_mnist_classifier_features"); `info` has `description`,
        `epochs`, `num_train` and `test_accuracy` (on `test_data`, if given).
    """
    keras.utils.set_random_seed(seed)
    x_train, train_labels = train_data
    classifier = fid_classifier(x_train.shape[1:])
    classifier.compile(
        optimizer=keras.optimizers.Adam(EXTRACTOR_LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    classifier.fit(
        x_train, joint_labels(train_labels), epochs=epochs, batch_size=EXTRACTOR_BATCH_SIZE, verbose=verbose
    )
    accuracy = None
    if test_data is not None:
        x_test, test_labels = test_data
        scores = classifier.evaluate(x_test, joint_labels(test_labels), verbose=0, return_dict=True)
        accuracy = float(scores["accuracy"])
    features = keras.Model(
        classifier.input, classifier.get_layer("features").output, name="color_mnist_classifier_features"
    )
    description = (
        f"a ColorMNIST digit x colour classifier trained here ({len(x_train)} images, {epochs} epoch(s)"
        + (f", test accuracy {100 * accuracy:.1f}%" if accuracy is not None else "")
        + f"), its {EXTRACTOR_FEATURES}-d penultimate features"
    )
    info = {"description": description, "epochs": epochs, "num_train": len(x_train), "test_accuracy": accuracy}
    return features, info


def fid_scorer_for(config, train_data, test_data, out):
    """The `FIDScorer` that the settings `config` ask for, or None when `config.fid` is off.

    `inception_weights` (a local InceptionV3 weights file) uses the standard
    extractor; `fid_extractor` loads a saved feature model; otherwise a
    ColorMNIST classifier is trained (`train_fid_extractor`) and saved to
    `out/fid_extractor.keras`. Real images: the first `fid_samples` test images.
    """
    if not config.fid:
        return None
    real = test_data[0][: config.fid_samples]
    if config.inception_weights:
        path = os.fspath(config.inception_weights)
        return FIDScorer(real, weights=path, description=f"InceptionV3 pool3 (weights {path})", seed=config.seed)
    if config.fid_extractor:
        path = os.fspath(config.fid_extractor)
        extractor = files.load_model(path)
        description = f"{extractor.name} loaded from {path}"
        return FIDScorer(real, feature_extractor=extractor, description=description, seed=config.seed)
    extractor, info = train_fid_extractor(
        train_data, test_data, epochs=config.extractor_epochs, seed=config.seed, verbose=0
    )
    path = Path(out) / "fid_extractor.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    files.save_model(extractor, path)
    description = f"{info['description']}, saved as {path}"
    return FIDScorer(real, feature_extractor=extractor, description=description, seed=config.seed)


# -------------------------------------------------------------------- train


def train(overrides=None):
    """Trains and evaluates one model on ColorMNIST and writes its run directory.

    Args:
        overrides: a dict of settings (fields of `settings.TrainSettings`; None values keep the
            defaults, and the budget's the scale's values), or a `TrainSettings`.

    Returns:
        The metrics dict written to `<out>/metrics.json`: `config`,
        `num_train`, `num_test`, `train_seconds`, `seconds_per_step`,
        `train_terms`, `test_terms`, `test_reconstruction_mse` (Table 1's
        scale), `test_reconstruction_sse` (and `_255`), `probe_accuracy`,
        `accuracy` (robust, task -> radius -> accuracy), `fid`, `fid_extractor`.
    """
    config = TrainSettings.from_dict(overrides).resolved()
    with distribute.command(config) as config, files.locked(config.out):  # worker 0 writes config.out
        return _train(config, Path(config.out))


def check_run_directory(out, overwrite, resume=False):
    """Refuses to replace a finished run in `out` unless `overwrite`, and an interrupted one unless
    `resume` or `overwrite`; with `overwrite`, deletes the interrupted run's backup.

    Raises:
        FileExistsError: with what is there and which flag to pass.
    """
    out = Path(distribute.chief_path(out))  # every worker checks the chief's folder; the chief deletes
    backup = out / run.BACKUP_FOLDER
    if overwrite:
        run.discard_backup(out)
        return
    if (out / "metrics.json").is_file():
        raise FileExistsError(
            f"{out} already holds a finished run (metrics.json); pass --overwrite to replace it, or choose "
            "another --out."
        )
    if backup.is_dir() and not resume:
        raise FileExistsError(
            f"{out} holds an interrupted run ({run.BACKUP_FOLDER}/); pass --resume to continue it or "
            "--overwrite to start again."
        )


def _train(config, out):
    check_run_directory(out, config.overwrite, config.resume)
    data_path = resolve_data_path(config.data)
    train_data, test_data = load_data(data_path, config.train_size, config.test_size)
    data = experiment_data(train_data, test_data, data_path)
    if config.resume and not (out / run.BACKUP_FOLDER).is_dir() and config.verbose:
        print(f"No interrupted run in {out} to resume ({run.BACKUP_FOLDER}/ is absent): training from the start.")
    vae_config = None
    if config.model == "avae_ss" and not config.pretrained:
        vae_config = config.replace(model="vae", out=os.fspath(out / "vae"), robustness=False, figures=False)
        run.check_resumable(Path(vae_config.out) / run.BACKUP_FOLDER, run.actual_sizes(vae_config, data))
    # Before anything is written (the FID extractor): a resume with other settings is refused.
    run.check_resumable(out / run.BACKUP_FOLDER, run.actual_sizes(config, data))
    fid_scorer = fid_scorer_for(config, train_data, test_data, out)
    pretrained, reference = None, None
    if config.model == "avae_ss":
        if config.pretrained:
            pretrained = files.load_model(config.pretrained)
        else:
            if config.verbose:
                print(f"AVAE-SS post-trains a VAE: training one first, in {vae_config.out}")
            loaded = run.load_finished(run.actual_sizes(vae_config, data)) if config.resume else None
            if loaded is not None:
                pretrained, reference, _ = loaded
            else:
                pretrained, reference = run.run_one(
                    vae_config, data, networks, backup_dir=Path(vae_config.out) / run.BACKUP_FOLDER
                )
    model, metrics = run.run_one(
        config, data, networks, fid_scorer=fid_scorer, pretrained=pretrained, reference=reference,
        backup_dir=out / run.BACKUP_FOLDER,
    )
    metrics["test_reconstruction_sse_255"] = metrics["test_reconstruction_sse"] * MAX_PIXEL_VALUE**2
    run_directory.write_json(out / "metrics.json", metrics)
    print(train_report(metrics))
    return metrics


def train_report(metrics):
    """The headline numbers of a `train` run, as text."""
    config = metrics["config"]
    lines = [
        f"\n{metrics['label']} / {metrics['arch']}: {metrics['num_train']} training images, "
        f"{config['epochs']} epoch(s) in {metrics['train_seconds']:.1f} s "
        f"({1000 * (metrics['seconds_per_step'] or 0):.1f} ms per step)",
        f"Test ELBO per image (nats): {metrics['test_terms'].get('elbo', float('nan')):.1f}",
        f"Test reconstruction error of g(f^mu(x)) over {metrics['num_test']} images: MSE "
        f"{metrics['test_reconstruction_mse']:.1f} per pixel in 0..255 units (Table 1's scale); "
        f"{metrics['test_reconstruction_sse']:.2f} per image, summed, pixels in [0, 1]",
        "Linear-probe test accuracy of f^mu: "
        + ", ".join(f"{task} {accuracy:.4f}" for task, accuracy in metrics["probe_accuracy"].items()),
    ]
    if metrics.get("time_factor") is not None:
        lines.append(f"Time factor (seconds per step relative to the VAE): ×{metrics['time_factor']:.2f}")
    if metrics.get("accuracy"):
        lines += ["Adversarial accuracy in % (Table 1's layout):", summaries.results_table([metrics])]
    if metrics.get("fid") is not None:
        fid = metrics["fid_extractor"]
        lines.append(
            f"FID {metrics['fid']:.2f}: {fid['generated_images']} samples vs {fid['real_images']} test images, "
            f"extractor: {fid['extractor']}"
        )
    lines.append(f"Saved {metrics['out']}/model.keras, config.json, metrics.json, summary.md, figures/ and logs/")
    return "\n".join(lines)


# ----------------------------------------------------------------- evaluate


def evaluate(overrides=None):
    """Evaluates a saved model or encoder on ColorMNIST: robust accuracy (Table 1), MSE and FID.

    Fits linear probes on f^mu of the training images, attacks encoder +
    probe with `AdversarialEvaluator`'s ensemble at each radius, checks the
    attack, prints the table, and writes `<out>/metrics.json`, `config.json`,
    `summary.md` and figures (and `json`, if set, `report.to_json` of the
    results). A bare encoder (`encoder`) gets the robustness part only.

    Args:
        overrides: a dict of settings (fields of `settings.EvaluateSettings`), or an
            `EvaluateSettings`.

    Returns:
        The metrics dict; `accuracy[task][radius]` holds the robust accuracies
        (radii as strings, `report.accuracy_from_json` turns them into floats),
        `robustness` the checks and per-example records.
    """
    config = EvaluateSettings.from_dict(overrides).resolved()
    with distribute.command(config) as config, files.locked(config.out):  # worker 0 writes config.out
        return _evaluate(config, Path(config.out))


def _evaluate(config, out):
    check_run_directory(out, config.overwrite)
    model = encoders.load(config.source)
    if config.model_path and not hasattr(model, "decoder"):
        raise ValueError(
            f"{config.model_path} is not a keras_avae model; evaluate a bare encoder with `--encoder`."
        )
    is_model = bool(config.model_path)
    if is_model and not model.compiled:  # a model saved before `compile`; `evaluate` reports its test terms
        model.compile()
    source = config.source
    model_name = config.model_name or (type(model).__name__ if is_model else Path(source.rstrip("/")).name)
    data_path = resolve_data_path(config.data)
    train_data, test_data = load_data(data_path, config.train_size, config.test_size)
    config = run.actual_sizes(config, {"num_train": len(train_data[0]), "test_data": test_data})
    evaluator = run.make_evaluator(train_data, test_data, seed=config.seed, **config.evaluator_settings())
    start = time.perf_counter()
    if is_model:
        fid_scorer = fid_scorer_for(config, train_data, test_data, out)
        evaluation = run.evaluate_model(model, test_data, evaluator, fid_scorer=fid_scorer)
        results = report.accuracy_from_json(evaluation["accuracy"])
    else:
        fid_scorer = None
        encoder = encoders.as_encoder(model, config.data_range)
        encoders.check_encoder(encoder, test_data[0][:2], name=source)  # before the probes and attacks
        results = run.attack(evaluator, encoder, evaluator.train_probes(encoder))
        evaluation = {
            "accuracy": report.accuracy_to_json(results),
            "robustness": report.to_document(results),
            "probe_accuracy": {task: accuracies[0.0] for task, accuracies in results.items() if 0.0 in accuracies},
        }
    seconds = time.perf_counter() - start
    metrics = {
        "model": model_name,
        "label": model_name,
        "arch": getattr(getattr(model, "encoder", None), "name", None),
        "model_path": source,
        "config": config.record(),
        "data_path": data_path,
        "out": os.fspath(out),
        "num_train": int(len(train_data[0])),
        "num_test": int(len(test_data[0])),
        "num_attacked": int(len(evaluator.test_data[0])),
        **evaluation,
        "evaluation_seconds": seconds,
        "fid_extractor": fid_scorer.get_config() if fid_scorer is not None else None,
        "robustness_config": evaluator.get_config(),
    }
    print(
        f"\n{model_name} ({source}): linear probes on f^mu fitted on {metrics['num_train']} training images, "
        f"attacked on {metrics['num_attacked']} test images by {', '.join(evaluator.attacks)} "
        f"({config.attack_steps} steps, {config.restarts} PGD starts x losses {', '.join(config.losses)}); "
        "adversarial accuracy in %:\n"
    )
    robustness_results = robustness.RobustnessResults(
        results, checks=[checks_lib.Check(**check) for check in metrics["robustness"]["checks"]]
    )
    print(report.to_markdown(robustness_results, model_name=model_name))
    if is_model:
        print(
            f"Reconstruction MSE (per pixel, 0..255 units) on {metrics['num_test']} test images: "
            f"{metrics['test_reconstruction_mse']:.1f}"
        )
    if metrics.get("fid") is not None:
        print(f"FID {metrics['fid']:.2f} (extractor: {metrics['fid_extractor']['extractor']})")
    print(f"Evaluated in {seconds:.1f} s.")
    if config.checks:
        problems = metrics["robustness"]["problems"]
        print("Checks FAILED (the numbers may be too high):\n  " + "\n  ".join(problems) if problems else "Checks passed.")
    if config.figures and is_model:
        metrics["figures"] = run_directory.run_figures(out / "figures", model, model_name, test_data[0], metrics["accuracy"])
    run_directory.write_run(out, config.record(), metrics, data_path)
    if config.json and distribute.is_chief():
        document = {
            **metrics["robustness"],
            "model": model_name,
            "config": {**evaluator.get_config(), "model_path": source, "data_path": data_path, "seconds": seconds},
        }
        path = run_directory.write_json(config.json, document)
        print(f"Wrote {path}")
    print(f"Wrote {out}/metrics.json, config.json, summary.md" + (" and figures/" if metrics.get("figures") else ""))
    return metrics


def robust_accuracy(metrics):
    """`results[task][epsilon]` (float radii) of a metrics dict, as `AdversarialEvaluator.evaluate` returns."""
    return report.accuracy_from_json(metrics["accuracy"])
