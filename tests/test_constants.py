"""Tests for keras_avae/constants.py: each light copy equals the constant of the module it stands for."""

from keras_avae import architectures, constants
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
    assert constants.DTYPE_POLICIES == architectures.DTYPE_POLICIES
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


def test_the_paper_states_these_values():
    """The constants the paper fixes (Table 1's caption and radii; Appendix F's attack and learning rate)."""
    assert (constants.RHO, constants.RHO_SE) == (0.975, 0.95)  # Table 1 caption
    assert constants.EPSILONS == (0.0, 0.1, 0.2)  # Table 1's radii, pixels in [0, 1]
    assert (constants.EVALUATE_DEFAULTS["attack_steps"], constants.EVALUATE_DEFAULTS["restarts"]) == (40, 10)  # App. F
    assert constants.TABLE1_ROW_LABELS[0] == "VAE" and len(constants.TABLE1_ROW_LABELS) == 7
    assert len(constants.CELEBA_ATTRIBUTES) == 17 == len(set(constants.CELEBA_ATTRIBUTES))  # Table 3's tasks


def test_constants_is_light():
    """Its reason to exist: `--help` and the presets read these values without importing TensorFlow."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = "import keras_avae.constants, keras_avae.experiments.scale, sys, json; print(json.dumps(sorted(sys.modules)))"
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=repo,
                            env={**os.environ, "PYTHONPATH": str(repo)})
    assert result.returncode == 0, result.stderr[-2000:]
    modules = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not {"tensorflow", "keras"} & modules
