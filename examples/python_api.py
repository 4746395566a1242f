"""The library from Python, without the CLI: train an AVAE on ColorMNIST, evaluate it, save it.

Loads a subset of ColorMNIST, builds the MLP of Appendix F, trains an AVAE
(eq. 13) for a few epochs, attacks linear probes on its representation f^mu
with `AdversarialEvaluator` on a small budget, prints the table and what the
evaluation's checks found, and saves the model as a `.keras` file.

Example:
    python examples/python_api.py --data ../shared/data/mnist.npz --epochs 2 --out runs/avae.keras
"""

import argparse

import keras

import keras_avae
from keras_avae.evaluation import AdversarialEvaluator, report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/mnist.npz", help="a local mnist.npz")
    parser.add_argument("--train-size", type=int, default=5000, help="training (and probe) images")
    parser.add_argument("--test-size", type=int, default=500, help="attacked test images")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="avae.keras", help="where the model is saved")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    train = keras_avae.datasets.color_mnist("train", path=args.data, limit=args.train_size)
    test = keras_avae.datasets.color_mnist("test", path=args.data, limit=args.test_size)

    encoder, decoder = keras_avae.architectures.mlp(latent_dim=64)
    model = keras_avae.AVAE(encoder, decoder, rho=0.975, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))  # XLA on a CPU for an MLP: model.jit_compile
    model.fit(train[0], epochs=args.epochs, batch_size=64, verbose=2)

    evaluator = AdversarialEvaluator(train, test, epsilons=(0.0, 0.1, 0.2), attack_steps=5, restarts=1)
    results = evaluator.evaluate(model)  # results["digit"][0.1]: robust accuracy in [0, 1]
    print(report.to_markdown(results, model_name="AVAE"))
    print("checks flagged:", "; ".join(results.problems) if results.flagged else "nothing")

    model.save(args.out)  # keras.models.load_model(args.out) restores it, optimizer included
    return model, results


if __name__ == "__main__":
    main()
