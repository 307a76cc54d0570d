#!/usr/bin/env python
"""Pretrain an ELECTRA generator/discriminator pair.

With no flags: builds the built-in corpus, vocab and TFRecords if absent,
trains the ``tiny`` preset for a few minutes on CPU, exports, and prints where
everything went.
"""

import argparse
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tiny", help="preset name (tiny/small/base/large) or YAML path")
    p.add_argument("--model_dir", default="runs/tiny", help="checkpoints, metrics, TensorBoard, exports")
    p.add_argument("--strategy", default="default",
                   choices=["default", "one_device", "mirrored", "multi_worker", "tpu"])
    p.add_argument("--cpu_replicas", type=int, default=0, help="split the CPU into N devices (mirrored)")
    p.add_argument("--worker_timeout", type=float, default=600.0,
                   help="multi_worker: seconds to wait for the other workers to come up (default 600)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="config overrides (YAML scalars); may be given more than once")
    p.add_argument("--overwrite", action="store_true", help="discard a different run in --model_dir")
    p.add_argument("--init_from", default=None, help="warm start weights from a model dir/checkpoint/export")
    p.add_argument("--profile_steps", default=None, help="A,B: trace steps A..B with the TensorBoard profiler")
    p.add_argument("--no_export", action="store_true", help="skip the SavedModel export at the end")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from electra_tf.cli import run_pretraining

    code, lines = run_pretraining(args)
    stream = sys.stderr if code else sys.stdout
    for line in lines:
        print(line, file=stream)
    return code


if __name__ == "__main__":
    sys.exit(main())
