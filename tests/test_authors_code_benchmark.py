"""Tests for benchmarks/authors_code.py: the port of the authors' Haiku MLP, its checks and shims, without JAX."""

import dataclasses
import sys
import types

import keras
import numpy as np
import pytest

import keras_avae
from keras_avae import architectures

from conftest import load_benchmark

SEED = 0
BATCH = 8
LATENT_DIM = 64
IMAGE_SHAPE = (28, 28, 3)
# Small networks for the tests that need no real sizes.
SMALL_LATENT_DIM, SMALL_IMAGE_SHAPE, SMALL_UNITS = 3, (4, 4, 3), 5
# float32 Keras against a float64 NumPy re-derivation.
FORWARD_TOLERANCE = 1e-5
JAX_PACKAGES = ("jax", "jaxlib", "haiku", "optax")


bench = load_benchmark("authors_code")


def haiku_params(rng, latent_dim=LATENT_DIM, image_shape=IMAGE_SHAPE, units=architectures.MLP_HIDDEN_UNITS,
                 hidden_layers=architectures.MLP_HIDDEN_LAYERS):
    """Random parameters named and shaped as the authors' `hk.transform`ed encoder and decoder."""
    pixels = int(np.prod(image_shape))
    widths = {
        bench.ENCODER_MODULE: [pixels] + [units] * hidden_layers + [2 * latent_dim],
        bench.DECODER_MODULE: [latent_dim] + [units] * hidden_layers + [pixels],
    }
    params = {}
    for module, sizes in widths.items():
        names = [f"{module}/linear"] + [f"{module}/linear_{index}" for index in range(1, len(sizes) - 1)]
        for name, fan_in, fan_out in zip(names, sizes[:-1], sizes[1:]):
            params[name] = {
                "w": rng.normal(scale=1 / np.sqrt(fan_in), size=(fan_in, fan_out)).astype(np.float32),
                "b": rng.normal(scale=0.1, size=(fan_out,)).astype(np.float32),
            }
    return params


def relu(x):
    return np.maximum(x, 0.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def authors_mlp(params, module, inputs, head):
    """Their MLP's forward pass in NumPy: ReLU after every `hk.Linear` but the last, `head` after it."""
    names = sorted((name for name in params if name.startswith(module + "/")),
                   key=lambda name: int(name.rsplit("_", 1)[1]) if "_" in name.rsplit("/", 1)[1] else 0)
    out = inputs.reshape(len(inputs), -1).astype(np.float64)  # hk.Flatten: row-major over (H, W, C)
    for index, name in enumerate(names):
        out = out @ params[name]["w"].astype(np.float64) + params[name]["b"].astype(np.float64)
        out = relu(out) if index < len(names) - 1 else head(out)
    return out


def authors_encoder_mean(params, x):
    """Their `ColorMnistMLPEncoder`'s posterior mean: the first half of the head's output."""
    stats = authors_mlp(params, bench.ENCODER_MODULE, x, head=lambda out: out)
    return stats[:, : stats.shape[1] // 2], stats[:, stats.shape[1] // 2 :]


def authors_decoder(params, z, image_shape=IMAGE_SHAPE):
    """Their `ColorMnistMLPDecoder`: sigmoid output reshaped to `(batch, 28, 28, 3)`."""
    return authors_mlp(params, bench.DECODER_MODULE, z, head=sigmoid).reshape((len(z),) + image_shape)


def ported(params, latent_dim=LATENT_DIM, image_shape=IMAGE_SHAPE, **kwargs):
    encoder, decoder = architectures.mlp(latent_dim=latent_dim, input_shape=image_shape, **kwargs)
    bench.port_params(params, encoder, decoder)
    return encoder, decoder


def small_params_and_networks():
    params = haiku_params(np.random.default_rng(SEED), SMALL_LATENT_DIM, SMALL_IMAGE_SHAPE, SMALL_UNITS)
    networks = ported(params, SMALL_LATENT_DIM, SMALL_IMAGE_SHAPE, hidden_units=SMALL_UNITS)
    return params, networks


# ------------------------------------------------------------------- the port


def test_port_reproduces_the_authors_mlp_at_full_size():
    rng = np.random.default_rng(SEED)
    params = haiku_params(rng)
    encoder, decoder = ported(params)
    x = rng.uniform(size=(BATCH,) + IMAGE_SHAPE).astype(np.float32)
    z = rng.normal(size=(BATCH, LATENT_DIM)).astype(np.float32)

    stats = keras.ops.convert_to_numpy(encoder(x))
    expected_mean, expected_log_var = authors_encoder_mean(params, x)
    np.testing.assert_allclose(stats[:, :LATENT_DIM], expected_mean, atol=FORWARD_TOLERANCE)
    np.testing.assert_allclose(stats[:, LATENT_DIM:], expected_log_var, atol=FORWARD_TOLERANCE)
    x_mean = keras.ops.convert_to_numpy(decoder(z))
    assert x_mean.shape == (BATCH,) + IMAGE_SHAPE
    np.testing.assert_allclose(x_mean, authors_decoder(params, z), atol=FORWARD_TOLERANCE)


def test_port_sets_every_dense_layer_in_order_and_reports_it():
    params = haiku_params(np.random.default_rng(SEED), SMALL_LATENT_DIM, SMALL_IMAGE_SHAPE, SMALL_UNITS)
    encoder, decoder = architectures.mlp(SMALL_LATENT_DIM, SMALL_IMAGE_SHAPE, hidden_units=SMALL_UNITS)
    plan = bench.port_params(params, encoder, decoder)

    assert [name for name, _, _ in plan] == (
        bench.haiku_linear_names(bench.ENCODER_MODULE, 5) + bench.haiku_linear_names(bench.DECODER_MODULE, 5)
    )
    assert plan[0] == (f"{bench.ENCODER_MODULE}/linear", "mlp_encoder", "hidden_0")
    assert plan[-1] == (f"{bench.DECODER_MODULE}/linear_4", "mlp_decoder", "x_mean_flat")
    for name, network_name, layer_name in plan:
        network = encoder if network_name == encoder.name else decoder
        kernel, bias = network.get_layer(layer_name).get_weights()
        np.testing.assert_array_equal(kernel, params[name]["w"])
        np.testing.assert_array_equal(bias, params[name]["b"])


def test_haiku_linear_names_follow_haikus_numbering():
    assert bench.haiku_linear_names("m", 3) == ["m/linear", "m/linear_1", "m/linear_2"]


def test_wrong_shape_is_a_clear_error_and_sets_nothing():
    rng = np.random.default_rng(SEED)
    params = haiku_params(rng, SMALL_LATENT_DIM, SMALL_IMAGE_SHAPE, SMALL_UNITS)
    name = f"{bench.DECODER_MODULE}/linear_2"
    params[name]["w"] = params[name]["w"][:, :-1]
    encoder, decoder = architectures.mlp(SMALL_LATENT_DIM, SMALL_IMAGE_SHAPE, hidden_units=SMALL_UNITS)
    before = encoder.get_weights()

    message = r"color_mnist_mlp_decoder/linear_2/w has shape \(5, 4\).*'hidden_2'.*\(5, 5\)"
    with pytest.raises(ValueError, match=message):
        bench.port_params(params, encoder, decoder)
    for old, new in zip(before, encoder.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_wrong_latent_dim_is_a_clear_error():
    params = haiku_params(np.random.default_rng(SEED), SMALL_LATENT_DIM, SMALL_IMAGE_SHAPE, SMALL_UNITS)
    encoder, decoder = architectures.mlp(SMALL_LATENT_DIM + 1, SMALL_IMAGE_SHAPE, hidden_units=SMALL_UNITS)
    with pytest.raises(ValueError, match=r"color_mnist_mlp_encoder/linear_4/w has shape"):
        bench.port_params(params, encoder, decoder)


def test_missing_or_extra_modules_are_clear_errors():
    params = haiku_params(np.random.default_rng(SEED), SMALL_LATENT_DIM, SMALL_IMAGE_SHAPE, SMALL_UNITS)
    networks = architectures.mlp(SMALL_LATENT_DIM, SMALL_IMAGE_SHAPE, hidden_units=SMALL_UNITS)

    missing = dict(params)
    del missing[f"{bench.ENCODER_MODULE}/linear_3"]
    with pytest.raises(ValueError, match=r"missing \['color_mnist_mlp_encoder/linear_3'\], not used \[\]"):
        bench.port_params(missing, *networks)

    extra = {**params, f"{bench.DECODER_MODULE}/linear_5": params[f"{bench.DECODER_MODULE}/linear_4"]}
    with pytest.raises(ValueError, match=r"not used \['color_mnist_mlp_decoder/linear_5'\]"):
        bench.port_params(extra, *networks)

    no_bias = {**params, f"{bench.ENCODER_MODULE}/linear": {"w": params[f"{bench.ENCODER_MODULE}/linear"]["w"]}}
    with pytest.raises(ValueError, match=r"'color_mnist_mlp_encoder/linear' has no \['b'\]"):
        bench.port_params(no_bias, *networks)


def test_architecture_check_accepts_mlp_and_rejects_other_activations():
    bench.check_architecture(*architectures.mlp())
    encoder, _ = architectures.mlp(SMALL_LATENT_DIM, SMALL_IMAGE_SHAPE, hidden_units=SMALL_UNITS)
    tanh_decoder = keras.Sequential(
        [keras.Input((SMALL_LATENT_DIM,)), keras.layers.Dense(SMALL_UNITS, activation="relu"),
         keras.layers.Dense(int(np.prod(SMALL_IMAGE_SHAPE)), activation="tanh")],
        name="tanh_decoder",
    )
    with pytest.raises(ValueError, match=r"'tanh_decoder' has Dense activations \['relu', 'tanh'\].*'sigmoid'"):
        bench.check_architecture(encoder, tanh_decoder)


@pytest.mark.parametrize("model_name, model_class", [("avae", keras_avae.AVAE), ("vae", keras_avae.VAE)])
def test_build_keras_model_wraps_the_port_with_the_trained_settings(model_name, model_class):
    rng = np.random.default_rng(SEED)
    params = haiku_params(rng)
    model = bench.build_keras_model(model_name, params, latent_dim=LATENT_DIM, rho=0.9, obs_var=0.25, seed=SEED)
    assert type(model) is model_class and model.built
    assert model.obs_var == 0.25 and getattr(model, "rho", 0.9) == 0.9
    assert model.posterior_sampling == "variance"  # their encoders.py `sample`
    if model_name == "avae":
        assert (model.coupling, model.delusion) == ("factorised", "mean")
    x = rng.uniform(size=(BATCH,) + IMAGE_SHAPE).astype(np.float32)
    expected_mean, _ = authors_encoder_mean(params, x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.encode_mean(x)), expected_mean, atol=FORWARD_TOLERANCE)


# ------------------------------------------------------------ the numerical check


def test_check_port_passes_on_the_authors_outputs():
    params, (encoder, decoder) = small_params_and_networks()
    x = np.random.default_rng(SEED).uniform(size=(BATCH,) + SMALL_IMAGE_SHAPE).astype(np.float32)
    z_mean, _ = authors_encoder_mean(params, x)
    x_mean = authors_decoder(params, z_mean.astype(np.float32), SMALL_IMAGE_SHAPE)

    errors = bench.check_port(encoder, decoder, x, z_mean, x_mean)
    assert errors["encoder_mean"] <= FORWARD_TOLERANCE and errors["decoder_output"] <= FORWARD_TOLERANCE
    assert errors["tolerance"] == bench.PORT_TOLERANCE


@pytest.mark.parametrize("broken", ["encoder_mean", "decoder_output", "nan", "shape"])
def test_check_port_raises_when_outputs_differ(broken):
    params, (encoder, decoder) = small_params_and_networks()
    x = np.random.default_rng(SEED).uniform(size=(BATCH,) + SMALL_IMAGE_SHAPE).astype(np.float32)
    z_mean, _ = authors_encoder_mean(params, x)
    x_mean = authors_decoder(params, z_mean.astype(np.float32), SMALL_IMAGE_SHAPE)
    if broken == "encoder_mean":  # e.g. the log-variance half taken for the mean
        z_mean = z_mean + 10 * bench.PORT_TOLERANCE
    elif broken == "decoder_output":
        x_mean = x_mean.copy()
        x_mean[0, 0, 0, 0] += 10 * bench.PORT_TOLERANCE
    elif broken == "nan":
        x_mean = np.full_like(x_mean, np.nan)
    else:
        x_mean = x_mean.reshape(len(x_mean), -1)  # flattened, not (batch, 4, 4, 3)
    with pytest.raises(ValueError, match="do not reproduce the authors' networks"):
        bench.check_port(encoder, decoder, x, z_mean, x_mean)


# ----------------------------------------------------------------- the shims


class _RecordingJax:
    """A stand-in for the jax module: records the in_axes each `vmap` gets."""

    def __init__(self):
        self.in_axes = []
        self.lax = "jax.lax"

    def vmap(self, fun, in_axes=0):
        self.in_axes.append(in_axes)
        return fun


def test_broadcasting_vmap_repeats_a_one_entry_in_axes_and_passes_the_rest():
    fake_jax = _RecordingJax()
    shimmed = bench.BroadcastingVmapJax(fake_jax)

    assert shimmed.vmap(lambda mean, variance: mean + variance, [0])(1, 2) == 3
    assert shimmed.vmap(lambda mean, variance: mean, [0, 0])(1, 2) == 1
    assert shimmed.vmap(lambda mean: mean, 0)(5) == 5
    assert fake_jax.in_axes == [(0, 0), [0, 0], 0]
    assert shimmed.lax == "jax.lax"


def test_authors_shims_apply_and_undo():
    fake_numpy = types.SimpleNamespace(prod=np.prod)
    vae_module = types.SimpleNamespace(jax=_RecordingJax())
    original_jax = vae_module.jax

    class Checkpointer:
        pass

    checkpointer_module = types.SimpleNamespace(Checkpointer=Checkpointer)
    with bench.authors_shims(vae_module, checkpointer_module, numpy_module=fake_numpy) as record:
        assert fake_numpy.product is np.prod
        assert isinstance(vae_module.jax, bench.BroadcastingVmapJax)
        recorder = checkpointer_module.Checkpointer("/nowhere", "file")
        assert recorder.load_checkpoint() is None
        recorder.save_checkpoint({"params": 1}, "opt", 0, {"info": 1})
        recorder.save_checkpoint({"params": 2}, "opt", 1)
    assert record == {"params": {"params": 2}, "step": 1}
    assert not hasattr(fake_numpy, "product")
    assert vae_module.jax is original_jax
    assert checkpointer_module.Checkpointer is Checkpointer

    numpy_with_product = types.SimpleNamespace(prod=np.prod, product="kept")
    with bench.authors_shims(vae_module, checkpointer_module, numpy_module=numpy_with_product):
        assert numpy_with_product.product == "kept"
    assert numpy_with_product.product == "kept"


# --------------------------------------------------------------- data and paths


@dataclasses.dataclass(frozen=True)
class _LabelledData:  # the fields of their types.LabelledData
    data: np.ndarray
    label: np.ndarray


def test_labelled_batches_give_full_shuffled_batches_in_their_layout():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) * np.ones((1, 28, 28, 3), np.float32)
    labels = np.arange(10)
    batches = bench.LabelledBatches(_LabelledData, images, labels, batch_size=4, seed=SEED)
    epoch = [next(batches) for _ in range(2)]  # 10 images: two full batches, two left out
    for batch in epoch:
        assert batch.data.shape == (4, 28, 28, 3) and batch.data.dtype == np.float32
        np.testing.assert_array_equal(batch.data[:, 0, 0, 0], batch.label)
    seen = np.concatenate([batch.label for batch in epoch])
    assert len(set(seen)) == 8
    assert not np.array_equal(seen, np.arange(8))  # shuffled
    assert next(batches).label.shape == (4,)  # a new epoch starts

    in_order = bench.LabelledBatches(_LabelledData, images, labels, batch_size=4)
    np.testing.assert_array_equal(next(in_order).label, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="10 images cannot fill one batch of 11"):
        bench.LabelledBatches(_LabelledData, images, labels, batch_size=11)


def _fake_checkout(root):
    package = root / "avae"
    package.mkdir(parents=True)
    for name in bench.AUTHORS_MODULES:
        (package / f"{name}.py").write_text("")
    return package


def test_resolve_code_dir(tmp_path):
    package = _fake_checkout(tmp_path / "deepmind-research")
    assert bench.resolve_code_dir(package) == package.resolve()
    assert bench.resolve_code_dir(package.parent) == package.resolve()

    with pytest.raises(ValueError, match="is not a folder"):
        bench.resolve_code_dir(tmp_path / "nothing")
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(ValueError, match="must be the authors' `avae/` folder"):
        bench.resolve_code_dir(other)
    (package / "vae.py").unlink()
    with pytest.raises(ValueError, match=r"lacks \['vae.py'\]"):
        bench.resolve_code_dir(package)


def test_save_params_writes_module_and_key(tmp_path):
    params = {"m/linear": {"w": np.ones((2, 3), np.float32), "b": np.zeros(3, np.float32)}}
    with np.load(bench.save_params(tmp_path / "p.npz", params)) as saved:
        assert sorted(saved.files) == ["m/linear:b", "m/linear:w"]
        np.testing.assert_array_equal(saved["m/linear:w"], params["m/linear"]["w"])


# -------------------------------------------------------------- command line


def test_help_works_without_jax(monkeypatch, capsys):
    for name in JAX_PACKAGES:
        monkeypatch.setitem(sys.modules, name, None)  # `import jax` now raises ImportError
    script = load_benchmark("authors_code", "authors_code_without_jax")
    with pytest.raises(SystemExit) as exit_info:
        script.build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for flag in ("--code-dir", "--steps", "--model", "--rho", "--obs-var", "--probe-train-size", "--attack-size"):
        assert flag in help_text


def test_parser_defaults_are_the_authors_settings():
    args = bench.build_parser().parse_args(["--code-dir", "somewhere"])
    assert (args.model, args.steps, args.rho, args.obs_var, args.latent_dim) == ("avae", 30000, 0.975, 0.5, 64)
    assert (args.learning_rate, args.batch_size, args.seed) == (1e-4, 64, 0)
    assert (args.probe_train_size, args.attack_size, args.attack_steps) == (10000, 500, 10)
    assert args.epsilons == (0.0, 0.05, 0.1, 0.2)
    assert args.losses == ("cross_entropy", "margin")
    parsed = bench.build_parser().parse_args(["--code-dir", "x", "--epsilons", "0,0.1", "--losses", "margin"])
    assert parsed.epsilons == (0.0, 0.1) and parsed.losses == ("margin",)


def test_training_without_jax_is_a_clear_error(monkeypatch, tmp_path):
    for name in JAX_PACKAGES:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[authors\]"'):
        bench.train_authors_model(tmp_path, "avae", None, None)
