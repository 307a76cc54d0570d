"""SentencePiece vocabularies with ELECTRA's special tokens at fixed ids.

Every vocabulary this project trains or reads has::

    0 [PAD]   1 [UNK]   2 [CLS]   3 [SEP]   4 [MASK]

``[PAD]`` and ``[UNK]`` are SentencePiece's pad and unknown pieces; ``[CLS]``,
``[SEP]`` and ``[MASK]`` are control symbols (never produced from text, so a
literal "[MASK]" in a corpus stays ordinary text); BOS and EOS are disabled.

Example:

>>> path = train_vocab(["corpus.txt"], vocab_size=4096, output_prefix="tfrecords/vocab")
>>> sp = load_sentencepiece(path, expected_vocab_size=4096)
>>> sp.piece_to_id("[MASK]")
4
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import sentencepiece as spm

from electra_tf.data.corpus import check_sources, iter_documents

__all__ = [
    "PAD_ID", "UNK_ID", "CLS_ID", "SEP_ID", "MASK_ID", "SPECIAL_TOKENS", "MODEL_TYPES", "SpecialIds",
    "SENTENCEPIECE_SPECIALS",
    "VocabError", "train_vocab", "load_sentencepiece", "check_special_ids", "file_sha256", "word_start_table",
]

logger = logging.getLogger(__name__)

PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = 0, 1, 2, 3, 4
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MODEL_TYPES = ("unigram", "bpe")
_TOO_HIGH = re.compile(r"<=\s*(\d+)")


class VocabError(ValueError):
    """A vocabulary cannot be trained as asked, or a model file is not of the expected layout."""


@dataclass(frozen=True)
class SpecialIds:
    """The ids of ``[PAD] [UNK] [CLS] [SEP] [MASK]`` in one vocabulary.

    SentencePiece vocabularies of this project have them at 0-4
    (:data:`SENTENCEPIECE_SPECIALS`); a WordPiece ``vocab.txt`` has them
    wherever its lines put them (BERT's: 0, 100, 101, 102, 103).
    """

    pad: int
    unk: int
    cls: int
    sep: int
    mask: int

    @property
    def never_masked(self) -> tuple:
        """``(pad, cls, sep)``: the ids masking never chooses, padding first."""
        return (self.pad, self.cls, self.sep)

    def as_dict(self) -> Dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]], where: str = "the manifest") -> "SpecialIds":
        """From ``{"pad": 0, ...}``; None (a manifest written before special ids were recorded) gives 0-4."""
        if values is None:
            return SENTENCEPIECE_SPECIALS
        names = ("pad", "unk", "cls", "sep", "mask")
        missing = [name for name in names if not isinstance(values.get(name), int)]
        if missing:
            raise VocabError(f"{where}: special_ids must give an integer id for each of {', '.join(names)}; "
                             f"missing or not an integer: {', '.join(missing)} (got {dict(values)!r})")
        return cls(**{name: int(values[name]) for name in names})


SENTENCEPIECE_SPECIALS = SpecialIds(PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID)


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sample_sentences(sources: Sequence[str], max_sentences: int, seed: int) -> List[str]:
    """A seeded reservoir sample of at most ``max_sentences`` lines over all sources."""
    rng = random.Random(seed)
    sample: List[str] = []
    seen = 0
    for source in sources:
        for doc in iter_documents(source):
            for line in doc:
                seen += 1
                if len(sample) < max_sentences:
                    sample.append(line)
                else:
                    slot = rng.randrange(seen)
                    if slot < max_sentences:
                        sample[slot] = line
    logger.info("Vocabulary sample: %d of %d lines", len(sample), seen)
    return sample


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def train_vocab(
    sources: Sequence[str],
    vocab_size: int,
    output_prefix: str,
    model_type: str = "unigram",
    max_sentences: int = 1_000_000,
    seed: int = 0,
    character_coverage: float = 0.9995,
    hard_vocab_limit: bool = True,
    num_threads: int = 2,
) -> str:
    """Trains a SentencePiece model with the fixed special ids.

    Lines are drawn by a seeded reservoir sample of at most ``max_sentences``
    over all sources (this also caps the training time). The model appears as
    ``PREFIX.model`` only once complete (written under a temporary name, then
    renamed); ``PREFIX.vocab`` (piece and score per line) is written first.

    Args:
        sources: text files, ``.jsonl`` files, ``tfds:NAME[:SPLIT]`` or ``builtin``.
        vocab_size: number of pieces including the five special tokens.
        output_prefix: path prefix of the outputs; its directory is created.
        model_type: ``unigram`` (default) or ``bpe``.
        max_sentences: cap on the number of lines SentencePiece sees.
        seed: seed of the line sample.
        character_coverage: fraction of characters covered by the vocabulary.
        hard_vocab_limit: when True (default) the model has exactly
            ``vocab_size`` pieces or training fails with :class:`VocabError`;
            when False, a small corpus may give fewer pieces.
        num_threads: SentencePiece training threads.

    Returns:
        The path of ``PREFIX.model``.

    Raises:
        VocabError: a bad argument, or a corpus too small for ``vocab_size``.
        electra_tf.data.corpus.CorpusError: a source is missing, empty or not UTF-8.
    """
    if model_type not in MODEL_TYPES:
        raise VocabError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    if not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS) + 2:
        raise VocabError(f"vocab_size must be an integer > {len(SPECIAL_TOKENS) + 2}, got {vocab_size!r}")
    if max_sentences < 1:
        raise VocabError(f"max_sentences must be >= 1, got {max_sentences!r}")
    sources = check_sources(sources)
    sentences = _sample_sentences(sources, max_sentences, seed)
    directory = os.path.dirname(os.path.abspath(output_prefix))
    os.makedirs(directory, exist_ok=True)
    spm.set_random_generator_seed(seed)
    writer = io.BytesIO()
    logger.info("Training a %s SentencePiece model of %d pieces from %s", model_type, vocab_size, ", ".join(sources))
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=writer,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            hard_vocab_limit=hard_vocab_limit,
            pad_id=PAD_ID, pad_piece=SPECIAL_TOKENS[PAD_ID],
            unk_id=UNK_ID, unk_piece=SPECIAL_TOKENS[UNK_ID],
            bos_id=-1, eos_id=-1,
            control_symbols=list(SPECIAL_TOKENS[CLS_ID:]),
            input_sentence_size=0,
            num_threads=num_threads,
            minloglevel=2,
        )
    except RuntimeError as exc:
        limit = _TOO_HIGH.search(str(exc))
        if limit:
            raise VocabError(
                f"the corpus ({', '.join(sources)}) is too small for vocab_size={vocab_size}: SentencePiece "
                f"can make at most {limit.group(1)} pieces from it; use a smaller vocab_size or more text") from None
        raise VocabError(f"SentencePiece training failed: {exc}") from exc
    model = writer.getvalue()
    sp = spm.SentencePieceProcessor(model_proto=model)
    check_special_ids(sp, output_prefix + ".model")
    vocab_lines = "".join(f"{sp.id_to_piece(i)}\t{sp.get_score(i):g}\n" for i in range(sp.get_piece_size()))
    _write_atomic(output_prefix + ".vocab", vocab_lines.encode("utf-8"))
    _write_atomic(output_prefix + ".model", model)
    logger.info("Wrote %s.model (%d pieces)", output_prefix, sp.get_piece_size())
    return output_prefix + ".model"


def check_special_ids(sp: spm.SentencePieceProcessor, name: str) -> None:
    """Raises :class:`VocabError` unless the five special tokens sit at ids 0-4."""
    for expected, token in enumerate(SPECIAL_TOKENS):
        if sp.get_piece_size() <= expected or sp.id_to_piece(expected) != token:
            found = sp.id_to_piece(expected) if sp.get_piece_size() > expected else None
            raise VocabError(f"{name}: id {expected} must be {token}, found {found!r}; "
                             "train the vocabulary with scripts/build_vocab.py")


def load_sentencepiece(path: str, expected_vocab_size: Optional[int] = None) -> spm.SentencePieceProcessor:
    """Loads a SentencePiece model and checks its special ids (and size).

    Args:
        path: a ``.model`` file.
        expected_vocab_size: if given, the model must have exactly this many pieces.

    Raises:
        VocabError: the file is missing or unreadable, the special ids are not
            at 0-4, or the size differs from ``expected_vocab_size``.
    """
    if not os.path.isfile(path):
        raise VocabError(f"vocabulary model {path} does not exist; build one with scripts/build_vocab.py")
    sp = spm.SentencePieceProcessor()
    try:
        sp.load(path)
    except (OSError, RuntimeError) as exc:
        raise VocabError(f"{path} is not a SentencePiece model: {exc}") from None
    check_special_ids(sp, path)
    if expected_vocab_size is not None and sp.get_piece_size() != expected_vocab_size:
        raise VocabError(f"vocabulary {path} has {sp.get_piece_size()} pieces but the config asks for "
                         f"model.vocab_size={expected_vocab_size}; set model.vocab_size to "
                         f"{sp.get_piece_size()} (or auto) or rebuild the vocabulary")
    return sp


WORD_START = "\u2581"


def word_start_table(sp: spm.SentencePieceProcessor) -> List[bool]:
    """For each id, whether its piece begins a word (whole-word and span masking).

    A SentencePiece piece begins a word when it starts with ``▁`` (the marker
    of a preceding space); unknown, control and byte pieces count as word
    starts, so they are never glued to the word before them. (For a WordPiece
    vocabulary see :meth:`electra_tf.data.wordpiece.WordPieceVocab.word_start_table`:
    every token not starting with ``##`` begins a word.)
    """
    return [sp.id_to_piece(i).startswith(WORD_START) or sp.is_unknown(i) or sp.is_control(i) or sp.is_byte(i)
            for i in range(sp.get_piece_size())]
