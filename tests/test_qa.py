"""Extractive QA: the official SQuAD scores, answer checks, windows and decoding, a synthetic task end to end."""

import json
import os

import numpy as np
import pytest
from conftest import finetune_cli

from electra_tf.finetune.qa_features import QAWindowing, decode_predictions, encode_qa
from electra_tf.finetune.squad import (
    QAExample,
    exact_match,
    f1_score,
    normalize_answer,
    parse_squad,
    read_squad,
    squad_scores,
)


def test_official_normalisation_exact_match_and_f1_by_hand():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("An apple, a day; THE end.") == "apple day end"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert exact_match("Paris.", "paris") == 1.0 and exact_match("in Paris", "Paris") == 0.0
    # pred {cat, sat}, gold {cat, sat, down}: precision 1, recall 2/3.
    assert f1_score("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert f1_score("", "") == 1.0 and f1_score("", "x") == 0.0 and f1_score("", "x", version=1) == 0.0

    v1 = [QAExample("a", "q", "c", (("Denver Broncos", 0), ("The Denver Broncos", 0))),
          QAExample("b", "q", "c", (("in 1990", 0),))]
    # a: exact on the first gold; b: {1990, year} vs {in, 1990}: F1 1/2.
    assert squad_scores(v1, {"a": "denver broncos", "b": "1990 year"}, 1) == \
        pytest.approx({"exact_match": 50.0, "f1": 75.0})
    # As the official scripts: v1 scores a missing prediction 0, v2 leaves the question out.
    assert squad_scores(v1, {"a": "Denver Broncos"}, 1)["exact_match"] == 50.0
    assert squad_scores(v1, {"a": "Denver Broncos"}, 2)["exact"] == 100.0


def test_squad2_scores_and_the_best_threshold_by_hand():
    examples = [QAExample("a", "q", "c", (("right", 0),)), QAExample("b", "q", "c", (("right", 0),)),
                QAExample("c", "q", "c", (), True), QAExample("d", "q", "c", (), True)]
    answers = {"a": "right", "b": "wrong", "c": "x", "d": "y"}
    odds = {"a": -2.0, "c": 0.5, "b": 1.0, "d": 3.0}
    scores = squad_scores(examples, answers, 2, null_odds=odds, threshold=0.0)
    # Null when odds > 0: a answered (right), b, c, d null (b wrong, c and d right).
    assert scores["exact"] == scores["f1"] == 75.0
    assert (scores["HasAns_exact"], scores["NoAns_exact"]) == (50.0, 100.0)
    # All null scores 2 (c, d); answering a (odds -2) makes 3, then c costs 1, b adds 0, d costs 1.
    assert (scores["best_exact"], scores["best_exact_thresh"]) == (75.0, -2.0)
    assert (scores["best_f1"], scores["best_f1_thresh"]) == (75.0, -2.0)
    # Without null odds an empty prediction is the "no answer".
    plain = squad_scores(examples, {"a": "right", "b": "", "c": "", "d": "y"}, 2)
    assert (plain["exact"], plain["HasAns_exact"], plain["NoAns_exact"]) == (50.0, 50.0, 50.0)


def _squad(qas, context="Denver Broncos won in 1990."):
    return {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}


def test_bad_answers_are_refused_naming_the_question(tmp_path):
    bad_start = _squad([{"id": "q7", "question": "who?", "answers": [{"text": "Broncos", "answer_start": 3}]}])
    with pytest.raises(ValueError, match="question id 'q7': answer_start 3 does not match the answer text "
                                         "'Broncos': the context has 'ver Bro' there"):
        parse_squad(bad_start, "dev.json", 1)
    no_answer = _squad([{"id": "q8", "question": "when?", "answers": []}])
    with pytest.raises(ValueError, match="question id 'q8' has no answer in its context"):
        parse_squad(no_answer, "dev.json", 1)
    impossible = _squad([{"id": "q9", "question": "why?", "answers": [], "is_impossible": True}])
    with pytest.raises(ValueError, match="question id 'q9' is marked is_impossible, which SQuAD 1.1"):
        parse_squad(impossible, "dev.json", 1)
    assert parse_squad(impossible, "dev.json", 2)[0].is_impossible
    path = tmp_path / "train.json"
    path.write_text(json.dumps(_squad([{"id": "q1", "question": "when?",
                                        "answers": [{"text": "1990", "answer_start": 22}]}])))
    assert read_squad(str(path), 1) == [QAExample("q1", "when?", "Denver Broncos won in 1990.", (("1990", 22),))]


def test_windows_hold_every_answer_and_decoding_maps_back_to_its_characters(tiny_data):
    from electra_tf.data.vocab import load_sentencepiece

    sp = load_sentencepiece(os.path.join(tiny_data, "vocab.model"))
    words = ("the model reads a short text and learns which tokens were replaced by a small generator while "
             "training runs on one machine with two cores so every test keeps its data tiny").split()
    context = " ".join(words[:12]) + " café, au-lait " + " ".join(words[12:]) + " (end)."
    answers = ["model reads", "café, au-lait", "small generator", "two cores", "data tiny", "(end)."]
    examples = [QAExample(f"q{i}", "which words?", context, ((a, context.index(a)),)) for i, a in enumerate(answers)]
    # 31 context pieces per window, a new one every 8: the max-context window of an answer's first piece
    # (at least 11 pieces on its right) holds every answer here (at most 7 pieces in this vocabulary).
    windowing = QAWindowing(max_seq_length=40, doc_stride=8, max_query_length=6)
    split = encode_qa(sp, examples, windowing, training=True)
    assert len(split) > 3 * len(examples)  # the context takes several windows
    for e, (text, start) in enumerate(ex.answers[0] for ex in examples):
        spans = split.spans[e]
        windows = [f for f in range(len(split)) if split.feature_example[f] == e]
        labelled = 0
        for f in windows:
            s, t = split.labels[f]
            assert len(split.input_ids[f]) <= 40
            assert split.token_type_ids[f].index(1) == split.feature_offset[f]
            if (s, t) == (0, 0):
                continue
            labelled += 1
            first = split.feature_doc_start[f] + s - split.feature_offset[f]
            last = split.feature_doc_start[f] + t - split.feature_offset[f]
            assert context[spans[first][0]:spans[last][1]] == text  # the exact characters
        assert labelled >= 1, text
        # Every piece has its most context in exactly one window: an answer is decoded once.
        first_piece = next(i for i, (a, b) in enumerate(spans) if b > start and b > a)
        owners = [f for f in windows if split.feature_doc_start[f] <= first_piece <
                  split.feature_doc_start[f] + len(split.feature_max_context[f])
                  and split.feature_max_context[f][first_piece - split.feature_doc_start[f]]]
        assert len(owners) == 1

    # Logits that point at each labelled span decode to exactly the answer, across the windows.
    starts, ends = [], []
    for f in range(len(split)):
        n = len(split.input_ids[f])
        s, t = split.labels[f]
        start_logits, end_logits = np.zeros(n), np.zeros(n)
        start_logits[s] += 5.0
        end_logits[t] += 5.0
        starts.append(start_logits)
        ends.append(end_logits)
    texts, odds, _ = decode_predictions(split, starts, ends)
    assert texts == {ex.qid: ex.answers[0][0] for ex in examples}
    assert all(v < 0 for v in odds.values())  # the span beats the null span in every question
    assert squad_scores(examples, texts, 1)["exact_match"] == 100.0
    # The answerability head's highest logit over a question's windows lowers its null odds by that much.
    answerable = [float(split.feature_example[f] + 0.5 * (f % 2)) for f in range(len(split))]
    _, shifted, _ = decode_predictions(split, starts, ends, answerable_logits=answerable)
    for e, ex in enumerate(examples):
        top = max(a for f, a in enumerate(answerable) if split.feature_example[f] == e)
        assert shifted[ex.qid] == pytest.approx(odds[ex.qid] - top)


def test_synthetic_squad2_task_is_learnt_and_predictions_are_official(tiny_pretrained, tmp_path, capsys):
    """The answer is the context's one digit (none in 30% of contexts): a tiny model learns it, EM >= 0.9."""
    from electra_tf.finetune.synthetic import write_synthetic_qa

    data = tmp_path / "qa"
    write_synthetic_qa(str(data), num_train=240, num_dev=50, version=2, context_words=(8, 30))
    out = tmp_path / "out"
    code = finetune_cli("--task", "qa_custom", "--pretrained", tiny_pretrained, "--data_dir", str(data), "--output_dir",
                str(out), "--lr", "3e-3", "--epochs", "2", "--batch_size", "16", "--max_seq_length", "32",
                "--max_query_length", "8", "--doc_stride", "12", "--no_progress")
    printed = capsys.readouterr().out
    assert code == 0, printed
    results = json.loads((out / "results.json").read_text())
    assert results["main_metric"] == "best_f1" and "predictions.json" in printed
    # EM at the null threshold chosen on dev (at threshold 0 a short run may still answer nothing).
    assert results["best_exact"] >= 0.9, results
    # predictions.json: every dev question id -> its answer ("" = unanswerable), the dev-chosen threshold applied.
    dev = read_squad(str(data / "dev.json"), 2)
    predictions = json.loads((out / "predictions.json").read_text())
    assert sorted(predictions) == sorted(ex.qid for ex in dev)
    assert all(isinstance(v, str) for v in predictions.values())
    assert squad_scores(dev, predictions, 2)["f1"] == pytest.approx(100 * results["best_f1"])
    odds = json.loads((out / "null_odds.json").read_text())
    assert sorted(odds) == sorted(predictions)

    # The export answers from text alone: where the whole context fits one window, as predictions.json does.
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - registers the SentencePiece op

    from electra_tf.data.vocab import load_sentencepiece

    assert f"export:       {out / 'export'}" in printed
    sp = load_sentencepiece(results["vocab"])
    fits = [ex for ex in dev if len(sp.encode(ex.context)) + len(sp.encode(ex.question)) + 3 <= 32]
    assert len(fits) >= 5
    answer = tf.saved_model.load(str(out / "export")).signatures["answer_text"]
    got = answer(question=tf.constant([ex.question for ex in fits]), context=tf.constant([ex.context for ex in fits]))
    assert [a.decode() for a in got["answer"].numpy()] == [predictions[ex.qid] for ex in fits]
    for ex, a, start, end in zip(fits, got["answer"].numpy(), got["answer_start"].numpy(), got["answer_end"].numpy()):
        if a:  # byte offsets of the answer in the context
            assert ex.context.encode()[start:end].strip() == a

    # A wrong answer_start is refused before anything is written, naming file and question.
    train = json.loads((data / "train.json").read_text())
    qa = next(q for p in train["data"][0]["paragraphs"] for q in p["qas"] if q["answers"])
    qa["answers"][0]["answer_start"] += 1
    (data / "train.json").write_text(json.dumps(train))
    assert finetune_cli("--task", "qa_custom", "--pretrained", tiny_pretrained, "--data_dir", str(data), "--output_dir",
                str(tmp_path / "bad"), "--no_progress") == 2
    assert f"{data / 'train.json'}: question id '{qa['id']}': answer_start" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "bad" / "results.json")


def test_squad_from_tfds_without_data_dir():
    """The TFDS path reads squad/v1.1 through the same checks (TFDS mocked with our own rows: no download)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from electra_tf.finetune.qa import qa_task, read_qa

    starts = {"train": 11, "validation": 11}

    def rows(self, split, **kwargs):
        return tf.data.Dataset.from_tensor_slices({
            "id": [f"{split}{i}" for i in range(3)], "title": ["t"] * 3,
            "context": [f"alpha beta {i} gamma" for i in range(3)], "question": ["which number ?"] * 3,
            "answers": {"text": tf.ragged.constant([[str(i)] for i in range(3)]),
                        "answer_start": tf.ragged.constant([[starts[split]]] * 3)}})

    with tfds.testing.mock_data(as_dataset_fn=rows):
        data = read_qa(qa_task("squad1", from_tfds=True))
        assert data["dev"][2] == QAExample("validation2", "which number ?", "alpha beta 2 gamma", (("2", 11),))
        assert [len(data[s]) for s in ("train", "dev")] == [3, 3]
        starts["train"] = 10
        with pytest.raises(ValueError, match=r"TFDS squad/v1.1\[train\]: question id 'train0': answer_start 10"):
            read_qa(qa_task("squad1", from_tfds=True))


def test_answerability_head_option_trains_and_reports_squad2_scores(tiny_pretrained, tmp_path):
    from electra_tf.finetune import FinetuneConfig, SearchSpace, run_search
    from electra_tf.finetune.qa import qa_task
    from electra_tf.finetune.qa_export import load_finetuned_qa
    from electra_tf.finetune.synthetic import write_synthetic_qa

    data = tmp_path / "qa"
    write_synthetic_qa(str(data), num_train=32, num_dev=12, version=2, context_words=(6, 12))
    task = qa_task("qa_custom", max_query_length=8, answerable_head=True)
    results = run_search(task, tiny_pretrained, str(tmp_path / "out"), data_dir=str(data),
                         space=SearchSpace(learning_rates=(1e-3,)), base=FinetuneConfig(max_steps=4, batch_size=8),
                         max_seq_length=32, progress=False)
    assert results["main_metric"] == "best_f1" and {"HasAns_exact", "NoAns_exact"} <= set(results)
    model, loaded, _ = load_finetuned_qa(str(tmp_path / "out"))
    assert loaded.answerable_head and loaded.version == 2
    out = model({"input_ids": np.array([[2, 10, 3, 11, 12, 3]], np.int32)})
    assert out["answerable_logits"].shape == (1,)
