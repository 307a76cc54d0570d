"""Learning-rate schedules, AdamW groups and the split of variables between them."""

import keras
import tensorflow as tf

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


def make_optimizer(peak_lr, train_cfg, name):
    """An AdamW with the config's betas, epsilon, weight decay and warm-up + linear-decay schedule."""
    schedule = WarmupLinearDecay(peak_lr, train_cfg.warmup_steps, train_cfg.max_steps)
    opt = PreReducedAdamW(
        learning_rate=schedule, weight_decay=train_cfg.weight_decay, beta_1=train_cfg.adam_beta1,
        beta_2=train_cfg.adam_beta2, epsilon=train_cfg.adam_epsilon, name=name)
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
