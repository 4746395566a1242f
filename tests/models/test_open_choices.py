"""The choices the paper leaves open, as model arguments: each against a hand computation.

posterior_sampling (VAE and every model), delusion and coupling (AVAE, SE-AVAE,
AVAE-SS), extra_pass_statistics (AVAE, SE, SE-AVAE) and attack_mode (SE, SE-AVAE).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_avae
from keras_avae import objectives
from keras_avae.models import smooth_encoder

RHO = 0.8
OBS_VAR = 0.25  # not 1, so a variance used as a standard deviation shows
SAMPLES = 20000


def _bn_networks(latent_dim=2, image_shape=(4, 4, 1)):
    """A small encoder with BatchNorm (its moving statistics are what the options act on)."""
    encoder = keras.Sequential(
        [
            keras.Input(image_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(momentum=0.5),
            keras.layers.ReLU(),
            keras.layers.Dense(2 * latent_dim),
        ]
    )
    decoder = keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Dense(int(np.prod(image_shape)), activation="sigmoid"),
            keras.layers.Reshape(image_shape),
        ]
    )
    return encoder, decoder


def _bn_images(n=16, shape=(4, 4, 1)):
    return np.random.default_rng(1).random((n,) + shape, dtype=np.float32)


def _moving_statistics(model):
    return [v.numpy().copy() for v in model.encoder.non_trainable_variables]


def _built(cls, networks, images, **kwargs):
    model = cls(*networks, seed=0, **kwargs)
    model(images[:1])
    return model


# ------------------------------------------------------------ posterior sampling


@pytest.mark.parametrize("sampling, power", [("std", 0.5), ("variance", 1.0)])
def test_posterior_noise_is_scaled_by_sigma_or_by_the_variance(make_networks, sampling, power):
    model = _built(keras_avae.VAE, make_networks(), np.zeros((1, 6, 6, 1), np.float32), posterior_sampling=sampling)
    z_mean = tf.fill((SAMPLES, 2), 0.3)
    z_log_var = tf.fill((SAMPLES, 2), np.log(0.2).astype(np.float32))
    z = model.sample_posterior(z_mean, z_log_var).numpy()
    expected_std = 0.2**power
    np.testing.assert_allclose(z.mean(axis=0), 0.3, atol=5 * expected_std / np.sqrt(SAMPLES))
    np.testing.assert_allclose(z.std(axis=0), expected_std, rtol=0.03)


def test_from_pretrained_keeps_the_posterior_sampling(make_networks, images):
    vae = _built(keras_avae.VAE, make_networks(), images, posterior_sampling="variance")
    assert keras_avae.AVAE.from_pretrained(vae).posterior_sampling == "variance"


# --------------------------------------------------------------------- delusion


def _terms_and_replay(model, images, training=False):
    """The model's terms, and the seed state to replay the draws they made."""
    state = model.seed_generator.state.numpy()
    terms = model.terms(images, training=training)
    model.seed_generator.state.assign(state)
    return terms


@pytest.mark.parametrize("delusion", ["mean", "sample"])
@pytest.mark.parametrize("coupling", ["factorised", "joint"])
def test_avae_terms_follow_the_delusion_and_the_coupling(make_networks, images, delusion, coupling):
    """By hand: z, then x~ = g(z) (+ sqrt(v) noise, the next draw), then the chosen coupling."""
    model = _built(
        keras_avae.AVAE, make_networks(), images, rho=RHO, obs_var=OBS_VAR, delusion=delusion, coupling=coupling
    )
    terms = _terms_and_replay(model, images)
    z_mean, z_log_var = model.posterior_parameters(images)
    z = model.sample_posterior(z_mean, z_log_var)
    x_tilde = model.decoder(z)
    if delusion == "sample":
        x_tilde = model.sample_observation(x_tilde)  # g(z) + sqrt(v) eps (its moments: test_sampling.py)
    aux_mean, aux_log_var = model.posterior_parameters(x_tilde)
    if coupling == "joint":
        expected = objectives.coupling_log_prob_given_z(z, aux_mean, aux_log_var, RHO)
    else:
        expected = objectives.expected_coupling_log_prob(z_mean, z_log_var, aux_mean, aux_log_var, RHO)
    np.testing.assert_allclose(terms["coupling"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(terms["aux_entropy"], objectives.gaussian_entropy(aux_log_var), rtol=1e-5)


def test_sampled_delusion_is_a_draw_of_the_gaussian_likelihood(make_networks):
    model = _built(keras_avae.AVAE, make_networks(), np.zeros((1, 6, 6, 1), np.float32), obs_var=OBS_VAR)
    x_mean = tf.fill((SAMPLES // 10, 6, 6, 1), 0.4)
    noise = (model.sample_delusion(x_mean) - x_mean).numpy()
    assert abs(noise.mean()) < 5 * np.sqrt(OBS_VAR / noise.size)
    np.testing.assert_allclose(noise.var(), OBS_VAR, rtol=0.02)


def test_sampled_delusion_of_a_bernoulli_model_is_binary_with_the_decoder_means(make_networks):
    model = _built(keras_avae.AVAE, make_networks(), np.zeros((1, 6, 6, 1), np.float32), likelihood="bernoulli")
    probs = tf.fill((SAMPLES // 10, 6, 6, 1), 0.3)
    draws = model.sample_delusion(probs).numpy()
    assert set(np.unique(draws)) == {0.0, 1.0}
    assert abs(draws.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / draws.size)


def test_mean_delusion_is_the_decoder_mean(make_networks):
    model = _built(keras_avae.AVAE, make_networks(), np.zeros((1, 6, 6, 1), np.float32), delusion="mean")
    x_mean = tf.random.uniform((4, 6, 6, 1))
    np.testing.assert_array_equal(model.sample_delusion(x_mean), x_mean)


@pytest.mark.parametrize("coupling", ["factorised", "joint"])
def test_no_gradient_reaches_the_decoder_through_a_sampled_delusion(make_networks, images, coupling):
    model = _built(keras_avae.AVAE, make_networks(), images, delusion="sample", coupling=coupling)
    with tf.GradientTape(persistent=True) as tape:
        terms = model.terms(images, training=True)
        delusion_part = tf.reduce_mean(terms["coupling"] + terms["aux_entropy"])
    assert all(g is None for g in tape.gradient(delusion_part, model.decoder.trainable_variables))
    encoder_grads = tape.gradient(delusion_part, model.encoder.trainable_variables)
    assert all(g is not None and np.abs(g.numpy()).max() > 0 for g in encoder_grads)


# ----------------------------------------------------- BatchNorm on extra passes


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (keras_avae.AVAE, {}),
        (keras_avae.SmoothEncoder, {"epsilon": 0.1, "train_attack_steps": 2}),
        (keras_avae.SEAVAE, {"epsilon": 0.1, "train_attack_steps": 2}),
    ],
    ids=["avae", "se", "seavae"],
)
def test_kept_statistics_move_only_with_the_data_pass(cls, kwargs):
    """"keep": one BatchNorm update per step, the data's; "update": one more per extra pass."""
    images = _bn_images()
    expected = {}
    for option in ("update", "keep"):
        model = _built(cls, _bn_networks(), images, extra_pass_statistics=option, **kwargs)
        before = _moving_statistics(model)
        model.terms(images, training=True)
        expected[option] = _moving_statistics(model)
        data_only = cls.from_config(model.get_config())
        data_only(images[:1])
        data_only.set_weights(model.get_weights())
        for variable, value in zip(data_only.encoder.non_trainable_variables, before):
            variable.assign(value)
        data_only.encoder(images, training=True)
        reference = _moving_statistics(data_only)
        same = all(np.allclose(a, b, atol=1e-6) for a, b in zip(expected[option], reference))
        assert same == (option == "keep"), option


def test_kept_statistics_give_the_same_terms_and_gradients():
    """A stateless training-mode pass is the same function as a plain one."""
    images = _bn_images()
    results = {}
    source = _built(keras_avae.AVAE, _bn_networks(), images, delusion="mean")
    for option in ("update", "keep"):
        model = keras_avae.AVAE.from_config({**source.get_config(), "extra_pass_statistics": option})
        model(images[:1])
        model.set_weights(source.get_weights())
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.terms(images, training=True)["loss"])
        results[option] = (loss.numpy(), [g.numpy() for g in tape.gradient(loss, model.trainable_variables)])
    np.testing.assert_allclose(results["keep"][0], results["update"][0], rtol=1e-6)
    for kept, updated in zip(results["keep"][1], results["update"][1]):
        np.testing.assert_allclose(kept, updated, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- attack mode


@pytest.mark.parametrize("mode, attack_training", [("inference", False), ("training", True)])
def test_training_attack_sees_the_encoder_in_the_chosen_mode(monkeypatch, mode, attack_training):
    images = _bn_images()
    model = _built(
        keras_avae.SmoothEncoder, _bn_networks(), images, epsilon=0.1, train_attack_steps=2,
        attack_mode=mode, extra_pass_statistics="keep",
    )
    seen = []
    encode = model.posterior_parameters

    def recording(x, training=False, update_statistics=True):
        seen.append((bool(training), bool(update_statistics)))
        return encode(x, training, update_statistics)

    monkeypatch.setattr(model, "posterior_parameters", recording)
    before = _moving_statistics(model)
    z_mean, z_log_var = encode(images, training=False)
    smooth_encoder.adversarial_terms(model, images, z_mean, z_log_var, model.rho, tight=True, training=True)
    attack_calls, bound_call = seen[:-1], seen[-1]
    assert attack_calls and all(call == (attack_training, False) for call in attack_calls)
    assert bound_call == (True, False)
    # Neither the attack nor the kept bound pass moved a statistic.
    for old, new in zip(before, _moving_statistics(model)):
        np.testing.assert_array_equal(old, new)


def test_training_mode_attack_attacks_the_bounds_function():
    """In training mode the attack raises the divergence that the training-mode encoder scores."""
    images = _bn_images(32)
    raised = {}
    for mode in ("inference", "training"):
        model = _built(keras_avae.SmoothEncoder, _bn_networks(), images, epsilon=0.2, train_attack_steps=10, attack_mode=mode)
        model.encoder.layers[2].moving_mean.assign(tf.fill((8,), 3.0))  # inference stats far from the batch's
        z = model.posterior_parameters(images, training=True, update_statistics=False)
        adversarial = keras_avae.attacks.representation_attack(
            lambda x: model.posterior_parameters(x, training=mode == "training", update_statistics=False),
            images, 0.2, 10, model.rho, model.data_range,
        )
        aux = model.posterior_parameters(adversarial, training=True, update_statistics=False)
        raised[mode] = float(tf.reduce_mean(objectives.representation_divergence(*z, *aux, model.rho)))
    assert raised["training"] > raised["inference"]


# ------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (keras_avae.VAE, {"posterior_sampling": "sd"}, r"`posterior_sampling` must be one of \('std', 'variance'\). Received: posterior_sampling='sd'"),
        (keras_avae.AVAE, {"coupling": "independent"}, r"`coupling` must be one of \('factorised', 'joint'\)"),
        (keras_avae.AVAE, {"delusion": None}, r"`delusion` must be one of \('mean', 'sample'\). Received: delusion=None"),
        (keras_avae.AVAE, {"extra_pass_statistics": True}, r"`extra_pass_statistics` must be one of \('update', 'keep'\)"),
        (keras_avae.SmoothEncoder, {"attack_mode": "train"}, r"`attack_mode` must be one of \('inference', 'training'\)"),
        (keras_avae.SmoothEncoder, {"extra_pass_statistics": "frozen"}, r"`extra_pass_statistics` must be one of"),
        (keras_avae.SEAVAE, {"attack_mode": 1}, r"`attack_mode` must be one of"),
        (keras_avae.AVAESelfSupervised, {"coupling": "Joint"}, r"`coupling` must be one of"),
    ],
)
def test_unknown_choices_are_refused(make_networks, cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(*make_networks(), **kwargs)


def test_defaults_are_the_documented_ones(make_networks):
    avae = keras_avae.AVAE(*make_networks())
    assert (avae.posterior_sampling, avae.coupling, avae.delusion, avae.extra_pass_statistics) == (
        "std", "factorised", "sample", "update"
    )
    ss = keras_avae.AVAESelfSupervised(*make_networks())
    assert (ss.coupling, ss.delusion) == ("joint", "mean")
    se = keras_avae.SmoothEncoder(*make_networks())
    assert (se.attack_mode, se.extra_pass_statistics) == ("inference", "update")
