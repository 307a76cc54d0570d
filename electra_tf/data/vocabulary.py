"""One interface over the two kinds of vocabulary: SentencePiece ``.model`` and WordPiece ``vocab.txt``.

Both expose ``kind``, ``path``, ``size``, ``specials``
(:class:`~electra_tf.data.vocab.SpecialIds`), ``encode(lines)`` (ids
without special tokens), ``word_start_table()`` and ``id_to_token(i)``. The
kind is told by the file: a name ending in ``.txt`` is WordPiece, anything
else a SentencePiece model.

Example:

>>> vocab = load_vocabulary("models/electra_small/vocab.txt")
>>> vocab.kind, vocab.specials.cls
('wordpiece', 101)
>>> load_vocabulary("tfrecords/builtin-4mb-v4096-s64/vocab.model").specials.cls
2
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import sentencepiece as spm

from electra_tf.data.vocab import SENTENCEPIECE_SPECIALS, load_sentencepiece, word_start_table
from electra_tf.data.wordpiece import WordPieceVocab, load_wordpiece

__all__ = ["SentencePieceVocab", "WordPieceVocab", "Vocabulary", "load_vocabulary", "vocab_kind", "KINDS",
           "vocab_file_name", "vocabulary_fields"]

KINDS = ("sentencepiece", "wordpiece")


class SentencePieceVocab:
    """A SentencePiece model of this project (specials at 0-4) behind the common interface.

    ``processor`` is the ``sentencepiece.SentencePieceProcessor``.
    """

    kind = "sentencepiece"
    specials = SENTENCEPIECE_SPECIALS
    lower_case = None

    def __init__(self, path: str, processor: spm.SentencePieceProcessor):
        self.path = path
        self.processor = processor

    @property
    def size(self) -> int:
        return self.processor.get_piece_size()

    def encode(self, lines: Sequence[str], num_threads: int = 1) -> List[List[int]]:
        return self.processor.encode(list(lines), num_threads=num_threads) if lines else []

    def word_start_table(self) -> List[bool]:
        return word_start_table(self.processor)

    def id_to_token(self, index: int) -> str:
        return self.processor.id_to_piece(index)


Vocabulary = Union[SentencePieceVocab, WordPieceVocab]


def vocab_kind(path: str) -> str:
    """``wordpiece`` for a ``.txt`` file, else ``sentencepiece``."""
    return "wordpiece" if str(path).endswith(".txt") else "sentencepiece"


def vocab_file_name(kind: str) -> str:
    """The name a data dir or an export gives its copy of the vocabulary: ``vocab.model`` or ``vocab.txt``."""
    return "vocab.txt" if kind == "wordpiece" else "vocab.model"


def load_vocabulary(path: str, expected_vocab_size: Optional[int] = None,
                    lower_case: Optional[bool] = None) -> Vocabulary:
    """Loads either kind, checking its special tokens (and size).

    Args:
        path: a SentencePiece ``.model`` or a WordPiece ``vocab.txt``.
        expected_vocab_size: if given, the vocabulary must have exactly this many entries.
        lower_case: WordPiece only: None decides from the vocabulary; refused for SentencePiece.

    Raises:
        electra_tf.data.vocab.VocabError: see :func:`load_sentencepiece` and :func:`load_wordpiece`.
        ValueError: ``lower_case`` given for a SentencePiece model.
    """
    if vocab_kind(path) == "wordpiece":
        return load_wordpiece(path, expected_vocab_size, lower_case=lower_case)
    if lower_case is not None:
        raise ValueError(f"lower_case applies to WordPiece vocab.txt files only; {path} is a SentencePiece model "
                         "(its normalization is part of the model)")
    return SentencePieceVocab(path, load_sentencepiece(path, expected_vocab_size))


def vocabulary_fields(vocab: Vocabulary) -> Dict[str, Any]:
    """A data manifest's record of a vocabulary: ``vocab_kind``, ``special_ids`` and (WordPiece) ``lower_case``.

    ``vocab_kind`` and ``special_ids`` tell the reader which ids are ``[PAD]``,
    ``[CLS]``, ``[SEP]`` and ``[MASK]``; a manifest without them (written
    before they were recorded) means SentencePiece with ids 0-4.
    """
    fields = {"vocab_kind": vocab.kind, "special_ids": vocab.specials.as_dict()}
    if vocab.kind == "wordpiece":
        fields["lower_case"] = vocab.lower_case
    return fields
