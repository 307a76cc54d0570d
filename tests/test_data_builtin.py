"""The data a run uses when given none, and the two data-building scripts."""

import json
import os
import subprocess
import sys

import pytest
from data_fixtures import documents, write_text

from electra_tf.data.builtin import ensure_builtin_data
from electra_tf.data.manifest import load_manifest
from electra_tf.data.vocab import load_sentencepiece

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_builtin_data_is_built_once_with_the_exact_vocab_size(tmp_path):
    root = str(tmp_path)
    data_dir = ensure_builtin_data(root, vocab_size=300, max_seq_length=32, corpus_mb=0.2)
    manifest = load_manifest(data_dir)
    assert manifest["vocab_size"] == 300 and manifest["max_seq_length"] == 32
    assert manifest["examples"]["train"] > 100 and manifest["examples"]["eval"] > 0
    assert load_sentencepiece(os.path.join(data_dir, "vocab.model"), expected_vocab_size=300)
    stamp = os.path.getmtime(os.path.join(data_dir, "manifest.json"))
    assert ensure_builtin_data(root, vocab_size=300, max_seq_length=32, corpus_mb=0.2) == data_dir
    assert os.path.getmtime(os.path.join(data_dir, "manifest.json")) == stamp  # not rebuilt
    vocabs = [n for n in os.listdir(root) if n.endswith(".model")]
    other = ensure_builtin_data(root, vocab_size=300, max_seq_length=16, corpus_mb=0.2)
    assert other != data_dir and load_manifest(other)["max_seq_length"] == 16
    assert [n for n in os.listdir(root) if n.endswith(".model")] == vocabs  # corpus and vocab reused
    with pytest.raises(ValueError, match="must be an integer >= 8 when data.path is unset, got 'auto'"):
        ensure_builtin_data(root, vocab_size="auto", max_seq_length=32)


def _run(script, *args):
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", script), *args], capture_output=True,
                          text=True, timeout=300)


def test_scripts_build_a_vocab_and_a_data_dir(tmp_path):
    corpus = write_text(str(tmp_path / "corpus.txt"), documents(200, seed=4))
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": "\n".join(doc)}) for doc in documents(40, seed=6)) + "\n")
    vocab = _run("build_vocab.py", "--input", corpus, str(jsonl), "--vocab_size", "100",
                 "--output", str(tmp_path / "sp"), "--model_type", "bpe")
    assert vocab.returncode == 0, vocab.stderr
    out = tmp_path / "data"
    data = _run("build_pretraining_data.py", "--input", corpus, str(jsonl), "--vocab", str(tmp_path / "sp.model"),
                "--output", str(out), "--max_seq_length", "24", "--eval_fraction", "0.05", "--no_progress")
    assert data.returncode == 0, data.stderr
    manifest = load_manifest(str(out))
    assert manifest["source"] == [corpus, str(jsonl)]
    assert manifest["documents"]["train"] + manifest["documents"]["eval"] == 240
    bad = _run("build_pretraining_data.py", "--input", str(tmp_path / "nope.txt"), "--vocab",
               str(tmp_path / "sp.model"), "--output", str(tmp_path / "d2"), "--max_seq_length", "24")
    assert bad.returncode == 2 and "nope.txt does not exist" in bad.stderr
    assert not (tmp_path / "d2").exists()
