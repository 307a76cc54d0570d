#!/usr/bin/env python
"""Reproduce the paper's findings at small scale (tiny preset by default).

Experiments:
  fig3      generator MLM accuracy vs λ (joint) and vs generator lr (decoupled)
  gen-size  fair RTD F1 vs generator depth/width, joint vs decoupled
  sharing   decoupled with `none` vs `gdes` embedding sharing
  masking   data.masking token vs whole_word vs span, by fair RTD against one fixed generator
            and by fine-tuning on synthetic SST-2 (20% label noise)
  transfer  the built-in transfer benchmark of a run (--model_dir): random init and
            every checkpoint, fine-tuned and linearly probed on held-out tasks

Each writes OUT/ledger.json (finished trials are never rerun: run the same
command again to resume), OUT/results.csv and OUT/EXPERIMENT.png.

Examples:
  python scripts/reproduce.py fig3 --steps 300 --out runs/reproduce/fig3
  python scripts/reproduce.py masking --steps 300 --out runs/reproduce/masking
  python scripts/reproduce.py transfer --model_dir runs/tiny
"""

import argparse
import logging
import os
import sys

from electra_tf import exit_codes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

COLUMNS = {
    "fig3": ("trial", "panel", "x", "status", "eval_gen_accuracy", "eval_gen_loss", "eval_disc_auc", "seconds"),
    "gen-size": ("trial", "mode", "depth", "width", "status", "rtd_f1", "rtd_auc", "eval_gen_accuracy", "seconds"),
    "sharing": ("trial", "sharing", "status", "rtd_f1", "rtd_auc", "eval_gen_accuracy", "eval_disc_loss",
                "seconds"),
    "masking": ("trial", "masking", "status", "rtd_f1", "rtd_auc", "synthetic_accuracy", "eval_gen_accuracy",
                "seconds"),
}


def floats(text):
    return [float(x) for x in text.split(",") if x.strip()]


def ints(text):
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=sorted(COLUMNS) + ["transfer"])
    p.add_argument("--out", default=None, help="experiment dir (default runs/reproduce/EXPERIMENT)")
    p.add_argument("--steps", type=int, default=300, help="training steps per trial")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--config", default="tiny", help="preset (tiny/small/base/large) or YAML path")
    p.add_argument("--standalone_steps", type=int, default=None, help="steps of the fixed generator (2x --steps)")
    p.add_argument("--standalone_generator", default=None,
                   help="gen-size/sharing: model dir or export of the fixed generator (default: train one)")
    p.add_argument("--eval_batches", type=int, default=None, help="held-out batches for the fair RTD score")
    p.add_argument("--lambdas", type=floats, default=None, help="fig3: comma-separated λ values")
    p.add_argument("--gen_lrs", type=floats, default=None, help="fig3: comma-separated generator rates")
    p.add_argument("--depths", type=ints, default=None, help="gen-size: comma-separated generator depths")
    p.add_argument("--widths", type=ints, default=None, help="gen-size: comma-separated generator widths")
    t = p.add_argument_group("transfer")
    t.add_argument("--model_dir", default=None, help="transfer: the pretraining run to score")
    t.add_argument("--tasks", default=None, help="transfer: comma-separated held-out tasks (default all)")
    t.add_argument("--lr", type=float, default=None, help="transfer: fine-tuning learning rate (default 3e-3)")
    t.add_argument("--epochs", type=float, default=None, help="transfer: fine-tuning epochs (default 10)")
    t.add_argument("--seeds", type=ints, default=None, help="transfer: comma-separated fine-tuning seeds (0,1)")
    t.add_argument("--probe_epochs", type=float, default=None,
                   help="transfer: head-only epochs before fine-tuning (LP-FT; default 0)")
    t.add_argument("--shrink", choices=("auto", "on", "off"), default="auto",
                   help="transfer: shrink grown block kernels before fine-tuning (auto: as scripts/finetune.py, "
                        "on for models narrower than 256)")
    t.add_argument("--checkpoint_steps", type=ints, default=None,
                   help="transfer: only these checkpoint steps (0 = random init; default all)")
    t.add_argument("--probe_only", action="store_true", help="transfer: skip fine-tuning")
    t.add_argument("--all_layers", action="store_true", help="transfer: probe every layer")
    args = p.parse_args(argv)
    if args.experiment == "transfer" and not args.model_dir:
        p.error("transfer needs --model_dir (a pretraining run's model dir)")
    return args


def run_transfer(args):
    from electra_tf.research.cli import run_command
    from electra_tf.research.transfer import TransferRecipe, format_table, transfer_benchmark

    recipe = TransferRecipe()
    changes = {k: v for k, v in (("learning_rate", args.lr), ("epochs", args.epochs),
                                 ("probe_epochs", args.probe_epochs),
                                 ("shrink", None if args.shrink == "auto" else args.shrink == "on"),
                                 ("seeds", tuple(args.seeds) if args.seeds else None)) if v is not None}
    recipe = TransferRecipe(**{**recipe.__dict__, **changes})
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else None
    out = args.out or os.path.join(args.model_dir.rstrip("/") + "-transfer")
    kwargs = {"tasks": tasks} if tasks else {}
    code, rows = run_command(lambda: transfer_benchmark(
        args.model_dir, out, recipe=recipe, finetune=not args.probe_only, steps=args.checkpoint_steps,
        all_layers=args.all_layers, **kwargs), bad_input=(ValueError, FileNotFoundError))
    if code:
        return code
    print(format_table(rows))
    print(f"\nfine-tuning: lr {recipe.learning_rate:g}, {recipe.epochs:g} epochs, median of seeds "
          f"{list(recipe.seeds)}; probe: logistic regression on mean-pooled top-layer states (x100)")
    print(f"results: {os.path.join(out, 'transfer.csv')}\nplot:    {os.path.join(out, 'transfer.png')}")
    return exit_codes.OK


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.experiment == "transfer":
        return run_transfer(args)
    from electra_tf.research.cli import run_command
    from electra_tf.research.experiments import format_rows, reproduce

    grid = {k: v for k, v in (("lambdas", args.lambdas), ("gen_lrs", args.gen_lrs), ("depths", args.depths),
                              ("widths", args.widths)) if v is not None}
    out = args.out or os.path.join("runs", "reproduce", args.experiment)
    from electra_tf.paths import check_output_dir

    try:
        check_output_dir(out, "--out")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    code, rows = run_command(lambda: reproduce(
        args.experiment, out, steps=args.steps, batch_size=args.batch_size, config=args.config,
        standalone_steps=args.standalone_steps, standalone_generator=args.standalone_generator,
        eval_batches=args.eval_batches, **grid), bad_input=(ValueError, TypeError))
    if code:
        return code
    print(format_rows(rows, COLUMNS[args.experiment]))
    print(f"\nresults: {os.path.join(out, 'results.csv')}\nplot:    {os.path.join(out, args.experiment + '.png')}")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
