"""The paper's experiments as library functions; `keras-avae` (keras_avae.cli) and examples/ call them.

- `color_mnist.train` / `color_mnist.evaluate`: one model on ColorMNIST (`keras-avae train`,
  `keras-avae evaluate`).
- `table1.reproduce`: Table 1, seven models x two architectures (`keras-avae reproduce table1`).
- `ablation.reproduce`: the study of the paper's open choices (`keras-avae reproduce ablation`).
- `rho_sweep.reproduce`: Figure 5 left, AVAE accuracy against rho (`keras-avae reproduce rho-sweep`).
- `celeba.reproduce`: Tables 2 and 3 on CelebA (`keras-avae reproduce celeba`).
- `settings`: the typed settings of every command (`RunConfig`, `TrainSettings`, ...), from
  which the CLI's flags are generated; `fields`: how a setting is declared and checked.
- `scale`: the budget (`Budget`) and the `tiny`, `small` and `paper` presets of each command.
- `registry`: the models by name; `run`: one run (build, train, evaluate); `run_directory`:
  its files; `summaries`: their markdown; `rows`: tables of runs, shared by the table modules;
  `verdicts`: a reproduced table against the paper's (a verdict per row, the paper's claims).
"""

import importlib

_SUBMODULES = (
    "ablation", "celeba", "color_mnist", "fields", "registry", "rho_sweep", "rows", "run", "run_directory",
    "scale", "settings", "summaries", "table1", "verdicts",
)
_ATTRIBUTES = {
    "ABLATION_SCALES": "scale",
    "CELEBA_SCALES": "scale",
    "TABLE1_SCALES": "scale",
    "TRAIN_SCALES": "scale",
    "Scale": "scale",
    "Budget": "scale",
    "RunConfig": "settings",
    "FIDScorer": "fid_scorer",
    "Progress": "progress",
    "StepTimer": "step_timer",
}


def __getattr__(name):
    """Imports an experiment module on first use, so the CLI's parser loads no TensorFlow."""
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_avae.experiments.{name}")
    if name in _ATTRIBUTES:
        value = getattr(importlib.import_module(f"keras_avae.experiments.{_ATTRIBUTES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_avae.experiments' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_ATTRIBUTES))


__all__ = [
    "ABLATION_SCALES",
    "Budget",
    "RunConfig",
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
    "fields",
    "registry",
    "rho_sweep",
    "rows",
    "run",
    "run_directory",
    "scale",
    "settings",
    "summaries",
    "table1",
    "verdicts",
]
