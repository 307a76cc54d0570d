"""Recomputing transformer blocks in the backward pass (``train.recompute``): same gradients, less memory."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.networks.encoder import Encoder


def _encoder(**overrides):
    kwargs = dict(vocab_size=100, hidden_size=32, num_layers=2, num_heads=2, dropout=0.2, attention_dropout=0.2,
                  max_position_embeddings=64, relative_buckets=8, relative_max_distance=16)
    kwargs.update(overrides)
    enc = Encoder(**kwargs)
    enc.build()
    return enc


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("relative_buckets", [8, 0])
def test_recomputed_blocks_give_the_same_outputs_and_gradients(graph, relative_buckets):
    enc = _encoder(relative_buckets=relative_buckets)
    ids = tf.random.stateless_uniform([4, 16], [1, 2], 1, 100, dtype=tf.int32)
    ids = tf.concat([ids[:, :12], tf.zeros([4, 4], tf.int32)], axis=1)  # padded tail
    weights = tf.sin(tf.range(32, dtype=tf.float32))
    # The dropout layers' random state: both runs start from it, so they draw the same masks.
    start = [v.numpy() for v in enc.non_trainable_variables]

    def run(recompute):
        for v, value in zip(enc.non_trainable_variables, start):
            v.assign(value)
        enc.recompute_blocks = recompute

        def step():
            with tf.GradientTape() as tape:
                out = enc({"input_ids": ids}, training=True)["sequence_output"]
                loss = tf.reduce_sum(out * weights)
            return out, tape.gradient(loss, enc.trainable_variables)

        return (tf.function(step) if graph else step)()

    out, grads = run(False)
    re_out, re_grads = run(True)
    np.testing.assert_array_equal(out.numpy(), re_out.numpy())
    assert len(grads) == len(re_grads) == len(enc.trainable_variables)
    for var, g, re_g in zip(enc.trainable_variables, grads, re_grads):
        assert re_g is not None, var.path
        np.testing.assert_allclose(tf.convert_to_tensor(g).numpy(), tf.convert_to_tensor(re_g).numpy(),
                                   rtol=0, atol=1e-6, err_msg=var.path)
    # Dropout was active: a different draw gives a different output.
    assert not np.array_equal(out.numpy(), enc({"input_ids": ids}, training=True)["sequence_output"].numpy())


def test_recompute_is_off_at_inference_and_absent_from_the_config():
    enc = _encoder()
    enc.recompute_blocks = True
    ids = tf.constant([[2, 5, 7, 3, 0, 0]])
    a = enc({"input_ids": ids}, training=False)["sequence_output"]
    enc.recompute_blocks = False
    np.testing.assert_array_equal(a.numpy(), enc({"input_ids": ids}, training=False)["sequence_output"].numpy())
    assert "recompute_blocks" not in enc.get_config()


_PEAK_RSS_OF_A_STEP = textwrap.dedent("""
    import sys
    import tensorflow as tf
    from electra_tf.networks.encoder import Encoder

    enc = Encoder(vocab_size=1000, hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024,
                  dropout=0.1, attention_dropout=0.1, max_position_embeddings=128, relative_buckets=8,
                  relative_max_distance=16)
    enc.build()
    enc.recompute_blocks = sys.argv[1] == "true"
    ids = tf.random.stateless_uniform([128, 128], [1, 2], 1, 1000, dtype=tf.int32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(enc({"input_ids": ids}, training=True)["sequence_output"])
        return tape.gradient(loss, enc.trainable_variables)

    for _ in range(3):
        step()
    # VmHWM is this process's own peak: ru_maxrss after exec also counts the parent's (Linux keeps the
    # larger of the two), so under a pytest process that has grown to 2.5 GB both runs read the same.
    with open("/proc/self/status") as f:
        print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024.0)
""")


@pytest.mark.slow
def test_recompute_lowers_the_peak_memory_of_a_training_step():
    """4 blocks of [128, 128, 256] keep ~150 MB of activations each; recomputing keeps about one block's worth.

    Peak RSS also holds TensorFlow itself and what tracing and graph optimisation took, which set the
    peak when the batch is small, so the batch is large enough for the activations to stand above it:
    measured 2.47-2.49 GB without, 1.95-1.98 GB with recomputation (at batch 64, 150-260 MB apart).
    """
    peaks = {}
    for recompute in ("false", "true"):
        out = subprocess.run([sys.executable, "-c", _PEAK_RSS_OF_A_STEP, recompute], capture_output=True,
                             text=True, timeout=600, check=True)
        peaks[recompute] = float(out.stdout.strip().splitlines()[-1])
    assert peaks["false"] - peaks["true"] > 250, peaks
