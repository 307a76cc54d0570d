"""GLUE metrics in NumPy: accuracy, F1, Matthews correlation, Pearson and Spearman correlation.

They match scikit-learn's ``accuracy_score``, ``f1_score`` (binary, positive
class 1), ``matthews_corrcoef`` and SciPy's ``pearsonr`` and ``spearmanr``
(average ranks for ties), which the tests check; neither library is needed at
run time. Where a metric is undefined (no positive labels or predictions for
F1, a constant input for a correlation) it is 0.0, as scikit-learn returns
for F1 and MCC, so ``results.json`` stays valid JSON.

Example:

>>> matthews_corrcoef([1, 0, 1, 1], [1, 0, 0, 1])
0.5773502691896258
>>> task_metrics(get_task("stsb"), np.array([[0.1], [0.7], [0.4]]), np.array([0.0, 1.0, 0.5]))
{'pearson': 1.0, 'spearman': 1.0}
"""

from __future__ import annotations

from typing import Dict

import numpy as np

__all__ = ["accuracy", "f1_score", "matthews_corrcoef", "pearson", "spearman", "rankdata", "predictions",
           "task_metrics"]


def accuracy(labels, preds) -> float:
    labels, preds = np.asarray(labels), np.asarray(preds)
    return float(np.mean(labels == preds)) if labels.size else 0.0


def f1_score(labels, preds, positive=1) -> float:
    """F1 of the class ``positive``."""
    labels, preds = np.asarray(labels) == positive, np.asarray(preds) == positive
    tp = float(np.sum(labels & preds))
    denominator = float(np.sum(labels) + np.sum(preds))
    return 2.0 * tp / denominator if denominator else 0.0


def matthews_corrcoef(labels, preds) -> float:
    """Matthews correlation (the multi-class R_K statistic; the usual MCC for two classes)."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    classes, encoded = np.unique(np.concatenate([labels, preds]), return_inverse=True)
    k, n = len(classes), len(labels)
    confusion = np.zeros((k, k), np.float64)
    np.add.at(confusion, (encoded[:n], encoded[n:]), 1.0)
    t_sum, p_sum = confusion.sum(axis=1), confusion.sum(axis=0)
    samples = confusion.sum()
    cov_tp = np.trace(confusion) * samples - np.dot(t_sum, p_sum)
    cov_pp = samples ** 2 - np.dot(p_sum, p_sum)
    cov_tt = samples ** 2 - np.dot(t_sum, t_sum)
    if cov_pp * cov_tt == 0:
        return 0.0
    return float(cov_tp / np.sqrt(cov_tt * cov_pp))


def pearson(x, y) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.dot(dx, dx) * np.dot(dy, dy))
    return float(np.dot(dx, dy) / denominator) if denominator > 0 else 0.0


def rankdata(x) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (``scipy.stats.rankdata(method="average")``)."""
    x = np.asarray(x)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]])
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.concatenate([first[1:], [len(x)]]) - 1
    ranks = np.empty(len(x), np.float64)
    ranks[order] = (first[group] + last[group]) / 2.0 + 1.0
    return ranks


def spearman(x, y) -> float:
    return pearson(rankdata(x), rankdata(y))


def predictions(task, outputs) -> np.ndarray:
    """Class ids (argmax of the logits) or, for regression, the predicted values."""
    outputs = np.asarray(outputs)
    return outputs.reshape(-1) if task.is_regression else np.argmax(outputs, axis=-1)


_FUNCTIONS = {"accuracy": accuracy, "f1": f1_score, "mcc": matthews_corrcoef, "pearson": pearson,
              "spearman": spearman}


def task_metrics(task, outputs, labels) -> Dict[str, float]:
    """``{metric: value}`` for every metric of ``task``, from model outputs ([N, num_labels]) and labels."""
    preds = predictions(task, outputs)
    return {name: _FUNCTIONS[name](labels, preds) for name in task.metrics}
