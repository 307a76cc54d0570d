"""Writing TFRecord data dirs: packing within documents, layout, determinism, atomicity, input errors."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf
from data_fixtures import documents, small_vocab, write_text

from electra_tf.data.corpus import CorpusError
from electra_tf.data.manifest import DataError
from electra_tf.data.vocab import CLS_ID, PAD_ID, SEP_ID, load_sentencepiece
from electra_tf.data.writer import write_pretraining_data

SEQ = 32


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("writer")
    docs = documents(240, seed=5, max_lines=8)
    corpus = write_text(str(root / "corpus.txt"), docs)
    return {"root": root, "docs": docs, "corpus": corpus, "vocab": small_vocab(str(root))}


def _records(data_dir, split="train"):
    with open(os.path.join(data_dir, "manifest.json")) as f:
        manifest = json.load(f)
    files = [os.path.join(data_dir, shard["file"]) for shard in manifest["shards"][split]]
    return [r.numpy() for r in tf.data.TFRecordDataset(files)], manifest


def _sequences(data_dir, split="train"):
    records, _ = _records(data_dir, split)
    spec = {"input_ids": tf.io.FixedLenFeature([SEQ], tf.int64)}
    return [tf.io.parse_single_example(r, spec)["input_ids"].numpy().tolist() for r in records]


def test_sequences_never_span_documents_and_keep_every_token(setup, tmp_path):
    out = str(tmp_path / "data")
    write_pretraining_data([setup["corpus"]], setup["vocab"], out, SEQ, eval_fraction=0.0, short_seq_prob=0.3,
                           examples_per_shard=50, chunk_bytes=3000, progress=False)
    sp = load_sentencepiece(setup["vocab"])
    doc_tokens = [[t for line in doc for t in sp.encode(line)] for doc in setup["docs"]]
    doc, offset, lengths = 0, 0, []
    for seq in _sequences(out):
        real = [t for t in seq if t != PAD_ID]
        assert real[0] == CLS_ID and real[-1] == SEP_ID and seq[len(real):] == [PAD_ID] * (SEQ - len(real))
        content = real[1:-1]
        lengths.append(len(real))
        # The sequence is the next stretch of the current document: it cannot reach into the next one.
        assert doc_tokens[doc][offset:offset + len(content)] == content, (doc, offset)
        offset += len(content)
        if offset == len(doc_tokens[doc]):
            doc, offset = doc + 1, 0
    assert doc == len(doc_tokens) and offset == 0
    assert min(lengths) < SEQ // 2 and max(lengths) == SEQ  # short_seq_prob made some sequences short


def test_layout_and_manifest(setup, tmp_path):
    out = str(tmp_path / "data")
    manifest = write_pretraining_data([setup["corpus"]], setup["vocab"], out, SEQ, eval_fraction=0.1,
                                      examples_per_shard=40, progress=False)
    names = sorted(os.listdir(out))
    n_train = len(manifest["shards"]["train"])
    assert n_train >= 3
    assert names == sorted([f"train-{i:05d}-of-{n_train:05d}.tfrecord" for i in range(n_train)]
                           + [shard["file"] for shard in manifest["shards"]["eval"]]
                           + ["manifest.json", "vocab.model"])
    with open(os.path.join(out, "manifest.json")) as f:
        assert json.load(f) == manifest
    assert manifest["vocab_size"] == 120 and manifest["max_seq_length"] == SEQ
    assert manifest["splits"] == ["train", "eval"]
    assert manifest["documents"] == {"train": 216, "eval": 24}
    for split in ("train", "eval"):
        records, _ = _records(out, split)
        assert len(records) == manifest["examples"][split] > 0
        for shard in manifest["shards"][split]:
            assert os.path.getsize(os.path.join(out, shard["file"])) == shard["bytes"]
    with open(os.path.join(out, "vocab.model"), "rb") as a, open(setup["vocab"], "rb") as b:
        assert a.read() == b.read()


def test_rerun_and_worker_count_give_identical_files(setup, tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    kwargs = dict(examples_per_shard=60, chunk_bytes=4000, progress=False)
    write_pretraining_data([setup["corpus"]], setup["vocab"], one, SEQ, workers=1, **kwargs)
    first = {name: open(os.path.join(one, name), "rb").read() for name in os.listdir(one)}
    write_pretraining_data([setup["corpus"]], setup["vocab"], one, SEQ, workers=1, **kwargs)  # replaces
    write_pretraining_data([setup["corpus"]], setup["vocab"], two, SEQ, workers=2, **kwargs)
    for directory in (one, two):
        assert sorted(os.listdir(directory)) == sorted(first)
        for name, data in first.items():
            with open(os.path.join(directory, name), "rb") as f:
                assert f.read() == data, (directory, name)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no staging dir left


def test_bad_inputs_are_refused_and_leave_no_output(setup, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(open(setup["corpus"], "rb").read() + b"\n\nfine line\nna\xefve\n")
    out = tmp_path / "data"
    cases = [([str(tmp_path / "missing.txt")], r"missing.txt does not exist"),
             ([setup["corpus"], str(tmp_path / "empty.txt")], r"empty.txt is empty"),
             ([str(bad)], rf"bad.txt, line {len(open(setup['corpus']).read().splitlines()) + 4}: not valid UTF-8")]
    for inputs, message in cases:
        with pytest.raises(CorpusError, match=message):
            write_pretraining_data(inputs, setup["vocab"], str(out), SEQ, examples_per_shard=10,
                                   chunk_bytes=2000, progress=False)
        assert sorted(os.listdir(tmp_path)) == ["bad.txt", "empty.txt"]  # no output, no staging dir
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(DataError, match=r"notes holds files that are not from a data build \(todo.txt\)"):
        write_pretraining_data([setup["corpus"]], setup["vocab"], str(tmp_path / "notes"), SEQ, progress=False)
    with pytest.raises(ValueError, match="max_seq_length must be an integer >= 8, got 4"):
        write_pretraining_data([setup["corpus"]], setup["vocab"], str(out), 4, progress=False)


KILLED_WRITER = """
import os, signal, sys
from electra_tf.data import writer

original = writer._SplitWriter.write

def write_then_die(self, records):
    original(self, records)
    if self.closed and self._writer is not None:  # one shard renamed, the next one half-written
        self._writer.flush()
        os.kill(os.getpid(), signal.SIGKILL)

writer._SplitWriter.write = write_then_die
writer.write_pretraining_data([sys.argv[1]], sys.argv[2], sys.argv[3], 32, eval_fraction=0.0,
                              examples_per_shard=25, chunk_bytes=2000, progress=False)
"""


def test_killed_writer_leaves_no_shard_that_looks_complete(setup, tmp_path):
    out = tmp_path / "data"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_WRITER), setup["corpus"], setup["vocab"],
                           str(out)], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not out.exists()
    files = [os.path.join(d, n) for d, _, names in os.walk(tmp_path) for n in names]
    partial = [f for f in files if f.endswith(".tfrecord.partial")]
    complete_looking = [f for f in files if f.endswith(".tfrecord")]
    assert partial and complete_looking  # killed between a finished shard and the end of the next
    for path in complete_looking:  # whatever carries the final suffix is whole
        assert sum(1 for _ in tf.data.TFRecordDataset(path)) == 25
    manifest = write_pretraining_data([setup["corpus"]], setup["vocab"], str(out), SEQ, eval_fraction=0.0,
                                      examples_per_shard=25, progress=False)
    assert manifest["examples"]["train"] > 25
    assert os.listdir(tmp_path) == ["data"]  # the next build removed the dead writer's staging dir
