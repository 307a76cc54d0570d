#!/usr/bin/env python
"""Train a SentencePiece vocabulary with [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4.

Inputs are text files (one sentence or paragraph per line, a blank line between
documents), .jsonl files with a "text" field, tfds:NAME[:SPLIT], or builtin
(the built-in corpus of English docstrings; builtin:MB sets its size).

Example:
    python scripts/build_vocab.py --input corpus.txt --vocab_size 30522 --output tfrecords/vocab
"""

import argparse
import logging
import sys

from electra_tf import exit_codes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", nargs="+", required=True, metavar="SOURCE",
                   help="text/.jsonl files (globs allowed), tfds:NAME[:SPLIT] or builtin[:MB]")
    p.add_argument("--vocab_size", type=int, required=True, help="pieces, including the 5 special tokens")
    p.add_argument("--output", required=True, metavar="PREFIX", help="writes PREFIX.model and PREFIX.vocab")
    p.add_argument("--model_type", default="unigram", choices=["unigram", "bpe"])
    p.add_argument("--max_sentences", type=int, default=1_000_000, help="cap on the lines sampled for training")
    p.add_argument("--character_coverage", type=float, default=0.9995)
    p.add_argument("--allow_smaller", action="store_true",
                   help="accept fewer pieces than --vocab_size when the corpus is small (hard_vocab_limit=false)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="SentencePiece training threads")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from electra_tf.data.vocab import train_vocab
    from electra_tf.paths import check_output_file

    try:
        check_output_file(args.output + ".model", "--output")
        path = train_vocab(args.input, args.vocab_size, args.output, model_type=args.model_type,
                           max_sentences=args.max_sentences, seed=args.seed,
                           character_coverage=args.character_coverage, hard_vocab_limit=not args.allow_smaller,
                           num_threads=args.threads)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    print(path)
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
