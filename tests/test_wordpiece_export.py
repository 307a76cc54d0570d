"""Text signatures from a WordPiece vocab.txt: a converted google-research/electra model exported and served."""

import logging
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the tokenizer ops before loading
from tf1_fixtures import WORDS, vocab_tokens, write_released_like

from electra_tf.convert import import_electra_tf1
from electra_tf.data.wordpiece import load_wordpiece
from electra_tf.export import export_model_dir

TOKENS = vocab_tokens(1000, WORDS)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("wp_export")
    write_released_like(str(root / "source"), words=WORDS)
    model_dir = str(root / "model")
    import_electra_tf1(str(root / "source"), model_dir)
    return model_dir, export_model_dir(model_dir, max_seq_length=16)


def test_a_converted_model_dir_exports_text_signatures_from_its_vocab_txt(exported):
    model_dir, paths = exported
    assert paths["vocab_model"].endswith("vocab.txt")
    with open(paths["vocab_model"], "rb") as a, open(os.path.join(model_dir, "vocab.txt"), "rb") as b:
        assert a.read() == b.read()
    disc = tf.saved_model.load(paths["discriminator"])
    assert {"encode", "detect", "encode_text", "detect_text"} <= set(disc.signatures)
    sentences = tf.constant(["The cat sat on the mat.", "Dogs played"])
    out = disc.signatures["detect_text"](sentences=sentences)
    ids = out["input_ids"].numpy()
    vocab = load_wordpiece(os.path.join(model_dir, "vocab.txt"))
    expected = [[101, *row, 102] for row in vocab.encode(["the cat sat on the mat.", "dogs played"])]
    for row, want in zip(ids, expected):
        assert row[:len(want)].tolist() == want and (row[len(want):] == 0).all()
    assert [t.decode() for t in out["tokens"][1].numpy()] == ["[CLS]", "dog", "##s", "play", "##ed", "[SEP]",
                                                             "", "", ""]
    # The text signature equals the id signature on the ids it made.
    by_ids = disc.signatures["detect"](input_ids=out["input_ids"], input_mask=out["input_mask"])
    np.testing.assert_allclose(out["replaced_probability"].numpy(), by_ids["replaced_probability"].numpy())
    encoded = disc.signatures["encode_text"](sentences=sentences)
    assert encoded["sequence_output"].shape == (2, 9, 64)
    long = disc.signatures["encode_text"](sentences=tf.constant([" ".join(["cat"] * 40)]))
    assert long["input_ids"].shape == (1, 16) and int(long["input_ids"][0, -1]) == 102


def test_fill_mask_finds_the_vocab_txts_mask_id(exported):
    _, paths = exported
    gen = tf.saved_model.load(paths["generator"])
    out = gen.signatures["fill_mask_text"](sentences=tf.constant(["The [MASK] sat on the [MASK].", "A big dog"]))
    ids = out["input_ids"].numpy()
    assert ids[0, 2] == 103 and ids[0, 6] == 103 and 103 not in ids[1]
    assert out["masked_positions"].numpy()[0].tolist() == [2, 6]
    assert out["masked_weights"].numpy().tolist() == [[1.0, 1.0], [0.0, 0.0]]
    top = out["top_ids"].numpy()[0]
    assert [[t.decode() for t in row] for row in out["top_tokens"].numpy()[0]] == [[TOKENS[i] for i in r] for r in top]
    by_ids = gen.signatures["fill_mask"](input_ids=out["input_ids"], input_mask=out["input_mask"])
    np.testing.assert_array_equal(by_ids["masked_positions"].numpy(), out["masked_positions"].numpy())
    np.testing.assert_array_equal(by_ids["top_ids"].numpy(), out["top_ids"].numpy())


def test_no_warning_and_no_id_only_export_for_a_wordpiece_model_dir(exported, caplog):
    model_dir, _ = exported
    with caplog.at_level(logging.WARNING, logger="electra_tf.export"):
        paths = export_model_dir(model_dir, max_seq_length=16)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "fill_mask_text" in tf.saved_model.load(paths["generator"]).signatures
