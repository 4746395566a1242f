"""The paper's experiments as library functions; `keras-avae` (keras_avae.cli) and examples/ call them.

- `color_mnist.train` / `color_mnist.evaluate`: one model on ColorMNIST (`keras-avae train`,
  `keras-avae evaluate`).
- `table1.reproduce`: Table 1, seven models x two architectures (`keras-avae reproduce table1`).
- `ablation.reproduce`: the study of the paper's open choices (`keras-avae reproduce ablation`).
- `rho_sweep.reproduce`: Figure 5 left, AVAE accuracy against rho (`keras-avae reproduce rho-sweep`).
- `celeba.reproduce`: Tables 2 and 3 on CelebA (`keras-avae reproduce celeba`).
- `protocol`: building a model by name, training with timing, evaluation, run directories.
- `scale`: the `tiny`, `small` and `paper` presets of each command.
"""

from keras_avae.experiments import (
    ablation,
    celeba,
    color_mnist,
    protocol,
    rho_sweep,
    scale,
    table1,
)
from keras_avae.experiments.fid_scorer import FIDScorer
from keras_avae.experiments.progress import Progress
from keras_avae.experiments.scale import (
    ABLATION_SCALES,
    CELEBA_SCALES,
    TABLE1_SCALES,
    TRAIN_SCALES,
    Scale,
)
from keras_avae.experiments.step_timer import StepTimer

__all__ = [
    "ABLATION_SCALES",
    "CELEBA_SCALES",
    "FIDScorer",
    "Progress",
    "Scale",
    "StepTimer",
    "TABLE1_SCALES",
    "TRAIN_SCALES",
    "ablation",
    "celeba",
    "color_mnist",
    "protocol",
    "rho_sweep",
    "scale",
    "table1",
]
