#!/usr/bin/env python
"""Export a pretraining run as SavedModels (discriminator, generator) and a .keras encoder.

Reads the latest checkpoint of --model_dir and writes MODEL_DIR/export/ (the same
export scripts/pretrain.py writes at the end of training). The text signatures
need the run's vocabulary (a SentencePiece model or a WordPiece vocab.txt): by
default MODEL_DIR/export/vocab.model or vocab.txt, MODEL_DIR/vocab.txt (a model
dir converted from google-research/electra), or the vocabulary of the data dir
recorded in MODEL_DIR/config.yaml.
"""

import argparse
import logging
import os
import sys

from electra_tf import exit_codes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="a model dir written by scripts/pretrain.py")
    p.add_argument("--vocab", default=None,
                   help="SentencePiece .model or WordPiece vocab.txt (default: found from the run)")
    p.add_argument("--checkpoint", default=None, help="checkpoint prefix to export (default: the latest)")
    p.add_argument("--top_k", type=int, default=5, help="candidates per [MASK] in fill_mask (default 5)")
    p.add_argument("--max_seq_length", type=int, default=None,
                   help="truncation length of the text signatures (default: the run's data.max_seq_length)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from electra_tf.export import export_model_dir
    from electra_tf.paths import check_output_dir

    try:
        if not os.path.isdir(args.model_dir):
            raise FileNotFoundError(f"--model_dir {args.model_dir} does not exist (a model dir written by "
                                    f"scripts/pretrain.py)")
        check_output_dir(args.model_dir, "--model_dir")
        paths = export_model_dir(args.model_dir, vocab_model=args.vocab, top_k=args.top_k,
                                 max_seq_length=args.max_seq_length, checkpoint=args.checkpoint)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    for name, path in paths.items():
        print(f"{name + ':':15s}{path}")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
