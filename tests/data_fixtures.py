"""Small synthetic corpora and a vocabulary for the data tests."""

import os
import random

WORDS = ("the model reads a short text and learns which tokens were replaced by a small generator while "
         "training runs on one machine with two cores so every test keeps its data tiny but real enough to "
         "tokenize pack shard shuffle mask and read back again through the pipeline").split()


def sentence(rng, low=4, high=14):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def documents(n_docs, seed=0, max_lines=6):
    """``n_docs`` documents of 1..max_lines sentences each, deterministic."""
    rng = random.Random(seed)
    return [[sentence(rng) for _ in range(rng.randint(1, max_lines))] for _ in range(n_docs)]


def write_text(path, docs):
    """Writes documents in the BERT format (a blank line between documents)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join("\n".join(doc) for doc in docs) + "\n")
    return path


def small_vocab(directory, docs=None, vocab_size=120):
    """Trains a small unigram vocabulary on the synthetic corpus; returns the .model path."""
    from electra_tf.data.vocab import train_vocab

    corpus = write_text(os.path.join(directory, "vocab-corpus.txt"), docs or documents(300, seed=99))
    return train_vocab([corpus], vocab_size, os.path.join(directory, "vocab"), num_threads=1)


def rebuilt_data(tiny_data, root):
    """Two data dirs from the test corpus of ``tiny_data``: ``relayout`` (its vocabulary, other shards) and
    ``other_vocab`` (a vocabulary of the same size trained on half the corpus: other pieces, other sha256)."""
    from electra_tf.data.manifest import load_manifest
    from electra_tf.data.tfrecords import vocab_path, write_pretraining_data
    from electra_tf.data.vocab import load_sentencepiece, train_vocab

    manifest = load_manifest(tiny_data)
    corpus = manifest["source"]
    relayout = os.path.join(root, "relayout")
    write_pretraining_data(corpus, vocab_path(tiny_data), relayout, manifest["max_seq_length"],
                           examples_per_shard=100, progress=False)
    with open(corpus[0], encoding="utf-8") as f:
        lines = f.readlines()
    half = os.path.join(root, "half.txt")
    with open(half, "w", encoding="utf-8") as f:
        f.writelines(lines[len(lines) // 2:])
    vocab = train_vocab([half], manifest["vocab_size"], os.path.join(root, "v2"))
    assert load_sentencepiece(vocab).get_piece_size() == manifest["vocab_size"]
    other_vocab = os.path.join(root, "other_vocab")
    write_pretraining_data([half], vocab, other_vocab, manifest["max_seq_length"], progress=False)
    assert load_manifest(other_vocab)["vocab_sha256"] != manifest["vocab_sha256"]
    return {"relayout": relayout, "other_vocab": other_vocab}
