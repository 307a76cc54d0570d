"""The paper's hyperparameter roadmap (appendix C) as a resumable sweep.

1. With the generator rate fixed, grow the discriminator learning rate
   geometrically until a run diverges (the divergence guard's exit code 3) or
   its score stops improving (the fair RTD score, or with
   ``disc_metric="eval_disc_loss"`` the run's own held-out RTD loss, as the
   paper words it); keep the last rate that improved.
2. With that rate fixed, find the generator learning rate by golden-section
   search over log10(lr): the score is unimodal in it (too weak a generator
   gives easy replacements, too strong a one slows the discriminator).

Every trial is a short pretraining run scored against one fixed standalone
generator (:class:`~electra_tf.research.trials.FairRtdScorer`), recorded in
the sweep dir's ledger: a rerun of the same command replays the searches from
the ledger and only trains what is missing.

Example:

>>> outcome = run_sweep(Ledger("runs/sweep"), runner, max_trials=6)
>>> outcome.discriminator_lr, outcome.generator_lr
"""

import dataclasses
import json
import logging
import math
import os
from typing import Callable, Dict, List, Optional, Tuple

from electra_tf.research import plots
from electra_tf.research.experiments import decoupled_spec
from electra_tf.research.ledger import Ledger, write_csv
from electra_tf.research.search import SearchResult, golden_section_max, grow_until_worse
from electra_tf.research.trials import LOWER_IS_BETTER, score_of

log = logging.getLogger(__name__)

CSV_COLUMNS = ("trial", "phase", "discriminator_lr", "generator_lr", "status", "score", "metric", "rtd_f1",
               "rtd_auc", "rtd_accuracy", "eval_gen_accuracy", "eval_disc_loss", "seconds")


def round_lr(lr, digits=3):
    """A learning rate to ``digits`` significant digits: stable trial names and ``--set`` values."""
    return float(f"{lr:.{digits - 1}e}")


def trial_name(disc_lr, gen_lr):
    return f"d{disc_lr:.2e}_g{gen_lr:.2e}"


@dataclasses.dataclass
class SweepOutcome:
    """What :func:`run_sweep` found.

    Attributes:
        discriminator_lr: the largest stable rate that still improved (phase 1).
        generator_lr: the best generator rate found (phase 2), or None.
        best_score: the score of ``(discriminator_lr, generator_lr)``.
        phase1, phase2: the two searches (``x`` is the lr, resp. log10 lr).
        rows: one dict per trial evaluated, in order, with ``phase`` and ``score``.
    """

    discriminator_lr: Optional[float]
    generator_lr: Optional[float]
    best_score: float
    phase1: SearchResult
    phase2: Optional[SearchResult]
    rows: List[Dict]


def split_budget(max_trials, disc_trials=None) -> Tuple[int, int]:
    """Trials for phase 1 and phase 2: ``disc_trials`` (default half, at least 1) and the rest (at least 1).

    Raises:
        ValueError: fewer than 2 trials, or ``disc_trials`` leaving none for phase 2.
    """
    if not isinstance(max_trials, int) or max_trials < 2:
        raise ValueError(f"max_trials must be an integer >= 2 (one per phase at least), got {max_trials!r}")
    disc = max(1, max_trials // 2) if disc_trials is None else disc_trials
    if not isinstance(disc, int) or not 1 <= disc < max_trials:
        raise ValueError(f"disc_trials must be an integer in [1, {max_trials - 1}] with max_trials={max_trials}, "
                         f"got {disc_trials!r}")
    return disc, max_trials - disc


def check_sweep(max_trials, disc_trials=None, disc_lr_start=1e-3, growth=2.0, gen_lr_range=(1e-5, 1e-3)):
    """Checks a sweep's settings before anything is trained; returns the budget of each phase.

    Raises:
        ValueError: naming the bad value and what is accepted.
    """
    budget = split_budget(max_trials, disc_trials)
    if not disc_lr_start > 0:
        raise ValueError(f"disc_lr_start must be > 0, got {disc_lr_start!r}")
    if not growth > 1:
        raise ValueError(f"growth must be > 1, got {growth!r}")
    low, high = gen_lr_range
    if not 0 < low < high:
        raise ValueError(f"gen_lr_range must be (low, high) with 0 < low < high, got {gen_lr_range!r}")
    return budget


def run_sweep(ledger: Ledger, trial_fn: Callable[[str, Dict], Dict], metric="rtd_auc", max_trials=8,
              disc_trials=None, disc_lr_start=1e-3, growth=2.0, fixed_gen_lr=1e-4,
              gen_lr_range=(1e-5, 1e-3), min_gain=0.0, disc_metric=None) -> SweepOutcome:
    """Runs both phases of the roadmap; finished trials come from the ledger.

    Args:
        ledger: the sweep dir's ledger.
        trial_fn: ``trial_fn(name, spec) -> result`` (a :class:`PretrainRunner`
            with a fair RTD scorer); ``spec`` holds ``--set`` values.
        metric: the result key maximised (``rtd_auc``, ``rtd_f1``, ...); a loss
            key (``eval_disc_loss``) is minimised.
        disc_metric: phase 1's stopping score (default ``metric``), e.g.
            ``eval_disc_loss``: stop when the held-out RTD loss stops falling.
        max_trials: trials in both phases together (the standalone generator excluded).
        disc_trials: trials of phase 1 (default half of ``max_trials``).
        disc_lr_start, growth: phase 1 tries ``disc_lr_start * growth**k``.
        fixed_gen_lr: the generator rate during phase 1.
        gen_lr_range: phase 2's interval ``(low, high)``.
        min_gain: phase 1 stops unless a score beats the best by more than this.

    Returns:
        A :class:`SweepOutcome`.

    Raises:
        ValueError: bad budget or range (the message names the value).
    """
    n_disc, n_gen = check_sweep(max_trials, disc_trials, disc_lr_start, growth, gen_lr_range)
    low, high = gen_lr_range
    disc_metric = disc_metric or metric
    rows: List[Dict] = []
    results: Dict[float, Dict] = {}  # phase 1's results by discriminator lr

    def evaluate(phase, disc_lr, gen_lr, key):
        disc_lr, gen_lr = round_lr(disc_lr), round_lr(gen_lr)
        name = trial_name(disc_lr, gen_lr)
        result = ledger.run(name, decoupled_spec(gen_lr, disc_lr), trial_fn)
        score = score_of(result, key)
        rows.append({"trial": name, "phase": phase, "discriminator_lr": disc_lr, "generator_lr": gen_lr,
                     "score": score, "metric": key, **result})
        if phase == "discriminator_lr":
            results[disc_lr] = result
        return score

    log.info("phase 1: discriminator lr from %.3g, x%.3g, generator lr %.3g, %d trials", disc_lr_start, growth,
             fixed_gen_lr, n_disc)
    phase1 = grow_until_worse(lambda lr: evaluate("discriminator_lr", lr, fixed_gen_lr, disc_metric),
                              disc_lr_start, growth, n_disc, min_gain=min_gain)
    log.info("phase 1: %s; discriminator lr %s (score %.4g)", phase1.reason, phase1.best_x, phase1.best_y)
    if phase1.best_x is None:
        return SweepOutcome(None, None, -math.inf, phase1, None, rows)
    disc_lr = round_lr(phase1.best_x)
    log.info("phase 2: generator lr in [%.3g, %.3g] (golden section over log10), %d trials", low, high, n_gen)
    phase2 = golden_section_max(lambda x: evaluate("generator_lr", disc_lr, 10.0 ** x, metric), math.log10(low),
                                math.log10(high), n_gen)
    # Phase 1's chosen trial, scored by phase 2's metric, competes with phase 2's best.
    gen_lr, best = fixed_gen_lr, score_of(results[disc_lr], metric)
    if phase2.best_x is not None and phase2.best_y > best:
        gen_lr, best = 10.0 ** phase2.best_x, phase2.best_y
    return SweepOutcome(disc_lr, round_lr(gen_lr), best, phase1, phase2, rows)


def _series(rows, phase, x_key):
    ok = [(r[x_key], r["score"]) for r in rows if r["phase"] == phase and math.isfinite(r["score"])]
    bad = [r[x_key] for r in rows if r["phase"] == phase and not math.isfinite(r["score"])]
    floor = min([y for _, y in ok] or [0.0])
    return {"stable": ok, "diverged": [(x, floor, "diverged") for x in bad]}


def write_report(outcome: SweepOutcome, out_dir, metric) -> Dict[str, str]:
    """Writes ``sweep.csv``, ``best.json``, ``sweep_disc_lr.png`` and ``sweep_gen_lr.png``; returns their paths."""
    paths = {"csv": write_csv(outcome.rows, os.path.join(out_dir, "sweep.csv"), CSV_COLUMNS),
             "best": os.path.join(out_dir, "best.json")}
    with open(paths["best"], "w", encoding="utf-8") as f:
        json.dump({"discriminator_lr": outcome.discriminator_lr, "generator_lr": outcome.generator_lr,
                   "metric": metric, "score": outcome.best_score if math.isfinite(outcome.best_score) else None,
                   "phase1_stop": outcome.phase1.reason, "trials": len(outcome.rows)}, f, indent=1)
    def label(key):
        if key.startswith("rtd_"):
            return f"fair RTD {key[4:].upper()}"
        return f"-{key} (higher is better)" if key in LOWER_IS_BETTER else key

    disc_metric = next((r["metric"] for r in outcome.rows if r["phase"] == "discriminator_lr"), metric)
    paths["disc_png"] = plots.plot_panels([{
        "title": "phase 1: largest stable discriminator lr", "xlabel": "discriminator learning rate",
        "ylabel": label(disc_metric), "logx": True,
        "series": _series(outcome.rows, "discriminator_lr", "discriminator_lr")}],
        os.path.join(out_dir, "sweep_disc_lr.png"))
    gen_title = (f"phase 2: generator lr (discriminator lr {outcome.discriminator_lr:.3g})"
                 if outcome.discriminator_lr else "phase 2: not run (no stable discriminator lr)")
    paths["gen_png"] = plots.plot_panels([{
        "title": gen_title, "xlabel": "generator learning rate", "ylabel": label(metric), "logx": True,
        "series": _series(outcome.rows, "generator_lr", "generator_lr")}], os.path.join(out_dir, "sweep_gen_lr.png"))
    return paths
