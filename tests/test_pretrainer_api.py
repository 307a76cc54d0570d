"""ElectraPretrainer's public pieces: corrupt() is the forward pass's first half, configs keep the dtype policy."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.models import Discriminator, ElectraPretrainer, Generator

KW = dict(vocab_size=20, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, dropout=0.0,
          attention_dropout=0.0, max_position_embeddings=16, relative_buckets=8, relative_max_distance=16)
BATCH = {
    "input_ids": tf.constant([[2, 5, 6, 7, 3, 0], [2, 8, 9, 3, 0, 0]], tf.int32),
    "input_mask": tf.constant([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]], tf.int32),
    "masked_input_ids": tf.constant([[2, 4, 6, 4, 3, 0], [2, 8, 4, 3, 0, 0]], tf.int32),
    "masked_positions": tf.constant([[1, 3], [2, 0]], tf.int32),
    "masked_ids": tf.constant([[5, 7], [9, 0]], tf.int32),
    "masked_weights": tf.constant([[1.0, 1.0], [1.0, 0.0]], tf.float32),
}


def _pretrainer(**kwargs):
    return ElectraPretrainer(Generator(**KW), Discriminator(**KW), temperature=0.7, **kwargs)


def test_call_is_corrupt_then_the_discriminator_on_the_corrupted_ids():
    model = _pretrainer()
    seed = tf.constant([3, 4])
    corrupted = model.corrupt(BATCH, seed, training=False)
    full = model(BATCH, seed, training=False)
    for key in ("gen_logits", "sampled_ids", "corrupted_ids", "labels"):
        np.testing.assert_array_equal(full[key].numpy(), corrupted[key].numpy(), err_msg=key)
    disc = model.discriminator({"input_ids": corrupted["corrupted_ids"], "input_mask": BATCH["input_mask"]})
    np.testing.assert_array_equal(full["disc_logits"].numpy(), disc["logits"].numpy())
    changed = (corrupted["corrupted_ids"].numpy() != BATCH["input_ids"].numpy()).astype(np.int32)
    np.testing.assert_array_equal(corrupted["labels"].numpy(), changed)


def test_a_pretrainer_without_discriminator_only_corrupts():
    model = ElectraPretrainer(Generator(**KW))
    assert model.corrupt(BATCH, tf.constant([0, 0]))["labels"].shape == (2, 6)
    with pytest.raises(ValueError, match="no discriminator"):
        model(BATCH, tf.constant([0, 0]))


def test_pretrainer_config_round_trip_keeps_settings_and_dtype_policy():
    model = ElectraPretrainer(Generator(dtype="mixed_bfloat16", **KW), Discriminator(dtype="mixed_bfloat16", **KW),
                              temperature=0.5, disallow_correct=True, name="p")
    clone = ElectraPretrainer.from_config(model.get_config())
    assert (clone.temperature, clone.disallow_correct, clone.name) == (0.5, True, "p")
    assert clone.generator.dtype_policy.name == clone.discriminator.dtype_policy.name == "mixed_bfloat16"
    assert clone.generator.encoder.blocks[0].compute_dtype == "bfloat16"
    assert clone.get_config() == model.get_config()
