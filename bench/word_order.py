#!/usr/bin/env python
"""Does a pretrained model know word order? The paired test of docs/research.md ("Transfer", third round).

Each original sentence of the held-out ``order`` task's dev split (standard-library comments, which the
built-in corpus does not contain) is paired with a copy of itself with one span of 3-6 words reversed
(same words, other order). For every pair it asks, without any fine-tuning:

* the generator: is the original's pseudo-log-likelihood higher (each position masked in turn,
  the mean log-probability of the true piece)?
* the discriminator: is the original's mean (and max) replaced-token logit lower?

and prints the fraction of pairs answered "the original is the more natural" (0.5: no knowledge of
word order; random weights may sit away from 0.5 by their own biases, so compare with random init).

Example (the table in docs/research.md):
    python bench/word_order.py RUN/checkpoints/ckpt-2400 RUN-transfer/random_init/checkpoints/ckpt-0
"""

import argparse
import logging
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

log = logging.getLogger("word_order")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="+", help="model dirs, checkpoint prefixes or export dirs")
    p.add_argument("--vocab", default=None, help="SentencePiece model (default: the first run's data dir's)")
    p.add_argument("--pairs", type=int, default=300, help="sentence pairs (the generator uses half: it is slower)")
    p.add_argument("--seed", type=int, default=0, help="seed of the reversed spans")
    return p.parse_args(argv)


def make_pairs(sp, count, seed, max_len):
    """``[(original ids, reversed ids)]`` with [CLS]/[SEP], both of one length that fits ``max_len``."""
    from electra_tf.data.vocab import CLS_ID, SEP_ID
    from electra_tf.finetune.heldout import heldout_tasks, reverse_span

    _, splits = heldout_tasks(names=["order"])["order"]
    rng = random.Random(seed)
    pairs = []
    for example in splits["dev"]:
        if example.label != 1:
            continue
        words = example.text_a.split(" ")
        changed = reverse_span(words, rng)
        if changed is None:
            continue
        a = [CLS_ID] + sp.encode(" ".join(words)) + [SEP_ID]
        b = [CLS_ID] + sp.encode(" ".join(changed)) + [SEP_ID]
        if len(a) == len(b) <= max_len:
            pairs.append((a, b))
        if len(pairs) == count:
            break
    return pairs


def _padded(rows, length):
    import numpy as np

    ids = np.zeros([len(rows), length], np.int32)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return ids, mask


def pseudo_log_likelihood(generator, ids, length):
    """Mean log-probability of each real piece with that position masked (one batch per sentence)."""
    import numpy as np
    import tensorflow as tf

    from electra_tf.data.vocab import MASK_ID

    positions = np.arange(1, len(ids) - 1)
    rows = np.tile(np.asarray(ids)[None], [len(positions), 1])
    rows[np.arange(len(positions)), positions] = MASK_ID
    x, mask = _padded(list(rows), length)
    logits = generator({"input_ids": tf.constant(x), "input_mask": tf.constant(mask),
                        "masked_positions": tf.constant(positions[:, None], tf.int32)}, training=False)["logits"]
    logp = tf.nn.log_softmax(tf.cast(logits, tf.float32), -1).numpy().reshape(len(positions), -1)
    return float(np.mean(logp[np.arange(len(positions)), np.asarray(ids)[positions]]))


def replaced_logits(discriminator, rows, length):
    """Per sentence: the mean and the max replaced-token logit over its real pieces."""
    import numpy as np
    import tensorflow as tf

    x, mask = _padded(rows, length)
    logits = discriminator({"input_ids": tf.constant(x), "input_mask": tf.constant(mask)},
                           training=False)["logits"].numpy()
    return (logits * mask).sum(1) / mask.sum(1), np.where(mask > 0, logits, -np.inf).max(1)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import numpy as np

    from electra_tf.data.vocab import load_sentencepiece
    from electra_tf.pretrained import find_config, load_pretrained, recorded_data_dir

    cfg = find_config(args.checkpoints[0])
    vocab = args.vocab or os.path.join(recorded_data_dir(cfg), "vocab.model")
    length = cfg.data.max_seq_length
    pairs = make_pairs(load_sentencepiece(vocab), args.pairs, args.seed, length)
    log.info("%d pairs of %s dev sentences (original, one span reversed)", len(pairs), "order")
    for path in args.checkpoints:
        _, generator, discriminator = load_pretrained(path)
        half = pairs[: max(1, len(pairs) // 2)]
        gen = np.mean([pseudo_log_likelihood(generator, a, length) > pseudo_log_likelihood(generator, b, length)
                       for a, b in half])
        mean_a, max_a = replaced_logits(discriminator, [a for a, _ in pairs], length)
        mean_b, max_b = replaced_logits(discriminator, [b for _, b in pairs], length)
        print(f"{path}: generator prefers the original {gen:.3f} ({len(half)} pairs); discriminator finds it "
              f"less replaced: mean logit {np.mean(mean_a < mean_b):.3f}, max logit {np.mean(max_a < max_b):.3f} "
              f"({len(pairs)} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
