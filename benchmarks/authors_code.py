"""Train the authors' released JAX AVAE (or VAE), port it into keras_avae, and evaluate it here.

Cemgil et al. released JAX/Haiku code for the ColorMNIST MLP AVAE in
google-deepmind/deepmind-research, folder `avae/`. This script:

1. imports that package at run time from a local checkout given by
   `--code-dir` (the `avae/` folder itself, or the repository holding it);
   its parent folder is put on `sys.path` and the code is imported as
   `avae.*`, as their `python -m avae.train_main` does. Their code is never
   copied into this repository;
2. trains their `ColorMnistMLPEncoder` / `ColorMnistMLPDecoder` with their
   ELBO (`vae.VAE.avae_elbo` or `vae_elbo`) and their training loop
   (`train.train`: Adam b1=0.9, b2=0.999, eps=1e-8, one jitted update per
   step) for `--steps` steps, fed with this library's ColorMNIST
   (`keras_avae.datasets.color_mnist`) in the layout their iterators give:
   `types.LabelledData(data=float32 (batch, 28, 28, 3) in [0, 1], label=digits)`,
   full batches, reshuffled every epoch;
3. ports the trained Haiku parameters into `keras_avae.architectures.mlp()`
   (`port_params`: their five `hk.Linear` layers per network onto the five
   `Dense` layers, in order; Haiku's `w` is `(in, out)` like a Keras kernel)
   after checking that the Keras layers' activations are theirs
   (`check_architecture`: ReLU hidden layers, a linear encoder head, a sigmoid
   decoder head);
4. checks the port numerically (`check_port`): on a batch of test images the
   Keras encoder's posterior mean and the Keras decoder's output (at the
   authors' posterior mean) must agree with the authors' networks to within
   `PORT_TOLERANCE`, else a `ValueError` is raised;
5. wraps the networks in `keras_avae.AVAE` (or `VAE`) with the `rho` and
   `obs_var` they were trained with, saves `model.keras` under `--out`, and
   checks that the saved file reproduces the port;
6. evaluates it with this library's protocol (`keras_avae.experiments.run.make_evaluator` and
   `run.evaluate_model`, as `keras_avae.experiments.color_mnist.evaluate`
   does): test terms, reconstruction MSE, linear probes on f^mu fitted on
   `--probe-train-size` training images, and L-inf PGD (`--attack-steps` x
   `--restarts` x losses) on `--attack-size` test images at `--epsilons`;
   and prints and writes `summary.md` and `summary.json` (plus the trained
   Haiku parameters as `authors_params.npz`).

Command line:
    python benchmarks/authors_code.py --code-dir /path/to/deepmind-research/avae
    python benchmarks/authors_code.py --code-dir DIR --model vae --steps 3000 --out runs/authors_vae

Training needs the `authors` extra (`pip install -e ".[authors]"`: jax,
dm-haiku, optax and dill, which their `checkpointer.py` imports). This module
imports JAX only inside `train_authors_model`, so the port, its checks and the
command line work without it.

Run-time shims (applied by `authors_shims` for the duration of training and of
the authors' forward passes, then undone; their files are not changed):

- NumPy 2 removed `np.product`, which their `decoders.py` calls for the
  decoder's output width; `np.product = np.prod` is set while it is missing.
- Their `vae.py` `VAE.vae_elbo` computes the KL with
  `jax.vmap(kl.kl_p_with_uniform_normal, [0])(posterior.mean, posterior.variance)`:
  one in_axes entry for two positional arguments. Current JAX turns a list
  in_axes into a tuple and requires one entry per argument, so it raises
  "vmap in_axes must be an int, None, or a tuple of entries corresponding to
  the positional arguments". The intent is to map axis 0 of both. The module
  global `jax` of their `vae.py` (only there) is replaced by
  `BroadcastingVmapJax`, which forwards every attribute to JAX except `vmap`,
  where a one-entry list or tuple in_axes is repeated for every positional
  argument (`[0]` -> `(0, 0)`); other in_axes (their `avae_elbo`'s `[0, 0]`)
  pass unchanged.
- Their `train.train` saves its state through `checkpointer.Checkpointer`
  (dill to disk every `checkpoint_every` steps, through `jax.tree_map`, which
  JAX has since removed) and does not return the trained parameters; it also
  resumes from any checkpoint file it finds. `avae.checkpointer.Checkpointer`
  is replaced by an in-memory recorder that finds no checkpoint and keeps the
  parameters of the last step; training runs with `checkpoint_every=1` so
  that is the final state.

Where their code differs from keras_avae (the port itself is exact: same
layers, widths, activations, flattening order and mean/log-variance halves):

- Their `ColorMnistMLPEncoder.sample` draws z = mean + eps * variance, not
  mean + eps * sqrt(variance) as the paper's Algorithm 1 does; the ported
  model is built with `posterior_sampling="variance"` and `delusion="mean"`
  (`AUTHORS_CHOICES`), so its objective is theirs. The evaluation uses f^mu only.
- Their AVAE delusion is `stop_gradient(VAE.__call__(x, key))`, a second
  encode-sample-decode pass with the same key as the reconstruction, so it is
  decoded from the same z, as in keras_avae's `AVAE`.
- Their objective drops constants: the likelihood lacks -d/2 log(2 pi v), the
  coupling term's constant is -d log(2 pi) instead of
  -d/2 log(2 pi (1 - rho^2)), and the coupling and entropy terms are batch
  means added to every example. The gradients are the same; the ELBO values
  they print are not comparable with keras_avae's.
- Their ColorMNIST iterator redraws every image's colour each time it is
  served and does not shuffle; here colours are fixed per image (this
  library's data set) and batches are reshuffled each epoch.
- Haiku initialises `hk.Linear` with a truncated normal of std 1/sqrt(fan_in)
  and zero biases, Keras `Dense` with Glorot uniform; their Adam has
  eps=1e-8, Keras' 1e-7.
"""

import argparse
import contextlib
import math
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np

from keras_avae import architectures
from keras_avae.experiments import color_mnist as color_mnist_experiment
from keras_avae.experiments import registry, run_directory, summaries
from keras_avae.experiments import run as protocol_run
from keras_avae.validation import check_positive, check_rho

sys.path.insert(0, str(Path(__file__).resolve().parent))
import arguments  # noqa: E402  (benchmarks/arguments.py, beside this file)

AUTHORS_REPOSITORY = "google-deepmind/deepmind-research"
"""Where the authors' code is published (folder `AUTHORS_PACKAGE`)."""

AUTHORS_PACKAGE = "avae"
"""The authors' package name; their modules import each other as `avae.<module>`."""

AUTHORS_MODULES = ("checkpointer", "decoders", "encoders", "kl", "train", "types", "vae")
"""The modules of their package this script uses (directly or through their imports)."""

ENCODER_MODULE = "color_mnist_mlp_encoder"
"""Haiku's name of their `ColorMnistMLPEncoder` (class name in snake case)."""

DECODER_MODULE = "color_mnist_mlp_decoder"
"""Haiku's name of their `ColorMnistMLPDecoder`."""

HAIKU_LINEAR = "linear"
"""Haiku's name of the first `hk.Linear` in a module; the next ones are `linear_1`, `linear_2`, ..."""

HAIKU_WEIGHTS, HAIKU_BIASES = "w", "b"

HIDDEN_ACTIVATION = "relu"
ENCODER_HEAD_ACTIVATION = "linear"
DECODER_HEAD_ACTIVATION = "sigmoid"
"""Their activations: `jax.nn.relu` after every hidden `hk.Linear`, none on the encoder's
`2 * latent_dim` head (mean, then log-variance), `jax.nn.sigmoid` on the decoder's."""

IMAGE_SHAPE = (28, 28, 3)
"""Their `ColorMnistMLPDecoder._image_dims`, and the shape of one ColorMNIST image here."""

PORT_TOLERANCE = 1e-4
"""Largest absolute difference allowed between the authors' and the ported networks' outputs."""

TERM_NAMES = ("elbo", "data_fidelity", "kl")
"""The fields of their `types.ELBOOutputs`."""

MODEL_NAMES = ("avae", "vae")
ELBO_METHODS = {"avae": "avae_elbo", "vae": "vae_elbo"}
"""Their `vae.VAE` method that defines each model's objective."""

# The run settings of their run.sh (latent_dim 64, rho 0.975) and the defaults of their
# train_main.py (obs_var 0.5, learning rate 1e-4, batch 64, seed 0).
DEFAULT_STEPS = 30000
DEFAULT_RHO = 0.975
DEFAULT_OBS_VAR = 0.5
DEFAULT_LATENT_DIM = 64
DEFAULT_LEARNING_RATE = 1e-4
DEFAULT_BATCH_SIZE = 64
DEFAULT_SEED = 0
DEFAULT_LOG_EVERY = 1000
"""Their `test_every`: steps between the training loop's printed test ELBOs."""

# The evaluation (this library's protocol), smaller than Appendix F's 40 steps x 10 restarts.
DEFAULT_PROBE_TRAIN_SIZE = 10000
DEFAULT_TEST_SIZE = 2000
DEFAULT_ATTACK_SIZE = 500
DEFAULT_ATTACK_STEPS = 10
DEFAULT_RESTARTS = 2
DEFAULT_EPSILONS = (0.0, 0.05, 0.1, 0.2)
DEFAULT_LOSSES = ("cross_entropy", "margin")
DEFAULT_CHECK_SIZE = 256
"""Test images the port is checked on."""

EXTRA_HINT = 'pip install -e ".[authors]"'


# ------------------------------------------------------------------- the port


def haiku_linear_names(module, count):
    """The Haiku parameter names of the `count` `hk.Linear` layers made in `module`'s call, in order.

    Example:
        haiku_linear_names("color_mnist_mlp_decoder", 2)
        # ["color_mnist_mlp_decoder/linear", "color_mnist_mlp_decoder/linear_1"]
    """
    return [f"{module}/{HAIKU_LINEAR}" + (f"_{index}" if index else "") for index in range(count)]


def dense_layers(network):
    """The `Dense` layers of a Keras model, in the order the data flows through them."""
    return [layer for layer in network.layers if isinstance(layer, keras.layers.Dense)]


def check_architecture(encoder, decoder):
    """Raises `ValueError` unless the Keras networks have the authors' MLP activations.

    Both networks must be `Dense` stacks of the same depth whose hidden layers
    use ReLU, the encoder's head none (linear) and the decoder's head a sigmoid,
    as in their `ColorMnistMLPEncoder` and `ColorMnistMLPDecoder`.
    """
    for network, head in ((encoder, ENCODER_HEAD_ACTIVATION), (decoder, DECODER_HEAD_ACTIVATION)):
        layers = dense_layers(network)
        if not layers:
            raise ValueError(f"Keras network {network.name!r} has no Dense layers to port into.")
        expected = [HIDDEN_ACTIVATION] * (len(layers) - 1) + [head]
        found = [keras.activations.serialize(layer.activation) for layer in layers]
        if found != expected:
            raise ValueError(
                f"Keras network {network.name!r} has Dense activations {found}, but the authors' "
                f"network uses {expected}."
            )


def port_params(params, encoder, decoder):
    """Sets the Keras encoder's and decoder's `Dense` weights to the authors' Haiku parameters.

    Args:
        params: dict `{module_name: {"w": (in, out) array, "b": (out,) array}}`
            holding exactly the `hk.Linear` layers of their encoder
            (`ENCODER_MODULE/linear`, `.../linear_1`, ...) and decoder, as
            NumPy arrays (or anything `np.asarray` reads).
        encoder, decoder: Keras models from `keras_avae.architectures.mlp()`
            (or any with as many `Dense` layers of the same shapes).

    Returns:
        List of `(haiku name, keras network name, keras layer name)` in the
        order the layers were set.

    Raises:
        ValueError: a module is missing or left over, a module lacks `w` or
            `b`, or an array's shape differs from its Keras layer's.

    Example:
        encoder, decoder = keras_avae.architectures.mlp(latent_dim=64)
        port_params(numpy_params, encoder, decoder)
    """
    plan = []
    for module, network in ((ENCODER_MODULE, encoder), (DECODER_MODULE, decoder)):
        layers = dense_layers(network)
        plan += list(zip(haiku_linear_names(module, len(layers)), [network] * len(layers), layers))
    wanted = [name for name, _, _ in plan]
    missing = [name for name in wanted if name not in params]
    extra = sorted(set(params) - set(wanted))
    if missing or extra:
        raise ValueError(
            f"The Haiku parameters do not match the Keras networks' {len(wanted)} Dense layers: "
            f"missing {missing}, not used {extra}. Received modules {sorted(params)}."
        )
    arrays = []
    for name, network, layer in plan:
        module_params = params[name]
        absent = [key for key in (HAIKU_WEIGHTS, HAIKU_BIASES) if key not in module_params]
        if absent:
            raise ValueError(f"Haiku module {name!r} has no {absent}; it has {sorted(module_params)}.")
        weights = np.asarray(module_params[HAIKU_WEIGHTS], dtype=np.float32)
        biases = np.asarray(module_params[HAIKU_BIASES], dtype=np.float32)
        for key, array, variable in ((HAIKU_WEIGHTS, weights, layer.kernel), (HAIKU_BIASES, biases, layer.bias)):
            if tuple(array.shape) != tuple(variable.shape):
                raise ValueError(
                    f"Haiku parameter {name}/{key} has shape {tuple(array.shape)}, but Keras layer "
                    f"{layer.name!r} of {network.name!r} needs {tuple(variable.shape)}."
                )
        arrays.append((layer, weights, biases))
    for layer, weights, biases in arrays:  # only once every shape is known to fit
        layer.set_weights([weights, biases])
    return [(name, network.name, layer.name) for name, network, layer in plan]


def max_abs_difference(expected, actual):
    """`max |expected - actual|` as a float; infinite when the shapes differ, NaN when any value is."""
    expected, actual = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if expected.shape != actual.shape:
        return math.inf
    return float(np.max(np.abs(expected - actual))) if expected.size else 0.0


def check_port(encoder, decoder, x, authors_z_mean, authors_x_mean, tolerance=PORT_TOLERANCE):
    """Raises `ValueError` unless the Keras networks reproduce the authors' outputs on `x`.

    Compares the Keras encoder's posterior mean (the first half of its output)
    with `authors_z_mean`, and the Keras decoder's output at `authors_z_mean`
    with `authors_x_mean`.

    Args:
        encoder, decoder: the ported Keras networks.
        x: `(batch, 28, 28, 3)` images.
        authors_z_mean: `(batch, latent_dim)` their encoder's `posterior.mean` on `x`.
        authors_x_mean: their decoder's output at `authors_z_mean`.
        tolerance: the largest absolute difference allowed.

    Returns:
        Dict with `encoder_mean` and `decoder_output`: the largest absolute
        differences, and `tolerance`.
    """
    authors_z_mean = np.asarray(authors_z_mean, dtype=np.float32)
    latent_dim = authors_z_mean.shape[-1]
    stats = keras.ops.convert_to_numpy(encoder(x, training=False))
    x_mean = keras.ops.convert_to_numpy(decoder(authors_z_mean, training=False))
    errors = {
        "encoder_mean": max_abs_difference(authors_z_mean, stats[:, :latent_dim]),
        "decoder_output": max_abs_difference(authors_x_mean, x_mean),
    }
    if not all(error <= tolerance for error in errors.values()):  # NaN fails too
        raise ValueError(
            "The ported Keras networks do not reproduce the authors' networks: max |difference| "
            f"of the encoder mean {errors['encoder_mean']:.3g}, of the decoder output "
            f"{errors['decoder_output']:.3g} (tolerance {tolerance:g}, {len(authors_z_mean)} images)."
        )
    return {**errors, "tolerance": tolerance}


# ------------------------------------------------------------ the authors' code


def resolve_code_dir(code_dir):
    """The authors' `avae/` folder: `code_dir` itself, or `code_dir/avae`.

    Raises:
        ValueError: the folder does not exist, is not named `avae` (their
            modules import each other as `avae.*`), or lacks a module.
    """
    path = Path(code_dir).expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"`--code-dir` {os.fspath(code_dir)!r} is not a folder.")
    if path.name != AUTHORS_PACKAGE and (path / AUTHORS_PACKAGE).is_dir():
        path = path / AUTHORS_PACKAGE
    if path.name != AUTHORS_PACKAGE:
        raise ValueError(
            f"`--code-dir` must be the authors' `{AUTHORS_PACKAGE}/` folder (their modules import "
            f"`{AUTHORS_PACKAGE}.*`) or a folder holding it. Received: {os.fspath(code_dir)!r}"
        )
    missing = [name for name in AUTHORS_MODULES if not (path / f"{name}.py").is_file()]
    if missing:
        raise ValueError(
            f"{os.fspath(path)!r} lacks {[name + '.py' for name in missing]}; it should be the "
            f"`{AUTHORS_PACKAGE}/` folder of a checkout of {AUTHORS_REPOSITORY}."
        )
    return path


def import_authors_package(code_dir):
    """Imports the authors' modules from `code_dir`; returns `{name: module}`.

    Raises:
        ValueError: a different `avae` package is imported instead (e.g. one
            that was already imported or comes earlier on `sys.path`).
        ImportError: JAX, Haiku, optax or dill is missing (the `authors` extra).
    """
    import importlib

    path = resolve_code_dir(code_dir)
    parent = os.fspath(path.parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    try:
        modules = {name: importlib.import_module(f"{AUTHORS_PACKAGE}.{name}") for name in AUTHORS_MODULES}
    except ImportError as error:
        raise ImportError(
            f"Importing the authors' code from {os.fspath(path)!r} failed ({error}). Training it "
            f"needs jax, dm-haiku, optax and dill: {EXTRA_HINT}"
        ) from error
    for name, module in modules.items():
        if Path(module.__file__).resolve().parent != path:
            raise ValueError(
                f"`{AUTHORS_PACKAGE}.{name}` was imported from {module.__file__!r}, not from "
                f"{os.fspath(path)!r}; another `{AUTHORS_PACKAGE}` package shadows --code-dir."
            )
    return modules


class BroadcastingVmapJax:
    """Stands in for the `jax` module inside their `vae.py`: a one-entry in_axes maps every argument.

    Every attribute is JAX's, except `vmap`: `vmap(fun, [axis])` called with n
    positional arguments is `jax.vmap(fun, (axis,) * n)`, what their
    `vae_elbo`'s `jax.vmap(kl.kl_p_with_uniform_normal, [0])(mean, variance)`
    means. Any other in_axes goes to `jax.vmap` unchanged.
    """

    def __init__(self, jax_module):
        self._jax = jax_module

    def __getattr__(self, name):
        return getattr(self._jax, name)

    def vmap(self, fun, in_axes=0, *args, **kwargs):
        if not (isinstance(in_axes, (list, tuple)) and len(in_axes) == 1):
            return self._jax.vmap(fun, in_axes, *args, **kwargs)
        (axis,) = in_axes

        def mapped(*call_args, **call_kwargs):
            return self._jax.vmap(fun, (axis,) * len(call_args), *args, **kwargs)(*call_args, **call_kwargs)

        return mapped


def params_recorder(record):
    """A stand-in for their `checkpointer.Checkpointer` that keeps the latest state in `record`.

    It finds no checkpoint (so training starts afresh) and, on each
    `save_checkpoint`, stores the parameters and step in `record["params"]`
    and `record["step"]` instead of writing them to disk.
    """

    class ParamsRecorder:
        def __init__(self, checkpoint_dir, filename):
            del checkpoint_dir, filename  # nothing is written

        def load_checkpoint(self):
            return None

        def save_checkpoint(self, experiment_state, opt_state, step, extra_checkpoint_info=None):
            del opt_state, extra_checkpoint_info
            record["params"], record["step"] = experiment_state, step

    return ParamsRecorder


@contextlib.contextmanager
def authors_shims(vae_module, checkpointer_module, numpy_module=np):
    """Applies the run-time shims of the module docstring inside the block, and undoes them after.

    Args:
        vae_module: their `avae.vae` (its global `jax` gets `BroadcastingVmapJax`).
        checkpointer_module: their `avae.checkpointer` (its `Checkpointer` gets
            `params_recorder`'s class).
        numpy_module: the NumPy module that gets `product = prod` if it lacks it.

    Yields:
        The recorder's dict: `params` and `step` of the last saved step.
    """
    record = {"params": None, "step": None}
    had_product = hasattr(numpy_module, "product")
    original_jax = vae_module.jax
    original_checkpointer = checkpointer_module.Checkpointer
    if not had_product:
        numpy_module.product = numpy_module.prod
    vae_module.jax = BroadcastingVmapJax(original_jax)
    checkpointer_module.Checkpointer = params_recorder(record)
    try:
        yield record
    finally:
        checkpointer_module.Checkpointer = original_checkpointer
        vae_module.jax = original_jax
        if not had_product:
            del numpy_module.product


class LabelledBatches:
    """An endless iterator of full batches in their `types.LabelledData` layout, reshuffled each epoch.

    Args:
        labelled_data: their `types.LabelledData` class (`data=`, `label=`).
        images: float32 `(N, 28, 28, 3)` images in [0, 1].
        labels: `(N,)` labels (their iterators give the digit).
        batch_size: images per batch; the last partial batch of an epoch is dropped.
        seed: seed of the shuffling, or None to keep the order.
    """

    def __init__(self, labelled_data, images, labels, batch_size, seed=None):
        if len(images) < batch_size:
            raise ValueError(f"{len(images)} images cannot fill one batch of {batch_size}.")
        self._labelled_data = labelled_data
        self._images, self._labels = images, labels
        self._batch_size = batch_size
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._order, self._position = None, len(images)

    def __iter__(self):
        return self

    def __next__(self):
        if self._position + self._batch_size > len(self._images):
            count = len(self._images)
            self._order = np.arange(count) if self._rng is None else self._rng.permutation(count)
            self._position = 0
        index = self._order[self._position : self._position + self._batch_size]
        self._position += self._batch_size
        return self._labelled_data(data=self._images[index], label=self._labels[index])


def to_numpy_params(params):
    """Haiku parameters (a mapping of mappings of arrays) as plain dicts of NumPy arrays."""
    return {module: {key: np.asarray(value) for key, value in values.items()} for module, values in params.items()}


def train_authors_model(
    code_dir,
    model,
    train_data,
    test_data,
    *,
    steps=DEFAULT_STEPS,
    rho=DEFAULT_RHO,
    obs_var=DEFAULT_OBS_VAR,
    latent_dim=DEFAULT_LATENT_DIM,
    learning_rate=DEFAULT_LEARNING_RATE,
    batch_size=DEFAULT_BATCH_SIZE,
    seed=DEFAULT_SEED,
    log_every=DEFAULT_LOG_EVERY,
    check_size=DEFAULT_CHECK_SIZE,
):
    """Trains their model with their `train.train`; returns its parameters and its outputs on test images.

    Args:
        code_dir: the authors' `avae/` folder (see `resolve_code_dir`).
        model: `"avae"` (their `avae_elbo`) or `"vae"` (`vae_elbo`).
        train_data, test_data: `(images, labels)` ColorMNIST pairs
            (`keras_avae.datasets.color_mnist`).
        steps, rho, obs_var, latent_dim, learning_rate, batch_size, seed: as
            their train_main flags (`iterations`, ..., `rng_seed`).
        log_every: their `test_every`.
        check_size: test images on which their networks' outputs are returned.

    Returns:
        Dict with `params` (NumPy, `{module: {"w", "b"}}`), `train_seconds`,
        `test_terms` (their objective's batch means over the test images:
        `elbo`, `data_fidelity`, `kl`), `check_x`, `check_z_mean` (their
        posterior mean), `check_x_mean` (their decoder at it), `jax_version`
        and `jax_backend`.
    """
    try:
        import haiku as hk
        import jax
    except ImportError as error:
        raise ImportError(f"Training the authors' code needs JAX and Haiku: {EXTRA_HINT}") from error
    if model not in ELBO_METHODS:
        raise ValueError(f"`model` must be one of {MODEL_NAMES}. Received: model={model!r}")
    avae = import_authors_package(code_dir)
    x_train, train_labels = train_data
    x_test, test_labels = test_data

    def _elbo_fun(input_data):  # their train_main.py's `_elbo_fun`, with these settings
        encoder = avae["encoders"].ColorMnistMLPEncoder(latent_dim)
        decoder = avae["decoders"].ColorMnistMLPDecoder(obs_var)
        vae_obj = avae["vae"].VAE(encoder, decoder, rho)
        return getattr(vae_obj, ELBO_METHODS[model])(input_data, hk.next_rng_key())

    def _forward(input_data):
        encoder = avae["encoders"].ColorMnistMLPEncoder(latent_dim)
        decoder = avae["decoders"].ColorMnistMLPDecoder(obs_var)
        posterior = encoder(input_data)
        return posterior.mean, decoder(posterior.mean)

    elbo_fun = hk.transform(_elbo_fun)
    forward = hk.transform(_forward)
    labelled_data = avae["types"].LabelledData
    with authors_shims(avae["vae"], avae["checkpointer"]) as record:
        start = time.perf_counter()
        avae["train"].train(
            train_data_iterator=LabelledBatches(labelled_data, x_train, train_labels["digit"], batch_size, seed),
            test_data_iterator=LabelledBatches(labelled_data, x_test, test_labels["digit"], batch_size),
            elbo_fun=elbo_fun,
            learning_rate=learning_rate,
            checkpoint_dir="unused: the recorder keeps the parameters in memory",
            checkpoint_filename="unused",
            checkpoint_every=1,  # the recorder then holds the last step's parameters
            test_every=log_every,
            iterations=steps,
            rng_seed=seed,
        )
        if record["step"] != steps - 1:
            raise RuntimeError(f"Their training loop saved step {record['step']}, expected {steps - 1}.")
        params = jax.block_until_ready(record["params"])
        train_seconds = time.perf_counter() - start

        @jax.jit
        def batch_terms(params, key, input_data):  # their ELBOOutputs is no JAX type: return its fields
            outputs = elbo_fun.apply(params, key, input_data)
            return {name: outputs.__dict__[name].mean() for name in TERM_NAMES}

        keys = hk.PRNGSequence(jax.random.PRNGKey(seed))
        batches = [
            batch_terms(params, next(keys), x_test[begin : begin + batch_size])
            for begin in range(0, len(x_test) - batch_size + 1, batch_size)
        ]
        test_terms = {name: float(np.mean([batch[name] for batch in batches])) for name in TERM_NAMES}
        check_x = x_test[:check_size]
        z_mean, x_mean = jax.jit(forward.apply)(params, None, check_x)
    return {
        "params": to_numpy_params(params),
        "train_seconds": train_seconds,
        "test_terms": test_terms,
        "check_x": check_x,
        "check_z_mean": np.asarray(z_mean),
        "check_x_mean": np.asarray(x_mean),
        "jax_version": jax.__version__,
        "jax_backend": jax.default_backend(),
    }


# ------------------------------------------------------------------ the run


def save_params(path, params):
    """Writes `{module: {key: array}}` to an `.npz` file with keys `module:key`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"{module}:{key}": value for module, values in params.items() for key, value in values.items()})
    return path


AUTHORS_CHOICES = {"posterior_sampling": "variance", "coupling": "factorised", "delusion": "mean"}
"""The open choices as their code makes them (encoders.py `sample`, vae.py `avae_elbo`), so the
saved model's objective is the one it was trained with."""


def build_keras_model(model, params, *, latent_dim, rho, obs_var, seed):
    """`keras_avae.AVAE` or `VAE` on `architectures.mlp()` networks carrying the ported `params`,
    with the authors' choices (`AUTHORS_CHOICES`)."""
    encoder, decoder = architectures.mlp(latent_dim=latent_dim, input_shape=IMAGE_SHAPE)
    check_architecture(encoder, decoder)
    port_params(params, encoder, decoder)
    return registry.build_model(
        model, encoder, decoder, IMAGE_SHAPE, rho=rho, obs_var=obs_var, seed=seed, **AUTHORS_CHOICES
    )


def summary_markdown(metrics):
    """summary.md: this library's run summary, then the authors' training and the port check."""
    training, port = metrics["authors_training"], metrics["port_check"]
    terms = training["test_terms"]
    lines = [
        summaries.run_summary(metrics).rstrip("\n"),
        "",
        f"Trained with the authors' code ({metrics['code_dir']}): their `{ELBO_METHODS[metrics['model']]}` "
        f"and `train.train`, {training['steps']} steps of batch {training['batch_size']}, Adam "
        f"{training['learning_rate']:g}, rho {training['rho']:g}, obs_var {training['obs_var']:g}, "
        f"latent_dim {training['latent_dim']}, seed {training['seed']}, in {training['train_seconds']:.1f} s "
        f"({1000 * training['train_seconds'] / training['steps']:.1f} ms per step on JAX's "
        f"{training['jax_backend']}, wall clock including compilation and their periodic test ELBOs).",
        f"Their objective on {training['test_images']} test images (their constants): elbo "
        f"{terms['elbo']:.2f}, data_fidelity {terms['data_fidelity']:.2f}, kl {terms['kl']:.2f}.",
        f"Port check on {port['images']} test images: max |difference| of the encoder mean "
        f"{port['encoder_mean']:.2g}, of the decoder output {port['decoder_output']:.2g} (tolerance "
        f"{port['tolerance']:g}); the saved model.keras reproduces the port.",
        "",
    ]
    return "\n".join(lines)


def run(args):
    """Trains, ports, saves and evaluates as the module docstring says; returns the summary dict."""
    check_rho(args.rho)
    check_positive(args.obs_var, "obs_var")
    out = Path(args.out or os.path.join("runs", f"authors_code_{args.model}"))
    code_dir = resolve_code_dir(args.code_dir)
    data_path = color_mnist_experiment.resolve_data_path(args.data)
    train_data, test_data = color_mnist_experiment.load_data(data_path, args.train_size, args.test_size)
    probe_data = (
        train_data[0][: args.probe_train_size],
        {task: labels[: args.probe_train_size] for task, labels in train_data[1].items()},
    )
    print(
        f"Training the authors' {registry.DISPLAY_NAMES[args.model]} from {code_dir} for {args.steps} steps "
        f"on {len(train_data[0])} ColorMNIST images ...",
        flush=True,
    )
    trained = train_authors_model(
        code_dir,
        args.model,
        train_data,
        test_data,
        steps=args.steps,
        rho=args.rho,
        obs_var=args.obs_var,
        latent_dim=args.latent_dim,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        seed=args.seed,
        log_every=args.log_every,
        check_size=args.check_size,
    )
    save_params(out / "authors_params.npz", trained["params"])
    keras.utils.set_random_seed(args.seed)
    model = build_keras_model(
        args.model, trained["params"], latent_dim=args.latent_dim, rho=args.rho, obs_var=args.obs_var, seed=args.seed
    )
    check = (trained["check_x"], trained["check_z_mean"], trained["check_x_mean"])
    port_check = check_port(model.encoder, model.decoder, *check)
    registry.compile_model(model, args.learning_rate)
    model.optimizer.build(model.trainable_variables)  # saved with its slots, so it loads without warnings
    model.save(out / "model.keras")
    saved = keras.models.load_model(out / "model.keras")
    check_port(saved.encoder, saved.decoder, *check)
    print(
        f"Ported into keras_avae.architectures.mlp(): max |difference| encoder mean "
        f"{port_check['encoder_mean']:.2g}, decoder output {port_check['decoder_output']:.2g} "
        f"(tolerance {PORT_TOLERANCE:g}). Saved {out / 'model.keras'}.",
        flush=True,
    )
    evaluator = protocol_run.make_evaluator(
        probe_data,
        test_data,
        attack_size=args.attack_size,
        epsilons=args.epsilons,
        attack_steps=args.attack_steps,
        restarts=args.restarts,
        losses=args.losses,
        seed=args.seed,
    )
    print(
        f"Evaluating: linear probes on {len(probe_data[0])} training images, attacks "
        f"({', '.join(evaluator.attacks)}) on {len(evaluator.test_data[0])} test images ({args.attack_steps} "
        f"steps x {args.restarts} PGD restart(s) x {', '.join(args.losses)}) ...",
        flush=True,
    )
    evaluation = protocol_run.evaluate_model(model, test_data, evaluator)
    config = {key: (list(value) if isinstance(value, tuple) else value) for key, value in vars(args).items()}
    config.update(
        out=os.fspath(out), code_dir=os.fspath(code_dir), attacks=list(evaluator.attacks),
        square_queries=evaluator.square_queries,
    )
    metrics = {
        "model": args.model,
        "label": f"authors' {registry.DISPLAY_NAMES[args.model]} ({args.steps} steps)",
        "arch": "mlp",
        "config": config,
        "code_dir": os.fspath(code_dir),
        "data_path": data_path,
        "out": os.fspath(out),
        "num_train": int(len(probe_data[0])),
        "num_test": int(len(test_data[0])),
        "num_attacked": int(len(evaluator.test_data[0])),
        "authors_training": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "rho": args.rho,
            "obs_var": args.obs_var,
            "latent_dim": args.latent_dim,
            "seed": args.seed,
            "train_images": int(len(train_data[0])),
            "train_seconds": trained["train_seconds"],
            "test_images": int(len(test_data[0]) // args.batch_size * args.batch_size),
            "test_terms": trained["test_terms"],
            "jax": trained["jax_version"],
            "jax_backend": trained["jax_backend"],
        },
        "port_check": {**port_check, "images": int(len(trained["check_x"]))},
        **evaluation,
    }
    markdown = summary_markdown(metrics)
    metrics["markdown"] = markdown
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(markdown)
    run_directory.write_json(out / "summary.json", metrics)
    print("\n" + markdown)
    print(f"Wrote {out / 'summary.md'}, {out / 'summary.json'}, {out / 'model.keras'} and {out / 'authors_params.npz'}")
    return metrics


# ------------------------------------------------------------- command line



def _floats(text):
    try:
        return tuple(float(item) for item in text.split(",") if item)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers; got {text!r}") from None


def _names(text):
    return tuple(item for item in text.split(",") if item)


def build_parser():
    """The command line (needs no JAX, so `--help` works without the `authors` extra)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--code-dir", required=True,
                        help=f"local checkout of the authors' `{AUTHORS_PACKAGE}/` folder ({AUTHORS_REPOSITORY}), "
                             "or the folder holding it")
    parser.add_argument("--model", choices=MODEL_NAMES, default="avae")
    parser.add_argument("--steps", type=arguments.positive_int, default=DEFAULT_STEPS, help="training steps")
    parser.add_argument("--rho", type=float, default=DEFAULT_RHO, help="AVAE coupling")
    parser.add_argument("--obs-var", type=float, default=DEFAULT_OBS_VAR, help="likelihood variance v")
    parser.add_argument("--latent-dim", type=arguments.positive_int, default=DEFAULT_LATENT_DIM)
    parser.add_argument("--learning-rate", type=float, default=DEFAULT_LEARNING_RATE)
    parser.add_argument("--batch-size", type=arguments.positive_int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="their rng_seed, shuffling, probes, attacks")
    parser.add_argument("--log-every", type=arguments.positive_int, default=DEFAULT_LOG_EVERY,
                        help="their test_every: steps between printed test ELBOs")
    parser.add_argument("--out", default=None, help="run folder (default runs/authors_code_<model>)")
    parser.add_argument("--data", default=None, help="mnist.npz (default: $KERAS_AVAE_MNIST_PATH or shared/data)")
    parser.add_argument("--train-size", type=arguments.positive_int, default=None,
                        help="training images for their training (default all)")
    parser.add_argument("--test-size", type=arguments.positive_int, default=DEFAULT_TEST_SIZE,
                        help="test images for the test terms, MSE and clean probe accuracy")
    parser.add_argument("--probe-train-size", type=arguments.positive_int, default=DEFAULT_PROBE_TRAIN_SIZE,
                        help="training images the linear probes are fitted on")
    parser.add_argument("--attack-size", type=arguments.positive_int, default=DEFAULT_ATTACK_SIZE,
                        help="test images attacked")
    parser.add_argument("--attack-steps", type=arguments.positive_int, default=DEFAULT_ATTACK_STEPS)
    parser.add_argument("--restarts", type=arguments.positive_int, default=DEFAULT_RESTARTS)
    parser.add_argument("--epsilons", type=_floats, default=DEFAULT_EPSILONS, help="comma-separated L-inf radii")
    parser.add_argument("--losses", type=_names, default=DEFAULT_LOSSES, help="comma-separated attack losses")
    parser.add_argument("--check-size", type=arguments.positive_int, default=DEFAULT_CHECK_SIZE,
                        help="test images the port is checked on")
    return parser


def main(argv=None):
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
