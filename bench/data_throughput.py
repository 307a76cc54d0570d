#!/usr/bin/env python
"""Data throughput: TFRecord build speed (1 and N workers) and the masked tf.data pipeline's rate.

Measures, on the built-in corpus (English docstrings; everything is built under
--workdir and cached there), each timing the best of --repeats runs because the
machine may be shared; CPU seconds (this process's threads plus its worker
processes) are reported too, as they depend little on other jobs:

* build throughput: MB of text per second of ``write_pretraining_data`` with
  each worker count (tokenize, pack, serialize, write shards, hash, manifest),
  timed inside one process where TensorFlow is already imported;
* pipeline throughput: sequences per second out of ``pretraining_dataset``
  (interleave, shuffle, parse, mask, batch) at the ``small`` preset's shapes:
  seq 128, batch 32, ``max_predictions`` 19.

Example:
    python bench/data_throughput.py --corpus_mb 16 --json bench/data_throughput.json
"""

import argparse
import json
import logging
import os
import resource
import sys
import time


def cpu_seconds():
    """CPU time of this process (all threads) plus its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="/tmp/electra_tf_data_bench")
    p.add_argument("--corpus_mb", type=float, default=16.0, help="size of the built-in corpus to build from")
    p.add_argument("--vocab_size", type=int, default=30522, help="upper bound (hard_vocab_limit=false)")
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batches", type=int, default=400, help="pipeline batches timed (after 50 warm-up)")
    p.add_argument("--repeats", type=int, default=3, help="report the best of this many timings (shared machines)")
    p.add_argument("--json", default=None, help="also write the results here")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from electra_tf.data.docstrings import builtin_corpus
    from electra_tf.data.masking import default_max_predictions
    from electra_tf.data.tfrecords import pretraining_dataset, write_pretraining_data
    from electra_tf.data.vocab import load_sentencepiece, train_vocab

    results = {"cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg()[0]}
    corpus = builtin_corpus(args.workdir, args.corpus_mb)
    results["corpus_mb"] = os.path.getsize(corpus) / 1e6
    prefix = os.path.join(args.workdir, f"vocab-{args.corpus_mb:g}mb-{args.vocab_size}")
    if not os.path.exists(prefix + ".model"):
        start = time.perf_counter()
        train_vocab([corpus], args.vocab_size, prefix, hard_vocab_limit=False, max_sentences=300_000)
        results["vocab_train_seconds"] = time.perf_counter() - start
    vocab = prefix + ".model"
    results["vocab_size"] = load_sentencepiece(vocab).get_piece_size()

    data_dir = None
    for workers in args.workers:
        out = os.path.join(args.workdir, f"data-w{workers}")
        timings = []
        for _ in range(args.repeats):
            start, cpu = time.perf_counter(), cpu_seconds()
            manifest = write_pretraining_data([corpus], vocab, out, args.max_seq_length, workers=workers,
                                              progress=False)
            timings.append((time.perf_counter() - start, cpu_seconds() - cpu))
        seconds, cpu = min(timings)
        text_mb = sum(manifest["text_bytes"].values()) / 1e6
        results[f"build_{workers}_workers_seconds"] = seconds
        results[f"build_{workers}_workers_mb_per_sec"] = text_mb / seconds
        results[f"build_{workers}_workers_cpu_seconds"] = cpu
        results[f"build_{workers}_workers_mb_per_cpu_sec"] = text_mb / cpu
        results["sequences_built"] = sum(manifest["examples"].values())
        data_dir = data_dir or out

    max_predictions = default_max_predictions(0.15, args.max_seq_length)
    ds = pretraining_dataset(data_dir, batch_size=args.batch_size, max_seq_length=args.max_seq_length,
                             max_predictions=max_predictions, vocab_size=results["vocab_size"])
    iterator = iter(ds)
    for _ in range(50):
        next(iterator)
    timings = []
    for _ in range(args.repeats):
        start, cpu = time.perf_counter(), cpu_seconds()
        for _ in range(args.batches):
            batch = next(iterator)
        tf.nest.map_structure(lambda t: t.numpy(), batch)
        timings.append((time.perf_counter() - start, cpu_seconds() - cpu))
    seconds, cpu = min(timings)
    results["pipeline_sequences_per_sec"] = args.batches * args.batch_size / seconds
    results["pipeline_sequences_per_cpu_sec"] = args.batches * args.batch_size / cpu
    results["pipeline_shapes"] = {"seq": args.max_seq_length, "batch": args.batch_size,
                                  "max_predictions": max_predictions}
    results["load_average_at_end"] = os.getloadavg()[0]

    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
