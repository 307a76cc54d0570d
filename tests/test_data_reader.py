"""The masked tf.data reader: shapes, seeding, dynamic masks, exact resume, sharding, and data-dir errors."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from data_fixtures import documents, small_vocab, write_text

from electra_tf.data.manifest import DataError, check_manifest, diagnose_shards, load_manifest
from electra_tf.data.tfrecords import corrupt_shard_error, pretraining_dataset, write_pretraining_data
from electra_tf.data.vocab import MASK_ID

SEQ, P = 32, 5


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader")
    corpus = write_text(str(root / "corpus.txt"), documents(300, seed=8))
    out = str(root / "data")
    write_pretraining_data([corpus], small_vocab(str(root)), out, SEQ, eval_fraction=0.1, examples_per_shard=40,
                           progress=False)
    return out


def _dataset(data_dir, **kwargs):
    args = dict(batch_size=4, max_seq_length=SEQ, max_predictions=P, seed=1, shuffle_buffer=64, vocab_size=120)
    args.update(kwargs)
    return pretraining_dataset(data_dir, **args)


def _take(ds_or_iterator, n):
    it = iter(ds_or_iterator)
    return [{k: v.numpy() for k, v in next(it).items()} for _ in range(n)]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_batches_have_static_shapes_and_consistent_fields(data_dir):
    ds = _dataset(data_dir)
    shapes = {k: (spec.shape.as_list(), spec.dtype) for k, spec in ds.element_spec.items()}
    assert shapes == {"input_ids": ([4, SEQ], tf.int32), "input_mask": ([4, SEQ], tf.int32),
                      "masked_input_ids": ([4, SEQ], tf.int32), "masked_positions": ([4, P], tf.int32),
                      "masked_ids": ([4, P], tf.int32), "masked_weights": ([4, P], tf.float32)}
    for batch in _take(ds, 5):
        rows = np.arange(4)[:, None]
        chosen = batch["masked_weights"] > 0
        np.testing.assert_array_equal(batch["masked_ids"], batch["input_ids"][rows, batch["masked_positions"]] * chosen)
        changed = batch["masked_input_ids"] != batch["input_ids"]
        assert (batch["masked_input_ids"][changed] == MASK_ID).all()
        np.testing.assert_array_equal(batch["masked_weights"].sum(1),
                                      np.minimum(np.round(0.15 * batch["input_mask"].sum(1)), P))


STRATEGIES = ("token", "whole_word", "span")


@pytest.mark.parametrize("masking", STRATEGIES)
def test_same_seed_same_batches_other_seed_other_batches(data_dir, masking):
    _assert_same(_take(_dataset(data_dir, masking=masking), 4), _take(_dataset(data_dir, masking=masking), 4))
    other = _take(_dataset(data_dir, seed=2), 4)
    assert not all(np.array_equal(a["input_ids"], b["input_ids"]) for a, b in zip(_take(_dataset(data_dir), 4), other))


def test_each_epoch_gets_new_masks(data_dir):
    n = load_manifest(data_dir)["examples"]["train"]
    ds = _dataset(data_dir, batch_size=1, shuffle=False, cycle_length=1)
    batches = _take(ds, 2 * n)
    first, second = batches[:n], batches[n:]
    same_masks = 0
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a["input_ids"], b["input_ids"])  # same example ...
        same_masks += np.array_equal(a["masked_positions"], b["masked_positions"])
    assert same_masks < 0.2 * n  # ... masked anew


@pytest.mark.parametrize("masking", STRATEGIES)
def test_checkpointed_iterator_resumes_with_exactly_the_same_batches(data_dir, tmp_path, masking):
    iterator = iter(_dataset(data_dir, masking=masking))
    _take(iterator, 3)
    path = tf.train.Checkpoint(iterator=iterator).save(str(tmp_path / "ckpt"))
    expected = _take(iterator, 6)  # crosses an epoch boundary of the shuffle buffer refill
    restored = iter(_dataset(data_dir, masking=masking))
    tf.train.Checkpoint(iterator=restored).restore(path).assert_consumed()
    _assert_same(_take(restored, 6), expected)


@pytest.mark.parametrize("masking", STRATEGIES)
def test_masks_are_keyed_by_example_not_by_batch_layout(data_dir, masking):
    """A global batch is masked before it is split across replicas: slicing it (2 or 4 replicas) or batching it
    otherwise gives the same masked rows."""
    (whole,) = _take(_dataset(data_dir, batch_size=8, masking=masking), 1)
    for replicas in (2, 4):
        parts = _take(_dataset(data_dir, batch_size=8 // replicas, masking=masking), replicas)
        for key in whole:
            np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole[key], err_msg=key)


def test_word_strategies_mask_whole_sentencepiece_words(data_dir):
    from electra_tf.data.tfrecords import vocab_path
    from electra_tf.data.vocab import load_sentencepiece, word_start_table

    starts = word_start_table(load_sentencepiece(vocab_path(data_dir)))
    for masking in ("whole_word", "span"):
        for batch in _take(_dataset(data_dir, batch_size=16, max_predictions=8, masking=masking), 4):
            for ids, positions, weights in zip(batch["input_ids"], batch["masked_positions"],
                                               batch["masked_weights"]):
                chosen = set(positions[weights > 0].tolist())
                for pos in chosen:  # a chosen continuation piece has its word's previous piece chosen too
                    if not starts[ids[pos]] and ids[pos - 1] > 3:
                        assert pos - 1 in chosen, (masking, pos, ids.tolist(), sorted(chosen))
                for pos in range(1, len(ids) - 1):  # a chosen word start takes its continuation pieces
                    if pos in chosen and ids[pos + 1] > 4 and not starts[ids[pos + 1]]:
                        assert pos + 1 in chosen, (masking, pos, ids.tolist(), sorted(chosen))


def test_unknown_masking_is_refused(data_dir):
    with pytest.raises(ValueError, match="data.masking must be one of token, whole_word, span, got 'ngram'"):
        _dataset(data_dir, masking="ngram")


@pytest.mark.parametrize("split,pipelines", [("train", 2), ("eval", 3)])  # shard files / shard records
def test_input_pipelines_split_the_examples(data_dir, split, pipelines):
    def rows(context):
        ds = _dataset(data_dir, split=split, batch_size=1, shuffle=False, repeat=False, input_context=context)
        return [tuple(b["input_ids"][0]) for b in ds.as_numpy_iterator()]

    everything = rows(None)
    parts = [rows(tf.distribute.InputContext(pipelines, i, 1)) for i in range(pipelines)]
    assert all(parts) and sum(len(p) for p in parts) == len(everything)
    assert sorted(r for p in parts for r in p) == sorted(everything)


def test_eval_split_reads_once(data_dir):
    n = load_manifest(data_dir)["examples"]["eval"]
    batches = list(_dataset(data_dir, split="eval", shuffle=False, repeat=False).as_numpy_iterator())
    assert len(batches) == n // 4


def test_manifest_mismatch_names_both_values(data_dir):
    with pytest.raises(DataError, match="vocabulary of 120 pieces but model.vocab_size is 4096"):
        _dataset(data_dir, vocab_size=4096)
    with pytest.raises(DataError, match="sequences of length 32 but data.max_seq_length is 64"):
        check_manifest(load_manifest(data_dir), 120, 64, data_dir)
    with pytest.raises(DataError, match="no split 'test'"):
        _dataset(data_dir, split="test")


def test_missing_manifest_names_the_dir_and_the_fix(tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(DataError, match=r"half has no manifest.json.*build_pretraining_data.py"):
        pretraining_dataset(str(tmp_path / "half"))


def test_truncated_shard_is_named_when_the_dataset_is_made(data_dir, tmp_path):
    copy = shutil.copytree(data_dir, tmp_path / "copy")
    shard = os.path.join(copy, load_manifest(copy)["shards"]["train"][1]["file"])
    size = os.path.getsize(shard)
    with open(shard, "r+b") as f:
        f.truncate(size - 100)
    with pytest.raises(DataError, match=rf"{shard} is truncated: {size - 100} bytes, the manifest records {size}"):
        _dataset(str(copy))
    assert [p for p in diagnose_shards(str(copy)) if shard in p]


def test_corrupt_shard_is_named_after_a_data_loss_error(data_dir, tmp_path):
    copy = shutil.copytree(data_dir, tmp_path / "copy")
    assert diagnose_shards(str(copy)) == []
    shard = os.path.join(copy, load_manifest(copy)["shards"]["train"][0]["file"])
    with open(shard, "r+b") as f:  # same size, flipped bytes in the middle of a record
        f.seek(os.path.getsize(shard) // 2)
        f.write(b"\xff\xfe\xfd\xfc")
    ds = _dataset(str(copy), shuffle=False, cycle_length=1)
    with pytest.raises(tf.errors.DataLossError) as info:
        _take(ds, 100)
    error = corrupt_shard_error(str(copy), info.value)
    assert shard in str(error) and "corrupt" in str(error)
    assert len(diagnose_shards(str(copy))) == 1
