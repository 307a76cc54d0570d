"""Hugging Face and keras-hub: exports that transformers and keras-hub load and agree with, imports from safetensors.

The model comes from the TF1 fixture (tests/tf1_fixtures.py: vocab 1000,
embedding 32, discriminator 2x64, generator 2x32). The oracles are the real
libraries: ``transformers.ElectraForPreTraining`` / ``ElectraForMaskedLM`` on
torch, and ``keras_hub.models.ElectraBackbone``; tests that need them skip
where they are absent, with the command that installs them. Refusals need none.
"""

import importlib
import importlib.util
import json
import logging
import os
import re
import shutil

import numpy as np
import pytest
from tf1_fixtures import padded_batch, vocab_tokens, write_released_like

from electra_tf.config import config_from_dict, config_to_dict, dump_config, load_config
from electra_tf.convert import ConversionError, export_hf, export_keras_hub, hf_name, import_electra_tf1, import_hf
from electra_tf.pretrained import load_pretrained

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("convert_checkpoint", os.path.join(ROOT, "scripts",
                                                                                  "convert_checkpoint.py"))
convert_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(convert_script)

INSTALL = 'pip install -e ".[oracles]"'


def oracle(module):
    """``module`` imported, or the test skipped with the command that installs the oracles."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.skip(f"{module} is not installed ({exc}): {INSTALL}")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """``(tf1 values, model dir, hf dir)``: the TF1 fixture imported, then written with ``--to hf``."""
    root = tmp_path_factory.mktemp("hf")
    source, model_dir, hf_dir = str(root / "tf1"), str(root / "model"), str(root / "hf")
    _, values = write_released_like(source)
    import_electra_tf1(source, model_dir)
    assert convert_script.main(["--to", "hf", "--input", model_dir, "--output", hf_dir]) == 0
    return values, model_dir, hf_dir


def _inputs():
    """A padded batch with both token types, and three masked positions per row for the generator."""
    positions = np.array([[1, 4, 7], [2, 3, 16], [1, 5, 8]], np.int32)
    return (*padded_batch(7), positions)


def _ours(model_dir):
    """Our discriminator's logits and sequence output, and the generator's logits at the masked positions."""
    _, generator, discriminator = load_pretrained(model_dir)
    ids, mask, types, positions = _inputs()
    batch = {"input_ids": ids, "input_mask": mask, "token_type_ids": types}
    out = discriminator(batch, training=False)
    gen = generator({**batch, "masked_positions": positions}, training=False)["logits"].numpy()
    return out["logits"].numpy(), out["sequence_output"].numpy(), gen


def _theirs(hf_dir, generator_dir):
    """transformers' logits on the same inputs (eval mode: no dropout)."""
    torch = oracle("torch")
    transformers = oracle("transformers")
    ids, mask, types, positions = _inputs()
    disc, info = transformers.ElectraForPreTraining.from_pretrained(hf_dir, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    gen, info = transformers.ElectraForMaskedLM.from_pretrained(generator_dir, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    disc.eval(), gen.eval()
    inputs = {"input_ids": torch.tensor(ids, dtype=torch.long), "attention_mask": torch.tensor(mask),
              "token_type_ids": torch.tensor(types, dtype=torch.long)}
    with torch.no_grad():
        disc_logits = disc(**inputs).logits.numpy()
        gen_logits = gen(**inputs).logits.numpy()
    return disc_logits, np.take_along_axis(gen_logits, positions[..., None], axis=1)


# --------------------------------------------------------------------------- names


def test_hf_names_are_transformers_electra_names():
    assert hf_name("electra/embeddings/word_embeddings") == ("electra.embeddings.word_embeddings.weight", False)
    assert hf_name("electra/embeddings/LayerNorm/gamma") == ("electra.embeddings.LayerNorm.weight", False)
    assert hf_name("generator/embeddings_project/kernel") == ("electra.embeddings_project.weight", True)
    assert hf_name("electra/encoder/layer_11/attention/self/query/kernel") == (
        "electra.encoder.layer.11.attention.self.query.weight", True)
    assert hf_name("generator/encoder/layer_0/output/LayerNorm/beta") == (
        "electra.encoder.layer.0.output.LayerNorm.bias", False)
    assert hf_name("discriminator_predictions/dense_1/kernel") == (
        "discriminator_predictions.dense_prediction.weight", True)
    assert hf_name("generator_predictions/output_bias") == ("generator_lm_head.bias", False)


# --------------------------------------------------------------------------- to hf


def test_the_hf_export_is_what_transformers_loads(converted):
    _, _, hf_dir = converted
    for directory, architecture in ((hf_dir, "ElectraForPreTraining"),
                                    (os.path.join(hf_dir, "generator"), "ElectraForMaskedLM")):
        assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"} <= set(os.listdir(directory))
        config = json.load(open(os.path.join(directory, "config.json")))
        assert config["architectures"] == [architecture] and config["hidden_act"] == "gelu"
        assert config["layer_norm_eps"] == 1e-12 and config["position_embedding_type"] == "absolute"
    assert json.load(open(os.path.join(hf_dir, "tokenizer_config.json")))["do_lower_case"] is True


def test_transformers_computes_our_logits_from_the_hf_export(converted):
    _, model_dir, hf_dir = converted
    disc_theirs, gen_theirs = _theirs(hf_dir, os.path.join(hf_dir, "generator"))
    disc_ours, _, gen_ours = _ours(model_dir)
    real = _inputs()[1].astype(bool)
    disc_diff = np.abs(disc_ours - disc_theirs)[real].max()
    gen_diff = np.abs(gen_ours - gen_theirs).max()
    logging.getLogger(__name__).info("max |ours - transformers|: discriminator %.3g, generator %.3g", disc_diff,
                                     gen_diff)
    assert disc_diff < 1e-4 and gen_diff < 1e-4
    assert np.abs(disc_theirs[real]).max() > 0.1 and np.abs(gen_theirs).max() > 0.1  # not trivially small


def test_transformers_tokenizer_reads_the_exported_vocabulary(converted):
    transformers = oracle("transformers")
    _, _, hf_dir = converted
    tokenizer = transformers.ElectraTokenizer.from_pretrained(hf_dir)
    assert tokenizer.convert_tokens_to_ids(["[PAD]", "[CLS]", "[SEP]", "[MASK]", "tok5"]) == [0, 101, 102, 103, 109]
    assert tokenizer("tok5 tok7")["input_ids"] == [101, 109, 111, 102]


# --------------------------------------------------------------------------- to keras-hub


def test_keras_hub_backbones_compute_our_sequence_outputs(converted, tmp_path):
    keras_hub = oracle("keras_hub")
    import keras

    _, model_dir, _ = converted
    preset = str(tmp_path / "kh")
    assert convert_script.main(["--to", "keras_hub", "--input", model_dir, "--output", preset]) == 0
    ids, mask, types, _ = _inputs()
    inputs = {"token_ids": ids, "segment_ids": types, "padding_mask": mask}
    _, generator, discriminator = load_pretrained(model_dir)
    batch = {"input_ids": ids, "input_mask": mask, "token_type_ids": types}
    real = mask.astype(bool)
    for directory, model in ((preset, discriminator), (os.path.join(preset, "generator"), generator)):
        backbone = keras_hub.models.ElectraBackbone.from_preset(directory)
        ours = model.encoder(batch, training=False)["sequence_output"].numpy()
        approximate = np.asarray(backbone(inputs)["sequence_output"])
        # keras-hub's ElectraBackbone hard-codes the tanh GELU; with the exact one swapped in, the weights must agree.
        for layer in backbone.transformer_layers:
            layer._feedforward_intermediate_dense.activation = keras.activations.gelu
        exact = np.asarray(backbone(inputs)["sequence_output"])
        exact_diff, approximate_diff = np.abs(ours - exact)[real].max(), np.abs(ours - approximate)[real].max()
        logging.getLogger(__name__).info("%s: max |ours - keras-hub|: exact GELU %.3g, keras-hub's tanh GELU %.3g",
                                         model.name, exact_diff, approximate_diff)
        assert exact_diff < 1e-5
        assert approximate_diff < 1e-2
        tokenizer = keras_hub.models.ElectraTokenizer.from_preset(directory)
        assert tokenizer.vocabulary_size() == 1000 and tokenizer.token_to_id("[CLS]") == 101


# --------------------------------------------------------------------------- from hf


def _random_hf_pair(directory, shared=False, seed=0):
    """A discriminator and generator written by transformers from random small configs (every weight perturbed)."""
    torch = oracle("torch")
    transformers = oracle("transformers")
    torch.manual_seed(seed)
    small = dict(vocab_size=1000, embedding_size=32, max_position_embeddings=128, type_vocab_size=2)
    disc = transformers.ElectraForPreTraining(transformers.ElectraConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, **small))
    gen = transformers.ElectraForMaskedLM(transformers.ElectraConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=1, intermediate_size=64, **small))
    with torch.no_grad():
        for model in (disc, gen):
            for name, param in model.named_parameters():
                param.copy_(torch.randn_like(param) * 0.1 + (1.0 if "LayerNorm.weight" in name else 0.0))
        if shared:
            gen.electra.embeddings.load_state_dict(disc.electra.embeddings.state_dict())
    paths = str(directory / "disc"), str(directory / "gen")
    for model, path in zip((disc, gen), paths):
        model.save_pretrained(path, safe_serialization=True)
        with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(vocab_tokens(1000)) + "\n")  # BERT's layout, as the Hub's repos have it
    return paths


@pytest.mark.parametrize("shared", [False, True], ids=["own_blocks", "shared_block"])
def test_an_hf_pair_imports_and_computes_transformers_logits(tmp_path, shared):
    disc_dir, gen_dir = _random_hf_pair(tmp_path, shared=shared)
    model_dir = str(tmp_path / "model")
    assert convert_script.main(["--from", "hf", "--input", disc_dir, "--generator", gen_dir,
                                "--output", model_dir]) == 0
    cfg = load_config(os.path.join(model_dir, "config.yaml"))
    assert cfg.embedding_sharing == ("all" if shared else "none")
    assert (cfg.model.num_heads, cfg.generator_dims().num_heads, cfg.model.max_position_embeddings) == (2, 1, 128)
    disc_theirs, gen_theirs = _theirs(disc_dir, gen_dir)
    disc_ours, _, gen_ours = _ours(model_dir)
    real = _inputs()[1].astype(bool)
    disc_diff, gen_diff = np.abs(disc_ours - disc_theirs)[real].max(), np.abs(gen_ours - gen_theirs).max()
    logging.getLogger(__name__).info("from hf, max |ours - transformers|: discriminator %.3g, generator %.3g",
                                     disc_diff, gen_diff)
    assert disc_diff < 1e-4 and gen_diff < 1e-4
    # hf -> ours -> hf gives back every stored tensor, bitwise.
    from safetensors.numpy import load_file

    back = str(tmp_path / "back")
    export_hf(model_dir, back)
    for original, written in ((disc_dir, back), (gen_dir, os.path.join(back, "generator"))):
        a, b = load_file(os.path.join(original, "model.safetensors")), load_file(os.path.join(written,
                                                                                              "model.safetensors"))
        assert sorted(a) == sorted(b)
        assert all(a[k].tobytes() == b[k].tobytes() for k in a), original


def test_ours_to_hf_to_ours_is_bitwise(converted, tmp_path):
    _, model_dir, hf_dir = converted
    back = str(tmp_path / "back")
    import_hf(hf_dir, back, generator_dir=os.path.join(hf_dir, "generator"))
    record = json.load(open(os.path.join(back, "conversion.json")))
    assert record["from"] == "hf" and record["generator"] == "converted" and record["embedding_sharing"] == "all"
    _, gen_a, disc_a = load_pretrained(model_dir)
    _, gen_b, disc_b = load_pretrained(back)
    for a, b in ((gen_a, gen_b), (disc_a, disc_b)):
        assert [v.path for v in a.weights] == [v.path for v in b.weights]
        for va, vb in zip(a.weights, b.weights):
            assert va.numpy().tobytes() == vb.numpy().tobytes(), va.path


def test_without_a_generator_dir_the_generator_is_fresh_and_a_warning_says_so(converted, tmp_path, caplog):
    _, _, hf_dir = converted
    with caplog.at_level(logging.WARNING, logger="electra_tf.convert.hf"):
        import_hf(hf_dir, str(tmp_path / "model"), generator_hidden_size=16)
    assert "no --generator: the generator (2 x 16) is freshly initialised" in caplog.text
    cfg, generator, discriminator = load_pretrained(str(tmp_path / "model"))
    assert json.load(open(tmp_path / "model" / "conversion.json"))["generator"] == "initialised"
    assert generator.encoder.embeddings.word_embedding is discriminator.encoder.embeddings.word_embedding


# --------------------------------------------------------------------------- refusals


def _pickle_only(hf_dir, directory):
    shutil.copytree(hf_dir, directory, ignore=shutil.ignore_patterns("generator", "model.safetensors"))
    with open(os.path.join(directory, "pytorch_model.bin"), "wb") as f:
        f.write(b"\x80\x04not read")


def _long_vocab(hf_dir, directory):
    shutil.copytree(hf_dir, directory, ignore=shutil.ignore_patterns("generator"))
    with open(os.path.join(directory, "vocab.txt"), "a", encoding="utf-8") as f:
        f.write("one_more\n")


def _no_vocab(hf_dir, directory):
    shutil.copytree(hf_dir, directory, ignore=shutil.ignore_patterns("generator", "vocab.txt"))


def _generator_as_input(hf_dir, directory):
    shutil.copytree(os.path.join(hf_dir, "generator"), directory)


def _config_edit(**changes):
    def make(hf_dir, directory):
        shutil.copytree(hf_dir, directory, ignore=shutil.ignore_patterns("generator"))
        path = os.path.join(directory, "config.json")
        config = json.load(open(path))
        config.update(changes)
        json.dump(config, open(path, "w"))

    make.__name__ = "_" + "_".join(f"{k}_{v}" for k, v in changes.items())
    return make


@pytest.mark.parametrize("make,message", [
    (_pickle_only, r"holds pytorch_model.bin and no model.safetensors: a .bin file is a Python pickle, and "
                   r"unpickling it runs whatever code it holds.*safe_serialization=True"),
    (_long_vocab, r"vocab.txt has 1001 tokens but the checkpoint's table electra.embeddings.word_embeddings has "
                  r"1000 rows"),
    (_no_vocab, r"no vocab.txt in .*: the model's token ids mean nothing without its WordPiece vocabulary"),
    (_generator_as_input, r"is a generator \(ElectraForMaskedLM\): pass it as --generator"),
    (_config_edit(position_embedding_type="relative_key"), r"position_embedding_type='relative_key'; only "
                                                           r"'absolute' \(the original ELECTRA's\) is converted"),
    (_config_edit(hidden_act="gelu_new"), r"hidden_act='gelu_new'; only 'gelu' \(the exact GELU"),
    (_config_edit(model_type="bert"), r"model_type is 'bert'; only 'electra' is converted"),
], ids=["pickle_only", "long_vocab", "no_vocab", "generator_as_input", "relative_key", "gelu_new", "bert_config"])
def test_bad_hf_inputs_are_clear_errors_and_leave_no_output(converted, tmp_path, make, message, capsys):
    _, _, hf_dir = converted
    source, output = str(tmp_path / "source"), str(tmp_path / "out" / "model")
    os.makedirs(tmp_path / "out")
    make(hf_dir, source)
    assert convert_script.main(["--from", "hf", "--input", source, "--output", output]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("target", ["hf", "keras_hub"])
def test_an_existing_output_is_refused_without_overwrite(converted, tmp_path, target, capsys):
    _, model_dir, _ = converted
    output = tmp_path / "out"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    assert convert_script.main(["--to", target, "--input", model_dir, "--output", str(output)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["out"] and os.listdir(output) == ["keep.txt"]


def _variant(model_dir, directory, **changes):
    """A copy of ``model_dir`` whose config has ``changes`` (``model.x`` or top-level keys); ``vocab=None`` drops
    vocab.txt (a SentencePiece model's dir has none)."""
    shutil.copytree(model_dir, directory)
    drop_vocab = changes.pop("vocab", "keep") is None
    raw = config_to_dict(load_config(os.path.join(directory, "config.yaml")))
    for key, value in changes.items():
        section, _, name = key.rpartition("__")
        (raw[section] if section else raw)[name] = value
    dump_config(config_from_dict(raw), os.path.join(directory, "config.yaml"))
    if drop_vocab:
        os.remove(os.path.join(directory, "vocab.txt"))
    return directory


@pytest.mark.parametrize("target", ["hf", "keras_hub"])
@pytest.mark.parametrize("changes,message", [
    (dict(model__relative_buckets=32), r"model.relative_buckets=32 \(T5 relative position bias; .* has absolute "
                                       r"positions only"),
    (dict(model__absolute_positions=False, model__relative_buckets=32), r"model.absolute_positions=false"),
    (dict(embedding_sharing="gdes", train__mode="decoupled"), r"embedding_sharing=gdes \(a GDES delta"),
    (dict(model__init="admin"), r"model.init=admin \(Admin's shortcut scales ω; .* adds its shortcuts unscaled"),
    (dict(model__activation="relu"), r"model.activation=relu \(.* supports gelu\)"),
    (dict(vocab=None), r"has no vocab.txt: .* reads a WordPiece vocabulary and this model dir has none \(a model "
                       r"trained on a SentencePiece vocabulary cannot be expressed"),
], ids=["relative", "no_absolute", "gdes", "admin", "relu", "sentencepiece"])
def test_exports_refuse_what_the_target_cannot_express(converted, tmp_path, target, changes, message, capsys):
    _, model_dir, _ = converted
    variant = _variant(model_dir, str(tmp_path / "variant"), **dict(changes))
    output = str(tmp_path / "out" / "x")
    os.makedirs(tmp_path / "out")
    assert convert_script.main(["--to", target, "--input", variant, "--output", output]) == 2
    err = capsys.readouterr().err
    assert re.search(r"(transformers. ELECTRA|keras-hub.s ElectraBackbone) cannot express this model", err), err
    assert re.search(message, err), err
    assert os.listdir(tmp_path / "out") == []


def test_keras_hub_is_written_not_read(capsys):
    with pytest.raises(SystemExit):
        convert_script.parse_args(["--from", "keras_hub", "--input", "x", "--output", "y"])
    assert "invalid choice: 'keras_hub'" in capsys.readouterr().err


def test_a_conversion_error_is_a_value_error_with_the_reason():
    with pytest.raises(ConversionError, match="is not a model dir"):
        export_hf("/nonexistent/model", "/tmp/never-written-hf")
    with pytest.raises(ConversionError, match="is not a model dir"):
        export_keras_hub("/nonexistent/model", "/tmp/never-written-kh")
    assert not os.path.exists("/tmp/never-written-hf") and not os.path.exists("/tmp/never-written-kh")


# --------------------------------------------------------------------------- the model dir is a model dir


@pytest.mark.slow
def test_an_hf_import_with_its_own_blocks_continues_pretraining_exports_and_fine_tunes(tmp_path):
    """What scripts/pretrain.py --config MODEL_DIR/config.yaml --init_from MODEL_DIR, scripts/export.py --model_dir
    and scripts/finetune.py --pretrained run, on the import whose generator keeps its own embedding block."""
    import tensorflow as tf

    from electra_tf.data.masking import mask_sequence
    from electra_tf.export import export_model_dir
    from electra_tf.finetune.runner import build_classifier
    from electra_tf.pretrained import find_config
    from electra_tf.training.builder import build_pretraining
    from electra_tf.training.warm_start import warm_start

    disc_dir, gen_dir = _random_hf_pair(tmp_path, shared=False, seed=1)
    model_dir = str(tmp_path / "model")
    import_hf(disc_dir, model_dir, generator_dir=gen_dir)
    cfg = load_config(os.path.join(model_dir, "config.yaml"), ["data.max_seq_length=32", "train.batch_size=4",
                                                                "train.max_steps=3", "train.warmup_steps=0"])
    rows = np.random.default_rng(0).integers(1, 1000, size=(8, 32)).astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices(rows).repeat().enumerate().map(
        lambda i, ids: mask_sequence(ids, tf.stack([tf.constant(7, tf.int64), i]), 0.15, cfg.data.max_predictions,
                                     mask_id=999, special_ids=(0,))).batch(4, drop_remainder=True)
    run = build_pretraining(cfg, data=ds)
    warm_start(model_dir, run.generator, run.discriminator)
    _, generator, discriminator = load_pretrained(model_dir)
    for ours, loaded in ((run.generator, generator), (run.discriminator, discriminator)):
        for a, b in zip(ours.weights, loaded.weights):
            assert a.numpy().tobytes() == b.numpy().tobytes(), a.path
    for _ in range(3):
        assert bool(run.train_step()[1])
    paths = export_model_dir(model_dir)
    assert os.path.isdir(paths["discriminator"]) and os.path.isdir(paths["generator"])
    classifier = build_classifier(model_dir, find_config(model_dir), num_labels=2)
    word = [v for v in classifier.weights if "word_embeddings" in v.path][0]
    assert word.numpy().tobytes() == discriminator.encoder.embeddings.word_embedding.embeddings.numpy().tobytes()
