"""Downstream tasks made from installed English text that the built-in corpus does not contain.

The built-in pretraining corpus is the *docstrings* of the standard library and
of installed packages, read with ``ast``. The *comments* of the standard
library's modules (``# ...`` lines, read with ``tokenize``) are a different text
stream of the same domain: nothing of them enters the corpus, so tasks made
from them are held out by construction. The few comments that repeat a
docstring word for word are dropped, and :func:`heldout_tasks` also drops any
example whose text occurs in a given corpus; a test checks that no example
occurs in the built-in corpus.

Tasks (every one has the same ``dev`` split within its family):

* ``topic`` -- single sentence, four classes: which area of the standard library
  a comment block comes from (``internet``, ``concurrency``, ``files``,
  ``devtools``). ``topic_1000`` and ``topic_100`` keep 1,000 and 100 of its
  training examples (low-resource versions).
* ``topic2`` -- single sentence, two classes: ``internet`` (0) or
  ``concurrency`` (1), written in GLUE SST-2's format (``sentence``, ``label``)
  so that ``scripts/finetune.py --task sst2 --data_dir DIR`` reads it.
* ``pair`` -- sentence pair, two classes: do comment blocks A and B (from two
  different files) come from the same area (1) or from two areas (0)?
  ``pair_1000`` keeps 1,000 training pairs.
* ``order`` -- single sentence, two classes, in the spirit of CoLA: is the
  comment as written (1), or has a span of its words been put in reverse order
  (0)? Both classes have the same words, so a bag-of-words model is at chance;
  the task needs knowledge of word order, which pretraining on the corpus can
  give and a few thousand labelled sentences hardly can.

Files go to ``train`` or ``dev`` whole (by a hash of their path), so no dev
example shares a file with a training example. Everything is deterministic
given the Python installation and ``seed``.

Example:

>>> tasks = heldout_tasks()                                     # doctest: +SKIP
>>> task, splits = tasks["topic"]
>>> task.num_labels, len(splits["train"]) > 1000
(4, True)
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import logging
import os
import random
import re
import sysconfig
import tokenize
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from electra_tf.finetune.glue import Task, custom_task
from electra_tf.finetune.readers import Example

__all__ = ["TOPICS", "TASK_NAMES", "CommentBlock", "comment_blocks", "heldout_tasks", "write_task_tsv",
           "normalize_text"]

log = logging.getLogger(__name__)

#: Area -> the top-level standard-library modules or packages whose comments make its class.
TOPICS: Dict[str, Tuple[str, ...]] = {
    "internet": ("email", "http", "urllib", "xmlrpc", "smtplib", "imaplib", "ftplib", "nntplib", "poplib",
                 "mailbox", "wsgiref", "ssl", "socket", "socketserver", "webbrowser", "ipaddress", "html",
                 "cgi", "mimetypes"),
    "concurrency": ("asyncio", "multiprocessing", "concurrent", "threading", "subprocess", "queue",
                    "selectors", "sched", "_threading_local"),
    "files": ("tarfile", "zipfile", "shutil", "ntpath", "posixpath", "os", "pathlib", "gzip", "bz2", "lzma",
              "tempfile", "dbm", "zipimport", "_pyio", "glob", "fnmatch", "fileinput", "filecmp", "genericpath",
              "shelve", "_compression", "stat"),
    "devtools": ("unittest", "doctest", "pdb", "bdb", "inspect", "dataclasses", "typing", "enum", "pydoc",
                 "trace", "profile", "cProfile", "argparse", "optparse", "importlib", "functools", "contextlib",
                 "dis", "ast", "traceback", "pstats", "timeit", "warnings", "abc"),
}
#: The two areas of the binary task ``topic2`` (the most separable pair of areas).
BINARY_AREAS = ("internet", "concurrency")
TASK_NAMES = ("topic", "topic2", "topic_1000", "topic_100", "pair", "pair_1000", "order", "order_1000")
#: The tasks the transfer benchmark runs by default.
BENCHMARK_TASKS = ("topic", "topic2", "topic_1000", "topic_100", "pair", "order")
LOW_RESOURCE = {"topic_1000": ("topic", 1000), "topic_100": ("topic", 100), "pair_1000": ("pair", 1000),
                "order_1000": ("order", 1000)}
#: ``order``: blocks of fewer words are not used; the reversed span is 3 to 6 words long.
ORDER_MIN_WORDS = 6
ORDER_SPAN = (3, 6)

_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "turtledemo", "site-packages", "dist-packages",
              "__pycache__"}
_MIN_WORDS, _MAX_WORDS = 6, 60
_CODE_LIKE = re.compile(r"[={}\[\]<>]|\w\(|^\s*(XXX|TODO|FIXME|-\*-|!|noqa|type:|pragma)", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


class CommentBlock(Tuple[str, str, int, str]):
    """``(area, path, index in file, text)`` of one block of consecutive comment lines."""

    __slots__ = ()

    def __new__(cls, area, path, index, text):
        return super().__new__(cls, (area, path, index, text))

    area = property(lambda self: self[0])
    path = property(lambda self: self[1])
    index = property(lambda self: self[2])
    text = property(lambda self: self[3])


def normalize_text(text: str) -> str:
    """Lower case, single spaces: the form in which held-out text is compared with a corpus."""
    return _SPACE.sub(" ", text).strip().lower()


def _area_of(relpath: str) -> Optional[str]:
    top = relpath.split(os.sep)[0]
    top = top[:-3] if top.endswith(".py") else top
    for area, modules in TOPICS.items():
        if top in modules:
            return area
    return None


def _is_prose(text: str) -> bool:
    words = text.split()
    if not _MIN_WORDS <= len(words) <= _MAX_WORDS or _CODE_LIKE.search(text):
        return False
    letters = sum(ch.isalpha() or ch == " " for ch in text)
    return letters / len(text) > 0.85


def _file_comments(path: str) -> Iterator[str]:
    """Blocks of consecutive full-line comments of one file, each joined into one line of text."""
    with open(path, "rb") as f:
        source = f.read()
    block, last_line = [], -2
    try:
        for tok in tokenize.tokenize(io.BytesIO(source).readline):
            if tok.type != tokenize.COMMENT:
                continue
            line = tok.line.strip()
            if not line.startswith("#"):  # a comment after code on the same line
                continue
            text = tok.string.lstrip("#").strip()
            if tok.start[0] != last_line + 1 and block:
                yield " ".join(block)
                block = []
            if text:
                block.append(text)
            last_line = tok.start[0]
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
        pass
    if block:
        yield " ".join(block)


def _docstring_text(path: str) -> str:
    """Every docstring of one file, joined (empty if the file does not parse)."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read())
    except (SyntaxError, ValueError, UnicodeDecodeError):
        return ""
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                    ast.ClassDef))]
    return "\n".join(doc for doc in (ast.get_docstring(n, clean=True) for n in nodes) if doc)


@functools.lru_cache(maxsize=4)
def comment_blocks(root: Optional[str] = None) -> Tuple[CommentBlock, ...]:
    """Every prose comment block of the standard library's modules in :data:`TOPICS`, in file order.

    A text that occurs more than once (a licence line, a copied comment) is kept
    only where it occurs first, so no text can be in two splits; a comment
    whose text also occurs in a docstring anywhere in the library (some
    comments repeat a docstring of a sibling module word for word) is dropped,
    since docstrings are what the built-in corpus is made of.
    """
    root = root or sysconfig.get_paths()["stdlib"]
    candidates, seen, docstrings = [], set(), []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            docstrings.append(normalize_text(_docstring_text(path)))
            relpath = os.path.relpath(path, root)
            area = _area_of(relpath)
            if area is None:
                continue
            index = 0
            for text in _file_comments(path):
                key = normalize_text(text)
                if _is_prose(text) and key not in seen:
                    seen.add(key)
                    candidates.append(CommentBlock(area, relpath, index, text))
                    index += 1
    all_docstrings = "\n".join(docstrings)
    return tuple(b for b in candidates if normalize_text(b.text) not in all_docstrings)


def _is_dev_file(relpath: str, seed: int, dev_fraction: float) -> bool:
    digest = hashlib.sha256(f"{seed}:{relpath}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2 ** 32 < dev_fraction


def _exclude(blocks: List[CommentBlock], corpus_text: Optional[str]) -> List[CommentBlock]:
    if not corpus_text:
        return blocks
    kept = [b for b in blocks if normalize_text(b.text) not in corpus_text]
    if len(kept) < len(blocks):
        log.info("Held-out tasks: dropped %d comment blocks that occur in the pretraining corpus",
                 len(blocks) - len(kept))
    return kept


def _balanced(blocks: List[CommentBlock], rng: random.Random, ratio: float) -> List[CommentBlock]:
    """At most ``ratio`` times the smallest area's count of blocks from every area, in a seeded order."""
    by_area = {area: [b for b in blocks if b.area == area] for area in TOPICS}
    size = int(ratio * min(len(v) for v in by_area.values()))
    out = []
    for area in TOPICS:
        chosen = list(by_area[area])
        rng.shuffle(chosen)
        out.extend(chosen[:size])
    rng.shuffle(out)
    return out


def _topic_examples(blocks: Sequence[CommentBlock], rng: random.Random, split: str) -> List[Example]:
    """Training data: up to 2x the smallest area per area; dev: balanced, so chance is 1/4."""
    labels = {area: i for i, area in enumerate(TOPICS)}
    chosen = _balanced(list(blocks), rng, 2.0 if split == "train" else 1.0)
    return [Example(b.text, None, labels[b.area]) for b in chosen]


def _binary_examples(blocks: Sequence[CommentBlock], rng: random.Random, split: str) -> List[Example]:
    """``topic2``: the blocks of the two :data:`BINARY_AREAS`, labels 0 and 1; dev balanced."""
    chosen = [b for b in blocks if b.area in BINARY_AREAS]
    by_area = {area: [b for b in chosen if b.area == area] for area in BINARY_AREAS}
    if split != "train":
        for area in BINARY_AREAS:
            rng.shuffle(by_area[area])
        size = min(len(v) for v in by_area.values())
        chosen = [b for area in BINARY_AREAS for b in by_area[area][:size]]
    chosen = list(chosen)
    rng.shuffle(chosen)
    return [Example(b.text, None, BINARY_AREAS.index(b.area)) for b in chosen]


def _pair_examples(blocks: Sequence[CommentBlock], rng: random.Random, split: str) -> List[Example]:
    """Pairs of blocks from two different files: of the same area (label 1) or of two areas (label 0).

    Every block is the first text of one pair; half the pairs are positive.
    """
    by_area: Dict[str, List[CommentBlock]] = {area: [b for b in blocks if b.area == area] for area in TOPICS}
    firsts = list(blocks)
    rng.shuffle(firsts)
    examples = []
    for i, a in enumerate(firsts):
        same = i % 2 == 0
        while True:
            pool = by_area[a.area] if same else blocks
            b = pool[rng.randrange(len(pool))]
            if b.path != a.path and (b.area == a.area) == same:
                break
        examples.append(Example(a.text, b.text, int(same)))
    return examples


def reverse_span(words: Sequence[str], rng: random.Random) -> Optional[List[str]]:
    """``words`` with one span of :data:`ORDER_SPAN` words reversed, or None when every choice keeps the text."""
    low, high = ORDER_SPAN
    for _ in range(8):
        length = rng.randint(low, min(high, len(words)))
        start = rng.randrange(len(words) - length + 1)
        out = list(words[:start]) + list(reversed(words[start:start + length])) + list(words[start + length:])
        if out != list(words):
            return out
    return None


def _order_examples(blocks: Sequence[CommentBlock], rng: random.Random, split: str) -> List[Example]:
    """``order``: each block once, as written (1) or with a span reversed (0), about half each."""
    examples = []
    for b in blocks:
        words = _SPACE.sub(" ", b.text).strip().split(" ")
        if len(words) < ORDER_MIN_WORDS:
            continue
        if rng.random() < 0.5:
            examples.append(Example(" ".join(words), None, 1))
            continue
        changed = reverse_span(words, rng)
        if changed is not None:
            examples.append(Example(" ".join(changed), None, 0))
    rng.shuffle(examples)
    return examples


def heldout_tasks(seed: int = 0, dev_fraction: float = 0.25, corpus_text: Optional[str] = None,
                  names: Iterable[str] = TASK_NAMES, root: Optional[str] = None
                  ) -> Dict[str, Tuple[Task, Dict[str, List[Example]]]]:
    """The held-out tasks: ``{name: (task, {"train": [...], "dev": [...]})}``.

    Args:
        seed: seed of the file split, the class balancing, the negative pairs
            and the low-resource subsets.
        dev_fraction: the fraction of files whose blocks go to ``dev``.
        corpus_text: the pretraining corpus (any case and spacing); examples
            whose text occurs in it are dropped. The built-in corpus contains
            none by construction; this makes sure of it.
        names: which of :data:`TASK_NAMES` to build.
        root: the directory to read instead of the standard library (tests).

    Raises:
        ValueError: an unknown task name, or too little text for a task.
    """
    names = list(names)
    unknown = [n for n in names if n not in TASK_NAMES]
    if unknown:
        raise ValueError(f"unknown held-out task {unknown[0]!r}; accepted: {', '.join(TASK_NAMES)}")
    corpus = normalize_text(corpus_text) if corpus_text else None
    blocks = _exclude(list(comment_blocks(root)), corpus)
    splits = {"train": [b for b in blocks if not _is_dev_file(b.path, seed, dev_fraction)],
              "dev": [b for b in blocks if _is_dev_file(b.path, seed, dev_fraction)]}
    families = {
        "topic": (custom_task("topic", num_labels=len(TOPICS), label_names=tuple(TOPICS)), _topic_examples),
        "topic2": (custom_task("sst2", num_labels=2, label_names=("0", "1")), _binary_examples),
        "pair": (custom_task("pair", text_a="sentence1", text_b="sentence2", num_labels=2,
                             metrics=("accuracy", "f1")), _pair_examples),
        "order": (custom_task("order", num_labels=2, label_names=("0", "1")), _order_examples),
    }
    built = {}
    for family, (task, make) in families.items():
        if not any(n == family or LOW_RESOURCE.get(n, ("",))[0] == family for n in names):
            continue
        built[family] = (task, {split: make(rows, random.Random(f"{seed}:{family}:{split}"), split)
                                for split, rows in splits.items()})
    out = {}
    for name in names:
        family, size = LOW_RESOURCE.get(name, (name, None))
        task, data = built[family]
        train = data["train"]
        if size is not None:
            if len(train) < size:
                raise ValueError(f"held-out task {name} needs {size} training examples, only {len(train)} exist")
            train = random.Random(f"{seed}:{name}").sample(train, size)
        if len(train) < 2 or len(data["dev"]) < 2:
            raise ValueError(f"too little text for held-out task {name}: {len(train)} train / "
                             f"{len(data['dev'])} dev examples")
        named = task if size is None else custom_task(name, task.text_a, task.text_b, num_labels=task.num_labels,
                                                      label_names=task.label_names, metrics=task.metrics)
        out[name] = (named, {"train": train, "dev": data["dev"]})
    return out


def write_task_tsv(task: Task, splits: Dict[str, List[Example]], out_dir: str) -> Dict[str, str]:
    """Writes ``train.tsv`` and ``dev.tsv`` (header: the task's columns) for ``scripts/finetune.py``.

    A single-sentence task with two labels ``0``/``1`` is in GLUE SST-2's
    format; every task reads back with ``--task custom`` and its columns.
    """
    os.makedirs(out_dir, exist_ok=True)
    columns = [c for c in (task.text_a, task.text_b, task.label) if c is not None]
    paths = {}
    for split, examples in splits.items():
        lines = ["\t".join(columns)]
        for ex in examples:
            label = task.label_names[ex.label] if task.label_names else str(ex.label)
            texts = [ex.text_a] + ([ex.text_b] if task.text_b is not None else [])
            lines.append("\t".join([t.replace("\t", " ") for t in texts] + [label]))
        paths[split] = os.path.join(out_dir, f"{split}.tsv")
        tmp = paths[split] + ".partial"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, paths[split])
    return paths
