"""Tests for keras_avae/experiments/scale.py: the presets keep the paper's settings where it states them."""

import math
import re

import pytest

from keras_avae.experiments.scale import (
    ABLATION_SCALES,
    CELEBA_SCALES,
    BUDGET_FIELDS,
    TABLE1_SCALES,
    TRAIN_SCALES,
    Scale,
    steps_per_epoch,
)


@pytest.mark.parametrize("scales", [TRAIN_SCALES, TABLE1_SCALES])
def test_paper_scale_is_appendix_f_on_color_mnist(scales):
    paper = scales["paper"]
    assert paper.learning_rate == 1e-4
    assert (paper.train_attack_steps, paper.attack_steps, paper.restarts) == (20, 40, 10)
    assert (paper.train_size, paper.test_size, paper.attack_size) == (60000, 10000, 10000)
    assert paper.latent_dim == 64 and paper.mlp_hidden_units is None


def test_paper_scale_is_appendix_f_on_celeba():
    paper = CELEBA_SCALES["paper"]
    assert paper.learning_rate == 1e-4 and paper.train_size is None
    assert (paper.attack_steps, paper.restarts) == (20, 10)
    assert paper.train_attack_steps is None  # SE^5 and SE^20 keep their own
    assert paper.image_size == 64


def test_small_table1_fits_two_cpu_cores():
    small = TABLE1_SCALES["small"]
    assert small.epochs_for("mlp") == 20 and small.epochs_for("conv") == 3
    assert small.attack_size <= small.test_size
    # Training steps of one row; the description's estimate rests on these counts.
    assert small.epochs_for("mlp") * steps_per_epoch(small.train_size, small.batch_size) == 3140
    assert small.epochs_for("conv") * steps_per_epoch(small.train_size, small.batch_size) == 471


@pytest.mark.parametrize(
    "scales, names",
    [
        (TRAIN_SCALES, ["tiny", "small", "medium", "paper"]),
        (TABLE1_SCALES, ["tiny", "small", "medium", "paper"]),
        (CELEBA_SCALES, ["tiny", "small", "paper"]),
    ],
)
def test_every_command_has_its_presets_in_order_of_size(scales, names):
    assert list(scales) == names
    for name, scale in scales.items():
        assert scale.name == name and scale.description
        assert Scale(**scale.to_dict()) == scale  # every field passes its check and survives config.json
        assert set(BUDGET_FIELDS) <= set(scale.to_dict())
        assert scale.to_dict()["name"] == name


def test_medium_trains_on_every_image_and_evaluates_by_the_papers_protocol():
    medium, paper = TRAIN_SCALES["medium"], TRAIN_SCALES["paper"]
    assert TABLE1_SCALES["medium"] is medium and ABLATION_SCALES["medium"] is medium
    assert medium.train_size == paper.train_size == 60000 and medium.test_size == 10000
    assert (medium.attack_steps, medium.restarts) == (paper.attack_steps, paper.restarts) == (40, 10)
    assert medium.attack_size == 1000
    assert (medium.learning_rate, paper.learning_rate) == (1e-3, 1e-4)  # the paper's rate learns too slowly for 10 epochs
    assert medium.train_attack_steps == 5  # SE: the 5 PGD steps, the paper's 20 where time allows
    assert medium.epochs_for("conv") * steps_per_epoch(medium.train_size, medium.batch_size) == 9380


def test_epochs_per_architecture():
    scale = Scale(
        name="x", description="x", train_size=1, test_size=1, attack_size=1, epochs={"mlp": 2},
        batch_size=1, learning_rate=1.0, train_attack_steps=1, attack_steps=1, restarts=1,
    )
    assert scale.epochs_for("mlp") == 2
    with pytest.raises(ValueError, match="not for arch='conv'"):
        scale.epochs_for("conv")
    assert steps_per_epoch(65, 64) == 2 and steps_per_epoch(0, 64) == 1


# Every command's presets, whatever their names; `ORDER` ranks the known names by size.
ALL_SCALES = {"train": TRAIN_SCALES, "table1": TABLE1_SCALES, "ablation": ABLATION_SCALES, "celeba": CELEBA_SCALES}
ORDER = ("tiny", "small", "medium", "paper")
ARCHS = {"train": ("mlp", "conv"), "table1": ("mlp", "conv"), "ablation": ("mlp", "conv"), "celeba": ("celeba",)}
PRESETS = [(command, name) for command, scales in ALL_SCALES.items() for name in scales]


def _size(scale, arch):
    """What grows from preset to preset: training steps, images, attack budget (None, "all", as infinite)."""
    def count(value):
        return math.inf if value is None else value

    steps = math.inf if scale.train_size is None else scale.epochs_for(arch) * steps_per_epoch(scale.train_size, scale.batch_size)
    return {"training steps": steps, "test_size": count(scale.test_size), "attack_size": count(scale.attack_size),
            "attack_steps": scale.attack_steps, "restarts": scale.restarts}


@pytest.mark.parametrize("command", list(ALL_SCALES))
def test_presets_grow_in_every_budget_from_tiny_to_paper(command):
    scales = ALL_SCALES[command]
    assert {"tiny", "small", "paper"} <= set(scales)
    ranked = [scales[name] for name in ORDER if name in scales]
    for arch in ARCHS[command]:
        for smaller, larger in zip(ranked, ranked[1:]):
            small, large = _size(smaller, arch), _size(larger, arch)
            for budget in small:
                assert small[budget] <= large[budget], (command, arch, smaller.name, larger.name, budget)
        for scale in ranked:
            if scale.attack_size is not None and scale.test_size is not None:
                assert scale.attack_size <= scale.test_size, (command, scale.name)


def _number(text):
    return float(text.replace(",", ""))


N = r"(?<![\d,.])([\d,]+)"  # a whole number, with thousands commas

# A phrase of a description and the field (or computed number) it must equal.
STATED = [
    (r"(?<!probes on the )" + N + r" training images", lambda s: s.train_size),
    (N + r" epochs? for the MLP", lambda s: s.epochs_for("mlp")),
    (r"and " + N + r" for the convnet", lambda s: s.epochs_for("conv")),
    (N + r" epochs?\b(?! for the)", lambda s: s.epochs if isinstance(s.epochs, int) else None),
    (r"epochs for the MLP \(" + N + r" steps", lambda s: s.epochs_for("mlp") * steps_per_epoch(s.train_size, s.batch_size)),
    (r"for the convnet \(" + N + r" steps", lambda s: s.epochs_for("conv") * steps_per_epoch(s.train_size, s.batch_size)),
    (N + r" steps x \d+ (?:re)?starts?", lambda s: s.attack_steps),
    (r"steps x " + N + r" (?:re)?starts?", lambda s: s.restarts),
    (r"attacks " + N + r" test", lambda s: s.attack_size),
    (N + r" test images attacked", lambda s: s.attack_size),
    (r"\(" + N + r" attacked\)", lambda s: s.attack_size),
    (r"FID on " + N, lambda s: s.fid_samples),
    (N + r" PGD steps per SE training step", lambda s: s.train_attack_steps),
    (r"PGD " + N + r" steps in training", lambda s: s.train_attack_steps),
    (r"Adam (\d(?:\.\d+)?e-\d+)", lambda s: s.learning_rate),
    (r"batch " + N, lambda s: s.batch_size),
    (r"latent " + N, lambda s: s.latent_dim),
    (r"MLP of " + N + r" units", lambda s: s.mlp_hidden_units),
    (N + r"-layer MLP", lambda s: s.mlp_hidden_layers),
    (r"(\d+)x\1 images", lambda s: s.image_size),
]


@pytest.mark.parametrize("command, name", PRESETS, ids=[f"{c}-{n}" for c, n in PRESETS])
def test_each_number_a_description_states_is_the_presets(command, name):
    """A description that says "20 steps x 2 restarts" or "(3,140 steps)" must say what the preset runs."""
    scale = ALL_SCALES[command][name]
    for pattern, field in STATED:
        for match in re.finditer(pattern, scale.description):
            expected = field(scale)
            if expected is not None:
                assert _number(match.group(1)) == pytest.approx(expected), (pattern, match.group(0))
