"""Adversarial accuracy of a saved model's representation on ColorMNIST, as in Table 1: `keras-avae evaluate`.

Step iii of the evaluation protocol of Cemgil et al. (2020), Section 4, on a
model saved by `examples/train_color_mnist.py` (or any keras_avae `.keras`
file): freeze the encoder, train one linear probe per task (digit, colour) on
its mean f^mu, attack encoder + probe with the ensemble (PGD, APGD, Square) at each
radius, and print the accuracies in percent (epsilon 0 is the clean
accuracy); also the reconstruction MSE and FID. The logic lives in
`keras_avae.experiments.color_mnist.evaluate`; this script only forwards its
arguments. Run it with `--help` for every flag.

The defaults follow Appendix F (40 PGD steps, 10 restarts) on the first 10000
training and 2000 test images; `--train-size 60000 --test-size 10000` uses the
full splits, as the paper does.

Examples:
    python examples/evaluate_robustness.py runs/avae_mlp/model.keras
    python examples/evaluate_robustness.py runs/vae_mlp/model.keras --attack-steps 20 --restarts 2 \\
        --epsilons 0,0.1,0.2 --json runs/vae_mlp/robustness.json
"""

import sys

from keras_avae import cli
from keras_avae.experiments import color_mnist


def main(argv=None):
    """Runs `keras-avae evaluate` with `argv`; returns `results[task][epsilon]` (accuracies in [0, 1])."""
    metrics = cli.run(["evaluate", *(sys.argv[1:] if argv is None else argv)])
    return color_mnist.robust_accuracy(metrics)


if __name__ == "__main__":
    main()
