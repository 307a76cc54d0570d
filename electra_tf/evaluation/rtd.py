"""Fair replaced-token-detection (RTD) evaluation against one fixed generator (paper, appendix D).

A discriminator's RTD scores during pretraining are measured on tokens its own
generator sampled, so two runs are scored on corruptions of different
difficulty and their numbers cannot be compared. Here one fixed ("standalone")
generator corrupts the held-out sequences once, and every discriminator is
scored on exactly the same corrupted tokens:

1. the held-out split of a data dir is masked by the project's one masking
   function, keyed by ``(seed, example index)``;
2. the generator (no dropout) predicts the masked positions and one token per
   position is sampled by Gumbel-max with a stateless seed keyed by
   ``(seed, example index)``; a sample equal to the original counts as real;
3. each discriminator (no dropout) scores every real position; accuracy,
   precision, recall, F1 (replaced = positive, threshold 0.5) and ROC AUC come
   from :mod:`electra_tf.models.rtd_metrics`, as in training.

The numbers depend only on the generator, the data, ``seed`` and the masking
settings: not on the batch size or on which other discriminators are scored.

Example:

>>> results = evaluate_rtd("runs/standalone", ["runs/joint", "runs/decoupled"], max_batches=20)
>>> [round(r["f1"], 3) for r in results]
"""

import dataclasses
import logging
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from electra_tf.data.manifest import load_manifest
from electra_tf.data.tfrecords import pretraining_dataset, vocab_path
from electra_tf.data.vocab import file_sha256
from electra_tf.models import ElectraPretrainer
from electra_tf.models import rtd_metrics as M
from electra_tf.pretrained import find_config, load_pretrained, recorded_data_dir
from electra_tf.seeds import RTD_SAMPLING, sampling_stream

log = logging.getLogger(__name__)

RESULT_KEYS = ("discriminator", "accuracy", "precision", "recall", "f1", "auc")
_METRIC_NAMES = {"accuracy": "disc_accuracy", "precision": "disc_precision", "recall": "disc_recall",
                 "f1": "disc_f1", "auc": "disc_auc"}


@dataclasses.dataclass
class Corruption:
    """Held-out sequences corrupted once by the fixed generator.

    Attributes:
        batches: dicts of numpy arrays: ``corrupted_ids``, ``input_mask``,
            ``labels`` (1 = replaced) ``[B, S]``; ``masked_ids``,
            ``masked_weights`` ``[B, P]``.
        generator: the generator's path.
        data_dir: the data dir read.
        split: the split read.
        seed: the masking and sampling seed.
        vocab_size: the generator's (and the data's) vocabulary size.
        seq_length: the data's sequence length.
        examples, tokens, masked, replaced: counts over all batches.
        generator_accuracy: the generator's MLM accuracy at the masked positions.
    """

    batches: List[Dict[str, np.ndarray]]
    generator: str
    data_dir: str
    split: str
    seed: int
    vocab_size: int
    seq_length: int
    examples: int = 0
    tokens: int = 0
    masked: int = 0
    replaced: int = 0
    generator_accuracy: float = 0.0

    def describe(self):
        """One line saying what the discriminators are scored on."""
        share = self.replaced / self.tokens if self.tokens else 0.0
        return (f"generator {self.generator}; data {self.data_dir} ({self.split} split, seed {self.seed}): "
                f"{self.examples} sequences, {self.tokens} tokens, {self.masked} masked, {self.replaced} replaced "
                f"({share:.1%} of tokens); generator MLM accuracy {self.generator_accuracy:.3f}")


@dataclasses.dataclass
class Evaluation:
    """What :func:`run_evaluation` returns: one result dict per discriminator and the shared corruption."""

    results: List[Dict]
    corruption: Corruption


def resolve_data_dir(generator_path, cfg, data_dir=None):
    """The data dir to evaluate on: ``data_dir``, else the one recorded in the generator's config.

    Raises:
        FileNotFoundError: the dir does not exist; the message says where the
            default came from and how to pass one.
    """
    if data_dir:
        if not os.path.isdir(data_dir):
            raise FileNotFoundError(f"data dir {data_dir} does not exist (expected a TFRecord data dir written by "
                                    "scripts/build_pretraining_data.py)")
        return data_dir
    recorded = recorded_data_dir(cfg)
    if not os.path.isdir(recorded):
        origin = "data.path" if cfg.data.path else "the built-in data dir (data.path is unset)"
        raise FileNotFoundError(
            f"no data dir given, and the one recorded for the generator {generator_path} ({origin}: {recorded}) does "
            f"not exist here; pass --data DIR (a TFRecord data dir with a held-out split)")
    return recorded


def _vocab_file_near(path):
    """A ``vocab.model`` or ``vocab.txt`` stored with a model dir (a converted one too) or an export, if any."""
    for directory in (path, os.path.dirname(os.path.normpath(path)), os.path.join(path, "export")):
        for name in ("vocab.model", "vocab.txt"):
            if os.path.isfile(os.path.join(directory, name)):
                return os.path.join(directory, name)
    return None


def check_vocabulary(role, path, cfg, manifest, data_dir):
    """Raises ValueError unless a model's vocabulary is the data's (size, and the file where one is stored)."""
    if cfg.model.vocab_size != manifest["vocab_size"]:
        raise ValueError(f"the {role} {path} has vocab_size {cfg.model.vocab_size} but the data dir {data_dir} has "
                         f"{manifest['vocab_size']}; every model must share the data's vocabulary")
    stored = _vocab_file_near(path)
    expected = manifest.get("vocab_sha256")
    if stored and expected and file_sha256(stored) != expected:
        raise ValueError(f"the {role} {path} was exported with the vocabulary {stored}, which differs from the data "
                         f"dir's {vocab_path(data_dir)} (same size {cfg.model.vocab_size}, other pieces)")
    if stored is None and expected:
        trained, where = _trained_vocab_sha256(path, cfg)
        if trained and trained != expected:
            raise ValueError(f"the {role} {path} was trained on the vocabulary of {where} (sha256 {trained[:12]}...), "
                             f"which differs from the data dir's {vocab_path(data_dir)} (sha256 {expected[:12]}...; "
                             f"same size {cfg.model.vocab_size}, other pieces); every model must share the data's "
                             f"vocabulary")


def _trained_vocab_sha256(path, cfg):
    """``(sha256, where it was found)`` of the vocabulary a model dir (or a checkpoint in one) was trained on.

    The run's ``run_data.json`` records it; older runs fall back to the
    manifest of the data dir their config names. ``(None, None)`` when unknown.
    """
    import json

    base = os.path.normpath(path)
    for directory in (base, os.path.dirname(base), os.path.dirname(os.path.dirname(base))):
        record = os.path.join(directory, "run_data.json")
        if os.path.isfile(record):
            try:
                with open(record, "r", encoding="utf-8") as f:
                    data = json.load(f)
                return data.get("vocab_sha256"), data.get("data_dir") or directory
            except (OSError, ValueError):
                break
    recorded = recorded_data_dir(cfg)
    try:
        return load_manifest(recorded).get("vocab_sha256"), recorded
    except Exception:  # noqa: BLE001 - the recorded data dir may be gone; then there is nothing to compare
        return None, None


def corrupt_held_out(generator, data_dir, seed=0, batch_size=32, num_examples=None, split="eval", mask_prob=0.15,
                     mask_token_prob=0.85, max_predictions=None, temperature=1.0, generator_name="generator"):
    """Masks held-out sequences and replaces the masked tokens with the generator's samples, once.

    Args:
        generator: a :class:`~electra_tf.models.Generator` with the data's vocabulary.
        data_dir: a TFRecord data dir.
        seed: keys the masks and the samples of every example.
        batch_size: sequences per generator call (does not change the result).
        num_examples: the first N sequences of the split; None reads it all.
        split: the split to read (``eval`` is the held-out one).
        mask_prob, mask_token_prob, max_predictions: the masking, as in pretraining.
        temperature: the sampling temperature.
        generator_name: how the generator is named in :meth:`Corruption.describe`.

    Returns:
        A :class:`Corruption`.

    Raises:
        ValueError: the split has no examples, or a bad ``batch_size`` / ``num_examples``.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if num_examples is not None and (not isinstance(num_examples, int) or num_examples < 1):
        raise ValueError(f"num_examples must be an integer >= 1 or None (the whole split), got {num_examples!r}")
    manifest = load_manifest(data_dir)
    counts = manifest.get("examples", {})
    if split not in counts and manifest.get("shards", {}).get(split):
        available = None  # google-research/electra's data: the count is not recorded; read what is there
    else:
        available = int(counts.get(split, 0))
    if available == 0:
        raise ValueError(f"the data dir {data_dir} has no {split!r} examples (splits: "
                         f"{manifest.get('examples') or sorted(manifest.get('shards', {}))}); "
                         "rebuild it with --eval_fraction > 0, pass another data dir, or choose --split")
    dataset = pretraining_dataset(data_dir, split=split, batch_size=1, mask_prob=mask_prob,
                                  max_predictions=max_predictions, mask_token_prob=mask_token_prob, seed=seed,
                                  repeat=False, shuffle=False, vocab_size=generator.encoder.vocab_size)
    wanted = num_examples or available
    if available is not None:
        wanted = min(wanted, available)
    dataset = dataset.unbatch().take(-1 if wanted is None else wanted).batch(batch_size)

    batch_spec = {key: tf.TensorSpec([None, *spec.shape[1:]], spec.dtype) for key, spec in dataset.element_spec.items()}
    corrupter = ElectraPretrainer(generator, temperature=temperature, name="rtd_corrupter")
    stream = sampling_stream(seed, RTD_SAMPLING)

    @tf.function(input_signature=[batch_spec, tf.TensorSpec([], tf.int64)])
    def corrupt(batch, first_index):
        # Row i of the batch draws with the seed (stream, first_index + i): keyed by the example.
        out = corrupter.corrupt(batch, tf.stack([tf.constant(stream, tf.int64), first_index]),
                                training=False)
        sums = M.generator_sums(out["gen_logits"], batch["masked_ids"], batch["masked_weights"])
        mask = tf.cast(batch["input_mask"], tf.float32)
        sums.update(tokens=tf.reduce_sum(mask), replaced=tf.reduce_sum(tf.cast(out["labels"], tf.float32) * mask))
        return out["corrupted_ids"], out["labels"], sums

    out = Corruption([], generator_name, data_dir, split, seed, generator.encoder.vocab_size,
                     int(manifest["max_seq_length"]))
    total = {}
    for batch in dataset:
        corrupted, labels, sums = corrupt(batch, tf.constant(out.examples, tf.int64))
        out.batches.append({"corrupted_ids": corrupted.numpy(), "input_mask": batch["input_mask"].numpy(),
                            "labels": labels.numpy(), "masked_ids": batch["masked_ids"].numpy(),
                            "masked_weights": batch["masked_weights"].numpy()})
        out.examples += int(labels.shape[0])
        M.add_sums(total, {k: v.numpy() for k, v in sums.items()})
    out.tokens, out.masked, out.replaced = int(total["tokens"]), int(total["gen_count"]), int(total["replaced"])
    out.generator_accuracy = M.summarize(total)["gen_accuracy"]
    log.info("%s", out.describe())
    return out


def score_discriminator(discriminator, corruption):
    """RTD metrics of one discriminator on a :class:`Corruption`.

    Returns:
        dict with ``accuracy`` (over all real tokens), ``precision``,
        ``recall``, ``f1`` (replaced = positive, probability > 0.5) and
        ``auc`` (ROC AUC, to within 1/2000 of the probability range).
    """
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec])
    def logits_of(ids, mask):
        return tf.cast(discriminator({"input_ids": ids, "input_mask": mask}, training=False)["logits"], tf.float32)

    total = {}
    for batch in corruption.batches:
        logits = logits_of(batch["corrupted_ids"], batch["input_mask"])
        sums = M.discriminator_sums(logits, batch["labels"], batch["input_mask"])
        M.add_sums(total, {k: v.numpy() for k, v in sums.items()})
        hist = M.auc_histograms(logits, batch["labels"], batch["input_mask"]).numpy().astype(np.float64)
        total["auc_hist"] = total.get("auc_hist", 0.0) + hist
    summary = M.summarize(total)
    return {name: summary[key] for name, key in _METRIC_NAMES.items()}


def run_evaluation(generator_path, discriminator_paths, data_dir=None, batch_size=32, max_batches=None,
                   num_examples=None, seed=0, split="eval", mask_prob=None, max_predictions=None):
    """Corrupts held-out data once with the generator and scores every discriminator on it.

    Args:
        generator_path: model dir, checkpoint or export holding the fixed generator.
        discriminator_paths: model dirs, checkpoints or exports, scored in this order.
        data_dir: TFRecord data dir; None takes the one recorded in the
            generator's config (``data.path``, or the built-in data dir).
        batch_size: sequences per model call.
        max_batches: read at most ``max_batches * batch_size`` sequences.
        num_examples: read at most this many sequences (None and
            ``max_batches`` None: the whole split).
        seed: masking and sampling seed.
        split: the held-out split.
        mask_prob: fraction of tokens masked; None takes the generator's ``data.mask_prob``.
        max_predictions: cap on the masked positions per sequence; None takes the
            generator's ``data.max_predictions`` when ``mask_prob`` is the
            generator's, else ELECTRA's default cap for ``mask_prob``.

    Returns:
        An :class:`Evaluation`.

    Raises:
        FileNotFoundError: a path or the data dir does not exist.
        ValueError: vocabularies differ between the generator, a discriminator
            and the data; or the data is longer than a discriminator's
            absolute position table; or bad counts.
    """
    if isinstance(discriminator_paths, str):
        discriminator_paths = [discriminator_paths]
    if not discriminator_paths:
        raise ValueError("give at least one discriminator (a model dir, checkpoint or export dir)")
    if max_batches is not None:
        if not isinstance(max_batches, int) or max_batches < 1:
            raise ValueError(f"max_batches must be an integer >= 1 or None, got {max_batches!r}")
        num_examples = min(num_examples or max_batches * batch_size, max_batches * batch_size)
    gen_cfg = find_config(generator_path)
    data_dir = resolve_data_dir(generator_path, gen_cfg, data_dir)
    manifest = load_manifest(data_dir)
    check_vocabulary("generator", generator_path, gen_cfg, manifest, data_dir)
    disc_cfgs = [find_config(path) for path in discriminator_paths]
    for path, cfg in zip(discriminator_paths, disc_cfgs):  # fail before any work is done
        check_vocabulary("discriminator", path, cfg, manifest, data_dir)
        length, model = int(manifest["max_seq_length"]), cfg.model
        if model.absolute_positions and length > model.max_position_embeddings:
            raise ValueError(f"the data's sequences ({length} tokens) are longer than the discriminator {path} "
                             f"can read (model.max_position_embeddings={model.max_position_embeddings})")
    _, generator, _ = load_pretrained(generator_path, which=("generator",), cfg=gen_cfg)
    d = gen_cfg.data
    if mask_prob is None:
        mask_prob = d.mask_prob
    if max_predictions is None and mask_prob == d.mask_prob:
        max_predictions = d.max_predictions  # the generator's cap belongs to its own mask_prob
    corruption = corrupt_held_out(generator, data_dir, seed=seed, batch_size=batch_size, num_examples=num_examples,
                                  split=split, mask_prob=mask_prob, mask_token_prob=d.mask_token_prob,
                                  max_predictions=max_predictions, generator_name=str(generator_path))
    results = []
    for path, cfg in zip(discriminator_paths, disc_cfgs):
        _, _, discriminator = load_pretrained(path, which=("discriminator",), cfg=cfg)
        result = {"discriminator": str(path), **score_discriminator(discriminator, corruption)}
        log.info("%s: %s", path, ", ".join(f"{k} {result[k]:.4f}" for k in RESULT_KEYS[1:]))
        results.append(result)
    return Evaluation(results, corruption)


def evaluate_rtd(generator_path, discriminator_paths, data_dir=None, batch_size=32, max_batches=None,
                 num_examples=None, seed=0, split="eval", mask_prob=None, max_predictions=None) -> List[Dict]:
    """Fair RTD scores of discriminators against one fixed generator.

    The arguments are those of :func:`run_evaluation`.

    Returns:
        One dict per discriminator, in the order given, with the keys
        ``discriminator`` (the path as given), ``accuracy``, ``precision``,
        ``recall``, ``f1`` and ``auc``. Two calls with the same arguments
        return the same numbers.
    """
    return run_evaluation(generator_path, discriminator_paths, data_dir=data_dir, batch_size=batch_size,
                          max_batches=max_batches, num_examples=num_examples, seed=seed, split=split,
                          mask_prob=mask_prob, max_predictions=max_predictions).results


def format_table(results: Sequence[Dict], corruption: Optional[Corruption] = None) -> str:
    """The results as a fixed-width table, preceded by what they were measured on."""
    width = max([len("discriminator")] + [len(r["discriminator"]) for r in results])
    lines = [corruption.describe(), ""] if corruption is not None else []
    lines.append(f"{'discriminator':<{width}}  " + "  ".join(f"{k:>9}" for k in RESULT_KEYS[1:]))
    for r in results:
        lines.append(f"{r['discriminator']:<{width}}  " + "  ".join(f"{r[k]:>9.4f}" for k in RESULT_KEYS[1:]))
    return "\n".join(lines)
