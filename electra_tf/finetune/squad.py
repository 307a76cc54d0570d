"""SQuAD data and the official SQuAD evaluation, in plain Python.

:func:`read_squad` reads the official JSON (``{"version", "data": [{"title",
"paragraphs": [{"context", "qas": [{"id", "question", "answers": [{"text",
"answer_start"}], "is_impossible"}]}]}]}``) and checks every answer: its
``answer_start`` must point at its text in the context.

The metrics follow the official ``evaluate-v1.1.py`` and ``evaluate-v2.0.py``:
answers are normalised (lower case, punctuation removed, the articles a/an/the
removed, whitespace collapsed); exact match and token F1 take the best over
the gold answers. Version 2 counts an empty prediction as "no answer", scores
it against unanswerable questions, reports ``HasAns_*`` and ``NoAns_*``, and
with the null odds of every question (higher = more likely unanswerable) the
best threshold and its scores (``best_exact``, ``best_f1`` and their
``_thresh``). Values are percentages, as the official scripts print them.

Example:

>>> normalize_answer("The  Eiffel-Tower!")
'eiffeltower'
>>> f1_score("in the park", "park")
1.0
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
import string
from typing import Dict, List, Mapping, Optional, Tuple

__all__ = ["QAExample", "read_squad", "parse_squad", "normalize_answer", "exact_match", "f1_score",
           "squad_scores", "best_threshold"]


@dataclasses.dataclass(frozen=True)
class QAExample:
    """One question on one context: its answers as ``(text, char start)``; none when unanswerable."""

    qid: str
    question: str
    context: str
    answers: Tuple[Tuple[str, int], ...]
    is_impossible: bool = False


def parse_squad(data: Mapping, source: str, version: int) -> List[QAExample]:
    """The questions of a parsed SQuAD JSON object (``source`` names it in errors).

    Raises:
        ValueError: a missing field, an ``answer_start`` whose text is not the answer text there, or (version 1,
            or an answerable question of version 2) a question without an answer, each naming the question id.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("data"), list):
        raise ValueError(f"{source}: not SQuAD JSON (expected an object with a 'data' list of articles)")
    examples, seen = [], set()
    for article in data["data"]:
        for paragraph in article.get("paragraphs", []):
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise ValueError(f"{source}: a paragraph of article {article.get('title')!r} has no 'context'")
            for qa in paragraph.get("qas", []):
                qid = qa.get("id")
                where = f"{source}: question id {qid!r}"
                if qid is None or not isinstance(qa.get("question"), str):
                    raise ValueError(f"{source}: a question without 'id' or 'question' in article "
                                     f"{article.get('title')!r}")
                if qid in seen:
                    raise ValueError(f"{where} appears twice; ids must be unique")
                seen.add(qid)
                impossible = bool(qa.get("is_impossible", False))
                if impossible and version == 1:
                    raise ValueError(f"{where} is marked is_impossible, which SQuAD 1.1 does not have; use "
                                     f"--task squad2 (or a version 2 file with qa_custom)")
                answers = []
                for answer in qa.get("answers", []):
                    text, start = answer.get("text"), answer.get("answer_start")
                    if not isinstance(text, str) or not isinstance(start, int) or not text.strip():
                        raise ValueError(f"{where}: an answer needs a non-empty 'text' and an integer "
                                         f"'answer_start', got {answer!r}")
                    found = context[start:start + len(text)]
                    if found != text:
                        raise ValueError(f"{where}: answer_start {start} does not match the answer text "
                                         f"{text!r}: the context has {found!r} there")
                    answers.append((text, start))
                if not answers and not impossible:
                    raise ValueError(f"{where} has no answer in its context; every SQuAD 1.1 question needs one "
                                     f"(version 2 marks unanswerable questions with \"is_impossible\": true)")
                if impossible:
                    answers = []
                examples.append(QAExample(str(qid), qa["question"], context, tuple(answers), impossible))
    if not examples:
        raise ValueError(f"{source}: no questions")
    return examples


def read_squad(path: str, version: int) -> List[QAExample]:
    """The questions of a SQuAD JSON file (see :func:`parse_squad`)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist (expected a SQuAD JSON file)")
    with open(path, "r", encoding="utf-8") as f:
        try:
            data = json.load(f)
        except ValueError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
    return parse_squad(data, path, version)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles (a, an, the), single spaces: the official normalisation."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCTUATION = set(string.punctuation)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str, version: int = 2) -> float:
    """Token F1 of the normalised answers; version 2 scores an empty side as 1 if both are empty, else 0."""
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if version == 2 and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    same = sum((collections.Counter(pred_tokens) & collections.Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _gold(example: QAExample, version: int) -> List[str]:
    if version == 1:
        return [text for text, _ in example.answers]
    golds = [text for text, _ in example.answers if normalize_answer(text)]
    return golds or [""]


def raw_scores(examples, predictions: Mapping[str, str], version: int):
    """``({qid: exact}, {qid: f1})`` in [0, 1] for every question that has a prediction."""
    exact, f1 = {}, {}
    for ex in examples:
        if ex.qid not in predictions:
            continue
        golds = _gold(ex, version)
        exact[ex.qid] = max(exact_match(predictions[ex.qid], g) for g in golds)
        f1[ex.qid] = max(f1_score(predictions[ex.qid], g, version) for g in golds)
    return exact, f1


def best_threshold(predictions, scores, null_odds, has_answer) -> Tuple[float, float]:
    """``(best score in %, threshold)``: answering only questions whose null odds are at most the threshold.

    As ``find_best_thresh`` of ``evaluate-v2.0.py``: ``predictions`` are the non-null answers, ``scores`` their
    per-question scores, a question predicted null scores 1 if it is unanswerable.
    """
    score = best = float(sum(1 for q in scores if not has_answer[q]))
    threshold = 0.0
    for qid in sorted(null_odds, key=lambda q: null_odds[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            score += scores[qid]
        elif predictions[qid]:
            score -= 1
        if score > best:
            best, threshold = score, null_odds[qid]
    return 100.0 * best / len(scores), threshold


def squad_scores(examples, predictions: Mapping[str, str], version: int,
                 null_odds: Optional[Mapping[str, float]] = None, threshold: float = 0.0) -> Dict[str, float]:
    """The official scores (percentages) of ``predictions`` ``{qid: answer text}``.

    Version 1: ``exact_match`` and ``f1``, over the questions of ``examples`` (a missing prediction scores 0).
    Version 2 leaves questions without a prediction out, as ``evaluate-v2.0.py`` does.
    Version 2: ``exact``, ``f1``, ``total``, ``HasAns_*``/``NoAns_*``; with
    ``null_odds`` the predictions are the non-null answers, a question is
    predicted unanswerable when its odds exceed ``threshold``, and
    ``best_exact``, ``best_exact_thresh``, ``best_f1``, ``best_f1_thresh`` are added.
    """
    exact, f1 = raw_scores(examples, predictions, version)
    if version == 1:
        n = len(examples)
        return {"exact_match": 100.0 * sum(exact.values()) / n, "f1": 100.0 * sum(f1.values()) / n}
    has_answer = {ex.qid: not ex.is_impossible for ex in examples}
    applied_exact, applied_f1 = dict(exact), dict(f1)
    if null_odds is not None:
        for qid in exact:
            if null_odds[qid] > threshold:
                applied_exact[qid] = applied_f1[qid] = float(not has_answer[qid])
    total = len(applied_exact)  # as the official script: questions without a prediction are left out
    out = {"exact": 100.0 * sum(applied_exact.values()) / total, "f1": 100.0 * sum(applied_f1.values()) / total,
           "total": total}
    for name, keep in (("HasAns", True), ("NoAns", False)):
        qids = [q for q in applied_exact if has_answer[q] == keep]
        if qids:
            out[f"{name}_exact"] = 100.0 * sum(applied_exact[q] for q in qids) / len(qids)
            out[f"{name}_f1"] = 100.0 * sum(applied_f1[q] for q in qids) / len(qids)
            out[f"{name}_total"] = len(qids)
    if null_odds is not None:
        out["best_exact"], out["best_exact_thresh"] = best_threshold(predictions, exact, null_odds, has_answer)
        out["best_f1"], out["best_f1_thresh"] = best_threshold(predictions, f1, null_odds, has_answer)
    return out
