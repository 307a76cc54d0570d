"""The fine-tuning optimizer: AdaMax with decoupled weight decay and layer-wise learning-rate decay.

Layer-wise decay (``layer_decay`` = d < 1) gives layers nearer the input
smaller learning rates. With ``L`` transformer blocks, depths are::

    depth 0        embeddings (word, type, position, LayerNorm, projection)
                   and the relative-position bias shared by all blocks
    depth i + 1    transformer block i (0-based from the bottom)
    depth L + 1    the classification head

and a variable at depth ``k`` trains with ``lr * d ** (L + 1 - k)``: the head
at the full ``lr``, the top block at ``lr * d``, block ``i`` at
``lr * d ** (L - i)``, the embeddings at ``lr * d ** (L + 1)``. Each step of
depth is exactly one factor ``d``. (The original ELECTRA code counted
``n_layers + 2`` depths for a BERT pooler that ELECTRA does not have, so its top
block got ``d ** 2``; here there is no gap.) The multiplier scales the
learning rate itself — both the AdaMax step and the weight decay — not the
gradient, which an adaptive optimizer would divide away.

Example:

>>> mults = layerwise_multipliers(classifier, layer_decay=0.8)            # doctest: +SKIP
>>> opt = LayerwiseAdamax(WarmupLinearDecay(1e-4, 10, 100), weight_decay=0.01)   # doctest: +SKIP
>>> opt.set_lr_multipliers(mults); opt.build(classifier.trainable_variables)      # doctest: +SKIP
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.layers.disentangled_embedding import DisentangledEmbedding
from electra_tf.training.optimizers import NO_DECAY

__all__ = ["LayerwiseAdamax", "layer_depths", "layerwise_multipliers", "scale_multipliers", "shrink_blocks",
           "trainable_variables"]


def trainable_variables(classifier):
    """The variables fine-tuning trains: every trainable variable except a GDES-shared table.

    Under gradient-disentangled embedding sharing the discriminator reads the
    generator's word table through a stopped gradient; fine-tuning then trains
    the discriminator's own delta table and leaves the shared one as it is.
    """
    frozen = set()
    word = classifier.encoder.embeddings.word_embedding
    if isinstance(word, DisentangledEmbedding):
        frozen = {id(v) for v in word.shared.trainable_variables}
    return [v for v in classifier.trainable_variables if id(v) not in frozen]


def layer_depths(classifier):
    """``[(variable, depth)]`` for :func:`trainable_variables`, depths as in the module docstring.

    Raises:
        ValueError: a trainable variable belongs to no known part (a new kind
            of layer must be given a depth here, not silently a wrong rate).
    """
    encoder = classifier.encoder
    num_layers = len(encoder.blocks)
    parts = [(encoder.embeddings, 0)]
    if getattr(encoder, "relative_bias", None) is not None:
        parts.append((encoder.relative_bias, 0))
    parts += [(block, i + 1) for i, block in enumerate(encoder.blocks)]
    parts.append((classifier.head, num_layers + 1))
    depth_of = {}
    for part, depth in parts:
        for v in part.trainable_variables:
            depth_of.setdefault(id(v), depth)
    out = []
    for v in trainable_variables(classifier):
        if id(v) not in depth_of:
            raise ValueError(f"variable {v.path} is in no known part of the classifier (embeddings, relative bias, "
                             "transformer blocks, head); give it a depth in electra_tf/finetune/optimizer.py")
        out.append((v, depth_of[id(v)]))
    return out


def layerwise_multipliers(classifier, layer_decay):
    """``[(variable, multiplier)]``: ``layer_decay ** (L + 1 - depth)`` (all 1.0 when the decay is 1)."""
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1] (1 = off), got {layer_decay!r}")
    top = len(classifier.encoder.blocks) + 1
    return [(v, float(layer_decay) ** (top - depth)) for v, depth in layer_depths(classifier)]


def initial_rms(initializer_range):
    """The RMS of a matrix drawn from ``TruncatedNormal(stddev=initializer_range)`` (cut at two standard
    deviations): ``0.8796 * initializer_range``."""
    return 0.8796 * float(initializer_range)


def _rms(variable):
    return float(tf.sqrt(tf.reduce_mean(tf.square(tf.cast(variable, tf.float32)))).numpy())


def scale_multipliers(classifier, initializer_range):
    """``[(variable, scale)]``: each pretrained matrix's RMS over its RMS at initialisation (at least 1).

    AdaMax moves every weight by about the learning rate per step, whatever the
    weight's size, so the *relative* change a step makes is ``lr / rms(w)``.
    Pretraining grows weight matrices several-fold (most of it, in post-LN
    models, where the LayerNorms make the scale irrelevant to the output), and
    a rate tuned on freshly initialised weights then changes a pretrained model
    several times more slowly. Multiplying the step of every pretrained matrix
    (embedding tables and kernels: rank >= 2) by ``rms(w) / rms_init``
    (:meth:`LayerwiseAdamax.set_step_scales`) makes fine-tuning change each
    matrix by the same relative amount whatever pretraining did to its scale;
    freshly initialised weights get 1, so random init and the new head train
    exactly as before. Vectors (biases, LayerNorm parameters) keep 1.

    ``rms_init`` is the RMS of ``TruncatedNormal(stddev=initializer_range)``
    (cut at two standard deviations): ``0.8796 * initializer_range``.
    """
    rms_init = initial_rms(initializer_range)
    head = {id(v) for v in classifier.head.trainable_variables}
    out = []
    for v in trainable_variables(classifier):
        if id(v) in head or len(v.shape) < 2:
            out.append((v, 1.0))
            continue
        out.append((v, max(1.0, _rms(v) / rms_init)))
    return out


#: A block kernel is shrunk only when its RMS exceeds the initial RMS by more than this factor: freshly
#: initialised weights (whose sample RMS is the initial one within a few per cent) are left exactly as they are.
SHRINK_TOLERANCE = 1.1


def shrink_blocks(encoder, initializer_range):
    """Rescales each transformer-block kernel whose RMS has grown past its initial RMS back to that RMS.

    Pretraining grows the blocks' kernels several-fold (2.5-4x in the ``tiny``
    run). Under post-LN that turns a near-identity network, whose top layer still
    carries each token's embedding, into one whose blocks overwrite it; at small
    scale that network fine-tunes worse than random weights even where its
    features are better (docs/research.md, "Transfer", fourth round). Scaling
    every kernel of the blocks (attention ``qkv`` and output, the feed-forward
    ``intermediate`` and ``output``) by ``rms_init / rms(w)`` keeps the
    directions pretraining found and returns the blocks to the gain they had
    at initialisation: the "shrink" of shrink-and-perturb (Ash & Adams, 2020),
    with the factor set per matrix instead of one for all. Embeddings, biases,
    LayerNorm parameters and the relative-position bias are left as they are.

    Returns ``[(variable path, factor)]`` of the kernels it rescaled (empty for
    random init: kernels within :data:`SHRINK_TOLERANCE` of the initial RMS are
    not touched).
    """
    rms_init = initial_rms(initializer_range)
    changed = []
    for block in encoder.blocks:
        for v in block.weights:
            if len(v.shape) < 2 or not v.trainable:
                continue
            rms = _rms(v)
            if rms > SHRINK_TOLERANCE * rms_init:
                factor = rms_init / rms
                v.assign(v * factor)
                changed.append((v.path, factor))
    return changed


class LayerwiseAdamax(keras.optimizers.Adamax):
    """AdaMax with per-variable learning-rate multipliers and decoupled weight decay.

    For each variable ``w`` with multiplier ``m`` and scheduled rate ``lr``:
    ``w -= lr * m * weight_decay * w`` (unless the name contains ``bias``,
    ``gamma`` or ``beta``), then the AdaMax update with rate ``lr * m``.

    Gradients are expected already summed across replicas (and clipped) by
    the caller, as in pretraining: Keras's own all-reduce is skipped.

    Args:
        learning_rate: a float or a schedule (the peak rate of the head).
        weight_decay: decoupled weight-decay rate (0 = none).
        beta_1: first-moment decay.
        beta_2: decay of the infinity norm.
        epsilon: added to the infinity norm.
        **kwargs: passed to ``keras.optimizers.Adamax`` (not ``weight_decay``).
    """

    def __init__(self, learning_rate=1e-4, weight_decay=0.0, beta_1=0.9, beta_2=0.98, epsilon=1e-6, **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **kwargs)
        self.decoupled_weight_decay = float(weight_decay or 0.0)
        self._pending_multipliers = None
        self._pending_scales = None
        self._multipliers = []
        self._scales = []
        self._decays = []

    def set_lr_multipliers(self, pairs):
        """``pairs``: ``[(variable, multiplier)]``; call before :meth:`build`, covering every variable."""
        if self.built:
            raise ValueError("set_lr_multipliers must be called before the optimizer is built")
        self._pending_multipliers = {self._var_key(v): float(m) for v, m in pairs}

    def set_step_scales(self, pairs):
        """``pairs``: ``[(variable, scale)]`` multiplying the AdaMax step only, not the weight decay.

        With ``scale`` = the weight's growth (:func:`scale_multipliers`) a
        weight ``c`` times larger takes steps ``c`` times larger and decays at
        the same relative rate: its training is that of the unscaled weight,
        scaled. Variables not listed keep 1. Call before :meth:`build`.
        """
        if self.built:
            raise ValueError("set_step_scales must be called before the optimizer is built")
        self._pending_scales = {self._var_key(v): float(m) for v, m in pairs}

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        pending = self._pending_multipliers
        missing = [v.path for v in var_list if pending is not None and self._var_key(v) not in pending]
        if missing:
            raise ValueError(f"no learning-rate multiplier for {', '.join(missing[:5])}")
        self._multipliers = [1.0 if pending is None else pending[self._var_key(v)] for v in var_list]
        scales = self._pending_scales or {}
        self._scales = [scales.get(self._var_key(v), 1.0) for v in var_list]
        self._decays = [bool(self.decoupled_weight_decay) and not any(n in v.name for n in NO_DECAY)
                        for v in var_list]

    def lr_multiplier(self, variable):
        """The multiplier the optimizer applies to ``variable``'s learning rate."""
        return self._multipliers[self._get_variable_index(variable)]

    def learning_rate_of(self, variable):
        """The learning rate ``variable`` trains with at the current step."""
        return float(self.learning_rate.numpy()) * self.lr_multiplier(variable)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        lr = tf.cast(learning_rate, variable.dtype) * self._multipliers[index]
        if self._decays[index]:
            self.assign_sub(variable, variable * tf.cast(self.decoupled_weight_decay, variable.dtype) * lr)
        super().update_step(gradient, variable, lr * self._scales[index])

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)

    def get_config(self):
        config = super().get_config()
        config["weight_decay"] = self.decoupled_weight_decay
        return config
