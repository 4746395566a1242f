"""Bad input, every path: each case raises (or warns) with a message naming the problem, and changes nothing.

One table: a case's id, a `setup` that makes the stateful object (a compiled, built
tiny model; a metric; or None), the bad `action` on it, the error (or warning) type,
and a fragment of its message. Where there is an object, its variables (weights,
optimizer iterations, seed generator state, metric sums) must be the same after the
failed call as before it.
"""

from collections import namedtuple

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_networks

import keras_avae
from keras_avae import validation
from keras_avae.metrics import FID, KID, SmallSampleWarning

SHAPE = (4, 4, 1)
LATENT_DIM = 2


def _images(n=8, scale=1.0, nan=False, seed=0):
    x = np.random.default_rng(seed).random((n,) + SHAPE, dtype=np.float32) * np.float32(scale)
    if nan:
        x[0, 0, 0, 0] = np.nan
    return x


def _networks():
    return tiny_networks(latent_dim=LATENT_DIM, image_shape=SHAPE, hidden=8)


def _model(cls=keras_avae.VAE, build=True, **compile_kwargs):
    model = cls(*_networks(), seed=1)
    model.compile(optimizer="adam", **compile_kwargs)
    if build:
        model.build((None,) + SHAPE)
    return model


def _self_supervised():
    model = keras_avae.AVAESelfSupervised.from_pretrained(_model())
    model.compile(optimizer="adam")
    return model


def _dict_encoder():
    inputs = keras.Input(SHAPE)
    flat = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, {"mean": keras.layers.Dense(LATENT_DIM)(flat), "log_var": keras.layers.Dense(LATENT_DIM)(flat)})


def _extractor(input_shape=SHAPE, features=3):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(features)])


class _Batches(keras.utils.PyDataset):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def __len__(self):
        return len(self.x) // 4

    def __getitem__(self, index):
        return self.x[4 * index : 4 * (index + 1)]


def _generator(x, as_dict=False):
    for start in range(0, len(x), 4):
        yield {"image": x[start : start + 4]} if as_dict else x[start : start + 4]


def _dataset(x, batch=4):
    return tf.data.Dataset.from_tensor_slices(x).batch(batch)


def _fit(data, **kwargs):
    return lambda model: model.fit(data, epochs=1, verbose=0, **kwargs)


NAN = "Bad training data: inputs contain 1 NaN or infinite value\\(s\\)"
RANGE = r"inputs span \[[0-9.]+, 25[0-9.]+\], outside the declared data_range \(0.0, 1.0\); rescale them \(e.g. divide uint8 images by 255\)"
EXPECTED = r"Expected images \(batch, 4, 4, 1\), finite, in data_range \(0.0, 1.0\)"

Case = namedtuple("Case", "id setup action error match")

CASES = [
    # --- fit: every way data can arrive -------------------------------------------------
    Case("array-nan", _model, _fit(_images(nan=True)), ValueError, NAN + r"\. " + EXPECTED),
    Case("array-255", _model, _fit(_images(scale=255)), ValueError, "Bad training data: " + RANGE),
    Case("tensor-nan", _model, _fit(tf.constant(_images(nan=True))), ValueError, NAN),
    Case("list-255", _model, _fit(list(_images(scale=255))), ValueError, "Bad training data: " + RANGE),
    Case("list-nan", _model, _fit([image for image in _images(nan=True)]), ValueError, NAN),
    Case("ragged-list", _model, _fit([_images(1)[0], np.zeros((3, 3, 1))]), ValueError, "could not be made into one"),
    Case("tf.data-first-batch-nan", _model, _fit(_dataset(_images(nan=True))), ValueError, NAN),
    Case(
        "tf.data-first-batch-nan-xla",
        lambda: _model(jit_compile=True),
        _fit(_dataset(_images(nan=True))),
        ValueError,
        NAN,
    ),
    Case(
        "tf.data-pairs-255",
        _model,
        _fit(tf.data.Dataset.from_tensor_slices((_images(scale=255), np.zeros(8))).batch(4)),
        ValueError,
        "Bad training data: " + RANGE,
    ),
    Case("py-dataset-nan", _model, _fit(_Batches(_images(nan=True))), ValueError, NAN),
    Case("py-dataset-255", _model, _fit(_Batches(_images(scale=255))), ValueError, "Bad training data: " + RANGE),
    Case("generator-nan", _model, lambda m: m.fit(_generator(_images(nan=True)), verbose=0), ValueError, NAN),
    Case("generator-255", _model, lambda m: m.fit(_generator(_images(scale=255)), verbose=0), ValueError, RANGE),
    Case(
        "generator-of-dicts",
        _model,
        lambda m: m.fit(_generator(_images(), as_dict=True), verbose=0),
        ValueError,
        r"Bad training data: got a dict with keys \['image'\].*alone or as the first item of an \(x, y\)",
    ),
    Case(
        "tf.data-of-dicts",
        _model,
        _fit(tf.data.Dataset.from_tensor_slices({"image": _images(), "label": np.zeros(8)}).batch(4)),
        ValueError,
        r"got a dict with keys \['image', 'label'\]: pass the images alone, e.g. dataset.map\(lambda d: d\['image'\]\)",
    ),
    Case("dict-of-arrays", _model, _fit({"image": _images()}), ValueError, r"Bad training data: got a dict with keys \['image'\]"),
    Case(
        "tf.data-strings",
        _model,
        _fit(tf.data.Dataset.from_tensor_slices(tf.fill((8,) + SHAPE, "a")).batch(4)),
        ValueError,
        "got images of dtype string",
    ),
    Case(
        "tf.data-unbatched",
        _model,
        _fit(tf.data.Dataset.from_tensor_slices(_images())),
        ValueError,
        r"single examples of shape \(4, 4, 1\), not batches: batch it",
    ),
    Case(
        "array-wrong-shape",
        _model,
        _fit(np.zeros((8, 5, 5, 1), np.float32)),
        ValueError,
        r"Training data has examples of shape \(5, 5, 1\); the model takes \(4, 4, 1\)",
    ),
    Case(
        "py-dataset-wrong-shape",
        _model,
        _fit(_Batches(np.zeros((8, 5, 5, 1), np.float32))),
        ValueError,
        r"a batch has examples of shape \(5, 5, 1\); the model takes \(4, 4, 1\)",
    ),
    Case(
        "empty-array-fit",
        _model,
        _fit(np.zeros((0,) + SHAPE, np.float32)),
        ValueError,
        r"Training data must be a non-empty batch of images.*Received shape \(0, 4, 4, 1\)",
    ),
    Case(
        "empty-array-evaluate",
        _model,
        lambda m: m.evaluate(np.zeros((0,) + SHAPE, np.float32), verbose=0),
        ValueError,
        "Evaluation data must be a non-empty batch of images",
    ),
    Case("unsupported-type", _model, _fit({1, 2}), ValueError, "Bad training data: got a set. Pass a NumPy array"),
    Case("no-data", _model, _fit(None), ValueError, "Bad training data: got None"),
    Case(
        "validation-data-nan",
        _model,
        _fit(_images(), validation_data=(_images(nan=True),)),
        ValueError,
        "Bad validation data: inputs contain 1 NaN",
    ),
    Case(
        "validation-tf.data-nan-before-training",
        _model,
        _fit(_images(), validation_data=_dataset(_images(nan=True))),
        ValueError,
        "Bad validation data: inputs contain 1 NaN",
    ),
    Case(
        "validation-tf.data-nan-in-the-last-batch",
        _model,
        _fit(_images(), validation_data=_dataset(_images(nan=True)[::-1].copy())),
        ValueError,
        "Bad validation data: inputs contain 1 NaN",
    ),
    Case(
        "validation-tf.data-nan-within-validation-steps",
        _model,
        _fit(_images(), validation_data=_dataset(_images(nan=True)).repeat(), validation_steps=1),
        ValueError,
        "Bad validation data: inputs contain 1 NaN",
    ),
    # --- Keras arguments the models cannot honour --------------------------------------
    Case("fit-batch-size-0", _model, _fit(_images(), batch_size=0), ValueError, "`batch_size` must be an integer >= 1 or None. Received: batch_size=0"),
    Case("fit-batch-size-negative", _model, _fit(_images(), batch_size=-1), ValueError, "Received: batch_size=-1"),
    Case("fit-batch-size-float", _model, _fit(_images(), batch_size=2.5), ValueError, "Received: batch_size=2.5"),
    Case("evaluate-batch-size-0", _model, lambda m: m.evaluate(_images(), batch_size=0, verbose=0), ValueError, "Received: batch_size=0"),
    Case("predict-batch-size-0", _model, lambda m: m.predict(_images(), batch_size=0, verbose=0), ValueError, "Received: batch_size=0"),
    Case(
        "fit-class-weight",
        _model,
        _fit(_images(), class_weight={0: 1.0}),
        ValueError,
        r"`class_weight` is not used: VAE takes no labels .* Received: class_weight=\{0: 1.0\}",
    ),
    Case(
        "train-on-batch-class-weight",
        _model,
        lambda m: m.train_on_batch(_images(), class_weight={0: 1.0}),
        ValueError,
        r"Received: class_weight=\{0: 1.0\}",
    ),
    Case("sample-negative", _model, lambda m: m.sample(-1), ValueError, "`n` must be an integer >= 1. Received: n=-1"),
    Case("sample-float", _model, lambda m: m.sample(2.5), ValueError, "`n` must be an integer >= 1. Received: n=2.5"),
    Case(
        "encoder-none",
        lambda: None,
        lambda _: keras_avae.AVAE(None, _networks()[1]),
        ValueError,
        "`encoder` must be a Keras layer or model. Received: encoder=None",
    ),
    Case(
        "decoder-not-a-layer",
        lambda: None,
        lambda _: keras_avae.VAE(_networks()[0], "decoder"),
        ValueError,
        "`decoder` must be a Keras layer or model. Received: decoder of type str",
    ),
    Case(
        "evaluate-tf.data-255",
        _model,
        lambda m: m.evaluate(_dataset(_images(scale=255)), verbose=0),
        ValueError,
        "Bad evaluation data: " + RANGE,
    ),
    Case("train-on-batch-nan", _model, lambda m: m.train_on_batch(_images(nan=True)), ValueError, NAN),
    Case(
        "encoder-returns-dict",
        lambda: None,
        lambda _: keras_avae.VAE(_dict_encoder(), _networks()[1]).fit(_images(), verbose=0),
        ValueError,
        r"The encoder returned a dict with keys \['log_var', 'mean'\]; it must return one tensor .* or a pair",
    ),
    # --- inference --------------------------------------------------------------------
    Case("predict-nan", _model, lambda m: m.predict(_images(nan=True), verbose=0), ValueError, "Bad `x`: inputs contain 1 NaN"),
    Case("predict-255", _model, lambda m: m.predict(_images(scale=255), verbose=0), ValueError, "Bad `x`: " + RANGE),
    Case("encode-mean-nan", _model, lambda m: m.encode_mean(_images(nan=True)), ValueError, "Bad `x`: inputs contain 1 NaN"),
    Case("encode-mean-255", _model, lambda m: m.encode_mean(tf.constant(_images(scale=255))), ValueError, "Bad `x`: " + RANGE),
    Case("terms-nan", _model, lambda m: m.terms(_images(nan=True)), ValueError, "Bad `x`: inputs contain 1 NaN"),
    Case("reconstruct-255", _model, lambda m: m.reconstruct(_images(scale=255)), ValueError, "Bad `x`: " + RANGE),
    # --- compile ----------------------------------------------------------------------
    Case(
        "compile-loss",
        lambda: None,
        lambda _: _model(loss="mse"),
        ValueError,
        r"`loss` is not used: VAE maximises its own objective \(the ELBO of eq. \(2\)\) and reports its terms "
        r"\(loss, elbo, reconstruction, kl\) with its own trackers",
    ),
    Case(
        "compile-metrics",
        lambda: None,
        lambda _: _model(keras_avae.AVAE, metrics=["mae"]),
        ValueError,
        r"`metrics` is not used: AVAE maximises its own objective \(the bound of eq. \(13\)\)",
    ),
    # --- AVAE-SS: no data, checked counts ---------------------------------------------
    Case(
        "ss-batch-size-0",
        _self_supervised,
        lambda m: m.fit(steps_per_epoch=1, batch_size=0, verbose=0),
        ValueError,
        "`batch_size` must be an integer >= 1. Received: batch_size=0",
    ),
    Case(
        "ss-batch-size-negative",
        _self_supervised,
        lambda m: m.fit(steps_per_epoch=1, batch_size=-4, verbose=0),
        ValueError,
        "`batch_size` must be an integer >= 1. Received: batch_size=-4",
    ),
    Case(
        "ss-steps-float",
        _self_supervised,
        lambda m: m.fit(steps_per_epoch=2.7, verbose=0),
        ValueError,
        "`steps_per_epoch` must be an integer >= 1. Received: steps_per_epoch=2.7",
    ),
    Case(
        "ss-steps-string",
        _self_supervised,
        lambda m: m.fit(steps_per_epoch="3", verbose=0),
        ValueError,
        "`steps_per_epoch` must be an integer >= 1. Received: steps_per_epoch='3'",
    ),
    Case(
        "ss-validation-data",
        _self_supervised,
        lambda m: m.fit(steps_per_epoch=1, validation_data=_images(), verbose=0),
        ValueError,
        r"takes no validation data: its objective, eq. \(34\), uses none",
    ),
    Case(
        "ss-fit-x",
        _self_supervised,
        lambda m: m.fit(_images(), steps_per_epoch=1, verbose=0),
        ValueError,
        r"AVAESelfSupervised trains on samples from its own decoder; call fit\(\) without x or y",
    ),
    Case(
        "ss-evaluate-x-nan",
        _self_supervised,
        lambda m: m.evaluate(_images(nan=True), verbose=0),
        ValueError,
        "Bad evaluation data: inputs contain 1 NaN",
    ),
    Case(
        "ss-evaluate-no-steps",
        _self_supervised,
        lambda m: m.evaluate(verbose=0),
        ValueError,
        "`steps` must be an integer >= 1. Received: steps=None",
    ),
    # --- constructor numbers ----------------------------------------------------------
    Case("rho-bool", lambda: None, lambda _: keras_avae.AVAE(*_networks(), rho=True), ValueError, r"`rho` must be a number in \(-1, 1\)"),
    Case("rho-nan", lambda: None, lambda _: keras_avae.AVAE(*_networks(), rho=np.float32("nan")), ValueError, "`rho` must be a number"),
    Case("obs-var-bool", lambda: None, lambda _: keras_avae.VAE(*_networks(), obs_var=True), ValueError, "`obs_var` must be a finite number > 0"),
    Case("seed-string", lambda: None, lambda _: keras_avae.VAE(*_networks(), seed="3"), ValueError, "`seed` must be an int or None"),
    Case("data-range-bools", lambda: None, lambda _: keras_avae.VAE(*_networks(), data_range=(False, True)), ValueError, "`data_range` must be a pair"),
    # --- FID and KID ------------------------------------------------------------------
    Case(
        "fid-shape-does-not-fit-the-extractor",
        lambda: FID(feature_extractor=_extractor()),
        lambda fid: fid.update_state(_images(), np.zeros((8, 5, 5, 1), np.float32)),
        ValueError,
        r"`generated_images` has examples of shape \(5, 5, 1\); the feature extractor .* takes \(4, 4, 1\)",
    ),
    Case(
        "fid-bad-generated-images-add-no-real-sums",
        lambda: FID(feature_extractor=_extractor()),
        lambda fid: fid.update_state(_images(), _images(scale=255)),
        ValueError,
        "Bad `generated_images`: " + RANGE,
    ),
    Case(
        "kid-bad-generated-images-store-nothing",
        lambda: KID(feature_extractor=_extractor(), subset_size=2),
        lambda kid: kid.update_state(_images(), _images(nan=True)),
        ValueError,
        "Bad `generated_images`: inputs contain 1 NaN",
    ),
    Case(
        "fid-fewer-images-than-features",
        lambda: None,
        lambda _: _fid_of(3, features=4),
        SmallSampleWarning,
        "FID estimates the covariance of the real features from 3 images, fewer than the 4 feature dimensions",
    ),
    Case(
        "kid-fewer-images-than-features",
        lambda: None,
        lambda _: keras_avae.metrics.kernel_inception_distance(np.eye(3, 5), np.eye(3, 5), subsets=1, subset_size=2),
        SmallSampleWarning,
        "from 3 images, fewer than the 5 feature dimensions",
    ),
    # --- the shared checks ------------------------------------------------------------
    Case("labels-fractional", lambda: None, lambda _: validation.check_labels([0, 1.5]), ValueError, "`labels` must be integer class ids"),
    Case("labels-negative", lambda: None, lambda _: validation.check_labels([0, -1]), ValueError, r"class ids >= 0. Received ids from -1 to 0"),
    Case(
        "labels-too-large",
        lambda: None,
        lambda _: validation.check_labels([0, 10], num_classes=10),
        ValueError,
        r"class ids \[0, 10\). Received ids from 0 to 10",
    ),
    Case(
        "labels-count",
        lambda: None,
        lambda _: validation.check_labels([0, 1], num_examples=3),
        ValueError,
        "`labels` has 2 labels but there are 3 examples",
    ),
    Case("labels-2d", lambda: None, lambda _: validation.check_labels(np.zeros((2, 2), int)), ValueError, r"\(N,\) array of class ids"),
    Case("integer-bool", lambda: None, lambda _: validation.check_positive_int(True, "steps"), ValueError, "`steps` must be an integer >= 1"),
    Case("integer-numpy-float", lambda: None, lambda _: validation.check_integer(np.float32(3), "n"), ValueError, "`n` must be an integer"),
    Case("flag-int", lambda: None, lambda _: validation.check_bool(1, "unbiased"), ValueError, "`unbiased` must be True or False"),
    Case(
        "model-lacks-method",
        lambda: None,
        lambda _: validation.check_model(object(), ("encode_mean",), ("data_range",)),
        ValueError,
        r"`model` must be a keras_avae model with `encode_mean`, `data_range`; object lacks \['encode_mean', 'data_range'\]",
    ),
    Case(
        "features-nan",
        lambda: None,
        lambda _: validation.check_features(np.full((3, 2), np.nan), "features"),
        ValueError,
        "`features` must be finite real numbers. Received 6 NaN",
    ),
]


def _fid_of(n, features):
    fid = FID(feature_extractor=_extractor(features=features))
    images = _images(n)
    fid.update_state(images, images)
    return fid.result()


def _state(obj):
    """Every variable of `obj` (and, for a model, its optimizer and seed generator), by path, as NumPy."""
    if obj is None:
        return {}
    if isinstance(obj, KID):
        return {which: obj.stored_features(which).copy() for which in ("real", "generated")}
    variables = list(obj.variables)
    if isinstance(obj, keras.Model):
        variables += [obj.seed_generator.state, obj.optimizer.iterations] + list(obj.optimizer.variables)
    return {f"{index}:{variable.path}": np.array(variable) for index, variable in enumerate(variables)}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_and_changes_nothing(case):
    obj = case.setup()
    before = _state(obj)
    if issubclass(case.error, Warning):
        with pytest.warns(case.error, match=case.match):
            case.action(obj)
    else:
        with pytest.raises(case.error, match=case.match):
            case.action(obj)
    after = _state(obj)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=f"{case.id}: {key} changed")
    if isinstance(obj, keras.Model):
        assert int(obj.optimizer.iterations.numpy()) == 0


def test_case_ids_are_unique():
    assert len({case.id for case in CASES}) == len(CASES)


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    model = keras_avae.AVAE(*_networks(), rho=np.float32(0.9), obs_var=np.float32(0.5), seed=np.int64(3))
    config = model.get_config()
    assert type(config["rho"]) is float and config["rho"] == pytest.approx(0.9)
    assert type(config["obs_var"]) is float and config["obs_var"] == 0.5
    assert validation.check_integer(np.int32(4), "n", minimum=1) == 4
    np.testing.assert_array_equal(validation.check_labels(np.array([0.0, 2.0]), num_classes=3), [0, 2])


def test_good_input_on_every_path_trains():
    """The checks let good data through every path, and the self-supervised model evaluates without data."""
    # No XLA: each data path retraces the train step, and an XLA compile of each costs seconds.
    # (The checks run on the data outside the compiled step; the "-xla" case above covers XLA.)
    model = _model(jit_compile=False)
    x = _images()
    for data in (x, list(x), _dataset(x), _Batches(x), _generator(x), tf.data.Dataset.from_tensor_slices((x, x)).batch(4)):
        model.fit(data, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 1 + 1 + 2 + 2 + 2 + 2
    history = model.fit(x, epochs=2, verbose=0, validation_data=_Batches(x))
    assert len(history.history["val_loss"]) == 2
    history = model.fit(x, epochs=1, verbose=0, validation_data=_generator(x))
    assert np.isfinite(history.history["val_loss"]).all()
    assert np.isfinite(model.encode_mean(x)).all()
    ss = _self_supervised()
    logs = ss.evaluate(steps=2, batch_size=4, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "kl", "coupling", "aux_entropy"}


def test_self_supervised_evaluate_honours_x():
    """evaluate(x) puts the data in place of the decoder's samples: different data, different terms."""
    ss = _self_supervised()
    x = _images()
    on_x = ss.evaluate(x, verbose=0, return_dict=True)
    assert ss.evaluate(x, verbose=0, return_dict=True)["kl"] == pytest.approx(on_x["kl"])  # kl: no noise
    assert ss.evaluate(1.0 - x, verbose=0, return_dict=True)["kl"] != pytest.approx(on_x["kl"])
    z_mean, z_log_var = (t.numpy() for t in ss.posterior_parameters(x))
    expected_kl = 0.5 * np.sum(np.exp(z_log_var) + z_mean**2 - 1.0 - z_log_var, axis=-1).mean()
    assert on_x["kl"] == pytest.approx(expected_kl, rel=1e-4)
    on_samples = ss.evaluate(steps=1, batch_size=8, verbose=0, return_dict=True)
    assert on_samples["kl"] != pytest.approx(on_x["kl"])


@pytest.mark.parametrize("imports", ["import keras, keras_avae", "import keras_avae, keras"])
def test_readme_load_path_works_in_a_fresh_process(tmp_path, imports):
    """`keras.models.load_model` finds the classes though `import keras_avae` imports none of them.

    Before the registration it raised "TypeError: Could not locate class 'AVAE'" in a fresh process.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    model = _model(keras_avae.AVAE)
    path = tmp_path / "avae.keras"
    model.save(path)
    code = (
        f"{imports}\nimport sys\nassert 'keras_avae.models' not in sys.modules\n"
        f"model = keras.models.load_model({str(path)!r})\nprint(type(model).__name__, model.rho)"
    )
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(repo), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["AVAE", str(model.rho)]
