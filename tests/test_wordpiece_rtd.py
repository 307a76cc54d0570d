"""Fair RTD evaluation with a WordPiece model (converted from google-research/electra) on WordPiece data."""

import numpy as np
import pytest
from test_wordpiece_data import BERT_SPECIALS, word_corpus, write_original
from tf1_fixtures import WORDS, vocab_tokens, write_released_like

from electra_tf.convert import import_electra_tf1
from electra_tf.data.writer import write_pretraining_data
from electra_tf.evaluation.rtd import corrupt_held_out, evaluate_rtd
from electra_tf.pretrained import load_pretrained

SEQ = 32


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("wp_rtd")
    write_released_like(str(root / "source"), words=WORDS)
    model_dir = str(root / "model")
    import_electra_tf1(str(root / "source"), model_dir)
    data = str(root / "data")
    write_pretraining_data([word_corpus(str(root / "corpus.txt"), documents=80)], f"{model_dir}/vocab.txt", data,
                           SEQ, eval_fraction=0.2, short_seq_prob=0.0, progress=False)
    return root, model_dir, data


def test_corruption_masks_with_the_vocab_txts_ids_and_scores_are_reproducible(converted):
    _, model_dir, data = converted
    _, generator, _ = load_pretrained(model_dir, which=("generator",))
    corruption = corrupt_held_out(generator, data, batch_size=8, num_examples=16)
    ids = np.concatenate([b["corrupted_ids"] for b in corruption.batches])
    mask = np.concatenate([b["input_mask"] for b in corruption.batches]).astype(bool)
    labels = np.concatenate([b["labels"] for b in corruption.batches]).astype(bool)
    assert corruption.examples == 16 and labels.any()
    # Replaced tokens are never the specials' positions: [CLS] and [SEP] (101, 102) stay where they are.
    assert (ids[:, 0] == BERT_SPECIALS.cls).all() and not labels[:, 0].any()
    assert not (labels & ~mask).any()
    first = evaluate_rtd(model_dir, [model_dir], data_dir=data, batch_size=8, max_batches=2)
    again = evaluate_rtd(model_dir, [model_dir], data_dir=data, batch_size=4, max_batches=4)
    assert first == again and set(first[0]) >= {"discriminator", "accuracy", "precision", "recall", "f1", "auc"}


def test_the_originals_data_is_evaluated_with_split_train(converted, tmp_path):
    _, model_dir, _ = converted
    tokens = vocab_tokens(1000, WORDS)
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    write_original(str(tmp_path / "pretrain_tfrecords"), tokens, files=1, per_file=12)
    with pytest.raises(ValueError, match="has no 'eval' examples"):
        evaluate_rtd(model_dir, [model_dir], data_dir=str(tmp_path), batch_size=4)
    results = evaluate_rtd(model_dir, [model_dir], data_dir=str(tmp_path), batch_size=4, split="train")
    assert 0.0 <= results[0]["accuracy"] <= 1.0
