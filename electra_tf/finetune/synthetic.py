"""Synthetic GLUE-format data: files laid out exactly like each task's, with a learnable signal.

For smoke tests and demos without the GLUE download. Every example's first
text contains a marker word of its class (for regression, as many
"positive" markers as its score), among neutral filler words, so a model that
learns anything scores well above chance. ``label_noise`` replaces that
fraction of labels with random ones, which caps the attainable accuracy.

Example:

>>> write_synthetic_task(get_task("sst2"), "/tmp/SST-2", num_train=400, num_dev=100)   # doctest: +SKIP
{'train': '/tmp/SST-2/train.tsv', 'dev': '/tmp/SST-2/dev.tsv'}
"""

import json
import os
import random

__all__ = ["GLUE_HEADERS", "write_synthetic_task", "write_synthetic_chunking", "write_synthetic_qa"]

# The header of each GLUE file (None: CoLA has no header). MNLI's dev files have five label columns.
GLUE_HEADERS = {
    "cola": None,
    "sst2": ["sentence", "label"],
    "mrpc": ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
    "qqp": ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
    "stsb": ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
             "score"],
    "mnli": ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
             "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"],
    "qnli": ["index", "question", "sentence", "label"],
    "rte": ["index", "sentence1", "sentence2", "label"],
}
_FILLER = ("the value of this function is returned to the caller when the list of arguments is given "
           "and the file name or path of the object in the module is used by default for each item").split()
_MARKERS = [["bad", "wrong", "broken", "invalid", "poor"], ["good", "great", "excellent", "nice", "correct"],
            ["maybe", "perhaps", "possibly", "unclear", "unknown"]]


def _sentence(rng, markers, length=(6, 14)):
    words = [rng.choice(_FILLER) for _ in range(rng.randint(*length))]
    for marker in markers:
        words.insert(rng.randrange(len(words) + 1), marker)
    return " ".join(words)


def _example(task, rng, label_noise):
    """``(text_a, text_b, label string)``."""
    noisy = rng.random() < label_noise
    if task.is_regression:
        score = rng.randint(0, 5)
        a = _sentence(rng, [rng.choice(_MARKERS[1]) for _ in range(score)])
        return a, _sentence(rng, []), f"{float(rng.randint(0, 5) if noisy else score):.3f}"
    label = rng.randrange(task.num_labels)
    a = _sentence(rng, [rng.choice(_MARKERS[label % len(_MARKERS)])])
    label = rng.randrange(task.num_labels) if noisy else label
    b = _sentence(rng, []) if task.is_pair else None
    name = task.label_names[label] if task.label_names else str(label)
    return a, b, name


def _row(task, header, a, b, label, index):
    if header is None:  # CoLA: source, label, original label (blank when accepted), sentence
        return ["src", label, "" if label == "1" else "*", a]
    values = {name: f"x{index}" for name in header}
    values.update({task.text_a: a, task.label: label})
    if task.text_b is not None:
        values[task.text_b] = b
    return [values[name] for name in header]


def write_synthetic_task(task, out_dir, num_train=400, num_dev=100, seed=0, label_noise=0.0):
    """Writes ``task``'s train and dev files (GLUE names and columns) into ``out_dir``; returns their paths.

    Works for the GLUE tasks and for a ``custom_task`` with header names.

    Args:
        task: the task whose layout to write.
        out_dir: the directory (created if needed).
        num_train: training examples.
        num_dev: examples in each evaluation file.
        seed: seed of the text and labels.
        label_noise: fraction of examples whose label is drawn at random.
    """
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError(f"label_noise must be in [0, 1], got {label_noise!r}")
    rng = random.Random(seed)
    os.makedirs(out_dir, exist_ok=True)
    header = GLUE_HEADERS.get(task.name)
    if task.name not in GLUE_HEADERS:
        header = [c for c in (task.text_a, task.text_b, task.label) if c is not None]
    files = {"train": (task.train_file, num_train), **{s: (f, num_dev) for s, f in task.dev_files.items()}}
    paths = {}
    for split, (name, count) in files.items():
        split_header = header
        if task.name == "mnli" and split != "train":
            split_header = header[:-1] + ["label2", "label3", "label4", "label5", "gold_label"]
        lines = [] if split_header is None else ["\t".join(split_header)]
        for index in range(count):
            a, b, label = _example(task, rng, label_noise)
            lines.append("\t".join(_row(task, split_header, a, b, label, index)))
        paths[split] = os.path.join(out_dir, name)
        with open(paths[split], "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return paths


_PHRASES = {"NP": (("the", "a", "this"), ("model", "file", "value", "list", "name", "module", "item")),
            "VP": ("reads", "returns", "uses", "learns", "keeps"),
            "PP": ("of", "in", "for", "with", "by")}


def _chunk_sentence(rng):
    """``[(word, POS, chunk tag)]``: NP VP NP (PP NP) ."""
    def np_chunk():
        words = [(rng.choice(_PHRASES["NP"][0]), "DT", "B-NP")]
        return words + [(rng.choice(_PHRASES["NP"][1]), "NN", "I-NP") for _ in range(rng.randint(1, 2))]

    rows = np_chunk() + [(rng.choice(_PHRASES["VP"]), "VBZ", "B-VP")] + np_chunk()
    if rng.random() < 0.5:
        rows += [(rng.choice(_PHRASES["PP"]), "IN", "B-PP")] + np_chunk()
    return rows + [(".", ".", "O")]


def write_synthetic_chunking(out_dir, num_train=200, num_dev=50, seed=0):
    """Writes CoNLL-2000-format ``train.txt`` and ``test.txt`` (``word POS chunk``, a blank line between
    sentences) whose chunks follow from the words: NP (determiner + nouns), VP, PP and ``O``."""
    rng = random.Random(seed)
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for split, name, count in (("train", "train.txt", num_train), ("dev", "test.txt", num_dev)):
        sentences = ["\n".join(" ".join(row) for row in _chunk_sentence(rng)) for _ in range(count)]
        paths[split] = os.path.join(out_dir, name)
        with open(paths[split], "w", encoding="utf-8") as f:
            f.write("\n\n".join(sentences) + "\n")
    return paths


def _qa_paragraph(rng, index, answerable, context_words):
    words = [rng.choice(_FILLER) for _ in range(rng.randint(*context_words))]
    qa = {"id": f"q{index}", "question": "what is the number ?", "answers": [], "is_impossible": not answerable}
    if answerable:
        position = rng.randrange(len(words) + 1)
        digit = str(rng.randrange(10))
        words.insert(position, digit)
        start = len(" ".join(words[:position])) + (1 if position else 0)
        qa["answers"] = [{"text": digit, "answer_start": start}]
    return {"context": " ".join(words), "qas": [qa]}


def write_synthetic_qa(out_dir, num_train=300, num_dev=60, version=1, seed=0, context_words=(20, 40),
                       unanswerable=0.3):
    """Writes SQuAD-format ``train.json`` and ``dev.json``: contexts of filler words, the question "what is
    the number ?" and, as the answer, the one digit in the context (the learnable cue: no other word has
    digits). Version 2 leaves the digit out of an ``unanswerable`` fraction of contexts (``is_impossible``)."""
    if version not in (1, 2):
        raise ValueError(f"version must be 1 or 2, got {version!r}")
    rng = random.Random(seed)
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for split, count in (("train", num_train), ("dev", num_dev)):
        paragraphs = [_qa_paragraph(rng, f"{split}{i}", version == 1 or rng.random() >= unanswerable,
                                    context_words) for i in range(count)]
        if version == 1:
            for p in paragraphs:
                del p["qas"][0]["is_impossible"]
        data = {"version": "1.1" if version == 1 else "v2.0", "data": [{"title": "synthetic",
                                                                        "paragraphs": paragraphs}]}
        paths[split] = os.path.join(out_dir, f"{split}.json")
        with open(paths[split], "w", encoding="utf-8") as f:
            json.dump(data, f)
    return paths
