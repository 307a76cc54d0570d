"""A google-research/electra checkpoint dir at test size, written by a real TF1 ``Saver``.

The names and shapes follow the original's variable scopes as its code
creates them (``model/modeling.py``: ``BertModel``, ``embedding_lookup``,
``embedding_postprocessor``, ``transformer_model``; ``run_pretraining.py``:
``_get_masked_lm_output``, ``_get_discriminator_output``), written out here
independently of ``electra_tf.convert``. Values are random; every weight has
its AdamW slots (``adam_m``, ``adam_v``) and there is an int64
``global_step``, as in a released checkpoint. ``vocab.txt`` has BERT's layout
of special tokens ([PAD] 0, [unused…], [UNK] 100, [CLS] 101, [SEP] 102,
[MASK] 103).
"""

import os

import numpy as np
import tensorflow as tf

TEST_SIZE = dict(vocab=1000, embedding=32, hidden=64, layers=2, generator_hidden=32, generator_layers=2,
                 max_positions=512, types=2)


def original_shapes(vocab, embedding, hidden, layers, generator_hidden=None, generator_layers=None,
                    max_positions=512, types=2, bert=False):
    """``{name: shape}`` of the original's weights; ``generator_hidden`` None: discriminator only.

    ``bert=True`` gives Google BERT's names instead (``bert/…``, a pooler, the
    ``cls/predictions`` head): a checkpoint the converter must refuse.
    """
    top = "bert" if bert else "electra"
    shapes = {f"{top}/embeddings/word_embeddings": (vocab, embedding),
              f"{top}/embeddings/token_type_embeddings": (types, embedding),
              f"{top}/embeddings/position_embeddings": (max_positions, embedding),
              f"{top}/embeddings/LayerNorm/gamma": (embedding,),
              f"{top}/embeddings/LayerNorm/beta": (embedding,)}

    def transformer(scope, width, depth):
        if embedding != width:  # tf.layers.dense(..., name="embeddings_project") under the model's scope
            shapes[f"{scope}/embeddings_project/kernel"] = (embedding, width)
            shapes[f"{scope}/embeddings_project/bias"] = (width,)
        inner = 4 * width
        for i in range(depth):
            layer = f"{scope}/encoder/layer_{i}"
            for name in ("query", "key", "value"):
                shapes[f"{layer}/attention/self/{name}/kernel"] = (width, width)
                shapes[f"{layer}/attention/self/{name}/bias"] = (width,)
            shapes[f"{layer}/attention/output/dense/kernel"] = (width, width)
            shapes[f"{layer}/attention/output/dense/bias"] = (width,)
            shapes[f"{layer}/attention/output/LayerNorm/gamma"] = (width,)
            shapes[f"{layer}/attention/output/LayerNorm/beta"] = (width,)
            shapes[f"{layer}/intermediate/dense/kernel"] = (width, inner)
            shapes[f"{layer}/intermediate/dense/bias"] = (inner,)
            shapes[f"{layer}/output/dense/kernel"] = (inner, width)
            shapes[f"{layer}/output/dense/bias"] = (width,)
            shapes[f"{layer}/output/LayerNorm/gamma"] = (width,)
            shapes[f"{layer}/output/LayerNorm/beta"] = (width,)

    transformer(top, hidden, layers)
    if bert:
        shapes.update({"bert/pooler/dense/kernel": (hidden, hidden), "bert/pooler/dense/bias": (hidden,),
                       "cls/predictions/output_bias": (vocab,)})
        return shapes
    shapes.update({"discriminator_predictions/dense/kernel": (hidden, hidden),
                   "discriminator_predictions/dense/bias": (hidden,),
                   "discriminator_predictions/dense_1/kernel": (hidden, 1),
                   "discriminator_predictions/dense_1/bias": (1,)})
    if generator_hidden:
        transformer("generator", generator_hidden, generator_layers)
        shapes.update({"generator_predictions/dense/kernel": (generator_hidden, embedding),
                       "generator_predictions/dense/bias": (embedding,),
                       "generator_predictions/LayerNorm/gamma": (embedding,),
                       "generator_predictions/LayerNorm/beta": (embedding,),
                       "generator_predictions/output_bias": (vocab,)})
    return shapes


def random_values(shapes, seed=0):
    """Random weights of a plausible scale: LayerNorm gammas near 1, the rest N(0, 0.1)."""
    rng = np.random.default_rng(seed)
    values = {}
    for name in sorted(shapes):
        value = rng.normal(0.0, 0.1, size=shapes[name])
        if name.endswith("/gamma"):
            value = 1.0 + value
        values[name] = value.astype(np.float32)
    return values


# Real lower-case words, punctuation and ``##`` continuations, for WordPiece text (``vocab_tokens(words=WORDS)``).
WORDS = ("the", "a", "cat", "dog", "bird", "fish", "sat", "ran", "saw", "ate", "on", "in", "under", "near", "mat",
         "tree", "house", "river", "big", "small", "red", "green", "old", "young", "and", "then", "it", "was",
         "happy", "sad", "quick", "slow", "jump", "play", "walk", "look", "sleep", "sun", "rain", "day", "night",
         "morning", "garden", "field", "water", "food", "friend", "mother", "child", "went", "home", "to", "with",
         "of", "by", "very", "is", "are", ".", ",", "!", "##s", "##ed", "##ing", "##er", "##ly")


def vocab_tokens(size, words=()):
    """BERT's layout at ``size`` tokens: [PAD], [unused0..98], [UNK], [CLS], [SEP], [MASK], ``words``, then filler."""
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(words)
    tokens += [f"tok{i}" if i % 3 else f"##p{i}" for i in range(size - len(tokens))]
    return tokens[:size]


def write_tf1_checkpoint(directory, values, step=1234, slots=True, vocab_size=None, words=()):
    """Saves ``values`` with a TF1 ``Saver`` as ``directory/model.ckpt-<step>`` (+ ``checkpoint``, ``vocab.txt``).

    Returns the checkpoint prefix.
    """
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(1)
    with tf.Graph().as_default():
        for name in sorted(values):
            tf.compat.v1.Variable(values[name], name=name)
            if slots:
                for slot in ("adam_m", "adam_v"):
                    tf.compat.v1.Variable(np.abs(rng.normal(0, 1e-3, values[name].shape)).astype(np.float32),
                                          name=f"{name}/{slot}")
        global_step = tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(global_step.assign(step))
            prefix = saver.save(session, os.path.join(directory, "model.ckpt"), global_step=step)
    if vocab_size is not None:
        with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(vocab_tokens(vocab_size, words)) + "\n")
    return prefix


def write_released_like(directory, with_generator=True, seed=0, step=1234, words=(), **overrides):
    """A test-size released checkpoint dir; returns ``(prefix, values)``. ``words`` go first in its vocab.txt."""
    size = {**TEST_SIZE, **overrides}
    shapes = original_shapes(size["vocab"], size["embedding"], size["hidden"], size["layers"],
                             size["generator_hidden"] if with_generator else None, size["generator_layers"],
                             size["max_positions"], size["types"])
    values = random_values(shapes, seed)
    return write_tf1_checkpoint(directory, values, step=step, vocab_size=size["vocab"], words=words), values


def padded_batch(seed, vocab=1000, batch=3, length=24):
    """``(ids, mask, types)`` in BERT's id layout: [CLS] 101 first, word ids from 104, rows 1 and 2 padded
    from positions 17 and 9 (id 0), token type 1 on the second half of the real tokens."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(104, vocab, size=(batch, length)).astype(np.int32)
    ids[:, 0], mask = 101, np.ones((batch, length), np.int32)
    mask[1, 17:], mask[2, 9:] = 0, 0
    ids[mask == 0] = 0
    types = np.zeros((batch, length), np.int32)
    types[:, length // 2:] = 1
    return ids, mask, types * mask
