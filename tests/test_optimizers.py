"""The pretraining optimizers: per-optimizer settings, and which weights AdamW decays (by role, not by name)."""

import glob
import os

import keras
import numpy as np
import pytest
from conftest import make_config

from electra_tf.config import CONFIG_DIR, load_config
from electra_tf.layers.relative_position_bias import RelativePositionBias
from electra_tf.models import build_models
from electra_tf.training.builder import build_pretraining
from electra_tf.training.optimizers import NO_DECAY, undecayed_variables, weight_roles

PRESETS = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(CONFIG_DIR, "*.yaml")))


def _lr_at(optimizer, step):
    optimizer.iterations.assign(step)
    return float(optimizer.learning_rate)


def test_each_optimizer_gets_its_own_warmup_decay_and_betas(tiny_data):
    run = build_pretraining(make_config(
        tiny_data, "train.mode=decoupled", "train.max_steps=100", "train.generator_lr=1e-3",
        "train.discriminator_lr=4e-3", "train.warmup_steps=5", "train.generator_warmup_steps=10",
        "train.discriminator_warmup_steps=4", "train.weight_decay=0.1", "train.discriminator_weight_decay=0.02",
        "train.generator_adam_beta1=0.8", "train.discriminator_adam_beta2=0.999"))
    gen, disc = (g.optimizer for g in run.groups)
    assert [g.name for g in run.groups] == ["generator", "discriminator"]
    # Warm-up: linear to the peak over each optimizer's own number of steps, then linear decay to 0.
    assert _lr_at(gen, 0) == pytest.approx(1e-3 / 10) and _lr_at(disc, 0) == pytest.approx(4e-3 / 4)
    assert _lr_at(gen, 3) == pytest.approx(1e-3 * 4 / 10) and _lr_at(disc, 3) == pytest.approx(4e-3)
    assert _lr_at(gen, 10) == pytest.approx(1e-3) and _lr_at(disc, 10) == pytest.approx(4e-3 * 90 / 96)
    assert _lr_at(gen, 100) == 0.0 and _lr_at(disc, 100) == 0.0
    assert (gen.weight_decay, disc.weight_decay) == pytest.approx((0.1, 0.02))
    assert (gen.beta_1, gen.beta_2) == pytest.approx((0.8, 0.98))
    assert (disc.beta_1, disc.beta_2) == pytest.approx((0.9, 0.999))


@pytest.mark.parametrize("mode", ["decoupled", "joint"])
def test_without_overrides_every_optimizer_uses_the_shared_settings(tiny_data, mode):
    run = build_pretraining(make_config(tiny_data, f"train.mode={mode}", "train.max_steps=100",
                                        "train.warmup_steps=8", "train.weight_decay=0.05", "train.adam_beta1=0.85",
                                        "train.adam_beta2=0.99"))
    peaks = {"joint": [run.cfg.train.learning_rate],
             "decoupled": [run.cfg.train.generator_lr, run.cfg.train.discriminator_lr]}[mode]
    assert len(run.groups) == len(peaks)
    for group, peak in zip(run.groups, peaks):
        opt = group.optimizer
        assert _lr_at(opt, 0) == pytest.approx(peak / 8) and _lr_at(opt, 7) == pytest.approx(peak)
        assert (opt.weight_decay, opt.beta_1, opt.beta_2) == pytest.approx((0.05, 0.85, 0.99))


def test_adamw_decays_exactly_the_kernels_and_tables_at_each_optimizers_rate(tiny_data):
    """With zero gradients Adam moves nothing, so what changes is weight decay alone."""
    run = build_pretraining(make_config(tiny_data, "train.mode=decoupled", "train.generator_lr=1e-3",
                                        "train.discriminator_lr=4e-3", "train.warmup_steps=2", "train.weight_decay=0.1",
                                        "train.generator_weight_decay=0.5"))
    roles = dict((id(v), role) for v, role in weight_roles(run.generator, run.discriminator))
    rates = {"generator": 1e-3 / 2 * 0.5, "discriminator": 4e-3 / 2 * 0.1}  # lr at the first step x decay
    for group in run.groups:
        for v in group.variables:
            v.assign(np.ones(v.shape, "float32"))
        group.optimizer.apply([np.zeros(v.shape, "float32") for v in group.variables], group.variables)
        for v in group.variables:
            expected = 1.0 - rates[group.name] if roles[id(v)] in ("kernel", "embedding") else 1.0
            np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6, err_msg=v.path)


def _preset_models(name, *extra):
    # The preset's structure (embedding size vs hidden, positions, heads, sharing) at 1 layer and a small vocabulary.
    cfg = load_config(name, ["model.vocab_size=128", "model.num_layers=1", "generator.num_layers=1", *extra])
    return cfg, build_models(cfg)


@pytest.mark.parametrize("name,extra", [(p, ()) for p in PRESETS] + [
    ("tiny", ("train.mode=joint", "embedding_sharing=shared")), ("tiny", ("embedding_sharing=gdes",)),
    ("tiny", ("model.absolute_positions=true", "model.relative_buckets=0")), ("small", ("embedding_sharing=gdes",))])
def test_decay_exclusions_of_each_preset(name, extra):
    """Every kernel and table is decayed; every bias, LayerNorm scale/offset and relative-position table is not."""
    cfg, (generator, discriminator) = _preset_models(name, *extra)
    roles = weight_roles(generator, discriminator)
    excluded = {id(v) for v in undecayed_variables(generator, discriminator)}
    every = {id(v): v for m in (generator, discriminator) for v in m.trainable_variables}
    assert len(roles) == len(every) and {id(v) for v, _ in roles} == set(every)
    tables = []
    for v, role in roles:
        if len(v.shape) == 1:  # biases and LayerNorm parameters are the vectors
            assert role in ("bias", "layer_norm") and id(v) in excluded, v.path
        elif role == "relative_position":
            assert id(v) in excluded, v.path
            tables.append(tuple(v.shape))
        else:  # matrices: Dense kernels, word/position/type tables, a GDES delta
            assert len(v.shape) == 2 and role in ("kernel", "embedding") and id(v) not in excluded, v.path
    buckets = cfg.model.relative_buckets
    expected = [(buckets, cfg.generator_dims().num_heads), (buckets, cfg.model.num_heads)] if buckets else []
    assert tables == expected
    layer_norms = [v for v, role in roles if role == "layer_norm"]
    # Per model: embeddings and 2 per block; the MLM head's. The original's generator reads D's embedding LayerNorm.
    assert len(layer_norms) == 2 * (3 + 3 + 1 - (cfg.embedding_sharing == "all"))


class _TableNamedOtherwise(RelativePositionBias):
    def build(self, input_shape=None):
        self.bias_table = self.add_weight(name="position_scores", shape=(self.num_buckets, self.num_heads),
                                          initializer="zeros", dtype="float32")
        self.built = True


def test_exclusion_follows_the_layer_not_the_variable_name():
    layer = _TableNamedOtherwise(num_heads=2, num_buckets=8, max_distance=16)
    layer.build()
    [table] = layer.trainable_variables
    assert not any(fragment in table.name for fragment in NO_DECAY)  # a rule by name would decay it
    assert undecayed_variables(layer) == [table]


class _Unclassified(keras.layers.Layer):
    def build(self, input_shape=None):
        self.scale = self.add_weight(name="scale", shape=(3,), initializer="ones")
        self.built = True


def test_a_weight_of_unknown_role_is_an_error_naming_it():
    layer = _Unclassified(name="mystery")
    layer.build()
    with pytest.raises(ValueError, match="no weight-decay role for mystery/scale"):
        weight_roles(layer)
