"""Token tagging and question answering with a WordPiece vocab.txt.

Tagging labels a word's first WordPiece; QA answers are the context's own characters, upper case and accents
included, whether the vocabulary lower-cases (and strips accents) or not; both tasks fine-tune (and QA exports)
from a model dir converted from google-research/electra.
"""

import json
import os

import numpy as np
import pytest
from conftest import ROOT, finetune_cli
from tf1_fixtures import WORDS, vocab_tokens, write_released_like

from electra_tf.data.wordpiece import load_wordpiece
from electra_tf.finetune.conll import Sentence
from electra_tf.finetune.qa_features import QAWindowing, decode_predictions, encode_qa
from electra_tf.finetune.squad import QAExample
from electra_tf.finetune.tagging import encode_tagging, tagging_task

UNCASED = WORDS + ("cafe", "naive")
CASED = WORDS + ("The", "Café", "Naïve", "CAT", "RIVER")
CONTEXT = "The Café by the RIVER was happy.  Naïve dogs ate fish, then the big CAT slept under a tree."
ANSWERS = ("The Café", "RIVER", "happy.", "Naïve dogs", "fish", "big CAT slept", "tree.")


def _vocab(tmp_path, words):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab_tokens(400, words)) + "\n", encoding="utf-8")
    return load_wordpiece(str(path))


def test_the_tag_sits_on_the_first_wordpiece_of_each_word(tmp_path):
    vocab = _vocab(tmp_path, UNCASED)
    assert vocab.lower_case
    ids = {t: vocab.tokens.index(t) for t in ("the", "dog", "##s", "sat", "cafe", "[UNK]", ".")}
    # "U.S." is one word of the file that BERT's basic tokenizer splits into four pieces: still one tag.
    words, tags = ("The", "dogs", "SAT", "Cafés", "U.S."), ("B-NP", "I-NP", "B-VP", "B-NP", "O")
    task = tagging_task("tagging_custom").resolved({"train": [Sentence(words, tags, "t:1")]})
    split = encode_tagging(vocab, task, [Sentence(words, tags, "t:1")], max_seq_length=32)
    label = task.label_names.index
    assert split.input_ids == [[101, ids["the"], ids["dog"], ids["##s"], ids["sat"], ids["cafe"], ids["##s"],
                                ids["[UNK]"], ids["."], ids["[UNK]"], ids["."], 102]]
    assert split.labels == [[-1, label("B-NP"), label("I-NP"), -1, label("B-VP"), label("B-NP"), -1,
                             label("O"), -1, -1, -1, -1]]
    assert split.specials == vocab.specials
    # Cut at 6 tokens: "Cafés" (2 pieces) does not fit after [CLS] + 4 pieces; it and "U.S." are predicted O.
    short = encode_tagging(vocab, task, [Sentence(words, tags, "t:1")], max_seq_length=6)
    assert short.input_ids == [[101, ids["the"], ids["dog"], ids["##s"], ids["sat"], 102]] and short.truncated == 1


@pytest.mark.parametrize("words", [UNCASED, CASED], ids=["uncased", "cased"])
def test_answer_spans_are_the_exact_characters_of_the_context(tmp_path, words):
    vocab = _vocab(tmp_path, words)
    assert vocab.lower_case == (words is UNCASED)
    examples = [QAExample(f"q{i}", "Where did the CAT sleep?", CONTEXT, ((a, CONTEXT.index(a)),))
                for i, a in enumerate(ANSWERS)]
    windowing = QAWindowing(max_seq_length=20, doc_stride=4, max_query_length=5)
    split = encode_qa(vocab, examples, windowing, training=True)
    assert split.unmapped == 0 and len(split) > 2 * len(examples)  # the context takes several windows
    assert all(ids[0] == 101 and ids[-1] == 102 and len(ids) <= 20 for ids in split.input_ids)
    spans = split.spans[0]
    # Lower-cased and accent-stripped or not, a piece spans the context's own characters.
    assert {"The", "Café", "RIVER", "Naïve", "CAT"} <= {CONTEXT[s:e] for s, e in spans}
    starts, ends = [], []
    for f in range(len(split)):
        s, t = split.labels[f]
        if (s, t) != (0, 0):
            first = split.feature_doc_start[f] + s - split.feature_offset[f]
            last = split.feature_doc_start[f] + t - split.feature_offset[f]
            text = examples[split.feature_example[f]].answers[0][0]
            assert CONTEXT[spans[first][0]:spans[last][1]] == text
        start_logits, end_logits = np.zeros(len(split.input_ids[f])), np.zeros(len(split.input_ids[f]))
        start_logits[s] += 5.0
        end_logits[t] += 5.0
        starts.append(start_logits)
        ends.append(end_logits)
    texts, _, _ = decode_predictions(split, starts, ends)
    assert texts == {ex.qid: ex.answers[0][0] for ex in examples}


def _script(name):
    from importlib import util

    spec = util.spec_from_file_location(name, os.path.join(ROOT, "scripts", f"{name}.py"))
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A model dir converted from a released-like TF1 checkpoint with an uncased WordPiece vocab.txt."""
    root = tmp_path_factory.mktemp("wp_tasks")
    source, model_dir = str(root / "source"), str(root / "model")
    write_released_like(source, words=UNCASED)
    assert _script("convert_checkpoint").main(["--from", "electra_tf1", "--input", source, "--output", model_dir]) == 0
    return model_dir


def test_tagging_fine_tunes_from_a_converted_wordpiece_model(converted, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    rows = ["The B-NP\nbig I-NP\nCAT I-NP\nsat B-VP\non O\nthe B-NP\nmat I-NP\n. O\n",
            "A B-NP\ndog I-NP\nran B-VP\nnear O\nthe B-NP\nRiver I-NP\n. O\n"]
    for name in ("train.txt", "dev.txt"):
        (data / name).write_text("\n".join(rows * 4), encoding="utf-8")
    out = tmp_path / "out"
    code = finetune_cli("--task", "tagging_custom", "--pretrained", converted, "--data_dir", str(data),
                        "--output_dir", str(out), "--lr", "1e-4", "--max_steps", "3", "--batch_size", "4",
                        "--max_seq_length", "16", "--no_progress")
    assert code == 0, capsys.readouterr()
    results = json.loads((out / "results.json").read_text())
    assert results["vocab"] == os.path.join(converted, "vocab.txt") and 0.0 <= results["f1"] <= 1.0


def test_qa_fine_tunes_and_exports_from_a_converted_wordpiece_model(converted, tmp_path, capsys):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - registers the WordPiece ops

    data = tmp_path / "data"
    data.mkdir()
    qas = [{"id": f"q{i}", "question": "What was by the River?", "answers": [{"text": a,
                                                                             "answer_start": CONTEXT.index(a)}]}
           for i, a in enumerate(ANSWERS)]
    squad = {"data": [{"title": "t", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}
    for name in ("train.json", "dev.json"):
        (data / name).write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out"
    code = finetune_cli("--task", "qa_custom", "--pretrained", converted, "--data_dir", str(data), "--output_dir",
                        str(out), "--lr", "1e-4", "--max_steps", "3", "--batch_size", "4", "--max_seq_length", "48",
                        "--max_query_length", "8", "--doc_stride", "16", "--no_progress")
    assert code == 0, capsys.readouterr()
    predictions = json.loads((out / "predictions.json").read_text(encoding="utf-8"))
    assert sorted(predictions) == sorted(q["id"] for q in qas)
    assert all(p in CONTEXT for p in predictions.values())

    # The export tokenizes with the vocab.txt in the graph; its answers are the context's own bytes.
    assert os.path.isfile(out / "export" / "assets" / "vocab.txt")
    answer = tf.saved_model.load(str(out / "export")).signatures["answer_text"]
    # The whole context fits one window here: the export answers the dev questions as predictions.json does.
    dev = answer(question=tf.constant([q["question"] for q in qas]), context=tf.constant([CONTEXT] * len(qas)))
    assert [a.decode() for a in dev["answer"].numpy()] == [predictions[q["id"]] for q in qas]
    got = answer(question=tf.constant(["Who slept?", "Was the CAT naïve?"]), context=tf.constant([CONTEXT] * 2))
    context = CONTEXT.encode()
    for text, start, end in zip(got["answer"].numpy(), got["answer_start"].numpy(), got["answer_end"].numpy()):
        assert text and text.decode() in CONTEXT
        assert context[start:end].strip() == text
