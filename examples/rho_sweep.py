"""Figure 5 (left) of Cemgil et al. (2020), AVAE accuracy against rho: `keras-avae reproduce rho-sweep`.

Trains one AVAE per coupling strength (`--rhos`, default 0.5, 0.8, 0.9, 0.95,
0.975, 0.99) and architecture on ColorMNIST, scores each like a row of Table 1,
and plots the digit and colour accuracy against rho, one line per attack
radius. Same scales as `reproduce_table1.py` (`--scale small` by default).

The logic lives in `keras_avae.experiments.rho_sweep.reproduce`; this script
only forwards its arguments. Writes rho_sweep.md, rho_sweep.json,
figures/<arch>_accuracy_vs_rho_<task>.png and a run directory per model to
`--out` (default `runs/rho_sweep_<scale>`).

Examples:
    python examples/rho_sweep.py --arch mlp
    python examples/rho_sweep.py --arch conv --rhos 0.9,0.95,0.975,0.99
"""

import sys

from keras_avae import cli


def main(argv=None):
    """Runs `keras-avae reproduce rho-sweep` with `argv`; returns the dict written to rho_sweep.json."""
    return cli.run(["reproduce", "rho-sweep", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
