"""PNG plots of runs and experiments (matplotlib, Agg backend: no display needed).

Example:

>>> plot_runs(["runs/joint", "runs/decoupled"], "curves.png", metrics=["gen_loss", "disc_loss"])
"""

import json
import logging
import math
import os
from typing import Dict, List, Optional, Sequence

log = logging.getLogger(__name__)

DEFAULT_METRICS = ("gen_loss", "disc_loss", "gen_accuracy", "disc_f1")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(n):
    cols = min(n, 2)
    return (n + cols - 1) // cols, cols


def _save(fig, out):
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    log.info("wrote %s", out)
    return out


def read_rows(path) -> List[Dict]:
    """Rows of a ``metrics.jsonl``, skipping a last line still being written by a live run.

    Unlike :func:`electra_tf.training.run_log.read_metrics` this does not
    import TensorFlow (the plot script starts in a second) and tolerates a
    partial line, so a run can be plotted while it trains.
    """
    rows = []
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def _metrics_path(model_dir):
    return model_dir if model_dir.endswith(".jsonl") else os.path.join(model_dir, "metrics.jsonl")


def load_curves(model_dir, metrics: Sequence[str]) -> Dict[str, Dict[str, List]]:
    """``{metric: {"train": [(step, value)...], "eval": [...]}}`` from a model dir's ``metrics.jsonl``.

    Raises:
        FileNotFoundError: ``model_dir`` has no ``metrics.jsonl``.
    """
    path = _metrics_path(model_dir)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no metrics.jsonl in {model_dir} (expected a model dir of scripts/pretrain.py)")
    curves = {m: {"train": [], "eval": []} for m in metrics}
    for row in read_rows(path):
        split = row.get("split", "train")
        for m in metrics:
            value = row.get(m)
            if isinstance(value, (int, float)) and math.isfinite(value) and split in curves[m]:
                curves[m][split].append((row["step"], value))
    return curves


def plot_runs(model_dirs: Sequence[str], out, metrics: Sequence[str] = DEFAULT_METRICS, labels=None):
    """One panel per metric, one line per model dir (eval rows as markers); writes ``out``.

    Raises:
        ValueError: no model dirs, or a metric found in none of them (the
            message lists the metrics that are there).
    """
    if not model_dirs:
        raise ValueError("give at least one model dir")
    metrics = list(metrics)
    labels = list(labels or [os.path.basename(os.path.normpath(d)) for d in model_dirs])
    curves = [load_curves(d, metrics) for d in model_dirs]
    for m in metrics:
        if not any(c[m]["train"] or c[m]["eval"] for c in curves):
            present = sorted({k for d in model_dirs for r in read_rows(_metrics_path(d))
                              for k, v in r.items() if isinstance(v, (int, float)) and k != "step"})
            raise ValueError(f"metric {m!r} is in none of {list(model_dirs)}; available: {present}")
    plt = _pyplot()
    rows, cols = _grid(len(metrics))
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.6 * rows), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        for index, (label, c) in enumerate(zip(labels, curves)):
            color = f"C{index % 10}"
            if c[m]["train"]:
                ax.plot(*zip(*c[m]["train"]), color=color, label=label)
            if c[m]["eval"]:
                ax.plot(*zip(*c[m]["eval"]), "o", color=color, label=f"{label} (eval)")
        ax.set_title(m)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    result = _save(fig, out)
    plt.close(fig)
    return result


def plot_panels(panels: List[Dict], out, title: Optional[str] = None, ncols: Optional[int] = None,
                sharey=False):
    """Line plots, one panel per dict; writes ``out``.

    Args:
        panels: dicts with ``title``, ``xlabel``, ``ylabel``, ``series``
            (label -> list of ``(x, y)``; a y of None is skipped; a
            ``(x, y, marker_label)`` point is annotated), optional
            ``logx`` (bool) and ``xticks`` (bool: ticks at the x values).
        out: the PNG path.
        title: figure title.
        ncols: panels per row (default: all in one row).
        sharey: passed to ``plt.subplots`` (``"row"``: one y scale per row).
    """
    plt = _pyplot()
    cols = ncols or len(panels)
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.9 * rows), squeeze=False,
                             sharey=sharey)
    for ax, panel in zip(axes.flat, panels):
        for label, points in panel["series"].items():
            points = sorted(p for p in points if p[1] is not None and math.isfinite(p[1]))
            if not points:
                continue
            ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=label)
            for p in points:
                if len(p) > 2 and p[2]:
                    ax.annotate(p[2], (p[0], p[1]), fontsize=7, textcoords="offset points", xytext=(3, 4))
        if panel.get("logx"):
            ax.set_xscale("log")
        if panel.get("xticks"):
            xs = sorted({p[0] for s in panel["series"].values() for p in s})
            ax.set_xticks(xs)
            ax.set_xticklabels([f"{x:g}" for x in xs])
        ax.set_title(panel.get("title", ""), fontsize=10)
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(alpha=0.3)
        if len(panel["series"]) > 1:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    result = _save(fig, out)
    plt.close(fig)
    return result
