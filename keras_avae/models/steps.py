"""The training and test steps of `fit` and `evaluate`, over a model's terms, for every model alike."""

import tensorflow as tf

from keras_avae import distribute


class Steps:
    """`train_step` and `test_step` over the model's `_terms`, reported by its trackers; a mixin of `keras.Model`.

    A training step maximises the mean of the terms' objective (it minimises the mean of
    `loss`); a test step computes the same terms, so `evaluate()` reports the numbers `fit`
    does. The model class sets `_terms`, `_trackers` (a `keras.metrics.Mean` per name of
    `term_names`, made in `__init__`) and `_batch_check` (`CheckedInputs`).
    """

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _update_trackers(self, terms):
        for name, tracker in self._trackers.items():
            tracker.update_state(terms[name])
        # Keras 3 cannot average scalar logs across workers (tensorflow#72388): `reducible_logs`.
        return distribute.reducible_logs({name: tracker.result() for name, tracker in self._trackers.items()})

    def _step_inputs(self, data, what="training data"):
        """The images of a step's batch, refusing other structures (at trace time).

        The batch was checked on its way in (`BatchCheck`). A step runs its ops as
        their inputs are ready, so without a dependency the seed generator and the
        optimizer's iteration count, which do not depend on the data, would advance
        even when reading the batch fails its check; the steps therefore run under
        `tf.control_dependencies([x])`, which orders every variable update after it.
        """
        return self._batch_check(what).inputs(data)

    def train_step(self, data):
        x = self._step_inputs(data)
        if not self.optimizer.built:
            # `fit` builds it first; a step called in a loop of the user's own creates it
            # here, as `optimizer.apply` would, but outside the dependency on x, so that
            # the variables can be lifted out of the traced step.
            with tf.name_scope(self.optimizer.name):
                self.optimizer.build(self.trainable_variables)
        with tf.control_dependencies([x]):
            with tf.GradientTape() as tape:
                terms = self._terms(x, training=True)
                # Sum over the global batch / its size, so replicas' gradients add up
                # to the single-device gradient under tf.distribute.
                loss = tf.nn.compute_average_loss(terms["loss"])
                scaled_loss = self.optimizer.scale_loss(loss)
            grads = tape.gradient(scaled_loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            return self._update_trackers(terms)

    def test_step(self, data):
        x = self._step_inputs(data, "evaluation data")
        with tf.control_dependencies([x]):
            return self._update_trackers(self._terms(x, training=False))
