"""Reproduce Table 1 of Cemgil et al. (2020) on ColorMNIST: `keras-avae reproduce table1`.

Trains and evaluates the seven rows of Table 1 (VAE, SE_0.1, SE_0.2, AVAE,
SE_0.1-AVAE, SE_0.2-AVAE, AVAE-SS, the last post-training the trained VAE
without data with `AVAESelfSupervised.from_pretrained`) for each architecture
(`--arch mlp,conv`), and reports digit and colour accuracy of linear probes on
f^mu at epsilon 0, 0.1 and 0.2, the time factor (wall-clock per training step
relative to the VAE, measured in the run), the reconstruction MSE and FID.

FID extractor: InceptionV3's weights cannot be downloaded here, so by default
FID uses the features of a small ColorMNIST classifier trained in the run
(saved as fid_extractor.keras and named in the table); `--inception-weights
PATH` uses a local InceptionV3 weights file instead.

Scales (`--help` lists every value):
    --scale small   (default) both architectures, sized for a CPU: 10000
                    training images, 20 MLP / 3 conv epochs, Adam 1e-3, 5 PGD steps per SE
                    step, 500 test images attacked with 10 steps x 2 restarts
    --scale paper   Appendix F: all data, Adam 1e-4, 20 PGD steps in training, 40 steps x
                    10 restarts in evaluation (100 epochs, our choice); needs a GPU
    --scale tiny    tests: 64 images, 1 epoch, 1 PGD step

The logic lives in `keras_avae.experiments.table1.reproduce`; this script only
forwards its arguments. Writes table1.md, table1.json, figures/ and a run
directory per row to `--out` (default `runs/table1_<scale>`).

Examples:
    python examples/reproduce_table1.py
    python examples/reproduce_table1.py --arch mlp --rows VAE,AVAE,AVAE-SS
    python examples/reproduce_table1.py --scale paper --arch conv
"""

import sys

from keras_avae import cli


def main(argv=None):
    """Runs `keras-avae reproduce table1` with `argv`; returns the table (the dict written to table1.json)."""
    return cli.run(["reproduce", "table1", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
