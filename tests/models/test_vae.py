"""VAE: training through fit, inference helpers, validation and persistence."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_avae
from keras_avae import objectives
from keras_avae.models import compilation
from keras_avae.models.compilation import has_convolution

VAE_TERMS = {"loss", "elbo", "reconstruction", "kl"}


def _fitted(model, images, **compile_kwargs):
    model.compile(optimizer=keras.optimizers.Adam(1e-3), **compile_kwargs)
    history = model.fit(images, epochs=1, batch_size=8, shuffle=False, verbose=0)
    return history.history


@pytest.mark.parametrize(
    "compile_kwargs",
    [
        {"run_eagerly": True},
        {"jit_compile": False},
        {},
        {"jit_compile": True},
        {"jit_compile": True, "steps_per_execution": 2},
    ],
    ids=["eager", "graph", "auto", "xla", "xla-steps"],
)
def test_fit_reports_every_term(make_networks, images, compile_kwargs):
    history = _fitted(keras_avae.VAE(*make_networks(), seed=0), images, **compile_kwargs)
    assert set(history) == VAE_TERMS
    for name, values in history.items():
        assert np.isfinite(values).all(), name
    np.testing.assert_allclose(history["loss"], -np.asarray(history["elbo"]), rtol=1e-5)
    np.testing.assert_allclose(
        history["elbo"], np.asarray(history["reconstruction"]) - history["kl"], rtol=1e-4
    )


def test_fit_lowers_the_loss(make_networks, images):
    """Four repeated binary patterns: a VAE that learns them must cut the loss by several nats."""
    patterns = (images[:4] > 0.5).astype(np.float32)
    data = np.tile(patterns, (8, 1, 1, 1))
    model = keras_avae.VAE(*make_networks(), obs_var=0.1, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    losses = model.fit(data, epochs=15, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < losses[0] - 5.0, losses


@pytest.mark.parametrize("model_class", [keras_avae.VAE, keras_avae.AVAE])
def test_the_first_fit_traces_its_step_once(make_networks, images, model_class):
    """`fit` builds the optimizer before the step is traced: a step whose trace creates
    variables is traced twice by `tf.function` (and compiled twice under XLA)."""

    class Counted(model_class):
        traces = 0

        def train_step(self, data):
            Counted.traces += 1
            return super().train_step(data)

    model = Counted(*make_networks(), seed=0)
    model.compile(optimizer="adam", jit_compile=False)
    model.fit(images, epochs=2, batch_size=8, verbose=0)
    assert Counted.traces == 1 and model.optimizer.built


def test_fit_takes_datasets_of_images_or_pairs(make_networks, images):
    model = keras_avae.VAE(*make_networks(), seed=0)
    model.compile(optimizer="adam", jit_compile=False)  # XLA is incidental here; its compile costs more than the fit
    model.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=1, verbose=0)
    pairs = tf.data.Dataset.from_tensor_slices((images, np.arange(len(images)))).batch(8)
    history = model.fit(pairs, epochs=1, verbose=0).history
    assert set(history) == VAE_TERMS


def test_evaluate_reports_the_terms_of_the_batch(make_networks, images):
    model = keras_avae.VAE(*make_networks(), seed=0)
    model.compile(optimizer="adam")
    model.fit(images, epochs=1, batch_size=8, verbose=0)
    result = model.evaluate(images, batch_size=len(images), verbose=0, return_dict=True)
    assert set(result) == VAE_TERMS
    z_mean, z_log_var = np.split(model.encoder(images).numpy(), 2, axis=-1)
    np.testing.assert_allclose(
        result["kl"], objectives.kl_to_standard_normal(z_mean, z_log_var).numpy().mean(), rtol=1e-4
    )


def test_inference_helpers(make_networks, images):
    model = keras_avae.VAE(*make_networks(), seed=0)
    model(images[:2])
    posterior = model.encode(images)
    assert isinstance(posterior, tfp.distributions.Distribution)
    z_mean, z_log_var = np.split(model.encoder(images).numpy(), 2, axis=-1)
    np.testing.assert_allclose(posterior.mean(), z_mean, rtol=1e-6)
    np.testing.assert_allclose(posterior.stddev(), np.exp(0.5 * z_log_var), rtol=1e-5)
    np.testing.assert_allclose(model.encode_mean(images), z_mean, rtol=1e-6)
    np.testing.assert_allclose(model.reconstruct(images), model.decoder(z_mean), rtol=1e-6)
    np.testing.assert_allclose(model.generate(z_mean), model.decoder(z_mean), rtol=1e-6)
    samples = model.sample(5)
    assert samples.shape == (5,) + images.shape[1:]


def test_reparametrised_samples_have_the_posterior_moments(make_networks):
    """Catches a variance used as a standard deviation."""
    model = keras_avae.VAE(*make_networks(), seed=0)
    n, dim = 200_000, 2
    z_mean = tf.fill((n, dim), 1.5)
    z_log_var = tf.fill((n, dim), float(np.log(4.0)))
    z = model._reparametrise(z_mean, z_log_var).numpy()
    np.testing.assert_allclose(z.mean(0), 1.5, atol=0.02)
    np.testing.assert_allclose(z.std(0), 2.0, atol=0.02)


def test_encoder_may_return_a_pair(images):
    inputs = keras.Input(images.shape[1:])
    hidden = keras.layers.Flatten()(inputs)
    encoder = keras.Model(inputs, [keras.layers.Dense(3)(hidden), keras.layers.Dense(3)(hidden)])
    decoder = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(int(np.prod(images.shape[1:]))), keras.layers.Reshape(images.shape[1:])]
    )
    history = _fitted(keras_avae.VAE(encoder, decoder, seed=0), images)
    assert np.isfinite(history["loss"]).all()


def test_bernoulli_likelihood_trains(make_networks, images):
    history = _fitted(keras_avae.VAE(*make_networks(), likelihood="bernoulli", seed=0), images)
    assert np.isfinite(history["loss"]).all()
    assert history["reconstruction"][0] < 0


@pytest.mark.parametrize("obs_var", [0, -1.0, float("nan"), "big"])
def test_bad_obs_var_is_refused(make_networks, obs_var):
    with pytest.raises(ValueError, match="`obs_var` must be a finite number > 0"):
        keras_avae.VAE(*make_networks(), obs_var=obs_var)


def test_bad_likelihood_and_range_are_refused(make_networks):
    with pytest.raises(ValueError, match="`likelihood` must be one of"):
        keras_avae.VAE(*make_networks(), likelihood="poisson")
    with pytest.raises(ValueError, match="`data_range` must satisfy low < high"):
        keras_avae.VAE(*make_networks(), data_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="`data_range` must be a pair"):
        keras_avae.VAE(*make_networks(), data_range=3)


def test_odd_encoder_width_is_refused(make_networks, images):
    _, decoder = make_networks()
    encoder = keras.Sequential([keras.Input(images.shape[1:]), keras.layers.Flatten(), keras.layers.Dense(5)])
    model = keras_avae.VAE(encoder, decoder)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"shape \(batch, 2 \* latent_dim\).*\(None, 5\)"):
        model.fit(images, epochs=1, verbose=0)


def test_unequal_encoder_pair_is_refused(images):
    inputs = keras.Input(images.shape[1:])
    hidden = keras.layers.Flatten()(inputs)
    encoder = keras.Model(inputs, [keras.layers.Dense(3)(hidden), keras.layers.Dense(2)(hidden)])
    _, decoder = keras_avae.architectures.mlp(latent_dim=3, input_shape=images.shape[1:])
    with pytest.raises(ValueError, match=r"pair \(z_mean, z_log_var\) of equal shapes"):
        keras_avae.VAE(encoder, decoder)(images)


def test_decoder_of_the_wrong_shape_is_refused(make_networks, images):
    encoder, _ = make_networks()
    _, decoder = make_networks(image_shape=(5, 5, 1))
    model = keras_avae.VAE(encoder, decoder)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"decoder output shape \(5, 5, 1\) differs from the input shape \(6, 6, 1\)"):
        model.fit(images, epochs=1, verbose=0)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_arrays_are_refused_before_training(make_networks, images, bad_value):
    model = keras_avae.VAE(*make_networks())
    model.compile(optimizer="adam")
    images[3, 0, 0, 0] = bad_value
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"inputs contain 1 NaN or infinite value"):
        model.fit(images, epochs=1, verbose=0)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_non_finite_dataset_batches_are_refused(make_networks, images):
    model = keras_avae.VAE(*make_networks())
    model.compile(optimizer="adam", jit_compile=False)  # XLA is incidental: the checks run on the data, outside the step
    images[-1] = np.nan
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(len(images)))).batch(8)
    with pytest.raises(ValueError, match="Bad training data: inputs contain 36 NaN"):
        model.fit(dataset, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="Bad evaluation data: inputs contain 36 NaN"):
        model.evaluate(dataset, verbose=0)


def test_pixels_outside_the_declared_range_are_refused(make_networks, images):
    model = keras_avae.VAE(*make_networks())
    model.compile(optimizer="adam", jit_compile=False)  # XLA is incidental: the checks run on the data, outside the step
    with pytest.raises(ValueError, match=r"outside the declared data_range \(0.0, 1.0\).*divide uint8 images by 255"):
        model.fit(images * 255.0, epochs=1, verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices(images * 255.0).batch(8)
    with pytest.raises(ValueError, match=r"outside the declared data_range"):
        model.fit(dataset, epochs=1, verbose=0)
    wide = keras_avae.VAE(*make_networks(), data_range=(0.0, 255.0))
    wide.compile(optimizer="adam", jit_compile=False)
    wide.fit(images * 255.0, epochs=1, verbose=0)
    unchecked = keras_avae.VAE(*make_networks(), data_range=None)
    unchecked.compile(optimizer="adam", jit_compile=False)
    unchecked.fit(images - 0.5, epochs=1, verbose=0)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_the_named_random_algorithm_draws_what_auto_select_draws(jit_compile):
    """`RANDOM_ALGORITHM` was named for speed under XLA only: it changes no number, with or without XLA."""
    from keras_avae.models.vae import RANDOM_ALGORITHM

    seed = tf.constant([3, 7], tf.int64)

    def draw(alg):
        return tf.function(
            lambda: tf.random.stateless_normal((4, 5, 3), seed=seed, alg=alg), jit_compile=jit_compile
        )().numpy()

    np.testing.assert_array_equal(draw(RANDOM_ALGORITHM), draw("auto_select"))


def test_sample_before_build_is_refused(make_networks):
    with pytest.raises(ValueError, match="`sample` needs a built model"):
        keras_avae.VAE(*make_networks()).sample(2)


# ------------------------------------------------------------- jit_compile="auto"

CPU_ONLY = all(device.device_type == "CPU" for device in tf.config.list_physical_devices())
cpu_only = pytest.mark.skipif(not CPU_ONLY, reason='with an accelerator "auto" is left to Keras')


def _conv_networks(image_shape=(6, 6, 1), latent_dim=3):
    """A conv encoder whose Conv2D sits in a nested model, and a Conv2DTranspose decoder."""
    features = keras.Sequential([keras.Input(image_shape), keras.layers.Conv2D(2, 3, padding="same")])
    inputs = keras.Input(image_shape)
    encoded = keras.layers.Dense(2 * latent_dim)(keras.layers.Flatten()(features(inputs)))
    encoder = keras.Model(inputs, encoded)
    decoder = keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Dense(int(np.prod(image_shape))),
            keras.layers.Reshape(image_shape),
            keras.layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid"),
        ]
    )
    return encoder, decoder


def test_has_convolution_walks_nested_networks(make_networks):
    encoder, decoder = _conv_networks()
    assert has_convolution(encoder)
    assert has_convolution(decoder)
    assert not any(map(has_convolution, make_networks()))
    for layer in (keras.layers.DepthwiseConv2D(3), keras.layers.SeparableConv1D(2, 3), keras.layers.Conv3D(2, 3)):
        assert has_convolution(keras.Sequential([layer]))


class _HoldsAConv(keras.layers.Layer):
    """A custom layer with a sub-layer, which Keras lists in no public attribute."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(1, 3, padding="same")

    def call(self, x):
        return self.conv(x)


def test_private_flatten_layers_still_walks_custom_layers_and_nested_models():
    """`compilation.sublayers` calls Keras' private `_flatten_layers` (no public API lists sub-layers)."""
    inner = keras.Sequential([keras.Input((6, 6, 1)), _HoldsAConv()])
    outer = keras.Sequential([keras.Input((6, 6, 1)), inner, keras.layers.Flatten()])
    found = compilation.sublayers(outer)
    assert outer in found and inner in found
    assert any(isinstance(layer, keras.layers.Conv2D) for layer in found)
    assert has_convolution(outer)


@cpu_only
def test_auto_jit_compile_is_off_for_a_layer_without_xla_support(make_networks):
    encoder, decoder = make_networks()
    encoder.layers[-1].supports_jit = False
    model = keras_avae.VAE(encoder, decoder)
    assert model.resolve_jit_compile("auto") is False
    model.compile(optimizer="adam")
    assert model.jit_compile is False


@cpu_only
def test_auto_jit_compile_is_xla_for_an_mlp_only(make_networks):
    mlp = keras_avae.VAE(*make_networks())
    mlp.compile(optimizer="adam")
    assert mlp.jit_compile is True
    conv = keras_avae.VAE(*_conv_networks())
    conv.compile(optimizer="adam")
    assert conv.jit_compile is False
    eager = keras_avae.AVAE(*make_networks())
    eager.compile(optimizer="adam", run_eagerly=True)
    assert eager.jit_compile is False


@pytest.mark.parametrize("jit_compile", [True, False])
def test_explicit_jit_compile_is_kept(make_networks, jit_compile):
    for networks in (make_networks(), _conv_networks()):
        model = keras_avae.VAE(*networks)
        model.compile(optimizer="adam", jit_compile=jit_compile)
        assert model.jit_compile is jit_compile
        assert model.get_compile_config()["jit_compile"] is jit_compile


def test_bad_jit_compile_is_refused(make_networks):
    with pytest.raises(ValueError, match="`jit_compile` must be True, False or 'auto'"):
        keras_avae.VAE(*make_networks()).compile(optimizer="adam", jit_compile="xla")


@cpu_only
@pytest.mark.parametrize(
    "networks, jit_compile, expected",
    [("mlp", "auto", True), ("conv", "auto", False), ("mlp", False, False), ("conv", True, True)],
)
def test_jit_compile_survives_saving(make_networks, images, tmp_path, networks, jit_compile, expected):
    model = keras_avae.VAE(*(make_networks() if networks == "mlp" else _conv_networks()), seed=0)
    model.compile(optimizer="adam", jit_compile=jit_compile)
    model.fit(images, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert model.jit_compile is loaded.jit_compile is expected
    # The request is saved, so "auto" is resolved again where the model is loaded.
    assert loaded.get_compile_config()["jit_compile"] == jit_compile
    assert set(loaded.fit(images, epochs=1, batch_size=16, verbose=0).history) == VAE_TERMS


def test_fit_still_marks_its_validation_with_keras_private_flag(make_networks, images, monkeypatch):
    """`CheckedInputs.evaluate` skips checking what `fit` checked by Keras' `_use_cached_eval_dataset`."""
    seen = []
    evaluate = keras.Model.evaluate

    def recording(self, *args, **kwargs):
        seen.append(kwargs.get("_use_cached_eval_dataset"))
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "evaluate", recording)
    model = keras_avae.VAE(*make_networks(), seed=0)
    model.compile(optimizer="adam", jit_compile=False)
    model.fit(images, epochs=1, batch_size=16, verbose=0, validation_data=(images,))
    assert seen == [True]


@pytest.mark.parametrize("cls", [keras_avae.VAE, keras_avae.AVAE, keras_avae.SmoothEncoder, keras_avae.SEAVAE])
def test_terms_are_the_reported_terms_per_example(make_networks, images, cls):
    """`terms(x)` has one value per example for each name `fit` reports, and `loss` is minus the objective."""
    kwargs = {"train_attack_steps": 1} if cls in (keras_avae.SmoothEncoder, keras_avae.SEAVAE) else {}
    model = cls(*make_networks(), seed=0, **kwargs)
    terms = model.terms(images)
    assert set(terms) == set(model.term_names)
    assert all(tuple(value.shape) == (len(images),) for value in terms.values())
    bound = sum(terms[name] for name in model.term_names if name not in ("loss", "reconstruction", "kl"))
    np.testing.assert_allclose(terms["loss"], -bound, rtol=1e-5, atol=1e-4)
