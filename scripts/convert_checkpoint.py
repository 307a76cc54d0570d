#!/usr/bin/env python
"""Convert ELECTRA models between electra_tf model dirs and google-research/electra, Hugging Face and keras-hub.

    # a released TF1 checkpoint dir (model.ckpt-N.*, checkpoint, vocab.txt) -> a model dir
    python scripts/convert_checkpoint.py --from electra_tf1 --input electra_small --output models/electra_small
    # Hugging Face dirs (config.json, model.safetensors, vocab.txt) -> a model dir
    python scripts/convert_checkpoint.py --from hf --input electra-small-discriminator \
        --generator electra-small-generator --output models/electra_small
    # a model dir -> the original's names, shapes and dtypes, plus vocab.txt
    python scripts/convert_checkpoint.py --to electra_tf1 --input models/electra_small --output electra_small_tf1
    # a model dir -> ElectraForPreTraining in OUT, ElectraForMaskedLM in OUT/generator
    python scripts/convert_checkpoint.py --to hf --input models/electra_small --output electra_small_hf
    # a model dir -> keras_hub.models.ElectraBackbone presets: D's encoder in OUT, G's in OUT/generator
    python scripts/convert_checkpoint.py --to keras_hub --input models/electra_small --output electra_small_kh

The model dir is what scripts/pretrain.py --init_from, scripts/finetune.py
--pretrained, scripts/export.py --model_dir and scripts/evaluate_rtd.py read.
Hugging Face input is read from safetensors only (a pytorch_model.bin is a
pickle: refused). keras-hub is written, not read (--to only). What a target
cannot express is refused by name, and nothing is left at --output when a
conversion fails (README, "Coming from google-research/electra, Hugging Face
or keras-hub").
"""

import argparse
import logging
import os
import sys

from electra_tf import exit_codes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SOURCES = ("electra_tf1", "hf")  # keras-hub presets are written, not read
TARGETS = ("electra_tf1", "hf", "keras_hub")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    direction = p.add_mutually_exclusive_group(required=True)
    direction.add_argument("--from", dest="source", choices=SOURCES, help="convert from this format to a model dir")
    direction.add_argument("--to", dest="target", choices=TARGETS, help="convert a model dir to this format")
    p.add_argument("--input", required=True,
                   help="--from: the checkpoint dir (hf: the discriminator's dir); --to: the model dir")
    p.add_argument("--output", required=True, help="--from: the model dir to write; --to: the dir to write")
    p.add_argument("--generator", default=None,
                   help="--from hf: the generator's dir (ElectraForMaskedLM); without it a fresh generator")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output (once the new one is whole)")
    p.add_argument("--num_heads", type=int, default=None,
                   help="--from electra_tf1: discriminator attention heads (default: max(1, hidden // 64))")
    p.add_argument("--generator_num_heads", type=int, default=None,
                   help="--from electra_tf1: generator attention heads (default: max(1, generator hidden // 64))")
    p.add_argument("--generator_hidden_size", type=int, default=None,
                   help="--from, no generator in the input: width of the fresh generator (default: 1/4 of D's)")
    p.add_argument("--generator_layers", type=int, default=None,
                   help="--from, no generator in the input: depth of the fresh generator (default: D's)")
    p.add_argument("--seed", type=int, default=0, help="--from: train.seed of the written config (default 0)")
    p.add_argument("--discriminator_only", action="store_true",
                   help="--to: write the discriminator alone (electra_tf1: when the two models' embedding "
                        "copies differ)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from electra_tf import convert

    try:
        if args.generator and args.source != "hf":
            raise convert.ConversionError("--generator is for --from hf (a TF1 checkpoint holds both models)")
        if args.source == "electra_tf1":
            path = convert.import_electra_tf1(
                args.input, args.output, overwrite=args.overwrite, num_heads=args.num_heads,
                generator_num_heads=args.generator_num_heads, generator_hidden_size=args.generator_hidden_size,
                generator_layers=args.generator_layers, seed=args.seed)
        elif args.source == "hf":
            path = convert.import_hf(args.input, args.output, generator_dir=args.generator, overwrite=args.overwrite,
                                     generator_hidden_size=args.generator_hidden_size,
                                     generator_layers=args.generator_layers, seed=args.seed)
        elif args.target == "electra_tf1":
            path = convert.export_electra_tf1(args.input, args.output, overwrite=args.overwrite,
                                              discriminator_only=args.discriminator_only)
        elif args.target == "hf":
            path = convert.export_hf(args.input, args.output, overwrite=args.overwrite,
                                     discriminator_only=args.discriminator_only)
        else:
            path = convert.export_keras_hub(args.input, args.output, overwrite=args.overwrite,
                                            discriminator_only=args.discriminator_only)
    except (convert.ConversionError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    print(f"wrote {path}")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
