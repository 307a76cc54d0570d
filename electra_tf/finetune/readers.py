"""Reading a task's examples from GLUE-style TSV files or from TFDS.

Both readers return ``{split: [Example, ...]}`` with the splits ``train`` and
the task's evaluation splits (``dev``; MNLI adds ``dev_mismatched``). TSV lines
are split on tabs only (no quoting: GLUE's MRPC and CoLA contain bare quotes).

Example:

>>> data = read_tsv_dir(get_task("sst2"), "glue_data/SST-2")    # doctest: +SKIP
>>> data["train"][0]                                             # doctest: +SKIP
Example(text_a='hide new secretions from the parental units ', text_b=None, label=0)
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Dict, List, Optional, Union

from electra_tf.finetune.glue import Task

__all__ = ["Example", "read_tsv", "read_tsv_dir", "read_tfds", "load_examples"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Example:
    """One example: its text(s) and its label (a class id, or a float for regression)."""

    text_a: str
    text_b: Optional[str]
    label: Union[int, float]


def _parse_label(task: Task, value: str, where: str) -> Union[int, float]:
    value = value.strip()
    if task.is_regression:
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{where}: label {value!r} is not a number (task {task.name} is a regression)") \
                from None
    if task.label_names is not None:
        try:
            return task.label_names.index(value)
        except ValueError:
            raise ValueError(f"{where}: unknown label {value!r}; task {task.name} accepts "
                             f"{', '.join(task.label_names)}") from None
    try:
        label = int(value)
    except ValueError:
        label = -1
    if not 0 <= label < task.num_labels:
        raise ValueError(f"{where}: label {value!r} is not a class id in 0..{task.num_labels - 1} "
                         f"(give label names for labels written as words)")
    return label


def _column_index(task: Task, column, header_fields, path: str) -> int:
    if isinstance(column, int):
        return column
    if column not in header_fields:
        raise ValueError(f"{path}: no column {column!r} in the header (columns: {', '.join(header_fields)})")
    return header_fields.index(column)


def read_tsv(task: Task, path: str) -> List[Example]:
    """Reads one TSV file of ``task``.

    Every line must have as many tab-separated fields as the header (or as
    the first line, for files without a header), and enough for the task's
    columns.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a line with a wrong column count (naming file and line,
            unless ``task.skip_malformed``), a missing header column or a bad label.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist (task {task.name} needs it)")
    with open(path, "r", encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    first = 0
    header_fields = None
    if task.header:
        if not lines or not lines[0]:
            raise ValueError(f"{path}: empty file; expected a header line and examples")
        header_fields = lines[0].lstrip("\ufeff").split("\t")
        first = 1
    columns = [_column_index(task, c, header_fields, path) for c in task.text_columns + (task.label,)]
    expected = len(header_fields) if header_fields else None
    examples, skipped = [], []
    for number, line in enumerate(lines[first:], start=first + 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if expected is None:
            expected = len(fields)
            if task.num_columns and expected < task.num_columns:
                raise ValueError(f"{path}:{number}: {expected} columns, expected {task.num_columns} "
                                 f"for task {task.name}")
        if len(fields) != expected or len(fields) <= max(columns):
            if task.skip_malformed:
                skipped.append(number)
                continue
            source = "the header" if header_fields else "line 1"
            raise ValueError(f"{path}:{number}: {len(fields)} columns, expected {expected} (as in {source})")
        where = f"{path}:{number}"
        texts = [fields[c] for c in columns[:-1]]
        examples.append(Example(texts[0], texts[1] if len(texts) > 1 else None,
                                _parse_label(task, fields[columns[-1]], where)))
    if skipped:
        log.warning("%s: skipped %d malformed lines (first: line %d)", path, len(skipped), skipped[0])
    if not examples:
        raise ValueError(f"{path}: no examples")
    return examples


def read_tsv_dir(task: Task, data_dir: str) -> Dict[str, List[Example]]:
    """Reads ``train`` and every evaluation split of ``task`` from ``data_dir``."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"--data_dir {data_dir} is not a directory (expected one holding "
                                f"{task.train_file} and {', '.join(task.dev_files.values())})")
    files = {"train": task.train_file, **task.dev_files}
    out = {}
    for split, name in files.items():
        out[split] = read_tsv(task, os.path.join(data_dir, name))
        log.info("%s %s: %d examples from %s", task.name, split, len(out[split]), os.path.join(data_dir, name))
    return out


def read_tfds(task: Task, data_dir: Optional[str] = None) -> Dict[str, List[Example]]:
    """Reads ``train`` and the evaluation splits of ``task`` from its TFDS dataset.

    Args:
        task: a task with ``tfds_name`` (the GLUE tasks).
        data_dir: the TFDS data dir (default: TFDS's own, ``~/tensorflow_datasets``).
    """
    if not task.tfds_name:
        raise ValueError(f"task {task.name} has no TFDS dataset; give --data_dir with its TSV files")
    import tensorflow_datasets as tfds

    out = {}
    for split in ("train",) + task.eval_splits:
        try:
            ds = tfds.load(task.tfds_name, split=task.tfds_splits[split], data_dir=data_dir)
        except Exception as exc:  # noqa: BLE001 - TFDS fails in many ways (no network, missing files)
            reason = (str(exc).splitlines() or [""])[0][:300]
            raise FileNotFoundError(
                f"cannot load TFDS {task.tfds_name}[{task.tfds_splits[split]}] ({type(exc).__name__}: {reason}); "
                f"prepare it in --tfds_data_dir, or give --data_dir with the task's TSV files") from exc
        examples = []
        for row in tfds.as_numpy(ds):
            texts = [row[key].decode("utf-8") for key in task.tfds_text]
            label = float(row["label"]) if task.is_regression else int(row["label"])
            if not task.is_regression and label < 0:
                continue  # TFDS marks unlabelled (test) rows with -1
            examples.append(Example(texts[0], texts[1] if len(texts) > 1 else None, label))
        out[split] = examples
        log.info("%s %s: %d examples from TFDS %s[%s]", task.name, split, len(examples), task.tfds_name,
                 task.tfds_splits[split])
    return out


def load_examples(task: Task, data_dir: Optional[str] = None, tfds_data_dir: Optional[str] = None):
    """TSV files from ``data_dir`` when given, else the task's TFDS dataset."""
    if data_dir:
        return read_tsv_dir(task, data_dir)
    return read_tfds(task, tfds_data_dir)
