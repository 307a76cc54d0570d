"""The masking rule: which positions, how many, what they become, and reproducibility, for every strategy."""

import math

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.data.masking import default_max_predictions, mask_sequence
from electra_tf.data.vocab import CLS_ID, MASK_ID, PAD_ID, SEP_ID

SEQ = 48
STRATEGIES = ("token", "whole_word", "span")
# Synthetic word starts: ids divisible by 3 continue the word before them (words of 1.5 pieces on average).
WORD_START = np.array([i % 3 != 0 for i in range(1000)])


def _example(index, length):
    """``[CLS] w... [SEP] [PAD]...`` with ``length`` real tokens (specials included), ids >= 5."""
    words = tf.random.stateless_uniform([SEQ], seed=[99, index], minval=5, maxval=1000, dtype=tf.int32)
    pos = tf.range(SEQ)
    ids = tf.where(pos == 0, CLS_ID, tf.where(pos == length - 1, SEP_ID, tf.where(pos < length, words, PAD_ID)))
    return ids


def _masked(n, mask_prob=0.15, max_predictions=12, mask_token_prob=0.85, seed=7, min_len=2, strategy="token"):
    """Masks ``n`` examples of varying length through tf.data; returns numpy arrays."""
    word_start = tf.constant(WORD_START)

    def make(i):
        length = tf.cast(min_len + i % (SEQ - min_len + 1), tf.int32)
        ids = _example(i, length)
        out = mask_sequence(ids, tf.stack([tf.constant(seed, tf.int64), i]), mask_prob, max_predictions,
                            mask_token_prob, strategy=strategy, word_start=word_start)
        return out

    ds = tf.data.Dataset.range(n).map(make).batch(n)
    return {k: v.numpy() for k, v in next(iter(ds)).items()}


def _words(ids):
    """The words of a sequence: lists of positions, as the word strategies define them."""
    words, previous_candidate = [], False
    for pos, token in enumerate(ids.tolist()):
        candidate = token not in (PAD_ID, CLS_ID, SEP_ID)
        if candidate and (WORD_START[token] or not previous_candidate):
            words.append([pos])
        elif candidate:
            words[-1].append(pos)
        previous_candidate = candidate
    return words


def _check_word_aligned(ids, chosen, budget):
    """No word split; the budget met, or no unchosen word would fit in the remainder. Returns whether met."""
    chosen = set(chosen.tolist())
    unchosen = []
    for word in _words(ids):
        inside = [p in chosen for p in word]
        assert all(inside) or not any(inside), (word, sorted(chosen))
        if not any(inside):
            unchosen.append(len(word))
    left = budget - len(chosen)
    assert left >= 0
    assert left == 0 or min(unchosen, default=left + 1) > left, (left, unchosen)
    return left == 0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_special_tokens_are_never_chosen_and_count_is_exact(strategy):
    out = _masked(600, max_predictions=SEQ, strategy=strategy)
    met = 0
    for row in range(600):
        ids, weights = out["input_ids"][row], out["masked_weights"][row]
        n_real = int((ids != PAD_ID).sum())
        count = int(weights.sum())
        budget = min(round(0.15 * n_real), n_real - 2)
        chosen = out["masked_positions"][row][weights > 0]
        if strategy == "token":
            assert count == budget, (row, n_real, count)
        else:
            met += _check_word_aligned(ids, chosen, budget)
            if sum(len(word) == 1 for word in _words(ids)) >= budget:
                # Enough one-piece words: some word always fits what is left, so the budget is met exactly.
                assert count == budget, (row, n_real, count)
        assert len(set(chosen.tolist())) == count  # distinct
        assert not np.isin(ids[chosen], [PAD_ID, CLS_ID, SEP_ID]).any()
        assert list(chosen) == sorted(chosen)
        np.testing.assert_array_equal(out["masked_ids"][row][weights > 0], ids[chosen])
        # The padding of the position list is all zeros, with weight 0.
        assert not out["masked_positions"][row][weights == 0].any()
        assert not out["masked_ids"][row][weights == 0].any()
        np.testing.assert_array_equal(out["input_mask"][row], (ids != PAD_ID).astype(np.int32))
    # Whole words of 1-2 pieces nearly always fill the budget exactly.
    assert strategy == "token" or met >= 0.97 * 600, met


@pytest.mark.parametrize("strategy", ["whole_word", "span"])
def test_word_strategies_respect_words_under_a_tight_cap(strategy):
    out = _masked(300, mask_prob=0.5, max_predictions=5, min_len=20, strategy=strategy)
    for row in range(300):
        ids, weights = out["input_ids"][row], out["masked_weights"][row]
        _check_word_aligned(ids, out["masked_positions"][row][weights > 0], 5)


def _masked_rows(rows, strategy, seeds=300, mask_prob=0.15):
    """Masks each of ``rows`` (lists of ids, specials included) under ``seeds`` seeds; the chosen positions."""
    word_start = tf.constant(WORD_START)
    length = max(len(r) for r in rows)
    ids = tf.constant([r + [PAD_ID] * (length - len(r)) for r in rows], tf.int32)

    def make(i):
        row = ids[i % len(rows)]
        out = mask_sequence(row, tf.stack([tf.constant(11, tf.int64), i]), mask_prob, length, strategy=strategy,
                            word_start=word_start)
        return out["masked_positions"], out["masked_weights"]

    positions, weights = next(iter(tf.data.Dataset.range(seeds * len(rows)).map(make).batch(seeds * len(rows))))
    positions, weights = positions.numpy(), weights.numpy()
    return [[positions[k][weights[k] > 0].tolist() for k in range(r, seeds * len(rows), len(rows))]
            for r in range(len(rows))]


# Word starts are ids not divisible by 3 (WORD_START): a "long" word is a start and continuations (multiples of 3).
_LONG = [10, 12, 15, 18, 21, 24, 27, 30]  # one word of 8 pieces
_SINGLES = [11, 13, 14, 16, 17, 19, 20, 22, 23, 25, 26, 28]  # twelve 1-piece words
_PAIRS = [31, 33, 34, 36, 37, 39, 40, 42]  # four 2-piece words


@pytest.mark.parametrize("strategy", ["whole_word", "span"])
def test_a_word_that_would_overflow_is_skipped_and_later_words_meet_the_budget(strategy):
    """Words are visited in a random order: one longer than what is left is skipped, and the ones after it are
    still tried, so the budget is met exactly whenever some unchosen word fits (asserted under 300 seeds each)."""
    rows = {
        # 22 real tokens: budget round(3.3) = 3; the 8-piece word never fits, wherever it stands.
        "long first": [CLS_ID, *_LONG, *_SINGLES, SEP_ID],
        "long last": [CLS_ID, *_SINGLES, *_LONG, SEP_ID],
        "long between": [CLS_ID, *_SINGLES[:6], *_LONG, *_SINGLES[6:], SEP_ID],
        # Eight 2-piece words and one 1-piece word, 19 real tokens: budget round(2.85) = 3, odd; met by a pair
        # then the single or the single then a pair, in whichever order they are visited.
        "pairs and a single": [CLS_ID, *_PAIRS, 43, 45, 46, 48, 49, 51, 52, 54, 11, SEP_ID],
    }
    chosen = dict(zip(rows, _masked_rows(list(rows.values()), strategy)))
    for name, row in rows.items():
        budget = round(0.15 * len(row))
        words = _words(np.array(row))
        for positions in chosen[name]:
            assert len(positions) == budget, (name, positions)
            inside = {p for word in words if set(word) <= set(positions) for p in word}
            assert inside == set(positions), (name, positions)  # whole words only
    long_word = set(range(1, 1 + len(_LONG)))
    assert not any(long_word & set(p) for p in chosen["long first"])


@pytest.mark.parametrize("strategy", ["whole_word", "span"])
def test_fewer_pieces_only_when_no_word_fits_what_is_left(strategy):
    """Only 2-piece words and an odd budget: no word fits the last piece, so one fewer (never a split word)."""
    row = [CLS_ID, *_PAIRS, *_PAIRS, 43, 45, 46, 48, SEP_ID]  # ten 2-piece words, 22 real tokens: budget 3
    budget = round(0.15 * len(row))
    assert budget == 3
    for positions in _masked_rows([row], strategy)[0]:
        assert len(positions) == budget - 1, positions
        words = [w for w in _words(np.array(row)) if set(w) <= set(positions)]
        assert sorted(p for w in words for p in w) == positions


def test_spans_are_longer_than_words():
    def mean_run(out):
        runs = []
        for row in range(len(out["input_ids"])):
            chosen = sorted(out["masked_positions"][row][out["masked_weights"][row] > 0].tolist())
            run = 1
            for a, b in zip(chosen, chosen[1:]):
                if b == a + 1:
                    run += 1
                else:
                    runs.append(run)
                    run = 1
            if chosen:
                runs.append(run)
        return np.mean(runs)

    words, spans = (_masked(500, max_predictions=SEQ, min_len=40, strategy=s) for s in ("whole_word", "span"))
    # Whole words give runs of ~1.6 pieces (neighbouring words merge). Spans draw 3.8 pieces on average, but
    # with a budget of ~7 pieces here many do not fit and the remainder is filled word by word: runs of ~2.4.
    assert mean_run(spans) > mean_run(words) + 0.5, (mean_run(spans), mean_run(words))


def test_count_is_capped_by_max_predictions():
    out = _masked(200, mask_prob=0.5, max_predictions=5, min_len=20)
    assert out["masked_positions"].shape == (200, 5)
    np.testing.assert_array_equal(out["masked_weights"].sum(axis=1), 5)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_only_chosen_positions_change_and_only_to_mask(strategy):
    out = _masked(400, strategy=strategy)
    changed = out["masked_input_ids"] != out["input_ids"]
    assert (out["masked_input_ids"][changed] == MASK_ID).all()
    for row in range(400):
        chosen = set(out["masked_positions"][row][out["masked_weights"][row] > 0].tolist())
        assert set(np.flatnonzero(changed[row]).tolist()) <= chosen


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_mask_keep_split_is_85_15_within_sampling_error(strategy):
    out = _masked(3000, max_predictions=SEQ, min_len=30, strategy=strategy)
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


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_same_masks_other_seed_other_masks(strategy):
    a, b, c = (_masked(50, seed=seed, strategy=strategy) for seed in (5, 5, 6))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert (a["masked_positions"] != c["masked_positions"]).any()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_mask_token_prob_extremes(strategy):
    always = _masked(100, mask_token_prob=1.0, strategy=strategy)
    never = _masked(100, mask_token_prob=0.0, strategy=strategy)
    chosen = always["masked_weights"].sum()
    assert (always["masked_input_ids"] == MASK_ID).sum() == chosen
    np.testing.assert_array_equal(never["masked_input_ids"], never["input_ids"])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_sequence_without_candidates_and_graph_with_unknown_length(strategy):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def masked(ids):
        return mask_sequence(ids, tf.constant([1, 2], tf.int64), 0.15, 4, strategy=strategy,
                             word_start=tf.constant([True] * 20))

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
    with pytest.raises(ValueError, match="masking strategy must be one of token, whole_word, span, got 'ngram'"):
        mask_sequence(ids, tf.constant([0, 0], tf.int64), 0.15, 2, strategy="ngram")
    with pytest.raises(ValueError, match="needs word_start"):
        mask_sequence(ids, tf.constant([0, 0], tf.int64), 0.15, 2, strategy="span")
    assert default_max_predictions(0.15, 128) == 19
