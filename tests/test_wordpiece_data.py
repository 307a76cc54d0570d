"""WordPiece vocabularies end to end in the data path, and google-research/electra's TFRecords as data.path."""

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tf1_fixtures import WORDS, vocab_tokens

from electra_tf.data.manifest import DataError, load_manifest
from electra_tf.data.tfrecords import pretraining_dataset, vocab_path
from electra_tf.data.vocab import SpecialIds, VocabError
from electra_tf.data.vocabulary import load_vocabulary
from electra_tf.data.wordpiece import load_wordpiece
from electra_tf.data.writer import write_pretraining_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEQ = 32
BERT_SPECIALS = SpecialIds(pad=0, unk=100, cls=101, sep=102, mask=103)


def write_vocab(path, tokens):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")
    return path


def word_corpus(path, documents=60, seed=0):
    """Sentences of the fixture's words (some cased, some with ``##`` suffixes), blank lines between documents."""
    rng = random.Random(seed)
    plain = [w for w in WORDS if w.isalpha()]
    suffixes = ["s", "ed", "ing", "er", "ly"]
    lines = []
    for _ in range(documents):
        for _ in range(rng.randint(1, 4)):
            words = [rng.choice(plain) + (rng.choice(suffixes) if rng.random() < 0.3 else "")
                     for _ in range(rng.randint(4, 14))]
            words[0] = words[0].capitalize()
            lines.append(" ".join(words) + rng.choice([".", "!", " ,"]))
        lines.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def wp(tmp_path_factory):
    root = tmp_path_factory.mktemp("wordpiece")
    vocab = write_vocab(str(root / "vocab.txt"), vocab_tokens(400, WORDS))
    corpus = word_corpus(str(root / "corpus.txt"))
    data = str(root / "data")
    write_pretraining_data([corpus], vocab, data, SEQ, eval_fraction=0.1, short_seq_prob=0.0, progress=False)
    return {"root": root, "vocab": vocab, "corpus": corpus, "data": data}


def _sequences(data_dir, split="train"):
    manifest = load_manifest(data_dir)
    files = [os.path.join(data_dir, s["file"]) for s in manifest["shards"][split]]
    spec = {"input_ids": tf.io.FixedLenFeature([manifest["max_seq_length"]], tf.int64)}
    return [tf.io.parse_single_example(r, spec)["input_ids"].numpy().tolist() for r in tf.data.TFRecordDataset(files)]


# --- item 1: special ids from the vocabulary ---------------------------------------------------------------------

def test_special_ids_are_read_from_the_vocab_txt_wherever_they_are(tmp_path):
    vocab = load_vocabulary(write_vocab(str(tmp_path / "vocab.txt"), vocab_tokens(300, WORDS)))
    assert vocab.kind == "wordpiece" and vocab.specials == BERT_SPECIALS and vocab.size == 300
    moved = ["hello", "[MASK]", "world", "[SEP]", "[CLS]", "[UNK]", "[PAD]", "##s"]
    assert load_wordpiece(write_vocab(str(tmp_path / "moved.txt"), moved)).specials == SpecialIds(6, 5, 4, 3, 1)


def test_a_vocab_txt_without_a_special_token_is_refused_by_name(tmp_path):
    tokens = [t for t in vocab_tokens(300, WORDS) if t != "[MASK]"]
    with pytest.raises(VocabError, match=r"no \[MASK\] line"):
        load_wordpiece(write_vocab(str(tmp_path / "vocab.txt"), tokens))
    with pytest.raises(VocabError, match=r"lists \[CLS\] 2 times"):
        load_wordpiece(write_vocab(str(tmp_path / "twice.txt"), vocab_tokens(300, WORDS) + ["[CLS]"]))
    tokens = vocab_tokens(300, WORDS)
    with pytest.raises(VocabError, match=rf"lists '{tokens[-1]}' twice \(lines 300 and 301\)"):
        load_wordpiece(write_vocab(str(tmp_path / "repeat.txt"), tokens + [tokens[-1]]))


def test_casing_is_decided_from_the_vocabulary_and_can_be_overridden(tmp_path):
    uncased = load_wordpiece(write_vocab(str(tmp_path / "uncased.txt"), vocab_tokens(300, WORDS)))
    cased = load_wordpiece(write_vocab(str(tmp_path / "cased.txt"), vocab_tokens(300, WORDS + ("The",))))
    assert uncased.lower_case and not cased.lower_case
    assert uncased.encode(["The CAT sat."]) == uncased.encode(["the cat sat."])
    the = cased.tokens.index("The")
    assert cased.encode(["The cat"])[0][0] == the and cased.encode(["the cat"])[0][0] == cased.tokens.index("the")
    assert not load_wordpiece(uncased.path, lower_case=False).lower_case


def test_sentencepiece_data_records_its_kind_and_the_fixed_ids(tiny_data):
    manifest = load_manifest(tiny_data)
    assert manifest["vocab_kind"] == "sentencepiece" and manifest["vocab_model"] == "vocab.model"
    assert manifest["special_ids"] == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}


# --- item 2: building data from a vocab.txt ----------------------------------------------------------------------

def test_wordpiece_data_dir_packs_with_the_files_special_ids(wp):
    manifest = load_manifest(wp["data"])
    assert manifest["vocab_kind"] == "wordpiece" and manifest["lower_case"] is True
    assert manifest["special_ids"] == BERT_SPECIALS.as_dict() and manifest["vocab_size"] == 400
    assert vocab_path(wp["data"]) == os.path.join(wp["data"], "vocab.txt")
    with open(vocab_path(wp["data"]), "rb") as a, open(wp["vocab"], "rb") as b:
        assert a.read() == b.read()
    vocab = load_wordpiece(wp["vocab"])
    with open(wp["corpus"], encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    expected = [t for ids in vocab.encode(lines) for t in ids]
    content = []
    for split in ("train", "eval"):
        for seq in _sequences(wp["data"], split):
            real = [t for t in seq if t != 0]
            assert real[0] == 101 and real[-1] == 102 and seq[len(real):] == [0] * (SEQ - len(real))
            content.extend(real[1:-1])
    assert 100 not in expected  # every word of the corpus is in the vocabulary: no [UNK]
    assert sorted(content) == sorted(expected)
    assert any(vocab.tokens[t].startswith("##") for t in content)


def test_the_script_takes_a_vocab_txt_and_says_how_it_cases(wp, tmp_path):
    out = str(tmp_path / "data")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "build_pretraining_data.py"), "--input",
                           wp["corpus"], "--vocab", wp["vocab"], "--output", out, "--max_seq_length", str(SEQ),
                           "--no_progress", "--short_seq_prob", "0", "--eval_fraction", "0.1"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "no uppercase letters in its tokens: text is lower-cased" in proc.stderr
    assert _sequences(out) == _sequences(wp["data"])
    bad = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "build_pretraining_data.py"), "--input",
                          wp["corpus"], "--vocab", str(tmp_path / "missing.txt"), "--output", str(tmp_path / "x"),
                          "--max_seq_length", str(SEQ)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)
    assert bad.returncode != 0 and "missing.txt does not exist" in bad.stderr
    assert not os.path.exists(tmp_path / "x")


def test_worker_processes_tokenize_wordpiece_alike(wp, tmp_path):
    out = str(tmp_path / "data")
    write_pretraining_data([wp["corpus"]], wp["vocab"], out, SEQ, eval_fraction=0.1, short_seq_prob=0.0,
                           workers=2, chunk_bytes=1500, progress=False)
    for split in ("train", "eval"):
        assert _sequences(out, split) == _sequences(wp["data"], split)


def test_the_beam_builder_says_it_takes_sentencepiece_only(wp, tmp_path):
    from electra_tf.data.beam_writer import write_pretraining_data_beam

    with pytest.raises(ValueError, match="--runner builds with SentencePiece models only, got the WordPiece"):
        write_pretraining_data_beam([wp["corpus"]], wp["vocab"], str(tmp_path / "out"), SEQ)
    assert not os.path.exists(tmp_path / "out")


def test_masking_uses_the_manifests_mask_id_and_never_masks_its_specials(wp):
    batch = next(iter(pretraining_dataset(wp["data"], batch_size=16, shuffle=False, seed=3)))
    ids, masked = batch["input_ids"].numpy(), batch["masked_input_ids"].numpy()
    changed = ids != masked
    assert changed.any() and (masked[changed] == 103).all()
    positions, weights = batch["masked_positions"].numpy(), batch["masked_weights"].numpy()
    chosen = np.take_along_axis(ids, positions, 1)[weights > 0]
    assert not np.isin(chosen, [0, 101, 102]).any()
    np.testing.assert_array_equal(batch["input_mask"].numpy(), (ids != 0).astype(np.int32))


def test_whole_word_masking_keeps_double_hash_continuations_with_their_word(wp):
    vocab = load_wordpiece(wp["vocab"])
    continues = np.array([t.startswith("##") for t in vocab.tokens])
    ds = pretraining_dataset(wp["data"], batch_size=32, shuffle=False, seed=1, masking="whole_word", mask_prob=0.3)
    seen_continuation = False
    for batch in ds.take(3):
        ids = batch["input_ids"].numpy()
        chosen = np.zeros_like(ids, bool)
        for row, (pos, w) in enumerate(zip(batch["masked_positions"].numpy(), batch["masked_weights"].numpy())):
            chosen[row, pos[w > 0]] = True
        # A continuation is chosen exactly when the piece before it is: words are masked whole.
        follows = continues[ids[:, 1:]]
        np.testing.assert_array_equal(chosen[:, 1:][follows], chosen[:, :-1][follows])
        seen_continuation |= bool((chosen[:, 1:] & follows).any())
    assert seen_continuation


# --- item 3: google-research/electra's TFRecords as data.path ---------------------------------------------------

def write_original(directory, vocab_tokens_, files=2, per_file=40, seq=SEQ, seed=0, features=None):
    """``pretrain_data.tfrecord-I-of-N`` as the original's build_pretraining_dataset.py writes them."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    first_word = 104
    rows = []
    for i in range(files):
        path = os.path.join(directory, f"pretrain_data.tfrecord-{i}-of-{files}")
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(per_file):
                a, b = rng.integers(3, 12), rng.integers(3, 12)
                ids = ([101] + rng.integers(first_word, len(vocab_tokens_), a).tolist() + [102]
                       + rng.integers(first_word, len(vocab_tokens_), b).tolist() + [102])
                segments = [0] * (a + 2) + [1] * (b + 1)
                pad = seq - len(ids)
                values = features or {"input_ids": ids + [0] * pad, "input_mask": [1] * len(ids) + [0] * pad,
                                      "segment_ids": segments + [0] * pad}
                example = tf.train.Example(features=tf.train.Features(feature={
                    k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for k, v in values.items()}))
                writer.write(example.SerializeToString())
                rows.append(ids + [0] * pad)
    return rows


def test_the_originals_data_dir_is_read_and_masked_with_its_vocab(tmp_path):
    tokens = vocab_tokens(300, WORDS)
    write_vocab(str(tmp_path / "vocab.txt"), tokens)
    rows = write_original(str(tmp_path / "pretrain_tfrecords"), tokens)
    for data_path in (str(tmp_path / "pretrain_tfrecords"), str(tmp_path)):  # the tfrecord dir or --data-dir
        manifest = load_manifest(data_path)
        assert manifest["max_seq_length"] == SEQ and manifest["vocab_size"] == 300
        assert manifest["special_ids"] == BERT_SPECIALS.as_dict() and manifest["splits"] == ["train"]
        assert os.path.samefile(vocab_path(data_path), tmp_path / "vocab.txt")
        ds = pretraining_dataset(data_path, batch_size=80, shuffle=False, repeat=False, vocab_size=300,
                                 max_seq_length=SEQ, masking="whole_word")
        batch = next(iter(ds))
        ids, masked = batch["input_ids"].numpy(), batch["masked_input_ids"].numpy()
        assert sorted(map(tuple, ids.tolist())) == sorted(map(tuple, rows))
        changed = ids != masked
        assert changed.any() and (masked[changed] == 103).all()
        chosen = np.take_along_axis(ids, batch["masked_positions"].numpy(), 1)[batch["masked_weights"].numpy() > 0]
        assert not np.isin(chosen, [0, 101, 102]).any()  # the middle [SEP] included


def test_the_originals_data_beside_its_vocab_and_a_mismatched_config_is_named(tmp_path):
    tokens = vocab_tokens(300, WORDS)
    write_original(str(tmp_path), tokens, files=1, per_file=5)
    with pytest.raises(DataError, match=r"no vocab.txt was found"):
        load_manifest(str(tmp_path))
    write_vocab(str(tmp_path / "vocab.txt"), tokens)
    assert load_manifest(str(tmp_path))["vocab_model"] == "vocab.txt"
    with pytest.raises(DataError, match="vocabulary of 300 pieces but model.vocab_size is 512"):
        pretraining_dataset(str(tmp_path), vocab_size=512)


def test_a_dir_that_is_neither_format_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(DataError, match="neither a data dir of this project .* nor one written by google-research"):
        load_manifest(str(tmp_path))
    write_vocab(str(tmp_path / "vocab.txt"), vocab_tokens(300, WORDS))
    write_original(str(tmp_path), vocab_tokens(300, WORDS), files=1, per_file=2,
                   features={"input_ids": [101, 200, 102], "input_mask": [1, 1, 1]})
    with pytest.raises(DataError, match=r"no int64 feature 'segment_ids'.*found: input_ids \(int64_list\)"):
        load_manifest(str(tmp_path))


def test_json_manifest_is_written_last_for_wordpiece_too(wp):
    with open(os.path.join(wp["data"], "manifest.json")) as f:
        manifest = json.load(f)
    shards = [s["file"] for split in ("train", "eval") for s in manifest["shards"][split]]
    assert set(os.listdir(wp["data"])) == {"manifest.json", "vocab.txt", *shards}


def test_a_run_trains_on_the_originals_data(tmp_path):
    from conftest import make_config

    from electra_tf.training.trainer import Trainer

    tokens = vocab_tokens(300, WORDS)
    write_vocab(str(tmp_path / "vocab.txt"), tokens)
    write_original(str(tmp_path / "pretrain_tfrecords"), tokens, files=2, per_file=20)
    cfg = make_config(str(tmp_path), "train.max_steps=2", "train.checkpoint_every=2")
    trainer = Trainer(cfg, str(tmp_path / "run"), export=None, progress=False)
    assert trainer.cfg.model.vocab_size == 300  # model.vocab_size: auto, from the original's vocab.txt
    metrics = trainer.train()
    assert np.isfinite(metrics["gen_loss"]) and np.isfinite(metrics["disc_loss"])
