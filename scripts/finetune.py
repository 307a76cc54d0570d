#!/usr/bin/env python
"""Fine-tune a pretrained discriminator on a GLUE task (or your own TSV task) and report dev metrics.

    python scripts/finetune.py --task sst2 --pretrained runs/tiny --data_dir glue_data/SST-2 --output_dir runs/sst2

Runs every learning rate of --lr (default the paper's 5e-5, 1e-4, 3e-4) for
every seed of --seeds, picks the setting with the best median dev metric, and
writes OUT/results.json, OUT/results.md, OUT/best/ (checkpoint) and
OUT/runs/*/ (metrics.jsonl, TensorBoard). See docs/finetune.md.
"""

import logging
import os
import sys

from electra_tf import exit_codes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    from electra_tf.finetune.cli import build_parser, run_finetuning

    args = build_parser(__doc__).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from electra_tf.training.strategy import make_strategy

    # The strategy first: splitting the CPU into logical devices must precede any other TensorFlow use.
    try:
        strategy = make_strategy(args.strategy, args.cpu_replicas)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    code, lines = run_finetuning(args, strategy)
    stream = sys.stderr if code else sys.stdout
    for line in lines:
        print(line, file=stream)
    return code


if __name__ == "__main__":
    sys.exit(main())
