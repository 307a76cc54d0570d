"""Replaced-token-detection metrics: the one place they are computed.

Per-replica code computes additive *sums* (:func:`generator_sums`,
:func:`discriminator_sums`, or both with :func:`rtd_sums`); sums from replicas,
micro-batches and steps add up, and :func:`summarize` turns a total into the
reported ratios. Training, evaluation and the benchmark all use these.
"""

import numpy as np
import tensorflow as tf

from electra_tf.models.objective import discriminator_loss_sum, generator_loss_sum

AUC_BINS = 2000
GENERATOR_KEYS = ("gen_loss_sum", "gen_correct", "gen_count")
DISCRIMINATOR_KEYS = ("disc_loss_sum", "disc_correct", "disc_count", "true_pos", "pred_pos", "actual_pos")
SUM_KEYS = GENERATOR_KEYS + DISCRIMINATOR_KEYS


def generator_sums(gen_logits, masked_ids, masked_weights, loss_sum=None):
    """The generator's additive statistics at the masked positions (float32 scalars, ``GENERATOR_KEYS``)."""
    weights = tf.cast(masked_weights, tf.float32)
    if loss_sum is None:
        loss_sum = generator_loss_sum(gen_logits, masked_ids, weights)
    gen_pred = tf.argmax(gen_logits, axis=-1, output_type=tf.int32)
    gen_hit = tf.cast(tf.equal(gen_pred, tf.cast(masked_ids, tf.int32)), tf.float32)
    return {
        "gen_loss_sum": tf.stop_gradient(loss_sum),
        "gen_correct": tf.reduce_sum(gen_hit * weights),
        "gen_count": tf.reduce_sum(weights),
    }


def discriminator_sums(disc_logits, labels, input_mask, loss_sum=None):
    """The discriminator's additive statistics at real positions (float32 scalars, ``DISCRIMINATOR_KEYS``).

    Replaced is the positive class; a position is predicted replaced when its logit is > 0.
    """
    mask = tf.cast(input_mask, tf.float32)
    if loss_sum is None:
        loss_sum = discriminator_loss_sum(disc_logits, labels, mask)
    labels = tf.cast(labels, tf.float32)
    pred = tf.cast(disc_logits > 0, tf.float32) * mask
    return {
        "disc_loss_sum": tf.stop_gradient(loss_sum),
        "disc_correct": tf.reduce_sum(tf.cast(tf.equal(pred, labels), tf.float32) * mask),
        "disc_count": tf.reduce_sum(mask),
        "true_pos": tf.reduce_sum(pred * labels),
        "pred_pos": tf.reduce_sum(pred),
        "actual_pos": tf.reduce_sum(labels * mask),
    }


def rtd_sums(outputs, batch, gen_loss_sum=None, disc_loss_sum=None):
    """Both models' statistics of one (micro-)batch (``SUM_KEYS``) from the pretrainer's outputs."""
    return {**generator_sums(outputs["gen_logits"], batch["masked_ids"], batch["masked_weights"], gen_loss_sum),
            **discriminator_sums(outputs["disc_logits"], outputs["labels"], batch["input_mask"], disc_loss_sum)}


def auc_histograms(disc_logits, labels, input_mask, bins=AUC_BINS):
    """Counts of positives and negatives per probability bin: float32 [2, bins].

    Adding histograms over batches and computing :func:`auc_from_histograms`
    gives the ROC AUC to within the bin width.
    """
    probs = tf.reshape(tf.sigmoid(tf.cast(disc_logits, tf.float32)), [-1])
    idx = tf.minimum(tf.cast(probs * bins, tf.int32), bins - 1)
    mask = tf.reshape(tf.cast(input_mask, tf.float32), [-1])
    lab = tf.reshape(tf.cast(labels, tf.float32), [-1])
    pos = tf.math.unsorted_segment_sum(lab * mask, idx, bins)
    neg = tf.math.unsorted_segment_sum((1.0 - lab) * mask, idx, bins)
    return tf.stack([pos, neg])


def auc_from_histograms(hist):
    """ROC AUC from [2, bins] positive/negative counts (ties within a bin count half)."""
    pos, neg = np.asarray(hist[0], np.float64), np.asarray(hist[1], np.float64)
    if pos.sum() == 0 or neg.sum() == 0:
        return float("nan")
    neg_below = np.cumsum(neg) - neg
    return float((pos * (neg_below + 0.5 * neg)).sum() / (pos.sum() * neg.sum()))


def add_sums(total, sums):
    """Adds a dict of numbers (or arrays) into ``total`` (returns it)."""
    for key, value in sums.items():
        value = np.asarray(value, np.float64)
        total[key] = total.get(key, 0.0) + value
    return total


def _ratio(a, b):
    return float(a / b) if b else 0.0


def summarize(total):
    """The reported metrics from accumulated sums (the generator's, the discriminator's or both)."""
    out = {}
    if "gen_count" in total:
        out["gen_loss"] = _ratio(total["gen_loss_sum"], total["gen_count"])
        out["gen_accuracy"] = _ratio(total["gen_correct"], total["gen_count"])
    if "disc_count" in total:
        tp, pp, ap = total["true_pos"], total["pred_pos"], total["actual_pos"]
        precision, recall = _ratio(tp, pp), _ratio(tp, ap)
        out.update({
            "disc_loss": _ratio(total["disc_loss_sum"], total["disc_count"]),
            "disc_accuracy": _ratio(total["disc_correct"], total["disc_count"]),
            "disc_precision": precision,
            "disc_recall": recall,
            "disc_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "replaced_fraction": _ratio(ap, total["disc_count"]),
        })
    if "auc_hist" in total:
        out["disc_auc"] = auc_from_histograms(total["auc_hist"])
    return out
