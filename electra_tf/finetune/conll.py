"""CoNLL-style tagging files and the CoNLL evaluation script's chunk F1, in plain Python.

A CoNLL file holds one token per line, its fields separated by whitespace
(CoNLL-2000 chunking: ``word POS chunk``), and a blank line between
sentences; ``-DOCSTART-`` lines (CoNLL-2003) are skipped. Every line of a
file must have as many fields as its first token line.

:func:`chunk_scores` computes precision, recall and F1 over chunks exactly as
``conlleval`` (the CoNLL-2000 shared task's Perl script) does: it reads IOB1,
IOB2 (``B-``/``I-``) and IOE tags with the script's own chunk start and end
rules (those of the CoNLL-2000 ``conlleval``, which has none for ``S-``), so
an ``I-NP`` after ``O`` opens a chunk, and a chunk is correct only when both
its boundaries and its type match.

Example:

>>> chunk_scores([["B-NP", "I-NP", "O", "B-VP"]], [["B-NP", "I-NP", "O", "B-NP"]])
{'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'accuracy': 0.75}
"""

from __future__ import annotations

import dataclasses
import os
from typing import List, Sequence, Tuple

__all__ = ["Sentence", "read_conll", "chunk_scores", "split_tag"]


@dataclasses.dataclass(frozen=True)
class Sentence:
    """The words of one sentence, their tags, and where the sentence starts (``file:line``)."""

    words: Tuple[str, ...]
    tags: Tuple[str, ...]
    where: str


def read_conll(path: str, token_column: int = 0, tag_column: int = -1) -> List[Sentence]:
    """The sentences of a CoNLL-style file.

    Args:
        path: the file.
        token_column: 0-based field index of the word.
        tag_column: 0-based field index of the tag (negative counts from the end: -1 is the last field).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a line whose number of fields differs from the file's first token line, or that has too few
            fields for the columns asked for (naming file and line), or a file without sentences.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist (expected a CoNLL-style file: one token per line, its tag "
                                f"in a column, a blank line between sentences)")
    sentences, words, tags, start = [], [], [], None
    expected, first_line = None, None

    def flush():
        if words:
            sentences.append(Sentence(tuple(words), tuple(tags), f"{path}:{start}"))
        words.clear()
        tags.clear()

    with open(path, "r", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                flush()
                continue
            if fields[0] == "-DOCSTART-":
                flush()
                continue
            if expected is None:
                expected, first_line = len(fields), number
                for name, column in (("token_column", token_column), ("tag_column", tag_column)):
                    if not -expected <= column < expected:
                        raise ValueError(f"{path}:{number}: {expected} columns, too few for {name} {column}")
            if len(fields) != expected:
                raise ValueError(f"{path}:{number}: {len(fields)} columns, expected {expected} (as in line "
                                 f"{first_line}); every token line needs the same columns: {line.rstrip()!r}")
            if not words:
                start = number
            words.append(fields[token_column])
            tags.append(fields[tag_column])
    flush()
    if not sentences:
        raise ValueError(f"{path}: no sentences (expected one token per line with its tag)")
    return sentences


def split_tag(tag: str) -> Tuple[str, str]:
    """``("B", "NP")`` from ``B-NP``; a tag without ``-`` (``O``) is its own prefix with type ``""``."""
    prefix, dash, kind = tag.partition("-")
    return (prefix, kind) if dash else (tag, "")


def _end_of_chunk(prev_tag, tag, prev_type, kind):
    ends = {("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"), ("E", "E"), ("E", "I"), ("E", "O")}
    if (prev_tag, tag) in ends or prev_tag in ("[", "]"):
        return True
    return prev_tag not in ("O", ".") and prev_type != kind


def _start_of_chunk(prev_tag, tag, prev_type, kind):
    starts = {("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"), ("E", "E"), ("E", "I"), ("O", "E")}
    if (prev_tag, tag) in starts or tag in ("[", "]"):
        return True
    return tag not in ("O", ".") and prev_type != kind


def chunk_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """conlleval's overall ``precision``, ``recall``, ``f1`` (fractions, not percentages) and token ``accuracy``.

    ``gold`` and ``predicted`` hold one tag list per sentence, of equal lengths.
    A sentence boundary ends every open chunk, as the blank line does for the script.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    correct_chunks = found_gold = found_guessed = correct_tags = tokens = 0
    in_correct = False
    last_gold, last_guess, last_gold_type, last_guess_type = "O", "O", "", ""
    for index, (gold_tags, guess_tags) in enumerate(zip(gold, predicted)):
        if len(gold_tags) != len(guess_tags):
            raise ValueError(f"sentence {index}: {len(gold_tags)} gold tags but {len(guess_tags)} predicted")
        # The blank line after each sentence is an "O" that ends chunks and is not counted as a token.
        for position, (g, p) in enumerate(list(zip(gold_tags, guess_tags)) + [("O", "O")]):
            boundary = position == len(gold_tags)
            g_tag, g_type = split_tag(g)
            p_tag, p_type = split_tag(p)
            if in_correct:
                gold_end = _end_of_chunk(last_gold, g_tag, last_gold_type, g_type)
                guess_end = _end_of_chunk(last_guess, p_tag, last_guess_type, p_type)
                if gold_end and guess_end and last_guess_type == last_gold_type:
                    in_correct = False
                    correct_chunks += 1
                elif gold_end != guess_end or p_type != g_type:
                    in_correct = False
            gold_start = _start_of_chunk(last_gold, g_tag, last_gold_type, g_type)
            guess_start = _start_of_chunk(last_guess, p_tag, last_guess_type, p_type)
            if gold_start and guess_start and p_type == g_type:
                in_correct = True
            found_gold += gold_start
            found_guessed += guess_start
            if not boundary:
                correct_tags += g_tag == p_tag and g_type == p_type
                tokens += 1
            last_gold, last_guess, last_gold_type, last_guess_type = g_tag, p_tag, g_type, p_type
    if in_correct:
        correct_chunks += 1
    precision = correct_chunks / found_guessed if found_guessed else 0.0
    recall = correct_chunks / found_gold if found_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "accuracy": correct_tags / tokens if tokens else 0.0}
