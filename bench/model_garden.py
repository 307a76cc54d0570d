"""Model Garden's ELECTRA pretraining step, the benchmark's baseline (tf_keras / Keras 2, fp32 or mixed bf16).

``official.nlp.modeling.models.ElectraPretrainer`` over two ``BertEncoder``
networks, with the generator reading the discriminator's word-embedding table
(Model Garden's default ``tie_embeddings``), trained by one Adam on
``mlm_loss + disc_weight * rtd_loss`` exactly as ``ElectraPretrainTask``
computes them (``build_losses`` and ``train_step``, written out here with a
``tf.GradientTape`` in one ``tf.function``). It reads the same batches as our
steps: :func:`electra_tf.data.tfrecords.pretraining_dataset`, renamed to Model
Garden's feature names. With ``precision="bfloat16"`` the models are built under
the ``mixed_bfloat16`` Keras policy the way a Model Garden user turns it on
(``runtime.mixed_precision_dtype: bfloat16``, i.e.
``official.modeling.performance.set_mixed_precision_policy(tf.bfloat16)``;
no loss scaling, as Model Garden does for bf16), with one fix that Model
Garden's pretrainer needs to run that way (:func:`_sample_in_float32`). This is the only module
besides parity tests that imports Model Garden.
"""

from __future__ import annotations

from typing import Callable, Dict

import tensorflow as tf

from electra_tf.data.tfrecords import pretraining_dataset

__all__ = ["build_model_garden_step", "model_garden_features"]


def model_garden_features(batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Our pipeline's batch under Model Garden's names (``input_word_ids`` is the masked input)."""
    return {
        "input_word_ids": batch["masked_input_ids"],
        "input_mask": batch["input_mask"],
        "input_type_ids": tf.zeros_like(batch["input_mask"]),
        "masked_lm_positions": batch["masked_positions"],
        "masked_lm_ids": batch["masked_ids"],
        "masked_lm_weights": batch["masked_weights"],
    }


def _sample_in_float32():
    """Makes ``ElectraPretrainer`` run under ``mixed_bfloat16``: its Gumbel sampling then gets float32 logits.

    As released, ``electra_pretrainer.sample_from_softmax`` adds float32 Gumbel
    noise to the masked-LM head's bf16 logits and fails ("expected to be a
    bfloat16 tensor but is a float tensor"). The smallest fix a Model Garden
    user would make: cast the logits to float32 first (the original ELECTRA,
    and our step, sample in float32 too). It patches the module in this
    (worker) process only.
    """
    from official.nlp.modeling.models import electra_pretrainer

    original = electra_pretrainer.sample_from_softmax
    if getattr(original, "casts_to_float32", False):
        return

    def sample_from_softmax(logits, disallow=None):
        return original(tf.cast(logits, tf.float32), disallow=disallow)

    sample_from_softmax.casts_to_float32 = True
    electra_pretrainer.sample_from_softmax = sample_from_softmax


def build_model_garden_step(dims, data_dir: str, batch_size: int, learning_rate: float = 5e-4,
                            disc_weight: float = 50.0, seed: int = 0,
                            precision: str = "none") -> Callable[[], Dict[str, tf.Tensor]]:
    """Builds Model Garden's pretrainer and optimizer; returns its compiled ``train_step()``.

    Args:
        dims: a :class:`bench.flops.Dims` (the shared model and batch dimensions).
        data_dir: a pretraining data dir (e.g. the synthetic one).
        batch_size: sequences per step.
        learning_rate: Adam's learning rate.
        disc_weight: the weight of the replaced-token-detection loss.
        seed: the data pipeline's seed.
        precision: ``"none"`` (float32) or ``"bfloat16"`` (the ``mixed_bfloat16``
            policy, set globally for tf_keras in this process).

    Returns:
        A ``tf.function`` taking no arguments that trains one step on the next
        batch and returns ``{"loss", "mlm_loss", "rtd_loss"}``.
    """
    import tf_keras
    from official.modeling import performance
    from official.nlp.modeling import models, networks

    if precision not in ("none", "bfloat16"):
        raise ValueError(f"Model Garden's step is benchmarked in fp32 or bf16, not {precision!r}")
    performance.set_mixed_precision_policy(tf.bfloat16 if precision == "bfloat16" else tf.float32)
    if precision == "bfloat16":
        _sample_in_float32()
    tf_keras.utils.set_random_seed(seed)
    init = tf_keras.initializers.TruncatedNormal(stddev=0.02)
    common = dict(vocab_size=dims.vocab_size, max_sequence_length=dims.max_position_embeddings,
                  type_vocab_size=2, output_dropout=0.1, attention_dropout=0.1, embedding_width=dims.embedding_size,
                  dict_outputs=True)
    discriminator = networks.BertEncoder(
        hidden_size=dims.disc_hidden, num_layers=dims.disc_layers, num_attention_heads=dims.disc_heads,
        inner_dim=dims.disc_ffn, initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02), **common)
    generator = networks.BertEncoder(
        hidden_size=dims.gen_hidden, num_layers=dims.gen_layers, num_attention_heads=dims.gen_heads,
        inner_dim=dims.gen_ffn, initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02),
        embedding_layer=discriminator.get_embedding_layer(), **common)
    pretrainer = models.ElectraPretrainer(
        generator_network=generator, discriminator_network=discriminator, vocab_size=dims.vocab_size,
        num_classes=2, num_token_predictions=dims.max_predictions, mlm_activation="gelu", mlm_initializer=init,
        disallow_correct=False)
    optimizer = tf_keras.optimizers.Adam(learning_rate=learning_rate)

    dataset = pretraining_dataset(data_dir, batch_size=batch_size, max_seq_length=dims.seq_length,
                                  max_predictions=dims.max_predictions, seed=seed, shuffle_buffer=1000,
                                  vocab_size=dims.vocab_size)
    iterator = iter(dataset.map(model_garden_features))
    pretrainer(model_garden_features(next(iter(pretraining_dataset(
        data_dir, batch_size=batch_size, max_seq_length=dims.seq_length, max_predictions=dims.max_predictions,
        shuffle=False)))))
    optimizer.build(pretrainer.trainable_variables)

    def losses(inputs, outputs):
        # ElectraPretrainTask.build_losses, without the metric updates.
        lm = tf_keras.losses.sparse_categorical_crossentropy(
            inputs["masked_lm_ids"], tf.cast(outputs["lm_outputs"], tf.float32), from_logits=True)
        weights = inputs["masked_lm_weights"]
        mlm_loss = tf.math.divide_no_nan(tf.reduce_sum(lm * weights), tf.reduce_sum(weights))
        # The task passes disc_logits as they come; under mixed_bfloat16 they are bf16 (float32 labels).
        rtd = tf.nn.sigmoid_cross_entropy_with_logits(logits=tf.cast(outputs["disc_logits"], tf.float32),
                                                      labels=tf.cast(outputs["disc_label"], tf.float32))
        mask = tf.cast(inputs["input_mask"], tf.float32)
        rtd_loss = tf.math.divide_no_nan(tf.reduce_sum(mask * rtd), tf.reduce_sum(mask))
        return mlm_loss, rtd_loss

    @tf.function
    def train_step():
        # ElectraPretrainTask.train_step on one replica.
        inputs = next(iterator)
        with tf.GradientTape() as tape:
            outputs = pretrainer(inputs, training=True)
            mlm_loss, rtd_loss = losses(inputs, outputs)
            loss = mlm_loss + disc_weight * rtd_loss
        variables = pretrainer.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        return {"loss": loss, "mlm_loss": mlm_loss, "rtd_loss": rtd_loss}

    train_step.pretrainer = pretrainer
    return train_step
