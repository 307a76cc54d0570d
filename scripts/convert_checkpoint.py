#!/usr/bin/env python
"""Convert ELECTRA checkpoints between google-research/electra's TF1 format and electra_tf model dirs.

    # a released checkpoint dir (model.ckpt-N.*, checkpoint, vocab.txt) -> a model dir
    python scripts/convert_checkpoint.py --from electra_tf1 --input electra_small --output models/electra_small
    # a model dir -> the original's names, shapes and dtypes, plus vocab.txt
    python scripts/convert_checkpoint.py --to electra_tf1 --input models/electra_small --output electra_small_tf1

The model dir is what scripts/pretrain.py --init_from, scripts/finetune.py
--pretrained, scripts/export.py --model_dir and scripts/evaluate_rtd.py read.
Nothing is left at --output when a conversion fails. Not yet built: --from hf,
--to hf, --to keras_hub (README, "Coming from google-research/electra").
"""

import argparse
import logging
import os
import sys

from electra_tf import exit_codes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
FORMATS = ("electra_tf1",)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    direction = p.add_mutually_exclusive_group(required=True)
    direction.add_argument("--from", dest="source", choices=FORMATS, help="convert from this format to a model dir")
    direction.add_argument("--to", dest="target", choices=FORMATS, help="convert a model dir to this format")
    p.add_argument("--input", required=True, help="--from: the checkpoint dir; --to: the model dir")
    p.add_argument("--output", required=True, help="--from: the model dir to write; --to: the checkpoint dir")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output (once the new one is whole)")
    p.add_argument("--num_heads", type=int, default=None,
                   help="--from: discriminator attention heads (default: the original's max(1, hidden // 64))")
    p.add_argument("--generator_num_heads", type=int, default=None,
                   help="--from: generator attention heads (default: max(1, generator hidden // 64))")
    p.add_argument("--generator_hidden_size", type=int, default=None,
                   help="--from, discriminator-only checkpoint: width of the fresh generator (default: 1/4 of D's)")
    p.add_argument("--generator_layers", type=int, default=None,
                   help="--from, discriminator-only checkpoint: depth of the fresh generator (default: D's)")
    p.add_argument("--seed", type=int, default=0, help="--from: train.seed of the written config (default 0)")
    p.add_argument("--discriminator_only", action="store_true",
                   help="--to: write the discriminator alone (when the two models' embedding copies differ)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from electra_tf.convert import ConversionError, export_electra_tf1, import_electra_tf1

    try:
        if args.source:
            path = import_electra_tf1(args.input, args.output, overwrite=args.overwrite, num_heads=args.num_heads,
                                      generator_num_heads=args.generator_num_heads,
                                      generator_hidden_size=args.generator_hidden_size,
                                      generator_layers=args.generator_layers, seed=args.seed)
        else:
            if not os.path.isdir(args.input):
                raise ConversionError(f"--input {args.input} is not a model dir")
            path = export_electra_tf1(args.input, args.output, overwrite=args.overwrite,
                                      discriminator_only=args.discriminator_only)
    except (ConversionError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    print(f"wrote {path}")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
