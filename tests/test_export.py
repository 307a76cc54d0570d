"""Exports: every signature, reloaded in a fresh process, gives the in-memory model's outputs.

One short pretraining run exports at its end (as scripts/pretrain.py does); a
subprocess that imports only TensorFlow, tensorflow-text and (for the .keras
file) electra_tf.networks runs every signature and the Keras encoder, and this
process compares with the trainer's models and with tokenization in Python.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf
from conftest import make_config, subprocess_env

from electra_tf.data.tfrecords import vocab_path
from electra_tf.data.vocab import CLS_ID, MASK_ID, SEP_ID
from electra_tf.export import export_models
from electra_tf.training.trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-5
SENTENCES = ["The cat sat on the mat.", "Returns the configuration of a layer as a dict.", "",
             " ".join(["a long sentence that is cut to the model's length"] * 10)]
MASKED = ["The [MASK] sat on the [MASK].", "Returns the [MASK] of a layer.", "no mask here", "[MASK]",
          "[MASK] " * 40]

RELOAD = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece op)
export, inputs_path, out_path = sys.argv[1:4]
inputs = np.load(inputs_path)
with open(inputs_path + ".json") as f:
    text = json.load(f)
out = {}
def run(prefix, fn, **kwargs):
    for key, value in fn(**kwargs).items():
        out[f"{prefix}/{key}"] = value.numpy()
disc = tf.saved_model.load(export + "/discriminator").signatures
gen = tf.saved_model.load(export + "/generator").signatures
ids = dict(input_ids=tf.constant(inputs["ids"]), input_mask=tf.constant(inputs["mask"]))
masked = dict(input_ids=tf.constant(inputs["masked_ids"]), input_mask=tf.constant(inputs["masked_mask"]))
for name in ("serving_default", "encode", "detect"):
    run("disc_" + name, disc[name], **ids)
for name in ("encode_text", "detect_text"):
    run(name, disc[name], sentences=tf.constant(text["sentences"]))
for name in ("serving_default", "fill_mask"):
    run("gen_" + name, gen[name], **masked)
run("fill_mask_text", gen["fill_mask_text"], sentences=tf.constant(text["masked"]))
import keras
import electra_tf.networks  # noqa: F401  (registers the layers)
encoder = keras.saving.load_model(export + "/discriminator_encoder.keras")
out["keras/sequence_output"] = encoder(ids)["sequence_output"].numpy()
np.savez(out_path, **{k: np.char.decode(v.astype("S"), "utf-8") if v.dtype == object else v for k, v in out.items()})
"""


def python_tokenize(sp, sentences, max_len, with_masks=False):
    """The reference tokenization: [CLS] pieces [SEP], cut to max_len, padded to the longest row."""
    rows = []
    for sentence in sentences:
        if with_masks:
            pieces = []
            parts = sentence.split("[MASK]")
            for i, part in enumerate(parts):
                pieces += sp.encode(part) + ([MASK_ID] if i < len(parts) - 1 else [])
        else:
            pieces = sp.encode(sentence)
        rows.append([CLS_ID] + pieces[: max_len - 2] + [SEP_ID])
    width = max(len(r) for r in rows)
    ids = np.array([r + [0] * (width - len(r)) for r in rows], np.int32)
    mask = np.array([[1] * len(r) + [0] * (width - len(r)) for r in rows], np.int32)
    return ids, mask


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_data):
    """A 4-step pretraining run that exported at its end; the trainer keeps the in-memory models."""
    model_dir = str(tmp_path_factory.mktemp("export_run") / "run")
    trainer = Trainer(make_config(tiny_data), model_dir, export=export_models, progress=False)
    trainer.train()
    sp = spm.SentencePieceProcessor(model_file=vocab_path(tiny_data))
    return trainer, os.path.join(model_dir, "export"), sp


@pytest.fixture(scope="module")
def reloaded(run, tmp_path_factory):
    """Every signature's outputs, computed in a fresh process from the exported files."""
    trainer, export, sp = run
    length = trainer.cfg.data.max_seq_length
    ids, mask = python_tokenize(sp, SENTENCES, length)
    masked_ids, masked_mask = python_tokenize(sp, MASKED, length, with_masks=True)
    work = tmp_path_factory.mktemp("reload")
    inputs = str(work / "inputs.npz")
    np.savez(inputs, ids=ids, mask=mask, masked_ids=masked_ids, masked_mask=masked_mask)
    with open(inputs + ".json", "w") as f:
        json.dump({"sentences": SENTENCES, "masked": MASKED}, f)
    proc = subprocess.run([sys.executable, "-c", RELOAD, export, inputs, str(work / "out.npz")],
                          capture_output=True, text=True, env=subprocess_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = dict(np.load(work / "out.npz"))
    return out, (ids, mask), (masked_ids, masked_mask)


def _discriminator_outputs(discriminator, ids, mask):
    out = discriminator({"input_ids": tf.constant(ids), "input_mask": tf.constant(mask)}, training=False)
    return {"sequence_output": out["sequence_output"].numpy(), "pooled_output": out["pooled_output"].numpy(),
            "replaced_probability": tf.sigmoid(out["logits"]).numpy() * mask}


def _mask_probabilities(generator, ids, mask):
    """Softmax over the vocabulary at each row's [MASK] positions (padded with position 0)."""
    rows = [np.flatnonzero((r == MASK_ID) & (m > 0)) for r, m in zip(ids, mask)]
    width = max(len(r) for r in rows)
    positions = np.array([list(r) + [0] * (width - len(r)) for r in rows], np.int32).reshape(len(rows), width)
    logits = generator({"input_ids": tf.constant(ids), "input_mask": tf.constant(mask),
                        "masked_positions": tf.constant(positions)}, training=False)["logits"]
    weights = np.array([[1.0] * len(r) + [0.0] * (width - len(r)) for r in rows], np.float32).reshape(len(rows),
                                                                                                        width)
    return tf.nn.softmax(logits).numpy(), positions, weights


def _check_fill_mask(out, prefix, probs, positions, weights, top_k):
    np.testing.assert_array_equal(out[f"{prefix}/masked_positions"], positions)
    np.testing.assert_array_equal(out[f"{prefix}/masked_weights"], weights)
    top_ids, top_probs = out[f"{prefix}/top_ids"], out[f"{prefix}/top_probabilities"]
    assert top_ids.shape == positions.shape + (top_k,)
    expected = -np.sort(-probs, axis=-1)[..., :top_k] * weights[..., None]
    np.testing.assert_allclose(top_probs, expected, atol=TOL)
    # Each returned id has the probability returned for it (robust to the order of near-ties).
    own = np.take_along_axis(probs, top_ids, axis=-1) * weights[..., None]
    np.testing.assert_allclose(top_probs, own, atol=TOL)
    assert np.all(top_ids[weights == 0] == 0)


@pytest.mark.slow
def test_fresh_process_reload_matches_in_memory_for_every_signature(run, reloaded):
    trainer, _, _ = run
    out, (ids, mask), (masked_ids, masked_mask) = reloaded
    expected = _discriminator_outputs(trainer.discriminator, ids, mask)
    for prefix in ("disc_serving_default", "disc_encode"):
        for key in ("sequence_output", "pooled_output"):
            np.testing.assert_allclose(out[f"{prefix}/{key}"], expected[key], atol=TOL, err_msg=f"{prefix}/{key}")
    np.testing.assert_allclose(out["disc_detect/replaced_probability"], expected["replaced_probability"], atol=TOL)
    probs, positions, weights = _mask_probabilities(trainer.generator, masked_ids, masked_mask)
    for prefix in ("gen_serving_default", "gen_fill_mask"):
        _check_fill_mask(out, prefix, probs, positions, weights, top_k=5)
    encoder = trainer.discriminator.encoder({"input_ids": tf.constant(ids), "input_mask": tf.constant(mask)})
    np.testing.assert_allclose(out["keras/sequence_output"], encoder["sequence_output"].numpy(), atol=TOL)


@pytest.mark.slow
def test_text_signatures_equal_python_tokenization_then_id_signatures(run, reloaded):
    trainer, _, sp = run
    out, (ids, mask), (masked_ids, masked_mask) = reloaded
    assert ids.shape[1] == trainer.cfg.data.max_seq_length  # the long sentence was cut, [SEP] kept
    for prefix in ("encode_text", "detect_text"):
        np.testing.assert_array_equal(out[f"{prefix}/input_ids"], ids)
        np.testing.assert_array_equal(out[f"{prefix}/input_mask"], mask)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(out[f"encode_text/{key}"], out[f"disc_encode/{key}"], atol=TOL)
    np.testing.assert_allclose(out["detect_text/replaced_probability"], out["disc_detect/replaced_probability"],
                               atol=TOL)
    pieces = np.vectorize(lambda i: sp.id_to_piece(int(i)))(ids)
    np.testing.assert_array_equal(out["detect_text/tokens"], np.where(mask > 0, pieces, ""))

    # "[MASK]" in text becomes exactly one [MASK] id; a sentence without one gets no position.
    np.testing.assert_array_equal(out["fill_mask_text/input_ids"], masked_ids)
    assert (masked_ids == MASK_ID).sum(axis=1).tolist()[:4] == [2, 1, 0, 1]
    for key in ("masked_positions", "masked_weights", "top_ids", "top_probabilities"):
        np.testing.assert_allclose(out[f"fill_mask_text/{key}"], out[f"gen_fill_mask/{key}"], atol=TOL)
    top_ids, weights = out["fill_mask_text/top_ids"], out["fill_mask_text/masked_weights"]
    top_pieces = np.vectorize(lambda i: sp.id_to_piece(int(i)))(top_ids)
    np.testing.assert_array_equal(out["fill_mask_text/top_tokens"], np.where(weights[..., None] > 0, top_pieces, ""))


@pytest.mark.slow
def test_saved_model_cli_show_lists_the_signatures(run):
    _, export, _ = run
    expected = {"discriminator": ["serving_default", "encode", "detect", "encode_text", "detect_text"],
                "generator": ["serving_default", "fill_mask", "fill_mask_text"]}
    for name, signatures in expected.items():
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "saved_model_cli"), "show", "--dir",
                               os.path.join(export, name), "--all"], capture_output=True, text=True,
                              env=subprocess_env(), timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        for signature in signatures:
            assert f"signature_def['{signature}']" in proc.stdout, (name, signature)
        for tensor in ("input_ids", "input_mask") + (("sentences",) if name == "discriminator" else ()):
            assert f"inputs['{tensor}']" in proc.stdout


@pytest.mark.slow
def test_saved_model_cli_run_with_text_ops_registered(run, tmp_path):
    """The TF1-style loader (saved_model_cli run, TF Serving) restores the variables the signatures read."""
    trainer, export, sp = run
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "saved_model_cli.py"), "run", "--dir",
                           os.path.join(export, "discriminator"), "--tag_set", "serve", "--signature_def",
                           "detect_text", "--input_exprs", f"sentences={SENTENCES[:2]!r}", "--outdir",
                           str(tmp_path)], capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ids, mask = python_tokenize(sp, SENTENCES[:2], trainer.cfg.data.max_seq_length)
    np.testing.assert_array_equal(np.load(tmp_path / "input_ids.npy"), ids)
    expected = _discriminator_outputs(trainer.discriminator, ids, mask)["replaced_probability"]
    np.testing.assert_allclose(np.load(tmp_path / "replaced_probability.npy"), expected, atol=TOL)


def test_load_pretrained_restores_every_weight_from_checkpoint_and_export(run):
    """Including the transformer blocks (a Python list, which Keras 3 keeps out of the object graph)."""
    from electra_tf.pretrained import load_pretrained

    trainer, export, _ = run
    for path in (trainer.model_dir, export, os.path.join(export, "discriminator")):
        _, _, discriminator = load_pretrained(path, which=("discriminator",))
        for mine, theirs in zip(discriminator.weights, trainer.discriminator.weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=f"{path}: {mine.path}")


@pytest.mark.slow
def test_export_script_rewrites_the_export_atomically(run, tmp_path, monkeypatch, capsys):
    trainer, _, _ = run
    model_dir = str(tmp_path / "copy")
    shutil.copytree(trainer.model_dir, model_dir)  # the other tests keep the original
    export = os.path.join(model_dir, "export")
    spec = importlib.util.spec_from_file_location("export_script", os.path.join(ROOT, "scripts", "export.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    before = sorted(os.listdir(export))
    assert before == ["config.yaml", "discriminator", "discriminator_encoder.keras", "generator", "vocab.model"]
    assert script.main(["--model_dir", model_dir, "--top_k", "3"]) == 0
    assert "discriminator:" in capsys.readouterr().out
    assert sorted(os.listdir(export)) == before
    fill_mask = tf.saved_model.load(os.path.join(export, "generator")).signatures["fill_mask"]
    ids = tf.constant([[CLS_ID, 40, MASK_ID, 41, SEP_ID]])
    assert fill_mask(input_ids=ids, input_mask=tf.ones_like(ids))["top_ids"].shape == (1, 1, 3)

    # A failure part-way leaves the previous export whole and no temporary dir behind.
    import electra_tf.export as export_lib

    def broken(_):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_lib, "standalone_encoder", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_lib.export_model_dir(model_dir)
    assert sorted(os.listdir(export)) == before
    assert [d for d in os.listdir(model_dir) if d.startswith(".export")] == []
    assert script.main(["--model_dir", model_dir + "-missing"]) == 2


def test_text_signatures_answer_a_batch_of_no_sentences(run):
    import tensorflow_text  # noqa: F401  (registers the SentencePiece op)

    _, export, _ = run
    none = tf.constant([], tf.string)
    disc = tf.saved_model.load(os.path.join(export, "discriminator")).signatures
    gen = tf.saved_model.load(os.path.join(export, "generator")).signatures
    encoded = disc["encode_text"](sentences=none)
    assert encoded["pooled_output"].shape[0] == 0 and encoded["sequence_output"].shape[0] == 0
    assert disc["detect_text"](sentences=none)["replaced_probability"].shape[0] == 0
    assert gen["fill_mask_text"](sentences=none)["top_ids"].shape[0] == 0


def test_a_reader_never_finds_the_export_missing_and_stale_temporary_dirs_go(run, tmp_path, monkeypatch):
    import threading

    from electra_tf import export as export_lib

    trainer, _, _ = run
    model_dir = str(tmp_path / "copy")
    shutil.copytree(trainer.model_dir, model_dir, symlinks=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = os.path.join(model_dir, f".export.tmp-{dead.pid}-0badc0de")  # left by an export killed midway
    os.makedirs(os.path.join(stale, "discriminator"))
    reader_view = os.path.join(model_dir, "export", "discriminator", "saved_model.pb")
    missing = []

    def watched(fn):
        def wrapper(*args, **kwargs):
            result = fn(*args, **kwargs)
            if not os.path.isfile(reader_view):  # what a reader would see right after this step
                missing.append(f"{fn.__name__}{args}")
            return result
        return wrapper

    for name in ("replace", "rename", "symlink", "unlink", "remove"):
        monkeypatch.setattr(os, name, watched(getattr(os, name)))
    monkeypatch.setattr(shutil, "rmtree", watched(shutil.rmtree))
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            if not os.path.isfile(reader_view):
                missing.append("seen by the polling reader")

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for _ in range(2):
            export_lib.export_models(model_dir, trainer.generator, trainer.discriminator, trainer.cfg,
                                     vocab_model=vocab_path(trainer.data_dir))
    finally:
        stop.set()
        reader.join()
    assert missing == []
    assert not os.path.exists(stale)
    assert sorted(os.listdir(os.path.join(model_dir, "export"))) == [
        "config.yaml", "discriminator", "discriminator_encoder.keras", "generator", "vocab.model"]
    assert len(os.listdir(os.path.join(model_dir, ".versions"))) == 2  # the current export and the one before
