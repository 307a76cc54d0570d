"""Every fine-tuning metric equals scikit-learn's or SciPy's value on fixed arrays."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from electra_tf.finetune import metrics as M
from electra_tf.finetune.glue import get_task

RNG = np.random.default_rng(7)
LABELS = RNG.integers(0, 2, 200)
PREDS = np.where(RNG.random(200) < 0.7, LABELS, 1 - LABELS)
LABELS3 = RNG.integers(0, 3, 300)
PREDS3 = np.where(RNG.random(300) < 0.6, LABELS3, RNG.integers(0, 3, 300))
X = np.round(RNG.normal(size=150), 1)  # rounded: many ties, which Spearman must average
Y = np.round(X + RNG.normal(scale=0.8, size=150), 1)


def test_accuracy_f1_mcc_match_sklearn():
    assert M.accuracy(LABELS, PREDS) == pytest.approx(skm.accuracy_score(LABELS, PREDS), abs=1e-12)
    assert M.f1_score(LABELS, PREDS) == pytest.approx(skm.f1_score(LABELS, PREDS), abs=1e-12)
    assert M.matthews_corrcoef(LABELS, PREDS) == pytest.approx(skm.matthews_corrcoef(LABELS, PREDS), abs=1e-12)
    assert M.matthews_corrcoef(LABELS3, PREDS3) == pytest.approx(skm.matthews_corrcoef(LABELS3, PREDS3),
                                                                 abs=1e-12)
    assert M.accuracy(LABELS3, PREDS3) == pytest.approx(skm.accuracy_score(LABELS3, PREDS3), abs=1e-12)


def test_degenerate_cases_match_sklearn():
    ones, zeros = np.ones(10, int), np.zeros(10, int)
    assert M.matthews_corrcoef(LABELS[:10], ones) == skm.matthews_corrcoef(LABELS[:10], ones) == 0.0
    assert M.f1_score(zeros, zeros) == skm.f1_score(zeros, zeros, zero_division=0.0) == 0.0
    assert M.matthews_corrcoef([1, 0, 1, 1], [1, 0, 0, 1]) == pytest.approx(
        skm.matthews_corrcoef([1, 0, 1, 1], [1, 0, 0, 1]))


def test_pearson_spearman_and_ranks_match_scipy():
    assert M.pearson(X, Y) == pytest.approx(stats.pearsonr(X, Y)[0], abs=1e-12)
    assert M.spearman(X, Y) == pytest.approx(stats.spearmanr(X, Y)[0], abs=1e-12)
    np.testing.assert_array_equal(M.rankdata(X), stats.rankdata(X))
    assert M.pearson(X, np.ones_like(X)) == 0.0  # undefined: reported as 0, not NaN


@pytest.mark.parametrize("name,keys", [("cola", {"accuracy", "mcc"}), ("mrpc", {"accuracy", "f1"}),
                                       ("qqp", {"accuracy", "f1"}), ("sst2", {"accuracy"}),
                                       ("stsb", {"pearson", "spearman"}), ("rte", {"accuracy"})])
def test_task_metrics_from_logits(name, keys):
    task = get_task(name)
    if task.is_regression:
        out = M.task_metrics(task, Y[:, None], X)
        assert out == pytest.approx({"pearson": stats.pearsonr(Y, X)[0], "spearman": stats.spearmanr(Y, X)[0]})
    else:
        logits = np.eye(2)[PREDS] * 3.0 - 1.0
        out = M.task_metrics(task, logits, LABELS)
        assert out["accuracy"] == pytest.approx(skm.accuracy_score(LABELS, PREDS))
    assert set(out) == keys


def test_mnli_keys_name_matched_and_mismatched():
    task = get_task("mnli")
    assert [task.metric_key("accuracy", s) for s in task.eval_splits] == ["accuracy", "accuracy_mismatched"]
