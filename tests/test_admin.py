"""Admin initialisation (model.init: admin): the variance rule, where the ω live, and the presets that use it."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.config import ConfigError, load_config
from electra_tf.export import standalone_encoder
from electra_tf.models import admin_profile_batch, build_models
from electra_tf.networks import Encoder
from electra_tf.pretrained import load_pretrained

# A wide initializer makes the residual branches' variance O(1), so the ω grow well away from 1.
KW = dict(vocab_size=64, hidden_size=32, num_layers=4, num_heads=2, intermediate_size=64, dropout=0.1,
          attention_dropout=0.1, relative_buckets=8, relative_max_distance=16, initializer_range=0.2)
IDS = tf.random.stateless_uniform([4, 24], seed=[3, 4], minval=5, maxval=64, dtype=tf.int32)
MASK = tf.concat([tf.ones([4, 20], tf.int32), tf.zeros([4, 4], tf.int32)], axis=1)  # 4 padded places a row


def _variance(t, mask):
    t = np.asarray(t, np.float64)[np.asarray(mask, bool)]
    return float(t.var())


def test_profiling_sets_each_omega_to_the_summed_variance_of_what_came_before():
    enc = Encoder(init="admin", **KW)
    enc.build()
    omegas = enc.profile_admin({"input_ids": IDS, "input_mask": MASK})
    # Recompute the sublayers' outputs with the profiled ω in place, independently of profile_admin.
    x = enc.embeddings(IDS, training=False)
    bias = enc.relative_bias(x)
    expected = _variance(x, MASK)  # Var[x_0]
    got = []
    for block in enc.blocks:
        got.append(float(block.attention_omega.numpy()) ** 2)
        np.testing.assert_allclose(got[-1], expected, rtol=1e-4)
        attended = block.attention(x, attention_bias=bias, padding_mask=MASK, training=False)
        expected = got[-1] * _variance(x, MASK) + _variance(attended, MASK)
        x = block.attention_norm(x * block.attention_omega + attended)
        got.append(float(block.ffn_omega.numpy()) ** 2)
        np.testing.assert_allclose(got[-1], expected, rtol=1e-4)
        ffn = block.output_dense(keras.activations.gelu(block.intermediate_dense(x), approximate=False))
        expected = got[-1] * _variance(x, MASK) + _variance(ffn, MASK)
        x = block.output_norm(x * block.ffn_omega + ffn)
    assert got[0] == pytest.approx(1.0, rel=1e-4)  # the embedding LayerNorm's output has unit variance
    assert all(b > a + 0.05 for a, b in zip(got, got[1:])), got  # each ω² adds the branch before it
    assert [w ** 2 for pair in omegas for w in pair] == pytest.approx(got)
    # The running input variance stays ~1 after each post-LN, so ω_i² = 1 + Σ_{j<i} Var[f_j], as Admin defines.


def test_normal_init_has_no_omega_and_admin_with_unit_omega_computes_the_same():
    normal = Encoder(**KW)
    admin = Encoder(init="admin", **KW)
    normal.build()
    admin.build()
    assert not normal.non_trainable_weights
    assert len(admin.non_trainable_weights) == 2 * KW["num_layers"]
    assert len(admin.trainable_weights) == len(normal.trainable_weights)  # no optimizer owns the ω
    for mine, theirs in zip(admin.trainable_weights, normal.trainable_weights):
        mine.assign(theirs)
    inputs = {"input_ids": IDS, "input_mask": MASK}
    np.testing.assert_allclose(admin(inputs)["sequence_output"], normal(inputs)["sequence_output"], atol=1e-6)
    admin.profile_admin(inputs)
    assert not np.allclose(admin(inputs)["sequence_output"], normal(inputs)["sequence_output"], atol=1e-3)


def test_profile_admin_refuses_an_encoder_without_omega():
    enc = Encoder(**KW)
    enc.build()
    with pytest.raises(ValueError, match="init='admin'"):
        enc.profile_admin({"input_ids": IDS})


def _admin_config():
    return load_config("tiny", ["model.vocab_size=64", "model.hidden_size=32", "model.num_layers=2",
                                "model.num_heads=2", "generator.hidden_size=16", "generator.num_layers=2",
                                "data.max_seq_length=32", "model.init=admin", "model.initializer_range=0.2"])


def _omegas(model):
    return [float(w.numpy()) for w in model.encoder.non_trainable_weights]


def test_build_models_profiles_both_encoders_the_same_way_every_time():
    cfg = _admin_config()
    keras.utils.set_random_seed(5)
    gen, disc = build_models(cfg)
    assert len(_omegas(disc)) == 2 * cfg.model.num_layers and len(_omegas(gen)) == 2 * cfg.generator_dims().num_layers
    assert max(_omegas(disc)) > 1.05 and max(_omegas(gen)) > 1.05
    # The profiling batch depends on the config alone, so workers holding the same weights agree on the ω.
    np.testing.assert_array_equal(admin_profile_batch(cfg)["input_ids"], admin_profile_batch(cfg)["input_ids"])
    keras.utils.set_random_seed(5)
    assert _omegas(build_models(cfg)[1]) == pytest.approx(_omegas(disc), rel=1e-3)


def test_omegas_are_kept_in_checkpoints_and_in_the_exported_encoder(tmp_path):
    from electra_tf.config import dump_config

    cfg = _admin_config()
    gen, disc = build_models(cfg)
    for w in disc.encoder.non_trainable_weights:  # values profiling would not give
        w.assign(w * 1.5)
    prefix = str(tmp_path / "ckpt-1")
    tf.train.Checkpoint(generator=gen, discriminator=disc).write(prefix)
    dump_config(cfg, str(tmp_path / "config.yaml"))
    _, _, restored = load_pretrained(prefix, cfg=cfg)
    assert _omegas(restored) == pytest.approx(_omegas(disc))

    encoder = standalone_encoder(disc)
    inputs = {"input_ids": IDS % cfg.model.vocab_size, "input_mask": MASK}
    expected = disc.encoder(inputs)["sequence_output"]
    np.testing.assert_allclose(encoder(inputs)["sequence_output"], expected, atol=1e-5)
    path = os.path.join(tmp_path, "encoder.keras")
    encoder.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.init == "admin"
    np.testing.assert_allclose(loaded(inputs)["sequence_output"], expected, atol=1e-5)


def test_the_papers_presets_use_admin_and_a_bad_value_names_the_choices():
    assert load_config("base").model.init == "admin"
    assert load_config("large").model.init == "admin"
    assert load_config("tiny").model.init == "normal"
    with pytest.raises(ConfigError, match="model.init must be one of normal, admin, got 'xavier'"):
        load_config("tiny", overrides=["model.init=xavier"])
