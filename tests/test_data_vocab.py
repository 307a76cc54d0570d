"""SentencePiece vocabularies: fixed special ids, exact size, atomic output, clear errors."""

import os

import pytest
from data_fixtures import documents, small_vocab, write_text

from electra_tf.data.vocab import MASK_ID, SPECIAL_TOKENS, VocabError, load_sentencepiece, train_vocab


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    return small_vocab(str(tmp_path_factory.mktemp("vocab")))


def test_special_tokens_sit_at_fixed_ids_and_size_is_exact(vocab):
    sp = load_sentencepiece(vocab, expected_vocab_size=120)
    assert [sp.id_to_piece(i) for i in range(5)] == list(SPECIAL_TOKENS)
    assert sp.pad_id() == 0 and sp.unk_id() == 1 and sp.bos_id() == -1 and sp.eos_id() == -1
    # [MASK] written in text is ordinary text, never the control id.
    assert MASK_ID not in sp.encode("the [MASK] token")
    assert os.path.isfile(vocab[: -len(".model")] + ".vocab")


def test_bpe_and_determinism(tmp_path):
    corpus = write_text(str(tmp_path / "c.txt"), documents(200, seed=3))
    a = train_vocab([corpus], 100, str(tmp_path / "a"), model_type="bpe", num_threads=1)
    b = train_vocab([corpus], 100, str(tmp_path / "b"), model_type="bpe", num_threads=1)
    assert load_sentencepiece(a, 100).id_to_piece(4) == "[MASK]"
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()


def test_too_large_vocab_is_an_error_and_leaves_no_model(tmp_path):
    corpus = write_text(str(tmp_path / "c.txt"), [["a tiny corpus with few words"]])
    with pytest.raises(VocabError, match=r"too small for vocab_size=5000.*at most \d+ pieces"):
        train_vocab([corpus], 5000, str(tmp_path / "v"))
    assert not os.path.exists(tmp_path / "v.model")
    smaller = train_vocab([corpus], 5000, str(tmp_path / "w"), hard_vocab_limit=False)
    assert 5 < load_sentencepiece(smaller).get_piece_size() < 5000


def test_size_mismatch_and_bad_files_are_named(vocab, tmp_path):
    with pytest.raises(VocabError, match="has 120 pieces but the config asks for model.vocab_size=4096"):
        load_sentencepiece(vocab, expected_vocab_size=4096)
    with pytest.raises(VocabError, match="nope.model does not exist"):
        load_sentencepiece(str(tmp_path / "nope.model"))
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(VocabError, match="bad.model is not a SentencePiece model"):
        load_sentencepiece(str(bad))
    with pytest.raises(VocabError, match="model_type must be one of"):
        train_vocab(["x.txt"], 100, str(tmp_path / "v"), model_type="wordpiece")
