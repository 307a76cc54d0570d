#!/usr/bin/env python
"""Tokenize and pack text into a self-contained TFRecord data dir.

Writes DIR/{train,eval}-IIIII-of-NNNNN.tfrecord (int64 feature input_ids of
length --max_seq_length, each sequence [CLS] ... [SEP] from one document),
DIR/manifest.json and DIR/vocab.model (or DIR/vocab.txt). DIR appears only
when complete; a re-run on the same inputs gives the same files.

Example:
    python scripts/build_pretraining_data.py --input corpus.txt --vocab tfrecords/vocab.model \\
        --output tfrecords/mydata --max_seq_length 128 --workers 2

With a WordPiece vocabulary (BERT's or a converted model's vocab.txt; special
ids read from the file, text lower-cased when the vocabulary has no uppercase
letters, tokenized with tensorflow-text's FastBertTokenizer):
    python scripts/build_pretraining_data.py --input corpus.txt --vocab models/electra_small/vocab.txt \\
        --output tfrecords/mydata-wp --max_seq_length 128

On Apache Beam (pip install -e ".[beam]"), the same files; every option the
script does not know is passed to the Beam pipeline:
    python scripts/build_pretraining_data.py --input corpus.txt --vocab tfrecords/vocab.model \\
        --output tfrecords/mydata --max_seq_length 128 --runner DirectRunner --direct_num_workers 2
"""

import argparse
import logging
import sys

from electra_tf import exit_codes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", nargs="+", required=True, metavar="SOURCE",
                   help="text/.jsonl files (globs allowed), tfds:NAME[:SPLIT] or builtin[:MB]")
    p.add_argument("--vocab", required=True, metavar="PREFIX.model|vocab.txt",
                   help="SentencePiece model (build_vocab.py) or WordPiece vocab.txt")
    p.add_argument("--lower_case", action=argparse.BooleanOptionalAction, default=None,
                   help="WordPiece only: lower-case text (--lower_case) or keep its case (--no-lower_case); "
                        "default: decided from the vocabulary (no uppercase letters in its tokens: lower-case)")
    p.add_argument("--output", required=True, metavar="DIR", help="the data dir to write")
    p.add_argument("--max_seq_length", type=int, required=True)
    p.add_argument("--workers", type=int, default=1, help="tokenizer processes")
    p.add_argument("--eval_fraction", type=float, default=0.02, help="fraction of documents held out")
    p.add_argument("--short_seq_prob", type=float, default=0.1, help="probability of a shorter target length")
    p.add_argument("--examples_per_shard", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--runner", default=None, metavar="R",
                   help="build on Apache Beam with this runner (DirectRunner, DataflowRunner, FlinkRunner, ...); "
                        "further options go to the pipeline. Default: the local process pool (--workers)")
    args, pipeline_args = p.parse_known_args(argv)
    if pipeline_args and args.runner is None:
        p.error(f"unrecognized arguments: {' '.join(pipeline_args)} (pipeline options need --runner)")
    args.pipeline_args = ["--runner", args.runner, *pipeline_args] if args.runner else []
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from electra_tf.data.writer import write_pretraining_data
    from electra_tf.paths import check_output_dir

    common = dict(eval_fraction=args.eval_fraction, short_seq_prob=args.short_seq_prob, seed=args.seed,
                  examples_per_shard=args.examples_per_shard)
    try:
        if "://" not in args.output:
            check_output_dir(args.output, "--output")
        elif not args.runner:
            raise ValueError(f"--output {args.output} is not on the local filesystem; the local builder writes "
                             "local dirs only: build there with --runner (Apache Beam) or choose a local --output")
        if args.lower_case is not None and not args.vocab.endswith(".txt"):
            raise ValueError(f"--lower_case/--no-lower_case apply to a WordPiece vocab.txt only, not {args.vocab}")
        if args.runner:
            from electra_tf.data.beam_writer import write_pretraining_data_beam

            manifest = write_pretraining_data_beam(args.input, args.vocab, args.output, args.max_seq_length,
                                                   pipeline_args=args.pipeline_args, **common)
        else:
            manifest = write_pretraining_data(args.input, args.vocab, args.output, args.max_seq_length,
                                              workers=args.workers, progress=not args.no_progress,
                                              lower_case=args.lower_case, **common)
    except (ValueError, ImportError) as exc:  # ImportError: --runner without apache-beam
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    print(f"{args.output}: {manifest['examples']['train']} train, {manifest['examples']['eval']} eval sequences")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
