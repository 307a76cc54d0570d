"""The built-in transfer benchmark: does pretraining give a better starting point than random weights?

For a pretraining run, :func:`transfer_benchmark` scores random initialisation
(the run's own config, freshly initialised) and every checkpoint of the run on
the held-out tasks of :mod:`electra_tf.finetune.heldout`, two ways:

* **fine-tuning**: the ``scripts/finetune.py`` path (:func:`~electra_tf.finetune.run_search`)
  with one fixed recipe, several seeds, the median of the best dev accuracy;
* **linear probe**: a logistic regression on the frozen encoder's mean-pooled
  top-layer states (and, reported beside it, on the ``[CLS]`` state), cheap and
  low-noise. With it go two measures of how much the states have collapsed:
  the effective rank of the mean-pooled dev states (exp of the entropy of the
  normalised singular values) and their mean pairwise cosine (anisotropy).

Everything is written under ``OUT``: ``tasks/`` (the TSV files), ``random_init/``
(a model dir holding the random initialisation), ``finetune/`` (each search),
``transfer.csv``, ``transfer.png`` and ``transfer.md``. Finished scores are
kept in ``OUT/scores.json`` and not recomputed, so a stopped benchmark continues.

Example:

>>> rows = transfer_benchmark("runs/tiny", "runs/tiny-transfer")   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from typing import Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from electra_tf.config import dump_config
from electra_tf.data.docstrings import builtin_corpus_path
from electra_tf.finetune.features import eval_dataset
from electra_tf.finetune.heldout import BENCHMARK_TASKS, heldout_tasks, write_task_tsv
from electra_tf.finetune.runner import FinetuneConfig
from electra_tf.finetune.search import SearchSpace, encode_task, run_search, shrink_for_model
from electra_tf.models import build_models
from electra_tf.pretrained import find_config, load_pretrained, recorded_data_dir
from electra_tf.research.ledger import write_csv

__all__ = ["TransferRecipe", "run_checkpoints", "write_random_init", "layer_states", "effective_rank",
           "mean_cosine", "probe_scores", "transfer_benchmark", "format_table"]

log = logging.getLogger(__name__)

RANDOM_INIT = "random_init"


@dataclasses.dataclass(frozen=True)
class TransferRecipe:
    """The fixed fine-tuning recipe and the probe's settings of one benchmark."""

    learning_rate: float = 3e-3
    epochs: float = 10.0
    batch_size: int = 32
    layer_decay: float = 1.0
    scale_rates: bool = True
    pooling: str = "cls"
    probe_epochs: float = 0.0
    shrink: Optional[bool] = None  # None: as scripts/finetune.py decides (on for models narrower than 256)
    seeds: Tuple[int, ...] = (0, 1)
    max_seq_length: int = 64
    probe_c: float = 1.0
    probe_max_train: int = 4000


def run_checkpoints(model_dir: str) -> List[Tuple[int, str]]:
    """``[(step, prefix)]`` of every checkpoint kept in ``model_dir/checkpoints``, by step."""
    ckpt_dir = os.path.join(model_dir, "checkpoints")
    found = []
    if os.path.isdir(ckpt_dir):
        for name in os.listdir(ckpt_dir):
            match = re.fullmatch(r"ckpt-(\d+)\.index", name)
            if match:
                found.append((int(match.group(1)), os.path.join(ckpt_dir, name[: -len(".index")])))
    if not found:
        raise FileNotFoundError(f"{model_dir} holds no checkpoints (expected {ckpt_dir}/ckpt-N.index, as "
                                "scripts/pretrain.py writes)")
    return sorted(found)


def write_random_init(cfg, out_dir: str, seed: Optional[int] = None) -> str:
    """A model dir holding ``cfg``'s models freshly initialised (seeded): the benchmark's baseline.

    Returns the checkpoint prefix ``out_dir/checkpoints/ckpt-0``.
    """
    seed = cfg.train.seed if seed is None else seed
    prefix = os.path.join(out_dir, "checkpoints", "ckpt-0")
    if tf.io.gfile.exists(prefix + ".index"):
        return prefix
    keras.utils.set_random_seed(seed)
    generator, discriminator = build_models(cfg)
    os.makedirs(out_dir, exist_ok=True)
    dump_config(cfg, os.path.join(out_dir, "config.yaml"))
    tf.train.Checkpoint(generator=generator, discriminator=discriminator).write(prefix)
    return prefix


# --------------------------------------------------------------------------- the frozen encoder
def layer_states(encoder, features) -> List[tf.Tensor]:
    """The hidden states after the embeddings and after every block: ``num_layers + 1`` tensors [B, S, H]."""
    ids = features["input_ids"]
    mask = features["input_mask"]
    x = encoder.embeddings(ids, features.get("token_type_ids"), training=False)
    bias = encoder.relative_bias(x) if encoder.relative_bias is not None else None
    states = [x]
    for block in encoder.blocks:
        x = block(x, attention_bias=bias, padding_mask=mask, training=False)
        states.append(x)
    return states


def _features(encoder, split, batch_size=64) -> Dict[str, np.ndarray]:
    """Mean-pooled and ``[CLS]`` states of every layer for the examples of ``split``."""
    mean, cls = None, None
    step = tf.function(lambda f: layer_states(encoder, f))
    for batch in eval_dataset(split, batch_size):
        keep = batch["weight"].numpy() > 0
        mask = tf.cast(batch["input_mask"], tf.float32)[:, :, None]
        states = step({k: batch[k] for k in ("input_ids", "input_mask", "token_type_ids")})
        pooled = [(tf.reduce_sum(s * mask, 1) / tf.reduce_sum(mask, 1)).numpy()[keep] for s in states]
        first = [s[:, 0].numpy()[keep] for s in states]
        mean = pooled if mean is None else [np.concatenate([a, b]) for a, b in zip(mean, pooled)]
        cls = first if cls is None else [np.concatenate([a, b]) for a, b in zip(cls, first)]
    return {"mean": np.stack(mean), "cls": np.stack(cls)}  # [layers + 1, N, H]


def effective_rank(x: np.ndarray) -> float:
    """exp(entropy of the normalised singular values) of the centred rows of ``x`` [N, H]."""
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    p = s / max(s.sum(), 1e-12)
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def mean_cosine(x: np.ndarray) -> float:
    """The mean cosine similarity between distinct rows of ``x`` (1.0: all point the same way)."""
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = len(unit)
    total = unit.sum(0)
    return float((total @ total - n) / max(n * (n - 1), 1))


def _probe(train_x, train_y, dev_x, dev_y, c) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit(scaler.transform(train_x), train_y)
    return float((clf.predict(scaler.transform(dev_x)) == dev_y).mean())


def _pair_features(feats, split_a, split_b):
    """A pair's features: [u, v, |u - v|, u * v] of its two texts' states."""
    u, v = feats[split_a], feats[split_b]
    return np.concatenate([u, v, np.abs(u - v), u * v], axis=-1)


def probe_scores(pretrained: str, tasks, vocab: str, recipe: TransferRecipe, all_layers: bool = False) -> Dict:
    """Linear-probe dev accuracy (and collapse measures) of ``pretrained``'s frozen discriminator.

    Returns ``{task: {"probe_mean": acc, "probe_cls": acc, "rank": r, "cosine": c}}``;
    with ``all_layers`` also ``probe_mean_l{i}``, ``rank_l{i}`` and ``cosine_l{i}``
    for every layer (0 = embeddings).
    """
    cfg, _, disc = load_pretrained(pretrained, which=("discriminator",))
    encoder = disc.encoder
    out = {}
    for name, (task, splits) in tasks.items():
        row = {}
        if task.is_pair:
            # Each text alone, then the pair's features from both.
            singles = {}
            for split, examples in splits.items():
                for side in ("a", "b"):
                    texts = [dataclasses.replace(e, text_a=e.text_a if side == "a" else e.text_b, text_b=None)
                             for e in examples]
                    enc = encode_task(dataclasses.replace(task, text_b=None), {split: texts}, vocab,
                                      recipe.max_seq_length, cfg.model.vocab_size)[split]
                    singles[(split, side)] = _features(encoder, enc)
            feats = {kind: {s: _pair_features({k: singles[(s, k)][kind] for k in "ab"}, "a", "b")
                            for s in splits} for kind in ("mean", "cls")}
            labels = {s: np.array([e.label for e in splits[s]]) for s in splits}
            dev_states = singles[("dev", "a")]["mean"]
        else:
            enc = encode_task(task, splits, vocab, recipe.max_seq_length, cfg.model.vocab_size)
            both = {s: _features(encoder, enc[s]) for s in splits}
            feats = {kind: {s: both[s][kind] for s in splits} for kind in ("mean", "cls")}
            labels = {s: np.asarray(enc[s].labels) for s in splits}
            dev_states = both["dev"]["mean"]
        n = min(len(labels["train"]), recipe.probe_max_train)
        layers = range(len(dev_states)) if all_layers else [len(dev_states) - 1]
        for layer in layers:
            suffix = "" if layer == len(dev_states) - 1 and not all_layers else f"_l{layer}"
            for kind in ("mean", "cls") if suffix == "" else ("mean",):
                row[f"probe_{kind}{suffix}"] = _probe(feats[kind]["train"][layer][:n], labels["train"][:n],
                                                      feats[kind]["dev"][layer], labels["dev"], recipe.probe_c)
            row[f"rank{suffix}"] = effective_rank(dev_states[layer])
            row[f"cosine{suffix}"] = mean_cosine(dev_states[layer])
        if all_layers:  # the top layer also under the plain names
            top = len(dev_states) - 1
            row.update({"probe_mean": row[f"probe_mean_l{top}"], "rank": row[f"rank_l{top}"],
                        "cosine": row[f"cosine_l{top}"]})
            row["probe_cls"] = _probe(feats["cls"]["train"][top][:n], labels["train"][:n], feats["cls"]["dev"][top],
                                      labels["dev"], recipe.probe_c)
        out[name] = row
    del encoder, disc
    keras.backend.clear_session()
    return out


def finetune_score(pretrained: str, task, data_dir: str, out_dir: str, vocab: str, recipe: TransferRecipe) -> Dict:
    """Median over ``recipe.seeds`` of the best dev accuracy, fine-tuning with ``recipe`` (finetune.py's path)."""
    space = SearchSpace(learning_rates=(recipe.learning_rate,), epochs=(recipe.epochs,),
                        batch_sizes=(recipe.batch_size,), layer_decays=(recipe.layer_decay,))
    shrink = recipe.shrink if recipe.shrink is not None else shrink_for_model(find_config(pretrained))
    base = FinetuneConfig(scale_rates=recipe.scale_rates, pooling=recipe.pooling, probe_epochs=recipe.probe_epochs,
                          shrink=shrink)
    results = run_search(task, pretrained, out_dir, data_dir=data_dir, space=space, seeds=recipe.seeds, base=base,
                         max_seq_length=recipe.max_seq_length, vocab=vocab, progress=False)
    return {"finetune": results[task.main_metric],
            "finetune_seeds": [results["best_seed_values"][str(s)] for s in recipe.seeds]}


# --------------------------------------------------------------------------- the benchmark
def _load_scores(path) -> Dict:
    if os.path.exists(path):
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    return {}


def _save_scores(path, scores):
    tmp = path + ".partial"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(scores, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _corpus_text(cfg) -> Optional[str]:
    """The built-in corpus's text when the run was trained on it (to check the tasks are held out)."""
    if cfg.data.path:
        return None
    path = builtin_corpus_path(cfg.data.builtin_dir, cfg.data.builtin_corpus_mb)
    if not os.path.exists(path):
        return None
    with open(path, "r", encoding="utf-8") as f:
        return f.read()


def transfer_benchmark(model_dir: str, out_dir: str, tasks: Sequence[str] = BENCHMARK_TASKS,
                       recipe: TransferRecipe = TransferRecipe(), finetune: bool = True, probe: bool = True,
                       steps: Optional[Sequence[int]] = None, all_layers: bool = False) -> List[Dict]:
    """Scores random init and every checkpoint of ``model_dir``; writes CSV, PNG and markdown under ``out_dir``.

    Args:
        model_dir: a pretraining model dir (``config.yaml`` and ``checkpoints/``).
        out_dir: where everything goes (reused: finished scores are kept).
        tasks: which held-out tasks (default :data:`~electra_tf.finetune.heldout.BENCHMARK_TASKS`).
        recipe: the fine-tuning recipe and probe settings.
        finetune: run the fine-tuning measure.
        probe: run the linear-probe measure.
        steps: only these checkpoint steps (default all); 0 is random init.
        all_layers: probe every layer, not only the top one.

    Returns:
        One row per (starting point, task): ``step``, ``task``, ``finetune``,
        ``probe_mean``, ``probe_cls``, ``rank``, ``cosine``, ...
    """
    start = time.perf_counter()
    cfg = find_config(model_dir)
    vocab = os.path.join(recorded_data_dir(cfg), "vocab.model")
    if not os.path.exists(vocab):
        raise FileNotFoundError(f"the run's vocabulary {vocab} does not exist (the data dir the run was trained on)")
    os.makedirs(out_dir, exist_ok=True)
    built = heldout_tasks(seed=0, corpus_text=_corpus_text(cfg), names=tasks)
    task_dirs = {}
    for name, (task, splits) in built.items():
        task_dirs[name] = os.path.join(out_dir, "tasks", name)
        write_task_tsv(task, splits, task_dirs[name])
    points = [(0, write_random_init(cfg, os.path.join(out_dir, RANDOM_INIT)))] + run_checkpoints(model_dir)
    if steps is not None:
        points = [p for p in points if p[0] in set(steps)]
    scores_path = os.path.join(out_dir, "scores.json")
    scores = _load_scores(scores_path)
    identity = {"model_dir": os.path.abspath(model_dir), "recipe": dataclasses.asdict(recipe)}
    if scores.get("identity") not in (None, json.loads(json.dumps(identity))):
        raise ValueError(f"{out_dir} holds a transfer benchmark of another run or recipe "
                         f"({scores['identity']}); use another output dir")
    scores["identity"] = identity
    rows = []
    for step, pretrained in points:
        label = "random init" if step == 0 else f"step {step}"
        key = str(step)
        entry = scores.setdefault("points", {}).setdefault(key, {})
        if probe and not all(("probe_mean" in entry.get(t, {})) for t in built):
            log.info("%s: linear probes", label)
            for name, values in probe_scores(pretrained, built, vocab, recipe, all_layers).items():
                entry.setdefault(name, {}).update(values)
            _save_scores(scores_path, scores)
        if finetune:
            for name, (task, _) in built.items():
                if "finetune" in entry.get(name, {}):
                    continue
                log.info("%s: fine-tuning on %s", label, name)
                run_dir = os.path.join(out_dir, "finetune", f"step{step}", name)
                entry.setdefault(name, {}).update(
                    finetune_score(pretrained, task, task_dirs[name], run_dir, vocab, recipe))
                _save_scores(scores_path, scores)
        for name in built:
            rows.append({"step": step, "task": name, **entry.get(name, {})})
    columns = ["step", "task", "finetune", "finetune_seeds", "probe_mean", "probe_cls", "rank", "cosine"]
    columns += sorted({k for r in rows for k in r} - set(columns))
    write_csv(rows, os.path.join(out_dir, "transfer.csv"), columns=columns)
    table = format_table(rows)
    with open(os.path.join(out_dir, "transfer.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    plot_transfer(rows, os.path.join(out_dir, "transfer.png"), title=os.path.basename(model_dir.rstrip("/")))
    log.info("Transfer benchmark of %s done in %.0f s", model_dir, time.perf_counter() - start)
    return rows


def format_table(rows: List[Dict]) -> str:
    """A markdown table: one line per starting point, fine-tuning / probe accuracy per task (x100)."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    steps = list(dict.fromkeys(r["step"] for r in rows))
    by = {(r["step"], r["task"]): r for r in rows}

    def cell(row, key):
        value = (row or {}).get(key)
        return "—" if value is None else f"{100 * value:.1f}"

    lines = ["| starting point | " + " | ".join(f"{t} ft / probe" for t in tasks) + " | rank (topic) |",
             "|---|" + "---:|" * (len(tasks) + 1)]
    for step in steps:
        name = "random init" if step == 0 else f"step {step}"
        cells = [f"{cell(by.get((step, t)), 'finetune')} / {cell(by.get((step, t)), 'probe_mean')}" for t in tasks]
        rank = (by.get((step, tasks[0])) or {}).get("rank")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'—' if rank is None else f'{rank:.1f}'} |")
    return "\n".join(lines)


def plot_transfer(rows: List[Dict], out: str, title: Optional[str] = None) -> str:
    """Accuracy against pretraining steps (random init at step 0), one panel per task."""
    from electra_tf.research.plots import plot_panels

    panels = []
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = sorted((r for r in rows if r["task"] == task), key=lambda r: r["step"])
        series = {}
        for key, label in (("finetune", "fine-tuning"), ("probe_mean", "linear probe (mean-pooled)"),
                           ("probe_cls", "linear probe ([CLS])")):
            points = [(r["step"], 100 * r[key]) for r in mine if r.get(key) is not None]
            if points:
                series[label] = points
        panels.append({"title": task, "xlabel": "pretraining step (0 = random init)", "ylabel": "dev accuracy",
                       "series": series})
    return plot_panels(panels, out, title=title, ncols=min(3, len(panels)))
