"""The fine-tuning search: every hyperparameter setting x every seed, medians, the best dev checkpoint.

The default space is the paper's (Table 3 of the DecoupledOptim paper): peak
learning rates {5e-5, 1e-4, 3e-4} with AdaMax, 3 epochs, batch 32, weight decay
0.01, warm-up 10%, gradient clip 1.0, dropout 0.1. :data:`PAPER_SPACE` is its
whole grid (epochs, batch sizes, weight decays and warm-ups too).

A setting's score is the median over seeds of its dev metric; the best setting
is the one with the highest median. ``OUT/best/`` keeps the checkpoint of the
single best run (objects named ``classifier``) and ``best.json`` describing it.

Example:

>>> results = run_search(get_task("sst2"), "runs/tiny", "runs/sst2", data_dir="glue_data/SST-2")   # doctest: +SKIP
>>> results["accuracy"], results["best_config"]["learning_rate"]                                # doctest: +SKIP
(0.84, 0.0001)
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import shutil
import time
from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from electra_tf.data.vocabulary import load_vocabulary
from electra_tf.finetune.features import encode_examples
from electra_tf.finetune.readers import load_examples
from electra_tf.finetune.report import write_results
from electra_tf.finetune.runner import FinetuneConfig, FinetuneDiverged, FinetuneRun
from electra_tf.pretrained import find_config, recorded_data_dir
from electra_tf.training.strategy import is_chief

__all__ = ["SearchSpace", "DEFAULT_SPACE", "PAPER_SPACE", "SMALL_SPACE", "TINY_SPACE", "space_for_model",
           "shrink_for_model", "find_vocab", "encode_task", "run_search"]

log = logging.getLogger(__name__)

#: Files a QA run writes at its best evaluation; the search keeps the best run's in ``OUT/``.
PREDICTION_FILES = ("predictions.json", "null_odds.json")


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """Lists of values; the search runs their Cartesian product."""

    learning_rates: Tuple[float, ...] = (5e-5, 1e-4, 3e-4)
    epochs: Tuple[float, ...] = (3.0,)
    batch_sizes: Tuple[int, ...] = (32,)
    weight_decays: Tuple[float, ...] = (0.01,)
    warmup_proportions: Tuple[float, ...] = (0.1,)
    layer_decays: Tuple[float, ...] = (1.0,)

    def configs(self, base: FinetuneConfig = FinetuneConfig()):
        """Every setting, as a :class:`FinetuneConfig` derived from ``base`` (seed left as in ``base``)."""
        grid = itertools.product(self.learning_rates, self.epochs, self.batch_sizes, self.weight_decays,
                                 self.warmup_proportions, self.layer_decays)
        return [dataclasses.replace(base, learning_rate=float(lr), epochs=float(ep), batch_size=int(bs),
                                    weight_decay=float(wd), warmup_proportion=float(wu), layer_decay=float(ld))
                for lr, ep, bs, wd, wu, ld in grid]


DEFAULT_SPACE = SearchSpace()
PAPER_SPACE = SearchSpace(epochs=(2.0, 3.0, 5.0, 10.0, 20.0), batch_sizes=(16, 32, 64, 128),
                          weight_decays=(0.0, 0.01), warmup_proportions=(0.06, 0.1, 0.3))


#: ELECTRA-Small's fine-tuning rate (3e-4, Clark et al. 2020, appendix) and one below it.
SMALL_SPACE = SearchSpace(learning_rates=(1e-4, 3e-4))
#: Measured on the transfer benchmark for models narrower than 256 (the ``tiny`` preset): the paper's rates
#: leave them at chance in 3 epochs; 1e-3 and 3e-3 for 10 epochs train both random and pretrained weights
#: (docs/research.md, "Transfer").
TINY_SPACE = SearchSpace(learning_rates=(1e-3, 3e-3), epochs=(10.0,))


def space_for_model(cfg) -> Tuple[SearchSpace, str]:
    """The default search for a pretrained model of this size, and a line saying which it is.

    Discriminators 768 wide or wider (Base, Large) get the paper's rates
    (:data:`DEFAULT_SPACE`), 256 to 767 ELECTRA-Small's (:data:`SMALL_SPACE`),
    narrower ones the rates measured for ``tiny`` (:data:`TINY_SPACE`).
    """
    hidden = cfg.model.hidden_size
    if hidden >= 768:
        return DEFAULT_SPACE, f"the paper's grid for Base/Large (hidden {hidden})"
    if hidden >= 256:
        return SMALL_SPACE, f"ELECTRA-Small's grid (hidden {hidden})"
    return TINY_SPACE, f"the grid measured for tiny models (hidden {hidden} < 256)"


def shrink_for_model(cfg) -> bool:
    """Whether fine-tuning shrinks the grown block kernels by default (``FinetuneConfig.shrink``).

    On for models narrower than 256, where it was measured to turn a pretrained
    ``tiny`` model that fine-tunes worse than random weights into one that
    fine-tunes better (docs/research.md, "Transfer", fourth round); off for
    ELECTRA-Small and larger, whose released weights fine-tune well as they are.
    """
    return cfg.model.hidden_size < 256


def find_vocab(pretrained: str, cfg) -> str:
    """The vocabulary the pretrained model was trained with (a SentencePiece ``vocab.model`` or a ``vocab.txt``).

    Looked for beside ``pretrained`` (an export dir, or a model dir converted
    from google-research/electra), in its ``export/`` dir or its parent (a
    model dir; ``export/discriminator``), then in the pretraining data dir the
    config records (``data.path``, or the built-in data's dir).
    """
    from electra_tf.data.tfrecords import vocab_path

    path = pretrained.rstrip("/")
    candidates = [os.path.join(directory, name)
                  for directory in (path, os.path.join(path, "export"), os.path.dirname(path))
                  for name in ("vocab.model", "vocab.txt")]
    candidates.append(vocab_path(recorded_data_dir(cfg)))  # data.path, or the built-in data
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"no vocabulary found for {pretrained} (looked at {', '.join(candidates)}); "
                            "give the pretraining vocabulary with --vocab")


def encode_task(task, examples, vocab_path, max_seq_length, vocab_size=None):
    """``{split: EncodedSplit}``: every split tokenized once, shared by all runs."""
    vocab = load_vocabulary(vocab_path, expected_vocab_size=vocab_size)
    return {split: encode_examples(vocab, rows, max_seq_length, task.is_regression) for split, rows in examples.items()}


def _family(task):
    """``(read, encode, run class)`` of the task's family: classification, token tagging or QA."""
    from electra_tf.finetune.qa import QARun, QATask, encode_qa_task, read_qa
    from electra_tf.finetune.tagging import TaggingRun, TaggingTask, encode_tagging_task, read_tagging

    if isinstance(task, TaggingTask):
        return (lambda t, data_dir, tfds_dir: read_tagging(t, data_dir)), encode_tagging_task, TaggingRun
    if isinstance(task, QATask):
        return read_qa, encode_qa_task, QARun
    return load_examples, encode_task, FinetuneRun


def _median(values):
    return float(np.median(values)) if values else None


def _aggregate(task, runs, seeds):
    """Per setting: its runs and the median over seeds of every metric."""
    settings = {}
    for run in runs:
        key = json.dumps({k: v for k, v in run["config"].items() if k != "seed"}, sort_keys=True)
        settings.setdefault(key, []).append(run)
    out = []
    for key, group in settings.items():
        done = [r for r in group if r.get("metrics")]
        metric_keys = list(done[0]["metrics"]) if done else []
        median = {k: _median([r["metrics"][k] for r in done]) for k in metric_keys}
        out.append({"config": {k: v for k, v in json.loads(key).items()}, "seeds": list(seeds),
                    "median": median, "runs": group})
    return out


def _load_previous(path, identity):
    if not os.path.exists(path):
        return None
    with open(path, "r", encoding="utf-8") as f:
        previous = json.load(f)
    return previous if previous.get("identity") == identity else None


def run_search(task, pretrained: str, output_dir: str, data_dir: Optional[str] = None,
               space: SearchSpace = DEFAULT_SPACE, seeds: Sequence[int] = (0,),
               base: FinetuneConfig = FinetuneConfig(), max_seq_length: int = 256, vocab: Optional[str] = None,
               tfds_data_dir: Optional[str] = None, strategy=None, progress: bool = True,
               keep_all_checkpoints: bool = False, pad_to_max: bool = False):
    """Fine-tunes ``pretrained`` on ``task`` for every setting of ``space`` and every seed.

    A run whose ``OUT/runs/NAME/result.json`` exists (same task, model, data
    and length) is not repeated, so a search that was stopped continues.

    Args:
        task: a :class:`~electra_tf.finetune.glue.Task` (``get_task`` or ``custom_task``).
        pretrained: a pretraining model dir, a checkpoint, or an export dir.
        output_dir: where ``results.json``, ``results.md``, ``best/`` and
            ``runs/NAME/`` (metrics.jsonl, TensorBoard) go.
        data_dir: the task's TSV files; None reads the task's TFDS dataset.
        space: the settings to try.
        seeds: seeds run for every setting.
        base: the values not searched (dropout, clip norm, AdaMax betas, ...).
        max_seq_length: tokens per example, special tokens included.
        vocab: the pretraining vocabulary, a SentencePiece model or a WordPiece ``vocab.txt`` (default: found
            beside ``pretrained``).
        tfds_data_dir: TFDS's data dir (without ``data_dir``).
        strategy: a ``tf.distribute.Strategy``.
        progress: show progress bars.
        keep_all_checkpoints: keep every run's best checkpoint, not only the overall best.
        pad_to_max: pad batches to ``max_seq_length`` (static shapes, for TPUs).

    Returns:
        The dict written to ``results.json``: the best setting's median metrics
        at top level (``accuracy``, ``f1``, ``mcc``, ``pearson``, ``spearman``
        as the task has them), ``best_config``, ``settings`` (every setting with
        its runs and medians), ``best_run`` and where things are.
    """
    start = time.perf_counter()
    strategy = strategy or tf.distribute.get_strategy()
    chief = is_chief(strategy)
    cfg = find_config(pretrained)
    if cfg.model.absolute_positions and max_seq_length > cfg.model.max_position_embeddings:
        raise ValueError(f"max_seq_length ({max_seq_length}) exceeds the model's absolute position table "
                         f"(model.max_position_embeddings={cfg.model.max_position_embeddings})")
    vocab = vocab or find_vocab(pretrained, cfg)
    load, encode, run_class = _family(task)
    examples = load(task, data_dir, tfds_data_dir)
    if hasattr(task, "resolved"):  # tags (and qa_custom's SQuAD version) are known once the files are read
        task = task.resolved(examples)
    data = encode(task, examples, vocab, max_seq_length, cfg.model.vocab_size)
    identity = {"task": dataclasses.asdict(task), "pretrained": os.path.abspath(pretrained),
                "data": os.path.abspath(data_dir) if data_dir else f"tfds:{getattr(task, 'tfds_name', None)}",
                "max_seq_length": max_seq_length, "num_train": len(data["train"])}
    identity = json.loads(json.dumps(identity))  # as it reads back from a result.json
    os.makedirs(output_dir, exist_ok=True)
    best_dir = os.path.join(output_dir, "best")
    main = task.main_metric
    previous_best = _load_previous(os.path.join(best_dir, "best.json"), identity)
    best_score = previous_best["metrics"][main] if previous_best else None
    runs = []
    configs = [dataclasses.replace(c, seed=int(s)) for c in space.configs(base) for s in seeds]
    log.info("%s: %d train examples, %s; %d runs", task.name, len(data["train"]),
             ", ".join(f"{s} {len(data[s])}" for s in task.eval_splits), len(configs))
    for index, config in enumerate(configs, start=1):
        run_dir = os.path.join(output_dir, "runs", config.name)
        result_path = os.path.join(run_dir, "result.json")
        done = _load_previous(result_path, identity)
        if done is not None and done["config"] == json.loads(json.dumps(dataclasses.asdict(config))):
            log.info("run %d/%d %s: done before (%s)", index, len(configs), config.name, result_path)
            runs.append(done)
            continue
        log.info("run %d/%d %s", index, len(configs), config.name)
        runner = run_class(task, pretrained, cfg, data, config, run_dir, strategy=strategy, progress=progress,
                             pad_to=max_seq_length if pad_to_max else None)
        try:
            result = runner.train()
        except FinetuneDiverged as exc:
            log.warning("%s", exc)
            result = {"run": config.name, "config": dataclasses.asdict(config), "metrics": None,
                      "error": str(exc)}
        result["identity"] = identity
        runs.append(result)
        if not chief:
            continue
        with open(result_path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
        score = (result.get("metrics") or {}).get(main)
        if score is not None and (best_score is None or score > best_score):
            best_score = score
            if os.path.isdir(best_dir):
                shutil.rmtree(best_dir)
            shutil.copytree(os.path.join(run_dir, "best"), best_dir)
            for name in PREDICTION_FILES:  # QA: the best evaluation's answers, beside its checkpoint
                if os.path.isfile(os.path.join(run_dir, name)):
                    shutil.copy(os.path.join(run_dir, name), os.path.join(best_dir, name))
            result["checkpoint"] = tf.train.latest_checkpoint(best_dir)
            with open(os.path.join(best_dir, "best.json"), "w", encoding="utf-8") as f:
                json.dump({**result, "vocab": os.path.abspath(vocab), "max_seq_length": max_seq_length}, f, indent=2)
        if not keep_all_checkpoints:
            shutil.rmtree(os.path.join(run_dir, "best"), ignore_errors=True)

    settings = _aggregate(task, runs, seeds)
    scored = [s for s in settings if s["median"].get(main) is not None]
    if not scored:
        raise FinetuneDiverged(f"every run diverged (see {os.path.join(output_dir, 'runs')}); lower --lr")
    best_setting = max(scored, key=lambda s: s["median"][main])
    best_run = None
    if os.path.exists(os.path.join(best_dir, "best.json")):
        with open(os.path.join(best_dir, "best.json"), "r", encoding="utf-8") as f:
            best_run = json.load(f)
        best_run.pop("identity", None)
        best_run["checkpoint"] = tf.train.latest_checkpoint(best_dir)
    results = {
        **best_setting["median"],
        "task": task.name,
        "main_metric": main,
        "best_config": best_setting["config"],
        "seeds": list(seeds),
        "best_seed_values": {str(r["config"]["seed"]): (r.get("metrics") or {}).get(main)
                             for r in best_setting["runs"]},
        "best_run": best_run,
        "settings": [{**s, "runs": [{k: v for k, v in r.items() if k != "identity"} for r in s["runs"]]}
                     for s in settings],
        "pretrained": os.path.abspath(pretrained),
        "vocab": os.path.abspath(vocab),
        "data": identity["data"],
        "max_seq_length": max_seq_length,
        "examples": {split: len(rows) for split, rows in data.items()},
        "tensorboard": os.path.join(output_dir, "runs"),
        "elapsed_sec": round(time.perf_counter() - start, 1),
    }
    if chief:
        for name in PREDICTION_FILES:
            if os.path.isfile(os.path.join(best_dir, name)):
                shutil.copy(os.path.join(best_dir, name), os.path.join(output_dir, name + ".tmp"))
                os.replace(os.path.join(output_dir, name + ".tmp"), os.path.join(output_dir, name))
        write_results(results, output_dir)
    return results
