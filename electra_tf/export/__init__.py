"""Export: SavedModels for serving and a ``.keras`` encoder for Keras users.

:func:`export_models` writes ``MODEL_DIR/export/``::

    discriminator/                 SavedModel: encode (serving_default), detect, encode_text, detect_text
    generator/                     SavedModel: fill_mask (serving_default), fill_mask_text
    discriminator_encoder.keras    the discriminator's encoder (float32, own word-embedding table)
    vocab.model | vocab.txt        the vocabulary: SentencePiece model or WordPiece vocab.txt (also an
                                   asset inside each SavedModel)
    config.yaml                    the resolved pretraining config

The whole directory is written under a temporary name next to it
(``.export.tmp-PID-*``, removed at the next export if its writer was killed),
renamed to a versioned ``.versions/export.<time>`` when complete, and ``export``
is a symbolic link to it, replaced atomically: a reader of ``export/discriminator``
sees the old export or the new one, never half of one and never none. Loading a
SavedModel with text signatures needs ``import tensorflow_text`` first (it
registers the SentencePiece and WordPiece ops); loading the ``.keras`` file needs
``import electra_tf.networks`` first (it registers the layers).

Example:

>>> paths = export_model_dir("runs/tiny")            # what scripts/export.py does
>>> import tensorflow_text  # noqa: F401
>>> detect = tf.saved_model.load(paths["discriminator"]).signatures["detect_text"]
>>> detect(sentences=tf.constant(["The cat sat on the mat."]))["replaced_probability"]
"""

import glob
import logging
import os
import shutil
import time
import uuid

import tensorflow as tf

from electra_tf.export.modules import DiscriminatorModule, GeneratorModule
from electra_tf.export.text import TextTokenizer
from electra_tf.layers.disentangled_embedding import DisentangledEmbedding
from electra_tf.networks.encoder import Encoder

log = logging.getLogger(__name__)

EXPORT_DIR = "export"
KERAS_ENCODER = "discriminator_encoder.keras"
VOCAB_FILE = "vocab.model"
WORDPIECE_VOCAB_FILE = "vocab.txt"
VERSIONS_DIR = ".versions"  # export.<time> dirs; MODEL_DIR/export links to the current one

__all__ = ["export_models", "export_model_dir", "standalone_encoder", "find_vocab_model", "DiscriminatorModule",
           "GeneratorModule", "TextTokenizer", "EXPORT_DIR", "KERAS_ENCODER", "VOCAB_FILE"]


def standalone_encoder(discriminator):
    """A float32 :class:`~electra_tf.networks.Encoder` equal to the discriminator's, owning all its weights.

    A shared (``shared``) or disentangled (``gdes``) word embedding is folded
    into the encoder's own table (for GDES: shared table + delta), so the
    result serializes on its own with ``encoder.save("x.keras")``.

    Args:
        discriminator: a built :class:`~electra_tf.models.Discriminator`.

    Returns:
        A built ``Encoder`` whose outputs equal ``discriminator.encoder``'s
        (up to the rounding of a mixed-precision compute dtype: the copy computes in float32).
    """
    source = discriminator.encoder
    config = {**source.untied_config(), "dtype": "float32", "name": "encoder"}
    encoder = Encoder.from_config(config)
    encoder.build()
    source_table = source.embeddings.word_embedding
    if isinstance(source_table, DisentangledEmbedding):
        table = tf.convert_to_tensor(source_table.shared.embeddings) + tf.convert_to_tensor(source_table.delta)
    else:
        table = tf.convert_to_tensor(source_table.embeddings)
    target_table = encoder.embeddings.word_embedding.embeddings
    target_table.assign(tf.cast(table, target_table.dtype))
    skip = [id(w) for w in source_table.weights]
    sources = [w for w in source.weights if id(w) not in skip]
    targets = [w for w in encoder.weights if w is not target_table]
    if len(sources) != len(targets):
        raise ValueError(f"cannot copy the discriminator encoder: {len(sources)} weights besides the word "
                         f"embedding, but a fresh Encoder of the same config has {len(targets)}")
    for src, dst in zip(sources, targets):
        if tuple(src.shape) != tuple(dst.shape):
            raise ValueError(f"cannot copy {src.path} (shape {tuple(src.shape)}) into {dst.path} "
                             f"(shape {tuple(dst.shape)})")
        dst.assign(tf.cast(src, dst.dtype))
    return encoder


def _text_length(discriminator, cfg, max_seq_length):
    encoder = discriminator.encoder
    length = max_seq_length or (cfg.data.max_seq_length if cfg is not None else encoder.max_position_embeddings)
    if encoder.absolute_positions and length > encoder.max_position_embeddings:
        raise ValueError(f"max_seq_length must be at most model.max_position_embeddings "
                         f"({encoder.max_position_embeddings}) with absolute positions, got {length}")
    return int(length)


def _stale_tmp_dirs(model_dir):
    """``.export.tmp-PID-*`` dirs (and ``.export.link-PID-*`` links) whose writer is gone (killed midway)."""
    from electra_tf.paths import process_alive

    stale = []
    for path in glob.glob(os.path.join(model_dir, f".{EXPORT_DIR}.tmp-*")) + glob.glob(
            os.path.join(model_dir, f".{EXPORT_DIR}.link-*")):
        pid = os.path.basename(path).split("-", 2)[1] if "-" in os.path.basename(path) else ""
        if not pid.isdigit() or int(pid) == os.getpid() or not process_alive(int(pid)):
            stale.append(path)
    return stale


def _publish(new, model_dir):
    """Makes the complete dir ``new`` the export, atomically: a reader of ``export/...`` sees the old one or the new.

    ``export`` is a symbolic link to a versioned dir ``VERSIONS_DIR/export.<time>``;
    the link is replaced by ``rename``, which never leaves the name missing. The
    version before is kept (a reader may be loading it); older ones are removed.
    An ``export`` that is still a plain dir (written by an earlier version of
    this code, or copied without links) is moved to a versioned name first.
    """
    target = os.path.join(model_dir, EXPORT_DIR)
    versions_dir = os.path.join(model_dir, VERSIONS_DIR)
    os.makedirs(versions_dir, exist_ok=True)
    version = f"{EXPORT_DIR}.{time.time_ns():020d}"
    os.replace(new, os.path.join(versions_dir, version))
    link = os.path.join(model_dir, f".{EXPORT_DIR}.link-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.symlink(os.path.join(VERSIONS_DIR, version), link)
    if os.path.isdir(target) and not os.path.islink(target):
        os.replace(target, os.path.join(versions_dir, f"{EXPORT_DIR}.{time.time_ns() - 1:020d}"))
    os.replace(link, target)
    for old in sorted(glob.glob(os.path.join(versions_dir, f"{EXPORT_DIR}.*")))[:-2]:
        shutil.rmtree(old, ignore_errors=True)


def export_models(model_dir, generator, discriminator, cfg=None, vocab_model=None, top_k=5, max_seq_length=None):
    """Writes ``model_dir/export/`` (see the module docstring); returns the paths written.

    Args:
        model_dir: the run's directory.
        generator, discriminator: the trained Keras models.
        cfg: the resolved config, stored as ``config.yaml`` (needed by
            :func:`electra_tf.pretrained.load_pretrained`).
        vocab_model: the vocabulary (SentencePiece ``.model`` or WordPiece
            ``vocab.txt``); None exports the id signatures only.
        top_k: candidates per masked position in ``fill_mask``.
        max_seq_length: truncation length of the text signatures; None takes
            ``cfg.data.max_seq_length``.

    Returns:
        dict of paths: ``export``, ``discriminator``, ``generator``,
        ``keras_encoder`` and, when written, ``vocab_model`` and ``config``.

    Raises:
        ValueError: the vocabulary's size differs from the models', or a bad
            ``top_k`` / ``max_seq_length``.
    """
    target = os.path.join(model_dir, EXPORT_DIR)
    for stale in _stale_tmp_dirs(model_dir):
        log.warning("removing %s, left by an export that did not complete", stale)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = os.path.join(model_dir, f".{EXPORT_DIR}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp)  # not mkdtemp: the export should get the usual permissions, not 0700
    try:
        tokenizer = None
        if vocab_model:
            tokenizer = TextTokenizer(vocab_model, _text_length(discriminator, cfg, max_seq_length))
            model_vocab = discriminator.encoder.vocab_size
            if tokenizer.vocab_size != model_vocab:
                raise ValueError(f"the vocabulary {vocab_model} has {tokenizer.vocab_size} pieces but the models have "
                                 f"vocab_size {model_vocab}; pass the vocabulary the models were trained with")
        else:
            log.warning("no vocabulary model given: exporting without the text signatures")
        disc = DiscriminatorModule(discriminator, tokenizer)
        tf.saved_model.save(disc, os.path.join(tmp, "discriminator"), signatures=disc.signatures())
        gen = GeneratorModule(generator, tokenizer, top_k=top_k)
        tf.saved_model.save(gen, os.path.join(tmp, "generator"), signatures=gen.signatures())
        standalone_encoder(discriminator).save(os.path.join(tmp, KERAS_ENCODER))
        written = ["discriminator", "generator", KERAS_ENCODER]
        if vocab_model:
            vocab_name = WORDPIECE_VOCAB_FILE if tokenizer.kind == "wordpiece" else VOCAB_FILE
            shutil.copyfile(vocab_model, os.path.join(tmp, vocab_name))
            written.append(vocab_name)
        if cfg is not None:
            from electra_tf.config import dump_config

            dump_config(cfg, os.path.join(tmp, "config.yaml"))
            written.append("config.yaml")
        _publish(tmp, model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s to %s", ", ".join(written), target)
    keys = {"discriminator": "discriminator", "generator": "generator", KERAS_ENCODER: "keras_encoder",
            VOCAB_FILE: "vocab_model", WORDPIECE_VOCAB_FILE: "vocab_model", "config.yaml": "config"}
    return {"export": target, **{keys[name]: os.path.join(target, name) for name in written}}


def vocab_candidates(model_dir, cfg):
    """Where :func:`find_vocab_model` looks, in order."""
    from electra_tf.data.tfrecords import vocab_path
    from electra_tf.pretrained import recorded_data_dir

    export = os.path.join(model_dir, EXPORT_DIR)
    return [os.path.join(export, VOCAB_FILE), os.path.join(export, WORDPIECE_VOCAB_FILE),
            os.path.join(model_dir, WORDPIECE_VOCAB_FILE), vocab_path(recorded_data_dir(cfg))]


def find_vocab_model(model_dir, cfg):
    """The vocabulary of a run.

    In order: ``MODEL_DIR/export/vocab.model`` or ``vocab.txt``,
    ``MODEL_DIR/vocab.txt`` (a model dir converted from google-research/electra),
    and the vocabulary of its recorded data dir (``vocab.model``, ``vocab.txt``,
    or the original's data's ``vocab.txt``).

    Returns:
        A path, or None when none exists.
    """
    for path in vocab_candidates(model_dir, cfg):
        if os.path.isfile(path):
            return path
    return None


def export_model_dir(model_dir, vocab_model=None, top_k=5, max_seq_length=None, checkpoint=None):
    """Exports a run from its latest checkpoint (what ``scripts/export.py`` does).

    Args:
        model_dir: a model dir written by ``scripts/pretrain.py``.
        vocab_model: the vocabulary (``.model`` or ``vocab.txt``); None looks for it with
            :func:`find_vocab_model`.
        top_k: candidates per masked position in ``fill_mask``.
        max_seq_length: truncation length of the text signatures (default: the run's).
        checkpoint: a checkpoint prefix to export instead of the latest.

    Returns:
        The paths written (see :func:`export_models`).

    Raises:
        FileNotFoundError: no config, checkpoint or vocabulary was found (the
            message says where it looked).
    """
    from electra_tf.pretrained import find_config, load_pretrained

    cfg = find_config(model_dir)
    vocab_model = vocab_model or find_vocab_model(model_dir, cfg)
    if vocab_model is None:
        raise FileNotFoundError(f"no vocabulary found for {model_dir}: looked for "
                                f"{', '.join(vocab_candidates(model_dir, cfg))}; pass --vocab PATH.model or vocab.txt")
    if not os.path.isfile(vocab_model):
        raise FileNotFoundError(f"vocabulary model {vocab_model} does not exist")
    cfg, generator, discriminator = load_pretrained(checkpoint or model_dir, cfg=cfg)
    return export_models(model_dir, generator, discriminator, cfg, vocab_model=vocab_model, top_k=top_k,
                         max_seq_length=max_seq_length)
