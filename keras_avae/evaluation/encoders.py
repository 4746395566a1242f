"""Any encoder as the representation f^mu the evaluation probes and attacks.

The evaluation needs three things of an encoder: a TF-traceable map
x -> f^mu(x), the range its inputs live in (`data_range`: attacks clip there,
and inputs outside it are refused), and the `tf.distribute` strategy its
variables live under. A keras_avae model has all three. `as_encoder` wraps
anything else: a Keras model or layer, a TF SavedModel, a path to either, or
a TF-traceable callable; for those `data_range` must be given, because an
attack that does not know the input range attacks inputs that cannot occur.

Example:
    encoder = as_encoder(keras.Sequential([...]), data_range=(0.0, 1.0))
    results = AdversarialEvaluator(train_data, test_data).evaluate(encoder)
"""

import os

import keras
import tensorflow as tf

from keras_avae import files
from keras_avae.validation import check_data_range


class Encoder:
    """An encoder seen by the evaluation: `encode_mean`, `data_range`, `distribute_strategy`.

    Args:
        function: TF-traceable callable, `(batch, ...)` inputs -> `(batch, features)`.
        data_range: `(low, high)` of the inputs.
        strategy: the strategy the function's variables live under (default:
            the current one).
        name: a label for messages and reports.
        source: the object `function` belongs to (a loaded SavedModel), kept
            alive as long as the encoder: its variables die with it.
    """

    def __init__(self, function, data_range, strategy=None, name=None, source=None):
        self.function = function
        self.source = source
        self.data_range = _required_range(data_range)
        self.distribute_strategy = strategy or tf.distribute.get_strategy()
        self.name = name or getattr(function, "name", type(function).__name__)

    def encode_mean(self, x):
        """The representation of `x`: one `(batch, features)` float tensor."""
        features = self.function(x)
        if isinstance(features, dict) and len(features) == 1:
            (features,) = features.values()
        if isinstance(features, (dict, list, tuple)):
            raise ValueError(
                f"The encoder {self.name!r} returns a {type(features).__name__}; the evaluation needs "
                "one tensor (batch, features), the representation f^mu(x). Wrap it to return that tensor."
            )
        if len(features.shape) != 2:
            raise ValueError(
                f"The encoder {self.name!r} returns shape {tuple(features.shape)}; the evaluation needs "
                "(batch, features): flatten the representation."
            )
        return tf.cast(features, tf.float32)


def as_encoder(encoder, data_range=None):
    """`encoder` as something with `encode_mean`, `data_range` and `distribute_strategy`.

    Args:
        encoder: a keras_avae model (returned as it is), an `Encoder`, a Keras
            model or layer (run with `training=False`), a loaded TF SavedModel
            (its `serve` endpoint, else its `serving_default` signature, called
            with its one keyword input and read at its one output, else its `__call__`), a path to a `.keras` file or a SavedModel folder,
            or a TF-traceable callable.
        data_range: `(low, high)` of the inputs; required except for keras_avae
            models and `Encoder`s, which declare it (then it must agree).

    Returns:
        The model itself or an `Encoder`.
    """
    if isinstance(encoder, (str, os.PathLike)):
        return as_encoder(load(encoder), data_range)
    declared = getattr(encoder, "data_range", None)
    if hasattr(encoder, "encode_mean") and hasattr(encoder, "distribute_strategy"):
        if data_range is not None and check_data_range(data_range) != check_data_range(declared):
            raise ValueError(
                f"`data_range`={data_range!r} disagrees with the model's own data_range={declared!r}."
            )
        return encoder
    if isinstance(encoder, keras.layers.Layer):
        strategy = getattr(encoder, "distribute_strategy", None)
        return Encoder(lambda x: encoder(x, training=False), data_range, strategy, encoder.name)
    if hasattr(encoder, "serve"):
        return Encoder(encoder.serve, data_range, name="SavedModel.serve", source=encoder)
    signatures = getattr(encoder, "signatures", None)
    if signatures and "serving_default" in signatures:
        name = "SavedModel.serving_default"
        return Encoder(signature_function(signatures["serving_default"], name), data_range, name=name, source=encoder)
    if callable(encoder):
        return Encoder(encoder, data_range)
    raise ValueError(
        "`encoder` must be a keras_avae model, a Keras model or layer, a TF SavedModel, a path to a "
        f".keras file or SavedModel folder, or a callable x -> f^mu(x). Received: {type(encoder).__name__}"
    )


def signature_function(signature, name="signature"):
    """A SavedModel signature (keyword inputs, a dict of outputs) as a function x -> its one output.

    A signature (`tf.saved_model.save(..., signatures=...)`) is called with keywords, one per input,
    and returns a dict; the evaluation calls an encoder with the images alone and needs one tensor.

    Args:
        signature: a concrete function from a loaded SavedModel's `signatures`.
        name: its name, for messages.

    Returns:
        A callable `x -> (batch, features)` tensor, `x` cast to the input's dtype.

    Raises:
        ValueError: the signature takes other than one input, or returns several outputs
            (the message names them).
    """
    positional, inputs = signature.structured_input_signature
    specs = list(positional) + list(inputs.values())
    if len(specs) != 1:
        names = ", ".join(sorted(inputs)) or f"{len(positional)} positional"
        raise ValueError(
            f"The SavedModel signature {name!r} takes {len(specs)} inputs ({names}); the evaluation feeds it "
            "one, the images. Export a signature with the images as its only input."
        )
    (spec,) = specs
    outputs = signature.structured_outputs
    if isinstance(outputs, dict) and len(outputs) != 1:
        raise ValueError(
            f"The SavedModel signature {name!r} returns {len(outputs)} outputs ({', '.join(sorted(outputs))}); "
            "the evaluation needs one, the representation f^mu(x). Export a signature that returns it alone."
        )

    def call(x):
        x = tf.cast(x, spec.dtype)
        if not spec.shape.is_compatible_with(x.shape):
            raise ValueError(
                f"The SavedModel signature {name!r} takes inputs of shape {tuple(spec.shape)}; received "
                f"{tuple(x.shape)}."
            )
        result = signature(x) if positional else signature(**{next(iter(inputs)): x})
        if isinstance(result, dict):
            (result,) = result.values()
        return result

    return call


def check_encoder(encoder, x, name=None):
    """Runs `encoder.encode_mean` on the examples `x` once, so that an encoder that cannot take them
    fails at once, in one sentence, rather than in the middle of an evaluation.

    Args:
        encoder: what `as_encoder` returns.
        x: a few examples of the data it will be evaluated on.
        name: the encoder's name for the message (default: its own).

    Returns:
        The `(len(x), features)` representation.

    Raises:
        ValueError: the encoder refuses the examples (a wrong shape or dtype, a signature that
            cannot take them) or returns something other than one `(batch, features)` tensor.
    """
    name = name or getattr(encoder, "name", type(encoder).__name__)
    try:
        return encoder.encode_mean(tf.convert_to_tensor(x))
    except (TypeError, tf.errors.OpError) as error:
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        detail = lines[-1].strip() if isinstance(error, tf.errors.OpError) and lines else (lines[0] if lines else "")
        raise ValueError(
            f"The encoder {name!r} cannot be applied to inputs of shape {tuple(x.shape)} ({x.dtype}): "
            f"{type(error).__name__}: {detail}"
        ) from error


def load(path):
    """A `.keras` model or a TF SavedModel folder from `path`."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise ValueError(f"{path!r} is a folder without saved_model.pb: not a TF SavedModel.")
        return tf.saved_model.load(path)
    import keras_avae.models  # noqa: F401  (registers the library's classes for deserialisation)

    return files.load_model(path)


def _required_range(data_range):
    if data_range is None:
        raise ValueError(
            "This encoder does not declare the range of its inputs: pass `data_range=(low, high)`, "
            "e.g. (0.0, 1.0) for ColorMNIST; attacks clip their inputs to it."
        )
    return check_data_range(data_range)
