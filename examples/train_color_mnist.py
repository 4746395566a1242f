"""Train a VAE, AVAE, SE, SE-AVAE or AVAE-SS on ColorMNIST and evaluate it: `keras-avae train`.

Steps i-iii of the evaluation protocol of Cemgil et al. (2020), Section 4:
train an encoder-decoder pair without labels, fit a linear probe per task
(digit, colour) on the frozen posterior mean f^mu, attack encoder + probe with
L-inf PGD; also the reconstruction MSE and the FID of the decoder's samples.
The logic lives in `keras_avae.experiments.color_mnist.train`; this script
only forwards its arguments. Run it with `--help` for every flag.

`--scale small` (the default) trains on 10000 images for 50 epochs with Adam
1e-3, sized for a CPU; `--scale paper` is Appendix
F's setting (all images, Adam 1e-4, PGD 20 steps in training, 40 steps x 10
restarts in evaluation); `--scale tiny` is for tests. Flags given explicitly
override the scale's values.

Examples:
    python examples/train_color_mnist.py --model avae --arch mlp
    python examples/train_color_mnist.py --model se --se-epsilon 0.2 --arch conv --epochs 3
    python examples/train_color_mnist.py --model avae --arch conv --scale paper

Writes model.keras, config.json, metrics.json, summary.md, figures/ and
TensorBoard logs/ to `--out` (default `runs/<model>_<arch>`).
"""

import sys

from keras_avae import cli


def main(argv=None):
    """Runs `keras-avae train` with `argv`; returns the metrics dict it also writes to metrics.json."""
    return cli.run(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
