"""Linear probes on a frozen representation, step ii of the evaluation protocol (Section 4).

The encoder is frozen and its mean mapping f^mu is the representation; one
linear classifier per task is trained on it normally, without attacks. Each
probe is a `keras.Sequential([Input, Dense(num_classes)])` that maps raw
f^mu(x) to logits, so it can later be stacked on the encoder
(`probe(model.encode_mean(x))`) for adversarial evaluation (step iii).

The probe is trained as the paper trains it, "normally": Adam on the raw
features from zero weights, cross-entropy without regularisation. No whitening
or standardisation: rescaling the features would inflate the weights on
low-variance (collapsed) latent directions and make the stacked
encoder + probe needlessly fragile, which would measure the probe, not the
representation.

Example:
    train_data = keras_avae.datasets.color_mnist("train", path=path, limit=10000)
    test_data = keras_avae.datasets.color_mnist("test", path=path, limit=2000)
    accuracies = probe_accuracies(model, train_data, test_data)  # {"digit": ..., "color": ...}
"""

import numbers

import keras
import numpy as np
import tensorflow as tf

from keras_avae.validation import check_positive_int, check_seed

ENCODE_BATCH_SIZE = 256
"""Images per `encode_mean` call in `encode_means`."""

PROBE_EPOCHS = 30
"""Passes over the training features when fitting a probe."""

PROBE_BATCH_SIZE = 128
"""Features per Adam step when fitting a probe."""

PROBE_LEARNING_RATE = 1e-2
"""Adam learning rate of the probe, on raw features."""


def encode_means(model, x, batch_size=ENCODE_BATCH_SIZE):
    """The representation f^mu(x) of every input, computed in batches.

    Args:
        model: a keras_avae model (anything with `encode_mean`).
        x: `(N, *example_shape)` array of inputs, N >= 1.
        batch_size: positive int, inputs per `encode_mean` call.

    Returns:
        float32 NumPy array `(N, latent_dim)`.

    Example:
        features = encode_means(vae, x_test)
    """
    if not hasattr(model, "encode_mean"):
        raise ValueError(
            "`model` must have an `encode_mean` method (a keras_avae VAE, AVAE, ...). "
            f"Received: {type(model).__name__}"
        )
    batch_size = check_positive_int(batch_size, "batch_size")
    if not hasattr(x, "shape") or len(x.shape) < 1:
        raise ValueError(f"`x` must be an array of inputs. Received: {type(x).__name__}")
    if len(x) == 0:
        raise ValueError("`x` is empty: there are no inputs to encode.")
    batches = [
        keras.ops.convert_to_numpy(model.encode_mean(x[start : start + batch_size]))
        for start in range(0, len(x), batch_size)
    ]
    return np.concatenate(batches).astype(np.float32, copy=False)


def train_linear_probe(
    features,
    labels,
    num_classes=None,
    epochs=PROBE_EPOCHS,
    batch_size=PROBE_BATCH_SIZE,
    learning_rate=PROBE_LEARNING_RATE,
    seed=0,
):
    """Fits a linear softmax classifier on fixed features, without attacks.

    Minimises sparse categorical cross-entropy from logits, without
    regularisation, with Adam on the raw features, starting from zero weights.

    Args:
        features: `(N, latent_dim)` finite array, e.g. from `encode_means`.
        labels: `(N,)` array of non-negative integer class ids.
        num_classes: number of logits; defaults to `max(labels) + 1`.
        epochs: positive int, passes over the data.
        batch_size: positive int, examples per Adam step.
        learning_rate: positive float, Adam's learning rate.
        seed: int seeding the shuffling order.

    Returns:
        `keras.Sequential([Input((latent_dim,)), Dense(num_classes)])` mapping
        features to logits.

    Example:
        probe = train_linear_probe(encode_means(vae, x_train), labels["digit"])
        predictions = probe.predict(encode_means(vae, x_test)).argmax(-1)
    """
    features = _check_features(features, "features")
    labels = check_labels(labels, "labels", len(features), "features")
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    num_classes = check_positive_int(num_classes, "num_classes")
    if labels.max() >= num_classes:
        raise ValueError(
            f"`labels` go up to {labels.max()}, beyond `num_classes`={num_classes} "
            f"(labels must lie in 0..{num_classes - 1})."
        )
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not isinstance(learning_rate, numbers.Real) or not learning_rate > 0:
        raise ValueError(
            f"`learning_rate` must be a number > 0. Received: learning_rate={learning_rate!r}"
        )
    seed = check_seed(seed)

    probe = _linear_model(features.shape[1], num_classes)
    probe.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(learning_rate)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    examples = (
        tf.data.Dataset.from_tensor_slices((features, labels))
        .shuffle(len(labels), seed=int(seed), reshuffle_each_iteration=True)
        .batch(batch_size)
    )
    probe.optimizer.build(probe.trainable_variables)  # before the step's trace: else it traces twice
    probe.fit(examples, epochs=epochs, shuffle=False, verbose=0)  # shuffled above
    return probe


def train_probes(
    model,
    train_data,
    num_classes=None,
    *,
    epochs=PROBE_EPOCHS,
    batch_size=PROBE_BATCH_SIZE,
    learning_rate=PROBE_LEARNING_RATE,
    seed=0,
):
    """Fits one linear probe per task on the frozen means f^mu of the training inputs.

    Args:
        model: a keras_avae model (anything with `encode_mean`); not modified.
        train_data: `(x, labels)`, `labels` a dict task name -> `(N,)` integer
            array, as `keras_avae.datasets.color_mnist` returns.
        num_classes: optional dict task name -> number of classes; a task
            left out gets `max(labels) + 1`.
        epochs, batch_size, learning_rate, seed: each probe's training
            (`train_linear_probe`).

    Returns:
        Dict task name -> probe (features -> logits), in `labels` order.

    Example:
        probes = train_probes(avae, color_mnist("train", limit=10000))
        digit_logits = probes["digit"](avae.encode_mean(x))
    """
    x, labels = check_labelled_data(train_data, "train_data")
    num_classes = dict(num_classes or {})
    unknown = sorted(set(num_classes) - set(labels))
    if unknown:
        raise ValueError(
            f"`num_classes` names tasks {unknown} that `train_data` has no labels for; "
            f"its tasks are {sorted(labels)}."
        )
    features = encode_means(model, x)
    return {
        task: train_linear_probe(
            features, task_labels, num_classes=num_classes.get(task), epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, seed=seed,
        )
        for task, task_labels in labels.items()
    }


def evaluate_probes(model, probes, test_data):
    """Test accuracy of each probe on the frozen means f^mu of the test inputs.

    Args:
        model: the keras_avae model the probes were trained on.
        probes: dict task name -> probe, as `train_probes` returns.
        test_data: `(x, labels)` with labels for every task in `probes`;
            further tasks are ignored.

    Returns:
        Dict task name -> accuracy in [0, 1] (a Python float), in `probes` order.

    Example:
        accuracies = evaluate_probes(avae, probes, color_mnist("test"))
    """
    if not isinstance(probes, dict) or not probes:
        raise ValueError(
            "`probes` must be a non-empty dict task name -> probe. "
            f"Received: {probes!r:.80}"
        )
    x, labels = check_labelled_data(test_data, "test_data")
    check_tasks_present(probes, labels, "test_data")
    features = encode_means(model, x)
    return {task: probe_accuracy(probe, features, labels[task]) for task, probe in probes.items()}


def probe_accuracy(probe, features, labels):
    """Fraction of examples whose argmax logit is the label.

    Args:
        probe: a model mapping `(N, latent_dim)` features to `(N, num_classes)` logits.
        features: `(N, latent_dim)` finite array.
        labels: `(N,)` array of non-negative integer class ids; a label the
            probe has no logit for counts as wrong.

    Returns:
        Accuracy in [0, 1], a Python float.
    """
    features = _check_features(features, "features")
    labels = check_labels(labels, "labels", len(features), "features")
    logits = keras.ops.convert_to_numpy(probe(features, training=False))
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def probe_accuracies(
    model,
    train_data,
    test_data,
    *,
    epochs=PROBE_EPOCHS,
    batch_size=PROBE_BATCH_SIZE,
    learning_rate=PROBE_LEARNING_RATE,
    seed=0,
):
    """Protocol step ii: linear-probe test accuracy of f^mu, one probe per task.

    Trains a probe per task of `train_data` on the frozen means of its inputs
    and scores it on `test_data`. Each probe has `max(label) + 1` logits over
    both splits, so a class seen only at test time gets a logit too. To keep
    the probes (e.g. for attacks), call `train_probes` and `evaluate_probes`.

    Args:
        model: a keras_avae model (anything with `encode_mean`); not modified.
        train_data: `(x, labels)`, `labels` a dict task name -> `(N,)` integer array.
        test_data: `(x, labels)` with labels for every task of `train_data`.
        epochs, batch_size, learning_rate, seed: each probe's training
            (`train_linear_probe`); `num_classes` is set per task from the labels
            (`train_probes` chooses it).

    Returns:
        Dict task name -> test accuracy in [0, 1].

    Example:
        accuracies = probe_accuracies(vae, color_mnist("train"), color_mnist("test"))
    """
    _, train_labels = check_labelled_data(train_data, "train_data")
    _, test_labels = check_labelled_data(test_data, "test_data")
    check_tasks_present(train_labels, test_labels, "test_data")
    num_classes = {
        task: int(max(train_labels[task].max(), test_labels[task].max())) + 1
        for task in train_labels
    }
    probes = train_probes(
        model, train_data, num_classes=num_classes, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, seed=seed,
    )
    return evaluate_probes(model, probes, test_data)


# ------------------------------------------------------------------ helpers


def _linear_model(latent_dim, num_classes):
    """`Sequential([Input, Dense])` with zero initial weights (the problem is convex)."""
    return keras.Sequential(
        [
            keras.Input((latent_dim,), name="z_mean"),
            keras.layers.Dense(
                num_classes,
                kernel_initializer="zeros",
                bias_initializer="zeros",
                name="logits",
            ),
        ],
        name="linear_probe",
    )


def _check_features(features, name):
    """Returns `features` as a float32 `(N, d)` array with N, d >= 1 and finite values."""
    features = np.asarray(features)
    if not np.issubdtype(features.dtype, np.number) or np.issubdtype(features.dtype, np.complexfloating):
        raise ValueError(f"`{name}` must be real numbers. Received dtype {features.dtype}")
    if features.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (num_examples, latent_dim). Received shape {features.shape}"
        )
    if features.shape[0] == 0:
        raise ValueError(f"`{name}` is empty: a probe needs at least one example.")
    if features.shape[1] == 0:
        raise ValueError(f"`{name}` has no feature dimensions. Received shape {features.shape}")
    features = features.astype(np.float32, copy=False)
    if not np.isfinite(features).all():
        bad = features.size - int(np.count_nonzero(np.isfinite(features)))
        raise ValueError(f"`{name}` contains {bad} NaN or infinite value(s).")
    return features


def check_labels(labels, name, expected_length, length_source):
    """Returns `labels` as an int64 `(N,)` array of non-negative class ids."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"`{name}` must be integer class ids. Received dtype {labels.dtype}; "
            "cast class ids with `.astype(int)`."
        )
    if labels.ndim != 1:
        raise ValueError(f"`{name}` must have shape (num_examples,). Received shape {labels.shape}")
    if len(labels) != expected_length:
        raise ValueError(
            f"`{name}` has {len(labels)} labels but `{length_source}` has "
            f"{expected_length} examples; they must match."
        )
    if len(labels) and labels.min() < 0:
        raise ValueError(f"`{name}` must be non-negative class ids. Received minimum {labels.min()}")
    return labels.astype(np.int64, copy=False)


def check_labelled_data(data, name):
    """Checks an `(x, labels)` split; returns `x` and the labels dict of int64 arrays."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"`{name}` must be a pair (x, labels) with labels a dict task -> integer array. "
            f"Received: {type(data).__name__}"
        )
    x, labels = data
    if not hasattr(x, "shape") or len(x.shape) < 1:
        raise ValueError(f"`{name}` inputs must be an array. Received: {type(x).__name__}")
    if len(x) == 0:
        raise ValueError(f"`{name}` is empty: it has no inputs.")
    if not isinstance(labels, dict) or not labels:
        raise ValueError(
            f"`{name}` labels must be a non-empty dict task name -> integer array. "
            f"Received: {labels!r:.80}"
        )
    checked = {
        task: check_labels(task_labels, f"{name} labels[{task!r}]", len(x), f"{name} inputs")
        for task, task_labels in labels.items()
    }
    return x, checked


def check_tasks_present(tasks, labels, name):
    """Raises unless `labels` has every task of `tasks`."""
    missing = [task for task in tasks if task not in labels]
    if missing:
        raise ValueError(
            f"`{name}` has no labels for tasks {missing}; it has {sorted(labels)}."
        )
