"""Self-consistency of the encoder-decoder pair during training, as a Keras callback.

Logs the numbers of `keras_avae.evaluation.self_consistency` (does the model
encode its own samples back to where they came from?) into each evaluated
epoch's `logs`, so `History`, `CSVLogger` and `TensorBoard` record them.

Example:
    callback = SelfConsistencyCallback(n=500, every_n_epochs=5, x=x_test[:2000])
    history = avae.fit(x_train, epochs=50, callbacks=[callback, keras.callbacks.CSVLogger("log.csv")])
    history.history["sc_z_error_active"]
"""

import os

from keras_avae import figures
from keras_avae.callbacks.periodic import PeriodicEvaluation
from keras_avae.evaluation.self_consistency import (
    ACTIVE_THRESHOLD,
    DEFAULT_BATCH_SIZE,
    DEFAULT_SAMPLES,
    DEFAULT_STEPS,
    VARIANCES_REASON,
    _check_int,
    self_consistency,
)
from keras_avae.validation import check_model_inputs, check_non_negative, check_seed

CHAIN_FIGURE_IMAGES = 8
"""Start images of the encode-decode chain figure written when `figure_dir` is set."""

LOG_PREFIX = "sc_"
"""Prefix of the log keys, e.g. `sc_z_error`: letters, digits and underscores only, as
`CSVLogger` columns and `TensorBoard` tags take them."""


class SelfConsistencyCallback(PeriodicEvaluation):
    """Writes `self_consistency(self.model, ...)` to `logs` under `sc_<key>`.

    At the end of every `every_n_epochs`-th epoch and of the last one, it
    evaluates the model being trained and adds every key of
    `keras_avae.evaluation.self_consistency.self_consistency` to the epoch's
    logs with the prefix `sc_` (`sc_z_error`, `sc_z_error_active`,
    `sc_x_drift_3`, ...), and appends `{"epoch", "results", "seconds"}` to
    `self.history` (the schedule of `PeriodicEvaluation`). Every evaluation
    uses the same `seed`, hence the same latent samples, so epochs are
    compared on equal terms.

    Put it before `CSVLogger` and `TensorBoard` in the callbacks list: Keras
    calls them in order.

    Args:
        n: latent samples per evaluation, >= 2.
        steps: encode-decode chain length, >= 1.
        every_n_epochs: evaluate after every n-th epoch (and after the last).
        active_threshold: Var[f^mu(x)] above which a latent dimension is active.
        x: optional real data for the active-dimension variances.
        batch_size: samples per encoder or decoder call.
        seed: seed of the latent samples and observation noise.
        fill_missing_epochs: log NaN under every key in epochs that are not evaluated.
        verbose: 1 prints one line per evaluation, 0 is silent.
        figure_dir: if set (with `x`), each evaluation also saves the
            encode-decode chains of the first `CHAIN_FIGURE_IMAGES` images of `x`
            (Figure 1) as `figure_dir/chains_epoch_<epoch>.png`.

    Example:
        model.fit(x, epochs=10, callbacks=[SelfConsistencyCallback(n=256)])
    """

    def __init__(
        self,
        n=DEFAULT_SAMPLES,
        steps=DEFAULT_STEPS,
        every_n_epochs=1,
        active_threshold=ACTIVE_THRESHOLD,
        x=None,
        batch_size=DEFAULT_BATCH_SIZE,
        seed=0,
        fill_missing_epochs=True,
        verbose=0,
        figure_dir=None,
    ):
        super().__init__(every_n_epochs, fill_missing_epochs, verbose)
        self.n = _check_int(n, "n", 2)
        self.steps = _check_int(steps, "steps", 1)
        self.active_threshold = check_non_negative(active_threshold, "active_threshold")
        if x is not None:  # its shape and range are checked against the model by each evaluation
            x = check_model_inputs(x, None, min_examples=2, reason=VARIANCES_REASON)
        self.x = x
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.seed = check_seed(seed)
        if figure_dir is not None and x is None:
            raise ValueError("`figure_dir` needs `x`: the chains start from real images.")
        self.figure_dir = None if figure_dir is None else os.fspath(figure_dir)

    name = "Self-consistency"

    @property
    def log_keys(self):
        """Every key this callback writes to `logs`, in order."""
        keys = [
            "z_error",
            "z_error_active",
            "z_error_noisy",
            "z_error_noisy_active",
            "x_error",
            "active_dims",
        ]
        for t in range(1, self.steps + 1):
            keys += [f"z_drift_{t}", f"z_drift_active_{t}", f"x_drift_{t}"]
        return [LOG_PREFIX + key for key in keys]

    def evaluate(self, model):
        """`self_consistency` of `model` with this callback's settings."""
        return self_consistency(
            model,
            n=self.n,
            steps=self.steps,
            active_threshold=self.active_threshold,
            x=self.x,
            batch_size=self.batch_size,
            seed=self.seed,
        )

    def get_config(self):
        """The settings (not the data)."""
        return {
            "n": self.n,
            "steps": self.steps,
            "every_n_epochs": self.every_n_epochs,
            "active_threshold": self.active_threshold,
            "num_x": None if self.x is None else int(len(self.x)),
            "batch_size": self.batch_size,
            "seed": self.seed,
            "figure_dir": self.figure_dir,
        }

    def log_values(self, results):
        return {LOG_PREFIX + key: value for key, value in results.items()}

    def summary(self, results):
        return (
            f"z_error {results['z_error']:.4g}, active {results['z_error_active']:.4g} over "
            f"{results['active_dims']:g} dims, x_error {results['x_error']:.4g}"
        )

    def after_evaluation(self, record):
        if self.figure_dir is not None:
            record["figure"] = figures.encode_decode_chains(
                self.model,
                self.x[:CHAIN_FIGURE_IMAGES],
                steps=self.steps,
                path=os.path.join(self.figure_dir, f"chains_epoch_{record['epoch'] + 1:03d}.png"),
            )
