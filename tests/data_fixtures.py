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
