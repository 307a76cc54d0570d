#!/usr/bin/env python
"""How often whole-word and span masking choose fewer pieces than the budget, on a real data dir.

Words and spans are never cut: one that would overflow what is left of the budget is skipped and
the later words are tried, so a sequence gets fewer than ``P`` pieces only when no unchosen word
fits the remainder (electra_tf.data.masking). This counts, over the first ``--sequences`` train
sequences of ``--data_dir`` (which must hold its ``vocab.model``), the sequences that got fewer
than ``P`` pieces, and among them those where some other set of whole words would have met ``P``
exactly (a subset-sum over the sequence's word lengths).

Example (1 MB of the built-in corpus, a 4096-piece vocabulary trained on it, seq 128):
    python bench/data_throughput.py --corpus_mb 1 --vocab_size 4096 --workers 1 --batches 0
    python bench/masking_budget.py --data_dir /tmp/electra_tf_data_bench/data-w1 --sequences 3000
"""

import argparse
import json
import os
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True)
    p.add_argument("--sequences", type=int, default=3000)
    p.add_argument("--mask_prob", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--strategies", nargs="+", default=["whole_word", "span"])
    return p.parse_args(argv)


def word_lengths(ids, word_start, specials):
    """The lengths in pieces of a sequence's words, as the masking strategies define them."""
    lengths, previous_candidate = [], False
    for token in ids:
        candidate = token not in specials
        if candidate and (word_start[token] or not previous_candidate):
            lengths.append(1)
        elif candidate:
            lengths[-1] += 1
        previous_candidate = candidate
    return lengths


def exact_sum_exists(lengths, budget):
    """Whether some subset of ``lengths`` sums to ``budget`` (bit-set subset-sum)."""
    reachable = 1
    for length in lengths:
        reachable |= reachable << length
    return bool((reachable >> budget) & 1)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from electra_tf.data.manifest import load_manifest
    from electra_tf.data.masking import default_max_predictions, mask_sequence
    from electra_tf.data.vocab import CLS_ID, PAD_ID, SEP_ID, load_sentencepiece, word_start_table

    manifest = load_manifest(args.data_dir)
    seq = manifest["max_seq_length"]
    word_start = word_start_table(load_sentencepiece(os.path.join(args.data_dir, "vocab.model")))
    max_predictions = default_max_predictions(args.mask_prob, seq)
    files = [os.path.join(args.data_dir, shard["file"]) for shard in manifest["shards"]["train"]]
    feature = {"input_ids": tf.io.FixedLenFeature([seq], tf.int64)}
    ids = tf.data.TFRecordDataset(files).take(args.sequences).map(
        lambda r: tf.cast(tf.io.parse_single_example(r, feature)["input_ids"], tf.int32))
    specials = (PAD_ID, CLS_ID, SEP_ID)
    results = {"data_dir": args.data_dir, "max_seq_length": seq, "mask_prob": args.mask_prob,
               "max_predictions": max_predictions}
    table = tf.constant(word_start)
    for strategy in args.strategies:
        def mask(index, row, strategy=strategy):
            out = mask_sequence(row, tf.stack([tf.constant(args.seed, tf.int64), index]), args.mask_prob,
                                max_predictions, strategy=strategy, word_start=table)
            return row, out["masked_weights"]

        total = short = exact_possible = 0
        for row, weights in ids.enumerate().map(mask).batch(256):
            for row_ids, row_weights in zip(row.numpy(), weights.numpy()):
                n_real = int((row_ids != PAD_ID).sum())
                candidates = int((~np.isin(row_ids, specials)).sum())
                budget = min(round(args.mask_prob * n_real), max_predictions, candidates)
                total += 1
                if int(row_weights.sum()) < budget:
                    short += 1
                    exact_possible += exact_sum_exists(word_lengths(row_ids.tolist(), word_start, specials), budget)
        results[strategy] = {"sequences": total, "fewer_than_budget": short,
                             "fewer_but_an_exact_set_existed": exact_possible}
    print(json.dumps(results, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
