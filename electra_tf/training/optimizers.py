"""Learning-rate schedules, AdamW groups and the split of variables between them."""

import keras
import tensorflow as tf

from electra_tf.config.schema import per_optimizer_key

# Variables whose names contain these are not weight-decayed: biases and LayerNorm scales/offsets.
NO_DECAY = ["bias", "gamma", "beta"]


@keras.saving.register_keras_serializable(package="electra_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then linear decay to 0 at ``total_steps``."""

    def __init__(self, peak, warmup_steps, total_steps):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        # ``step`` is the optimizer's count of updates already made (0 for the first).
        step = tf.cast(step, tf.float32)
        warm = self.peak * (step + 1.0) / max(1.0, float(self.warmup_steps))
        remaining = float(max(1, self.total_steps - self.warmup_steps))
        decay = self.peak * tf.maximum(0.0, (self.total_steps - step) / remaining)
        return tf.where(step < self.warmup_steps, warm, tf.minimum(decay, self.peak))

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


class PreReducedAdamW(keras.optimizers.AdamW):
    """AdamW for gradients that the caller has already summed across replicas.

    Keras 3 clips gradients per replica *before* summing them, which is not a
    clip of the global gradient norm. The trainer therefore all-reduces,
    measures and clips the gradients itself and hands the result here; this
    class only skips Keras's second all-reduce (which would multiply the
    gradients by the number of replicas). The equivalence of one and two
    replicas is tested (tests/test_pretraining.py).
    """

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


def optimizer_settings(train_cfg, role=None):
    """``warmup_steps``, ``weight_decay``, ``adam_beta1``, ``adam_beta2`` of one optimizer.

    ``role`` ``"generator"`` or ``"discriminator"`` reads the ``train.{role}_*``
    overrides (filled in at load: null means the shared value); None (joint)
    reads the shared ``train.*`` values.
    """
    keys = ("warmup_steps", "weight_decay", "adam_beta1", "adam_beta2")
    if role is None:
        return {key: getattr(train_cfg, key) for key in keys}
    out = {}
    for key in keys:
        value = getattr(train_cfg, per_optimizer_key(role, key))
        out[key] = getattr(train_cfg, key) if value is None else value
    return out


def make_optimizer(peak_lr, train_cfg, name, role=None):
    """An AdamW with warm-up + linear decay, for one role's settings (:func:`optimizer_settings`).

    Args:
        peak_lr: the schedule's peak learning rate.
        train_cfg: the ``train`` section.
        name: the optimizer's name.
        role: ``"generator"``, ``"discriminator"`` or None (joint: the shared settings).
    """
    s = optimizer_settings(train_cfg, role)
    schedule = WarmupLinearDecay(peak_lr, s["warmup_steps"], train_cfg.max_steps)
    opt = PreReducedAdamW(
        learning_rate=schedule, weight_decay=s["weight_decay"], beta_1=s["adam_beta1"], beta_2=s["adam_beta2"],
        epsilon=train_cfg.adam_epsilon, name=name)
    opt.exclude_from_weight_decay(var_names=NO_DECAY)
    return opt


def partition_variables(generator, discriminator):
    """``(generator_vars, discriminator_vars)``: disjoint, and together every trainable variable.

    A variable reachable from both models (a shared or GDES table) belongs to
    the generator: under GDES the discriminator reads it through a stopped
    gradient, so only the generator's loss trains it.
    """
    gen_vars = list(generator.trainable_variables)
    owned = {id(v) for v in gen_vars}
    disc_vars = [v for v in discriminator.trainable_variables if id(v) not in owned]
    return gen_vars, disc_vars
