"""`RobustnessEvaluator`, a Keras callback: the adversarial accuracy of f^mu during training.

The evaluation itself (probes, the attack ensemble, the checks) is
`keras_avae.evaluation.AdversarialEvaluator`; this adapter runs it
on the model being trained on `PeriodicEvaluation`'s schedule and writes each
accuracy to the epoch's `logs` under `log_key(task, epsilon)`, e.g.
`robust_digit_eps0_1` (epsilon 0.1).

Example:
    evaluator = RobustnessEvaluator(train_data, test_data, every_n_epochs=10)
    model.fit(x_train, epochs=50, callbacks=[evaluator, keras.callbacks.CSVLogger("log.csv")])
    evaluator.history[-1]["results"].flagged
"""

from keras_avae.callbacks.periodic import PeriodicEvaluation
from keras_avae.evaluation import checks as checks_lib
from keras_avae.evaluation import engine, report, robustness


class RobustnessEvaluator(PeriodicEvaluation, robustness.AdversarialEvaluator):
    """`keras_avae.evaluation.AdversarialEvaluator` that also runs as a callback during `fit`.

    Put it before `History`-reading callbacks (`CSVLogger`, `TensorBoard`) in the
    list: Keras calls them in order.

    Args:
        train_data: `(x, labels)`, labels a dict task -> `(N,)` integer array; the probes learn on it.
        test_data: `(x, labels)` with labels for every task of `train_data`; the attacks run on it.
        every_n_epochs: evaluate after every this many epochs (and after the last).
        fill_missing_epochs: log NaN under every key in the epochs not evaluated (so `CSVLogger`
            sees every key from the first epoch).
        verbose: 1 prints one line per evaluation, 0 is silent.
        **the other arguments**: the evaluation's (`epsilons`, `attack_steps`, `restarts`,
            `batch_size`, `losses`, `probe_kwargs`, `seed`, `attacks`, `apgd_restarts`,
            `square_queries`, `checks`, `check_size`, `tolerance`), as
            `keras_avae.evaluation.AdversarialEvaluator` documents them, with its defaults
            (Appendix F: 40 PGD steps, 10 restarts; radii 0, 0.1, 0.2).

    Example:
        evaluator = RobustnessEvaluator(train_data, test_data, attack_steps=20, restarts=2)
        results = evaluator.evaluate(avae)
        print(evaluator.to_markdown(results, model_name="AVAE"))
    """

    name = "Robust accuracy"

    def __init__(
        self,
        train_data,
        test_data,
        every_n_epochs=1,
        fill_missing_epochs=True,
        verbose=1,
        *,
        epsilons=robustness.DEFAULT_EPSILONS,
        attack_steps=robustness.DEFAULT_ATTACK_STEPS,
        restarts=robustness.DEFAULT_RESTARTS,
        batch_size=robustness.DEFAULT_BATCH_SIZE,
        losses=robustness.DEFAULT_LOSSES,
        probe_kwargs=None,
        seed=0,
        attacks=robustness.DEFAULT_ATTACKS,
        apgd_restarts=engine.DEFAULT_APGD_RESTARTS,
        square_queries=engine.DEFAULT_SQUARE_QUERIES,
        checks=True,
        check_size=robustness.DEFAULT_CHECK_SIZE,
        tolerance=checks_lib.DEFAULT_TOLERANCE,
    ):
        robustness.AdversarialEvaluator.__init__(
            self,
            train_data,
            test_data,
            epsilons=epsilons,
            attack_steps=attack_steps,
            restarts=restarts,
            batch_size=batch_size,
            losses=losses,
            probe_kwargs=probe_kwargs,
            seed=seed,
            attacks=attacks,
            apgd_restarts=apgd_restarts,
            square_queries=square_queries,
            checks=checks,
            check_size=check_size,
            tolerance=tolerance,
        )
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
            **robustness.AdversarialEvaluator.get_config(self),
            "every_n_epochs": self.every_n_epochs,
            "fill_missing_epochs": self.fill_missing_epochs,
        }

    def to_markdown(self, results=None, model_name=None):
        """`report.to_markdown` of `results` (default: the last evaluation in `history`)."""
        return report.to_markdown(self.last_results(results), model_name=model_name)

    def to_json(self, results=None, model_name=None):
        """`report.to_json` of `results` (default: the last evaluation), with `get_config()`."""
        return report.to_json(self.last_results(results), model_name=model_name, config=self.get_config())
