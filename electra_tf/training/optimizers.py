"""Learning-rate schedules, AdamW groups, the split of variables between them and what is weight-decayed."""

import keras
import tensorflow as tf

from electra_tf.config.schema import per_optimizer_key
from electra_tf.layers.disentangled_embedding import DisentangledEmbedding
from electra_tf.layers.masked_lm_head import MaskedLMHead
from electra_tf.layers.relative_position_bias import RelativePositionBias

# Name fragments of the variables fine-tuning does not decay (electra_tf/finetune/optimizer.py).
NO_DECAY = ["bias", "gamma", "beta"]

# The roles of pretraining's weights (:func:`weight_roles`) and which of them AdamW decays.
DECAYED_ROLES = ("kernel", "embedding")
UNDECAYED_ROLES = ("bias", "layer_norm", "relative_position")


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


def make_optimizer(peak_lr, train_cfg, name, role=None, no_decay=()):
    """An AdamW with warm-up + linear decay, for one role's settings (:func:`optimizer_settings`).

    Args:
        peak_lr: the schedule's peak learning rate.
        train_cfg: the ``train`` section.
        name: the optimizer's name.
        role: ``"generator"``, ``"discriminator"`` or None (joint: the shared settings).
        no_decay: variables AdamW must not decay (:func:`undecayed_variables`).
    """
    s = optimizer_settings(train_cfg, role)
    schedule = WarmupLinearDecay(peak_lr, s["warmup_steps"], train_cfg.max_steps)
    opt = PreReducedAdamW(
        learning_rate=schedule, weight_decay=s["weight_decay"], beta_1=s["adam_beta1"], beta_2=s["adam_beta2"],
        epsilon=train_cfg.adam_epsilon, name=name)
    opt.exclude_from_weight_decay(var_list=list(no_decay))
    return opt


def _layer_roles(layer):
    """``[(variable, role)]`` for the weights ``layer`` itself creates, by layer type and attribute."""
    if isinstance(layer, keras.layers.LayerNormalization):
        return [(w, "layer_norm") for w in (layer.gamma, layer.beta) if w is not None]
    if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense)):
        return [(layer.kernel, "kernel")] + ([(layer.bias, "bias")] if layer.bias is not None else [])
    if isinstance(layer, keras.layers.Embedding):
        return [(layer.embeddings, "embedding")]
    if isinstance(layer, DisentangledEmbedding):
        return [(layer.delta, "embedding")]
    if isinstance(layer, MaskedLMHead):
        return [(layer.output_bias, "bias")]
    if isinstance(layer, RelativePositionBias):
        return [(layer.bias_table, "relative_position")]
    return []


def weight_roles(*models):
    """``[(variable, role)]`` for every trainable variable of ``models``, each once.

    The role comes from the layer that owns the variable, never from its name:
    ``kernel`` (Dense), ``embedding`` (embedding tables, a GDES delta),
    ``bias``, ``layer_norm`` (scale and offset) or ``relative_position`` (the
    T5 bias table).

    Raises:
        ValueError: a trainable variable no known layer owns (a new kind of
            weight must be given a role here, not silently decayed or not).
    """
    roles = {}
    for model in models:
        for layer in model._flatten_layers(include_self=True, recursive=True):
            for variable, role in _layer_roles(layer):
                roles.setdefault(id(variable), role)
    out, seen, unknown = [], set(), []
    for model in models:
        for variable in model.trainable_variables:
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            if id(variable) not in roles:
                unknown.append(variable.path)
            out.append((variable, roles.get(id(variable))))
    if unknown:
        raise ValueError(f"no weight-decay role for {', '.join(unknown[:5])}: give its layer type a role in "
                         "electra_tf/training/optimizers.py")
    return out


def undecayed_variables(*models):
    """The trainable variables AdamW leaves undecayed: biases, LayerNorm parameters, the relative-position table."""
    return [v for v, role in weight_roles(*models) if role in UNDECAYED_ROLES]


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
