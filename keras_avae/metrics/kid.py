"""Kernel Inception Distance (Binkowski et al., 2018): an unbiased alternative to FID.

KID is the squared maximum mean discrepancy (MMD^2) between the features of
real and generated images under the cubic polynomial kernel

    k(x, y) = (x . y / d + 1)^3,        d = number of features,

estimated without bias (the U-statistic: the diagonal terms k(x_i, x_i) are
left out of the within-set averages) and averaged over random subsets, as in
the authors' `polynomial_mmd_averages`. Unlike FID, its expectation does not
depend on the sample size, and it can be (slightly) negative when the two
distributions are equal.

Features come from the same extractor as FID (`keras_avae.metrics.fid.ImageFeatures`).
"""

import keras
import numpy as np

from keras_avae.metrics.fid import (
    DEFAULT_BATCH_SIZE,
    ImageFeatures,
    extractor_config,
    from_extractor_config,
)
from keras_avae.validation import (
    check_bool,
    check_features,
    check_integer,
    check_positive_int,
    check_seed,
    warn_if_few_examples,
)

DEFAULT_SUBSETS = 100
"""Random subsets KID is averaged over (Binkowski et al.'s default)."""

DEFAULT_SUBSET_SIZE = 1000
"""Examples drawn from each set per subset (Binkowski et al.'s default)."""


def polynomial_kernel(x, y):
    """The cubic kernel k(x, y) = (x . y / d + 1)^3 between rows of `(m, d)` and `(n, d)` arrays.

    Returns:
        float64 `(m, n)` kernel matrix.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def polynomial_mmd2(x, y, unbiased=True):
    """MMD^2 between two samples under the cubic polynomial kernel.

    Unbiased (U-statistic, Binkowski et al. 2018 eq. 3 with the cross term
    over all pairs):

        sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
        - 2 sum_{i, j} k(x_i, y_j) / (m n)

    Biased (V-statistic, `unbiased=False`): the plain means of the three kernel
    matrices, diagonals included; it is > 0 even for two samples of one
    distribution.

    Args:
        x: `(m, d)` features of the first sample, m >= 2.
        y: `(n, d)` features of the second sample, n >= 2.
        unbiased: which estimator.

    Returns:
        MMD^2 estimate, a Python float.

    Example:
        mmd2 = polynomial_mmd2(real_features, generated_features)
    """
    x = check_features(x, "x", min_examples=2)
    y = check_features(y, "y", min_examples=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"`x` and `y` must have the same number of features. Received {x.shape[1]} and {y.shape[1]}"
        )
    unbiased = check_bool(unbiased, "unbiased")
    m, n = len(x), len(y)
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    if not unbiased:
        return float(k_xx.mean() + k_yy.mean() - 2.0 * k_xy.mean())
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_inception_distance(
    real_features, generated_features, subsets=DEFAULT_SUBSETS, subset_size=DEFAULT_SUBSET_SIZE, seed=0
):
    """Unbiased MMD^2 averaged over random subsets: KID's mean and standard deviation.

    For each of `subsets` rounds, with `rng = np.random.default_rng(seed)`,
    draws `rng.choice(len(real_features), subset_size, replace=False)` and then
    the same from the generated features, and computes `polynomial_mmd2` of
    the two subsets.

    Args:
        real_features: `(N, d)` features of real images, N >= `subset_size`.
        generated_features: `(M, d)` features of generated images, M >= `subset_size`.
        subsets: number of rounds >= 1.
        subset_size: examples drawn from each set per round, >= 2.
        seed: int seeding the subset draws.

    Returns:
        `(mean, std)` over the rounds, Python floats (std with divisor `subsets`).

    Warns (`keras_avae.validation.SmallSampleWarning`) when a set has fewer
    examples than feature dimensions.

    Example:
        kid, kid_std = kernel_inception_distance(real, fake, subsets=100, subset_size=1000)
    """
    real_features = check_features(real_features, "real_features", min_examples=2)
    generated_features = check_features(generated_features, "generated_features", min_examples=2)
    subsets = check_positive_int(subsets, "subsets")
    subset_size = _check_subset_size(subset_size)
    seed = check_seed(seed)
    smallest = min(len(real_features), len(generated_features))
    if subset_size > smallest:
        raise ValueError(
            f"`subset_size` must be at most the number of examples of each set "
            f"({len(real_features)} real, {len(generated_features)} generated). "
            f"Received: subset_size={subset_size}"
        )
    warn_if_few_examples(smallest, real_features.shape[1], "KID compares the features of the real and generated images")
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        real = real_features[rng.choice(len(real_features), subset_size, replace=False)]
        generated = generated_features[rng.choice(len(generated_features), subset_size, replace=False)]
        values[i] = polynomial_mmd2(real, generated)
    return float(values.mean()), float(values.std())


@keras.saving.register_keras_serializable(package="keras_avae")
class KID(keras.metrics.Metric):
    """Kernel Inception Distance between real and generated images, as a Keras metric.

    `update_state(real_images, generated_images)` extracts features in batches
    and stores them, because the kernel needs every pair: memory grows as
    4 * d bytes per image and set (float32), 8 KiB per image for InceptionV3's
    d = 2048, so 82 MB per set for 10,000 images. `result()` returns the mean
    of `kernel_inception_distance` over `subsets` random subsets of
    `subset_size` images from each set (seeded, so repeated calls agree);
    `result_and_std()` returns its standard deviation over subsets too. Each
    subset costs O(subset_size^2 d) operations.

    Args:
        feature_extractor: None for InceptionV3 pool3, or a Keras model mapping
            images to `(batch, features)` (see `keras_avae.metrics.fid.ImageFeatures`).
        weights: InceptionV3 weights: a local weights file path, or None /
            "imagenet" (downloaded by Keras where a network exists).
        subsets: random subsets averaged over.
        subset_size: images drawn from each set per subset; both sets need at
            least this many when `result()` is called.
        seed: int seeding the subset draws.
        data_range: `(low, high)` of the input pixels; (0, 1) for this library.
        batch_size: images per extractor call.
        name: metric name.

    Attributes:
        extractor_name: which feature extractor, to state with every KID reported.

    Example:
        kid = KID(weights=path, subset_size=100)
        kid.update_state(x_test[:1000], vae.sample(1000))
        mean, std = kid.result_and_std()
    """

    def __init__(
        self,
        feature_extractor=None,
        weights=None,
        subsets=DEFAULT_SUBSETS,
        subset_size=DEFAULT_SUBSET_SIZE,
        seed=0,
        data_range=(0.0, 1.0),
        batch_size=DEFAULT_BATCH_SIZE,
        name="kid",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.subsets = check_positive_int(subsets, "subsets")
        self.subset_size = _check_subset_size(subset_size)
        self.seed = check_seed(seed)
        self.features = ImageFeatures(feature_extractor, weights, data_range, batch_size)
        self.feature_extractor = feature_extractor
        self.weights = weights
        self.data_range = self.features.data_range
        self.batch_size = self.features.batch_size
        self._stored = {"real": [], "generated": []}

    @property
    def extractor_name(self):
        """Which feature extractor this KID uses."""
        return self.features.name

    def update_state(self, real_images=None, generated_images=None, sample_weight=None):
        """Extracts and stores the features of either or both sets of images.

        Both sets are checked (the extractor's input shape, finite, in
        `data_range`) and extracted before either is stored, so a call that
        raises leaves the metric as it was.
        """
        # Both sets are checked and extracted before anything is stored.
        given = self.features.check_sets("KID", real_images, generated_images, sample_weight)
        features = {which: self.features(images, f"{which}_images", checked=True) for which, images in given.items()}
        for which, values in features.items():
            self._stored[which].append(values)

    def stored_features(self, which):
        """The float32 `(N, d)` features stored for "real" or "generated" images."""
        if which not in self._stored:
            raise ValueError(f"`which` must be 'real' or 'generated'. Received: which={which!r}")
        parts = self._stored[which]
        if not parts:
            return np.zeros((0, self.features.num_features), np.float32)
        if len(parts) > 1:
            self._stored[which] = parts = [np.concatenate(parts)]
        return parts[0]

    def result_and_std(self):
        """`(mean, std)` of the unbiased MMD^2 over the subsets, Python floats."""
        return kernel_inception_distance(
            self.stored_features("real"),
            self.stored_features("generated"),
            subsets=self.subsets,
            subset_size=self.subset_size,
            seed=self.seed,
        )

    def result(self):
        """The KID (mean over subsets) of the images seen since `reset_state`, a Python float."""
        return self.result_and_std()[0]

    def reset_state(self):
        self._stored = {"real": [], "generated": []}

    def get_config(self):
        return {
            **super().get_config(),
            **extractor_config(self),
            "subsets": self.subsets,
            "subset_size": self.subset_size,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return from_extractor_config(cls, config)


def _check_subset_size(subset_size):
    return check_integer(subset_size, "subset_size", minimum=2, reason=" (the unbiased estimator needs pairs)")


