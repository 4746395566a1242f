"""The evaluation protocol of Cemgil et al. (2020), Section 4, as functions over any data set.

One run (`run_one`) builds a model by name with the paper's hyper-parameters
(`build_model`), trains it while timing its steps (`train_model`), saves it,
evaluates it (`evaluate_model`: reconstruction MSE, linear probes, adversarial
accuracy with `RobustnessEvaluator`, FID) and writes a run directory:

    model.keras     the trained model (`keras.models.load_model`)
    config.json     every setting of the run, the data path and the versions used
    metrics.json    training time and terms, test terms, MSE, probe and robust accuracy, FID
    summary.md      the results as a table in the layout of Table 1
    figures/        reconstructions, samples, encode-decode chains, accuracy vs epsilon
    logs/           TensorBoard: `train/` per epoch (keras.callbacks.TensorBoard), `evaluation/`

`run_rows` runs a list of rows (the models of a table) this way and adds the
time factors. The data-set modules (`color_mnist`, `celeba`) supply the data,
the networks and the FID extractor.

Hyper-parameters from the paper: rho = 0.975 and rho_SE = 0.95 (Table 1
caption), latent dimension 64 (Section 4), the SE training radii 0.1 and 0.2
(Table 1's rows), the PGD budgets of Appendix F (see `scale`).
"""

import json
import math
import os
import platform
import re
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import keras_avae
from keras_avae import figures, files
from keras_avae.evaluation import probes as probes_lib
from keras_avae.evaluation import report, robustness
from keras_avae.evaluation.report import Column
from keras_avae.experiments.scale import OVERRIDABLE_FIELDS, steps_per_epoch
from keras_avae.experiments.step_timer import StepTimer
from keras_avae.evaluation import reconstruction_errors, representation_sensitivity
from keras_avae.models import AVAE, SEAVAE, VAE, AVAESelfSupervised, SmoothEncoder

MODEL_CLASSES = {
    "vae": VAE,
    "avae": AVAE,
    "se": SmoothEncoder,
    "seavae": SEAVAE,
    "avae_ss": AVAESelfSupervised,
}
"""Model names of the commands and the classes they build."""

MODEL_NAMES = tuple(MODEL_CLASSES)

DISPLAY_NAMES = {"vae": "VAE", "avae": "AVAE", "se": "SE", "seavae": "SE-AVAE", "avae_ss": "AVAE-SS"}
"""How the paper's tables name the models."""

RHO = 0.975
"""Table 1 caption: "the coupling strengths are rho = 0.975" (AVAE, SE-AVAE, AVAE-SS)."""

RHO_SE = 0.95
"""Table 1 caption: rho_SE = 0.95, the smooth encoder's coupling."""

SE_EPSILON = 0.1
"""Default L-inf radius of SE's training attack (Table 1 has 0.1 and 0.2)."""

CHOICE_VALUES = {
    name: values for cls in MODEL_CLASSES.values() for name, values in cls.OPEN_CHOICES.items()
}
"""The paper's open choices (model arguments, each class's `OPEN_CHOICES`) and their values."""

CHOICES = {
    name: tuple(model for model, cls in MODEL_CLASSES.items() if name in cls.OPEN_CHOICES) for name in CHOICE_VALUES
}
"""The models that take each open choice; a run's setting of one applies to those models and
is ignored by the others."""

EPSILONS = robustness.DEFAULT_EPSILONS
"""Evaluation radii of Table 1: 0 (clean), 0.1, 0.2."""

LOSSES = robustness.DEFAULT_LOSSES
"""PGD losses of the evaluation: cross-entropy and the Carlini-Wagner margin."""

ATTACKS = robustness.DEFAULT_ATTACKS
"""The evaluation's attacks: the ensemble (`keras_avae.evaluation.engine`)."""

EVAL_BATCH_SIZE = 256
"""Test images per `model.evaluate` batch."""

GRID_IMAGES = 36
"""Images in the reconstruction and sample grids."""

CHAIN_IMAGES = 4
"""Start images of the encode-decode chains (Figure 1)."""

SCALE_FIELDS = OVERRIDABLE_FIELDS + ("mlp_hidden_units", "mlp_hidden_layers")

EVALUATION_SETTINGS = (
    "attack_size",
    "epsilons",
    "attack_steps",
    "restarts",
    "losses",
    "attacks",
    "square_queries",
    "checks",
    "check_size",
)
"""The settings of a run that decide only its robustness evaluation: `--resume` re-evaluates a
finished run whose other settings match instead of training it again."""
"""Settings of a run that its scale fills when they are left unset (None)."""

RUN_DEFAULTS = {
    "model": None,
    "arch": None,
    "scale": None,
    "out": None,
    **{field: None for field in SCALE_FIELDS},
    "rho": RHO,
    "rho_se": RHO_SE,
    "se_epsilon": SE_EPSILON,
    "obs_var": None,
    **{choice: None for choice in CHOICES},
    "epsilons": list(EPSILONS),
    "losses": list(LOSSES),
    "attacks": ATTACKS,
    "checks": True,
    "robustness": True,
    "robustness_every_n_epochs": 0,
    "fid": True,
    "fid_extractor": None,
    "inception_weights": None,
    "figures": True,
    "seed": 0,
    "jit_compile": None,
    "verbose": 1,
}
"""The settings of one run (`run_one`) and their defaults; None fields come from the scale.

- model: one of `MODEL_NAMES`.
- arch: the networks (`"mlp"`, `"conv"`, `"celeba"`).
- rho, rho_se: coupling strengths (AVAE and SE).
- se_epsilon: SE's training radius; train_attack_steps: its PGD steps per training step.
- obs_var: the likelihood's variance v (None: the model's default 0.5).
- posterior_sampling, coupling, delusion, extra_pass_statistics, attack_mode: the
  paper's open choices (`CHOICES`); None keeps each model's default.
- epsilons, attack_steps, restarts, losses, attacks, square_queries: the evaluation
  attack ("standard": the ensemble; "pgd": PGD alone); checks: its checks, on
  check_size test images.
- robustness: run the attacks; robustness_every_n_epochs: also during training (0: no).
- fid: compute FID; fid_extractor: a saved `.keras` feature extractor;
  inception_weights: an InceptionV3 weights file (the standard extractor).
- figures: draw the run's figures. seed: weights, noise, probes and attacks.
- jit_compile: XLA for training steps (None: Keras' "auto"). verbose: 0, 1 or 2.
"""


# ----------------------------------------------------------------- settings


def resolve_config(defaults, overrides, scales):
    """`defaults` updated with the non-None `overrides`, and the chosen scale.

    Args:
        defaults: dict of every setting and its default (must hold `"scale"`).
        overrides: dict of settings to change; None values are left unset.
        scales: dict scale name -> `Scale`.

    Returns:
        `(config, scale)`: a new dict, and the `Scale` named by `config["scale"]`.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"Unknown settings {unknown}; the known ones are {sorted(defaults)}.")
    config = {key: list(value) if isinstance(value, (list, tuple)) else value for key, value in defaults.items()}
    config.update({key: value for key, value in overrides.items() if value is not None})
    if config["scale"] not in scales:
        raise ValueError(f"`scale` must be one of {tuple(scales)}. Received: scale={config['scale']!r}")
    for key in ("epsilons", "losses", "arch", "rows", "rhos", "attributes"):
        if isinstance(config.get(key), tuple):
            config[key] = list(config[key])
    return config, scales[config["scale"]]


def fill_from_scale(config, scale, arch):
    """A copy of `config` with every unset (None) scale field taken from `scale` for `arch`."""
    config = dict(config)
    for field in SCALE_FIELDS:
        if field in config and config[field] is None:
            config[field] = scale.epochs_for(arch) if field == "epochs" else getattr(scale, field)
    return config


def check_model_name(name):
    if name not in MODEL_CLASSES:
        raise ValueError(f"`model` must be one of {MODEL_NAMES}. Received: model={name!r}")
    return name


def slug(text):
    """`text` as a file name: letters, digits, `.`, `_` and `-`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "run"


# ------------------------------------------------------------------- models


def build_model(
    name,
    encoder=None,
    decoder=None,
    input_shape=None,
    pretrained=None,
    *,
    rho=RHO,
    rho_se=RHO_SE,
    se_epsilon=SE_EPSILON,
    train_attack_steps=20,
    obs_var=None,
    seed=None,
    **choices,
):
    """A keras_avae model by name, with the paper's hyper-parameters.

    - `"vae"`: `VAE` (eq. 2).
    - `"avae"`: `AVAE(rho=rho)` (eq. 13).
    - `"se"`: `SmoothEncoder(rho=rho_se, epsilon=se_epsilon, train_attack_steps=train_attack_steps)`
      (Algorithm 2; Table 1's SE_eps').
    - `"seavae"`: `SEAVAE(rho, rho_se, epsilon=se_epsilon, train_attack_steps=train_attack_steps)` (eq. 35).
    - `"avae_ss"`: `AVAESelfSupervised.from_pretrained(pretrained, rho=rho)` (eq. 34):
      a copy of a trained model whose decoder is frozen; takes no networks.

    Args:
        name: one of `MODEL_NAMES`.
        encoder, decoder: the networks (all but `"avae_ss"`).
        input_shape: shape of one example; when given, the model is built.
        pretrained: the trained model `"avae_ss"` starts from.
        rho, rho_se, se_epsilon, train_attack_steps: as above.
        obs_var: the likelihood's variance v; None keeps the model's default.
        seed: seed of the model's noise.
        **choices: the open choices of `CHOICES` (e.g. `delusion="mean"`);
            each is passed to the models that take it, None keeps the default.

    Returns:
        The model, not compiled.

    Example:
        encoder, decoder = keras_avae.architectures.mlp()
        se = build_model("se", encoder, decoder, (28, 28, 3), se_epsilon=0.2)
    """
    check_model_name(name)
    unknown = sorted(set(choices) - set(CHOICES))
    if unknown:
        raise ValueError(f"Unknown model choices {unknown}; the known ones are {sorted(CHOICES)}.")
    options = {
        choice: value for choice, value in choices.items() if value is not None and name in CHOICES[choice]
    }
    if name == "avae_ss":
        if pretrained is None:
            raise ValueError("`avae_ss` post-trains a trained model: pass `pretrained` (e.g. a trained VAE).")
        if encoder is not None or decoder is not None:
            raise ValueError("`avae_ss` copies the networks of `pretrained`; pass no `encoder` or `decoder`.")
        return AVAESelfSupervised.from_pretrained(pretrained, rho=rho, **options)
    if pretrained is not None:
        raise ValueError(f"`pretrained` is only for `avae_ss`. Received it with model={name!r}")
    if encoder is None or decoder is None:
        raise ValueError(f"model={name!r} needs an `encoder` and a `decoder`.")
    kwargs = {"seed": seed, **options}
    if obs_var is not None:
        kwargs["obs_var"] = obs_var
    if name == "avae":
        kwargs["rho"] = rho
    elif name == "se":
        kwargs.update(rho=rho_se, epsilon=se_epsilon, train_attack_steps=train_attack_steps)
    elif name == "seavae":
        kwargs.update(rho=rho, rho_se=rho_se, epsilon=se_epsilon, train_attack_steps=train_attack_steps)
    model = MODEL_CLASSES[name](encoder, decoder, **kwargs)
    if input_shape is not None:
        model.build((None,) + tuple(input_shape))
    return model


def model_from_config(config, networks, input_shape, pretrained=None):
    """`build_model` with a run's settings: `config["model"]`, its networks and hyper-parameters.

    Args:
        config: a run's settings (`RUN_DEFAULTS` keys).
        networks: `networks(config, input_shape) -> (encoder, decoder)`; not
            called for `avae_ss`.
        input_shape: shape of one example.
        pretrained: the trained model `avae_ss` starts from.

    Returns:
        The built model, not compiled.
    """
    name = check_model_name(config["model"])
    choices = {choice: config.get(choice) for choice in CHOICES}
    if name == "avae_ss":
        return build_model(name, pretrained=pretrained, rho=config["rho"], **choices)
    encoder, decoder = networks(config, input_shape)
    return build_model(
        name,
        encoder,
        decoder,
        input_shape,
        rho=config["rho"],
        rho_se=config["rho_se"],
        se_epsilon=config["se_epsilon"],
        train_attack_steps=config["train_attack_steps"],
        obs_var=config["obs_var"],
        seed=config["seed"],
        **choices,
    )


def model_choices(model):
    """The open choices (`CHOICES`) that `model` was built with, choice -> value."""
    return {choice: getattr(model, choice) for choice in CHOICES if choice in type(model).OPEN_CHOICES}


def compile_model(model, learning_rate, jit_compile=None):
    """Compiles `model` with Adam(`learning_rate`) (Appendix F); `jit_compile` None is Keras' "auto"."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        jit_compile="auto" if jit_compile is None else jit_compile,
    )
    return model


# ----------------------------------------------------------------- training


def train_model(
    model, x=None, *, epochs, batch_size, num_train=None, log_dir=None, callbacks=(), verbose=1, backup_dir=None
):
    """Fits `model`, timing its steps; logs to TensorBoard when `log_dir` is given.

    `AVAESelfSupervised` takes no data: it runs `epochs` epochs of
    `ceil(num_train / batch_size)` steps, as many steps as a model trained on
    `num_train` images.

    Args:
        model: a compiled keras_avae model.
        x: training images (array) or a batched `tf.data.Dataset`; None for `AVAESelfSupervised`.
        epochs: training epochs.
        batch_size: images per step (ignored for a dataset, which is batched).
        num_train: training set size (for `AVAESelfSupervised`'s steps per epoch).
        log_dir: TensorBoard folder, or None.
        callbacks: further callbacks, run before TensorBoard (so it sees their logs).
        verbose: `fit`'s verbosity: 0 silent, 1 progress bar, 2 one line per epoch.
        backup_dir: if set, the training state (weights, optimizer, seed generators, epoch)
            is backed up there after every epoch (`files.AtomicBackupAndRestore`), a backup
            found there is restored first, so an interrupted `fit` continues from its last
            completed epoch, and the folder is deleted when training completes. The
            returned timings and terms then cover only the epochs run by this call.

    Returns:
        Dict with `train_seconds` (wall clock of `fit`), `seconds_per_step`
        (median step, `StepTimer`), `train_steps` and `train_terms` (the last
        epoch's logs).
    """
    timer = StepTimer()
    backup = [files.AtomicBackupAndRestore(backup_dir)] if backup_dir is not None else []
    all_callbacks = backup + list(callbacks) + [timer]
    if log_dir is not None:
        all_callbacks.append(
            keras.callbacks.TensorBoard(log_dir=os.fspath(log_dir), write_graph=False, profile_batch=0)
        )
    start = time.perf_counter()
    if isinstance(model, AVAESelfSupervised):
        if num_train is None:
            raise ValueError("`num_train` sets AVAESelfSupervised's steps per epoch; it is required.")
        history = model.fit(
            epochs=epochs,
            steps_per_epoch=steps_per_epoch(num_train, batch_size),
            batch_size=batch_size,
            callbacks=all_callbacks,
            verbose=verbose,
        )
    elif isinstance(x, tf.data.Dataset):  # batched, and shuffled by its maker
        history = model.fit(x, epochs=epochs, shuffle=False, callbacks=all_callbacks, verbose=verbose)
    else:
        history = model.fit(x, epochs=epochs, batch_size=batch_size, callbacks=all_callbacks, verbose=verbose)
    seconds = time.perf_counter() - start
    terms = {
        name: float(values[-1])
        for name, values in history.history.items()
        if values and isinstance(values[-1], (int, float, np.number)) and math.isfinite(values[-1])
    }
    return {
        "train_seconds": seconds,
        "seconds_per_step": timer.seconds_per_step,
        "train_steps": timer.steps,
        "train_terms": terms,
    }


# --------------------------------------------------------------- evaluation


def make_evaluator(train_data, test_data, *, attack_size=None, epochs_between=None, seed=0, **settings):
    """A `RobustnessEvaluator` with probes fitted on `train_data`, attacking the first `attack_size` test images.

    Args:
        train_data, test_data: `(x, labels)` pairs.
        attack_size: test images attacked (default: all).
        epochs_between: if set, the Keras callback version that also evaluates
            every that many epochs during `fit` (`keras_avae.callbacks`).
        seed: seed of the probes and the attacks.
        **settings: the evaluator's arguments (`epsilons`, `attack_steps`,
            `restarts`, `losses`, `attacks`, `square_queries`, `checks`,
            `check_size`, `batch_size`); None keeps its default.
    """
    x_test, labels = test_data
    count = len(x_test) if attack_size is None else min(int(attack_size), len(x_test))
    attacked = (x_test[:count], {task: task_labels[:count] for task, task_labels in labels.items()})
    settings = {key: tuple(value) if isinstance(value, list) else value for key, value in settings.items() if value is not None}
    if epochs_between:
        from keras_avae.callbacks import RobustnessEvaluator as Callback  # the training-time schedule

        return Callback(train_data, attacked, every_n_epochs=epochs_between, verbose=0, seed=seed, **settings)
    return robustness.RobustnessEvaluator(train_data, attacked, seed=seed, **settings)


def evaluator_settings(config):
    """The evaluator's arguments among a run's settings (`make_evaluator`'s `settings`)."""
    return {
        key: config.get(key)
        for key in ("epsilons", "attack_steps", "restarts", "losses", "attacks", "square_queries", "checks", "check_size")
    }


def evaluate_model(model, test_data, evaluator, *, robust=True, fid_scorer=None):
    """Protocol steps ii and iii and the decoder's quality, for one trained model.

    - test terms of the model's objective (`model.evaluate`);
    - reconstruction error of g(f^mu(x)): `keras_avae.evaluation.reconstruction_mse`
      on Table 1's scale (per-pixel squared error in 0..255 units) and as the
      per-image sum of squared errors in [0, 1] units;
    - linear probes on f^mu, fitted by `evaluator` on its training data, and
      their clean accuracy on all of `test_data`;
    - adversarial accuracy of those probes (`evaluator.evaluate_with_probes`)
      on the evaluator's attacked test images, with its checks and
      per-example records (`report.to_document`), and how far an attack of each
      nonzero radius can move f^mu against the class centroids' distances
      (`keras_avae.evaluation.representation_sensitivity`), when `robust`;
    - FID of the model's samples (`fid_scorer`), when given.

    Returns:
        Dict with `test_terms`, `test_reconstruction_mse`,
        `test_reconstruction_sse`, `test_reconstruction_nll` (the per-image
        Gaussian negative log-likelihood, the other reading of the paper's
        column; None for a Bernoulli model), `probe_accuracy` (task -> accuracy),
        `accuracy` (task -> radius string -> robust accuracy, or None),
        `robustness` (`report.to_document` of the results: checks, flagged,
        problems, broken_by, records; or None), `sensitivity` (radius string
        -> `representation_sensitivity` result, or None), `fid` (or None),
        `evaluation_seconds`.
    """
    x_test, _ = test_data
    start = time.perf_counter()
    test_terms = model.evaluate(x_test, batch_size=EVAL_BATCH_SIZE, return_dict=True, verbose=0)
    scales = ("paper", "sum", "nll") if model.likelihood == "gaussian" else ("paper", "sum")
    errors = reconstruction_errors(model, x_test, scales)
    probes = evaluator.train_probes(model)
    metrics = {
        "test_terms": {name: float(value) for name, value in test_terms.items()},
        "test_reconstruction_mse": errors["paper"],
        "test_reconstruction_sse": errors["sum"],
        "test_reconstruction_nll": errors.get("nll"),
        "probe_accuracy": probes_lib.evaluate_probes(model, probes, test_data),
        "accuracy": None,
        "robustness": None,
        "sensitivity": None,
        "fid": None,
    }
    if robust:
        results = evaluator.evaluate_with_probes(model, probes)
        metrics["accuracy"] = report.accuracy_to_json(results)
        metrics["robustness"] = report.to_document(results)
        x_attacked, attacked_labels = evaluator.test_data
        metrics["sensitivity"] = {
            f"{epsilon:g}": representation_sensitivity(
                model, x_attacked, epsilon, labels=attacked_labels, steps=evaluator.attack_steps,
                seed=evaluator.seed,
            )
            for epsilon in evaluator.epsilons
            if epsilon > 0
        }
    if fid_scorer is not None:
        metrics["fid"] = fid_scorer(model)
    metrics["evaluation_seconds"] = time.perf_counter() - start
    return metrics


# --------------------------------------------------------------------- runs


def actual_sizes(config, data):
    """A copy of `config` whose `train_size`, `test_size` and `attack_size` are the numbers of images
    `data` holds (a request larger than the data set is cut to it), so config.json records what ran."""
    config = dict(config)
    num_test = int(len(data["test_data"][0]))
    if config.get("train_size") is not None:
        config["train_size"] = int(data["num_train"])
    if config.get("test_size") is not None:
        config["test_size"] = num_test
    if config.get("attack_size") is not None:
        config["attack_size"] = min(int(config["attack_size"]), num_test)
    return config


def run_one(
    config, data, networks, *, fid_scorer=None, pretrained=None, label=None, reference=None, backup_dir=None
):
    """Builds, trains, saves and evaluates one model; writes its run directory.

    Args:
        config: the run's settings, every key of `RUN_DEFAULTS` set (see
            `fill_from_scale`); `config["out"]` is the run directory.
        data: dict with `train_inputs` (array or batched `tf.data.Dataset`),
            `probe_data` and `test_data` (`(x, labels)` pairs), `num_train`
            and `source` (where the data came from, for config.json).
        networks: `networks(config, input_shape) -> (encoder, decoder)`.
        fid_scorer: a `FIDScorer`, or None to skip FID.
        pretrained: the trained model `avae_ss` starts from.
        label: the model's name in tables (default from `DISPLAY_NAMES`).
        reference: metrics of the VAE the time factor is relative to, or None.
        backup_dir: back up the training state there after every epoch and resume
            from a backup found there (`train_model`).

    Returns:
        `(model, metrics)`; `metrics` is also written to metrics.json. Its
        `config` records the sizes that ran (`actual_sizes`).
    """
    config = actual_sizes(config, data)
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    name = check_model_name(config["model"])
    label = label or DISPLAY_NAMES[name]
    keras.utils.set_random_seed(config["seed"])
    x_test, _ = data["test_data"]
    model = model_from_config(config, networks, tuple(x_test.shape[1:]), pretrained)
    compile_model(model, config["learning_rate"], config["jit_compile"])
    evaluator = make_evaluator(
        data["probe_data"],
        data["test_data"],
        attack_size=config["attack_size"],
        epochs_between=config["robustness_every_n_epochs"],
        seed=config["seed"],
        **evaluator_settings(config),
    )
    callbacks = [evaluator] if config["robustness_every_n_epochs"] else []
    training = train_model(
        model,
        None if name == "avae_ss" else data["train_inputs"],
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        num_train=data["num_train"],
        log_dir=out / "logs",
        callbacks=callbacks,
        verbose=config["verbose"],
        backup_dir=backup_dir,
    )
    files.save_model(model, out / "model.keras")
    if config["verbose"]:
        attacks = (
            f", attacks ({', '.join(evaluator.attacks)}) on {len(evaluator.test_data[0])} test images "
            f"({config['attack_steps']} steps x {config['restarts']} PGD restart(s) x {len(evaluator.losses)} "
            f"losses x {len(evaluator.tasks)} tasks)"
            if config["robustness"] else ""
        )
        print(f"Evaluating {label}: MSE, linear probes{attacks}" + (", FID" if fid_scorer else "") + " ...", flush=True)
    evaluation = evaluate_model(model, data["test_data"], evaluator, robust=config["robustness"], fid_scorer=fid_scorer)
    if config["verbose"]:
        print(f"Evaluated {label} in {evaluation['evaluation_seconds']:.1f} s", flush=True)
    metrics = {
        "model": name,
        "label": label,
        "arch": config["arch"],
        "config": config,
        "data_path": data.get("source"),
        "out": os.fspath(out),
        "num_train": int(data["num_train"]),
        "num_test": int(len(x_test)),
        "num_attacked": int(len(evaluator.test_data[0])),
        "choices": model_choices(model),
        **training,
        "time_factor": time_factor(training, reference),
        **evaluation,
        "fid_extractor": fid_scorer.get_config() if fid_scorer is not None else None,
    }
    if config["robustness_every_n_epochs"]:
        metrics["robustness_history"] = [
            {"epoch": entry["epoch"] + 1, "accuracy": report.accuracy_to_json(entry["results"]), "seconds": entry["seconds"]}
            for entry in evaluator.history
        ]
    if config["figures"]:
        references = [(reference_label(reference), pretrained)] if name == "avae_ss" and pretrained is not None else []
        metrics["figures"] = run_figures(out / "figures", model, label, x_test, metrics["accuracy"], references)
    write_run(out, config, metrics, data.get("source"))
    log_evaluation(out / "logs", metrics, step=config["epochs"])
    return model, metrics


def reference_label(reference):
    return reference["label"] if reference else "pretrained"


def time_factor(training, reference):
    """Seconds per training step relative to `reference`'s (Tables 1-3's "Time"), or None."""
    if not reference or not reference.get("seconds_per_step") or not training.get("seconds_per_step"):
        return None
    return training["seconds_per_step"] / reference["seconds_per_step"]


def run_figures(folder, model, label, x_test, accuracy=None, references=(), accuracy_figures=True):
    """The figures of one run; returns dict figure name -> path.

    reconstructions.png (x next to g(f^mu(x))), samples.png (g(z), z ~ N(0, I)),
    encode_decode_chains.png (Figure 1; with `references`, a list of
    `(label, model)` drawn above the model), and accuracy_vs_epsilon_<task>.png.
    """
    folder = Path(folder)
    paths = {
        "reconstructions": figures.reconstruction_grid(model, x_test[:GRID_IMAGES], folder / "reconstructions.png"),
        "samples": figures.sample_grid(model, GRID_IMAGES, folder / "samples.png"),
    }
    chain_models = [ref_model for _, ref_model in references] + [model]
    titles = [ref_label for ref_label, _ in references] + [label]
    paths["encode_decode_chains"] = figures.encode_decode_chains(
        chain_models, x_test[:CHAIN_IMAGES], path=folder / "encode_decode_chains.png", titles=titles
    )
    if accuracy and accuracy_figures:
        for task in accuracy:
            paths[f"accuracy_vs_epsilon_{task}"] = figures.accuracy_vs_epsilon(
                {label: accuracy}, task, folder / f"accuracy_vs_epsilon_{slug(task)}.png"
            )
    return paths


def environment():
    """Versions and devices of this run, for config.json."""
    return {
        "keras_avae": keras_avae.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "command": " ".join(sys.argv),
    }


def write_json(path, document):
    """Writes `document` as indented JSON (NaN as null) to `path`, making folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_json(path, _finite(document))
    return path


def architecture_sections(document, names):
    """Markdown lines: per architecture, a heading, its results table, the rows' choices and its settings."""
    lines = []
    for arch, rows in document["architectures"].items():
        lines += [f"## {names.get(arch, arch)}", "", results_table(rows).rstrip("\n"), ""]
        if any(row.get("choices") for row in rows):
            lines += ["Choices of each row:", "", choices_table(rows).rstrip("\n"), ""]
        lines += [document["settings"][arch], ""]
    return lines


def choices_table(rows):
    """Markdown: the open choices (`CHOICES`) each row's model was built with; "-" where it has none."""
    names = list(CHOICES)
    lines = ["| Model | " + " | ".join(names) + " |", "|:--|" + "--|" * len(names)]
    for row in rows:
        choices = row.get("choices") or {}
        lines.append(f"| {row['label']} | " + " | ".join(choices.get(name, "-") for name in names) + " |")
    return "\n".join(lines) + "\n"


def write_document(out, stem, document, render):
    """Adds `render(document)` as its markdown, writes `<stem>.md` and `<stem>.json`, prints it.

    Returns:
        `document`, with its "markdown" entry.
    """
    document["markdown"] = render(document)
    files.write_text(out / f"{stem}.md", document["markdown"])
    write_json(out / f"{stem}.json", document)
    print("\n" + document["markdown"])
    print(f"Wrote {out / (stem + '.md')}, {out / (stem + '.json')} and {out / 'figures'}/")
    return document


def _finite(value):
    """`value` with NaN and infinities replaced by None, so the JSON is standard."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return os.fspath(value)
    return value


def write_run(out, config, metrics, source=None):
    """config.json, metrics.json and summary.md of one run."""
    out = Path(out)
    write_json(out / "config.json", {**config, "data_path": source, "environment": environment()})
    write_json(out / "metrics.json", metrics)
    files.write_text(out / "summary.md", run_summary(metrics))


def log_evaluation(log_dir, metrics, step):
    """Writes the evaluation's numbers as TensorBoard scalars under `log_dir/evaluation`."""
    scalars = {
        "reconstruction_mse": metrics.get("test_reconstruction_mse"),
        "fid": metrics.get("fid"),
        "seconds_per_step": metrics.get("seconds_per_step"),
        "time_factor": metrics.get("time_factor"),
    }
    for task, accuracy in (metrics.get("probe_accuracy") or {}).items():
        scalars[f"probe_accuracy_{slug(task)}"] = accuracy
    for task, accuracies in (metrics.get("accuracy") or {}).items():
        for epsilon, accuracy in accuracies.items():
            scalars[robustness.log_key(slug(task), float(epsilon))] = accuracy
    writer = tf.summary.create_file_writer(os.fspath(Path(log_dir) / "evaluation"))
    with writer.as_default():
        for name, value in scalars.items():
            if value is not None and math.isfinite(value):
                tf.summary.scalar(name, value, step=int(step))
    writer.close()


# ------------------------------------------------------------------- tables


def results_table(rows):
    """A Markdown table in the layout of Table 1: robust accuracy in %, then Time, MSE and FID.

    `report.accuracy_table` with the columns Time (seconds per training step
    relative to the VAE's), the two readings of the paper's MSE column
    (`test_reconstruction_mse`, per pixel in 0..255 units, and
    `test_reconstruction_nll`, the per-image Gaussian negative
    log-likelihood), FID, and, when rows carry `sensitivity`
    (`evaluate_model`), the shift ratio of the first task at the smallest
    attacked radius; a Checks column when rows carry checks.

    Args:
        rows: list of metrics dicts (`run_one`'s) with `label` and `accuracy`.
    """
    columns = [
        Column("Time", lambda row: row.get("time_factor"), ".1f", "×"),
        Column("MSE (0..255 px)", lambda row: row.get("test_reconstruction_mse")),
        Column("MSE (NLL)", lambda row: row.get("test_reconstruction_nll")),
        Column("FID", lambda row: row.get("fid"), ".2f"),
    ]
    ratio_column = shift_ratio_column(rows)
    if ratio_column:
        epsilon, task = ratio_column
        columns.append(
            Column(f"shift ratio ε={epsilon} ({task})", lambda row: sensitivity_value(row, "shift_ratio", *ratio_column), ".2f")
        )
    beyond = beyond_pgd_column(rows)
    if beyond:
        columns.append(beyond)
    return report.accuracy_table([table_row(row) for row in rows], columns)


def beyond_pgd_column(rows):
    """The `Column` of what the ensemble's later attacks (APGD, Square) broke beyond PGD, in points
    of accuracy per task at the smallest attacked radius; None when no row has records."""
    documents = [row.get("robustness") for row in rows if (row.get("robustness") or {}).get("records")]
    if not documents:
        return None
    tasks = list(documents[0]["records"])
    epsilon = min((e for e in documents[0]["records"][tasks[0]] if float(e) > 0), key=float, default=None)
    if epsilon is None:
        return None

    def cell(row):
        values = [report.beyond_pgd(row.get("robustness"), task, epsilon) for task in tasks]
        return None if None in values else " / ".join(f"{value:.1f}" for value in values)

    return Column(f"beyond PGD ε={epsilon} ({' / '.join(tasks)})", cell, "s")


def table_row(metrics):
    """A metrics dict as a `report.accuracy_table` row: its checks read from `robustness`."""
    return {**metrics, "checks": (metrics.get("robustness") or {}).get("checks")}


def sensitivity_value(row, key, epsilon, task):
    """`key` ("shift_ratio", "centroid_distance") of `row`'s sensitivity at radius string `epsilon` for `task`."""
    return (row.get("sensitivity") or {}).get(epsilon, {}).get(key, {}).get(task)


def shift_ratio_column(rows):
    """`(radius string, task)` of the shift ratio the tables show (the first task at the smallest
    attacked radius), or None if no row has one."""
    for row in rows:
        sensitivity = row.get("sensitivity")
        if sensitivity:
            epsilon = min(sensitivity, key=float)
            ratios = sensitivity[epsilon].get("shift_ratio")
            if ratios:
                return epsilon, next(iter(ratios))
    return None


def describe_settings(metrics):
    """One paragraph on how a run's numbers were measured."""
    config = metrics["config"]
    parts = []
    if "epochs" in config:
        parts.append(
            f"{metrics['num_train']} training images, {config['epochs']} epoch(s) of batch "
            f"{config['batch_size']}, Adam {config['learning_rate']:g}"
        )
    parts += [
        f"linear probes on f^mu of {metrics['num_train']} training images; "
        f"L-inf attacks ({attack_names(config.get('attacks'))}) on {metrics['num_attacked']} test images, "
        f"{config['attack_steps']} steps, PGD {config['restarts']} start(s) x losses {', '.join(config['losses'])}"
        + (f", Square {config['square_queries']} queries" if "square" in attack_names(config.get("attacks")) else ""),
        f"MSE: per-pixel squared error of g(f^mu(x)) in 0..255 units and per-image Gaussian negative "
        f"log-likelihood at the model's v, on {metrics['num_test']} test images",
    ]
    if metrics.get("fid_extractor"):
        fid = metrics["fid_extractor"]
        parts.append(
            f"FID: {fid['generated_images']} samples vs {fid['real_images']} test images, "
            f"features of {fid['extractor']}"
        )
    return "; ".join(parts) + "."


def attack_names(attacks):
    """The attack names of a run's `attacks` setting, comma-separated (runs before the ensemble: "pgd")."""
    return ", ".join(robustness.check_attacks(attacks or "pgd"))


def sensitivity_sentence(sensitivity):
    """One sentence on how far attacks move f^mu, from `evaluate_model`'s `sensitivity`."""
    parts = []
    for epsilon, result in sensitivity.items():
        ratios = ", ".join(f"{task} {ratio:.2f}" for task, ratio in result.get("shift_ratio", {}).items())
        parts.append(
            f"at ε={epsilon} it moves ||Δf^mu|| by {result['shift']:.2f} (random corner "
            f"{result['random_shift']:.2f}); over the median class-centroid distance: {ratios}"
        )
    return "Representation sensitivity (PGD on ||f^mu(x~) - f^mu(x)||): " + "; ".join(parts) + "."


def run_summary(metrics):
    """summary.md of one run."""
    lines = [f"# {metrics['label']} ({metrics.get('arch')})", ""]
    if metrics.get("accuracy"):
        lines += ["Adversarial test accuracy (%):", "", results_table([metrics]).rstrip("\n"), ""]
    lines.append(
        "Clean linear-probe accuracy on all test images: "
        + ", ".join(f"{task} {100 * value:.1f}%" for task, value in metrics["probe_accuracy"].items())
        + "."
    )
    nll = metrics.get("test_reconstruction_nll")
    if metrics.get("test_reconstruction_mse") is not None:  # a bare encoder has no decoder
        lines.append(
            f"Reconstruction error, the two readings of Table 1's MSE: per pixel in 0..255 units "
            f"{metrics['test_reconstruction_mse']:.1f}"
            + (f"; per-image Gaussian negative log-likelihood {nll:.1f}" if nll is not None else "")
            + f"; per-image sum of squared errors in [0, 1] units: {metrics['test_reconstruction_sse']:.2f}."
        )
    problems = (metrics.get("robustness") or {}).get("problems")
    if problems:
        lines += ["", "Failed checks of the evaluation (its accuracies may be too high):", ""]
        lines += [f"- {problem}" for problem in problems]
        lines.append("")
    if metrics.get("choices"):
        lines.append("Choices: " + ", ".join(f"{name}={value}" for name, value in metrics["choices"].items()) + ".")
    if metrics.get("sensitivity"):
        lines.append(sensitivity_sentence(metrics["sensitivity"]))
    if metrics.get("fid") is not None:
        lines.append(f"FID: {metrics['fid']:.2f}.")
    seconds = metrics.get("seconds_per_step")
    if seconds is not None:
        lines.append(
            f"Training: {metrics['train_steps']} steps in {metrics['train_seconds']:.1f} s, "
            f"median {1000 * seconds:.1f} ms per step."
        )
    lines += ["", describe_settings(metrics), ""]
    return "\n".join(lines)


# ------------------------------------------------------------------- tables of runs


def run_rows(
    rows, base_config, data, networks, out, *, fid_scorer=None, progress=None, prefix="", resume=False,
    overwrite=False,
):
    """Runs `rows` in order with `run_one`; returns `(models, metrics)` keyed by row label.

    Each row is a dict with `label`, `model` and settings that override
    `base_config` (e.g. `se_epsilon`, `rho`), and optionally `pretrained`, the
    label of an earlier row that `avae_ss` post-trains. Its run directory is
    `out / slug(label)`. The time factor of each row is relative to the row
    labelled "VAE", when that row is run first.

    With `resume`, a row whose run directory holds a metrics.json written with
    the same settings, and its model.keras, is loaded instead of run again; if
    only its `EVALUATION_SETTINGS` differ (e.g. an evaluation before the attack
    ensemble), the loaded model is evaluated again with the new ones.

    Without `resume` or `overwrite`, a row whose run directory already holds a
    finished run (its metrics.json) is an error, raised before anything runs.
    """
    if not (resume or overwrite):
        finished = [row["label"] for row in rows if (Path(out) / slug(row["label"]) / "metrics.json").is_file()]
        if finished:
            raise FileExistsError(
                f"{out} already holds finished runs of {', '.join(finished)}; pass --resume to reuse them "
                "or --overwrite to run them again."
            )
    models, results = {}, {}
    for row in rows:
        row = dict(row)
        row_label = row.pop("label")
        pretrained_label = row.pop("pretrained", None)
        config = actual_sizes({**base_config, **row, "out": os.fspath(Path(out) / slug(row_label))}, data)
        if progress is not None:
            progress.start(f"{prefix}{row_label}")
        reference = results.get("VAE")
        loaded = _load_finished(config) if resume else None
        if loaded is not None:
            models[row_label], results[row_label], stale = loaded
            if stale:
                results[row_label] = reevaluate(models[row_label], results[row_label], config, data, fid_scorer)
            if config["verbose"]:
                print(f"Resumed {row_label} from {config['out']}" + (", evaluated again" if stale else ""))
        else:
            pretrained = None
            if pretrained_label is not None:
                if pretrained_label not in models:
                    raise ValueError(f"Row {row_label!r} post-trains row {pretrained_label!r}, which has not run.")
                pretrained = models[pretrained_label]
            models[row_label], results[row_label] = run_one(
                config,
                data,
                networks,
                fid_scorer=fid_scorer,
                pretrained=pretrained,
                label=row_label,
                reference=reference,
            )
        if row_label == "VAE" and results[row_label].get("time_factor") is None:
            results[row_label]["time_factor"] = 1.0
            write_json(Path(config["out"]) / "metrics.json", results[row_label])
        if progress is not None:
            progress.done()
    return models, results


def _load_finished(config):
    """`(model, metrics, stale)` of a finished run with the same settings, or None.

    `stale`: the run matches in everything but `EVALUATION_SETTINGS`.
    """
    out = Path(config["out"])
    if not (out / "metrics.json").is_file() or not (out / "model.keras").is_file():
        return None
    metrics = json.loads((out / "metrics.json").read_text())
    ignored = ("verbose",)
    stored = {key: value for key, value in metrics.get("config", {}).items() if key not in ignored}
    wanted = {key: value for key, value in json.loads(json.dumps(_finite(config))).items() if key not in ignored}
    if stored == wanted:
        return files.load_model(out / "model.keras"), metrics, False
    training = set(stored) | set(wanted)
    training -= set(EVALUATION_SETTINGS)
    if any(stored.get(key) != wanted.get(key) for key in training):
        return None
    return files.load_model(out / "model.keras"), metrics, True


def reevaluate(model, metrics, config, data, fid_scorer=None):
    """A finished run's `metrics` with its evaluation run again under `config`'s settings; rewrites the run."""
    evaluator = make_evaluator(
        data["probe_data"], data["test_data"], attack_size=config["attack_size"], seed=config["seed"],
        **evaluator_settings(config),
    )
    if not model.compiled:
        model.compile()
    metrics = {
        **metrics,
        **evaluate_model(model, data["test_data"], evaluator, robust=config["robustness"], fid_scorer=fid_scorer),
        "config": config,
        "num_attacked": int(len(evaluator.test_data[0])),
        "previous_accuracy": metrics.get("accuracy"),
    }
    write_run(config["out"], config, metrics, data.get("source"))
    return metrics
