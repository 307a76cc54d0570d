"""Each task's reader: GLUE TSV layouts written here, TFDS under mock_data, and the errors users meet."""

import os

import pytest

from electra_tf.finetune.glue import GLUE_TASKS, custom_task, get_task
from electra_tf.finetune.readers import read_tfds, read_tsv, read_tsv_dir
from electra_tf.finetune.synthetic import GLUE_HEADERS, write_synthetic_task

# (file name, contents) per task: lines in each task's real GLUE layout, and the Examples they hold.
FIXTURES = {
    "cola": {"train.tsv": "gj04\t1\t\tOur friends won't buy this analysis.\n"
                          "gj04\t0\t*\tThey drank the pub.\n",
             "dev.tsv": "clc95\t1\t\tThe sailors rode the breeze clear of the rocks.\n"},
    "sst2": {"train.tsv": "sentence\tlabel\nhide new secretions from the parental units \t0\n"
                          "contains no wit , only labored gags \t0\nthat loves its characters \t1\n",
             "dev.tsv": "sentence\tlabel\nit 's a charming and often affecting journey . \t1\n"},
    "mrpc": {"train.tsv": "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                          "1\t702876\t702977\tAmrozi accused his brother .\tReferring to him , he said \"x\" .\n",
             "dev.tsv": "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1\t2\tHe said .\tShe said .\n"},
    "qqp": {"train.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                         "133273\t213221\t213222\tHow is the life?\tWhat is life?\t0\n"
                         "402555\t536040\tHow do I?\n"  # a broken line, as in the real QQP files
                         "5\t6\t7\tWhy?\tWhy not?\t1\n",
            "dev.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t2\t3\tA?\tB?\t1\n"},
    "stsb": {"train.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                          "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\t"
                          "An air plane is taking off.\t5.000\n",
             "dev.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                        "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man with a hat.\tA man.\t2.500\n"},
    "mnli": {"train.tsv": "\t".join(GLUE_HEADERS["mnli"]) + "\n"
                          "0\t31193\t31193n\tgov\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tConceptually cream.\t"
                          "Product and geography.\tneutral\tneutral\n",
             "dev_matched.tsv": "\t".join(GLUE_HEADERS["mnli"][:-1] + ["label2", "label3", "label4", "label5",
                                                                       "gold_label"]) + "\n"
                                "0\t1\t1n\tgov\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tThe new rights.\tEveryone.\t"
                                "neutral\tentailment\tneutral\tneutral\tneutral\tneutral\n",
             "dev_mismatched.tsv": "\t".join(GLUE_HEADERS["mnli"][:-1] + ["label2", "label3", "label4", "label5",
                                                                          "gold_label"]) + "\n"
                                   "0\t1\t1c\tletters\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tYour gift.\tNo gift.\t"
                                   "contradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\t"
                                   "contradiction\n"},
    "qnli": {"train.tsv": "index\tquestion\tsentence\tlabel\n0\tWhen?\tIn 1900.\tnot_entailment\n",
             "dev.tsv": "index\tquestion\tsentence\tlabel\n0\tWho?\tHe did.\tentailment\n"},
    "rte": {"train.tsv": "index\tsentence1\tsentence2\tlabel\n0\tNo weapons.\tWeapons found.\tnot_entailment\n",
            "dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tA dog runs.\tAn animal runs.\tentailment\n"},
}
FIRST_TRAIN = {
    "cola": ("Our friends won't buy this analysis.", None, 1),
    "sst2": ("hide new secretions from the parental units ", None, 0),
    "mrpc": ("Amrozi accused his brother .", "Referring to him , he said \"x\" .", 1),
    "qqp": ("How is the life?", "What is life?", 0),
    "stsb": ("A plane is taking off.", "An air plane is taking off.", 5.0),
    "mnli": ("Conceptually cream.", "Product and geography.", 1),
    "qnli": ("When?", "In 1900.", 1),
    "rte": ("No weapons.", "Weapons found.", 1),
}


def _write(directory, files):
    os.makedirs(directory, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(text)
    return str(directory)


@pytest.mark.parametrize("name", sorted(GLUE_TASKS))
def test_glue_tsv_layouts(name, tmp_path):
    task = get_task(name)
    data = read_tsv_dir(task, _write(tmp_path / name, FIXTURES[name]))
    assert set(data) == {"train"} | set(task.eval_splits)
    first = data["train"][0]
    assert (first.text_a, first.text_b, first.label) == FIRST_TRAIN[name]
    if name == "qqp":
        assert len(data["train"]) == 2  # the broken line is skipped, not fatal
    if name == "mnli":
        assert data["dev"][0].label == 1 and data["dev_mismatched"][0].label == 2
    if name == "cola":
        assert [e.label for e in data["train"]] == [1, 0]


@pytest.mark.parametrize("name", sorted(GLUE_TASKS))
def test_synthetic_files_read_back(name, tmp_path):
    task = get_task(name)
    write_synthetic_task(task, str(tmp_path), num_train=12, num_dev=5, seed=1)
    data = read_tsv_dir(task, str(tmp_path))
    assert len(data["train"]) == 12 and all(len(data[s]) == 5 for s in task.eval_splits)
    assert all((e.text_b is not None) == task.is_pair for e in data["train"])


@pytest.mark.parametrize("name", sorted(GLUE_TASKS))
def test_tfds_reader_under_mock_data(name):
    import tensorflow_datasets as tfds

    task = get_task(name)
    with tfds.testing.mock_data(num_examples=4):
        data = read_tfds(task)
    assert set(data) == {"train"} | set(task.eval_splits)
    for split, examples in data.items():
        assert len(examples) == 4, split
        for e in examples:
            assert isinstance(e.text_a, str) and (e.text_b is not None) == task.is_pair
            if task.is_regression:
                assert isinstance(e.label, float)
            else:
                assert 0 <= e.label < task.num_labels


def test_errors_name_the_file_line_and_what_is_accepted(tmp_path):
    sst2 = get_task("sst2")
    with pytest.raises(ValueError, match="unknown task 'sst3'; accepted: cola, sst2"):
        get_task("sst3")
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/dev.tsv does not exist"):
        read_tsv_dir(sst2, _write(tmp_path, {"train.tsv": "sentence\tlabel\na\t1\n"}))
    bad = _write(tmp_path / "bad", {"train.tsv": "sentence\tlabel\na\t1\nb\t0\textra\n"})
    with pytest.raises(ValueError, match=r"bad/train.tsv:3: 3 columns, expected 2 \(as in the header\)"):
        read_tsv(sst2, os.path.join(bad, "train.tsv"))
    rte = _write(tmp_path / "rte", {"train.tsv": "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n"})
    with pytest.raises(ValueError, match="train.tsv:2: unknown label 'maybe'; task rte accepts entailment, "
                                         "not_entailment"):
        read_tsv(get_task("rte"), os.path.join(rte, "train.tsv"))
    cola = _write(tmp_path / "cola", {"train.tsv": "gj04\t1\t\tGood.\ngj04\t1\tGood.\n"})
    with pytest.raises(ValueError, match=r"cola/train.tsv:2: 3 columns, expected 4 \(as in line 1\)"):
        read_tsv(get_task("cola"), os.path.join(cola, "train.tsv"))
    with pytest.raises(ValueError, match="no column 'sentence' in the header"):
        read_tsv(sst2, os.path.join(rte, "train.tsv"))


def test_custom_task_with_names_indices_and_regression(tmp_path):
    task = custom_task(text_a="review", text_b="reply", label="stars", num_labels=3,
                       label_names=["low", "mid", "high"])
    d = _write(tmp_path / "named", {"train.tsv": "id\treview\treply\tstars\n1\tnice\tthanks\thigh\n",
                                    "dev.tsv": "id\treview\treply\tstars\n2\tmeh\tok\tmid\n"})
    data = read_tsv_dir(task, d)
    assert (data["train"][0].text_a, data["train"][0].text_b, data["train"][0].label) == ("nice", "thanks", 2)
    assert task.metrics == ("accuracy",)

    headerless = custom_task(text_a="1", label="0", num_labels=1, header=False)
    d = _write(tmp_path / "plain", {"train.tsv": "0.5\tsome text\n", "dev.tsv": "1.25\tmore\n"})
    data = read_tsv_dir(headerless, d)
    assert data["dev"][0].label == 1.25 and headerless.main_metric == "spearman"

    with pytest.raises(ValueError, match="label_names must list 2 distinct labels"):
        custom_task(num_labels=2, label_names=["a"])
    with pytest.raises(ValueError, match="metric 'mcc' does not apply to a task with num_labels=1"):
        custom_task(num_labels=1, metrics=["mcc"])
    plain = _write(tmp_path / "ints", {"train.tsv": "sentence\tlabel\nx\t7\n"})
    with pytest.raises(ValueError, match=r"label '7' is not a class id in 0..1"):
        read_tsv(custom_task(), os.path.join(plain, "train.tsv"))


def test_tfds_failure_says_what_to_do(monkeypatch):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(FileNotFoundError, match=r"cannot load TFDS glue/rte\[train\] \(ConnectionError: no network\)"
                                                r"; prepare it in --tfds_data_dir, or give --data_dir"):
        read_tfds(get_task("rte"))
