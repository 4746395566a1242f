"""What the models require of an encoder and a decoder, checked when a model is made and built."""

import keras
from keras import ops

from keras_avae.models.compilation import sublayers


def copy_network(network):
    """A new network with the same architecture and weights as `network`."""
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    return copy


def check_network(network, name):
    """Refuses an encoder or decoder that is not a Keras layer or model, when the model is made."""
    if not isinstance(network, keras.layers.Layer):
        raise ValueError(
            f"`{name}` must be a Keras layer or model. Received: {name}={network!r}"
            if network is None
            else f"`{name}` must be a Keras layer or model. Received: {name} of type {type(network).__name__}"
        )
    return network


def check_output(outputs, network):
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


def posterior_parameters(outputs):
    """`(z_mean, z_log_var)` as float32 from an encoder's output: a pair, or one tensor split in halves."""
    check_output(outputs, "encoder")
    z_mean, z_log_var = outputs if isinstance(outputs, (list, tuple)) else ops.split(outputs, 2, axis=-1)
    return ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")


def decoder_mean(outputs):
    """The decoder's output g(z) as float32: a network under a mixed dtype policy may compute in
    bfloat16, and the likelihood, the delusion's noise and the outputs of `reconstruct`, `generate`
    and `sample` are float32 (the builders of `keras_avae.architectures` already end in float32)."""
    return ops.cast(outputs, "float32")


def dtype_policy(network):
    """The name of the dtype policy `network`'s layers with weights compute in.

    "float32" when all of them do; otherwise the one other policy they hold, e.g. "mixed_bfloat16" for
    a network of `keras_avae.architectures` built with it (whose output layers are float32).

    Raises:
        ValueError: the layers hold more than one policy besides float32.
    """
    policies = {layer.dtype_policy.name for layer in sublayers(network) if layer.weights} - {"float32"}
    if len(policies) > 1:
        raise ValueError(f"The layers of {network.name} compute in several dtype policies: {sorted(policies)}.")
    return policies.pop() if policies else "float32"


def latent_dim(encoder, decoder, x_shape):
    """The latent dimension of an encoder and decoder for inputs of `x_shape`, once their shapes fit together.

    Raises:
        ValueError: the encoder's output is not `(batch, 2 * latent_dim)` or a pair of equal
            shapes, or the decoder's output is not shaped like x.
    """
    x_shape = tuple(x_shape)
    encoded = encoder(keras.KerasTensor(x_shape))
    check_output(encoded, "encoder")
    if isinstance(encoded, (list, tuple)):
        if len(encoded) != 2 or tuple(encoded[0].shape) != tuple(encoded[1].shape):
            raise ValueError(
                "The encoder must return one tensor of width 2 * latent_dim or a pair "
                "(z_mean, z_log_var) of equal shapes. Received outputs of shapes "
                f"{[tuple(e.shape) for e in encoded]}"
            )
        dim = encoded[0].shape[-1]
    else:
        width = encoded.shape[-1]
        if len(encoded.shape) != 2 or width is None or width % 2:
            raise ValueError(
                "The encoder output must have shape (batch, 2 * latent_dim), split into "
                f"mean and log-variance halves. Received shape {tuple(encoded.shape)}"
            )
        dim = width // 2
    decoded = decoder(keras.KerasTensor((x_shape[0], dim)))
    check_output(decoded, "decoder")
    if tuple(decoded.shape[1:]) != x_shape[1:]:
        raise ValueError(
            f"The decoder output shape {tuple(decoded.shape[1:])} differs from the input "
            f"shape {x_shape[1:]}: the decoder must map z to the mean of x."
        )
    return int(dim)
