"""Frechet Inception Distance (Heusel et al., 2017), the decoder-quality column of Tables 1 and 2.

FID fits a Gaussian to the features of real images and one to the features of
generated images and reports the Frechet (2-Wasserstein) distance between them,

    FID = |m_r - m_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)).

The standard recipe extracts the 2048-d average-pooled ("pool3") features of
InceptionV3 trained on ImageNet, from images resized to 299x299 and scaled to
[-1, 1]. `ImageFeatures` does that extraction (or runs any Keras model you
give it instead) and is shared with `keras_avae.metrics.kid`.

Which extractor: Keras' `InceptionV3` is a re-implementation of the network;
with ImageNet weights its features are close to, but not bit-identical with,
the TF-slim graph of the original TTUR code (which pytorch-fid mimics), so FIDs
computed here are comparable with each other, not with published numbers to
the last digit. Every FID object states its extractor in `extractor_name`;
put it in every report. For ColorMNIST, a classifier trained on ColorMNIST is
a sensible alternative extractor (pass it as `feature_extractor`).

FID is biased upwards for small samples; compare models at the same sample
size (10,000 real and 10,000 generated images is the usual choice).

Example:
    fid = FID(weights="/data/inception_v3_notop.h5")    # or feature_extractor=classifier
    fid.update_state(x_test[:10000], vae.sample(10000))
    print(f"FID {fid.result():.2f} ({fid.extractor_name})")
"""

import os
import warnings

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf

from keras_avae.validation import (
    check_data_range,
    check_features,
    check_images,
    check_non_negative,
    check_positive,
    check_positive_int,
    warn_if_few_examples,
)

INCEPTION_SIZE = 299
"""InceptionV3's input height and width; images are resized to it (bilinear)."""

INCEPTION_FEATURES = 2048
"""Width of InceptionV3's average-pooled ("pool3") features."""

DEFAULT_BATCH_SIZE = 64
"""Images per feature-extractor call."""

DEFAULT_EPS = 1e-6
"""Offset added to the diagonal of both covariances when (S1 S2)^(1/2) is singular or not finite."""

DEFAULT_IMAGINARY_TOLERANCE = 1e-3
"""Largest imaginary part on the diagonal of (S1 S2)^(1/2) that is discarded as round-off (pytorch-fid's)."""


# ---------------------------------------------------------------- distance


def frechet_distance(
    mu1, cov1, mu2, cov2, eps=DEFAULT_EPS, imaginary_tolerance=DEFAULT_IMAGINARY_TOLERANCE
):
    """Frechet distance between N(mu1, cov1) and N(mu2, cov2), in float64.

    d^2 = |mu1 - mu2|^2 + Tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)), with the matrix
    square root of `scipy.linalg.sqrtm`, as in the TTUR and pytorch-fid code:
    when `cov1 @ cov2` is singular (scipy warns) or its square root is not
    finite, `eps * I` is added to both covariances and the root recomputed.
    Imaginary parts of the root, left by round-off, are discarded when those on
    its diagonal are at most `imaginary_tolerance`; larger ones raise.

    The result is not clipped at 0: round-off can leave values like -1e-12
    for identical Gaussians.

    Args:
        mu1: `(d,)` mean of the first Gaussian.
        cov1: `(d, d)` covariance of the first Gaussian (symmetric, PSD).
        mu2: `(d,)` mean of the second Gaussian.
        cov2: `(d, d)` covariance of the second Gaussian.
        eps: offset > 0 for singular products.
        imaginary_tolerance: largest |imaginary part| >= 0 tolerated on the
            diagonal of the square root.

    Returns:
        The squared Frechet distance, a Python float.

    Example:
        fid = frechet_distance(mu_real, cov_real, mu_fake, cov_fake)
    """
    mu1 = _as_vector(mu1, "mu1")
    mu2 = _as_vector(mu2, "mu2")
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"`mu1` and `mu2` must have the same length. Received shapes {mu1.shape} and {mu2.shape}"
        )
    cov1 = _as_covariance(cov1, "cov1", len(mu1))
    cov2 = _as_covariance(cov2, "cov2", len(mu2))
    eps = check_positive(eps, "eps")
    imaginary_tolerance = check_non_negative(imaginary_tolerance, "imaginary_tolerance", finite=False)

    covmean, singular = _sqrtm(cov1 @ cov2)
    if singular or not np.isfinite(covmean).all():
        offset = eps * np.eye(len(mu1))
        covmean, _ = _sqrtm((cov1 + offset) @ (cov2 + offset))
        if not np.isfinite(covmean).all():
            raise ValueError(
                "The square root of `cov1 @ cov2` is not finite even with "
                f"`eps`={eps:g} added to the covariances; pass a larger `eps`."
            )
    if np.iscomplexobj(covmean):
        largest = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if largest > imaginary_tolerance:
            raise ValueError(
                f"The square root of `cov1 @ cov2` has imaginary parts up to {largest:.3g} on its "
                f"diagonal, above `imaginary_tolerance`={imaginary_tolerance:g}: the covariances "
                "are not valid (symmetric positive semi-definite) or badly conditioned."
            )
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


def _sqrtm(matrix):
    """`scipy.linalg.sqrtm(matrix)` and whether scipy found the matrix singular."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(matrix)
    singular = any(issubclass(w.category, scipy.linalg.LinAlgWarning) for w in caught)
    return root, singular


def gaussian_statistics(features):
    """Mean and unbiased covariance (divisor N - 1) of `(N, d)` features, in float64.

    Warns (`keras_avae.validation.SmallSampleWarning`) when N < d: the covariance
    then has rank below d.

    Example:
        mu, cov = gaussian_statistics(features)
    """
    features = check_features(features, "features", min_examples=2).astype(np.float64, copy=False)
    warn_if_few_examples(len(features), features.shape[1], "The covariance of `features` is estimated")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], -1)


# ------------------------------------------------------------ extraction


def inception_preprocess(images, data_range=(0.0, 1.0)):
    """Images as InceptionV3 expects them: 299x299, three channels, in [-1, 1].

    Pixels are mapped from `data_range` to [0, 255] and then through
    `keras.applications.inception_v3.preprocess_input` (x / 127.5 - 1); images
    are resized to 299x299 with bilinear interpolation, and grey (one-channel)
    images are repeated to three channels.

    Args:
        images: `(batch, height, width, 1 or 3)` array or tensor in `data_range`.
        data_range: `(low, high)` of the pixels; (0, 1) for this library's images.

    Returns:
        float32 tensor `(batch, 299, 299, 3)`.
    """
    low, high = data_range
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    images = (images - low) * (255.0 / (high - low))
    if images.shape[-1] == 1:
        images = tf.repeat(images, 3, axis=-1)
    if tuple(images.shape[1:3]) != (INCEPTION_SIZE, INCEPTION_SIZE):
        images = keras.ops.image.resize(
            images, (INCEPTION_SIZE, INCEPTION_SIZE), interpolation="bilinear"
        )
    return keras.applications.inception_v3.preprocess_input(images)


def _inception_v3(weights):
    """InceptionV3 without its classifier, average-pooled: images -> (batch, 2048)."""
    return keras.applications.InceptionV3(
        include_top=False,
        weights=weights,
        input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3),
        pooling="avg",
    )


class ImageFeatures:
    """Maps images to features, batch by batch: InceptionV3 pool3 or any Keras model.

    FID and KID share this class, so both see the same features.

    Args:
        feature_extractor: a Keras model mapping images to `(batch, features)`,
            with a known output width (e.g. built with `keras.Input`). It gets
            the images exactly as given (do its preprocessing inside it). None
            uses InceptionV3 pool3.
        weights: InceptionV3 weights when `feature_extractor` is None: a local
            weights file (e.g. Keras' `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`),
            or None / "imagenet" for the ImageNet weights, which Keras
            downloads unless they are in `~/.keras/models`.
        data_range: `(low, high)` the pixels must lie in (checked on every
            batch); InceptionV3 maps it to [-1, 1]. With a `feature_extractor`,
            None skips the check.
        batch_size: images per extractor call.

    Attributes:
        name: which extractor, e.g. "InceptionV3 pool3 (weights: imagenet)".
        num_features: width d of the features.
        example_shape: the shape of one image the extractor takes (None in it:
            any size), read off its input; None for InceptionV3 (any height
            and width, 1 or 3 channels).
    """

    def __init__(
        self, feature_extractor=None, weights=None, data_range=(0.0, 1.0), batch_size=DEFAULT_BATCH_SIZE
    ):
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.data_range = check_data_range(data_range)
        if feature_extractor is not None:
            if weights is not None:
                raise ValueError(
                    "Pass either `feature_extractor` or `weights` (InceptionV3's), not both. "
                    f"Received: weights={weights!r}"
                )
            self.model = _check_extractor(feature_extractor)
            self.name = f"{feature_extractor.name} ({type(feature_extractor).__name__})"
            self.num_features = int(feature_extractor.output_shape[-1])
            self.inception = False
            self.example_shape = _extractor_example_shape(feature_extractor)
        else:
            if self.data_range is None:
                raise ValueError(
                    "InceptionV3 needs the pixel range to scale images to [-1, 1]: `data_range` "
                    "must be a pair (low, high), not None."
                )
            self.model = _load_inception(weights)
            source = "imagenet" if weights in (None, "imagenet") else os.fspath(weights)
            self.name = f"InceptionV3 pool3 (weights: {source})"
            self.num_features = int(self.model.output_shape[-1])  # INCEPTION_FEATURES
            self.inception = True
            self.example_shape = None  # any height and width (resized), 1 or 3 channels
        self._extract = tf.function(self._extract_batch, reduce_retracing=True)

    def _extract_batch(self, images):
        if self.inception:
            images = inception_preprocess(images, self.data_range)
        features = self.model(images, training=False)
        return tf.cast(features, tf.float32)

    def batches(self, images, name="images", checked=False):
        """Yields the float32 features `(batch, d)` of successive batches of `images`.

        `checked=True` skips the check (for images `check_images` returned).
        """
        if not checked:
            images = self.check_images(images, name)
        for start in range(0, len(images), self.batch_size):
            features = self._extract(images[start : start + self.batch_size])
            if features.shape.rank != 2 or features.shape[-1] != self.num_features:
                raise ValueError(
                    f"The feature extractor must return (batch, {self.num_features}) features. "
                    f"Received shape {tuple(features.shape)}"
                )
            yield features

    def __call__(self, images, name="images", checked=False):
        """The float32 features `(N, d)` of all `images`, as a NumPy array."""
        return np.concatenate([f.numpy() for f in self.batches(images, name, checked)])

    def check_images(self, images, name="images"):
        """Checks images for the extractor (its input shape, finite, in `data_range`); returns float32 NumPy."""
        return check_images(
            images,
            self.data_range,
            self.example_shape,
            name=name,
            channels=(1, 3) if self.inception else None,
            taker=f"the feature extractor {self.name}",
        )

    def check_sets(self, metric, real_images, generated_images, sample_weight):
        """A metric's `update_state` arguments checked: `{"real"|"generated": checked images}`.

        `metric` names the metric in the errors. Both sets are checked before
        either is used, so a metric that extracts them all before it stores
        anything is left as it was when a call raises.
        """
        if sample_weight is not None:
            raise ValueError(f"{metric} takes no `sample_weight`. Received a value that is not None.")
        if real_images is None and generated_images is None:
            raise ValueError("Pass `real_images`, `generated_images` or both; both were None.")
        return {
            which: self.check_images(images, f"{which}_images")
            for which, images in (("real", real_images), ("generated", generated_images))
            if images is not None
        }


def _load_inception(weights):
    if weights is None or weights == "imagenet":
        try:
            return _inception_v3("imagenet")
        except Exception as error:  # Keras raises a bare Exception when the download fails.
            raise RuntimeError(
                "Could not load the ImageNet InceptionV3 weights (Keras downloads them to "
                f"~/.keras/models; that failed: {error}). Pass `weights=` the path of a local "
                "InceptionV3 weights file (no top), or a `feature_extractor` model."
            ) from error
    if not isinstance(weights, (str, os.PathLike)) or not os.path.isfile(weights):
        raise ValueError(
            "`weights` must be None or 'imagenet' (the ImageNet InceptionV3 weights) or the path "
            f"of an existing InceptionV3 weights file. Received: weights={weights!r}"
        )
    return _inception_v3(os.fspath(weights))


def _extractor_example_shape(model):
    """The shape of one image a single-input extractor takes (None: any size), or None when unknown."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if not isinstance(shape, tuple) or not shape or not all(d is None or isinstance(d, int) for d in shape):
        return None  # several inputs, or none known
    return tuple(shape[1:])


def _check_extractor(model):
    if not isinstance(model, keras.Model):
        raise ValueError(
            "`feature_extractor` must be a keras.Model mapping images to (batch, features). "
            f"Received: {type(model).__name__}"
        )
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        shape = None
    if not isinstance(shape, tuple) or len(shape) != 2 or shape[-1] is None:
        raise ValueError(
            "`feature_extractor` must be a built model with one output of shape "
            f"(batch, num_features), e.g. built with keras.Input. Received output shape: {shape}"
        )
    return model


# ----------------------------------------------------------------- metric


@keras.saving.register_keras_serializable(package="keras_avae")
class FID(keras.metrics.Metric):
    """Frechet distance between the features of real and generated images (Heusel et al., 2017).

    `update_state(real_images, generated_images)` runs the extractor in
    batches of `batch_size` and adds to running float64 sums per set: the
    count, the sum of features, and the sum of their outer products (metric
    variables, so `reset_state` zeroes them). Memory does not grow with the
    number of images: two `(d, d)` float64 matrices, 64 MiB for InceptionV3's
    d = 2048, so 10,000 images (or any number) fit. `result()` turns the sums
    into means and unbiased covariances and returns `frechet_distance` of them;
    for d = 2048 its matrix square root is the slow part on a CPU, so call it
    once per evaluation, not per batch.

    Either set may be None in a call, e.g. to add real images once and
    generated images per epoch. Extraction runs where TensorFlow places it
    (the GPU when present); `update_state` is meant to be called eagerly,
    outside `fit`'s compiled step.

    Args:
        feature_extractor: None for InceptionV3 pool3, or a Keras model mapping
            images to `(batch, features)` (see `ImageFeatures`).
        weights: InceptionV3 weights: a local weights file path, or None /
            "imagenet" to use the ImageNet weights (downloaded by Keras where a
            network exists; a RuntimeError says what to do when that fails).
        data_range: `(low, high)` of the input pixels; InceptionV3 maps it to
            [-1, 1] after scaling to [0, 255]. This library's images are in
            (0, 1). None (custom extractors only) skips the range check.
        batch_size: images per extractor call.
        eps: `frechet_distance`'s offset for singular covariance products.
        name: metric name.

    Attributes:
        extractor_name: the extractor, e.g. "InceptionV3 pool3 (weights: /path)";
            state it with every FID you report.

    Example:
        fid = FID(feature_extractor=color_mnist_classifier)
        fid.update_state(x_test, model.sample(len(x_test)))
        fid.result()
    """

    def __init__(
        self,
        feature_extractor=None,
        weights=None,
        data_range=(0.0, 1.0),
        batch_size=DEFAULT_BATCH_SIZE,
        eps=DEFAULT_EPS,
        name="fid",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.eps = check_positive(eps, "eps")
        self.features = ImageFeatures(feature_extractor, weights, data_range, batch_size)
        self.feature_extractor = feature_extractor
        self.weights = weights
        self.data_range = self.features.data_range
        self.batch_size = self.features.batch_size
        d = self.features.num_features
        self._sums = {}
        for which in ("real", "generated"):
            self._sums[which] = (
                self.add_variable((), "zeros", dtype="float64", name=f"{which}_count"),
                self.add_variable((d,), "zeros", dtype="float64", name=f"{which}_sum"),
                self.add_variable((d, d), "zeros", dtype="float64", name=f"{which}_outer"),
            )

    @property
    def extractor_name(self):
        """Which feature extractor this FID uses."""
        return self.features.name

    def update_state(self, real_images=None, generated_images=None, sample_weight=None):
        """Adds images of either or both sets to the running sums.

        Both sets are checked (the extractor's input shape, finite, in
        `data_range`) and their features extracted before any sum changes, so a
        call that raises leaves the metric as it was.

        Args:
            real_images: `(N, ...)` images in `data_range`, or None.
            generated_images: `(M, ...)` images in `data_range`, or None.
            sample_weight: not supported; must be None.
        """
        # Both sets are checked, and their features summed, before any state changes.
        given = self.features.check_sets("FID", real_images, generated_images, sample_weight)
        increments = {which: self._feature_sums(images, f"{which}_images") for which, images in given.items()}
        for which, sums in increments.items():
            for variable, increment in zip(self._sums[which], sums):
                variable.assign_add(increment)

    def _feature_sums(self, images, name):
        """`(count, sum, sum of outer products)` of the features of checked `images`, float64 tensors."""
        d = self.features.num_features
        count, total, outer = tf.constant(0.0, tf.float64), tf.zeros((d,), tf.float64), tf.zeros((d, d), tf.float64)
        for features in self.features.batches(images, name, checked=True):
            features = tf.cast(features, tf.float64)
            count += tf.cast(tf.shape(features)[0], tf.float64)
            total += tf.reduce_sum(features, axis=0)
            outer += tf.matmul(features, features, transpose_a=True)
        return count, total, outer

    def statistics(self, which):
        """`(mean, covariance)` of the features seen so far, float64 NumPy; `which` is "real" or "generated".

        Warns (`keras_avae.validation.SmallSampleWarning`) when fewer images than
        feature dimensions were seen: the covariance then has rank below d.
        """
        if which not in self._sums:
            raise ValueError(f"`which` must be 'real' or 'generated'. Received: which={which!r}")
        count, total, outer = (v.numpy() for v in self._sums[which])
        if count < 2:
            raise ValueError(
                f"FID needs at least 2 {which} images to estimate a covariance; it has seen {int(count)}."
            )
        warn_if_few_examples(count, len(total), f"FID estimates the covariance of the {which} features", stacklevel=4)
        mean = total / count
        covariance = (outer - count * np.outer(mean, mean)) / (count - 1)
        return mean, covariance

    def result(self):
        """The FID of the images seen since the last `reset_state`, a Python float."""
        mu_real, cov_real = self.statistics("real")
        mu_generated, cov_generated = self.statistics("generated")
        return frechet_distance(mu_real, cov_real, mu_generated, cov_generated, eps=self.eps)

    def get_config(self):
        return {**super().get_config(), **extractor_config(self), "eps": self.eps}

    @classmethod
    def from_config(cls, config):
        return from_extractor_config(cls, config)


def extractor_config(metric):
    """The feature-extractor part of an FID or KID metric's config."""
    extractor = metric.feature_extractor
    return {
        "feature_extractor": None if extractor is None else keras.saving.serialize_keras_object(extractor),
        "weights": None if metric.weights is None else os.fspath(metric.weights),
        "data_range": metric.data_range,
        "batch_size": metric.batch_size,
    }


def from_extractor_config(cls, config):
    """Builds an FID or KID metric from its config, deserialising its feature extractor."""
    config = dict(config)
    if config.get("feature_extractor") is not None:
        config["feature_extractor"] = keras.saving.deserialize_keras_object(config["feature_extractor"])
    return cls(**config)


# ----------------------------------------------------------------- checks


def _as_vector(value, name):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"`{name}` must be a non-empty vector (d,). Received shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return array


def _as_covariance(value, name, d):
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (d, d):
        raise ValueError(f"`{name}` must have shape ({d}, {d}) to match the mean. Received shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return array
