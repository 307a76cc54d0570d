"""The original ELECTRA's architecture and checkpoints: presets, sharing, conversion both ways, an independent oracle.

The checkpoint fixture (tests/tf1_fixtures.py) is written by a TF1 ``Saver``
with the original's variable names at test size: vocab 1000, embedding 32,
discriminator 2x64, generator 2x32, AdamW slots and ``global_step``.
"""

import importlib.util
import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from tf1_fixtures import original_shapes, padded_batch, random_values, write_released_like, write_tf1_checkpoint

from electra_tf.config import ConfigError, load_config
from electra_tf.convert import ConversionError, export_electra_tf1, import_electra_tf1
from electra_tf.models import build_models
from electra_tf.pretrained import load_pretrained

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("convert_checkpoint", os.path.join(ROOT, "scripts",
                                                                                  "convert_checkpoint.py"))
convert_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(convert_script)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """``(source dir, prefix, tf1 values, converted model dir)``, converted with the script."""
    root = tmp_path_factory.mktemp("released")
    source = str(root / "electra_test")
    prefix, values = write_released_like(source)
    model_dir = str(root / "model")
    assert convert_script.main(["--from", "electra_tf1", "--input", source, "--output", model_dir]) == 0
    return source, prefix, values, model_dir


# --------------------------------------------------------------------------- presets and sharing


@pytest.mark.parametrize("name,dims,generator,seq", [
    ("electra_small", (256, 12, 4, 1024, 128), (256, 12, 4, 1024), 128),
    ("electra_base", (768, 12, 12, 3072, 768), (256, 12, 4, 1024), 512),
    ("electra_large", (1024, 24, 16, 4096, 1024), (256, 24, 4, 1024), 512),
])
def test_electra_presets_are_the_released_architectures(name, dims, generator, seq):
    cfg = load_config(name)
    m = cfg.model
    assert (m.hidden_size, m.num_layers, m.num_heads, m.intermediate_size, m.embedding_size) == dims
    g = cfg.generator_dims()
    assert (g.hidden_size, g.num_layers, g.num_heads, g.intermediate_size) == generator
    assert (m.vocab_size, m.max_position_embeddings, m.type_vocab_size) == (30522, 512, 2)
    assert m.absolute_positions and m.relative_buckets == 0 and m.init == "normal" and m.activation == "gelu"
    assert cfg.embedding_sharing == "all" and cfg.train.mode == "joint" and cfg.train.disc_weight == 50.0
    assert cfg.data.max_seq_length == seq


def test_electra_small_has_the_released_parameter_count():
    """keras-hub's electra_small_discriminator_uncased_en lists 13,548,800 parameters: the encoder of the
    released checkpoint plus a 256x256 pooler dense the original does not have (65,792)."""
    _, discriminator = build_models(load_config("electra_small"))
    assert discriminator.encoder.count_params() == 13_548_800 - (256 * 256 + 256)


def test_the_generator_reads_the_discriminators_whole_embedding_block():
    cfg = load_config("electra_small", ["model.vocab_size=50", "model.num_layers=1", "generator.num_layers=1",
                                        "model.dropout=0.0", "model.attention_dropout=0.0"])
    generator, discriminator = build_models(cfg)
    g, d = generator.encoder.embeddings, discriminator.encoder.embeddings
    for attr in ("word_embedding", "position_embedding", "type_embedding", "layer_norm"):
        assert getattr(g, attr) is getattr(d, attr), attr
    assert g.projection is not d.projection  # each model projects to its own width
    batch = {"input_ids": tf.constant([[2, 7, 9, 3]]), "masked_positions": tf.constant([[1]])}
    before = generator(batch)["logits"].numpy()
    d.position_embedding.embeddings.assign(d.position_embedding.embeddings + 1.0)  # the discriminator's table
    assert not np.allclose(generator(batch)["logits"].numpy(), before)
    with pytest.raises(NotImplementedError, match="shared with another model"):
        generator.get_config()


def test_the_original_sharing_is_joint_only_and_the_message_names_decoupleds_choice():
    with pytest.raises(ConfigError, match="embedding_sharing must be 'none' with train.mode=decoupled .one copy of "
                                          "the embedding block per model"):
        load_config("electra_small", ["train.mode=decoupled"])
    assert load_config("electra_small", ["train.mode=decoupled", "embedding_sharing=none"]).train.mode == "decoupled"


# --------------------------------------------------------------------------- conversion


def test_tf1_to_model_dir_to_tf1_is_bitwise(released, tmp_path):
    source, prefix, _, model_dir = released
    assert sorted(os.listdir(model_dir)) == ["checkpoints", "config.yaml", "conversion.json", "vocab.txt"]
    record = json.load(open(os.path.join(model_dir, "conversion.json")))
    assert record["global_step"] == 1234 and record["generator"] == "converted"
    assert record["ignored_optimizer_slots_and_scalars"] == 2 * record["weights"]
    back = str(tmp_path / "back")
    assert convert_script.main(["--to", "electra_tf1", "--input", model_dir, "--output", back]) == 0
    original, written = tf.train.load_checkpoint(prefix), tf.train.load_checkpoint(os.path.join(back,
                                                                                                "model.ckpt-1234"))
    wanted = {n: s for n, s in original.get_variable_to_shape_map().items() if not n.endswith(("adam_m", "adam_v"))}
    assert written.get_variable_to_shape_map() == wanted
    dtypes = written.get_variable_to_dtype_map()
    for name, dtype in original.get_variable_to_dtype_map().items():
        if name in wanted:
            assert dtypes[name] == dtype, name
            a, b = original.get_tensor(name), written.get_tensor(name)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert open(os.path.join(back, "vocab.txt"), "rb").read() == open(os.path.join(source, "vocab.txt"), "rb").read()
    assert tf.train.latest_checkpoint(back) == os.path.join(back, "model.ckpt-1234")


def _garden_encoder(values, scope, hidden, layers, heads, embedding):
    """Model Garden's BertEncoder with the original's weights, set by the original's names."""
    from official.nlp.modeling import networks

    encoder = networks.BertEncoder(
        vocab_size=values["electra/embeddings/word_embeddings"].shape[0], hidden_size=hidden, num_layers=layers,
        num_attention_heads=heads, max_sequence_length=512, type_vocab_size=2, inner_dim=4 * hidden,
        inner_activation="gelu", output_dropout=0.0,  # tf_keras resolves "gelu" to the exact (erf) GELU
        attention_dropout=0.0, embedding_width=embedding, dict_outputs=True)
    head = hidden // heads
    wanted = {"word_embeddings/embeddings": values["electra/embeddings/word_embeddings"],
              "position_embedding/embeddings": values["electra/embeddings/position_embeddings"],
              "type_embeddings/embeddings": values["electra/embeddings/token_type_embeddings"],
              "embeddings/layer_norm/gamma": values["electra/embeddings/LayerNorm/gamma"],
              "embeddings/layer_norm/beta": values["electra/embeddings/LayerNorm/beta"]}
    if embedding != hidden:
        wanted["embedding_projection/kernel"] = values[f"{scope}/embeddings_project/kernel"]
        wanted["embedding_projection/bias"] = values[f"{scope}/embeddings_project/bias"]
    for i in range(layers):
        src, dst = f"{scope}/encoder/layer_{i}", f"transformer/layer_{i}"
        for name in ("query", "key", "value"):
            wanted[f"{dst}/self_attention/{name}/kernel"] = values[f"{src}/attention/self/{name}/kernel"].reshape(
                hidden, heads, head)
            wanted[f"{dst}/self_attention/{name}/bias"] = values[f"{src}/attention/self/{name}/bias"].reshape(
                heads, head)
        wanted[f"{dst}/self_attention/attention_output/kernel"] = values[
            f"{src}/attention/output/dense/kernel"].reshape(heads, head, hidden)
        wanted[f"{dst}/self_attention/attention_output/bias"] = values[f"{src}/attention/output/dense/bias"]
        for ours, theirs in (("self_attention_layer_norm", "attention/output/LayerNorm"),
                             ("output_layer_norm", "output/LayerNorm")):
            wanted[f"{dst}/{ours}/gamma"] = values[f"{src}/{theirs}/gamma"]
            wanted[f"{dst}/{ours}/beta"] = values[f"{src}/{theirs}/beta"]
        for ours, theirs in (("intermediate", "intermediate/dense"), ("output", "output/dense")):
            wanted[f"{dst}/{ours}/kernel"] = values[f"{src}/{theirs}/kernel"]
            wanted[f"{dst}/{ours}/bias"] = values[f"{src}/{theirs}/bias"]
    set_names = set()
    for weight in encoder.weights:
        name = weight.name.split(":")[0]
        if name.startswith("pooler_transform"):
            continue  # BERT's pooler; the original ELECTRA pools by taking the first token
        weight.assign(wanted[name])
        set_names.add(name)
    assert set_names == set(wanted)
    return encoder


def _inputs():
    return padded_batch(5)


def test_imported_discriminator_matches_model_garden_bert_encoder(released):
    _, _, values, model_dir = released
    _, _, discriminator = load_pretrained(model_dir, which=("discriminator",))
    ids, mask, types = _inputs()
    ours = discriminator({"input_ids": ids, "input_mask": mask, "token_type_ids": types},
                         training=False)["sequence_output"].numpy()
    garden = _garden_encoder(values, "electra", hidden=64, layers=2, heads=1, embedding=32)
    theirs = garden({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})["sequence_output"].numpy()
    real = mask.astype(bool)
    assert np.abs(ours - theirs)[real].max() < 1e-5
    assert np.abs(theirs[real]).max() > 0.5  # not trivially small outputs


def _gelu(x):
    return 0.5 * x * (1.0 + tf.math.erf(tf.constant(x / np.sqrt(2.0), tf.float64)).numpy())


def test_imported_generator_matches_model_garden_and_the_originals_mlm_head(released):
    _, _, values, model_dir = released
    generator, _ = load_pretrained(model_dir, which=("generator",))[1:]
    ids, mask, types = _inputs()
    positions = np.array([[1, 4, 7], [2, 3, 16], [1, 5, 8]], np.int32)
    ours = generator({"input_ids": ids, "input_mask": mask, "token_type_ids": types, "masked_positions": positions},
                     training=False)["logits"].numpy()
    garden = _garden_encoder(values, "generator", hidden=32, layers=2, heads=1, embedding=32)
    hidden = garden({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})["sequence_output"].numpy()
    gathered = np.take_along_axis(hidden, positions[..., None], axis=1).astype(np.float64)
    # run_pretraining._get_masked_lm_output: dense + GELU, LayerNorm, @ word table^T + output_bias.
    h = _gelu(gathered @ values["generator_predictions/dense/kernel"] + values["generator_predictions/dense/bias"])
    h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-12)
    h = h * values["generator_predictions/LayerNorm/gamma"] + values["generator_predictions/LayerNorm/beta"]
    expected = h @ values["electra/embeddings/word_embeddings"].T + values["generator_predictions/output_bias"]
    assert np.abs(ours - expected).max() < 1e-5


def test_a_discriminator_only_checkpoint_gets_a_fresh_generator_and_a_warning(tmp_path, caplog):
    source = str(tmp_path / "disc_only")
    write_released_like(source, with_generator=False)
    with caplog.at_level(logging.WARNING, logger="electra_tf.convert.electra_tf1"):
        import_electra_tf1(source, str(tmp_path / "model"), generator_hidden_size=16)
    assert "has no generator (a discriminator-only checkpoint)" in caplog.text
    cfg, generator, discriminator = load_pretrained(str(tmp_path / "model"))
    assert cfg.generator_dims().hidden_size == 16 and cfg.generator_dims().num_layers == 2
    assert json.load(open(tmp_path / "model" / "conversion.json"))["generator"] == "initialised"
    # The fresh generator reads the converted embedding block.
    assert generator.encoder.embeddings.word_embedding is discriminator.encoder.embeddings.word_embedding
    out = generator({"input_ids": tf.constant([[101, 200, 102]]), "masked_positions": tf.constant([[1]])})
    assert np.isfinite(out["logits"].numpy()).all()


def test_the_converted_model_dir_loads_exports_and_builds_a_classifier(released, tmp_path):
    import shutil

    from electra_tf.export import export_model_dir
    from electra_tf.finetune.runner import build_classifier
    from electra_tf.pretrained import find_config

    _, _, values, model_dir = released
    copy = str(tmp_path / "model")
    shutil.copytree(model_dir, copy)
    paths = export_model_dir(copy)
    assert os.path.isdir(paths["discriminator"]) and os.path.isdir(paths["generator"])
    reloaded = tf.saved_model.load(paths["discriminator"])
    ids, mask, _ = _inputs()
    assert "encode" in reloaded.signatures
    classifier = build_classifier(copy, find_config(copy), num_labels=2)
    word = [v for v in classifier.weights if "word_embeddings" in v.path][0]
    assert word.numpy().tobytes() == values["electra/embeddings/word_embeddings"].tobytes()


# --------------------------------------------------------------------------- bad inputs


def _bert(directory):
    shapes = original_shapes(1000, 64, 64, 2, bert=True)
    write_tf1_checkpoint(directory, random_values(shapes), vocab_size=1000)


def _short_vocab(directory):
    write_released_like(directory)
    with open(os.path.join(directory, "vocab.txt"), "a", encoding="utf-8") as f:
        f.write("one_more\n")


def _no_vocab(directory):
    write_released_like(directory)
    os.remove(os.path.join(directory, "vocab.txt"))


def _truncated(directory):
    prefix, _ = write_released_like(directory)
    data = prefix + ".data-00000-of-00001"
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)


def _truncated_index(directory):
    prefix, _ = write_released_like(directory)
    with open(prefix + ".index", "r+b") as f:
        f.truncate(40)


@pytest.mark.parametrize("make,message", [
    (_short_vocab, r"vocab.txt has 1001 tokens but the checkpoint's table electra/embeddings/word_embeddings has "
                   r"1000 rows"),
    (_no_vocab, r"no vocab.txt in .*: the checkpoint's token ids mean nothing without its WordPiece vocabulary"),
    (_bert, r"this is a BERT checkpoint \(its variables are under bert/\), not an ELECTRA one"),
    (_truncated, r"cannot be read: variable .* fails .*the data file is truncated or corrupt"),
    (_truncated_index, r"cannot be read .*its .index file is missing, truncated or not a TensorFlow checkpoint"),
])
def test_bad_inputs_are_clear_errors_and_leave_no_output(tmp_path, make, message, capsys):
    source, output = str(tmp_path / "source"), str(tmp_path / "out" / "model")
    os.makedirs(tmp_path / "out")
    make(source)
    assert convert_script.main(["--from", "electra_tf1", "--input", source, "--output", output]) == 2
    import re

    assert re.search(message, capsys.readouterr().err)
    assert os.listdir(tmp_path / "out") == []  # neither the model dir nor a temporary one


def test_an_existing_output_is_refused_without_overwrite_and_replaced_with_it(released, tmp_path, capsys):
    source, _, _, _ = released
    output = tmp_path / "model"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    assert convert_script.main(["--from", "electra_tf1", "--input", source, "--output", str(output)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["model"] and os.listdir(output) == ["keep.txt"]
    assert convert_script.main(["--from", "electra_tf1", "--input", source, "--output", str(output),
                                "--overwrite"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["model"] and "keep.txt" not in os.listdir(output)


def test_export_refuses_what_the_original_cannot_express(released, tmp_path):
    from electra_tf.config import config_from_dict, config_to_dict, dump_config

    _, _, _, model_dir = released
    raw = config_to_dict(load_config(os.path.join(model_dir, "config.yaml")))
    raw["model"]["relative_buckets"] = 32
    other = tmp_path / "relative"
    other.mkdir()
    dump_config(config_from_dict(raw), str(other / "config.yaml"))
    with pytest.raises(ConversionError, match=r"cannot express this model: model.relative_buckets=32 \(T5 relative"):
        export_electra_tf1(str(other), str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


def test_a_shared_block_must_have_the_same_tables():
    from electra_tf.layers import Embeddings

    block = Embeddings(vocab_size=20, embedding_size=8, hidden_size=16, max_position_embeddings=32)
    with pytest.raises(ValueError, match=r"shared_block has other tables: \(vocab, width, positions, token types\) "
                                         r"\(20, 8, 32, 2\) where this layer needs \(20, 8, 64, 2\)"):
        Embeddings(vocab_size=20, embedding_size=8, hidden_size=4, max_position_embeddings=64, shared_block=block)
    reader = Embeddings(vocab_size=20, embedding_size=8, hidden_size=4, max_position_embeddings=32,
                        shared_block=block)
    out = reader(tf.constant([[1, 2, 3]]))
    assert out.shape == (1, 3, 4) and len(reader.trainable_weights) == 5 + 2  # the block's and its projection


def test_small_layout_with_both_projections_round_trips_and_matches_model_garden(tmp_path):
    """ELECTRA-Small's layout: the embeddings (16 here) are narrower than both models, so the generator has its
    own generator/embeddings_project beside electra/embeddings_project, both reading the one block."""
    source, model_dir, back = str(tmp_path / "src"), str(tmp_path / "model"), str(tmp_path / "back")
    prefix, values = write_released_like(source, embedding=16, seed=3)
    assert "generator/embeddings_project/kernel" in values
    import_electra_tf1(source, model_dir)
    written = tf.train.load_checkpoint(export_electra_tf1(model_dir, back))
    original = tf.train.load_checkpoint(prefix)
    for name, value in values.items():
        assert written.get_tensor(name).tobytes() == original.get_tensor(name).tobytes(), name
    generator = load_pretrained(model_dir, which=("generator",))[1]
    ids, mask, types = _inputs()
    ours = generator.encoder({"input_ids": ids, "input_mask": mask, "token_type_ids": types},
                             training=False)["sequence_output"].numpy()
    garden = _garden_encoder(values, "generator", hidden=32, layers=2, heads=1, embedding=16)
    theirs = garden({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})["sequence_output"].numpy()
    assert np.abs(ours - theirs)[mask.astype(bool)].max() < 1e-5


def test_a_temperature_scalar_beside_the_weights_is_ignored(tmp_path):
    shapes = original_shapes(1000, 32, 64, 2, 32, 2)
    values = {**random_values(shapes), "generator_predictions/temperature": np.float32(1.0)}
    write_tf1_checkpoint(str(tmp_path / "src"), values, vocab_size=1000)
    import_electra_tf1(str(tmp_path / "src"), str(tmp_path / "model"))
    record = json.load(open(tmp_path / "model" / "conversion.json"))
    assert record["ignored_optimizer_slots_and_scalars"] == 2 * (len(values)) + 1
