"""Tests for keras_avae/experiments/scale.py: the presets keep the paper's settings where it states them."""

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
        assert all(hasattr(scale, field) for field in BUDGET_FIELDS)
        assert scale.to_dict()["name"] == name


def test_medium_trains_on_every_image_and_evaluates_by_the_papers_protocol():
    medium, paper = TRAIN_SCALES["medium"], TRAIN_SCALES["paper"]
    assert TABLE1_SCALES["medium"] is medium and ABLATION_SCALES["medium"] is medium
    assert medium.train_size == paper.train_size == 60000 and medium.test_size == 10000
    assert (medium.attack_steps, medium.restarts) == (paper.attack_steps, paper.restarts) == (40, 10)
    assert medium.attack_size == 1000 and medium.learning_rate == paper.learning_rate
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
