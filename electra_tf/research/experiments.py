"""The paper's findings as small named experiments: ``fig3``, ``gen-size`` and ``sharing``.

Each experiment is a grid of trials (short pretraining runs, see
:mod:`electra_tf.research.trials`), recorded in a ledger so a rerun only runs
what is missing, then summarised as ``results.csv`` and a PNG in the
experiment dir.

- ``fig3`` (paper Fig. 3): the generator's held-out MLM accuracy vs the loss
  weight λ in ``joint`` mode (shared embeddings, one learning rate), and vs the
  generator learning rate in ``decoupled`` mode (discriminator rate fixed).
- ``gen-size`` (paper Fig. 1/6/9 in spirit): fair RTD F1 of the discriminator,
  against one fixed standalone generator, vs generator depth and width, joint
  vs decoupled.
- ``sharing``: decoupled with ``none`` vs ``gdes`` embedding sharing.
- ``masking``: decoupled with ``token``, ``whole_word`` and ``span`` masking
  (``data.masking``), each scored by fair RTD against the one fixed generator
  (trained with token masking; the evaluation masks by token for all, so the
  discriminators are compared on the same corruption) and by fine-tuning on
  the synthetic SST-2 task (with label noise, so it does not saturate).

Example:

>>> rows = reproduce("fig3", "runs/fig3", steps=300)
"""

import dataclasses
import json
import logging
import os
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Sequence

from electra_tf.research import plots
from electra_tf.research.ledger import Ledger, write_csv
from electra_tf.research.trials import FairRtdScorer, PretrainRunner

log = logging.getLogger(__name__)

LAMBDAS = (1.0, 10.0, 50.0, 200.0)
GEN_LRS = (3e-5, 1e-4, 3e-4, 1e-3)
JOINT_LR = 5e-4  # the paper's Fig. 3 joint learning rate
FIG3_DISC_LR = 1e-3  # the paper's Fig. 3 fixed discriminator rate
DEPTHS = (1, 2, 4)
WIDTHS = (16, 32, 64)
EXPERIMENTS = ("fig3", "gen-size", "sharing", "masking")
MASKINGS = ("token", "whole_word", "span")


@dataclasses.dataclass
class Trial:
    """A named pretraining run: ``spec`` holds its ``--set`` values, ``meta`` what the plot needs."""

    name: str
    spec: Dict
    meta: Dict = dataclasses.field(default_factory=dict)


def joint_spec(disc_weight, learning_rate=JOINT_LR):
    """The original ELECTRA: one optimizer, loss ``L_G + λ L_D``, shared embeddings."""
    return {"train.mode": "joint", "embedding_sharing": "shared", "train.disc_weight": float(disc_weight),
            "train.learning_rate": float(learning_rate)}


def decoupled_spec(generator_lr, discriminator_lr, sharing="none"):
    """DecoupledOptim: two AdamW, one per model, with their own rates."""
    return {"train.mode": "decoupled", "embedding_sharing": sharing, "train.generator_lr": float(generator_lr),
            "train.discriminator_lr": float(discriminator_lr)}


def _check_positive(name, values):
    values = tuple(values)
    if not values or any(not v > 0 for v in values):
        raise ValueError(f"{name} must be a non-empty list of positive numbers, got {list(values)}")
    return values


def fig3_trials(lambdas: Sequence[float] = LAMBDAS, gen_lrs: Sequence[float] = GEN_LRS, joint_lr=JOINT_LR,
                disc_lr=FIG3_DISC_LR) -> List[Trial]:
    """λ trials in joint mode, then generator-lr trials in decoupled mode (discriminator rate ``disc_lr``)."""
    lambdas, gen_lrs = _check_positive("lambdas", lambdas), _check_positive("gen_lrs", gen_lrs)
    trials = [Trial(f"joint_lambda{lam:g}", joint_spec(lam, joint_lr),
                    {"panel": "joint", "x": float(lam), "lr": float(joint_lr)}) for lam in lambdas]
    trials += [Trial(f"decoupled_glr{lr:.0e}", decoupled_spec(lr, disc_lr),
                     {"panel": "decoupled", "x": float(lr), "disc_lr": float(disc_lr)}) for lr in gen_lrs]
    return trials


def generator_shape(depth, width):
    return {"generator.num_layers": int(depth), "generator.hidden_size": int(width),
            "generator.intermediate_size": 4 * int(width)}


def gen_size_trials(depths: Sequence[int] = DEPTHS, widths: Sequence[int] = WIDTHS, base_depth=2, base_width=32,
                    joint_lr=JOINT_LR, disc_weight=50.0, gen_lr=1e-4, disc_lr=4e-3) -> List[Trial]:
    """Generator depth at ``base_width`` and width at ``base_depth``, each in joint and in decoupled mode."""
    depths, widths = _check_positive("depths", depths), _check_positive("widths", widths)
    shapes = [(int(d), int(base_width)) for d in depths]
    shapes += [(int(base_depth), int(w)) for w in widths if (int(base_depth), int(w)) not in shapes]
    trials = []
    for mode in ("joint", "decoupled"):
        for depth, width in shapes:
            spec = joint_spec(disc_weight, joint_lr) if mode == "joint" else decoupled_spec(gen_lr, disc_lr)
            trials.append(Trial(f"{mode}_G{depth}x{width}", {**spec, **generator_shape(depth, width)},
                                {"mode": mode, "depth": depth, "width": width,
                                 "vary_depth": width == base_width, "vary_width": depth == base_depth}))
    return trials


def sharing_trials(gen_lr=1e-4, disc_lr=4e-3) -> List[Trial]:
    """Decoupled mode with no sharing and with gradient-disentangled sharing (``gdes``)."""
    return [Trial(f"decoupled_{s}", decoupled_spec(gen_lr, disc_lr, s), {"sharing": s}) for s in ("none", "gdes")]


def masking_trials(gen_lr=1e-4, disc_lr=4e-3) -> List[Trial]:
    """Decoupled mode with each masking strategy (``data.masking``)."""
    return [Trial(f"masking_{m}", {**decoupled_spec(gen_lr, disc_lr), "data.masking": m}, {"masking": m, "x": i})
            for i, m in enumerate(MASKINGS)]


def plot_masking(rows, out, steps):
    """Fair RTD F1 and AUC, synthetic-task accuracy and the generator's own MLM accuracy per strategy."""
    panels = [{"title": label, "xlabel": "masking (0 token, 1 whole_word, 2 span)", "xticks": True, "ylabel": label,
               "series": {"decoupled": [(r["x"], r.get(key), r["masking"]) for r in rows]}}
              for key, label in (("rtd_f1", "fair RTD F1"), ("rtd_auc", "fair RTD AUC"),
                                 ("synthetic_accuracy", "synthetic SST-2 dev accuracy"),
                                 ("eval_gen_accuracy", "generator MLM accuracy (own masking)"))]
    return plots.plot_panels(panels, out, title=f"masking strategies ({steps} steps per run)", ncols=2)


class SyntheticFinetuneScorer:
    """Dev accuracy of a model dir fine-tuned on synthetic SST-2 (``scripts/finetune.py``, one setting, one seed).

    Args:
        out_dir: the experiment dir (the task's files go to ``synthetic-sst2/``, runs to ``finetune/``).
        label_noise: fraction of random labels, so that the task does not saturate.
        lr, epochs, max_seq_length: the one fine-tuning setting.
    """

    SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "scripts", "finetune.py")

    def __init__(self, out_dir, label_noise=0.2, lr=1e-3, epochs=2.0, max_seq_length=64):
        self.out_dir, self.lr, self.epochs, self.max_seq_length = out_dir, lr, epochs, max_seq_length
        self.label_noise = label_noise

    def __call__(self, model_dir) -> Dict:
        from electra_tf.finetune import get_task, write_synthetic_task

        data = os.path.join(self.out_dir, "synthetic-sst2")
        if not os.path.exists(os.path.join(data, "dev.tsv")):
            write_synthetic_task(get_task("sst2"), data, num_train=800, num_dev=400, seed=0,
                                 label_noise=self.label_noise)
        out = os.path.join(self.out_dir, "finetune", os.path.basename(model_dir.rstrip("/")))
        with open(os.path.join(model_dir, "run_data.json"), encoding="utf-8") as f:
            vocab = os.path.join(json.load(f)["data_dir"], "vocab.model")  # the data the trial trained on
        cmd = [sys.executable, self.SCRIPT, "--task", "sst2", "--pretrained", model_dir, "--data_dir", data,
               "--vocab", vocab,
               "--output_dir", out, "--lr", str(self.lr), "--epochs", str(self.epochs), "--seeds", "0",
               "--max_seq_length", str(self.max_seq_length)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"fine-tuning {model_dir} failed ({proc.returncode}): {proc.stderr[-1500:]}")
        with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
            return {"synthetic_accuracy": float(json.load(f)["accuracy"])}


def _both(first: Callable, second: Callable) -> Callable:
    return lambda model_dir: {**first(model_dir), **second(model_dir)}


def standalone_trial(steps, width=64, depth=2, gen_lr=5e-4, disc_lr=4e-3) -> Trial:
    """The fixed generator of the fair RTD evaluation: as deep and wide as the tiny D, trained longer."""
    return Trial("standalone", {**decoupled_spec(gen_lr, disc_lr), **generator_shape(depth, width),
                                "train.max_steps": int(steps)})


def fixed_generator(ledger: Ledger, trial_fn: Callable, model_dir_of: Callable[[str], str], path=None,
                    steps=400) -> str:
    """The fair RTD evaluation's fixed generator: ``path`` if given, else the ``standalone`` trial (run once).

    Raises:
        ValueError: ``path`` does not exist.
    """
    if path is not None:
        if not os.path.exists(path):
            raise ValueError(f"standalone generator {path} does not exist (give a model dir or an export dir)")
        return path
    trial = standalone_trial(steps)
    ledger.run(trial.name, trial.spec, trial_fn)
    return model_dir_of(trial.name)


def run_grid(trials: Sequence[Trial], ledger: Ledger, trial_fn: Callable[[str, Dict], Dict]) -> List[Dict]:
    """Runs (or takes from the ledger) every trial; returns one row per trial: name, meta and result."""
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise ValueError(f"trial names must be unique, got {names}")
    return [{"trial": t.name, **t.meta, **ledger.run(t.name, t.spec, trial_fn)} for t in trials]


def _points(rows, y, x="x", **where):
    return [(r[x], r.get(y)) for r in rows if all(r.get(k) == v for k, v in where.items())]


def plot_fig3(rows, out, steps):
    """Top: the paper's panels (generator MLM accuracy); bottom: the same runs' generator MLM loss."""
    joint = [r for r in rows if r.get("panel") == "joint"]
    disc_lrs = sorted({r.get("disc_lr") for r in rows if r.get("panel") == "decoupled"} - {None})
    lr_note = f"discriminator lr {disc_lrs[0]:g}" if len(disc_lrs) == 1 else "discriminator lr fixed"
    panels = []
    for key, label in (("eval_gen_accuracy", "generator MLM accuracy (held-out)"),
                       ("eval_gen_loss", "generator MLM loss (held-out)")):
        panels.append({"title": f"joint (lr {joint[0]['lr'] if joint else JOINT_LR:g}, shared embeddings)",
                       "xlabel": "loss weight λ", "logx": True, "xticks": True, "ylabel": label,
                       "series": {"joint": _points(rows, key, panel="joint")}})
        panels.append({"title": f"decoupled ({lr_note})", "xlabel": "generator learning rate", "logx": True,
                       "xticks": True, "ylabel": label, "series": {"decoupled": _points(rows, key, panel="decoupled")}})
    return plots.plot_panels(panels, out, title=f"paper Fig. 3 at tiny scale ({steps} steps per run)", ncols=2,
                              sharey="row")


def plot_gen_size(rows, out, steps, metrics=("rtd_f1", "rtd_auc")):
    """One row per fair RTD metric; left: generator depth, right: generator width; joint vs decoupled."""
    panels = []
    for metric in metrics:
        for axis, key in (("depth", "vary_depth"), ("width", "vary_width")):
            panels.append({"title": f"generator {axis}", "xlabel": f"generator {axis}", "xticks": True,
                           "ylabel": f"fair RTD {metric[4:].upper()} (fixed generator)",
                           "series": {m: _points(rows, metric, axis, mode=m, **{key: True})
                                      for m in ("joint", "decoupled")}})
    return plots.plot_panels(panels, out, title=f"discriminator vs generator size ({steps} steps per run)", ncols=2,
                             sharey="row")


def reproduce(experiment, out_dir, steps=300, batch_size=32, config="tiny", standalone_steps=None,
              standalone_generator=None, eval_batches: Optional[int] = None, trial_fn: Optional[Callable] = None,
              **grid) -> List[Dict]:
    """Runs one named experiment in ``out_dir``; writes ``results.csv`` and ``EXPERIMENT.png`` there.

    Args:
        experiment: one of :data:`EXPERIMENTS`.
        out_dir: the experiment dir (ledger, trials, logs, CSV, PNG).
        steps, batch_size, config: size of every trial.
        standalone_steps: steps of the fixed generator (gen-size, sharing);
            default ``2 * steps``.
        standalone_generator: a model dir or export to use as the fixed
            generator instead of training one.
        eval_batches: held-out batches of 32 for the fair RTD score (None: all).
        trial_fn: replaces the subprocess runner (tests).
        **grid: passed to the experiment's ``*_trials`` function.

    Returns:
        The CSV rows.
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of {EXPERIMENTS}")
    runner = PretrainRunner(out_dir, config=config, steps=steps, batch_size=batch_size)
    ledger = Ledger(out_dir, context=runner.context)
    trial_fn = trial_fn or runner
    if experiment == "fig3":
        rows = run_grid(fig3_trials(**grid), ledger, trial_fn)
        plot = plot_fig3
    else:
        generator = fixed_generator(ledger, trial_fn, runner.model_dir, standalone_generator,
                                    standalone_steps or 2 * steps)
        runner.scorer = FairRtdScorer(generator, max_batches=eval_batches)
        if experiment == "masking":
            runner.scorer = _both(runner.scorer, SyntheticFinetuneScorer(out_dir))
        make = {"gen-size": gen_size_trials, "sharing": sharing_trials, "masking": masking_trials}[experiment]
        rows = run_grid(make(**grid), ledger, trial_fn)
        plot = {"gen-size": plot_gen_size, "masking": plot_masking}.get(experiment)
    write_csv(rows, os.path.join(out_dir, "results.csv"))
    png = os.path.join(out_dir, f"{experiment}.png")
    if plot is not None:
        plot(rows, png, steps)
    else:
        dirs = [r["model_dir"] for r in rows if r.get("model_dir")]
        if dirs and all(os.path.exists(os.path.join(d, "metrics.jsonl")) for d in dirs):
            plots.plot_runs(dirs, png, metrics=["gen_loss", "disc_loss", "gen_accuracy", "disc_f1"],
                            labels=[r["trial"] for r in rows])
    log.info("%s: %d trials (%d run now), results in %s", experiment, len(rows), len(ledger.runs), out_dir)
    return rows


def format_rows(rows, keys) -> str:
    """A fixed-width table of some keys of the rows (missing values as '-')."""
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    table = [list(keys)] + [[cell(r[k]) if r.get(k) is not None else "-" for k in keys] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(keys))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in table)
