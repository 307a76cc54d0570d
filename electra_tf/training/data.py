"""The pretraining input of a config: which data dir, its vocabulary size, and its batches."""

import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.data.builtin import ensure_builtin_data
from electra_tf.data.manifest import check_manifest, check_vocab_file, load_manifest
from electra_tf.data.tfrecords import pretraining_dataset


def resolve_data(cfg: ElectraConfig):
    """Returns ``(cfg with vocab size resolved, data_dir, manifest)``; builds the built-in data when unset.

    This is the one step of a run that may write data (the built-in corpus,
    vocabulary and TFRecords under ``data.builtin_dir``, once).
    """
    data_dir = cfg.data.path
    if not data_dir:
        if cfg.model.vocab_size == "auto":
            raise ValueError("model.vocab_size must be a number when data.path is unset "
                             "(the built-in corpus is built with that many pieces)")
        data_dir = ensure_builtin_data(cfg.data.builtin_dir, cfg.model.vocab_size, cfg.data.max_seq_length,
                                       corpus_mb=cfg.data.builtin_corpus_mb, eval_fraction=cfg.data.eval_fraction,
                                       seed=cfg.train.seed)
    cfg, manifest = check_data(cfg, data_dir)
    return cfg, data_dir, manifest


def check_data(cfg: ElectraConfig, data_dir: str):
    """Reads (never writes) a data dir's manifest: ``(cfg with vocab size resolved, manifest)``.

    Raises:
        DataError: the manifest disagrees with the config (vocabulary size,
            sequence length) or the vocabulary file is missing or altered.
    """
    manifest = load_manifest(data_dir)
    wanted_vocab = None if cfg.model.vocab_size == "auto" else cfg.model.vocab_size
    check_manifest(manifest, wanted_vocab, cfg.data.max_seq_length, data_dir)
    check_vocab_file(data_dir, manifest)
    return cfg.with_vocab_size(manifest["vocab_size"]), manifest


def pretraining_input(cfg: ElectraConfig, data_dir: str, split: str = "train", batch_size=None, repeat=True,
                      shuffle=True, input_context=None) -> tf.data.Dataset:
    """The masked batches of ``split`` as the config says (``batch_size`` defaults to ``train.batch_size``)."""
    d = cfg.data
    return pretraining_dataset(
        data_dir, split=split, batch_size=batch_size or cfg.train.batch_size, max_seq_length=d.max_seq_length,
        mask_prob=d.mask_prob, max_predictions=d.max_predictions, mask_token_prob=d.mask_token_prob,
        seed=cfg.train.seed, shuffle_buffer=d.shuffle_buffer, repeat=repeat, shuffle=shuffle,
        input_context=input_context, masking=d.masking)
