"""Figures of Cemgil et al. (2020), drawn with matplotlib's Agg backend.

- `encode_decode_chains`: Figure 1, images encoded and decoded over and over,
  x_{t+1} = g(f^mu(x_t)); a drift shows an encoder and decoder that disagree.
- `accuracy_vs_rho`: Figure 5 (left), adversarial accuracy against the
  coupling strength rho.
- `accuracy_vs_epsilon`: Figure 5 (right), adversarial accuracy against the
  attack radius epsilon, one line per model.
- `learning_curve`, `learning_curves`: Figure 5 (middle), adversarial accuracy
  against training steps, of one model at each radius or of several at one.
- `reconstruction_grid`, `sample_grid`: test images next to g(f^mu(x)), and
  samples g(z), z ~ N(0, I).
- `adversarial_examples`: images next to their adversarial examples, with the
  classifier's decision in the titles.

Every function saves one PNG at `path` (creating missing folders) and returns
`path` as a string. Figures are built on `matplotlib.figure.Figure` with an
Agg canvas, never through `pyplot`, so nothing depends on the display or on
global figure state, and nothing is left open.

Accuracies are fractions in [0, 1], as `keras_avae.evaluation.robustness`
returns them (`results[task][epsilon]`), and are drawn in percent like the
paper's figures. Images are `(n, height, width, channels)` arrays with 1 or 3
channels (or `(n, height, width)`), with pixels in [0, 1]; pixels outside
are clipped for display.

Example:
    results = {"VAE": vae_results, "AVAE": avae_results}
    accuracy_vs_epsilon(results, "digit", "figures/digit_vs_epsilon.png")
    encode_decode_chains([vae, avae], x_test[:4], path="figures/chains.png",
                         titles=["VAE", "AVAE"])
"""

import math
import numbers
import os

import keras
import numpy as np

from keras_avae.validation import check_model, check_positive_int

DPI = 100
"""Resolution of every saved PNG, in dots per inch."""

IMAGE_INCHES = 0.9
"""Side, in inches, given to each image of an image figure."""

TITLE_INCHES = 0.5
"""Height, in inches, added to an image figure per block of images, for titles."""

MIN_PANEL_INCHES = 2.5
"""Least width, in inches, of a grid panel, so that its title fits."""

CURVE_FIGSIZE = (5.0, 3.75)
LEARNING_CURVE_FIGSIZE = (6.5, 4.5)
QUALITY_FIGSIZE = (13.0, 3.75)
"""(width, height) in inches of the accuracy plots."""

PADDING = 1
"""Pixels of background between the images of a mosaic."""

PAD_VALUE = 1.0
"""Value of the background between the images of a mosaic (white)."""

MAX_IMAGES = 256
"""Most images one mosaic may hold, so a large array is not drawn by mistake."""

MAX_ADVERSARIAL_EXAMPLES = 32
"""Most examples `adversarial_examples` draws (each gets two titled panels)."""

ADVERSARIAL_PAIRS_PER_ROW = 4
"""(original, adversarial) pairs per row of `adversarial_examples`."""

ADVERSARIAL_PANEL_INCHES = 1.2
"""Width, in inches, of each panel of `adversarial_examples` (image and its title)."""

CHAIN_STEPS = 8
"""Default number of encode-decode steps of `encode_decode_chains`."""

CORRECT_COLOR = "tab:green"
WRONG_COLOR = "tab:red"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

_CHANNELS = (1, 3)


# ---------------------------------------------------------------- Figure 1


def encode_decode_chain(model, x, steps=CHAIN_STEPS):
    """Iterate x_{t+1} = g(f^mu(x_t)) (`model.reconstruct`) from x_0 = x.

    Args:
        model: a `keras_avae` model (anything with `reconstruct`).
        x: `(n, height, width, channels)` start images.
        steps: positive int, the number of encode-decode steps.

    Returns:
        float32 `(steps + 1, n, height, width, channels)`: `x_0, ..., x_steps`.

    Example:
        chain = encode_decode_chain(vae, x_test[:4], steps=8)
    """
    check_model(model, ("reconstruct",), name="model")
    steps = check_positive_int(steps, "steps")
    x = _as_images(x, "x", allow_grey=False)
    chain = [x]
    for _ in range(steps):
        chain.append(_to_numpy(model.reconstruct(chain[-1])))
    return np.stack(chain)


def encode_decode_chains(
    models, x, steps=CHAIN_STEPS, path="encode_decode_chains.png", titles=None
):
    """Figure 1: encode-decode chains of several models from the same images.

    For each model, a block with one row per start image; column t shows
    x_t, where x_0 = x and x_{t+1} = g(f^mu(x_t)). A consistent encoder and
    decoder keep each row close to its first image; a nominal VAE's rows drift.

    Args:
        models: a model, or a non-empty list or tuple of models, each with
            `reconstruct` and taking images shaped like `x`.
        x: `(n, height, width, channels)` start images in [0, 1].
        steps: positive int, the number of encode-decode steps.
        path: where to save the PNG.
        titles: optional list of block titles, one per model (default: each
            model's `name`).

    Returns:
        `path`, as a string.

    Example:
        encode_decode_chains([vae, avae], x_test[:3], steps=8,
                             path="chains.png", titles=["VAE", "AVAE"])
    """
    models = _as_list(models)
    if not models:
        raise ValueError("`models` must hold at least one model. Received: models=[]")
    for index, model in enumerate(models):
        check_model(model, ("reconstruct",), name=f"models[{index}]")
    titles = _check_titles(titles, models)
    x = _as_images(x, "x", allow_grey=False)
    steps = check_positive_int(steps, "steps")
    _check_count(len(x) * (steps + 1), "`x` and `steps`", "len(x) * (steps + 1)")

    chains = [encode_decode_chain(model, x, steps) for model in models]
    height, width = x.shape[1:3]
    mosaic_width = (steps + 1) * (width + PADDING) + PADDING
    mosaic_height = len(x) * (height + PADDING) + PADDING
    figure = _new_figure(
        (
            IMAGE_INCHES * (steps + 1) + TITLE_INCHES,
            len(models) * (IMAGE_INCHES * len(x) + TITLE_INCHES),
        )
    )
    axes = figure.subplots(len(models), 1, squeeze=False)[:, 0]
    for ax, chain, title in zip(axes, chains, titles):
        # chain is (steps + 1, n, ...): column t holds x_t of every row.
        rows = np.swapaxes(chain, 0, 1).reshape((-1,) + chain.shape[2:])
        _show(ax, _tile(rows, columns=steps + 1))
        ax.set_title(title)
        ax.set_xticks(
            [PADDING + (t + 0.5) * (width + PADDING) for t in range(steps + 1)],
            [f"$x_{{{t}}}$" for t in range(steps + 1)],
        )
        ax.tick_params(length=0)
        ax.set_xlim(-0.5, mosaic_width - 0.5)
        ax.set_ylim(mosaic_height - 0.5, -0.5)
    return _save(figure, path)


# ---------------------------------------------------------------- Figure 5


def accuracy_vs_epsilon(results_by_model, task, path):
    """Figure 5 (right): adversarial accuracy against the attack radius.

    Args:
        results_by_model: dict model name -> `{task: {epsilon: accuracy}}`,
            accuracies in [0, 1] (epsilon 0 is the clean accuracy).
        task: the task to draw (e.g. `"digit"`); every model must have it.
        path: where to save the PNG.

    Returns:
        `path`, as a string.

    Example:
        accuracy_vs_epsilon({"VAE": vae_results, "AVAE": avae_results},
                            "digit", "digit_vs_epsilon.png")
    """
    curves = {
        str(name): _accuracies(results, task, f"results_by_model[{name!r}]")
        for name, results in _check_results_dict(results_by_model, "results_by_model").items()
    }
    figure = _new_figure(CURVE_FIGSIZE)
    ax = figure.subplots()
    for index, (name, accuracies) in enumerate(curves.items()):
        epsilons = sorted(accuracies)
        ax.plot(
            epsilons,
            [100 * accuracies[e] for e in epsilons],
            marker=MARKERS[index % len(MARKERS)],
            label=name,
        )
    _style_accuracy_axes(ax, "attack radius $\\epsilon$", f"{task}: adversarial accuracy vs radius")
    return _save(figure, path)


def accuracy_vs_rho(results_by_rho, task, epsilon, path):
    """Figure 5 (left): adversarial accuracy against the coupling strength rho.

    Args:
        results_by_rho: dict rho -> `{task: {epsilon: accuracy}}`, one AVAE
            trained per rho, accuracies in [0, 1].
        task: the task to draw; every rho must have it.
        epsilon: the attack radius, or a list of radii for one line each;
            every rho must have been evaluated at each of them.
        path: where to save the PNG.

    Returns:
        `path`, as a string.

    Example:
        accuracy_vs_rho({0.9: r90, 0.95: r95, 0.975: r975}, "digit", 0.1,
                        "digit_vs_rho.png")
    """
    results_by_rho = _check_results_dict(results_by_rho, "results_by_rho")
    rhos = {}
    for rho, results in results_by_rho.items():
        value = _as_real(rho, "a key of `results_by_rho` (rho)")
        if not -1.0 <= value <= 1.0:
            raise ValueError(f"rho must be in [-1, 1]. Received: rho={rho!r}")
        rhos[value] = _accuracies(results, task, f"results_by_rho[{rho!r}]")
    epsilons = [epsilon] if isinstance(epsilon, (numbers.Real, str)) else list(epsilon)
    if not epsilons:
        raise ValueError(f"`epsilon` must be a radius or a non-empty list. Received: {epsilon!r}")
    epsilons = [_as_real(e, "`epsilon`") for e in epsilons]

    figure = _new_figure(CURVE_FIGSIZE)
    ax = figure.subplots()
    sorted_rhos = sorted(rhos)
    for index, radius in enumerate(epsilons):
        values = [
            100 * _lookup(rhos[rho], radius, f"results_by_rho[{rho!r}][{task!r}]")
            for rho in sorted_rhos
        ]
        ax.plot(
            sorted_rhos,
            values,
            marker=MARKERS[index % len(MARKERS)],
            label=f"$\\epsilon$ = {radius:g}",
        )
    _style_accuracy_axes(
        ax, "coupling strength $\\rho$", f"{task}: adversarial accuracy vs $\\rho$"
    )
    return _save(figure, path)


def learning_curve(points, task, path, final=None, paper=None, paper_steps=None, title=None):
    """Figure 5 (middle): adversarial accuracy against training steps, one line per radius.

    Args:
        points: the curve's evaluations in order, each a dict with `steps`, `attack` (its
            `attacks`, `attack_steps`, `restarts`) and `accuracy` `{task: {radius: accuracy}}`
            (radii as strings or numbers, accuracies in [0, 1]).
        task: the task to draw.
        path: where to save the PNG.
        final: the last checkpoint under the full evaluation (same layout), drawn as filled markers.
        paper: the paper's row (`accuracy` in the same layout), drawn as stars at `paper_steps`.
        paper_steps: where the paper's values are marked on the steps axis.
        title: the figure's title (default: the task).

    Returns:
        `path`, as a string.

    Example:
        learning_curve(document["points"], "digit", "digit.png", final=document["final"])
    """
    if not points:
        raise ValueError("`points` must hold at least one evaluation.")
    curves = [(int(point["steps"]), _accuracies(point["accuracy"], task, f"points[{index}]")) for index, point in enumerate(points)]
    radii = sorted(curves[0][1])
    figure = _new_figure(LEARNING_CURVE_FIGSIZE)
    ax = figure.subplots()
    for index, radius in enumerate(radii):
        color = f"C{index}"
        ax.plot(
            [steps for steps, _ in curves],
            [100 * _lookup(accuracies, radius, f"points ({task})") for _, accuracies in curves],
            marker=MARKERS[index % len(MARKERS)], color=color,
            label=f"$\\epsilon$ = {radius:g}" + ("" if index else f" ({attack_label(points[0]['attack'])})"),
        )
        if final is not None:
            ax.plot([int(final["steps"])], [100 * _lookup(_accuracies(final["accuracy"], task, "final"), radius, "final")],
                    marker=MARKERS[index % len(MARKERS)], markersize=10, color=color, linestyle="none",
                    markeredgecolor="black", label=f"last checkpoint, {attack_label(final['attack'])}" if index == 0 else None)
        if paper is not None and paper_steps is not None:
            value = _accuracies(paper["accuracy"], task, "paper").get(radius)
            if value is not None:
                ax.plot([paper_steps], [100 * value], marker="*", markersize=12, color=color, linestyle="none",
                        label="paper (Table 1)" if index == 0 else None)
    _style_accuracy_axes(ax, "training steps", title or task)
    return _save(figure, path)


def learning_curves(curves, task, epsilon, path, paper_steps=None, title=None):
    """Figure 5 (middle): several models' adversarial accuracy at one radius against training steps.

    Args:
        curves: one dict per model with `name` (its legend entry), `points` (as for
            `learning_curve`), and optionally `final` (drawn as a large marker) and `paper`
            (drawn as a star at `paper_steps`).
        task: the task to draw.
        epsilon: the attack radius to draw.
        path: where to save the PNG.
        paper_steps: where the paper's values are marked on the steps axis.
        title: the figure's title (default: the task and radius).

    Returns:
        `path`, as a string.

    Example:
        learning_curves([{"name": "AVAE", "points": avae_points}, {"name": "VAE", "points": vae_points}],
                        "digit", 0.1, "digit.png")
    """
    if not curves:
        raise ValueError("`curves` must hold at least one curve.")
    figure = _new_figure(LEARNING_CURVE_FIGSIZE)
    ax = figure.subplots()
    for index, curve in enumerate(curves):
        where = f"curve {curve['name']!r}"
        if not curve["points"]:
            raise ValueError(f"{where} must hold at least one evaluation.")
        color, marker = f"C{index}", MARKERS[index % len(MARKERS)]
        ax.plot(
            [int(point["steps"]) for point in curve["points"]],
            [100 * _lookup(_accuracies(point["accuracy"], task, where), epsilon, where) for point in curve["points"]],
            marker=marker, color=color, label=f"{curve['name']} ({attack_label(curve['points'][0]['attack'])})",
        )
        final = curve.get("final")
        if final is not None:
            ax.plot([int(final["steps"])], [100 * _lookup(_accuracies(final["accuracy"], task, where), epsilon, where)],
                    marker=marker, markersize=10, color=color, linestyle="none", markeredgecolor="black",
                    label=f"{curve['name']}, last checkpoint ({attack_label(final['attack'])})")
        paper = curve.get("paper")
        if paper is not None and paper_steps is not None:
            value = _accuracies(paper["accuracy"], task, f"{where} (paper)").get(epsilon)
            if value is not None:
                ax.plot([paper_steps], [100 * value], marker="*", markersize=12, color=color, linestyle="none",
                        label=f"{curve['name']}, paper (Table 1)")
    _style_accuracy_axes(ax, "training steps", title or f"{task}, $\\epsilon$ = {epsilon:g}")
    ax.legend(fontsize="small")  # up to three entries per model
    return _save(figure, path)


def attack_label(attack):
    """An evaluation's attack in a few characters: `{"attacks": "pgd", "attack_steps": 20, "restarts": 1}`
    -> "pgd 20x1" (attacks, PGD steps x starts)."""
    attacks = attack["attacks"] if isinstance(attack["attacks"], str) else "+".join(attack["attacks"])
    return f"{attacks} {attack['attack_steps']}x{attack['restarts']}"


def learning_curve_quality(points, path, title=None):
    """Clean probe accuracy, reconstruction MSE and shift ratio against training steps.

    Args:
        points: as for `learning_curve`, each also with `probe_accuracy` `{task: accuracy}`,
            `test_reconstruction_mse` and `shift_ratio` `{radius: {task: ratio}}`.
        path: where to save the PNG.
        title: the figure's title.

    Returns:
        `path`, as a string.
    """
    if not points:
        raise ValueError("`points` must hold at least one evaluation.")
    steps = [int(point["steps"]) for point in points]
    figure = _new_figure(QUALITY_FIGSIZE)
    clean, mse, shift = figure.subplots(1, 3)
    for index, task in enumerate(points[0]["probe_accuracy"]):
        clean.plot(steps, [100 * point["probe_accuracy"][task] for point in points], marker=MARKERS[index % len(MARKERS)], label=task)
    clean.set(xlabel="training steps", ylabel="clean probe accuracy (%)", title="clean accuracy")
    clean.legend()
    mse.plot(steps, [point["test_reconstruction_mse"] for point in points], marker="o")
    mse.set(xlabel="training steps", ylabel="MSE per pixel (0..255)", title="reconstruction")
    lines = sorted({(radius, task) for point in points for radius, ratios in point["shift_ratio"].items() for task in (ratios or {})})
    for index, (radius, task) in enumerate(lines):
        shift.plot(steps, [(point["shift_ratio"].get(radius) or {}).get(task, math.nan) for point in points],
                   marker=MARKERS[index % len(MARKERS)], label=f"{task}, $\\epsilon$ = {float(radius):g}")
    shift.set(xlabel="training steps", ylabel="worst shift / centroid distance", title="shift ratio")
    if lines:
        shift.legend()
    for ax in (clean, mse, shift):
        ax.grid(True, alpha=0.3)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


# ------------------------------------------------------------ image grids


def reconstruction_grid(model, x, path):
    """Images x (left) next to their reconstructions g(f^mu(x)) (right), same positions.

    Args:
        model: a model with `reconstruct`.
        x: `(n, height, width, channels)` images in [0, 1].
        path: where to save the PNG.

    Returns:
        `path`, as a string.

    Example:
        reconstruction_grid(vae, x_test[:36], "reconstructions.png")
    """
    check_model(model, ("reconstruct",), name="model")
    x = _as_images(x, "x", allow_grey=False)
    _check_count(len(x), "`x`", "len(x)")
    reconstructions = _as_images(_to_numpy(model.reconstruct(x)), "model.reconstruct(x)")
    columns = _square_columns(len(x))
    rows = math.ceil(len(x) / columns)
    panel_width = max(IMAGE_INCHES * columns, MIN_PANEL_INCHES)
    figure = _new_figure((2 * panel_width, IMAGE_INCHES * rows + TITLE_INCHES))
    for ax, images, title in zip(
        figure.subplots(1, 2), (x, reconstructions), ("data $x$", "reconstruction $g(f^\\mu(x))$")
    ):
        _show(ax, _tile(images, columns))
        ax.set_title(title)
        ax.set_axis_off()
    return _save(figure, path)


def sample_grid(model, n, path):
    """`n` samples g(z), z ~ N(0, I) (`model.sample`), in a square-ish grid.

    Args:
        model: a built model with `sample`.
        n: positive int, the number of samples.
        path: where to save the PNG.

    Returns:
        `path`, as a string.

    Example:
        sample_grid(vae, 64, "samples.png")
    """
    check_model(model, ("sample",), name="model")
    n = check_positive_int(n, "n")
    _check_count(n, "`n`", "n")
    samples = _as_images(_to_numpy(model.sample(n)), "model.sample(n)")
    columns = _square_columns(n)
    rows = math.ceil(n / columns)
    figure = _new_figure(
        (max(IMAGE_INCHES * columns, MIN_PANEL_INCHES), IMAGE_INCHES * rows + TITLE_INCHES)
    )
    ax = figure.subplots()
    _show(ax, _tile(samples, columns))
    ax.set_title("samples $g(z)$, $z \\sim \\mathcal{N}(0, I)$")
    ax.set_axis_off()
    return _save(figure, path)


def adversarial_examples(x, x_adversarial, predictions, labels, path, class_names=None):
    """Images next to their adversarial examples, titled with the classifier's decisions.

    Each example gets two panels: the image x with its true label, and the
    adversarial example x~ with the classifier's prediction on it (green when
    it is still the label, red when the attack changed the decision) and the
    perturbation's size ||x~ - x||_inf.

    Args:
        x: `(n, height, width, channels)` images in [0, 1].
        x_adversarial: adversarial examples, shaped like `x`.
        predictions: the classifier's decisions on `x_adversarial`: `(n,)`
            class ids, or `(n, num_classes)` logits or probabilities.
        labels: `(n,)` true class ids.
        path: where to save the PNG.
        class_names: optional list of class names indexed by class id.

    Returns:
        `path`, as a string.

    Example:
        adversarial_examples(x[:8], x_adv[:8], probe(vae.encode_mean(x_adv[:8])),
                             y[:8], "adversarial.png", class_names=COLOR_NAMES)
    """
    x = _as_images(x, "x")
    x_adversarial = _as_images(x_adversarial, "x_adversarial")
    if x_adversarial.shape != x.shape:
        raise ValueError(
            "`x_adversarial` must have the shape of `x`. Received shapes "
            f"{x_adversarial.shape} and {x.shape}"
        )
    if len(x) > MAX_ADVERSARIAL_EXAMPLES:
        raise ValueError(
            f"`x` holds {len(x)} examples; pass at most {MAX_ADVERSARIAL_EXAMPLES}."
        )
    predictions = _class_ids(predictions, "predictions", len(x))
    labels = _class_ids(labels, "labels", len(x), allow_scores=False)
    if class_names is not None:
        class_names = list(class_names)
        largest = int(max(predictions.max(), labels.max()))
        if largest >= len(class_names):
            raise ValueError(
                f"`class_names` has {len(class_names)} names but class id {largest} occurs."
            )

    def name(class_id):
        return str(class_names[class_id]) if class_names is not None else str(class_id)

    pairs_per_row = min(len(x), ADVERSARIAL_PAIRS_PER_ROW)
    rows = math.ceil(len(x) / pairs_per_row)
    figure = _new_figure(
        (2 * ADVERSARIAL_PANEL_INCHES * pairs_per_row, (IMAGE_INCHES + TITLE_INCHES) * rows)
    )
    axes = figure.subplots(rows, 2 * pairs_per_row, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for index in range(len(x)):
        row, pair = divmod(index, pairs_per_row)
        original, adversarial = axes[row, 2 * pair], axes[row, 2 * pair + 1]
        _show(original, x[index])
        original.set_title(f"label {name(labels[index])}", fontsize="small")
        _show(adversarial, x_adversarial[index])
        size = float(np.max(np.abs(x_adversarial[index] - x[index])))
        correct = predictions[index] == labels[index]
        adversarial.set_title(
            f"pred {name(predictions[index])}\n$\\|\\delta\\|_\\infty$={size:.2g}",
            fontsize="small",
            color=CORRECT_COLOR if correct else WRONG_COLOR,
        )
    return _save(figure, path)


# ---------------------------------------------------------------- helpers


def _new_figure(figsize):
    # matplotlib is imported here, at the first figure, so `import keras_avae` does not load it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    """Save `figure` as a PNG at `path`, making missing folders; return the path."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"`path` must be a str or os.PathLike. Received: path={path!r}")
    path = os.path.expanduser(os.fspath(path))
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    return path


def _show(ax, image):
    """Draw one image (grey if it has one channel) with pixels clipped to [0, 1]."""
    image = np.clip(image, 0.0, 1.0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _tile(images, columns):
    """A mosaic of `(n, h, w, c)` images, `columns` per row, `PADDING` apart."""
    n, height, width, channels = images.shape
    rows = math.ceil(n / columns)
    mosaic = np.full(
        (
            rows * (height + PADDING) + PADDING,
            columns * (width + PADDING) + PADDING,
            channels,
        ),
        PAD_VALUE,
        dtype=np.float32,
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top = PADDING + row * (height + PADDING)
        left = PADDING + column * (width + PADDING)
        mosaic[top : top + height, left : left + width] = image
    return mosaic


def _square_columns(n):
    return math.ceil(math.sqrt(n))


def _style_accuracy_axes(ax, xlabel, title):
    ax.set_xlabel(xlabel)
    ax.set_ylabel("adversarial accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()


def _to_numpy(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float32)


def _check_count(count, what, expression):
    if count > MAX_IMAGES:
        raise ValueError(
            f"{what} would draw {expression} = {count} images; at most {MAX_IMAGES} are drawn."
        )


def _as_list(models):
    if isinstance(models, (list, tuple)):
        return list(models)
    return [models]


def _check_titles(titles, models):
    if titles is None:
        return [str(getattr(model, "name", type(model).__name__)) for model in models]
    if isinstance(titles, str) or not isinstance(titles, (list, tuple)):
        raise ValueError(f"`titles` must be a list of strings or None. Received: titles={titles!r}")
    if len(titles) != len(models):
        raise ValueError(
            f"`titles` must have one title per model: {len(models)} models, "
            f"{len(titles)} titles."
        )
    return [str(title) for title in titles]


def _as_images(images, name, allow_grey=True):
    """`images` as float32 `(n, h, w, c)` with c in (1, 3); `(n, h, w)` gains c = 1."""
    try:
        array = np.asarray(keras.ops.convert_to_numpy(images), dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`{name}` must be an array of images. Received: {images!r:.80}"
        ) from error
    if array.ndim == 3 and allow_grey:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in _CHANNELS or not len(array):
        expected = "(n, height, width, channels)" + (" or (n, height, width)" if allow_grey else "")
        raise ValueError(
            f"`{name}` must be a non-empty {expected} array with 1 or 3 channels. "
            f"Received shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` holds NaN or infinite pixels.")
    return array


def _class_ids(values, name, n, allow_scores=True):
    """`(n,)` int class ids from ids, or from `(n, num_classes)` scores by argmax."""
    array = np.asarray(keras.ops.convert_to_numpy(values))
    if allow_scores and array.ndim == 2 and len(array) == n:
        return np.argmax(array, axis=-1)
    if array.shape != (n,) or not (
        np.issubdtype(array.dtype, np.integer)
        or (np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array)))
    ):
        expected = f"({n},) class ids" + (f" or ({n}, num_classes) scores" if allow_scores else "")
        raise ValueError(f"`{name}` must be {expected}. Received shape {array.shape}")
    array = array.astype(np.int64)
    if array.min() < 0:
        raise ValueError(f"`{name}` holds a negative class id: {array.min()}.")
    return array


def _as_real(value, what):
    """`value` (a real number, or a numeric string as in JSON results) as a float."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number. Received: {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number. Received: {value!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"{what} must be finite. Received: {value!r}")
    return result


def _check_results_dict(results, name):
    if not isinstance(results, dict) or not results:
        raise ValueError(f"`{name}` must be a non-empty dict. Received: {results!r:.80}")
    return results


def _accuracies(results, task, where):
    """`{epsilon: accuracy}` of `task` in `results`, keys and values checked, as floats."""
    if not isinstance(results, dict):
        raise ValueError(
            f"{where} must be a dict task -> {{epsilon: accuracy}}. Received: {results!r:.80}"
        )
    if task not in results:
        raise ValueError(f"{where} has no task {task!r}; it has {sorted(map(str, results))}.")
    accuracies = results[task]
    if not isinstance(accuracies, dict) or not accuracies:
        raise ValueError(
            f"{where}[{task!r}] must be a non-empty dict epsilon -> accuracy. "
            f"Received: {accuracies!r:.80}"
        )
    checked = {}
    for epsilon, accuracy in accuracies.items():
        radius = _as_real(epsilon, f"a radius of {where}[{task!r}]")
        value = _as_real(accuracy, f"an accuracy of {where}[{task!r}]")
        if not 0.0 <= value <= 1.0:
            raise ValueError(
                "Accuracies must be fractions in [0, 1]; "
                f"{where}[{task!r}][{epsilon!r}] = {accuracy!r}."
            )
        checked[radius] = value
    return checked


def _lookup(accuracies, epsilon, where):
    """The accuracy at radius `epsilon`, matching radii up to float rounding."""
    for radius, accuracy in accuracies.items():
        if math.isclose(radius, epsilon, rel_tol=1e-9, abs_tol=1e-12):
            return accuracy
    raise ValueError(
        f"{where} has no accuracy at epsilon={epsilon:g}; it has radii {sorted(accuracies)}."
    )
