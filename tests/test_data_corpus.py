"""Text sources: BERT-format text, JSONL, TFDS (mocked), the built-in corpus, and input errors."""

import json
import os

import pytest
from data_fixtures import write_text

from electra_tf.data.corpus import CorpusError, expand_sources, iter_documents, parse_tfds_source
from electra_tf.data.docstrings import builtin_corpus


def test_text_file_documents_are_separated_by_blank_lines(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("First line.\n  Second line.  \n\n\n\nOther doc.\n\nThird doc, no final newline.", "utf-8")
    assert list(iter_documents(str(path))) == [["First line.", "Second line."], ["Other doc."],
                                              ["Third doc, no final newline."]]


def test_jsonl_documents_and_bad_lines(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"text": "Para one.\n\nPara two."}) + "\n\n" + json.dumps({"text": "Two"}) + "\n")
    assert list(iter_documents(str(path))) == [["Para one.", "Para two."], ["Two"]]
    path.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"body": "x"}) + "\n")
    with pytest.raises(CorpusError, match=r"c.jsonl, line 2: expected a JSON object with a string \"text\""):
        list(iter_documents(str(path)))
    path.write_text("{not json\n")
    with pytest.raises(CorpusError, match=r"c.jsonl, line 1: not valid JSON"):
        list(iter_documents(str(path)))


def test_missing_empty_and_non_utf8_inputs_are_named(tmp_path):
    with pytest.raises(CorpusError, match=r"input file .*missing.txt does not exist"):
        list(iter_documents(str(tmp_path / "missing.txt")))
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(CorpusError, match=r"input file .*empty.txt is empty"):
        list(iter_documents(str(tmp_path / "empty.txt")))
    (tmp_path / "blank.txt").write_bytes(b"\n\n  \n")
    with pytest.raises(CorpusError, match=r"blank.txt holds no text"):
        list(iter_documents(str(tmp_path / "blank.txt")))
    (tmp_path / "latin1.txt").write_bytes("line one\nline two\ncaf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1.txt, line 3: not valid UTF-8"):
        list(iter_documents(str(tmp_path / "latin1.txt")))


def test_tfds_source_streams_documents_under_mock_data():
    import tensorflow_datasets as tfds

    assert parse_tfds_source("tfds:wikipedia/20230601.en") == ("wikipedia/20230601.en", "train")
    assert parse_tfds_source("tfds:imdb_reviews:test") == ("imdb_reviews", "test")
    assert parse_tfds_source("tfds:c4/en:3.1.0") == ("c4/en:3.1.0", "train")
    with tfds.testing.mock_data(num_examples=7):
        docs = list(iter_documents("tfds:wikipedia/20230601.en"))
    assert 1 <= len(docs) <= 7
    assert all(isinstance(line, str) and line for doc in docs for line in doc)


def test_tfds_unknown_dataset_is_named():
    with pytest.raises(CorpusError, match="no_such_dataset_xyz"):
        list(iter_documents("tfds:no_such_dataset_xyz"))


def test_builtin_corpus_is_nonempty_deduplicated_capped_and_stable(tmp_path):
    first = builtin_corpus(str(tmp_path / "a"), max_mb=0.2)
    second = builtin_corpus(str(tmp_path / "b"), max_mb=0.2)
    with open(first, "rb") as fa, open(second, "rb") as fb:
        data = fa.read()
        assert data == fb.read()  # stable across two builds
    assert 150_000 < len(data) <= 200_000
    docs = list(iter_documents(first))
    assert len(docs) > 50
    texts = ["\n".join(doc) for doc in docs]
    assert len(set(texts)) == len(texts)
    assert sum("the" in text.split() for text in texts) > 0.5 * len(texts)  # English prose
    mtime = os.path.getmtime(first)
    assert builtin_corpus(str(tmp_path / "a"), max_mb=0.2) == first and os.path.getmtime(first) == mtime


def test_written_fixture_roundtrips(tmp_path):
    docs = [["a b c.", "d e."], ["f g."]]
    assert list(iter_documents(write_text(str(tmp_path / "x" / "c.txt"), docs))) == docs


def test_builtin_source_and_globs(tmp_path, monkeypatch):
    monkeypatch.setenv("ELECTRA_TF_DATA_DIR", str(tmp_path / "cache"))
    docs = list(iter_documents("builtin:0.05"))
    assert docs and os.listdir(tmp_path / "cache") == ["builtin-corpus-v1-0.05mb.txt"]
    with pytest.raises(CorpusError, match="builtin:4, got 'builtin:lots'"):
        list(iter_documents("builtin:lots"))
    for name in ("b.txt", "a.txt"):
        write_text(str(tmp_path / name), [[name]])
    assert expand_sources([str(tmp_path / "*.txt"), "builtin"]) == [str(tmp_path / "a.txt"),
                                                                     str(tmp_path / "b.txt"), "builtin"]
    with pytest.raises(CorpusError, match=r"nothing-\*.txt' matches no file"):
        expand_sources([str(tmp_path / "nothing-*.txt")])
