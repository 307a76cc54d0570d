"""Fine-tuning tasks: the eight GLUE tasks used by the paper, and user-defined TSV tasks.

A :class:`Task` says where a task's text and labels are (TSV columns, TFDS
features), how labels map to class ids, which metrics are reported and which
one selects the best run. The GLUE file layouts are those of the GLUE
download script: ``train.tsv`` and ``dev.tsv`` (``dev_matched.tsv`` and
``dev_mismatched.tsv`` for MNLI), with a header line, except CoLA whose files
have none (``source<TAB>label<TAB>original label<TAB>sentence``).

Class ids follow the TFDS ``glue/*`` label order, so a model trained from TSV
files and one trained from TFDS agree.

Example:

>>> task = get_task("mrpc")
>>> task.text_columns, task.main_metric
(('#1 String', '#2 String'), 'accuracy')
>>> task = custom_task("reviews", text_a="review", label="stars", num_labels=5)
>>> task.metrics
('accuracy',)
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional, Sequence, Tuple, Union

__all__ = ["Task", "GLUE_TASKS", "TASK_NAMES", "METRICS", "get_task", "custom_task"]

Column = Union[str, int]
METRICS = ("accuracy", "f1", "mcc", "pearson", "spearman")


@dataclasses.dataclass(frozen=True)
class Task:
    """One sentence(-pair) classification or regression task.

    Attributes:
        name: the task's name (``sst2``, ``custom``, ...).
        text_a: column of the first text: a header name, or a 0-based index
            when ``header`` is False.
        text_b: column of the second text, or None for single-sentence tasks.
        label: column of the label.
        num_labels: number of classes; 1 means regression (a float label).
        label_names: the label strings of class ids 0, 1, ... as they appear
            in the TSV files; None means the labels are written as the ids.
        header: whether TSV files start with a header line.
        num_columns: for header-less files, the number of columns every line has.
        metrics: the metrics reported (names from ``METRICS``).
        main_metric: the metric that picks the best checkpoint and config.
        train_file: the training TSV file name.
        dev_files: evaluation split name -> TSV file name. The split named
            ``dev`` selects; the metrics of any other split ``s`` are reported
            with the suffix ``_s`` (MNLI: ``accuracy_mismatched``).
        tfds_name: the TFDS dataset (``glue/sst2``), or None.
        tfds_splits: split name (``train`` and the ``dev_files`` keys) -> TFDS split.
        tfds_text: the TFDS features holding ``text_a`` and ``text_b``.
        skip_malformed: skip (and count) lines with a wrong column count instead
            of failing; only QQP needs it (its train file has a few broken lines).
    """

    name: str
    text_a: Column
    text_b: Optional[Column]
    label: Column
    num_labels: int
    label_names: Optional[Tuple[str, ...]] = None
    header: bool = True
    num_columns: Optional[int] = None
    metrics: Tuple[str, ...] = ("accuracy",)
    main_metric: str = "accuracy"
    train_file: str = "train.tsv"
    dev_files: Mapping[str, str] = dataclasses.field(default_factory=lambda: {"dev": "dev.tsv"})
    tfds_name: Optional[str] = None
    tfds_splits: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"train": "train", "dev": "validation"})
    tfds_text: Tuple[str, ...] = ()
    skip_malformed: bool = False

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def is_pair(self) -> bool:
        return self.text_b is not None

    @property
    def text_columns(self) -> Tuple[Column, ...]:
        return (self.text_a,) if self.text_b is None else (self.text_a, self.text_b)

    @property
    def eval_splits(self) -> Tuple[str, ...]:
        return tuple(self.dev_files)

    def metric_key(self, metric: str, split: str) -> str:
        """The results key of ``metric`` on ``split`` (``accuracy``, ``accuracy_mismatched``)."""
        return metric if split == "dev" else f"{metric}_{split.replace('dev_', '', 1)}"


_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")

GLUE_TASKS = {
    "cola": Task("cola", text_a=3, text_b=None, label=1, num_labels=2, label_names=_BINARY, header=False,
                 num_columns=4, metrics=("accuracy", "mcc"), main_metric="mcc", tfds_name="glue/cola",
                 tfds_text=("sentence",)),
    "sst2": Task("sst2", text_a="sentence", text_b=None, label="label", num_labels=2, label_names=_BINARY,
                 tfds_name="glue/sst2", tfds_text=("sentence",)),
    "mrpc": Task("mrpc", text_a="#1 String", text_b="#2 String", label="Quality", num_labels=2,
                 label_names=_BINARY, metrics=("accuracy", "f1"), tfds_name="glue/mrpc",
                 tfds_text=("sentence1", "sentence2")),
    "qqp": Task("qqp", text_a="question1", text_b="question2", label="is_duplicate", num_labels=2,
                label_names=_BINARY, metrics=("accuracy", "f1"), tfds_name="glue/qqp",
                tfds_text=("question1", "question2"), skip_malformed=True),
    "stsb": Task("stsb", text_a="sentence1", text_b="sentence2", label="score", num_labels=1,
                 metrics=("pearson", "spearman"), main_metric="spearman", tfds_name="glue/stsb",
                 tfds_text=("sentence1", "sentence2")),
    "mnli": Task("mnli", text_a="sentence1", text_b="sentence2", label="gold_label", num_labels=3,
                 label_names=("entailment", "neutral", "contradiction"),
                 dev_files={"dev": "dev_matched.tsv", "dev_mismatched": "dev_mismatched.tsv"},
                 tfds_name="glue/mnli",
                 tfds_splits={"train": "train", "dev": "validation_matched",
                              "dev_mismatched": "validation_mismatched"},
                 tfds_text=("premise", "hypothesis")),
    "qnli": Task("qnli", text_a="question", text_b="sentence", label="label", num_labels=2, label_names=_NLI2,
                 tfds_name="glue/qnli", tfds_text=("question", "sentence")),
    "rte": Task("rte", text_a="sentence1", text_b="sentence2", label="label", num_labels=2, label_names=_NLI2,
                tfds_name="glue/rte", tfds_text=("sentence1", "sentence2")),
}
TASK_NAMES = tuple(GLUE_TASKS) + ("custom",)


def get_task(name: str) -> Task:
    """The GLUE task called ``name`` (case-insensitive; ``sst-2`` and ``sts-b`` are accepted)."""
    key = name.lower().replace("-", "")
    if key not in GLUE_TASKS:
        raise ValueError(f"unknown task {name!r}; accepted: {', '.join(GLUE_TASKS)} "
                         "(or 'custom' with --num_labels and column names, see docs/finetune.md)")
    return GLUE_TASKS[key]


def _column(value: Column, header: bool, what: str) -> Column:
    if header:
        return str(value)
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a 0-based column index for files without a header, got {value!r}") \
            from None
    if index < 0:
        raise ValueError(f"{what} must be a 0-based column index >= 0, got {value!r}")
    return index


def custom_task(name: str = "custom", text_a: Column = "sentence", text_b: Optional[Column] = None,
                label: Column = "label", num_labels: int = 2, label_names: Optional[Sequence[str]] = None,
                header: bool = True, train_file: str = "train.tsv", dev_file: str = "dev.tsv",
                metrics: Optional[Sequence[str]] = None, main_metric: Optional[str] = None) -> Task:
    """A task on the user's own TSV files.

    Args:
        name: a name for results and logs.
        text_a: the first text's column: a header name, or a 0-based index
            when ``header`` is False.
        text_b: the second text's column for sentence-pair tasks.
        label: the label's column.
        num_labels: number of classes; 1 for regression.
        label_names: the label strings of class 0, 1, ...; None means the
            labels are the integers ``0 .. num_labels-1``.
        header: whether the files have a header line.
        train_file: training file name inside the data dir.
        dev_file: evaluation file name inside the data dir.
        metrics: metrics to report; default accuracy (plus F1 and Matthews
            correlation for two classes), or Pearson and Spearman for regression.
        main_metric: the metric that selects; default the first of ``metrics``.

    Raises:
        ValueError: a bad number of labels, label list, column or metric.
    """
    if not isinstance(num_labels, int) or num_labels < 1:
        raise ValueError(f"num_labels must be an integer >= 1 (1 = regression), got {num_labels!r}")
    if label_names is not None:
        label_names = tuple(str(x) for x in label_names)
        if num_labels == 1 or len(label_names) != num_labels or len(set(label_names)) != num_labels:
            raise ValueError(f"label_names must list {num_labels} distinct labels for num_labels={num_labels}, "
                             f"got {list(label_names)}")
    if metrics is None:
        if num_labels == 1:
            metrics = ("spearman", "pearson")
        elif num_labels == 2:
            metrics = ("accuracy", "f1", "mcc")
        else:
            metrics = ("accuracy",)
    metrics = tuple(metrics)
    allowed = ("pearson", "spearman") if num_labels == 1 else ("accuracy", "f1", "mcc")
    for metric in metrics:
        if metric not in allowed:
            raise ValueError(f"metric {metric!r} does not apply to a task with num_labels={num_labels}; "
                             f"accepted: {', '.join(allowed)}")
    main_metric = main_metric or metrics[0]
    if main_metric not in metrics:
        raise ValueError(f"main_metric must be one of the task's metrics {list(metrics)}, got {main_metric!r}")
    columns = [_column(c, header, w) for c, w in ((text_a, "text_a"), (label, "label"))]
    text_b = None if text_b in (None, "") else _column(text_b, header, "text_b")
    num_columns = None
    if not header:
        num_columns = max(c for c in columns + ([text_b] if text_b is not None else [])) + 1
    return Task(name, text_a=columns[0], text_b=text_b, label=columns[1], num_labels=num_labels,
                label_names=label_names, header=header, num_columns=num_columns, metrics=metrics,
                main_metric=main_metric, train_file=train_file, dev_files={"dev": dev_file})
