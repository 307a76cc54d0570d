"""The masking rule: which positions, how many, what they become, and reproducibility."""

import math

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.data.masking import default_max_predictions, mask_sequence
from electra_tf.data.vocab import CLS_ID, MASK_ID, PAD_ID, SEP_ID

SEQ = 48


def _example(index, length):
    """``[CLS] w... [SEP] [PAD]...`` with ``length`` real tokens (specials included), ids >= 5."""
    words = tf.random.stateless_uniform([SEQ], seed=[99, index], minval=5, maxval=1000, dtype=tf.int32)
    pos = tf.range(SEQ)
    ids = tf.where(pos == 0, CLS_ID, tf.where(pos == length - 1, SEP_ID, tf.where(pos < length, words, PAD_ID)))
    return ids


def _masked(n, mask_prob=0.15, max_predictions=12, mask_token_prob=0.85, seed=7, min_len=2):
    """Masks ``n`` examples of varying length through tf.data; returns numpy arrays."""

    def make(i):
        length = tf.cast(min_len + i % (SEQ - min_len + 1), tf.int32)
        ids = _example(i, length)
        out = mask_sequence(ids, tf.stack([tf.constant(seed, tf.int64), i]), mask_prob, max_predictions,
                            mask_token_prob)
        return out

    ds = tf.data.Dataset.range(n).map(make).batch(n)
    return {k: v.numpy() for k, v in next(iter(ds)).items()}


def test_special_tokens_are_never_chosen_and_count_is_exact():
    out = _masked(600, max_predictions=SEQ)
    for row in range(600):
        ids, weights = out["input_ids"][row], out["masked_weights"][row]
        n_real = int((ids != PAD_ID).sum())
        count = int(weights.sum())
        assert count == min(round(0.15 * n_real), n_real - 2), (row, n_real, count)
        chosen = out["masked_positions"][row][weights > 0]
        assert len(set(chosen.tolist())) == count  # distinct
        assert not np.isin(ids[chosen], [PAD_ID, CLS_ID, SEP_ID]).any()
        assert list(chosen) == sorted(chosen)
        np.testing.assert_array_equal(out["masked_ids"][row][weights > 0], ids[chosen])
        # The padding of the position list is all zeros, with weight 0.
        assert not out["masked_positions"][row][weights == 0].any()
        assert not out["masked_ids"][row][weights == 0].any()
        np.testing.assert_array_equal(out["input_mask"][row], (ids != PAD_ID).astype(np.int32))


def test_count_is_capped_by_max_predictions():
    out = _masked(200, mask_prob=0.5, max_predictions=5, min_len=20)
    assert out["masked_positions"].shape == (200, 5)
    np.testing.assert_array_equal(out["masked_weights"].sum(axis=1), 5)


def test_only_chosen_positions_change_and_only_to_mask():
    out = _masked(400)
    changed = out["masked_input_ids"] != out["input_ids"]
    assert (out["masked_input_ids"][changed] == MASK_ID).all()
    for row in range(400):
        chosen = set(out["masked_positions"][row][out["masked_weights"][row] > 0].tolist())
        assert set(np.flatnonzero(changed[row]).tolist()) <= chosen


def test_mask_keep_split_is_85_15_within_sampling_error():
    out = _masked(3000, max_predictions=SEQ, min_len=30)
    weights = out["masked_weights"] > 0
    rows = np.repeat(np.arange(3000)[:, None], weights.shape[1], axis=1)[weights]
    positions = out["masked_positions"][weights]
    became_mask = out["masked_input_ids"][rows, positions] == MASK_ID
    n = became_mask.size
    assert n > 10_000
    sigma = math.sqrt(0.85 * 0.15 / n)
    assert abs(became_mask.mean() - 0.85) < 4 * sigma, (became_mask.mean(), n)


def test_positions_are_uniform_over_candidates():
    def make(i):
        ids = _example(i, tf.constant(SEQ, tf.int32))
        return mask_sequence(ids, tf.stack([tf.constant(3, tf.int64), i]), 0.15, 8)["masked_positions"]

    positions = next(iter(tf.data.Dataset.range(4000).map(make).batch(4000))).numpy().ravel()
    counts = np.bincount(positions, minlength=SEQ)[1:SEQ - 1]  # the 46 candidate positions
    expected = counts.sum() / counts.size
    assert counts.sum() == 4000 * round(0.15 * SEQ)
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 90, chi2  # 45 degrees of freedom: p < 1e-4 above ~90


def test_same_seed_same_masks_other_seed_other_masks():
    a, b, c = _masked(50, seed=5), _masked(50, seed=5), _masked(50, seed=6)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert (a["masked_positions"] != c["masked_positions"]).any()


def test_mask_token_prob_extremes():
    always = _masked(100, mask_token_prob=1.0)
    never = _masked(100, mask_token_prob=0.0)
    chosen = always["masked_weights"].sum()
    assert (always["masked_input_ids"] == MASK_ID).sum() == chosen
    np.testing.assert_array_equal(never["masked_input_ids"], never["input_ids"])


def test_sequence_without_candidates_and_graph_with_unknown_length():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def masked(ids):
        return mask_sequence(ids, tf.constant([1, 2], tf.int64), 0.15, 4)

    out = masked(tf.constant([CLS_ID, SEP_ID, PAD_ID, PAD_ID], tf.int32))
    assert out["masked_positions"].shape == (4,)
    assert float(tf.reduce_sum(out["masked_weights"])) == 0.0
    out = masked(tf.constant([CLS_ID, 10, 11, 12, 13, 14, 15, 16, 17, 18, SEP_ID], tf.int32))
    assert float(tf.reduce_sum(out["masked_weights"])) == round(0.15 * 11)


def test_bad_arguments_are_refused():
    ids = tf.constant([CLS_ID, 9, SEP_ID], tf.int32)
    with pytest.raises(ValueError, match="mask_prob must be in \\(0, 1\\), got 1.5"):
        mask_sequence(ids, tf.constant([0, 0], tf.int64), 1.5, 2)
    with pytest.raises(ValueError, match="max_predictions"):
        mask_sequence(ids, tf.constant([0, 0], tf.int64), 0.15, 0)
    assert default_max_predictions(0.15, 128) == 19
