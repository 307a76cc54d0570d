"""The ELECTRA objective: the two losses and how they become the loss of each optimizer.

The paper's formulas, with ``x̂`` the corrupted input and ``m`` the masked positions:

    L_G = mean over masked positions i in m of  -log p_G(x_i | masked x)
    L_D = mean over real positions t of  BCE(D(x̂)_t, [x̂_t != x_t])

:class:`JointObjective` (the original ELECTRA) minimises ``L_G + λ·L_D`` with one
optimizer; :class:`DecoupledObjective` (DecoupledOptim) minimises ``L_G`` with
the generator's optimizer and ``L_D`` with the discriminator's. The step forms
the losses as sums divided by *global* denominators, so these functions return
sums (float32 scalars).
"""

import tensorflow as tf


def generator_loss_sum(gen_logits, masked_ids, masked_weights):
    """Sum over masked positions of the MLM cross entropy (float32).

    Args:
        gen_logits: [B, P, V] logits at the masked positions.
        masked_ids: [B, P] original tokens.
        masked_weights: [B, P] 1 for a real masked position, 0 for padding.
    """
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(masked_ids, tf.int32),
                                                        logits=tf.cast(gen_logits, tf.float32))
    return tf.reduce_sum(ce * tf.cast(masked_weights, tf.float32))


def discriminator_loss_sum(disc_logits, labels, input_mask):
    """Sum over real positions of the sigmoid cross entropy (float32).

    Args:
        disc_logits: [B, S] replaced-token logits.
        labels: [B, S] 1 where the corrupted token differs from the original.
        input_mask: [B, S] 1 for a real token, 0 for padding.
    """
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32),
                                                 logits=tf.cast(disc_logits, tf.float32))
    return tf.reduce_sum(ce * tf.cast(input_mask, tf.float32))


class JointObjective:
    """The original ELECTRA: one optimizer (group ``"joint"``) on ``L_G + λ·L_D``.

    Args:
        disc_weight: λ (``train.disc_weight``, 50 in the paper).

    Example:

    >>> JointObjective(50.0)(gen_loss=2.0, disc_loss=0.1)
    {'joint': 7.0}
    """

    groups = ("joint",)

    def __init__(self, disc_weight):
        self.disc_weight = float(disc_weight)

    def __call__(self, gen_loss, disc_loss):
        return {"joint": gen_loss + self.disc_weight * disc_loss}


class DecoupledObjective:
    """DecoupledOptim: ``L_G`` trains the generator's variables, ``L_D`` the discriminator's.

    Example:

    >>> DecoupledObjective()(gen_loss=2.0, disc_loss=0.1)
    {'generator': 2.0, 'discriminator': 0.1}
    """

    groups = ("generator", "discriminator")

    def __call__(self, gen_loss, disc_loss):
        return {"generator": gen_loss, "discriminator": disc_loss}


def objective_for(mode, disc_weight=1.0):
    """The objective of ``train.mode`` (``joint`` or ``decoupled``)."""
    if mode == "joint":
        return JointObjective(disc_weight)
    if mode == "decoupled":
        return DecoupledObjective()
    raise ValueError(f"train.mode must be one of joint, decoupled; got {mode!r}")
