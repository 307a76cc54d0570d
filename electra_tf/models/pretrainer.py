"""ElectraPretrainer: the generator corrupts, the discriminator detects."""

import keras
import tensorflow as tf

from electra_tf.models.sampling import gumbel_sample, replaced_labels, scatter_replacements


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraPretrainer(keras.Model):
    """Holds the generator and the discriminator and runs one RTD forward pass.

    The forward pass is :meth:`corrupt` (the generator reads the masked input
    and predicts the original tokens at the masked positions; tokens are
    sampled from its softmax by Gumbel-max, float32, no gradient, and
    scattered into the original sequence; a position is labelled replaced iff
    its token changed) followed by the discriminator on the corrupted input.
    How the two losses become updates (one optimizer or two) is the
    objective's business (:mod:`electra_tf.models.objective`).

    Args:
        generator: a :class:`~electra_tf.models.Generator`.
        discriminator: a :class:`~electra_tf.models.Discriminator`, or None
            to use only :meth:`corrupt` (as the fair RTD evaluation does).
        temperature: sampling temperature.
        disallow_correct: forbid sampling the original token (ELECTRA option).
        **kwargs: passed to ``keras.Model``.

    Example:

    >>> pretrainer = ElectraPretrainer(generator, discriminator)
    >>> out = pretrainer(batch, seed=tf.constant([0, 0]), training=False)
    >>> sorted(out)
    ['corrupted_ids', 'disc_logits', 'gen_logits', 'labels', 'sampled_ids']
    """

    def __init__(self, generator, discriminator=None, temperature=1.0, disallow_correct=False, **kwargs):
        super().__init__(**kwargs)
        # === Layers ===
        self.generator = generator
        self.discriminator = discriminator
        # === Config ===
        self.temperature = temperature
        self.disallow_correct = disallow_correct

    def corrupt(self, batch, seed, training=None):
        """Mask → sample → scatter → labels: the generator's corruption of a masked batch.

        Args:
            batch: dict from the data pipeline: ``input_ids`` [B, S] (original),
                ``input_mask`` [B, S], ``masked_input_ids`` [B, S],
                ``masked_positions`` [B, P], ``masked_ids`` [B, P],
                ``masked_weights`` [B, P].
            seed: int [B, 2] per-example stateless sampling seeds, or one [2]
                seed (row i then draws with ``(seed[0], seed[1] + i)``).
            training: dropout on or off.

        Returns:
            dict: ``gen_logits`` [B, P, V] float32, ``sampled_ids`` [B, P],
            ``corrupted_ids`` [B, S] (no gradient), ``labels`` [B, S] int32
            (1 = replaced; a sample equal to the original is not).
        """
        gen_logits = self.generator({
            "input_ids": batch["masked_input_ids"],
            "input_mask": batch["input_mask"],
            "masked_positions": batch["masked_positions"],
        }, training=training)["logits"]
        forbid = batch["masked_ids"] if self.disallow_correct else None
        sampled = gumbel_sample(gen_logits, seed, self.temperature, forbid_ids=forbid)
        corrupted = scatter_replacements(batch["input_ids"], batch["masked_positions"], sampled,
                                         batch["masked_weights"])
        corrupted = tf.stop_gradient(corrupted)
        return {
            "gen_logits": gen_logits,
            "sampled_ids": sampled,
            "corrupted_ids": corrupted,
            "labels": replaced_labels(batch["input_ids"], corrupted, batch["input_mask"]),
        }

    def call(self, batch, seed, training=None):
        """:meth:`corrupt`, then the discriminator on the corrupted input.

        Returns:
            dict: :meth:`corrupt`'s outputs and ``disc_logits`` [B, S] float32.
        """
        if self.discriminator is None:
            raise ValueError("this ElectraPretrainer has no discriminator (discriminator=None); "
                             "only corrupt() can be called")
        out = self.corrupt(batch, seed, training=training)
        disc_out = self.discriminator({"input_ids": out["corrupted_ids"], "input_mask": batch["input_mask"]},
                                      training=training)
        return {**out, "disc_logits": disc_out["logits"]}

    def get_config(self):
        config = super().get_config()
        config.update({
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": (None if self.discriminator is None
                              else keras.saving.serialize_keras_object(self.discriminator)),
            "temperature": self.temperature,
            "disallow_correct": self.disallow_correct,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        if config.get("discriminator") is not None:
            config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)
