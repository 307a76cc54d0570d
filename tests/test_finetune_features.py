"""Sentence(-pair) encoding and batching for fine-tuning."""

import numpy as np
import pytest

from electra_tf.data.vocab import CLS_ID, SEP_ID
from electra_tf.finetune.features import EncodedSplit, encode_pair, eval_dataset, train_dataset, truncate_pair


def test_pair_layout_and_token_types():
    ids, types = encode_pair([10, 11], [20, 21, 22], max_seq_length=16)
    assert ids == [CLS_ID, 10, 11, SEP_ID, 20, 21, 22, SEP_ID]
    assert types == [0, 0, 0, 0, 1, 1, 1, 1]
    ids, types = encode_pair([10, 11, 12], None, max_seq_length=4)
    assert ids == [CLS_ID, 10, 11, SEP_ID] and types == [0, 0, 0, 0]


def test_truncation_takes_from_the_longer_side_first():
    a, b = truncate_pair(list(range(10)), list(range(100, 103)), 8)
    assert a == [0, 1, 2, 3, 4] and b == [100, 101, 102]
    a, b = truncate_pair(list(range(6)), list(range(100, 106)), 6)  # equal lengths: b gives first, then a
    assert a == [0, 1, 2] and b == [100, 101, 102]
    ids, types = encode_pair(list(range(10, 30)), list(range(40, 44)), max_seq_length=11)
    assert len(ids) == 11 and ids[-5:] == [40, 41, 42, 43, SEP_ID] and sum(types) == 5
    with pytest.raises(ValueError, match="max_seq_length must leave room .* got 4"):
        encode_pair([1], [2], max_seq_length=4)


def _split(n):
    ids = [[CLS_ID] + [10 + i] * (1 + i % 4) + [SEP_ID] for i in range(n)]
    return EncodedSplit(ids, [[0] * len(x) for x in ids], np.arange(n, dtype=np.int32) % 2)


def test_eval_batches_are_full_and_padding_rows_have_zero_weight():
    batches = list(eval_dataset(_split(10), batch_size=4))
    assert [b["input_ids"].shape[0] for b in batches] == [4, 4, 4]
    weights = np.concatenate([b["weight"].numpy() for b in batches])
    assert weights.tolist() == [1.0] * 10 + [0.0] * 2
    first = batches[0]
    np.testing.assert_array_equal(first["input_mask"].numpy(), (first["input_ids"].numpy() != 0).astype(int))
    assert list(eval_dataset(_split(10), 4, num_workers=2).as_numpy_iterator()).__len__() == 4
    assert next(iter(eval_dataset(_split(3), 4, pad_to=16)))["input_ids"].shape == (4, 16)


def test_train_batches_cover_each_example_once_per_epoch():
    ds = train_dataset(_split(8), batch_size=4, seed=3)
    seen = [tuple(b["input_ids"].numpy()[:, 1]) for b in ds.take(4)]
    assert sorted(seen[0] + seen[1]) == sorted(seen[2] + seen[3]) == list(range(10, 18))
    assert seen[:2] != seen[2:]  # reshuffled for the second epoch
