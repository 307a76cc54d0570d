"""Config loading, overrides, validation messages and the YAML round trip."""

import pytest

from electra_tf.config import ConfigError, config_from_dict, dump_config, load_config

PRESETS = ["tiny", "small", "base", "large"]


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_round_trip(name, tmp_path):
    cfg = load_config(name)
    path = tmp_path / "c.yaml"
    dump_config(cfg, str(path))
    assert load_config(str(path)) == cfg


def test_paper_table2_settings_in_base_and_large():
    for name, buckets, dist, glayers in [("base", 32, 128, 12), ("large", 128, 256, 8)]:
        cfg = load_config(name)
        t = cfg.train
        assert (t.mode, t.generator_lr, t.discriminator_lr, t.batch_size) == ("decoupled", 2e-4, 1.5e-3, 2048)
        assert (t.max_steps, t.warmup_steps, t.adam_beta1, t.adam_beta2) == (125000, 10000, 0.9, 0.98)
        assert (t.adam_epsilon, t.clip_norm, t.weight_decay, cfg.model.dropout) == (1e-6, 2.0, 0.01, 0.1)
        assert (cfg.data.max_seq_length, cfg.model.relative_buckets) == (512, buckets)
        assert cfg.model.relative_max_distance == dist
        assert cfg.generator_dims().num_layers == glayers


def test_preset_dimensions_match_design_table():
    tiny, small = load_config("tiny"), load_config("small")
    assert (tiny.model.num_layers, tiny.model.hidden_size, tiny.data.max_seq_length) == (2, 64, 64)
    assert (tiny.generator_dims().num_layers, tiny.generator_dims().hidden_size) == (2, 32)
    assert (small.model.num_layers, small.model.hidden_size, small.model.embedding_size) == (12, 256, 128)
    assert small.generator_dims().hidden_size == 64 and small.model.vocab_size == 30522


def test_overrides_apply_with_yaml_scalar_types():
    cfg = load_config("tiny", ["train.max_steps=7", "train.generator_lr=1e-5", "train.deterministic=true",
                               "data.path=null", "embedding_sharing=gdes", "generator.hidden_size=0.5"])
    assert cfg.train.max_steps == 7 and cfg.train.generator_lr == 1e-5 and cfg.train.deterministic is True
    assert cfg.embedding_sharing == "gdes" and cfg.generator_dims().hidden_size == 32


@pytest.mark.parametrize("override,message", [
    ("data.mask_prob=1.5", "data.mask_prob must be in (0, 1), got 1.5"),
    ("data.masking=ngram", "data.masking must be one of token, whole_word, span, got 'ngram'"),
    ("train.mode=adversarial", "train.mode must be one of ('joint', 'decoupled'), got 'adversarial'"),
    ("train.generator_lr=0", "train.generator_lr must be > 0, got 0"),
    ("train.discriminator_lr=-1e-3", "train.discriminator_lr must be > 0, got -0.001"),
    ("train.max_steps=ten", "train.max_steps must be of type int, got 'ten'"),
    ("train.batch_size=2.5", "train.batch_size must be of type int, got 2.5"),
    ("data.max_seq_length=1024", "data.max_seq_length must be <= model.max_position_embeddings (64), got 1024"),
    ("embedding_sharing=shared", "embedding_sharing must be 'none' or 'gdes' with train.mode=decoupled"),
    ("model.hidden_size=65", "model.hidden_size must be divisible by model.num_heads (2), got 65"),
    ("generator.hidden_size=1.5", "generator.hidden_size must be an integer >= 1 or a fraction in (0, 1]"),
])
def test_bad_values_name_key_value_and_accepted(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("tiny", [override])
    assert message in str(err.value)


@pytest.mark.parametrize("raw,message", [
    ({"train": {"learning_rat": 1e-3}}, "unknown config key train.learning_rat"),
    ({"optimizer": {}}, "unknown config key optimizer"),
    ({"model": [1, 2]}, "model must be a mapping"),
])
def test_unknown_keys_are_errors(raw, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(raw)


def test_unknown_override_key_and_malformed_override():
    with pytest.raises(ConfigError, match="unknown config key train.lr"):
        load_config("tiny", ["train.lr=1"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config("tiny", ["train.max_steps"])


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError,
                       match="presets: base, electra_base, electra_large, electra_small, large, small, tiny"):
        load_config("huge")


def test_a_yaml_list_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- model\n- train\n")
    with pytest.raises(ConfigError, match=f"{path} must hold a mapping of sections .* got a YAML list"):
        load_config(str(path))


@pytest.mark.parametrize("override", ["train.generator_lr=0", "train.learning_rat=1", "train.max_steps"])
def test_errors_caused_by_set_name_the_override_not_the_file(override):
    with pytest.raises(ConfigError) as err:
        load_config("tiny", [override])
    assert str(err.value).endswith(f"(from --set {override})") and "(in " not in str(err.value)


def test_errors_of_the_file_still_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  generator_lr: 0\n")
    with pytest.raises(ConfigError, match=r"train.generator_lr must be > 0, got 0(.0)? \(in .*bad.yaml\)"):
        load_config(str(path), ["train.max_steps=5"])


PER_OPTIMIZER = [f"{role}_{key}" for role in ("generator", "discriminator")
                 for key in ("warmup_steps", "weight_decay", "adam_beta1", "adam_beta2")]


@pytest.mark.parametrize("name", PRESETS)
def test_per_optimizer_settings_default_to_the_shared_ones(name):
    t = load_config(name).train
    for key in PER_OPTIMIZER:
        assert getattr(t, key) == getattr(t, key.split("_", 1)[1]), key


def test_per_optimizer_settings_override_the_shared_ones_and_round_trip(tmp_path):
    cfg = load_config("tiny", ["train.generator_warmup_steps=7", "train.discriminator_weight_decay=0",
                               "train.generator_adam_beta2=0.999", "train.discriminator_adam_beta1=0.8"])
    t = cfg.train
    assert (t.generator_warmup_steps, t.discriminator_warmup_steps) == (7, t.warmup_steps)
    assert (t.generator_weight_decay, t.discriminator_weight_decay) == (t.weight_decay, 0.0)
    assert (t.generator_adam_beta1, t.discriminator_adam_beta1) == (t.adam_beta1, 0.8)
    assert (t.generator_adam_beta2, t.discriminator_adam_beta2) == (0.999, t.adam_beta2)
    path = tmp_path / "c.yaml"
    dump_config(cfg, str(path))
    assert load_config(str(path)) == cfg


@pytest.mark.parametrize("override,message", [
    ("train.generator_warmup_steps=-1", "train.generator_warmup_steps must be null (= train.warmup_steps) or an "
                                        "integer >= 0, got -1"),
    ("train.discriminator_weight_decay=-0.1", "train.discriminator_weight_decay must be null (= train.weight_decay) "
                                              "or >= 0, got -0.1"),
    ("train.generator_adam_beta1=1.0", "train.generator_adam_beta1 must be null (= train.adam_beta1) or in [0, 1), "
                                       "got 1.0"),
    ("train.discriminator_adam_beta2=-0.5", "train.discriminator_adam_beta2 must be null (= train.adam_beta2) or in "
                                            "[0, 1), got -0.5"),
    ("train.generator_warmup_steps=1.5", "train.generator_warmup_steps must be of type int or null, got 1.5"),
])
def test_bad_per_optimizer_values_name_key_value_and_accepted(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("tiny", [override])
    assert message in str(err.value)


def test_joint_mode_refuses_per_optimizer_settings_that_differ_from_the_shared_ones():
    with pytest.raises(ConfigError) as err:
        load_config("tiny", ["train.mode=joint", "train.discriminator_warmup_steps=50"])
    assert ("train.discriminator_warmup_steps must be null or equal to train.warmup_steps (200) with "
            "train.mode=joint (one optimizer; set train.warmup_steps instead), got 50") in str(err.value)
    # Equal to the shared value (as a resolved joint config.yaml holds them) is accepted.
    t = load_config("tiny", ["train.mode=joint", "train.generator_weight_decay=0.1"]).train
    assert t.generator_weight_decay == t.weight_decay == 0.1
