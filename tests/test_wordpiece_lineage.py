"""A model converted from google-research/electra, continued on WordPiece text, then fine-tuned, exported, evaluated.

The README's "Continuing pretraining on your corpus" commands, run as written:
TF1 fixture (BERT-layout vocab.txt with real words) -> ``convert_checkpoint.py --from electra_tf1`` ->
``build_pretraining_data.py --vocab MODEL_DIR/vocab.txt`` -> ``pretrain.py --config MODEL_DIR/config.yaml
--init_from MODEL_DIR`` (joint, and decoupled with one embedding copy per model) -> ``finetune.py --pretrained``,
``export.py`` and ``evaluate_rtd.py`` on the WordPiece model and data.
"""

import importlib.util
import json
import os
import random

import numpy as np
import pytest
import tensorflow as tf
from test_wordpiece_data import word_corpus
from tf1_fixtures import WORDS, write_released_like

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEQ, STEPS = 32, 50


def _script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "scripts", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lineage(tmp_path_factory):
    root = tmp_path_factory.mktemp("wp_lineage")
    source, model_dir, data = str(root / "source"), str(root / "model"), str(root / "data")
    write_released_like(source, words=WORDS)
    assert _script("convert_checkpoint").main(["--from", "electra_tf1", "--input", source, "--output", model_dir]) == 0
    corpus = word_corpus(str(root / "corpus.txt"), documents=400, seed=1)
    assert _script("build_pretraining_data").main([
        "--input", corpus, "--vocab", os.path.join(model_dir, "vocab.txt"), "--output", data,
        "--max_seq_length", str(SEQ), "--eval_fraction", "0.1", "--short_seq_prob", "0", "--no_progress"]) == 0
    return {"root": root, "model": model_dir, "data": data}


def _pretrain(lineage, run_dir, extra):
    code = _script("pretrain").main([
        "--config", os.path.join(lineage["model"], "config.yaml"), "--init_from", lineage["model"],
        "--model_dir", run_dir, "--no_progress", "--set", f"data.path={lineage['data']}",
        f"data.max_seq_length={SEQ}", "train.batch_size=16", f"train.max_steps={STEPS}", "train.warmup_steps=0",
        "train.log_every=1", f"train.checkpoint_every={STEPS}", "train.eval_steps=1", "train.seed=3", *extra])
    assert code == 0
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if r.get("split") != "eval" and "gen_loss" in r]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["joint", "decoupled"])
def test_continue_pretraining_a_converted_model_on_wordpiece_text(lineage, mode, tmp_path):
    run_dir = str(tmp_path / mode)
    if mode == "joint":
        extra = ["train.learning_rate=1e-3"]
    else:  # README: decoupled from a converted dir keeps one copy of the embedding block per model
        extra = ["train.mode=decoupled", "embedding_sharing=none", "train.generator_lr=1e-3",
                 "train.discriminator_lr=1e-3"]
    rows = _pretrain(lineage, run_dir, extra)
    assert rows[0]["step"] == 1 and rows[-1]["step"] == STEPS
    for key in ("gen_loss", "disc_loss"):
        values = np.array([r[key] for r in rows])
        assert np.isfinite(values).all(), key
        assert values[-5:].mean() < values[0], (key, values[0], values[-5:])

    # The export's text signatures tokenize with the model's WordPiece vocab.txt.
    import tensorflow_text  # noqa: F401

    export = os.path.join(run_dir, "export")
    assert os.path.isfile(os.path.join(export, "vocab.txt"))
    out = tf.saved_model.load(os.path.join(export, "discriminator")).signatures["detect_text"](
        sentences=tf.constant(["The cat sat on the mat."]))
    tokens = [t.decode() for t in out["tokens"][0].numpy()]
    assert tokens == ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"]

    # Fine-tuning from the continued run finds the vocab.txt on its own (no --vocab).
    data = tmp_path / "sst2"
    data.mkdir()
    rng = random.Random(0)
    for name, n in (("train.tsv", 32), ("dev.tsv", 16)):
        lines = ["sentence\tlabel"]
        for i in range(n):
            words = rng.sample(["happy", "sad", "cat", "dog", "garden", "river", "sun", "rain"], 4)
            lines.append(" ".join(words) + f" and very {'happy' if i % 2 else 'sad'} .\t{i % 2}")
        (data / name).write_text("\n".join(lines) + "\n")
    finetuned = tmp_path / "finetuned"
    assert _script("finetune").main([
        "--task", "sst2", "--pretrained", run_dir, "--data_dir", str(data), "--output_dir", str(finetuned),
        "--lr", "1e-4", "--max_steps", "4", "--batch_size", "8", "--max_seq_length", "24", "--no_progress"]) == 0
    assert "accuracy" in json.load(open(finetuned / "results.json"))

    # Fair RTD evaluation: the converted model's generator corrupts the WordPiece data's held-out split once.
    rtd = str(tmp_path / "rtd.json")
    assert _script("evaluate_rtd").main([
        "--generator", lineage["model"], "--discriminator", lineage["model"], "--discriminator", run_dir,
        "--data", lineage["data"], "--max_batches", "2", "--batch_size", "8", "--json", rtd]) == 0
    results = json.load(open(rtd))
    assert len(results) == 2 and all(0.0 <= r["accuracy"] <= 1.0 for r in results)

    # The continued run to Hugging Face (its vocab.txt is found in its export/), loaded by transformers.
    hf_dir = str(tmp_path / "hf")
    assert _script("convert_checkpoint").main(["--to", "hf", "--input", run_dir, "--output", hf_dir]) == 0
    for directory in (hf_dir, os.path.join(hf_dir, "generator")):
        assert {"config.json", "model.safetensors", "vocab.txt"} <= set(os.listdir(directory))
    try:
        import torch
        from transformers import ElectraForPreTraining
    except ImportError:
        return  # the oracle half: tests/test_convert_hf.py says how to install it
    from electra_tf.pretrained import load_pretrained

    model, info = ElectraForPreTraining.from_pretrained(hf_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    _, _, discriminator = load_pretrained(run_dir, which=("discriminator",))
    ids = np.array([[101, 200, 300, 400, 102]], dtype=np.int32)  # [CLS] three words [SEP], BERT's layout
    ours = discriminator({"input_ids": tf.constant(ids), "input_mask": tf.ones_like(ids)}, training=False)
    with torch.no_grad():
        theirs = model(input_ids=torch.tensor(ids, dtype=torch.long)).logits.numpy()
    np.testing.assert_allclose(np.asarray(ours["logits"]).reshape(theirs.shape), theirs, atol=1e-4)
