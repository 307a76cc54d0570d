#!/usr/bin/env python
"""Fair replaced-token-detection evaluation: one fixed generator, any number of discriminators.

The generator corrupts the held-out split once (seeded masking and sampling);
every discriminator is scored on exactly the same corrupted tokens (paper,
appendix D). Prints a table and, with --json, writes a list with one object per
discriminator (in the order given): discriminator, accuracy, precision, recall,
f1, auc.

    python scripts/evaluate_rtd.py --generator runs/standalone \\
        --discriminator runs/joint --discriminator runs/decoupled --json rtd.json
"""

import argparse
import json
import logging
import os
import sys

from electra_tf import exit_codes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator", required=True, help="model dir, checkpoint or export holding the fixed generator")
    p.add_argument("--discriminator", action="append", required=True, metavar="PATH",
                   help="model dir, checkpoint or export of a discriminator; repeat for several")
    p.add_argument("--data", default=None,
                   help="TFRecord data dir (default: the one recorded in the generator's config.yaml)")
    p.add_argument("--split", default="eval", help="split to corrupt (default: the held-out 'eval')")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--seed", type=int, default=0, help="masking and sampling seed (default 0)")
    p.add_argument("--batch_size", type=int, default=32, help="sequences per model call (default 32)")
    p.add_argument("--max_batches", type=int, default=None, help="read at most this many batches")
    p.add_argument("--num_examples", type=int, default=None, help="read at most this many sequences")
    p.add_argument("--mask_prob", type=float, default=None, help="default: the generator's data.mask_prob")
    p.add_argument("--max_predictions", type=int, default=None,
                   help="cap on masked positions per sequence (default: the generator's data.max_predictions, "
                        "or ELECTRA's default cap when --mask_prob differs from the generator's)")
    p.add_argument("--verbose", action="store_true", help="log progress")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from electra_tf.paths import check_output_file

    try:
        if args.json:  # before the evaluation, not after it
            check_output_file(args.json, "--json")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    from electra_tf.data.manifest import DataError
    from electra_tf.evaluation.rtd import format_table, run_evaluation

    try:
        evaluation = run_evaluation(args.generator, args.discriminator, data_dir=args.data,
                                    batch_size=args.batch_size, max_batches=args.max_batches,
                                    num_examples=args.num_examples, seed=args.seed, split=args.split,
                                    mask_prob=args.mask_prob, max_predictions=args.max_predictions)
    except (DataError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    print(format_table(evaluation.results, evaluation.corruption))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(evaluation.results, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
