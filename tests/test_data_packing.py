"""Packing documents into sequences, the hand-written Example protobuf, the eval rule."""

import random

import pytest

from electra_tf.data import packing
from electra_tf.data.vocab import CLS_ID, SEP_ID


def _docs(n, seed):
    """Documents of token ids; document d uses only the id 100 + d, so its tokens are recognisable."""
    rng = random.Random(seed)
    return [[[100 + d] * rng.randint(1, 40) for _ in range(rng.randint(1, 8))] for d in range(n)]


@pytest.mark.parametrize("short_seq_prob", [0.0, 0.5])
def test_no_sequence_spans_two_documents_and_no_token_is_lost(short_seq_prob):
    rng = random.Random(0)
    for d, lines in enumerate(_docs(200, seed=1)):
        sequences = packing.pack_document(lines, 16, short_seq_prob, rng)
        for seq in sequences:
            assert seq[0] == CLS_ID and seq[-1] == SEP_ID and len(seq) <= 16
            assert set(seq[1:-1]) == {100 + d}
        assert sum(len(s) - 2 for s in sequences) == sum(len(line) for line in lines)


def test_lines_are_packed_greedily_and_long_lines_are_cut():
    seqs = packing.pack_document([[7] * 3, [8] * 3, [9] * 9, [5] * 30], 10)
    assert seqs == [[CLS_ID, 7, 7, 7, 8, 8, 8, SEP_ID],   # the 9s do not fit the 8 free slots: new sequence
                    [CLS_ID, *[9] * 8, SEP_ID],          # a line longer than a sequence is cut, not dropped
                    [CLS_ID, 9, SEP_ID],                 # its tail starts the next one; the 5s do not fit
                    [CLS_ID, *[5] * 8, SEP_ID], [CLS_ID, *[5] * 8, SEP_ID], [CLS_ID, *[5] * 8, SEP_ID],
                    [CLS_ID, *[5] * 6, SEP_ID]]


def test_short_sequences_appear_with_short_seq_prob():
    lines = [[11] * 5 for _ in range(400)]
    full = packing.pack_document(lines, 64, 0.0, random.Random(0))
    mixed = packing.pack_document(lines, 64, 0.3, random.Random(0))
    assert min(len(s) for s in full[:-1]) >= 60
    short = sum(len(s) < 40 for s in mixed)
    assert 0.1 * len(mixed) < short < 0.5 * len(mixed)
    assert min(len(s) for s in mixed) >= 3


def test_serialized_example_parses_with_tensorflow():
    import tensorflow as tf

    ids = [CLS_ID, 5, 127, 128, 16383, 16384, 70000, SEP_ID]
    record = packing.serialize_example(ids, 12)
    expected = tf.train.Example()
    expected.features.feature["input_ids"].int64_list.value.extend(ids + [0] * 4)
    assert record == expected.SerializeToString()
    parsed = tf.io.parse_single_example(record, {"input_ids": tf.io.FixedLenFeature([12], tf.int64)})
    assert parsed["input_ids"].numpy().tolist() == ids + [0] * 4
    with pytest.raises(ValueError, match="does not fit max_seq_length=4"):
        packing.serialize_example(ids, 4)


def test_eval_documents_are_spread_evenly_at_the_requested_fraction():
    held = [i for i in range(1000) if packing.is_eval_document(i, 0.02)]
    assert len(held) == 20
    assert all(b - a == 50 for a, b in zip(held, held[1:]))
    assert not any(packing.is_eval_document(i, 0.0) for i in range(1000))
