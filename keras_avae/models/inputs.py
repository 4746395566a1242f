"""The one check of a model's input data, whatever carries it, and the `fit`-like methods that apply it.

`CheckedInputs` is a mixin of `VAE` (and so of every model): `fit`, `evaluate`, `predict` and the
three `*_on_batch` methods hand their data to `checked`, which checks arrays whole and wraps
datasets, PyDatasets and generators so that each batch is checked as it is read (`BatchCheck`).
"""

import contextlib
import itertools
import types

import keras
import numpy as np
import tensorflow as tf

from keras_avae.validation import (
    INPUT_STRUCTURE,
    as_array,
    check_integer,
    check_images,
    describe_images,
    image_statistics_tf,
    input_problem,
    statistics_problem,
    structure_problem,
)

INPUT_ERROR_TAG = "keras_avae input check: "
"""Tag carried by input-check errors raised inside a data pipeline (tf.data, or the threads of a
PyDataset), so that `fit` can turn them back into a `ValueError`."""


class BatchCheck:
    """The one check of a model's input data, applied however the data arrives.

    Arrays (and tensors, and lists of examples) are checked whole before `fit` starts
    (`array`). A `tf.data.Dataset` is checked once by its element spec (`spec`:
    structure, dtype, example shape) and then batch by batch by a map in its own
    graph (`tensors`: three reductions in TensorFlow ops, off the training step's
    critical path and outside any XLA-compiled step). Batches that Python code makes
    (a `keras.utils.PyDataset`, a generator) are checked in NumPy as they are made
    (`batch`), in the PyDataset's workers when it has them. Every path ends in
    `validation.statistics_problem`, so each gives the same verdict and message.

    Errors raised inside a pipeline carry `INPUT_ERROR_TAG`, and
    `input_errors_as_value_errors` turns them back into a `ValueError`. The training
    step orders every variable update after its batch (`Steps._step_inputs`), so a
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
        return ValueError(INPUT_ERROR_TAG + message if tag else message)

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


class CheckedPyDataset(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` whose batches pass `BatchCheck.batch` as they are made."""

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


def checked_generator(first, rest, check):
    """The batches of a generator whose first batch (already checked) was read ahead.

    A bare array of images is passed on as `(x,)`, the tuple Keras wants from a
    generator, so generators may yield what datasets and PyDatasets do.
    """
    for batch in itertools.chain([first], (check.batch(batch) for batch in rest)):
        yield batch if isinstance(batch, tuple) else (batch,)



@contextlib.contextmanager
def input_errors_as_value_errors():
    """Re-raises an input check that failed inside a data pipeline as a plain `ValueError`."""
    try:
        yield
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", None) or str(error)
        if INPUT_ERROR_TAG not in message:
            raise
        raise ValueError(message.split(INPUT_ERROR_TAG, 1)[1].splitlines()[0]) from None



def _read_through(dataset, steps=None):
    """Reads a checked dataset (its first `steps` batches) once, so a bad batch fails now; an endless one is left."""
    if steps is not None:
        dataset = dataset.take(steps)
    elif dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        return
    for _ in dataset:
        pass


class CheckedInputs:
    """Checks every input of `fit`, `evaluate`, `predict` and the `*_on_batch` methods; a mixin of `keras.Model`.

    Every input of those methods (and, through `_checked_inference_inputs`, of `terms`,
    `encode`, `encode_mean` and `reconstruct`) is checked, whatever carries it (NumPy
    arrays, tensors, lists of examples, `tf.data.Dataset`s, `keras.utils.PyDataset`s,
    generators): one array of images `(batch, *example_shape)` (alone or first in an
    `(x, y)` or `(x, y, sample_weight)` tuple, whose `y` and `sample_weight` are not used),
    finite, inside `data_range`. Arrays are checked whole before training starts; data that
    arrives in batches is checked batch by batch as it is read, and a batch that fails
    raises a `ValueError` before its training step changes any variable (weights, optimizer
    iterations, seed generator). A `tf.data` validation set is read through once before
    training (`fit`). Symbolic tensors (inside a `tf.function`) are not checked. `batch_size`
    must be an integer >= 1 or None, and `class_weight` is refused (the models take no labels).

    Each method passes its data through `_checked` (one hook) before Keras sees it. The
    model class sets `data_range`, `example_shape`, `OBJECTIVE` and `_build_optimizer`.
    """

    def _batch_check(self, what):
        return BatchCheck(what, self.data_range, self.example_shape)

    def _checked(self, x, what="training data"):
        """The one check every input of `fit`, `evaluate` and `predict` goes through (see `BatchCheck`).

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
            return CheckedPyDataset(x, self._batch_check(what))
        if isinstance(x, types.GeneratorType):
            try:
                first = next(x)
            except StopIteration:
                raise ValueError(f"Bad {what}: the generator yields no batches.") from None
            self._batch_check(what).batch(first)
            if not self.built:
                self._build_from_shape(np.shape(self._batch_check(what).inputs(first)))
                self._batch_check(what).batch(first)
            return checked_generator(first, x, self._batch_check(what))
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

    def _checked_inference_inputs(self, x):
        """Checks eager inputs of `encode`, `encode_mean`, `reconstruct`; symbolic ones pass as they are."""
        if isinstance(x, keras.KerasTensor) or not tf.executing_eagerly():
            return x
        array = self._batch_check("`x`").array(x)
        return x if isinstance(x, (np.ndarray, tf.Tensor)) else array

    def _check_arguments(self, batch_size=None, class_weight=None):
        """Refuses a `batch_size` Keras would misread (0 trains as 32) and a `class_weight` (the models take no labels)."""
        check_integer(batch_size, "batch_size", minimum=1, allow_none=True)
        if class_weight is not None:
            raise ValueError(
                f"`class_weight` is not used: {type(self).__name__} takes no labels (it maximises "
                f"{self.OBJECTIVE}, and `y` is ignored). Received: class_weight={class_weight!r}"
            )

    def fit(self, x=None, y=None, batch_size=None, *args, validation_data=None, class_weight=None, **kwargs):
        """`keras.Model.fit` on checked data (see `CheckedInputs`).

        A `tf.data.Dataset` given as `validation_data` is read once through its check
        before training starts (its first `validation_steps` batches, when given; one
        that repeats forever without `validation_steps` is checked as it is read), so a
        bad validation batch changes no weight; a generator or PyDataset is checked as
        it is read, a generator's first batch before training.
        """
        self._check_arguments(batch_size, class_weight)
        with input_errors_as_value_errors():
            x = self._checked(x)
            self._build_optimizer()
            if isinstance(validation_data, tuple):
                validation_data = (self._checked(validation_data[0], "validation data"),) + validation_data[1:]
            elif validation_data is not None:
                validation_data = self._checked(validation_data, "validation data")
                if isinstance(validation_data, tf.data.Dataset):
                    _read_through(validation_data, kwargs.get("validation_steps"))
            self._steps_per_execution_for(kwargs.get("steps_per_epoch"), kwargs.get("validation_steps"))
            return super().fit(x, y, batch_size, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, *args, **kwargs):
        self._check_arguments(batch_size)
        with input_errors_as_value_errors():
            # `fit` passes its validation data, already checked, with Keras' private flag
            # `_use_cached_eval_dataset` (Keras 3.15; no public one says "called by fit");
            # tests/models/test_vae.py checks that `fit` still passes it.
            if not kwargs.get("_use_cached_eval_dataset"):
                x = self._checked(x, "evaluation data")
                self._steps_per_execution_for(kwargs.get("steps"))
            return super().evaluate(x, y, batch_size, *args, **kwargs)

    def predict(self, x, batch_size=None, *args, **kwargs):
        self._check_arguments(batch_size)
        with input_errors_as_value_errors():
            x = self._checked(x, "`x`")
            self._steps_per_execution_for(kwargs.get("steps"))
            return super().predict(x, batch_size, *args, **kwargs)

    def train_on_batch(self, x, y=None, *args, class_weight=None, **kwargs):
        self._check_arguments(class_weight=class_weight)
        x = self._checked(x)
        self._build_optimizer()
        return super().train_on_batch(x, y, *args, **kwargs)

    def test_on_batch(self, x, y=None, *args, **kwargs):
        x = self._checked(x, "evaluation data")
        return super().test_on_batch(x, y, *args, **kwargs)

    def predict_on_batch(self, x):
        return super().predict_on_batch(self._checked(x, "`x`"))
