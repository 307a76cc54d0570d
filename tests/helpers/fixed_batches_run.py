"""Trains a test-sized model on fixed global batches under given strategies (started by tests/test_multi_worker.py).

Usage: fixed_batches_run.py OUT_DIR DATA_DIR BATCHES_NPZ STRATEGY[,STRATEGY...] [KEY=VALUE ...]

``BATCHES_NPZ`` holds each batch key as an array ``[steps, global batch, ...]``. ``multi_worker`` (alone;
``TF_CONFIG`` in the environment) feeds worker ``i`` of ``n`` rows ``[i*B/n, (i+1)*B/n)`` of every global
batch, as :func:`~electra_tf.training.builder.build_pretraining` expects of a dataset, and writes
``OUT_DIR/w<i>.npz``; ``one_device`` and ``mirrored`` (two CPU replicas) are fed the whole batches, one
after the other in this process, and write ``OUT_DIR/<strategy>.npz``. ``DATA_DIR`` only resolves the
vocabulary size. Each file holds, per step, both losses (``step_gen_loss``, ``step_disc_loss``), their
counts and both gradient norms (``step_norm_<group>``), and every model and optimizer variable after the
last step (``var/<path>``).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _train(cfg, batches, strategy):
    import numpy as np
    import tensorflow as tf

    from electra_tf.training.builder import build_pretraining
    from electra_tf.training.strategy import worker_info

    num_workers, index = worker_info(strategy)
    steps, global_batch = next(iter(batches.values())).shape[:2]
    assert global_batch == cfg.train.batch_size, (global_batch, cfg.train.batch_size)
    rows = global_batch // num_workers
    mine = {k: v[:, index * rows:(index + 1) * rows] for k, v in batches.items()}
    run = build_pretraining(cfg, data=tf.data.Dataset.from_tensor_slices(mine), strategy=strategy)
    result = {}
    for _ in range(steps):
        norms, finite = run.train_step()
        assert bool(finite)
        sums, _ = run.steps.read_window()
        for key in ("gen", "disc"):
            result.setdefault(f"step_{key}_loss", []).append(sums[f"{key}_loss_sum"] / sums[f"{key}_count"])
            result.setdefault(f"step_{key}_count", []).append(sums[f"{key}_count"])
        for group, norm in zip(run.groups, norms):
            result.setdefault(f"step_norm_{group.name}", []).append(float(norm))
    variables = run.generator.weights + run.discriminator.weights
    for group in run.groups:
        variables += group.optimizer.variables
    values = {f"var/{v.path}": v.numpy() for v in variables}
    assert len(values) == len(variables), "variable paths are not unique"
    return {**{k: np.asarray(v) for k, v in result.items()}, **values}, index


def main():
    out_dir, data_dir, batches_path, strategies, *overrides = sys.argv[1:]
    strategies = strategies.split(",")
    assert strategies == ["multi_worker"] or "multi_worker" not in strategies, strategies
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from electra_tf.training.strategy import make_strategy

    # Mirrored first: the CPU is split in two before anything initialises TensorFlow's devices.
    made = {name: make_strategy(name, cpu_replicas=2 if name == "mirrored" else 0, worker_timeout=120)
            for name in sorted(strategies, key=lambda name: name != "mirrored")}
    import numpy as np
    from conftest import make_config

    from electra_tf.training.data import check_data

    cfg, _ = check_data(make_config(data_dir, *overrides), data_dir)
    with np.load(batches_path) as f:
        batches = {k: f[k] for k in f.files}
    for name in strategies:
        values, index = _train(cfg, batches, made[name])
        np.savez(os.path.join(out_dir, f"w{index}.npz" if name == "multi_worker" else f"{name}.npz"), **values)


if __name__ == "__main__":
    main()
