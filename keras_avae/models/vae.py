"""The variational autoencoder of eq. (2), and the Keras machinery the other models share."""

import contextlib
import itertools
import types

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from keras.src.trainers.trainer import model_supports_jit

from keras_avae import distribute, distributions, files, objectives
from keras_avae.validation import (
    INPUT_STRUCTURE,
    as_array,
    check_choice,
    check_data_range,
    check_images,
    check_positive,
    check_seed,
    describe_images,
    image_statistics_tf,
    input_problem,
    statistics_problem,
    structure_problem,
)

# Tag carried by input-check errors raised inside a data pipeline (tf.data, or the
# threads of a PyDataset), so that `fit` can turn them back into a `ValueError`.
_INPUT_ERROR_TAG = "keras_avae input check: "

POSTERIOR_SAMPLING = ("std", "variance")
"""How z is drawn from q(z|x) = N(mu, diag(sigma^2)): z = mu + eps * sigma (`"std"`,
Algorithm 1 lines 5-6 and the bound's KL) or z = mu + eps * sigma^2 (`"variance"`, the
authors' released code, deepmind-research avae/encoders.py `sample`)."""

EXTRA_PASS_STATISTICS = ("update", "keep")
"""What an extra encoder pass in training (the delusion's, the adversarial input's) does to
the encoder's BatchNorm moving statistics: `"update"` them, as every training-mode Keras call
does, or `"keep"` them, using the batch's statistics without moving the running ones."""

RANDOM_ALGORITHM = "philox"
"""The counter-based generator of the model's stateless noise. Named rather than "auto_select",
which under XLA on a CPU picks ThreeFry, many times slower for image-sized noise such as the
sampled delusion's (README, Speed). Without XLA "auto_select" is Philox already."""

CONVOLUTION_LAYERS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)
"""The layers that make `compile(jit_compile="auto")` leave XLA off on a CPU-only machine: there an
XLA-compiled conv step is ~3.5x slower than a graph step, while an MLP step is faster with XLA
(benchmarks/train_step.py, `fit` against `fit_graph` and `hand_xla`)."""

# Key of the seed generator's state in a saved model, so resumed training draws the
# same noise as uninterrupted training.
_SEED_STATE_KEY = "seed_generator_state"


class _BatchCheck:
    """The one check of a model's input data, applied however the data arrives.

    Arrays (and tensors, and lists of examples) are checked whole before `fit` starts
    (`array`). A `tf.data.Dataset` is checked once by its element spec (`spec`:
    structure, dtype, example shape) and then batch by batch by a map in its own
    graph (`tensors`: three reductions in TensorFlow ops, off the training step's
    critical path and outside any XLA-compiled step). Batches that Python code makes
    (a `keras.utils.PyDataset`, a generator) are checked in NumPy as they are made
    (`batch`), in the PyDataset's workers when it has them. Every path ends in
    `validation.statistics_problem`, so each gives the same verdict and message.

    Errors raised inside a pipeline carry `_INPUT_ERROR_TAG`, and
    `_input_errors_as_value_errors` turns them back into a `ValueError`. The training
    step orders every variable update after its batch (`VAE._step_inputs`), so a
    batch that fails changes nothing. It holds no reference to the model, so it
    pickles into PyDataset worker processes.

    Args:
        what: the data's name in messages, e.g. "training data" or "`x`".
        data_range: the model's `data_range`.
        example_shape: the model's `example_shape` (None before it is built).
    """

    def __init__(self, what, data_range, example_shape):
        self.what = what
        self.data_range = data_range
        self.example_shape = example_shape

    def error(self, problem, structure=False, tag=False):
        """The `ValueError` for `problem`, naming the data and what the model expects."""
        expected = describe_images(self.example_shape, self.data_range)
        if structure:
            expected += f", {INPUT_STRUCTURE}"
        message = f"Bad {self.what}: {problem}. Expected {expected}."
        return ValueError(_INPUT_ERROR_TAG + message if tag else message)

    def inputs(self, batch, tag=False):
        """The images of a batch: `x`, or the first item of `(x,)`, `(x, y)`, `(x, y, sample_weight)`."""
        if isinstance(batch, (list, tuple)) and not 1 <= len(batch) <= 3:
            raise self.error(f"got a {type(batch).__name__} of {len(batch)} items", structure=True, tag=tag)
        x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        problem = structure_problem(x)
        if problem:
            raise self.error(problem, structure=True, tag=tag)
        return x

    def array(self, x):
        """Checks a whole array, tensor or list of images now; returns it as a NumPy array."""
        if isinstance(x, dict) or x is None:
            raise self.error(structure_problem(x), structure=True)
        return check_images(x, self.data_range, self.example_shape, what=self.what)

    def batch(self, batch):
        """Checks one batch made by Python code (a PyDataset's, a generator's); returns it unchanged."""
        x = self.inputs(batch, tag=True)
        try:
            array = as_array(x)
        except ValueError as error:
            raise self.error(str(error).rstrip("."), tag=True) from None
        if array.ndim < 2 or not len(array):
            raise self.error(f"a batch has shape {array.shape}, with no examples", tag=True)
        if self.example_shape is not None and tuple(array.shape[1:]) != tuple(self.example_shape):
            raise self.error(
                f"a batch has examples of shape {tuple(array.shape[1:])}; the model takes "
                f"{tuple(self.example_shape)}",
                tag=True,
            )
        problem = input_problem(array, self.data_range)
        if problem:
            raise self.error(problem, tag=True)
        return batch

    def spec(self, element_spec):
        """Checks a tf.data element spec before any batch is read; returns the images' `TensorSpec`."""
        x = self.inputs(element_spec)
        if not isinstance(x, tf.TensorSpec):
            raise self.error(f"got a {type(x).__name__}, not a dense tensor of images", structure=True)
        if not (x.dtype.is_floating or x.dtype.is_integer):
            raise self.error(f"got images of dtype {x.dtype.name}")
        shape = x.shape
        if self.example_shape is not None and shape.rank is not None:
            example = tf.TensorShape(self.example_shape)
            if shape.rank == example.rank and shape.is_compatible_with(example):
                raise self.error(
                    f"the dataset yields single examples of shape {tuple(shape)}, not batches: "
                    "batch it, e.g. dataset.batch(64)"
                )
            if shape.rank != example.rank + 1 or not shape[1:].is_compatible_with(example):
                raise self.error(f"the dataset yields batches of shape {tuple(shape)}")
        return x

    def tensors(self, *element):
        """The tf.data map: the element unchanged, once its images pass; the reductions run in TF ops."""
        batch = element if len(element) > 1 else element[0]
        x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        count = tf.shape(x, out_type=tf.int64)[0]
        verdict = tf.numpy_function(self._verdict, [count, *image_statistics_tf(x)], tf.bool)
        with tf.control_dependencies([verdict]):
            return tf.nest.map_structure(tf.identity, batch)

    def _verdict(self, count, size, non_finite, low, high):
        if not count:
            raise self.error("a batch holds no examples", tag=True)
        problem = statistics_problem(size, non_finite, low, high, self.data_range)
        if problem:
            raise self.error(problem, tag=True)
        return np.bool_(True)


class _CheckedPyDataset(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` whose batches pass `_BatchCheck.batch` as they are made."""

    def __init__(self, dataset, check):
        super().__init__(
            workers=dataset.workers,
            use_multiprocessing=dataset.use_multiprocessing,
            max_queue_size=dataset.max_queue_size,
        )
        self.dataset = dataset
        self.check = check

    def __len__(self):
        return len(self.dataset)

    @property
    def num_batches(self):
        return self.dataset.num_batches

    def __getitem__(self, index):
        return self.check.batch(self.dataset[index])

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def _checked_generator(first, rest, check):
    """The batches of a generator whose first batch (already checked) was read ahead.

    A bare array of images is passed on as `(x,)`, the tuple Keras wants from a
    generator, so generators may yield what datasets and PyDatasets do.
    """
    for batch in itertools.chain([first], (check.batch(batch) for batch in rest)):
        yield batch if isinstance(batch, tuple) else (batch,)


def _copy_network(network):
    """A new network with the same architecture and weights as `network`."""
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    return copy


def _check_network_output(outputs, network):
    """Refuses network outputs the models cannot use (a dict, or a structure of the wrong length)."""
    if isinstance(outputs, dict):
        raise ValueError(
            f"The {network} returned a dict with keys {sorted(map(str, outputs))}; "
            + (
                "it must return one tensor (batch, 2 * latent_dim) or a pair (z_mean, z_log_var), "
                "e.g. keras.Model(inputs, [z_mean, z_log_var])."
                if network == "encoder"
                else "it must return one tensor, the mean of x."
            )
        )
    if network == "decoder" and isinstance(outputs, (list, tuple)):
        raise ValueError(f"The decoder returned {len(outputs)} outputs; it must return one tensor, the mean of x.")


def has_convolution(network):
    """Whether `network` (a Keras layer or model) holds a `CONVOLUTION_LAYERS` layer at any depth."""
    if not isinstance(network, keras.layers.Layer):
        return False
    return any(isinstance(layer, CONVOLUTION_LAYERS) for layer in network._flatten_layers(include_self=True))


@contextlib.contextmanager
def _input_errors_as_value_errors():
    """Re-raises an input check that failed inside a data pipeline as a plain `ValueError`."""
    try:
        yield
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", None) or str(error)
        if _INPUT_ERROR_TAG not in message:
            raise
        raise ValueError(message.split(_INPUT_ERROR_TAG, 1)[1].splitlines()[0]) from None


@keras.saving.register_keras_serializable(package="keras_avae")
class VAE(keras.Model):
    """Variational autoencoder trained by maximising the ELBO of eq. (2).

    The encoder's output parametrises the diagonal Gaussian posterior
    q(z|x) = N(f^mu(x), diag(exp(f^logvar(x)))): either one tensor of width
    `2 * latent_dim` whose first half is the mean and second half the
    log-variance, or a pair `(z_mean, z_log_var)`. The log-variance is
    unconstrained; the standard deviation is `exp(z_log_var / 2)`. The decoder
    maps z to the mean g(z) of the observation model p(x|z), with the shape of
    x. The prior is N(0, I) and the latent dimension is read off the encoder.

    `fit` reports, per example and averaged over the epoch: `loss` (the
    negative of the model's objective), `elbo` (eq. 2, the same bound for every
    model so they compare), `reconstruction` (<log p(x|z)>, one sample), and
    `kl` (KL(q(z|x) || p(z))), plus each subclass's extra terms. The models
    define their own objective and trackers: `compile` takes an optimizer and
    refuses `loss` and `metrics`.

    `compile(optimizer)` is fast by default: on a CPU-only machine its
    `jit_compile="auto"` turns XLA on for networks without a convolution layer
    and off for those with one (Keras' own "auto" turns it off for all); with a
    GPU it is Keras' "auto". `compile(jit_compile=True/False)` overrides it, and
    `model.jit_compile` reports the value in use (see `compile`).

    Every input of `fit`, `evaluate`, `predict`, the `*_on_batch` methods,
    `encode`, `encode_mean` and `reconstruct` is checked, whatever carries it
    (NumPy arrays, tensors, lists of examples, `tf.data.Dataset`s,
    `keras.utils.PyDataset`s, generators): one array of images
    `(batch, *example_shape)` (alone or first in an `(x, y)` or
    `(x, y, sample_weight)` tuple, whose `y` and `sample_weight` are not
    used), finite, inside `data_range`. Arrays are checked whole before
    training starts; data that arrives in batches is checked batch by batch
    as it is read, and a batch that fails raises a `ValueError` before its
    training step changes any variable (weights, optimizer iterations, seed
    generator). Symbolic tensors (inside a `tf.function`) are not checked.

    Args:
        encoder: Keras layer or model, x -> (batch, 2 * latent_dim) or a pair.
        decoder: Keras layer or model, z -> mean of x, shaped like x.
        obs_var: variance v of the Gaussian likelihood N(x; g(z), v I). The
            default 0.5 is the authors' ColorMNIST setting.
        likelihood: `"gaussian"` or `"bernoulli"` (decoder outputs probabilities).
        data_range: `(low, high)` the pixels of x must lie in; `fit` and
            `evaluate` refuse data outside it (or NaN, or infinite). None skips
            the range check.
        seed: seed of the model's `keras.random.SeedGenerator`, an int or None.
        posterior_sampling: `"std"` (default): z = mu + eps * sigma, Algorithm
            1 lines 5-6, the distribution the bound's KL describes; or
            `"variance"`: z = mu + eps * sigma^2, as the authors' released code
            samples (deepmind-research avae/encoders.py `sample`). With
            `"variance"` the KL term and H[q] still describe N(mu, sigma^2),
            not the distribution z is drawn from, so the objective is no longer
            a bound on log p(x).
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:
        encoder, decoder = keras_avae.architectures.mlp(latent_dim=64)
        vae = keras_avae.VAE(encoder, decoder)
        vae.compile(optimizer="adam")
        vae.fit(x_train, epochs=10, batch_size=64)
        z = vae.encode_mean(x_test)
    """

    OPEN_CHOICES = {"posterior_sampling": POSTERIOR_SAMPLING}
    """The paper's open choices this class takes as arguments, name -> values."""

    OBJECTIVE = "the ELBO of eq. (2)"
    """What `fit` maximises, for messages."""

    def __init__(
        self,
        encoder,
        decoder,
        obs_var=0.5,
        likelihood="gaussian",
        data_range=(0.0, 1.0),
        seed=None,
        posterior_sampling="std",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if likelihood not in distributions.LIKELIHOODS:
            raise ValueError(
                f"`likelihood` must be one of {distributions.LIKELIHOODS}. "
                f"Received: likelihood={likelihood!r}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.obs_var = check_positive(obs_var, "obs_var")
        self.likelihood = likelihood
        self.data_range = check_data_range(data_range)
        self.seed = check_seed(seed, allow_none=True)
        self.posterior_sampling = check_choice(posterior_sampling, POSTERIOR_SAMPLING, "posterior_sampling")
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.latent_dim = None
        self.example_shape = None
        self._trackers = {name: keras.metrics.Mean(name=name) for name in self.term_names}

    # ------------------------------------------------------------------ terms

    @property
    def term_names(self):
        """Names of the reported terms, in the order the progress bar shows them."""
        return ("loss", "elbo", "reconstruction", "kl")

    def _terms(self, x, training=False):
        """All terms of eq. (2) for a batch: a dict of `(batch,)` tensors."""
        z_mean, z_log_var = self._encode(x, training)
        z = self._reparametrise(z_mean, z_log_var)
        x_mean = self.decoder(z, training=training)
        terms = self._elbo_terms(x, x_mean, z_mean, z_log_var)
        terms["loss"] = -terms["elbo"]
        return terms

    def _elbo_terms(self, x, x_mean, z_mean, z_log_var):
        """reconstruction, kl and elbo = reconstruction - kl, eq. (2)."""
        reconstruction = objectives.reconstruction(
            x, ops.cast(x_mean, "float32"), self.likelihood, self.obs_var
        )
        kl = objectives.kl_to_standard_normal(z_mean, z_log_var)
        return {"elbo": reconstruction - kl, "reconstruction": reconstruction, "kl": kl}

    # -------------------------------------------------------------- networks

    def _encode(self, x, training=False, update_statistics=True):
        """Runs the encoder; returns float32 `(z_mean, z_log_var)`.

        With `training` and not `update_statistics`, the encoder runs in training
        mode (BatchNorm normalises by the batch's statistics) through
        `stateless_call`, whose new moving statistics are dropped: gradients
        flow as in a plain call, and no non-trainable variable changes.
        """
        if training and not update_statistics:
            outputs, _ = self.encoder.stateless_call(
                [variable.value for variable in self.encoder.trainable_variables],
                [variable.value for variable in self.encoder.non_trainable_variables],
                x,
                training=True,
            )
        else:
            outputs = self.encoder(x, training=training)
        _check_network_output(outputs, "encoder")
        if isinstance(outputs, (list, tuple)):
            z_mean, z_log_var = outputs
        else:
            z_mean, z_log_var = ops.split(outputs, 2, axis=-1)
        return ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")

    def _replica_seed(self):
        """The next seed of the model's seed generator, different on each replica."""
        seed = self.seed_generator.next()
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            seed = seed + ops.cast(replica.replica_id_in_sync_group, seed.dtype)
        return seed

    def _normal_noise(self, shape):
        """N(0, I) noise from the model's seed generator, different on each replica."""
        return tf.random.stateless_normal(shape, seed=self._replica_seed(), alg=RANDOM_ALGORITHM)

    def _sample_observation(self, x_mean):
        """A draw of p(x|z) with mean `x_mean` (eq. 1): g(z) + sqrt(v) eps (Gaussian) or a Bernoulli draw."""
        if self.likelihood == "gaussian":
            return x_mean + ops.cast(self.obs_var**0.5, x_mean.dtype) * ops.cast(
                self._normal_noise(ops.shape(x_mean)), x_mean.dtype
            )
        uniform = tf.random.stateless_uniform(ops.shape(x_mean), seed=self._replica_seed(), alg=RANDOM_ALGORITHM)
        return ops.cast(ops.cast(uniform, x_mean.dtype) < x_mean, x_mean.dtype)

    def _reparametrise(self, z_mean, z_log_var):
        """z = mu + sigma * eps with eps ~ N(0, I), Algorithm 1 lines 5-6 (sigma^2 * eps
        with `posterior_sampling="variance"`)."""
        log_scale = 0.5 * z_log_var if self.posterior_sampling == "std" else z_log_var
        return z_mean + ops.exp(log_scale) * self._normal_noise(ops.shape(z_mean))

    def build(self, input_shape):
        """Builds both networks and checks that their shapes fit together."""
        x_shape = tuple(input_shape)
        encoded = self.encoder(keras.KerasTensor(x_shape))
        _check_network_output(encoded, "encoder")
        if isinstance(encoded, (list, tuple)):
            if len(encoded) != 2 or tuple(encoded[0].shape) != tuple(encoded[1].shape):
                raise ValueError(
                    "The encoder must return one tensor of width 2 * latent_dim or a pair "
                    "(z_mean, z_log_var) of equal shapes. Received outputs of shapes "
                    f"{[tuple(e.shape) for e in encoded]}"
                )
            latent_dim = encoded[0].shape[-1]
        else:
            width = encoded.shape[-1]
            if len(encoded.shape) != 2 or width is None or width % 2:
                raise ValueError(
                    "The encoder output must have shape (batch, 2 * latent_dim), split into "
                    f"mean and log-variance halves. Received shape {tuple(encoded.shape)}"
                )
            latent_dim = width // 2
        decoded = self.decoder(keras.KerasTensor((x_shape[0], latent_dim)))
        _check_network_output(decoded, "decoder")
        if tuple(decoded.shape[1:]) != x_shape[1:]:
            raise ValueError(
                f"The decoder output shape {tuple(decoded.shape[1:])} differs from the input "
                f"shape {x_shape[1:]}: the decoder must map z to the mean of x."
            )
        self.latent_dim = int(latent_dim)
        self.example_shape = tuple(x_shape[1:])
        self.input_spec = keras.InputSpec(shape=(None,) + x_shape[1:])
        super().build(input_shape)

    # --------------------------------------------------------------- Keras API

    def call(self, x, training=False):
        """Reconstructs x through the posterior mean: g(f^mu(x))."""
        z_mean, _ = self._encode(x, training)
        return self.decoder(z_mean, training=training)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _update_trackers(self, terms):
        for name, tracker in self._trackers.items():
            tracker.update_state(terms[name])
        # Keras 3 cannot average scalar logs across workers (tensorflow#72388): `reducible_logs`.
        return distribute.reducible_logs({name: tracker.result() for name, tracker in self._trackers.items()})

    def _step_inputs(self, data, what="training data"):
        """The images of a step's batch, refusing other structures (at trace time).

        The batch was checked on its way in (`_BatchCheck`). A step runs its ops as
        their inputs are ready, so without a dependency the seed generator and the
        optimizer's iteration count, which do not depend on the data, would advance
        even when reading the batch fails its check; the steps therefore run under
        `tf.control_dependencies([x])`, which orders every variable update after it.
        """
        return _BatchCheck(what, self.data_range, self.example_shape).inputs(data)

    def train_step(self, data):
        x = self._step_inputs(data)
        if not self.optimizer.built:
            # `fit` builds it first; a step called in a loop of the user's own creates it
            # here, as `optimizer.apply` would, but outside the dependency on x, so that
            # the variables can be lifted out of the traced step.
            with tf.name_scope(self.optimizer.name):
                self.optimizer.build(self.trainable_variables)
        with tf.control_dependencies([x]):
            with tf.GradientTape() as tape:
                terms = self._terms(x, training=True)
                # Sum over the global batch / its size, so replicas' gradients add up
                # to the single-device gradient under tf.distribute.
                loss = tf.nn.compute_average_loss(terms["loss"])
                scaled_loss = self.optimizer.scale_loss(loss)
            grads = tape.gradient(scaled_loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            return self._update_trackers(terms)

    def test_step(self, data):
        x = self._step_inputs(data, "evaluation data")
        with tf.control_dependencies([x]):
            return self._update_trackers(self._terms(x, training=False))

    def _batch_check(self, what):
        return _BatchCheck(what, self.data_range, self.example_shape)

    def _checked(self, x, what="training data"):
        """The one check every input of `fit`, `evaluate` and `predict` goes through (see `_BatchCheck`).

        Builds the model from the data's shape first when it is not built, so that the
        example shape is checked too. Returns the data to hand to Keras: arrays as
        they are (lists as one array), datasets, PyDatasets and generators wrapped so
        that each batch is checked as it is read.
        """
        if x is None or isinstance(x, dict):
            raise self._batch_check(what).error(structure_problem(x), structure=True)
        if isinstance(x, tf.data.Dataset):
            spec = self._batch_check(what).spec(x.element_spec)
            if not self.built:
                self._build_from_shape(spec.shape)
                self._batch_check(what).spec(x.element_spec)
            checked = x.map(self._batch_check(what).tensors, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            return checked.prefetch(tf.data.AUTOTUNE)
        if isinstance(x, keras.utils.PyDataset):
            if not self.built:
                first = self._batch_check(what).batch(x[0])
                self._build_from_shape(np.shape(self._batch_check(what).inputs(first)))
            return _CheckedPyDataset(x, self._batch_check(what))
        if isinstance(x, types.GeneratorType):
            try:
                first = next(x)
            except StopIteration:
                raise ValueError(f"Bad {what}: the generator yields no batches.") from None
            self._batch_check(what).batch(first)
            if not self.built:
                self._build_from_shape(np.shape(self._batch_check(what).inputs(first)))
                self._batch_check(what).batch(first)
            return _checked_generator(first, x, self._batch_check(what))
        if not isinstance(x, (np.ndarray, tf.Tensor, list, tuple, dict)) and not hasattr(x, "__array__"):
            raise ValueError(
                f"Bad {what}: got a {type(x).__name__}. Pass a NumPy array or tensor of "
                f"{describe_images(self.example_shape, self.data_range)}, a list of such examples, "
                "a tf.data.Dataset, a keras.utils.PyDataset or a generator of batches "
                "(a distributed dataset: pass the tf.data.Dataset, and fit distributes it)."
            )
        array = self._batch_check(what).array(x)
        if not self.built:
            self._build_from_shape(array.shape)
        return x if isinstance(x, (np.ndarray, tf.Tensor)) else array

    def _build_from_shape(self, shape):
        """Builds the model for batches of `shape`, before Keras traces a step."""
        if self.built:
            return
        with self.distribute_strategy.scope():
            self.build((None,) + tuple(shape[1:]))

    def _build_for(self, x):
        """Builds the model from the shape of an array or dataset, before Keras traces a step."""
        if isinstance(x, tf.data.Dataset):
            spec, _, _ = keras.utils.unpack_x_y_sample_weight(x.element_spec)
            self._build_from_shape(spec.shape)
        elif hasattr(x, "shape"):
            self._build_from_shape(x.shape)

    def _checked_inference_inputs(self, x):
        """Checks eager inputs of `encode`, `encode_mean`, `reconstruct`; symbolic ones pass as they are."""
        if isinstance(x, keras.KerasTensor) or not tf.executing_eagerly():
            return x
        array = self._batch_check("`x`").array(x)
        return x if isinstance(x, (np.ndarray, tf.Tensor)) else array

    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        jit_compile="auto",
        **kwargs,
    ):
        """`keras.Model.compile` with an optimizer; `loss` and `metrics` are refused.

        The model maximises its own objective (`OBJECTIVE`) and reports its terms
        (`term_names`) through its own trackers, so a Keras loss or metric would be
        ignored; passing one raises a `ValueError` instead.

        `jit_compile="auto"` (the default) is resolved per model (`resolve_jit_compile`):
        on a CPU-only machine, where Keras' own "auto" always turns XLA off, XLA is on
        unless the encoder or decoder holds a convolution layer (`CONVOLUTION_LAYERS`);
        XLA makes an MLP step faster on a CPU and a conv step slower. With an
        accelerator, a `tf.distribute` strategy or `run_eagerly=True`, "auto" is left
        to Keras. An explicit `jit_compile=True` or `False` is kept. `model.jit_compile`
        reports the resolved value; a saved model keeps the request (`"auto"` or the
        explicit value), so it is resolved again where it is loaded.
        """
        given = {
            "loss": loss,
            "loss_weights": loss_weights,
            "metrics": metrics,
            "weighted_metrics": weighted_metrics,
        }
        for name, value in given.items():
            if value is None or (isinstance(value, (list, tuple, dict)) and not value):
                continue
            raise ValueError(
                f"`{name}` is not used: {type(self).__name__} maximises its own objective "
                f"({self.OBJECTIVE}) and reports its terms ({', '.join(self.term_names)}) with its "
                f"own trackers. Compile with an optimizer only, e.g. model.compile(optimizer='adam'). "
                f"Received: {name}={value!r}"
            )
        if isinstance(jit_compile, np.bool_):
            jit_compile = bool(jit_compile)
        if not (jit_compile == "auto" or isinstance(jit_compile, bool)):
            raise ValueError(f"`jit_compile` must be True, False or 'auto'. Received: jit_compile={jit_compile!r}")
        resolved = self.resolve_jit_compile(jit_compile, run_eagerly=kwargs.get("run_eagerly", False))
        super().compile(optimizer=optimizer, jit_compile=resolved, **kwargs)
        # Keras saves the resolved value; keep the request, so a loaded model resolves it anew.
        self._compile_config.config["jit_compile"] = jit_compile

    def resolve_jit_compile(self, jit_compile="auto", run_eagerly=False):
        """What `compile(jit_compile=...)` passes on to Keras: True, False, or "auto" for Keras to resolve.

        An explicit True or False is returned as it is. "auto" stays "auto" (Keras'
        rule) with `run_eagerly`, with a `tf.distribute` strategy, or when a device
        other than the CPU is present (`tf.config.list_physical_devices()`: a GPU, a
        TPU). On a CPU-only machine it is True when the networks hold no convolution
        layer (`has_convolution`) and Keras supports XLA for all their layers, else False.
        """
        if jit_compile != "auto" or run_eagerly or self._distribute_strategy:
            return jit_compile
        if any(device.device_type != "CPU" for device in tf.config.list_physical_devices()):
            return "auto"
        if has_convolution(self.encoder) or has_convolution(self.decoder):
            return False
        return model_supports_jit(self)

    def compile_from_config(self, config):
        """Compiles a loaded model as it was saved, as `keras.Model.compile_from_config` does.

        Keras skips that step for a model whose `compile` is overridden, as this one is.
        """
        self.compile(**keras.saving.deserialize_keras_object(config))
        self._build_optimizer()

    def _build_optimizer(self):
        """Creates the optimizer's variables of a built model, before a step is traced.

        A `tf.function` whose first trace creates variables is traced a second time
        without them, so a first `fit` that left the optimizer to its step would trace
        (and, under XLA, compile) that step twice.
        """
        if self.built and self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope(), tf.name_scope(self.optimizer.name):
                self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        with _input_errors_as_value_errors():
            x = self._checked(x)
            self._build_optimizer()
            if isinstance(validation_data, tuple):
                validation_data = (self._checked(validation_data[0], "validation data"),) + validation_data[1:]
            elif validation_data is not None:
                validation_data = self._checked(validation_data, "validation data")
            return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        with _input_errors_as_value_errors():
            if not kwargs.get("_use_cached_eval_dataset"):  # else `fit` checked its validation data
                x = self._checked(x, "evaluation data")
            return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        with _input_errors_as_value_errors():
            x = self._checked(x, "`x`")
            return super().predict(x, *args, **kwargs)

    def train_on_batch(self, x, y=None, *args, **kwargs):
        x = self._checked(x)
        self._build_optimizer()
        return super().train_on_batch(x, y, *args, **kwargs)

    def test_on_batch(self, x, y=None, *args, **kwargs):
        x = self._checked(x, "evaluation data")
        return super().test_on_batch(x, y, *args, **kwargs)

    def predict_on_batch(self, x):
        return super().predict_on_batch(self._checked(x, "`x`"))

    # -------------------------------------------------------------- inference

    def encode(self, x):
        """The posterior q(z|x), a `tfp.distributions` diagonal Gaussian; eager `x` is checked."""
        return distributions.diagonal_gaussian(*self._encode(self._checked_inference_inputs(x)))

    def encode_mean(self, x):
        """The representation f^mu(x), the posterior mean; eager `x` is checked (finite, in `data_range`)."""
        return self._encode(self._checked_inference_inputs(x))[0]

    def reconstruct(self, x):
        """g(f^mu(x)): the decoder mean at the posterior mean; eager `x` is checked."""
        return self(self._checked_inference_inputs(x), training=False)

    def generate(self, z):
        """The decoder mean g(z)."""
        return self.decoder(z, training=False)

    def sample(self, n):
        """`n` images g(z) with z ~ p(z) = N(0, I), the decoder means."""
        if not self.built:
            raise ValueError("`sample` needs a built model: fit it or call it on data first.")
        return self.generate(self._normal_noise((int(n), self.latent_dim)))

    # ------------------------------------------------------------ persistence

    @classmethod
    def from_pretrained(cls, model, **kwargs):
        """A new model of this class starting from a copy of a trained model's networks.

        The source model is not modified and shares no weights with the copy.

        Args:
            model: a built `VAE` (or any model of this library).
            **kwargs: constructor arguments of this class (e.g. `rho`); `obs_var`,
                `likelihood`, `data_range`, `seed` and `posterior_sampling`
                default to the source's.

        Returns:
            A built model of this class.

        Example:
            robust = keras_avae.AVAESelfSupervised.from_pretrained(vae, rho=0.975)
        """
        if not isinstance(model, VAE):
            raise ValueError(
                "`from_pretrained` takes a keras_avae model (VAE, AVAE, ...). "
                f"Received: {type(model).__name__}"
            )
        if not model.built:
            raise ValueError("`from_pretrained` needs a built model: fit it or call it on data first.")
        for key in ("obs_var", "likelihood", "data_range", "seed", "posterior_sampling"):
            kwargs.setdefault(key, getattr(model, key))
        copy = cls(_copy_network(model.encoder), _copy_network(model.decoder), **kwargs)
        copy.build((None,) + model.example_shape)
        return copy

    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """`keras.Model.save`, atomically (`keras_avae.files.save_model`): a `.keras` path only.

        The archive is written to a hidden file next to `filepath` and renamed over it, so
        a save that fails leaves the previous file intact. A path not ending in `.keras`
        (a legacy `.h5` one included) raises a `ValueError` before anything is written.
        """
        files.save_model(self, filepath, overwrite=overwrite, zipped=zipped, **kwargs)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[_SEED_STATE_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        own = {key: store[key] for key in store.keys() if key != _SEED_STATE_KEY}
        super().load_own_variables(own)
        if _SEED_STATE_KEY in store:
            self.seed_generator.state.assign(store[_SEED_STATE_KEY])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "obs_var": self.obs_var,
                "likelihood": self.likelihood,
                "data_range": self.data_range,
                "seed": self.seed,
                "posterior_sampling": self.posterior_sampling,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
