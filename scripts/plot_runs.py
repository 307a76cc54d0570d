#!/usr/bin/env python
"""Plot loss and metric curves of one or several model dirs (their metrics.jsonl) to a PNG.

Example:
  python scripts/plot_runs.py runs/joint runs/decoupled --out curves.png --metrics gen_loss,disc_loss
"""

import argparse
import logging
import sys

from electra_tf import exit_codes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dirs", nargs="+", metavar="DIR", help="model dirs (or metrics.jsonl files)")
    p.add_argument("--out", default="runs.png", help="the PNG to write")
    p.add_argument("--metrics", default="gen_loss,disc_loss,gen_accuracy,disc_f1",
                   help="comma-separated metrics.jsonl keys, one panel each")
    p.add_argument("--labels", default=None, help="comma-separated legend labels, one per DIR")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from electra_tf.research.plots import plot_runs

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    labels = args.labels.split(",") if args.labels else None
    if labels and len(labels) != len(args.model_dirs):
        print(f"error: --labels has {len(labels)} names for {len(args.model_dirs)} dirs", file=sys.stderr)
        return exit_codes.BAD_INPUT
    from electra_tf.paths import check_output_file

    try:
        check_output_file(args.out, "--out")
        out = plot_runs(args.model_dirs, args.out, metrics=metrics, labels=labels)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    print(out)
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
