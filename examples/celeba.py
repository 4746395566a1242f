"""Tables 2 and 3 of Cemgil et al. (2020) on CelebA: `keras-avae reproduce celeba`.

Trains VAE, AVAE, SE^5, SE^20, SE^5-AVAE and AVAE-SS on 64x64 CelebA with the
convnet of Appendix F (`keras_avae.architectures.celeba`), streamed by
`keras_avae.datasets.celeba_dataset`, and reports, for the 17 binary tasks of
Table 3, the accuracy of linear probes on f^mu at epsilon 0 and 0.1, the time
factor, reconstruction MSE and FID (InceptionV3: `--inception-weights PATH`,
else Keras downloads the ImageNet weights).

This needs CelebA prepared as a tensorflow-datasets folder (`--data-dir`, or
$KERAS_AVAE_CELEBA_DIR; see `keras_avae.datasets.celeba` for how) and a GPU
(`--scale small`: 20000 images, 10 epochs; `--scale paper`: the whole split,
20 epochs). Without CelebA it stops at once with the loader's instructions.

The logic lives in `keras_avae.experiments.celeba.reproduce`; this script only
forwards its arguments. Writes table2.md, table3.md, celeba.json, figures/ and
a run directory per row to `--out` (default `runs/celeba_<scale>`).

Example:
    python examples/celeba.py --data-dir ~/tensorflow_datasets \\
        --inception-weights inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5
"""

import sys

from keras_avae import cli


def main(argv=None):
    """Runs `keras-avae reproduce celeba` with `argv`; returns the dict written to celeba.json.

    Raises:
        FileNotFoundError: CelebA is not prepared (the message says how to prepare it).
    """
    return cli.run(["reproduce", "celeba", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(cli.main(["reproduce", "celeba", *sys.argv[1:]]))
