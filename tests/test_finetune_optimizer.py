"""Layer-wise learning-rate decay as the optimizer applies it, and decoupled weight decay."""

import re

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.finetune.classifier import SequenceClassifier
from electra_tf.finetune.optimizer import LayerwiseAdamax, layerwise_multipliers, trainable_variables
from electra_tf.networks import Encoder

L = 3
KW = dict(vocab_size=40, hidden_size=16, num_layers=L, num_heads=2, intermediate_size=32, embedding_size=8,
          dropout=0.0, attention_dropout=0.0, max_position_embeddings=16, absolute_positions=True,
          relative_buckets=8, relative_max_distance=16)
BATCH = {"input_ids": tf.constant([[2, 11, 12, 3, 13, 14, 3, 0], [2, 21, 3, 22, 23, 3, 0, 0]]),
         "token_type_ids": tf.constant([[0, 0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 1, 0, 0]]),
         "input_mask": tf.constant([[1, 1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 0, 0]])}
LABELS = tf.constant([0, 2])


def _classifier():
    model = SequenceClassifier(Encoder(**KW), num_labels=3, dropout=0.0)
    model(BATCH)
    return model


def _expected_multiplier(path, decay):
    """The documented rule, read from the variable's path: head 1, block i decay^(L-i), embeddings decay^(L+1)."""
    if "classifier_head" in path:
        return 1.0
    block = re.search(r"transformer_block_(\d+)/", path)
    if block:
        return decay ** (L - int(block.group(1)))
    assert "embeddings" in path or "relative_position_bias" in path, path
    return decay ** (L + 1)


def _grads(model, variables):
    with tf.GradientTape() as tape:
        logits = model(BATCH, training=True)["logits"]
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(LABELS, logits))
    return [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]


def test_each_variable_trains_at_its_layers_rate():
    """One AdaMax step moves every variable by lr * multiplier (its first step is lr * g / (|g| + eps))."""
    lr, decay = 1e-3, 0.5
    model = _classifier()
    variables = trainable_variables(model)
    opt = LayerwiseAdamax(learning_rate=lr, weight_decay=0.0, epsilon=1e-12)
    opt.set_lr_multipliers(layerwise_multipliers(model, decay))
    opt.build(variables)

    parts = {"head": 0, "block": 0, "embeddings": 0}
    for v in variables:
        assert opt.lr_multiplier(v) == pytest.approx(_expected_multiplier(v.path, decay)), v.path
        parts["head" if "classifier_head" in v.path else "block" if "transformer_block" in v.path
              else "embeddings"] += 1
    assert all(parts.values())  # every kind of part was checked
    assert opt.learning_rate_of(variables[0]) == pytest.approx(lr * opt.lr_multiplier(variables[0]))

    before = [v.numpy().copy() for v in variables]
    grads = _grads(model, variables)
    opt.apply(grads, variables)
    for v, b, g in zip(variables, before, grads):
        step = np.abs(v.numpy() - b)
        big = np.abs(g.numpy()) > 1e-6  # where |g| >> eps, AdaMax's first step is exactly lr * multiplier
        assert big.any(), v.path
        want = lr * _expected_multiplier(v.path, decay)
        np.testing.assert_allclose(step[big], want, rtol=2e-3, err_msg=v.path)
        assert step.max() <= want * 1.002, v.path


def test_top_block_one_factor_below_head_and_embeddings_lowest():
    decay = 0.8
    model = _classifier()
    mults = {v.path: m for v, m in layerwise_multipliers(model, decay)}
    head = [m for p, m in mults.items() if "classifier_head" in p]
    top = [m for p, m in mults.items() if f"transformer_block_{L - 1}/" in p]
    bottom = [m for p, m in mults.items() if "transformer_block_0/" in p]
    emb = [m for p, m in mults.items() if "embeddings" in p and "transformer_block" not in p]
    for values, want in ((head, 1.0), (top, decay), (bottom, decay ** L), (emb, decay ** (L + 1))):
        assert values and all(m == pytest.approx(want) for m in values)
    assert min(mults.values()) == pytest.approx(decay ** (L + 1))
    assert {m for _, m in layerwise_multipliers(model, 1.0)} == {1.0}


def test_weight_decay_is_decoupled_scaled_by_layer_rate_and_skips_biases_and_norms():
    lr, decay, wd = 1e-2, 0.5, 0.1
    model = _classifier()
    variables = trainable_variables(model)
    opt = LayerwiseAdamax(learning_rate=lr, weight_decay=wd)
    opt.set_lr_multipliers(layerwise_multipliers(model, decay))
    opt.build(variables)
    before = [v.numpy().copy() for v in variables]
    opt.apply([tf.zeros_like(v) for v in variables], variables)  # zero gradient: only the decay moves weights
    decayed = 0
    for v, b in zip(variables, before):
        if any(n in v.name for n in ("bias", "gamma", "beta")):
            np.testing.assert_array_equal(v.numpy(), b, err_msg=v.path)
        else:
            np.testing.assert_allclose(v.numpy(), b * (1 - lr * _expected_multiplier(v.path, decay) * wd),
                                       rtol=1e-6, err_msg=v.path)
            decayed += 1
    assert decayed


def test_bad_decay_and_missing_multiplier_are_refused():
    model = _classifier()
    with pytest.raises(ValueError, match=r"layer_decay must be in \(0, 1\].*got 1.5"):
        layerwise_multipliers(model, 1.5)
    opt = LayerwiseAdamax()
    variables = trainable_variables(model)
    opt.set_lr_multipliers(layerwise_multipliers(model, 0.9)[1:])
    with pytest.raises(ValueError, match="no learning-rate multiplier for"):
        opt.build(variables)


@pytest.mark.parametrize("sharing", ["shared", "gdes"])
def test_shared_embeddings_get_the_embedding_rate_and_gdes_table_stays_frozen(sharing):
    from electra_tf.config import load_config
    from electra_tf.models import build_models

    mode = "joint" if sharing == "shared" else "decoupled"
    cfg = load_config("tiny", ["model.vocab_size=64", "model.hidden_size=16", "model.num_layers=2",
                               "model.intermediate_size=32", f"embedding_sharing={sharing}", f"train.mode={mode}"])
    generator, discriminator = build_models(cfg)
    model = SequenceClassifier(discriminator.encoder, num_labels=2)
    model.build()
    table = generator.encoder.word_embedding.embeddings
    mults = {id(v): m for v, m in layerwise_multipliers(model, 0.5)}
    if sharing == "gdes":
        assert id(table) not in mults  # read through a stopped gradient: fine-tuning trains the delta only
        delta = model.encoder.embeddings.word_embedding.delta
        assert mults[id(delta)] == pytest.approx(0.5 ** 3)
    else:
        assert mults[id(table)] == pytest.approx(0.5 ** 3)
