"""The Beam builder: the same data dir as the local builder, nothing half-built visible, the same errors."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, run_pretrain, subprocess_env
from data_fixtures import documents, small_vocab, write_text

pytest.importorskip("apache_beam")

from electra_tf.data.beam_writer import write_pretraining_data_beam  # noqa: E402
from electra_tf.data.manifest import DataError, load_manifest  # noqa: E402
from electra_tf.data.writer import write_pretraining_data  # noqa: E402

SEQ = 32
DIRECT = ["--runner", "DirectRunner"]
# Small chunks so that chunks cross source boundaries and shards cross chunks; short targets drawn per chunk.
SETTINGS = dict(eval_fraction=0.1, short_seq_prob=0.3, seed=5, chunk_bytes=1500)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("beam")
    text = write_text(str(root / "a.txt"), documents(120, seed=1))
    jsonl = str(root / "b.jsonl")
    with open(jsonl, "w", encoding="utf-8") as f:
        for doc in documents(80, seed=2):
            f.write(json.dumps({"text": "\n".join(doc)}) + "\n")
    return {"root": root, "inputs": [text, jsonl], "vocab": small_vocab(str(root))}


def _records(data_dir, split):
    import tensorflow as tf

    manifest = load_manifest(data_dir)
    files = [os.path.join(data_dir, s["file"]) for s in manifest["shards"][split]]
    return [r.numpy() for r in tf.data.TFRecordDataset(files)]


def test_direct_runner_writes_the_local_builders_files(corpus, tmp_path):
    local, beam = str(tmp_path / "local"), str(tmp_path / "beam")
    write_pretraining_data(corpus["inputs"], corpus["vocab"], local, SEQ, workers=2, examples_per_shard=37,
                           progress=False, **SETTINGS)
    manifest = write_pretraining_data_beam(corpus["inputs"], corpus["vocab"], beam, SEQ, examples_per_shard=37,
                                           pipeline_args=DIRECT, **SETTINGS)
    assert manifest == load_manifest(local)
    assert len(manifest["shards"]["train"]) > 3 and manifest["examples"]["eval"] > 0
    assert sorted(os.listdir(local)) == sorted(os.listdir(beam))
    for name in os.listdir(local):
        with open(os.path.join(local, name), "rb") as a, open(os.path.join(beam, name), "rb") as b:
            assert a.read() == b.read(), name
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no staging dir left


def test_other_sharding_holds_the_same_examples_per_split(corpus, tmp_path):
    local, beam = str(tmp_path / "local"), str(tmp_path / "beam")
    write_pretraining_data(corpus["inputs"], corpus["vocab"], local, SEQ, examples_per_shard=1000, progress=False,
                           **SETTINGS)
    write_pretraining_data_beam(corpus["inputs"], corpus["vocab"], beam, SEQ, examples_per_shard=23,
                                pipeline_args=DIRECT, **SETTINGS)
    for split in ("train", "eval"):
        assert sorted(_records(local, split)) == sorted(_records(beam, split)), split


def test_tfds_and_builtin_sources_give_the_local_builders_files(corpus, tmp_path, monkeypatch):
    """A TFDS split (mocked) and the built-in corpus: the pipeline reads them as the local builder does."""
    import tensorflow_datasets as tfds

    monkeypatch.setenv("ELECTRA_TF_DATA_DIR", str(tmp_path / "cache"))
    sources = ["tfds:wikipedia/20230601.en", "builtin:0.02", corpus["inputs"][0]]
    settings = dict(SETTINGS, chunk_bytes=700)
    local, beam = str(tmp_path / "local"), str(tmp_path / "beam")
    with tfds.testing.mock_data(num_examples=150):
        write_pretraining_data(sources, corpus["vocab"], local, SEQ, examples_per_shard=300, progress=False,
                               **settings)
    with tfds.testing.mock_data(num_examples=150):
        manifest = write_pretraining_data_beam(sources, corpus["vocab"], beam, SEQ, examples_per_shard=300,
                                               pipeline_args=DIRECT, **settings)
    assert manifest == load_manifest(local)
    assert manifest["source"] == sources and manifest["examples"]["eval"] > 0
    assert len(manifest["shards"]["train"]) > 1
    for name in os.listdir(local):
        with open(os.path.join(local, name), "rb") as a, open(os.path.join(beam, name), "rb") as b:
            assert a.read() == b.read(), name
    # Each source contributed: the mocked split alone builds a smaller, non-empty data dir, the same both ways.
    with tfds.testing.mock_data(num_examples=150):
        alone = write_pretraining_data_beam(sources[:1], corpus["vocab"], str(tmp_path / "tfds"), SEQ,
                                            pipeline_args=DIRECT, **settings)
        alone_local = write_pretraining_data(sources[:1], corpus["vocab"], str(tmp_path / "tfds_local"), SEQ,
                                             progress=False, **settings)
    assert alone["shards"] == alone_local["shards"]
    assert 0 < alone["documents"]["train"] + alone["documents"]["eval"] <= 150
    assert alone["documents"]["train"] < manifest["documents"]["train"]


def test_builds_in_one_process_each_use_their_own_vocabulary(corpus, tmp_path):
    """The DirectRunner runs the steps in this process: an earlier build's vocabulary must not leak into the next.

    (It did: after an in-process local build, the Beam build tokenized with that build's model while its
    manifest named its own, so it wrote ids of another vocabulary.)
    """
    other = small_vocab(str(tmp_path), vocab_size=100)
    text = corpus["inputs"][:1]
    ref = write_pretraining_data(text, corpus["vocab"], str(tmp_path / "ref"), SEQ, progress=False)
    ref_other = write_pretraining_data(text, other, str(tmp_path / "ref_other"), SEQ, progress=False)
    assert ref["shards"] != ref_other["shards"]
    beam = write_pretraining_data_beam(text, corpus["vocab"], str(tmp_path / "beam"), SEQ, pipeline_args=DIRECT)
    beam_other = write_pretraining_data_beam(text, other, str(tmp_path / "beam_other"), SEQ, pipeline_args=DIRECT)
    assert beam["shards"] == ref["shards"]
    assert beam_other["shards"] == ref_other["shards"]


_KILLED_RUN = """
import os, signal, sys
import electra_tf.data.beam_writer as bw
real, calls = bw._write_shard, []
def dying(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:  # two shards written, the third never
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
bw._write_shard = dying
bw.write_pretraining_data_beam({inputs!r}, {vocab!r}, {out!r}, 32, examples_per_shard=20,
                               pipeline_args=["--runner", "DirectRunner"])
"""


def test_a_run_killed_midway_leaves_nothing_a_reader_accepts(corpus, tmp_path):
    out = str(tmp_path / "data")
    script = _KILLED_RUN.format(inputs=corpus["inputs"], vocab=corpus["vocab"], out=out)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          env={**subprocess_env(), "PYTHONPATH": ROOT}, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not os.path.exists(out)
    with pytest.raises(DataError, match="does not exist"):
        load_manifest(out)
    (stage,) = [n for n in os.listdir(tmp_path) if n.startswith(".data.partial-")]
    assert any(n.endswith(".tfrecord") for n in os.listdir(tmp_path / stage))  # it had started writing ...
    assert "manifest.json" not in os.listdir(tmp_path / stage)  # ... but never wrote a manifest
    write_pretraining_data_beam(corpus["inputs"], corpus["vocab"], out, SEQ, examples_per_shard=20,
                                pipeline_args=DIRECT)
    assert load_manifest(out)["examples"]["train"] > 0
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # the next build removed the dead one


def _bad_inputs(root, vocab):
    latin1 = str(root / "latin1.txt")
    with open(latin1, "wb") as f:
        f.write("A good line.\n\nCaf\xe9 au lait.\n".encode("latin-1"))
    bad_jsonl = str(root / "bad.jsonl")
    with open(bad_jsonl, "w", encoding="utf-8") as f:
        f.write('{"text": "fine"}\n{"body": "no text"}\n')
    empty = str(root / "empty.txt")
    open(empty, "w").close()
    return {
        "missing file": ([str(root / "nope.txt")], vocab, SEQ),
        "empty file": ([empty], vocab, SEQ),
        "not UTF-8": ([latin1], vocab, SEQ),
        "JSONL without text": ([bad_jsonl], vocab, SEQ),
        "missing vocabulary": ([latin1], str(root / "nope.model"), SEQ),
        "bad length": ([latin1], vocab, 4),
    }


@pytest.mark.parametrize("case", ["missing file", "empty file", "not UTF-8", "JSONL without text",
                                  "missing vocabulary", "bad length"])
def test_bad_inputs_give_the_local_builders_errors(corpus, tmp_path, case):
    inputs, vocab, seq = _bad_inputs(tmp_path, corpus["vocab"])[case]
    with pytest.raises(ValueError) as local:
        write_pretraining_data(inputs, vocab, str(tmp_path / "local"), seq, progress=False)
    with pytest.raises(ValueError) as beam:
        write_pretraining_data_beam(inputs, vocab, str(tmp_path / "beam"), seq, pipeline_args=DIRECT)
    assert type(beam.value) is type(local.value)
    assert str(local.value) in str(beam.value)  # Beam may add the step's name after the message
    assert not os.path.exists(tmp_path / "beam")
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


@pytest.mark.slow
def test_pretraining_trains_on_a_beam_data_dir(corpus, tmp_path):
    data = str(tmp_path / "data")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "build_pretraining_data.py"), "--input",
                           *corpus["inputs"], "--vocab", corpus["vocab"], "--output", data, "--max_seq_length",
                           str(SEQ), "--eval_fraction", "0.1", "--runner", "DirectRunner",
                           "--direct_num_workers", "1"], capture_output=True, text=True, env=subprocess_env(),
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows, _ = run_pretrain(tmp_path / "run", data, "data.masking=whole_word", "train.batch_size=4", steps=3)
    assert [r["step"] for r in rows if "gen_loss" in r and r.get("split") != "eval"][-1] == 3


def test_inputs_and_output_on_another_filesystem(corpus, tmp_path):
    """TensorFlow's in-memory filesystem (ram://) stands in for gs://: the same shards as a local build."""
    import tensorflow as tf

    remote_inputs = []
    for path in corpus["inputs"]:
        remote = f"ram://beam-test/{os.path.basename(path)}"
        tf.io.gfile.makedirs("ram://beam-test")
        tf.io.gfile.copy(path, remote, overwrite=True)
        remote_inputs.append(remote)
    local = str(tmp_path / "local")
    write_pretraining_data(corpus["inputs"], corpus["vocab"], local, SEQ, examples_per_shard=40, progress=False)
    manifest = write_pretraining_data_beam(remote_inputs, corpus["vocab"], "ram://beam-test/data", SEQ,
                                           examples_per_shard=40, pipeline_args=DIRECT)
    assert manifest["shards"] == load_manifest(local)["shards"]
    for shard in manifest["shards"]["train"] + manifest["shards"]["eval"]:
        with tf.io.gfile.GFile(f"ram://beam-test/data/{shard['file']}", "rb") as f, \
                open(os.path.join(local, shard["file"]), "rb") as g:
            assert f.read() == g.read()
    assert tf.io.gfile.exists("ram://beam-test/data/manifest.json")
