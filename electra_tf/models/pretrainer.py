"""ElectraPretrainer: the generator corrupts, the discriminator detects."""

import keras
import tensorflow as tf

from electra_tf.models.sampling import gumbel_sample, replaced_labels, scatter_replacements


class ElectraPretrainer(keras.Model):
    """Holds the generator and the discriminator and runs one RTD forward pass.

    The forward pass: the generator reads the masked input and predicts the
    original tokens at the masked positions; tokens are sampled from its
    softmax (Gumbel-max, float32, no gradient) and scattered into the
    original sequence; the discriminator labels every real position as
    replaced (the sample differs from the original) or not. How the two
    losses become updates (one optimizer or two) is the trainer's business.

    Args:
        generator: a :class:`~electra_tf.models.Generator`.
        discriminator: a :class:`~electra_tf.models.Discriminator`.
        temperature: sampling temperature.
        disallow_correct: forbid sampling the original token (ELECTRA option).
        **kwargs: passed to ``keras.Model``.
    """

    def __init__(self, generator, discriminator, temperature=1.0, disallow_correct=False, **kwargs):
        super().__init__(**kwargs)
        # === Layers ===
        self.generator = generator
        self.discriminator = discriminator
        # === Config ===
        self.temperature = temperature
        self.disallow_correct = disallow_correct

    def call(self, batch, seed, training=None):
        """Args:
            batch: dict from the data pipeline: ``input_ids`` (original),
                ``input_mask``, ``masked_input_ids``, ``masked_positions``,
                ``masked_ids``, ``masked_weights``.
            seed: int [B, 2] per-example stateless sampling seeds (or one [2] seed).
            training: dropout on or off.

        Returns:
            dict: ``gen_logits`` [B, P, V] float32, ``disc_logits`` [B, S]
            float32, ``labels`` [B, S] int32, ``corrupted_ids`` [B, S],
            ``sampled_ids`` [B, P].
        """
        gen_out = self.generator({
            "input_ids": batch["masked_input_ids"],
            "input_mask": batch["input_mask"],
            "masked_positions": batch["masked_positions"],
        }, training=training)
        gen_logits = gen_out["logits"]
        forbid = batch["masked_ids"] if self.disallow_correct else None
        sampled = gumbel_sample(gen_logits, seed, self.temperature, forbid_ids=forbid)
        corrupted = scatter_replacements(batch["input_ids"], batch["masked_positions"], sampled,
                                         batch["masked_weights"])
        corrupted = tf.stop_gradient(corrupted)
        disc_out = self.discriminator({"input_ids": corrupted, "input_mask": batch["input_mask"]},
                                      training=training)
        return {
            "gen_logits": gen_logits,
            "disc_logits": disc_out["logits"],
            "labels": replaced_labels(batch["input_ids"], corrupted, batch["input_mask"]),
            "corrupted_ids": corrupted,
            "sampled_ids": sampled,
        }
