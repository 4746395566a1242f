"""`RobustnessEvaluator` as a Keras callback: the adversarial accuracy of f^mu during training.

The evaluation itself (probes, the attack ensemble, the checks) is
`keras_avae.evaluation.robustness.RobustnessEvaluator`; this adapter runs it
on the model being trained on `PeriodicEvaluation`'s schedule and writes each
accuracy to the epoch's `logs` under `log_key(task, epsilon)`, e.g.
`robust_digit_eps0_1` (epsilon 0.1).

Example:
    evaluator = RobustnessEvaluator(train_data, test_data, every_n_epochs=10)
    model.fit(x_train, epochs=50, callbacks=[evaluator, keras.callbacks.CSVLogger("log.csv")])
    evaluator.history[-1]["results"].flagged
"""

from keras_avae.callbacks.periodic import PeriodicEvaluation
from keras_avae.evaluation import report
from keras_avae.evaluation import robustness


class RobustnessEvaluator(PeriodicEvaluation, robustness.RobustnessEvaluator):
    """`keras_avae.evaluation.RobustnessEvaluator` that also runs as a callback during `fit`.

    Every argument of the evaluator (see it for their meaning), plus the
    schedule's (`PeriodicEvaluation`): `every_n_epochs`, `fill_missing_epochs`,
    `verbose`. Put it before `History`-reading callbacks (`CSVLogger`,
    `TensorBoard`) in the list: Keras calls them in order.

    Example:
        evaluator = RobustnessEvaluator(train_data, test_data, attack_steps=20, restarts=2)
        results = evaluator.evaluate(avae)
        print(evaluator.to_markdown(results, model_name="AVAE"))
    """

    name = "Robust accuracy"

    def __init__(self, train_data, test_data, every_n_epochs=1, fill_missing_epochs=True, verbose=1, **evaluator_kwargs):
        robustness.RobustnessEvaluator.__init__(self, train_data, test_data, **evaluator_kwargs)
        PeriodicEvaluation.__init__(self, every_n_epochs, fill_missing_epochs, verbose)

    @property
    def log_keys(self):
        return [robustness.log_key(task, epsilon) for task in self.tasks for epsilon in self.epsilons]

    def log_values(self, results):
        return {
            robustness.log_key(task, epsilon): accuracy
            for task, accuracies in results.items()
            for epsilon, accuracy in accuracies.items()
        }

    def summary(self, results):
        line = "; ".join(
            f"{task} " + " ".join(f"eps={e:g}: {100 * a:.1f}%" for e, a in accuracies.items())
            for task, accuracies in results.items()
        )
        return line + (" [FLAGGED: see results.problems]" if getattr(results, "flagged", False) else "")

    def get_config(self):
        return {
            **robustness.RobustnessEvaluator.get_config(self),
            "every_n_epochs": self.every_n_epochs,
            "fill_missing_epochs": self.fill_missing_epochs,
        }

    def to_markdown(self, results=None, model_name=None):
        """`report.to_markdown` of `results` (default: the last evaluation in `history`)."""
        return report.to_markdown(self.last_results(results), model_name=model_name)

    def to_json(self, results=None, model_name=None):
        """`report.to_json` of `results` (default: the last evaluation), with `get_config()`."""
        return report.to_json(self.last_results(results), model_name=model_name, config=self.get_config())
