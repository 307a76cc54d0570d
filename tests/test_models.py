"""Encoder, generator and discriminator: round trips, shapes, padding invariance, training signal."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.config import load_config
from electra_tf.models import Discriminator, Generator, build_models
from electra_tf.networks import Encoder

KW = dict(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32, embedding_size=8,
          dropout=0.0, attention_dropout=0.0, max_position_embeddings=32, relative_buckets=8,
          relative_max_distance=16)
IDS = tf.constant([[2, 11, 12, 13, 14, 3, 0, 0], [2, 21, 22, 3, 0, 0, 0, 0]], tf.int32)
POS = tf.constant([[1, 3], [2, 0]], tf.int32)


def _inputs():
    return {"input_ids": IDS, "masked_positions": POS}


MODELS = {
    "encoder": (lambda: Encoder(**KW), lambda m, x: m(x)["sequence_output"], (2, 8, 16)),
    "generator": (lambda: Generator(**KW), lambda m, x: m(x)["logits"], (2, 2, 50)),
    "discriminator": (lambda: Discriminator(**KW), lambda m, x: m(x)["logits"], (2, 8)),
    "encoder_absolute": (lambda: Encoder(**{**KW, "absolute_positions": True, "relative_buckets": 0}),
                         lambda m, x: m(x)["sequence_output"], (2, 8, 16)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_config_round_trip(name):
    make, call, shape = MODELS[name]
    model = make()
    out = call(model, _inputs())
    assert tuple(out.shape) == shape
    clone = model.__class__.from_config(model.get_config())
    call(clone, _inputs())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(call(clone, _inputs()).numpy(), out.numpy(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["encoder", "discriminator"])
def test_real_outputs_ignore_padded_tokens(name):
    make, call, _ = MODELS[name]
    model = make()
    mask = tf.cast(IDS != 0, tf.int32)
    noisy = tf.where(mask == 1, IDS, 40)  # different ids at padded places, same mask
    a = call(model, {"input_ids": IDS, "input_mask": mask})
    b = call(model, {"input_ids": noisy, "input_mask": mask})
    real = mask.numpy().astype(bool)
    np.testing.assert_array_equal(a.numpy()[real], b.numpy()[real])


def test_generator_logits_depend_only_on_requested_positions():
    gen = Generator(**KW)
    full = gen({"input_ids": IDS, "masked_positions": tf.constant([[1, 3], [2, 0]])})["logits"]
    one = gen({"input_ids": IDS, "masked_positions": tf.constant([[3], [0]])})["logits"]
    np.testing.assert_allclose(full.numpy()[:, 1], one.numpy()[:, 0], atol=1e-5)


@pytest.mark.parametrize("name", ["generator", "discriminator"])
def test_one_step_changes_every_trainable_variable(name):
    make, call, _ = MODELS[name]
    model = make()
    call(model, _inputs())
    before = [v.numpy().copy() for v in model.trainable_variables]
    opt = keras.optimizers.Adam(1e-2)
    with tf.GradientTape() as tape:
        out = call(model, _inputs())
        # Token-type embedding row 1 is never used by these inputs; every other variable must move.
        loss = tf.reduce_mean(tf.square(out - 0.5))
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    for v, b in zip(model.trainable_variables, before):
        assert np.abs(v.numpy() - b).max() > 0, f"{v.path} did not change"


def test_build_models_from_preset_and_sharing_modes():
    cfg = load_config("tiny", ["model.vocab_size=64", "data.max_seq_length=16"])
    g, d = build_models(cfg)
    assert g.encoder.hidden_size == 32 and d.encoder.hidden_size == 64
    assert g.encoder.embedding_size == d.encoder.embedding_size == 64
    gen_ids = {id(v) for v in g.trainable_variables}
    assert not gen_ids & {id(v) for v in d.trainable_variables}

    g, d = build_models(cfg.replace(embedding_sharing="gdes",
                                    train=cfg.train.__class__(**{**cfg.train.__dict__, "mode": "decoupled"})))
    table = g.encoder.word_embedding.embeddings
    assert any(v is table for v in d.trainable_variables)  # D reads the table ...
    delta = d.encoder.word_embedding.delta
    assert np.count_nonzero(delta.numpy()) == 0  # ... plus its own zero delta

    joint = cfg.replace(embedding_sharing="shared",
                        train=cfg.train.__class__(**{**cfg.train.__dict__, "mode": "joint"}))
    g, d = build_models(joint)
    assert g.encoder.word_embedding is d.encoder.word_embedding


def test_auto_vocab_must_be_resolved_first():
    cfg = load_config("tiny", ["model.vocab_size=auto"])
    with pytest.raises(ValueError, match="vocab_size is 'auto'"):
        build_models(cfg)


def test_checkpointing_the_model_alone_saves_and_restores_every_weight(tmp_path):
    """The DESIGN's promise: tf.train.Checkpoint(discriminator=model) restores the whole model."""
    model = Discriminator(**KW)
    model.build()
    path = tf.train.Checkpoint(discriminator=model).write(str(tmp_path / "ckpt"))
    fresh = Discriminator(**KW)
    fresh.build()
    tf.train.Checkpoint(discriminator=fresh).read(path).assert_existing_objects_matched()
    assert len(fresh.weights) == len(model.weights) > 20
    for a, b in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
