"""Question answering features: context windows with subword positions, and n-best decoding back to text.

A question (at most ``max_query_length`` pieces) and a window of its context
become ``[CLS] question [SEP] window [SEP]``, token type 0 up to the first
``[SEP]`` and 1 after. A context longer than one window is covered by windows
starting every ``doc_stride`` pieces (BERT's sliding windows). Every context
piece keeps its character span in the context (from the tokenizer's byte
offsets into the original text: SentencePiece's pieces, or tensorflow-text's
``FastBertTokenizer`` for a WordPiece ``vocab.txt``, whose offsets point at the
original characters also when it lower-cases and strips accents; leading
whitespace dropped), so an answer's characters map to start and end
positions, and a predicted span maps back to the exact characters of the
context. A window that does not contain the whole answer, and every window of
an unanswerable question, is labelled with the ``[CLS]`` position (0, 0).

Decoding takes the ``n_best_size`` best starts and ends of every window, keeps
spans inside the context, at most ``max_answer_length`` pieces long and
starting where the window gives the piece its most context, and answers with
the best span over all windows (score: start + end logit). The null score of
a question is the lowest ``[CLS]`` start + end logit over its windows; its
null odds are that minus the best span's score.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Dict, List, Tuple

import numpy as np

from electra_tf.data.packing import specials_of
from electra_tf.finetune.features import EncodedSplit

__all__ = ["QAWindowing", "QASplit", "context_pieces", "encode_qa", "decode_predictions"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class QAWindowing:
    """How questions and contexts are cut into windows, and how answers are decoded."""

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best_size: int = 20

    def __post_init__(self):
        for key in ("doc_stride", "max_query_length", "max_answer_length", "n_best_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)!r}")
        if self.max_seq_length < self.max_query_length + 4:
            raise ValueError(f"max_seq_length ({self.max_seq_length}) must exceed max_query_length "
                             f"({self.max_query_length}) + 3 special tokens")


@dataclasses.dataclass
class QASplit(EncodedSplit):
    """Windows (``labels`` [N, 2]: start and end) and what maps them back to their questions' contexts.

    ``feature_example[i]`` is the example of window ``i``, ``feature_offset[i]``
    the position of its first context piece, ``feature_doc_start[i]`` the index
    of that piece in the context, ``feature_max_context[i]`` which of its
    pieces have their most context in this window. ``spans[e]`` holds the
    character span of every context piece of example ``e``.
    """

    examples: list = dataclasses.field(default_factory=list)
    spans: List[List[Tuple[int, int]]] = dataclasses.field(default_factory=list)
    feature_example: List[int] = dataclasses.field(default_factory=list)
    feature_offset: List[int] = dataclasses.field(default_factory=list)
    feature_doc_start: List[int] = dataclasses.field(default_factory=list)
    feature_max_context: List[np.ndarray] = dataclasses.field(default_factory=list)
    unmapped: int = 0


def _protos(sp, texts):
    try:
        return sp.encode(texts, out_type="immutable_proto")
    except (ValueError, TypeError):  # sentencepiece >= 0.2.1 names it return_type="proto"
        return sp.encode(texts, return_type="proto")


def _byte_pieces(sp, texts) -> List[List[Tuple[int, int, int]]]:
    """Per text: ``(id, start byte, end byte)`` of each piece, the bytes of the text's UTF-8 encoding."""
    if getattr(sp, "kind", None) == "wordpiece":
        import tensorflow as tf

        if not texts:
            return []
        ids, starts, ends = sp.tokenizer().tokenize_with_offsets(tf.constant(texts, tf.string))
        return [list(zip(*row)) for row in zip(ids.to_list(), starts.to_list(), ends.to_list())]
    protos = _protos(getattr(sp, "processor", sp), texts)
    return [[(piece.id, piece.begin, piece.end) for piece in proto.pieces] for proto in protos]


def context_pieces(sp, contexts) -> List[Tuple[List[int], List[Tuple[int, int]]]]:
    """Per context: its piece ids and each piece's ``(start, end)`` characters, leading whitespace excluded.

    ``sp`` is a vocabulary of :mod:`electra_tf.data.vocabulary` or a bare ``SentencePieceProcessor``.
    """
    out = []
    contexts = list(contexts)
    for text, pieces in zip(contexts, _byte_pieces(sp, contexts)):
        byte_to_char = np.zeros(len(text.encode("utf-8")) + 1, np.int64)
        position = 0
        for index, ch in enumerate(text):
            width = len(ch.encode("utf-8"))
            byte_to_char[position:position + width] = index
            position += width
        byte_to_char[position] = len(text)
        ids, spans = [], []
        for piece_id, begin, end_byte in pieces:
            start, end = int(byte_to_char[begin]), int(byte_to_char[end_byte])
            while start < end and text[start].isspace():
                start += 1
            ids.append(int(piece_id))
            spans.append((start, end))
        out.append((ids, spans))
    return out


def _answer_positions(spans, start_char, end_char):
    """First and last piece overlapping ``[start_char, end_char)``, or None."""
    first = next((i for i, (s, e) in enumerate(spans) if e > start_char and e > s), None)
    last = next((i for i in range(len(spans) - 1, -1, -1) if spans[i][0] < end_char and spans[i][1] > spans[i][0]),
                None)
    if first is None or last is None or last < first:
        return None
    return first, last


def _max_context(windows, index, position):
    """Whether window ``index`` gives piece ``position`` its most context (BERT's ``_check_is_max_context``)."""
    best, best_index = None, None
    for i, (start, length) in enumerate(windows):
        end = start + length - 1
        if not start <= position <= end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best is None or score > best:
            best, best_index = score, i
    return best_index == index


def encode_qa(sp, examples, windowing: QAWindowing, training: bool) -> QASplit:
    """The windows of every example; ``training`` labels each with its first answer (else the labels are 0).

    ``sp`` is a vocabulary of :mod:`electra_tf.data.vocabulary` (its special
    ids are used) or a bare ``SentencePieceProcessor`` (ids 0-4).
    """
    w = windowing
    specials = specials_of(sp)
    questions = sp.encode([ex.question for ex in examples])
    unique = list(dict.fromkeys(ex.context for ex in examples))  # questions share their paragraph
    contexts = dict(zip(unique, context_pieces(sp, unique)))
    split = QASplit([], [], np.zeros((0, 2), np.int32), specials=specials)
    labels = []
    for e, (ex, question) in enumerate(zip(examples, questions)):
        doc_ids, spans = contexts[ex.context]
        question = question[:w.max_query_length]
        split.examples.append(ex)
        split.spans.append(spans)
        answer = None
        if training and ex.answers:
            text, start = ex.answers[0]
            answer = _answer_positions(spans, start, start + len(text))
            if answer is None:
                split.unmapped += 1
        room = w.max_seq_length - len(question) - 3
        windows, start = [], 0
        while True:
            length = min(len(doc_ids) - start, room)
            windows.append((start, length))
            if start + length >= len(doc_ids):
                break
            start += min(length, w.doc_stride)
        for index, (start, length) in enumerate(windows):
            ids = ([specials.cls] + question + [specials.sep] + (doc_ids[start:start + length] or [specials.unk])
                   + [specials.sep])
            offset = len(question) + 2
            split.input_ids.append(ids)
            split.token_type_ids.append([0] * offset + [1] * (len(ids) - offset))
            split.feature_example.append(e)
            split.feature_offset.append(offset)
            split.feature_doc_start.append(start)
            split.feature_max_context.append(  # a NumPy array: SQuAD has ~10^5 windows of ~300 pieces
                np.fromiter((_max_context(windows, index, start + i) for i in range(length)), bool, length))
            label = (0, 0)
            if answer is not None and start <= answer[0] and answer[1] < start + length:
                label = (answer[0] - start + offset, answer[1] - start + offset)
            labels.append(label)
    split.labels = np.asarray(labels, np.int32).reshape(-1, 2)
    if split.unmapped:
        log.warning("%d answers could not be mapped to pieces (trained as unanswerable)", split.unmapped)
    log.info("%d questions -> %d windows of at most %d tokens", len(examples), len(split), w.max_seq_length)
    return split


def decode_predictions(split: QASplit, start_logits, end_logits, max_answer_length: int = 30,
                       n_best_size: int = 20, answerable_logits=None):
    """``({qid: best non-null answer text}, {qid: null odds}, {qid: best span score})``.

    ``start_logits`` and ``end_logits`` hold one array per window of ``split``,
    in order. ``answerable_logits`` (one per window, from the answerability
    head) lower a question's null odds by their highest value over its windows.
    """
    best: Dict[int, Tuple[float, str]] = {}
    null: Dict[int, float] = {}
    answerable: Dict[int, float] = {}
    for f, (starts, ends) in enumerate(zip(start_logits, end_logits)):
        e = split.feature_example[f]
        if answerable_logits is not None:
            answerable[e] = max(answerable.get(e, -np.inf), float(answerable_logits[f]))
        offset, doc_start = split.feature_offset[f], split.feature_doc_start[f]
        max_context = split.feature_max_context[f]
        length = len(max_context)
        null_score = float(starts[0] + ends[0])
        null[e] = min(null.get(e, null_score), null_score)
        n = n_best_size
        top_starts = np.argsort(-starts[offset:offset + length], kind="stable")[:n]
        top_ends = np.argsort(-ends[offset:offset + length], kind="stable")[:n]
        for s in top_starts:
            if not max_context[s]:
                continue
            for t in top_ends:
                if t < s or t - s + 1 > max_answer_length:
                    continue
                score = float(starts[offset + s] + ends[offset + t])
                if e not in best or score > best[e][0]:
                    spans = split.spans[e]
                    char_start, char_end = spans[doc_start + s][0], spans[doc_start + t][1]
                    best[e] = (score, split.examples[e].context[char_start:char_end])
    texts, odds, scores = {}, {}, {}
    for e, ex in enumerate(split.examples):
        score, text = best.get(e, (-1e9, ""))
        texts[ex.qid] = text
        scores[ex.qid] = score
        odds[ex.qid] = null.get(e, 0.0) - score - answerable.get(e, 0.0)
    return texts, odds, scores
