"""Fine-tuning tokenization with a WordPiece vocab.txt: the file's special ids, its casing, found beside the model."""

import os

import numpy as np
import pytest
from tf1_fixtures import WORDS, vocab_tokens

from electra_tf.config import load_config
from electra_tf.data.vocab import VocabError
from electra_tf.data.wordpiece import load_wordpiece
from electra_tf.finetune.features import encode_examples, eval_dataset, train_dataset
from electra_tf.finetune.readers import Example
from electra_tf.finetune.search import encode_task, find_vocab


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("wp_finetune") / "vocab.txt"
    path.write_text("\n".join(vocab_tokens(400, WORDS)) + "\n", encoding="utf-8")
    return str(path)


def test_pairs_are_packed_with_the_vocab_txts_cls_and_sep(vocab_file):
    vocab = load_wordpiece(vocab_file)
    examples = [Example("The dogs sat.", "A CAT ran", 1), Example("Happy", "sad", 0)]
    split = encode_examples(vocab, examples, max_seq_length=16)
    the, dog, s, sat, dot = (vocab.tokens.index(t) for t in ("the", "dog", "##s", "sat", "."))
    a, cat, ran = (vocab.tokens.index(t) for t in ("a", "cat", "ran"))
    assert split.input_ids[0] == [101, the, dog, s, sat, dot, 102, a, cat, ran, 102]
    assert split.token_type_ids[0] == [0] * 7 + [1] * 4
    assert split.specials == vocab.specials
    batch = next(iter(eval_dataset(split, batch_size=4)))
    ids = batch["input_ids"].numpy()
    assert ids[1][:4].tolist() == [101, vocab.tokens.index("happy"), 102, vocab.tokens.index("sad")]
    assert ids[2][:2].tolist() == [101, 102] and (ids[2][2:] == 0).all()  # fill rows: [CLS] [SEP], [PAD] 0
    assert batch["weight"].numpy().tolist() == [1.0, 1.0, 0.0, 0.0]
    train = next(iter(train_dataset(split, batch_size=2, seed=0)))
    assert set(np.unique(train["input_ids"].numpy()[:, 0])) == {101}


def test_encode_task_reads_a_vocab_txt_and_checks_its_size(vocab_file):
    class Task:
        is_regression = False

    encoded = encode_task(Task(), {"train": [Example("the cat", None, 0)]}, vocab_file, 8, vocab_size=400)
    assert encoded["train"].input_ids == [[101, 104, 106, 102]]
    with pytest.raises(VocabError, match="has 400 tokens but the config asks for model.vocab_size=512"):
        encode_task(Task(), {"train": []}, vocab_file, 8, vocab_size=512)


def test_the_vocab_txt_of_a_converted_model_dir_is_found(vocab_file, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "vocab.txt").write_bytes(open(vocab_file, "rb").read())
    cfg = load_config("electra_small", [f"data.path={tmp_path / 'nowhere'}"])
    assert find_vocab(str(model_dir), cfg) == os.path.join(str(model_dir), "vocab.txt")

