"""Token tagging: the CoNLL script's chunk scores, CoNLL files, labels on first pieces, chunking end to end."""

import json
import os

import pytest
from conftest import finetune_cli

from electra_tf.finetune.conll import chunk_scores, read_conll
from electra_tf.finetune.tagging import encode_tagging, tagging_task


# Each case counted by hand: chunks (type, first, last) of gold and prediction, the correct ones, tokens equal.
@pytest.mark.parametrize("gold, predicted, expected", [
    # NP(0-1) VP(3) vs NP(0-1) NP(3): 1 of 2 correct both ways; 3 of 4 tags.
    ([["B-NP", "I-NP", "O", "B-VP"]], [["B-NP", "I-NP", "O", "B-NP"]], (0.5, 0.5, 0.5, 0.75)),
    # IOB1: I-NP I-NP B-NP is NP(0-1) NP(2); the prediction NP(0-2) matches neither.
    ([["I-NP", "I-NP", "B-NP", "O"]], [["B-NP", "I-NP", "I-NP", "O"]], (0.0, 0.0, 0.0, 0.5)),
    # IOB1 and IOB2 spell the same chunks: all correct, though two tags differ.
    ([["I-NP", "I-NP", "O", "I-VP"]], [["B-NP", "I-NP", "O", "B-VP"]], (1.0, 1.0, 1.0, 0.5)),
    # A sentence boundary ends a chunk: I-NP opening the second sentence is a new chunk.
    ([["B-NP"], ["I-NP"]], [["B-NP"], ["B-NP"]], (1.0, 1.0, 1.0, 0.5)),
    # A type change inside a chunk starts another: NP(0) VP(1) vs NP(0-1).
    ([["B-NP", "I-NP"]], [["B-NP", "I-VP"]], (0.0, 0.0, 0.0, 0.5)),
    # NP(0-1) VP(2) PP(4) NP(5) vs NP(0-1) VP(2) VP(3) PP(4-5): NP and VP(2) correct.
    ([["B-NP", "I-NP", "B-VP", "O", "B-PP", "B-NP"]], [["B-NP", "I-NP", "B-VP", "B-VP", "B-PP", "I-PP"]],
     (0.5, 0.5, 0.5, 4 / 6)),
    # 3 gold chunks, 2 predicted, 2 correct: P 1, R 2/3, F1 0.8.
    ([["B-NP", "O", "B-VP", "B-NP"]], [["B-NP", "O", "B-VP", "O"]], (1.0, 2 / 3, 0.8, 0.75)),
])
def test_chunk_scores_match_the_conll_script_on_hand_counted_cases(gold, predicted, expected):
    scores = chunk_scores(gold, predicted)
    assert (scores["precision"], scores["recall"], scores["f1"], scores["accuracy"]) == pytest.approx(expected)


def test_conll_files_sentences_docstart_and_a_ragged_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("-DOCSTART- -X- O\n\nHe PRP B-NP\nruns VBZ B-VP\n\n\nDogs NNS B-NP\n")
    sentences = read_conll(str(path), 0, 2)
    assert [s.words for s in sentences] == [("He", "runs"), ("Dogs",)]
    assert [s.tags for s in sentences] == [("B-NP", "B-VP"), ("B-NP",)]
    assert sentences[1].where == f"{path}:7"

    path.write_text("He PRP B-NP\nruns B-VP\n")
    with pytest.raises(ValueError, match=rf"{path}:2: 2 columns, expected 3 \(as in line 1\)"):
        read_conll(str(path), 0, 2)
    with pytest.raises(ValueError, match=rf"{path}:1: 3 columns, too few for tag_column 5"):
        path.write_text("He PRP B-NP\n")
        read_conll(str(path), 0, 5)


def test_the_label_sits_on_the_first_piece_of_each_word(tiny_data):
    from electra_tf.data.vocab import CLS_ID, SEP_ID, load_sentencepiece

    sp = load_sentencepiece(os.path.join(tiny_data, "vocab.model"))
    words = ("tokenization", "a", "unbelievably", "x")
    pieces = [sp.encode(w) for w in words]
    assert max(len(p) for p in pieces) > 1  # some word is split, or the test shows nothing
    task = tagging_task("tagging_custom").resolved({"train": [_sentence(words, ("B-NP", "I-NP", "O", "B-VP"))]})
    assert task.label_names == ("O", "B-NP", "B-VP", "I-NP")
    split = encode_tagging(sp, task, [_sentence(words, ("B-NP", "I-NP", "O", "B-VP"))], max_seq_length=64)
    expected_ids, expected_labels = [CLS_ID], [-1]
    for p, tag in zip(pieces, ("B-NP", "I-NP", "O", "B-VP")):
        expected_ids += p
        expected_labels += [task.label_names.index(tag)] + [-1] * (len(p) - 1)
    assert split.input_ids == [expected_ids + [SEP_ID]]
    assert split.labels == [expected_labels + [-1]]

    # Cut at 4 tokens: the words that do not fit are dropped here and predicted O at evaluation.
    short = encode_tagging(sp, task, [_sentence(words, ("B-NP", "I-NP", "O", "B-VP"))], max_seq_length=4)
    assert len(short.input_ids[0]) <= 4 and short.truncated == 1 and short.gold == [("B-NP", "I-NP", "O", "B-VP")]


def _sentence(words, tags):
    from electra_tf.finetune.conll import Sentence

    return Sentence(tuple(words), tuple(tags), "test:1")


def test_chunking_cli_learns_the_synthetic_chunks_and_names_a_bad_line(tiny_pretrained, tmp_path, capsys):
    from electra_tf.finetune.synthetic import write_synthetic_chunking

    data = tmp_path / "conll2000"
    write_synthetic_chunking(str(data), num_train=160, num_dev=40)
    out = tmp_path / "out"
    code = finetune_cli("--task", "chunking", "--pretrained", tiny_pretrained, "--data_dir", str(data), "--output_dir",
                str(out), "--lr", "3e-3", "--epochs", "4", "--batch_size", "16", "--max_seq_length", "32",
                "--no_progress")
    printed = capsys.readouterr().out
    assert code == 0, printed
    results = json.loads((out / "results.json").read_text())
    assert results["main_metric"] == "f1" and "dev f1" in printed
    # The chunks follow from the words: a few epochs put F1 far above a tagger that learnt nothing (0).
    assert results["f1"] > 0.6, results
    assert results["best_run"]["checkpoint"].startswith(str(out / "best"))

    # The kept checkpoint tags the dev file with the reported F1.
    from electra_tf.data.vocab import load_sentencepiece
    from electra_tf.finetune import eval_dataset, load_finetuned
    from electra_tf.finetune.tagging import predicted_tags, read_tagging

    model, task, info = load_finetuned(str(out))
    assert task.name == "chunking" and "B-NP" in task.label_names
    dev = encode_tagging(load_sentencepiece(info["vocab"]), task, read_tagging(task, str(data))["dev"], 32)
    batches = [{"logits": model(b, training=False)["logits"].numpy(), "label": b["label"].numpy(),
                "weight": b["weight"].numpy()} for b in eval_dataset(dev, 16)]
    assert chunk_scores(dev.gold, predicted_tags(task, dev, batches))["f1"] == pytest.approx(results["f1"])

    (data / "test.txt").write_text("the DT B-NP\nmodel NN\n")
    code = finetune_cli("--task", "chunking", "--pretrained", tiny_pretrained, "--data_dir", str(data), "--output_dir",
                str(tmp_path / "bad"), "--no_progress")
    assert code == 2
    assert f"{data / 'test.txt'}:2: 2 columns, expected 3 (as in line 1)" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "bad" / "results.json")
