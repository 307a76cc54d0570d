"""One train step on two mirrored CPU replicas where one example's loss overflows (run by tests/test_reliability.py).

Usage: one_skip_decision.py DATA_DIR BAD_EXAMPLE

BAD_EXAMPLE is the index in the global batch (8 sequences: 0-3 go to replica 0,
4-7 to replica 1) of the example whose generator loss is made to overflow, or
-1 for none. The overflow comes from the data alone: a masked weight near the
float32 maximum makes that replica's loss sum +inf while the global
denominator, and so every gradient, stays finite. Prints one JSON line.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    data_dir, bad_example = sys.argv[1], int(sys.argv[2])
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from electra_tf.training.strategy import make_strategy

    strategy = make_strategy("mirrored", cpu_replicas=2)
    import numpy as np
    import tensorflow as tf
    from conftest import make_config

    from electra_tf.training.builder import build_pretraining
    from electra_tf.training.data import check_data, pretraining_input

    cfg, _ = check_data(make_config(data_dir, "train.mode=decoupled"), data_dir)
    batch = {k: v.numpy() for k, v in next(iter(pretraining_input(cfg, data_dir, "train", 8))).items()}
    if bad_example >= 0:
        batch["masked_weights"][bad_example, 0] = 3.0e38
    run = build_pretraining(cfg, data=tf.data.Dataset.from_tensors(batch).repeat(), strategy=strategy)

    variables = run.generator.trainable_variables + run.discriminator.trainable_variables

    def per_replica():
        return [[x.numpy() for x in strategy.experimental_local_results(v.value)] for v in variables]

    before = per_replica()
    _, finite = run.train_step()
    after = per_replica()
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "finite": bool(finite),
        "skipped_steps": int(run.steps.skipped_steps.numpy()),
        "changed_on_replica": [any(not np.array_equal(b[r], a[r]) for b, a in zip(before, after)) for r in range(2)],
        "replicas_agree": all(np.array_equal(a[0], a[1]) for a in after),
    }))


if __name__ == "__main__":
    main()
