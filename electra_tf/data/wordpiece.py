"""WordPiece vocabularies (BERT's and google-research/electra's ``vocab.txt``).

A ``vocab.txt`` holds one token per line; a token's id is its line number
(from 0). The special tokens ``[PAD] [UNK] [CLS] [SEP] [MASK]`` may be on any
line (BERT's uncased vocabulary has them at 0, 100, 101, 102, 103); their ids
are read from the file, and a file that lacks one of them is refused.

Text is tokenized with tensorflow-text's ``FastBertTokenizer`` (BERT's basic
tokenization: whitespace and punctuation split, then greedy longest-match
WordPiece with ``##`` continuations), the same op the exported text
signatures run, so data, fine-tuning and serving split text alike.

Lower-casing follows the vocabulary: when no ordinary token (not a
``[bracketed]`` special) contains an uppercase letter, the vocabulary is
uncased and text is lower-cased with accents stripped (BERT's
``do_lower_case``); otherwise text is kept as is. ``lower_case=`` overrides
the choice.

Example:

>>> vocab = load_wordpiece("models/electra_small/vocab.txt")
>>> vocab.specials.mask, vocab.lower_case
(103, True)
>>> vocab.encode(["The cat sat."])
[[1996, 4937, 2938, 1012]]
"""

from __future__ import annotations

import logging
import os
from typing import List, Optional, Sequence

from electra_tf.data.vocab import SpecialIds, VocabError

__all__ = ["WordPieceVocab", "load_wordpiece", "read_tokens", "is_uncased", "SPECIAL_TOKENS", "CONTINUATION"]

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
CONTINUATION = "##"


def read_tokens(path: str) -> List[str]:
    """The tokens of a ``vocab.txt``, one per line, in id order.

    Raises:
        VocabError: the file is missing, not UTF-8, or empty.
    """
    if not os.path.isfile(path):
        raise VocabError(f"WordPiece vocabulary {path} does not exist")
    try:
        with open(path, "r", encoding="utf-8") as f:
            tokens = [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as exc:
        raise VocabError(f"{path} is not a UTF-8 text file ({exc}); a WordPiece vocab.txt has one token a line") \
            from None
    if not tokens:
        raise VocabError(f"WordPiece vocabulary {path} is empty")
    return tokens


def _is_special(token: str) -> bool:
    return len(token) > 2 and token.startswith("[") and token.endswith("]")


def is_uncased(tokens: Sequence[str]) -> bool:
    """True when no token other than a ``[bracketed]`` special has an uppercase letter."""
    return not any(ch != ch.lower() for token in tokens if not _is_special(token) for ch in token)


class WordPieceVocab:
    """A ``vocab.txt`` with its special ids and its casing.

    Args:
        path: the ``vocab.txt`` (kept for messages and copies).
        tokens: its tokens in id order.
        lower_case: lower-case text before WordPiece; None decides from the tokens.

    Raises:
        VocabError: a special token is missing or listed twice.
    """

    kind = "wordpiece"

    def __init__(self, path: str, tokens: Sequence[str], lower_case: Optional[bool] = None):
        self.path = path
        self.tokens = list(tokens)
        ids = {}
        for name, token in SPECIAL_TOKENS.items():
            where = [i for i, t in enumerate(self.tokens) if t == token]
            if not where:
                raise VocabError(f"WordPiece vocabulary {path} has no {token} line; it needs all of "
                                 f"{', '.join(SPECIAL_TOKENS.values())} (BERT's vocab.txt has them at 0, 100-103)")
            if len(where) > 1:
                raise VocabError(f"WordPiece vocabulary {path} lists {token} {len(where)} times (lines "
                                 f"{', '.join(str(i + 1) for i in where[:5])}); each special token must be on one line")
            ids[name] = where[0]
        first = {}
        for i, token in enumerate(self.tokens):  # tensorflow-text refuses repeats without naming file or line
            if token in first:
                raise VocabError(f"WordPiece vocabulary {path} lists {token!r} twice (lines {first[token] + 1} and "
                                 f"{i + 1}); every token must be on exactly one line")
            first[token] = i
        self.specials = SpecialIds(**ids)
        self.inferred_lower_case = is_uncased(self.tokens)
        self.lower_case = self.inferred_lower_case if lower_case is None else bool(lower_case)
        self._tokenizer = None

    @property
    def size(self) -> int:
        return len(self.tokens)

    def describe_casing(self) -> str:
        """A sentence for the log: how text is cased for this vocabulary and why."""
        found = "no uppercase letters" if self.inferred_lower_case else "uppercase letters"
        if self.lower_case == self.inferred_lower_case:
            return (f"{self.path} has {found} in its tokens: text is "
                    f"{'lower-cased (accents stripped)' if self.lower_case else 'kept as cased'} before WordPiece")
        return (f"{self.path} has {found} in its tokens, but lower_case={self.lower_case} was asked: text is "
                f"{'lower-cased (accents stripped)' if self.lower_case else 'kept as cased'} before WordPiece")

    def word_start_table(self) -> List[bool]:
        """For each id, whether its token begins a word: every token but the ``##`` continuations."""
        return [not token.startswith(CONTINUATION) for token in self.tokens]

    def tokenizer(self):
        """tensorflow-text's ``FastBertTokenizer`` for this vocabulary (int32 ids; built once)."""
        if self._tokenizer is None:
            import tensorflow as tf
            import tensorflow_text as tf_text

            self._tokenizer = tf_text.FastBertTokenizer(
                vocab=self.tokens, token_out_type=tf.int32, unknown_token=SPECIAL_TOKENS["unk"],
                lower_case_nfd_strip_accents=self.lower_case, support_detokenization=True)
        return self._tokenizer

    def encode(self, lines: Sequence[str], num_threads: int = 1) -> List[List[int]]:
        """Token ids of each line, without special tokens (``num_threads`` is accepted and ignored)."""
        del num_threads
        if not lines:
            return []
        import tensorflow as tf

        return self.tokenizer().tokenize(tf.constant(list(lines), tf.string)).to_list()

    def id_to_token(self, index: int) -> str:
        return self.tokens[index]


def load_wordpiece(path: str, expected_vocab_size: Optional[int] = None,
                   lower_case: Optional[bool] = None) -> WordPieceVocab:
    """Reads a ``vocab.txt`` and checks its special tokens (and size).

    Args:
        path: the ``vocab.txt``.
        expected_vocab_size: if given, the file must have exactly this many lines.
        lower_case: None decides from the tokens (see the module docstring).

    Raises:
        VocabError: the file is missing or unreadable, lacks a special token,
            or its size differs from ``expected_vocab_size``.
    """
    vocab = WordPieceVocab(path, read_tokens(path), lower_case=lower_case)
    if expected_vocab_size is not None and vocab.size != int(expected_vocab_size):
        raise VocabError(f"vocabulary {path} has {vocab.size} tokens but the config asks for "
                         f"model.vocab_size={expected_vocab_size}; set model.vocab_size to {vocab.size} (or auto)")
    return vocab
