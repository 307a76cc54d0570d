#!/usr/bin/env python
"""The paper's hyperparameter roadmap (appendix C) as a resumable sweep of short pretraining runs.

Phase 1 grows the discriminator lr geometrically (generator lr fixed) until a
run diverges (exit code 3) or its fair RTD score stops improving; phase 2
golden-section searches the generator lr over log10(lr) with that rate fixed.
Trials are scored against one fixed standalone generator (trained first, or
--standalone_generator DIR). Finished trials are recorded in OUT/ledger.json
and never rerun: after an interruption, run the same command again.

Writes OUT/sweep.csv, OUT/best.json, OUT/sweep_disc_lr.png, OUT/sweep_gen_lr.png.

Example:
  python scripts/sweep.py --out runs/sweep --steps 200 --max_trials 6
"""

import argparse
import logging
import os
import sys

from electra_tf import exit_codes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/sweep", help="sweep dir (ledger, trials, CSV, plots)")
    p.add_argument("--config", default="tiny", help="preset (tiny/small/base/large) or YAML path")
    p.add_argument("--steps", type=int, default=200, help="training steps per trial")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_trials", type=int, default=8, help="trials of both phases (standalone excluded)")
    p.add_argument("--disc_trials", type=int, default=None, help="trials of phase 1 (default half)")
    p.add_argument("--metric", default="rtd_auc", choices=["rtd_auc", "rtd_f1", "rtd_accuracy"],
                   help="fair RTD score maximised")
    p.add_argument("--disc_metric", default=None, choices=["rtd_auc", "rtd_f1", "rtd_accuracy", "eval_disc_loss"],
                   help="phase 1's stopping score (default --metric); eval_disc_loss = the trial's own held-out "
                        "RTD loss, minimised")
    p.add_argument("--disc_lr_start", type=float, default=1e-3)
    p.add_argument("--growth", type=float, default=2.0, help="phase 1 growth factor")
    p.add_argument("--gen_lr", type=float, default=1e-4, help="generator lr during phase 1")
    p.add_argument("--gen_lr_min", type=float, default=1e-5)
    p.add_argument("--gen_lr_max", type=float, default=1e-3)
    p.add_argument("--min_gain", type=float, default=0.0, help="phase 1: improvement needed to keep growing")
    p.add_argument("--standalone_generator", default=None, help="model dir/export of the fixed generator")
    p.add_argument("--standalone_steps", type=int, default=None, help="steps of the fixed generator (2x --steps)")
    p.add_argument("--eval_batches", type=int, default=None, help="held-out batches of 32 scored (default all)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from electra_tf.paths import check_output_dir
    from electra_tf.research.cli import run_command
    from electra_tf.research.experiments import fixed_generator
    from electra_tf.research.ledger import Ledger
    from electra_tf.research.sweep import check_sweep, run_sweep, write_report
    from electra_tf.research.trials import FairRtdScorer, PretrainRunner

    try:
        check_output_dir(args.out, "--out")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT

    def sweep():
        # Bad settings fail here, before the standalone generator is trained.
        check_sweep(args.max_trials, args.disc_trials, args.disc_lr_start, args.growth,
                    (args.gen_lr_min, args.gen_lr_max))
        runner = PretrainRunner(args.out, config=args.config, steps=args.steps, batch_size=args.batch_size)
        ledger = Ledger(args.out, context=runner.context)
        generator = fixed_generator(ledger, runner, runner.model_dir, args.standalone_generator,
                                    args.standalone_steps or 2 * args.steps)
        runner.scorer = FairRtdScorer(generator, max_batches=args.eval_batches)
        outcome = run_sweep(ledger, runner, metric=args.metric, max_trials=args.max_trials,
                            disc_trials=args.disc_trials, disc_lr_start=args.disc_lr_start, growth=args.growth,
                            fixed_gen_lr=args.gen_lr, gen_lr_range=(args.gen_lr_min, args.gen_lr_max),
                            min_gain=args.min_gain, disc_metric=args.disc_metric)
        return ledger, outcome, write_report(outcome, args.out, args.metric)

    code, done = run_command(sweep)
    if code:
        return code
    ledger, outcome, paths = done
    for row in outcome.rows:
        print(f"{row['phase']:>16}  d_lr {row['discriminator_lr']:.3g}  g_lr {row['generator_lr']:.3g}  "
              f"{row['status']:>8}  {args.metric} {row['score']:.4f}")
    print(f"\nbest: discriminator lr {outcome.discriminator_lr}, generator lr {outcome.generator_lr}, "
          f"{args.metric} {outcome.best_score:.4f} (phase 1 stopped: {outcome.phase1.reason}); "
          f"{len(ledger.runs)} trials run now, the rest from {ledger.path}")
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
