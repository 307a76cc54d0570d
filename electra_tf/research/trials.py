"""One trial = one short pretraining run of ``scripts/pretrain.py`` in a subprocess, summarised.

A subprocess keeps every trial's TensorFlow state apart, lets a kill of the
sweep stop the trial cleanly (SIGTERM: the trainer saves a checkpoint and
exits 75), and makes an interrupted trial resume: the same command on the same
model dir continues from its last checkpoint.

Example:

>>> runner = PretrainRunner("runs/sweep", steps=200, batch_size=16)
>>> result = runner("dlr_1e-03", {"train.discriminator_lr": 1e-3})
>>> result["status"], result["gen_accuracy"]
"""

import logging
import math
import os
import signal
import subprocess
import sys
import time
from typing import Dict, Optional, Sequence

from electra_tf.exit_codes import DIVERGED as EXIT_DIVERGED
from electra_tf.exit_codes import OK as EXIT_OK
from electra_tf.exit_codes import PREEMPTED as EXIT_PREEMPTED
from electra_tf.training.run_log import read_metrics

log = logging.getLogger(__name__)

DEFAULT_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "scripts", "pretrain.py")
# Keys of the last training row and of the final held-out eval row kept in a trial's result.
TRAIN_KEYS = ("gen_loss", "gen_accuracy", "disc_loss", "disc_f1", "replaced_fraction")
EVAL_KEYS = ("gen_loss", "gen_accuracy", "disc_loss", "disc_f1", "disc_auc")


class TrialInterrupted(RuntimeError):
    """A trial stopped before its end (preempted, or the sweep was interrupted); rerun to continue it."""


class TrialFailed(RuntimeError):
    """A trial exited with an error that is not divergence (bad config, crash)."""


def format_value(value):
    """A config value as ``--set`` parses it back (YAML scalars)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # YAML 1.1 reads "1e-05" as a string: the mantissa needs a dot
        mantissa, _, exponent = f"{value:.6g}".partition("e")
        mantissa = mantissa if "." in mantissa else mantissa + ".0"
        return mantissa + ("e" + exponent if exponent else "")
    return str(value)


def summarize_metrics(path) -> Dict:
    """The last training row's and the last eval row's metrics of a ``metrics.jsonl`` (eval keys get ``eval_``)."""
    out: Dict = {}
    if not os.path.exists(path):
        return out
    rows = read_metrics(path)
    train = [r for r in rows if r.get("split", "train") == "train"]
    evals = [r for r in rows if r.get("split") == "eval"]
    if train:
        out["steps_done"] = int(train[-1]["step"])
        out.update({k: train[-1][k] for k in TRAIN_KEYS if k in train[-1]})
    if evals:
        out.update({f"eval_{k}": evals[-1][k] for k in EVAL_KEYS if k in evals[-1]})
    return out


def interrupt_on_sigterm():
    """Makes SIGTERM raise KeyboardInterrupt, so a killed sweep stops its running trial cleanly.

    The trial runs in its own session (a terminal's Ctrl-C reaches only the
    sweep); on KeyboardInterrupt the runner forwards SIGTERM to it, the trainer
    checkpoints and exits 75, and the next run of the sweep resumes it.
    """
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def _tail(path, lines=15):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class PretrainRunner:
    """Runs trials as ``scripts/pretrain.py`` subprocesses in ``out_dir/trials/NAME``.

    Args:
        out_dir: the experiment dir (trials go to ``trials/``, logs to ``logs/``).
        config: preset name or YAML path given to ``--config``.
        steps: ``train.max_steps`` of every trial (a trial's spec may override it).
        batch_size: ``train.batch_size``.
        base_overrides: more ``--set`` values common to every trial.
        export: export SavedModels (not needed: evaluation reads model dirs).
        python: the interpreter; the current one by default.
        script: path of ``scripts/pretrain.py``.
        scorer: optional ``scorer(model_dir) -> dict`` merged into a finished
            (non-diverged) trial's result, e.g. a :class:`FairRtdScorer`.
    """

    def __init__(self, out_dir, config="tiny", steps=200, batch_size=16, base_overrides=None, export=False,
                 python=None, script=DEFAULT_SCRIPT, scorer=None):
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.out_dir, self.config, self.steps, self.batch_size = out_dir, config, steps, batch_size
        self.base_overrides = dict(base_overrides or {})
        self.export, self.python, self.script, self.scorer = export, python or sys.executable, script, scorer

    @property
    def context(self) -> Dict:
        """What every trial of this runner shares (recorded in the ledger)."""
        return {"config": self.config, "steps": self.steps, "batch_size": self.batch_size,
                "base_overrides": self.base_overrides}

    def model_dir(self, name):
        return os.path.join(self.out_dir, "trials", name)

    def overrides(self, spec) -> Dict:
        """Every ``--set`` value of a trial: sizes and logging first, then ``base_overrides``, then ``spec``."""
        steps = int(spec.get("train.max_steps", self.steps))
        merged = {"train.max_steps": steps, "train.batch_size": self.batch_size,
                  "train.warmup_steps": max(1, steps // 10), "train.log_every": max(1, steps // 20),
                  "train.checkpoint_every": max(10, steps // 4), "train.eval_every": steps,
                  "train.eval_steps": 10}
        merged.update(self.base_overrides)
        merged.update(spec)
        return merged

    def command(self, name, spec) -> Sequence[str]:
        cmd = [self.python, self.script, "--config", self.config, "--model_dir", self.model_dir(name),
               "--no_progress"]
        if not self.export:
            cmd.append("--no_export")
        cmd += ["--set"] + [f"{k}={format_value(v)}" for k, v in self.overrides(spec).items()]
        return cmd

    def __call__(self, name, spec) -> Dict:
        """Runs (or resumes) one trial; returns its result dict.

        Returns:
            ``status`` (``ok`` | ``diverged``), ``exit_code``, ``seconds``,
            ``model_dir`` and the metrics of :func:`summarize_metrics`, plus
            the scorer's keys for an ``ok`` trial.

        Raises:
            TrialInterrupted: the trial was preempted or the sweep interrupted.
            TrialFailed: any other non-zero exit; the message holds the log's tail.
        """
        model_dir = self.model_dir(name)
        os.makedirs(os.path.join(self.out_dir, "logs"), exist_ok=True)
        log_path = os.path.join(self.out_dir, "logs", f"{name}.log")
        cmd = self.command(name, spec)
        start = time.time()
        with open(log_path, "a", encoding="utf-8") as log_file:
            log_file.write("$ " + " ".join(cmd) + "\n")
            log_file.flush()
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code = proc.wait()
            except BaseException:  # KeyboardInterrupt or SIGTERM of the sweep: let the trial checkpoint and stop
                log.warning("stopping trial %s (pid %d): it saves a checkpoint and resumes next time", name, proc.pid)
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                raise
        seconds = time.time() - start
        if code == EXIT_PREEMPTED or code < 0:
            raise TrialInterrupted(f"trial {name} stopped before its end (exit code {code}); run the same command "
                                   f"again to resume it from {model_dir}/checkpoints")
        if code not in (EXIT_OK, EXIT_DIVERGED):
            raise TrialFailed(f"trial {name} failed with exit code {code}; see {log_path}:\n{_tail(log_path)}")
        result = {"status": "ok" if code == EXIT_OK else "diverged", "exit_code": code,
                  "seconds": round(seconds, 1), "model_dir": model_dir, **summarize_metrics(
                      os.path.join(model_dir, "metrics.jsonl"))}
        if code == EXIT_OK and self.scorer is not None:
            result.update(self.scorer(model_dir))
        log.info("trial %s: %s in %.0f s", name, result["status"], seconds)
        return result


class FairRtdScorer:
    """Fair RTD scores of a model dir's discriminator against one fixed generator (paper appendix D).

    Args:
        generator_path: model dir or export of the standalone generator.
        max_batches: held-out batches of 32 sequences to score (None: the whole split).
        prefix: prefix of the result keys (``rtd_f1``, ``rtd_auc``, ...).
    """

    def __init__(self, generator_path, max_batches: Optional[int] = None, prefix="rtd_"):
        self.generator_path, self.max_batches, self.prefix = generator_path, max_batches, prefix

    def __call__(self, model_dir) -> Dict:
        from electra_tf.evaluation.rtd import evaluate_rtd

        result = evaluate_rtd(self.generator_path, [model_dir], max_batches=self.max_batches)[0]
        return {self.prefix + k: float(v) for k, v in result.items() if k != "discriminator"}


# Result keys that are losses: a search maximises their negation.
LOWER_IS_BETTER = ("eval_disc_loss", "eval_gen_loss")


def score_of(result, metric) -> float:
    """A trial's score for a search (higher is better): ``result[metric]``, negated for a loss
    (:data:`LOWER_IS_BETTER`); -inf for a diverged or non-finite one."""
    if result.get("status") != "ok":
        return -math.inf
    value = result.get(metric)
    if value is None:
        raise KeyError(f"trial result has no {metric!r}; it has {sorted(result)}")
    value = -float(value) if metric in LOWER_IS_BETTER else float(value)
    return value if math.isfinite(value) else -math.inf
