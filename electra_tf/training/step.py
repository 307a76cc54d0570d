"""The distributed train and eval steps (built once, traced once)."""

import tensorflow as tf

from electra_tf.layers.fast_dropout import keyed_by_example
from electra_tf.models.objective import discriminator_loss_sum, generator_loss_sum
from electra_tf.models.rtd_metrics import SUM_KEYS, auc_histograms, rtd_sums
from electra_tf.models.sampling import example_seeds
from electra_tf.seeds import EVAL_SAMPLING, TRAIN_SAMPLING, sampling_stream


class OptimizerGroup:
    """One optimizer, the variables it owns, its clip norm and (float16) loss scale.

    ``name`` is the objective's key of the loss that trains these variables:
    ``"joint"`` (L_G + λ·L_D), ``"generator"`` (L_G) or ``"discriminator"`` (L_D).

    Args:
        name: the group's (and its loss's) name.
        optimizer: a Keras optimizer built on ``variables``.
        variables: the variables this optimizer updates.
        clip_norm: clip the group's global gradient norm to this; 0 = no clipping.
        scaler: a :class:`~electra_tf.training.loss_scale.DynamicLossScale`, or None.
    """

    def __init__(self, name, optimizer, variables, clip_norm, scaler=None):
        self.name = name
        self.optimizer = optimizer
        self.variables = list(variables)
        self.clip_norm = clip_norm
        self.scaler = scaler

    @property
    def loss_scale(self):
        """The current loss scale variable, or None without loss scaling."""
        return None if self.scaler is None else self.scaler.scale

    def scale(self):
        return self.scaler.scale if self.scaler is not None else tf.constant(1.0)


def _to_dense(g):
    return tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g


class PretrainingSteps:
    """Builds ``train_step()`` and ``eval_step(batch, index)`` for a pretrainer under a strategy.

    The global (per-worker) batch is taken from a plain, checkpointable
    iterator inside the ``tf.function`` and split across local replicas, so a
    global batch is masked the same under any strategy. Loss denominators are
    global (summed over replicas before the losses are formed), so gradients
    summed over replicas are gradients of the global mean. Gradients are
    all-reduced once, their global norm measured and clipped per optimizer, and
    a step whose loss (on any replica) or gradient is not finite is skipped by
    every replica.

    Decisions that every worker must take alike travel in the step's one
    all-reduce, beside the gradients: whether it is skipped (one verdict for all replicas and workers), and
    whether to stop after it (any worker may ask, e.g. on SIGTERM: then
    ``stop_agreed`` is 1 on every worker after the same step).
    """

    def __init__(self, strategy, pretrainer, objective, groups, train_cfg, iterator, local_replicas=1):
        if [g.name for g in groups] != list(objective.groups):
            raise ValueError(f"the optimizer groups {[g.name for g in groups]} do not match the objective's "
                             f"losses {list(objective.groups)}")
        self.strategy = strategy
        self.pretrainer = pretrainer
        self.objective = objective
        self.groups = groups
        self.cfg = train_cfg
        self.iterator = iterator
        self.local_replicas = local_replicas
        with strategy.scope():
            agg = tf.VariableAggregation.ONLY_FIRST_REPLICA
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step", aggregation=agg)
            self.consecutive_skips = tf.Variable(0, dtype=tf.int64, trainable=False, name="consecutive_skips",
                                                 aggregation=agg)
            self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps",
                                             aggregation=agg)
            # Metric sums since the last log line, kept in the graph (no per-step host reads) and
            # checkpointed, so the rows written after a resume equal those of an unbroken run.
            self.window = {k: tf.Variable(0.0, dtype=tf.float64, trainable=False, name=f"window_{k}",
                                          aggregation=agg) for k in SUM_KEYS}
            self.window_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="window_steps",
                                            aggregation=agg)
            # The rate each optimizer's update used in the last step (what a log row of that step shows).
            self.learning_rates = [tf.Variable(0.0, dtype=tf.float32, trainable=False, name=f"{g.name}_lr",
                                               aggregation=agg) for g in groups]
            # 1 once some worker asked to stop at a step: the same on every worker (not checkpointed).
            self.stop_agreed = tf.Variable(0, dtype=tf.int64, trainable=False, name="stop_agreed", aggregation=agg)
        self._forward_backward = tf.function(self._forward_backward_impl, jit_compile=bool(train_cfg.jit_compile))
        self._train_step_fn = tf.function(self._train_step, input_signature=[tf.TensorSpec([], tf.bool)])
        self.eval_step = tf.function(self._eval_step)

    # ------------------------------------------------------------------ input
    def _distribute(self, batch):
        if self.strategy.num_replicas_in_sync == 1 and self.local_replicas == 1:
            return batch
        n = self.local_replicas

        def value_fn(ctx):
            index = ctx.replica_id_in_sync_group % n
            return tf.nest.map_structure(lambda t: tf.split(t, n, axis=0)[index], batch)

        return self.strategy.experimental_distribute_values_from_function(value_fn)

    def _denominators(self, dist_batch):
        def count(b):
            return (tf.reduce_sum(tf.cast(b["masked_weights"], tf.float32)),
                    tf.reduce_sum(tf.cast(b["input_mask"], tf.float32)))

        per_replica = self.strategy.run(count, (dist_batch,))
        gen_den = self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica[0], axis=None)
        disc_den = self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica[1], axis=None)
        return tf.maximum(gen_den, 1.0), tf.maximum(disc_den, 1.0)

    # ------------------------------------------------------------------ replica computation
    def _seeds(self, stream, step, first_example, count):
        """Per-example sampling seeds: (seed + stream offset, step * global batch + example index).

        Keyed by the example's index in the global batch, the noise is the same under any number of
        replicas or micro-batches, and replays exactly after a resume.
        """
        base = tf.cast(step, tf.int64) * self.cfg.batch_size + tf.cast(first_example, tf.int64)
        stream_seed = tf.constant(sampling_stream(self.cfg.seed, stream), tf.int64)
        return example_seeds(tf.stack([stream_seed, base]), count)

    def _first_example(self, per_replica_batch):
        ctx = tf.distribute.get_replica_context()
        replica = ctx.replica_id_in_sync_group if ctx is not None else 0
        return tf.cast(replica, tf.int64) * per_replica_batch

    def _forward_backward_impl(self, batch, seed, gen_den, disc_den, scales, step, first_row):
        # Dropout masks keyed by (layer, step, example index in the global batch), like the Gumbel noise.
        with keyed_by_example(step, first_row):
            return self._forward_backward_keyed(batch, seed, gen_den, disc_den, scales)

    def _forward_backward_keyed(self, batch, seed, gen_den, disc_den, scales):
        variables = [v for g in self.groups for v in g.variables]
        with tf.GradientTape() as tape:
            outputs = self.pretrainer(batch, seed, training=True)
            gen_sum = generator_loss_sum(outputs["gen_logits"], batch["masked_ids"], batch["masked_weights"])
            disc_sum = discriminator_loss_sum(outputs["disc_logits"], outputs["labels"], batch["input_mask"])
            losses = self.objective(gen_loss=gen_sum / gen_den, disc_loss=disc_sum / disc_den)
            total = 0.0
            for group, scale in zip(self.groups, scales):
                total += scale * losses[group.name]
        grads = tape.gradient(total, variables)
        sums = rtd_sums(outputs, batch, gen_sum, disc_sum)
        return grads, sums

    def _replica_grads(self, batch, gen_den, disc_den, stop_requested):
        scales = [g.scale() for g in self.groups]
        k = self.cfg.grad_accum_steps
        per_replica = self.cfg.batch_size // self.strategy.num_replicas_in_sync
        micro_size = per_replica // k
        first = self._first_example(per_replica)
        grads, sums = None, None
        for micro in range(k):
            mb = batch if k == 1 else tf.nest.map_structure(lambda t: tf.split(t, k, axis=0)[micro], batch)
            seeds = self._seeds(TRAIN_SAMPLING, self.step, first + micro * micro_size, micro_size)
            g, s = self._forward_backward(mb, seeds, gen_den, disc_den, scales, tf.cast(self.step, tf.int64),
                                          first + micro * micro_size)
            if grads is None:
                grads, sums = g, s
            else:
                grads = [_to_dense(a) + _to_dense(b) for a, b in zip(grads, g)]
                sums = {key: sums[key] + s[key] for key in sums}
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, [v for gr in self.groups
                                                                               for v in gr.variables])]
        # The loss sums and the stop request are this replica's own: the count of replicas (on all
        # workers) whose loss is not finite, and of those asking to stop, travel with the gradients in
        # the one all-reduce of the step, so every replica and worker reaches the same two verdicts.
        bad = tf.cast(tf.logical_not(tf.math.is_finite(sums["gen_loss_sum"] + sums["disc_loss_sum"])), tf.float32)
        ctx = tf.distribute.get_replica_context()
        *grads, bad, stops = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                            grads + [bad, tf.cast(stop_requested, tf.float32)])
        finite, stop = tf.equal(bad, 0.0), stops > 0.0
        out_grads, norms = [], []
        start = 0
        for group, scale in zip(self.groups, scales):
            gg = [_to_dense(x) / scale for x in grads[start:start + len(group.variables)]]
            start += len(group.variables)
            norm = tf.linalg.global_norm(gg)
            finite = tf.logical_and(finite, tf.math.is_finite(norm))
            if group.clip_norm > 0:
                gg, _ = tf.clip_by_global_norm(gg, group.clip_norm, use_norm=norm)
            out_grads.append(gg)
            norms.append(norm)
        return out_grads, norms, finite, stop, sums

    def _apply(self, grads):
        for group, gg in zip(self.groups, grads):
            group.optimizer.apply(gg, group.variables)
        return tf.constant(True)

    # ------------------------------------------------------------------ steps
    def train_step(self, stop_requested=False):
        """One training step on the next batch: returns ``(grad norms per group, finite)``.

        Args:
            stop_requested: this worker asks every worker to stop after this
                step; ``stop_agreed`` then reads 1 on all of them.
        """
        return self._train_step_fn(tf.constant(bool(stop_requested)))

    def _train_step(self, stop_requested):
        batch = next(self.iterator)
        dist = self._distribute(batch)
        gen_den, disc_den = self._denominators(dist)
        grads, norms, finite, stop, sums = self.strategy.run(self._replica_grads,
                                                             (dist, gen_den, disc_den, stop_requested))
        finite = self.strategy.experimental_local_results(finite)[0]  # the same on every replica
        stop = self.strategy.experimental_local_results(stop)[0]
        self.stop_agreed.assign(tf.cast(stop, tf.int64))
        # Read before the update: applying it advances the schedule to the next step's rate.
        for group, rate in zip(self.groups, self.learning_rates):
            rate.assign(tf.cast(group.optimizer.learning_rate, tf.float32))
        tf.cond(finite, lambda: self._apply_all(grads), lambda: tf.constant(False))
        self._update_loss_scales(finite)
        self.consecutive_skips.assign(tf.where(finite, tf.constant(0, tf.int64), self.consecutive_skips + 1))
        self.skipped_steps.assign_add(tf.cast(tf.logical_not(finite), tf.int64))
        self.step.assign_add(1)
        for key, value in sums.items():
            self.window[key].assign_add(tf.cast(self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None),
                                                tf.float64))
        self.window_steps.assign_add(1)
        norms = [self.strategy.experimental_local_results(n)[0] for n in norms]
        return norms, finite

    def read_window(self):
        """Returns and resets the metric sums accumulated since the last call."""
        sums = {k: float(v.numpy()) for k, v in self.window.items()}
        steps = int(self.window_steps.numpy())
        for v in self.window.values():
            v.assign(0.0)
        self.window_steps.assign(0)
        return sums, steps

    def checkpoint_objects(self):
        """Loop state that a resume must restore besides models, optimizers and the iterator."""
        objects = {"step": self.step, "skipped_steps": self.skipped_steps,
                   "consecutive_skips": self.consecutive_skips, "window_steps": self.window_steps,
                   "window": dict(self.window)}
        for group in self.groups:
            if group.scaler is not None:
                objects[f"{group.name}_loss_scale"] = group.scaler.scale
                objects[f"{group.name}_good_steps"] = group.scaler.good_steps
        return objects

    def _apply_all(self, grads):
        self.strategy.run(self._apply, (grads,))
        return tf.constant(True)

    def _update_loss_scales(self, finite):
        for group in self.groups:
            if group.scaler is not None:
                group.scaler.update(finite)

    def _eval_replica(self, batch, index):
        size = tf.shape(batch["input_ids"])[0]
        seeds = self._seeds(EVAL_SAMPLING, index, self._first_example(tf.cast(size, tf.int64)), size)
        outputs = self.pretrainer(batch, seeds, training=False)
        sums = rtd_sums(outputs, batch)
        hist = auc_histograms(outputs["disc_logits"], outputs["labels"], batch["input_mask"])
        return sums, hist

    def _eval_step(self, batch, index):
        dist = self._distribute(batch)
        sums, hist = self.strategy.run(self._eval_replica, (dist, index))
        reduce = lambda v: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)  # noqa: E731
        return {k: reduce(v) for k, v in sums.items()}, reduce(hist)
