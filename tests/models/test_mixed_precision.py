"""The models under the mixed_bfloat16 dtype policy: bfloat16 networks, float32 objectives.

The networks of `keras_avae.architectures` built with `dtype="mixed_bfloat16"` compute in bfloat16
with float32 variables and float32 output layers; the models' terms, the delusion and everything
they return are float32 (`networks.posterior_parameters`, `networks.decoder_mean`).
"""

import keras
import numpy as np
import pytest

import keras_avae
from keras_avae import architectures
from keras_avae.models import networks

IMAGE_SHAPE = (8, 8, 3)
LATENT_DIM = 4
BATCH = 8
MODELS = {"vae": keras_avae.VAE, "avae": keras_avae.AVAE}
# bfloat16 keeps 8 significant bits: a relative error of 2**-8 per rounding, a few per layer. Measured
# here: 1% on the KL of an untrained conv net, 1e-5 or less on the other terms.
BFLOAT16_RTOL = 0.05


def _dtype(tensor):
    return keras.backend.standardize_dtype(tensor.dtype)


def _images(count=2 * BATCH, seed=0):
    return np.random.default_rng(seed).random((count,) + IMAGE_SHAPE, dtype=np.float32)


def _conv_model(kind, dtype, seed=0):
    keras.utils.set_random_seed(seed)
    encoder, decoder = architectures.conv(latent_dim=LATENT_DIM, input_shape=IMAGE_SHAPE, dtype=dtype)
    model = MODELS[kind](encoder, decoder, seed=seed)
    model.build((None,) + IMAGE_SHAPE)
    return model


@pytest.mark.parametrize("run_eagerly", [False, True], ids=["compiled", "eager"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_a_mixed_bfloat16_conv_model_trains_with_float32_terms_and_variables(kind, run_eagerly):
    model = _conv_model(kind, "mixed_bfloat16")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=run_eagerly)
    before = [weight.copy() for weight in model.get_weights()]
    history = model.fit(_images(), batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    for name in model.term_names:
        assert np.all(np.isfinite(history.history[name])), name
    assert any(not np.array_equal(old, new) for old, new in zip(before, model.get_weights()))
    assert {variable.dtype for variable in model.trainable_variables} == {"float32"}
    terms = model.terms(_images())
    assert set(terms) == set(model.term_names)
    assert {_dtype(term) for term in terms.values()} == {"float32"}
    for output in (model.encode_mean(_images()), model.reconstruct(_images()), model.sample(3)):
        assert _dtype(output) == "float32"
    assert networks.dtype_policy(model.encoder) == networks.dtype_policy(model.decoder) == "mixed_bfloat16"


@pytest.mark.parametrize("kind", list(MODELS))
def test_the_mixed_bfloat16_bound_is_the_float32_bound_to_bfloat16_precision(kind):
    """The same weights and noise under both policies give the same terms, up to bfloat16's rounding."""
    reference = _conv_model(kind, "float32")
    mixed = _conv_model(kind, "mixed_bfloat16")
    mixed.set_weights(reference.get_weights())
    expected = {name: np.asarray(value) for name, value in reference.terms(_images()).items()}
    actual = {name: np.asarray(value) for name, value in mixed.terms(_images()).items()}
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=BFLOAT16_RTOL, err_msg=name)
    assert not np.array_equal(actual["reconstruction"], expected["reconstruction"])  # bfloat16 did compute


def test_a_bfloat16_decoder_output_is_cast_before_the_likelihood_and_the_delusion():
    """A network that ends in bfloat16 (a pure bfloat16 policy) still gives float32 terms and outputs."""
    keras.utils.set_random_seed(0)
    encoder, decoder = architectures.conv(latent_dim=LATENT_DIM, input_shape=IMAGE_SHAPE, dtype="bfloat16")
    assert decoder.output.dtype == "bfloat16"
    model = keras_avae.AVAE(encoder, decoder, seed=0)
    model.build((None,) + IMAGE_SHAPE)
    x_mean = model._decode(keras.random.normal((BATCH, LATENT_DIM)), training=False)
    assert _dtype(x_mean) == _dtype(model.sample_delusion(x_mean)) == "float32"
    assert {_dtype(term) for term in model.terms(_images()).values()} == {"float32"}
    assert _dtype(model.generate(np.zeros((2, LATENT_DIM), "float32"))) == "float32"


@pytest.mark.parametrize("kind", list(MODELS))
def test_save_and_load_keep_the_policy_and_the_outputs(kind, tmp_path):
    model = _conv_model(kind, "mixed_bfloat16")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(_images(), batch_size=BATCH, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert networks.dtype_policy(loaded.encoder) == networks.dtype_policy(loaded.decoder) == "mixed_bfloat16"
    for layer, original in zip(loaded.decoder.layers, model.decoder.layers):
        assert layer.dtype_policy.name == original.dtype_policy.name
    np.testing.assert_array_equal(loaded.encode_mean(_images()), model.encode_mean(_images()))
    np.testing.assert_array_equal(loaded.reconstruct(_images()), model.reconstruct(_images()))


def test_avae_ss_keeps_the_policy_of_the_model_it_post_trains():
    vae = _conv_model("vae", "mixed_bfloat16")
    ss = keras_avae.AVAESelfSupervised.from_pretrained(vae)
    assert networks.dtype_policy(ss.encoder) == "mixed_bfloat16"
    ss.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = ss.fit(epochs=1, steps_per_epoch=2, batch_size=BATCH, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_dtype_policy_of_a_network():
    assert networks.dtype_policy(architectures.mlp(latent_dim=2, input_shape=(3,))[0]) == "float32"
    encoder, _ = architectures.mlp(latent_dim=2, input_shape=(3,), dtype="mixed_bfloat16")
    assert networks.dtype_policy(encoder) == "mixed_bfloat16"  # its float32 head aside
    mixed = keras.Sequential([
        keras.Input((3,)),
        keras.layers.Dense(2, dtype="mixed_bfloat16"),
        keras.layers.Dense(2, dtype="mixed_float16"),
    ], name="two_policies")
    with pytest.raises(ValueError, match=r"The layers of two_policies compute in several dtype policies: "
                       r"\['mixed_bfloat16', 'mixed_float16'\]\."):
        networks.dtype_policy(mixed)
