"""Tests for keras_avae/constants.py: each light copy equals the constant of the module it stands for."""

from keras_avae import constants
from keras_avae.datasets import CELEBA_ATTRIBUTES
from keras_avae.evaluation import engine, robustness
from keras_avae.experiments import ablation, celeba, color_mnist, protocol, rho_sweep, table1


def test_constants_equal_their_homes():
    assert constants.MODEL_NAMES == protocol.MODEL_NAMES
    assert (constants.RHO, constants.RHO_SE, constants.SE_EPSILON) == (protocol.RHO, protocol.RHO_SE, protocol.SE_EPSILON)
    assert constants.CHOICE_VALUES == protocol.CHOICE_VALUES
    assert constants.EPSILONS == tuple(protocol.EPSILONS)
    assert constants.ATTACKS == engine.ATTACKS and constants.ENSEMBLES == engine.ENSEMBLES
    assert constants.PGD_LOSSES == tuple(engine.PGD_LOSSES)
    assert constants.DEFAULT_SQUARE_QUERIES == engine.DEFAULT_SQUARE_QUERIES
    assert constants.DEFAULT_CHECK_SIZE == robustness.DEFAULT_CHECK_SIZE
    assert constants.ARCHITECTURES == tuple(color_mnist.ARCHITECTURES)
    for key, value in constants.EVALUATE_DEFAULTS.items():
        assert color_mnist.EVALUATE_DEFAULTS[key] == value, key
    assert constants.TABLE1_ROW_LABELS == tuple(table1.ROW_LABELS)
    assert constants.ABLATION_ROW_LABELS == tuple(ablation.ROW_LABELS)
    assert constants.ABLATION_EPSILONS == tuple(ablation.DEFAULT_EPSILONS)
    assert constants.ABLATION_FID == ablation.DEFAULTS["fid"]
    assert constants.DEFAULT_RHOS == tuple(rho_sweep.DEFAULT_RHOS)
    assert constants.CELEBA_ROW_LABELS == tuple(celeba.ROW_LABELS)
    assert constants.CELEBA_ATTRIBUTES == tuple(CELEBA_ATTRIBUTES)
    assert constants.CELEBA_EPSILONS == tuple(celeba.EPSILONS)
