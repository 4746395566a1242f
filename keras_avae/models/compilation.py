"""How the models compile: an optimizer only, and XLA on where it makes a CPU step faster.

`Compilation` is a mixin of `VAE` (and so of every model): its `compile` refuses a Keras loss or
metric (the models report their own terms) and resolves `jit_compile="auto"` per model
(`resolve_jit_compile`), runs `DEFAULT_STEPS_PER_EXECUTION` training steps per call of the step
function unless told otherwise; a loaded model is compiled again as it was saved (`compile_from_config`).
"""

import math
import warnings

import keras
import numpy as np
import tensorflow as tf

CONVOLUTION_LAYERS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)
"""The layers that make `compile(jit_compile="auto")` leave XLA off on a CPU-only machine: there an
XLA-compiled conv step is slower than a graph step, while an MLP step is faster with XLA
(benchmarks/train_step.py, `fit` against `fit_graph` and `hand_xla`; see the speed page)."""


def sublayers(network):
    """`network` and every layer inside it, at any depth.

    Keras has no public API for this: `Model.layers` lists one level of a Functional or
    Sequential model, and a custom `Layer`'s sub-layers are listed nowhere. So this calls
    the private `Layer._flatten_layers` (Keras 3.15, keras/src/layers/layer.py); the tests
    (tests/models/test_vae.py) check that it still walks nested models and custom layers.
    """
    return list(network._flatten_layers(include_self=True))


def has_convolution(network):
    """Whether `network` (a Keras layer or model) holds a `CONVOLUTION_LAYERS` layer at any depth."""
    if not isinstance(network, keras.layers.Layer):
        return False
    return any(isinstance(layer, CONVOLUTION_LAYERS) for layer in sublayers(network))


def supports_xla(model):
    """Whether every layer of `model` `supports_jit`, the layers' part of Keras' own test.

    Keras' whole test (`model_supports_jit`, keras/src/trainers/trainer.py) is not exported; its
    other part (XLA off under `tf.config.experimental.enable_op_determinism()`, whose state TF
    does not export either) runs in Keras' public `jit_compile` setter, which `compile` goes through.
    """
    return all(getattr(layer, "supports_jit", True) for layer in sublayers(model))


DEFAULT_STEPS_PER_EXECUTION = 10
"""The `steps_per_execution` of `compile` when none is passed: training steps run per call of the
step function, inside one `tf.function` loop. Keras' `fit` spends a fixed Python and callback cost
per call, which a step of an MLP-sized model on a CPU does not amortise; ten steps per call recover
most of it (benchmarks/train_step.py, `fit_xla_spe`; see the speed page), while the progress bar
and per-batch callbacks still hear from `fit` every ten steps. Per-epoch behaviour (`History`,
`BackupAndRestore`, epoch callbacks, the last partial execution of an epoch) is unchanged. Under a
`tf.distribute` strategy the default is 1: Keras 3.15's multi-step loop fails under
`MirroredStrategy` with TensorFlow 2.21 ("You must feed a value for placeholder tensor
'while/cond/Placeholder'"), even for a plain `keras.Sequential`."""


class Compilation:
    """`compile` with an optimizer only, and `jit_compile="auto"` resolved per model; a mixin of `keras.Model`.

    The model class sets `OBJECTIVE` and `term_names` (for messages) and `encoder` / `decoder`.
    """

    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        jit_compile="auto",
        steps_per_execution=None,
        **kwargs,
    ):
        """`keras.Model.compile` with an optimizer; `loss` and `metrics` are refused.

        The model maximises its own objective (`OBJECTIVE`) and reports its terms
        (`term_names`) through its own trackers, so a Keras loss or metric would be
        ignored; passing one raises a `ValueError` instead.

        `jit_compile="auto"` (the default) is resolved per model (`resolve_jit_compile`):
        on a CPU-only machine, where Keras' own "auto" always turns XLA off, XLA is on
        unless the encoder or decoder holds a convolution layer (`CONVOLUTION_LAYERS`);
        XLA makes an MLP step faster on a CPU and a conv step slower. With an
        accelerator, a `tf.distribute` strategy or `run_eagerly=True`, "auto" is left
        to Keras. An explicit `jit_compile=True` or `False` is kept. `model.jit_compile`
        reports the resolved value; a saved model keeps the request (`"auto"` or the
        explicit value), so it is resolved again where it is loaded.

        `steps_per_execution=None` (the default) runs `DEFAULT_STEPS_PER_EXECUTION` steps
        per call of the step function (one under a `tf.distribute` strategy, `default_steps_per_execution`): every step of every epoch still runs (an epoch
        whose step count is not a multiple ends with a shorter call), `History`,
        epoch callbacks and `BackupAndRestore` still act per epoch, but per-batch
        callbacks (`on_train_batch_begin`/`end`) see only every N-th batch and the
        progress bar advances N steps at a time. When `fit` is given `steps_per_epoch`
        (or `validation_steps`, or `evaluate`/`predict` `steps`) that is not a multiple
        of N, the default becomes their greatest common divisor with N for that call,
        because Keras would otherwise run whole executions past the requested count on
        data that repeats. Pass `steps_per_execution=1` for a call per step, or any
        value, which is kept as given (Keras' behaviour); a saved model keeps the
        request (None or the value).
        """
        given = {
            "loss": loss,
            "loss_weights": loss_weights,
            "metrics": metrics,
            "weighted_metrics": weighted_metrics,
        }
        for name, value in given.items():
            if value is None or (isinstance(value, (list, tuple, dict)) and not value):
                continue
            raise ValueError(
                f"`{name}` is not used: {type(self).__name__} maximises its own objective "
                f"({self.OBJECTIVE}) and reports its terms ({', '.join(self.term_names)}) with its "
                f"own trackers. Compile with an optimizer only, e.g. model.compile(optimizer='adam'). "
                f"Received: {name}={value!r}"
            )
        if isinstance(jit_compile, np.bool_):
            jit_compile = bool(jit_compile)
        if not (jit_compile == "auto" or isinstance(jit_compile, bool)):
            raise ValueError(f"`jit_compile` must be True, False or 'auto'. Received: jit_compile={jit_compile!r}")
        default_steps = steps_per_execution is None
        if default_steps:
            steps_per_execution = self.default_steps_per_execution()
        resolved = self.resolve_jit_compile(jit_compile, run_eagerly=kwargs.get("run_eagerly", False))
        with warnings.catch_warnings():
            if jit_compile == "auto":  # where Keras' setter turns XLA off, it does so for the user's "auto"
                warnings.filterwarnings("ignore", message="Model doesn't support `jit_compile=True`")
            super().compile(
                optimizer=optimizer, jit_compile=resolved, steps_per_execution=steps_per_execution, **kwargs
            )
        self._jit_compile_request = jit_compile
        self._steps_per_execution_by_default = default_steps

    def get_compile_config(self):
        """Keras' compile config with the `jit_compile` and `steps_per_execution` requested, resolved anew on loading."""
        config = super().get_compile_config()
        if config and hasattr(self, "_jit_compile_request"):
            config["jit_compile"] = self._jit_compile_request
        if config and getattr(self, "_steps_per_execution_by_default", False):
            config["steps_per_execution"] = None
        return config

    def _steps_per_execution_for(self, *step_counts):
        """Sets the default `steps_per_execution` for a call given these step counts (None: not given).

        With the default (`compile` got no `steps_per_execution`), the value becomes the
        greatest common divisor of `DEFAULT_STEPS_PER_EXECUTION` and the counts, so no
        execution crosses the end of an epoch: Keras runs a whole execution on data that
        still has batches (a dataset that repeats), past `steps_per_epoch`. The step
        functions are traced anew when the value changes. An explicit value is left as it is.
        """
        if not getattr(self, "_steps_per_execution_by_default", False):
            return
        counts = [
            int(count)
            for count in step_counts
            if isinstance(count, (int, np.integer)) and not isinstance(count, bool) and count > 0
        ]
        value = math.gcd(self.default_steps_per_execution(), *counts)
        if value != self.steps_per_execution:
            self.steps_per_execution = value
            self.train_function = self.test_function = self.predict_function = None

    def default_steps_per_execution(self):
        """What `compile` runs per execution when not told: `DEFAULT_STEPS_PER_EXECUTION`, or 1 under a strategy."""
        return 1 if self._distributed() else DEFAULT_STEPS_PER_EXECUTION

    def _distributed(self):
        """Whether a `tf.distribute` strategy holds the model: one it was made under, or one compiling it now."""
        # `distribute_strategy` is the current strategy for a model made outside any scope.
        return tf.distribute.has_strategy() or self.distribute_strategy is not tf.distribute.get_strategy()

    def resolve_jit_compile(self, jit_compile="auto", run_eagerly=False):
        """What `compile(jit_compile=...)` passes on to Keras: True, False, or "auto" for Keras to resolve.

        An explicit True or False is returned as it is. "auto" stays "auto" (Keras'
        rule) with `run_eagerly`, with a `tf.distribute` strategy, or when a device
        other than the CPU is present (`tf.config.list_physical_devices()`: a GPU, a
        TPU). On a CPU-only machine it is True when the networks hold no convolution
        layer (`has_convolution`) and XLA supports all their layers (`supports_xla`), else False.
        """
        if jit_compile != "auto" or run_eagerly or self._distributed():
            return jit_compile
        if any(device.device_type != "CPU" for device in tf.config.list_physical_devices()):
            return "auto"
        if has_convolution(self.encoder) or has_convolution(self.decoder):
            return False
        return supports_xla(self)

    def compile_from_config(self, config):
        """Compiles a loaded model as it was saved, as `keras.Model.compile_from_config` does.

        Keras skips that step for a model whose `compile` is overridden, as this one is.
        """
        self.compile(**keras.saving.deserialize_keras_object(config))
        self._build_optimizer()

    def _build_optimizer(self):
        """Creates the optimizer's variables of a built model, before a step is traced.

        A `tf.function` whose first trace creates variables is traced a second time
        without them, so a first `fit` that left the optimizer to its step would trace
        (and, under XLA, compile) that step twice.
        """
        if self.built and self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope(), tf.name_scope(self.optimizer.name):
                self.optimizer.build(self.trainable_variables)
