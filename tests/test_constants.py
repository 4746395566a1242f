"""Tests for keras_avae/constants.py: each light copy equals the constant of the module it stands for."""

from keras_avae import constants
from keras_avae.datasets import CELEBA_ATTRIBUTES
from keras_avae.evaluation import engine, robustness
from keras_avae.experiments import ablation, celeba, color_mnist, registry, table1
from keras_avae.experiments.scale import TRAIN_SCALES


def test_constants_equal_their_homes():
    assert constants.MODEL_NAMES == registry.MODEL_NAMES
    assert (constants.RHO, constants.RHO_SE, constants.SE_EPSILON) == (registry.RHO, registry.RHO_SE, registry.SE_EPSILON)
    assert constants.CHOICE_VALUES == registry.CHOICE_VALUES
    assert constants.EPSILONS == tuple(robustness.DEFAULT_EPSILONS)
    assert constants.DEFAULT_LOSSES == tuple(robustness.DEFAULT_LOSSES)
    assert constants.ATTACKS == engine.ATTACKS and constants.ENSEMBLES == engine.ENSEMBLES
    assert constants.PGD_LOSSES == tuple(engine.PGD_LOSSES)
    assert constants.DEFAULT_SQUARE_QUERIES == engine.DEFAULT_SQUARE_QUERIES
    assert constants.DEFAULT_CHECK_SIZE == robustness.DEFAULT_CHECK_SIZE
    assert constants.ARCHITECTURES == tuple(color_mnist.ARCHITECTURES)
    assert constants.COLOR_MNIST_RANGE == color_mnist.COLOR_MNIST_RANGE
    defaults = constants.EVALUATE_DEFAULTS
    assert (defaults["attack_steps"], defaults["restarts"], defaults["batch_size"]) == (
        robustness.DEFAULT_ATTACK_STEPS, robustness.DEFAULT_RESTARTS, robustness.DEFAULT_BATCH_SIZE,
    )
    assert defaults["extractor_epochs"] == TRAIN_SCALES["small"].extractor_epochs
    assert constants.TABLE1_ROW_LABELS == tuple(table1.ROW_LABELS)
    assert constants.ABLATION_ROW_LABELS == tuple(ablation.ROW_LABELS)
    assert constants.CELEBA_ROW_LABELS == tuple(celeba.ROW_LABELS)
    assert constants.CELEBA_ATTRIBUTES == tuple(CELEBA_ATTRIBUTES)
    assert constants.CELEBA_EPSILONS == tuple(celeba.EPSILONS)
