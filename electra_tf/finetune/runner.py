"""One fine-tuning run: a pretrained discriminator, one hyperparameter setting, one seed.

Read top to bottom: config -> model (pretrained encoder + new head) ->
optimizer (AdaMax, warm-up + linear decay, layer-wise rates) -> data -> the
distributed train and eval steps -> the loop, which evaluates on the dev
split(s) every epoch and keeps the checkpoint with the best dev metric.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import os
import time
from typing import Dict, Optional

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from electra_tf.finetune.classifier import SequenceClassifier
from electra_tf.finetune.features import EncodedSplit, eval_dataset, train_dataset
from electra_tf.finetune.metrics import task_metrics
from electra_tf.finetune.optimizer import (
    LayerwiseAdamax,
    layerwise_multipliers,
    scale_multipliers,
    shrink_blocks,
    trainable_variables,
)
from electra_tf.pretrained import load_pretrained
from electra_tf.training.checkpoints import CheckpointKeeper
from electra_tf.training.optimizers import WarmupLinearDecay
from electra_tf.training.run_log import RunLog
from electra_tf.training.strategy import is_chief, worker_info

__all__ = ["FinetuneConfig", "FinetuneDiverged", "load_encoder", "build_classifier", "FinetuneRun"]

log = logging.getLogger(__name__)


class FinetuneDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """The hyperparameters of one run (defaults: the paper's Table 3 at lr 1e-4).

    ``epochs`` may be fractional; ``max_steps`` (when set) overrides the
    number of steps that ``epochs`` implies. ``probe_epochs`` > 0 first trains
    the new head alone on the frozen encoder for that many epochs (its own
    AdaMax at ``learning_rate``, warm-up and linear decay), then fine-tunes
    everything for ``epochs`` as usual: linear probing then fine-tuning
    (LP-FT, Kumar et al., 2022), which starts the encoder's updates from a
    head that already fits its features instead of a random one. ``eval_every`` 0 evaluates at the
    end of every epoch; the last step is always evaluated. ``layer_decay`` 1.0
    turns layer-wise learning-rate decay off.
    """

    learning_rate: float = 1e-4
    epochs: float = 3.0
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup_proportion: float = 0.1
    layer_decay: float = 1.0
    scale_rates: bool = True
    pooling: str = "cls"
    probe_epochs: float = 0.0
    shrink: bool = False
    seed: int = 0
    dropout: float = 0.1
    clip_norm: float = 1.0
    beta_1: float = 0.9
    beta_2: float = 0.98
    epsilon: float = 1e-6
    max_steps: Optional[int] = None
    eval_every: int = 0
    log_every: int = 10

    def __post_init__(self):
        checks = [
            (self.learning_rate > 0, "learning_rate", "> 0"),
            (self.epochs > 0, "epochs", "> 0"),
            (self.probe_epochs >= 0, "probe_epochs", ">= 0 (0 = no head-only phase)"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size", "an integer >= 1"),
            (self.weight_decay >= 0, "weight_decay", ">= 0"),
            (0 <= self.warmup_proportion < 1, "warmup_proportion", "in [0, 1)"),
            (0 < self.layer_decay <= 1, "layer_decay", "in (0, 1] (1 = off)"),
            (0 <= self.dropout < 1, "dropout", "in [0, 1)"),
            (self.clip_norm >= 0, "clip_norm", ">= 0 (0 = no clipping)"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps", "None or >= 1"),
        ]
        for ok, key, accepted in checks:
            if not ok:
                raise ValueError(f"{key} must be {accepted}, got {getattr(self, key)!r}")

    def total_steps(self, num_train: int) -> int:
        return self.max_steps or self._steps(self.epochs, num_train)

    def probe_steps(self, num_train: int) -> int:
        """Steps of the head-only phase (0 when ``probe_epochs`` is 0)."""
        return self._steps(self.probe_epochs, num_train) if self.probe_epochs else 0

    def _steps(self, epochs: float, num_train: int) -> int:
        return max(1, math.ceil(epochs * num_train / self.batch_size))

    @property
    def name(self) -> str:
        """A directory name for the run: ``lr0.0001_ep3_bs32_wd0.01_wu0.1_seed0``."""
        parts = [f"lr{self.learning_rate:g}", f"ep{self.epochs:g}", f"bs{self.batch_size}",
                 f"wd{self.weight_decay:g}", f"wu{self.warmup_proportion:g}"]
        if self.layer_decay != 1.0:
            parts.append(f"ld{self.layer_decay:g}")
        if not self.scale_rates:
            parts.append("fixedrates")
        if self.pooling != "cls":
            parts.append(self.pooling)
        if self.probe_epochs:
            parts.append(f"lp{self.probe_epochs:g}")
        if self.shrink:
            parts.append("shrink")
        if self.max_steps:
            parts.append(f"steps{self.max_steps}")
        return "_".join(parts + [f"seed{self.seed}"])


def load_encoder(pretrained, pretrained_cfg, dropout=0.1):
    """The pretrained discriminator's encoder, weights restored, rebuilt with ``dropout`` (on hidden states and
    attention) whatever dropout pretraining used."""
    model_cfg = dataclasses.replace(pretrained_cfg.model, dropout=dropout, attention_dropout=dropout)
    _, _, discriminator = load_pretrained(pretrained, which=("discriminator",),
                                          cfg=pretrained_cfg.replace(model=model_cfg))
    return discriminator.encoder


def build_classifier(pretrained, pretrained_cfg, num_labels, dropout=0.1, pooling="cls"):
    """The pretrained discriminator's encoder (weights restored, see :func:`load_encoder`) under a new head."""
    encoder = load_encoder(pretrained, pretrained_cfg, dropout)
    model = SequenceClassifier(encoder, num_labels, dropout=dropout, pooling=pooling, name="classifier")
    model.build()
    return model


class FinetuneRun:
    """Fine-tunes one classifier and reports its best dev metrics.

    Args:
        task: the :class:`~electra_tf.finetune.glue.Task`.
        pretrained: a pretraining model dir, checkpoint or export dir.
        pretrained_cfg: the pretraining config (``electra_tf.pretrained.find_config``).
        data: ``{split: EncodedSplit}`` with ``train`` and the task's eval splits.
        config: the :class:`FinetuneConfig`.
        run_dir: where ``metrics.jsonl``, ``tensorboard/`` and ``best/`` (the
            best dev checkpoint: ``classifier`` and the list of its ``weights``) go.
        strategy: a ``tf.distribute.Strategy`` (default: the default strategy).
        progress: show a progress bar.
        pad_to: pad every batch to this length (static shapes, for TPUs).
    """

    def __init__(self, task, pretrained, pretrained_cfg, data: Dict[str, EncodedSplit], config: FinetuneConfig,
                 run_dir, strategy=None, progress=True, pad_to=None):
        self.task = task
        self.pretrained = pretrained
        self.pretrained_cfg = pretrained_cfg
        self.data = data
        self.config = config
        self.run_dir = run_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.progress = progress
        self.pad_to = pad_to
        self.chief = is_chief(self.strategy)
        self.num_workers, _ = worker_info(self.strategy)
        replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise ValueError(f"batch_size ({config.batch_size}) must be divisible by the number of replicas "
                             f"({replicas})")

    # ------------------------------------------------------------------ construction
    def _build(self):
        c = self.config
        keras.utils.set_random_seed(c.seed)  # the head's initialisation, dropout and shuffling
        self.total_steps = c.total_steps(len(self.data["train"]))
        warmup = int(c.warmup_proportion * self.total_steps)
        with self.strategy.scope():
            self.model = self._build_model()
            if c.shrink:
                shrunk = shrink_blocks(self.model.encoder, self.model.encoder.initializer_range)
                log.info("shrink: %d block kernels rescaled to their initial RMS (factors %s)", len(shrunk),
                         ", ".join(f"{f:.2f}" for _, f in shrunk) or "-")
            self.variables = trainable_variables(self.model)
            self.optimizer = LayerwiseAdamax(WarmupLinearDecay(c.learning_rate, warmup, self.total_steps),
                                             weight_decay=c.weight_decay, beta_1=c.beta_1, beta_2=c.beta_2,
                                             epsilon=c.epsilon, name="finetune_optimizer")
            self.optimizer.set_lr_multipliers(layerwise_multipliers(self.model, c.layer_decay))
            if c.scale_rates:  # each pretrained matrix's steps relative to its grown scale
                self.optimizer.set_step_scales(scale_multipliers(self.model, self.model.encoder.initializer_range))
            self.optimizer.build(self.variables)  # eagerly: a lazy build inside strategy.run fails
            self.probe_steps = c.probe_steps(len(self.data["train"]))
            if self.probe_steps:
                encoder = {id(v) for v in self.model.encoder.weights}
                self.head_variables = [v for v in self.variables if id(v) not in encoder]  # every new head
                self.head_optimizer = LayerwiseAdamax(
                    WarmupLinearDecay(c.learning_rate, int(c.warmup_proportion * self.probe_steps), self.probe_steps),
                    weight_decay=c.weight_decay, beta_1=c.beta_1, beta_2=c.beta_2, epsilon=c.epsilon,
                    name="probe_optimizer")
                self.head_optimizer.build(self.head_variables)
                self.head_step = tf.function(self._head_step)
        train = train_dataset(self.data["train"], c.batch_size, seed=c.seed, pad_to=self.pad_to)
        self.train_iterator = iter(self.strategy.experimental_distribute_dataset(train))
        self.eval_sets = {split: self.strategy.experimental_distribute_dataset(
            eval_dataset(self.data[split], c.batch_size, pad_to=self.pad_to, num_workers=self.num_workers))
            for split in self.task.eval_splits}
        self.train_step = tf.function(self._train_step)
        spec = next(iter(self.eval_sets.values())).element_spec  # any length: one trace for every batch
        self.eval_step = tf.function(self._eval_step, input_signature=[spec])
        # The weights are listed too: Keras 3 layers held in a Python list (the encoder's blocks) are not
        # reached through the model object by a tf.train.Checkpoint.
        self.checkpoint = tf.train.Checkpoint(classifier=self.model, weights=list(self.model.weights))
        self.keeper = CheckpointKeeper(self.checkpoint, os.path.join(self.run_dir, "best"), keep=1,
                                       is_chief=self.chief)

    # ------------------------------------------------------------------ what a task family changes
    def _build_model(self):
        """The model to fine-tune (built, inside the strategy's scope): it has ``encoder`` and ``head``."""
        c = self.config
        return build_classifier(self.pretrained, self.pretrained_cfg, self.task.num_labels, c.dropout, c.pooling)

    def _per_example_loss(self, outputs, batch):
        """[B] losses from the model's ``outputs`` and the ``batch`` (labels in ``batch["label"]``)."""
        logits, labels = outputs["logits"], batch["label"]
        if self.task.is_regression:
            return tf.square(logits[:, 0] - tf.cast(labels, tf.float32))
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)

    def _eval_outputs(self, outputs, batch):
        """The tensors an evaluation collects from each batch (``weight`` is added)."""
        return {"logits": outputs["logits"], "label": batch["label"]}

    def _split_metrics(self, split, batches):
        """``{metric: value}`` on ``split`` from the collected ``batches`` (dicts of NumPy arrays, with
        ``weight``; rows of weight 0 fill the last batch)."""
        keep = np.concatenate([b["weight"] for b in batches]) > 0
        logits = np.concatenate([b["logits"] for b in batches])[keep]
        labels = np.concatenate([b["label"] for b in batches])[keep]
        return task_metrics(self.task, logits, labels)

    def _on_best(self, step):
        """Called after the checkpoint of a new best evaluation is saved (QA writes its predictions)."""

    # ------------------------------------------------------------------ steps
    def _replica_step(self, batch, variables=None, optimizer=None):
        variables = variables or self.variables
        optimizer = optimizer or self.optimizer
        with tf.GradientTape() as tape:
            outputs = self.model(batch, training=True)
            # Divided by the global batch: gradients summed over replicas are those of the global mean.
            loss = tf.reduce_sum(self._per_example_loss(outputs, batch) * batch["weight"])
            loss = loss / float(self.config.batch_size)
        grads = tape.gradient(loss, variables)
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(grads, variables)]
        # All-reduce once, then clip the global gradient's norm (Keras would clip each replica's part).
        grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
        norm = tf.linalg.global_norm(grads)
        if self.config.clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, self.config.clip_norm, use_norm=norm)
        optimizer.apply(grads, variables)
        return loss, norm

    def _train_step(self, iterator):
        loss, norm = self.strategy.run(self._replica_step, (next(iterator),))
        loss = self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        return loss, self.strategy.experimental_local_results(norm)[0]

    def _head_step(self, iterator):
        """One step of the head-only phase: the encoder is read, not trained."""
        loss, _ = self.strategy.run(self._replica_step, (next(iterator), self.head_variables, self.head_optimizer))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)

    def _eval_step(self, batch):
        def replica(b):
            return {**self._eval_outputs(self.model(b, training=False), b), "weight": b["weight"]}

        outputs = self.strategy.run(replica, (batch,))
        return {k: self.strategy.gather(v, axis=0) for k, v in outputs.items()}

    def evaluate(self):
        """``{results key: value}`` on every eval split (``accuracy``, ``f1``, ``accuracy_mismatched``, ...)."""
        out = {}
        for split, dataset in self.eval_sets.items():
            batches = [{k: v.numpy() for k, v in self.eval_step(batch).items()} for batch in dataset]
            values = self._split_metrics(split, batches)
            out.update({self.task.metric_key(k, split): v for k, v in values.items()})
        return out

    # ------------------------------------------------------------------ the loop
    def train(self):
        """Trains; returns ``{"run", "config", "metrics", "best_step", "steps", "checkpoint", "elapsed_sec"}``."""
        start = time.perf_counter()
        self._build()
        c, task = self.config, self.task
        steps_per_epoch = max(1, math.ceil(len(self.data["train"]) / c.batch_size))
        eval_every = c.eval_every or steps_per_epoch
        main = task.main_metric
        run_log = RunLog(self.run_dir, enabled=self.chief)
        bar = tqdm(total=self.total_steps, unit="step", desc=f"{task.name} {c.name}", dynamic_ncols=True,
                   disable=not (self.progress and self.chief))
        best, best_step, best_path, losses = None, 0, None, []
        try:
            if self.probe_steps:
                probe_losses = [float(self.head_step(self.train_iterator)) for _ in range(self.probe_steps)]
                if not all(math.isfinite(x) for x in probe_losses):
                    raise FinetuneDiverged(f"{c.name}: the head-only phase's loss is not finite; lower the "
                                           f"learning rate (now {c.learning_rate:g})")
                log.info("%s head-only phase: %d steps, loss %.4f -> %.4f", c.name, self.probe_steps,
                         probe_losses[0], float(np.mean(probe_losses[-10:])))
            for step in range(1, self.total_steps + 1):
                logged = step % c.log_every == 0 or step == self.total_steps
                # The rate of this step's update: applying it advances the schedule.
                rate = float(self.optimizer.learning_rate.numpy()) if logged else None
                loss, norm = self.train_step(self.train_iterator)
                loss = float(loss)
                if not math.isfinite(loss):
                    raise FinetuneDiverged(f"{c.name}: the loss is {loss} at step {step}; lower the learning "
                                           f"rate (now {c.learning_rate:g}) or raise the warm-up proportion")
                losses.append(loss)
                bar.update(1)
                if logged:
                    run_log.write({"step": step, "loss": float(np.mean(losses)), "grad_norm": float(norm),
                                   "learning_rate": rate})
                    bar.set_postfix(loss=f"{np.mean(losses):.4f}")
                    losses = []
                if step % eval_every == 0 or step == self.total_steps:
                    metrics = self.evaluate()
                    run_log.write({"step": step, **metrics}, split="eval")
                    log.info("%s step %d/%d dev %s", c.name, step, self.total_steps,
                             " ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
                    if best is None or metrics[main] > best[main]:
                        best, best_step = metrics, step
                        best_path = self.keeper.save(step)
                        if self.chief:
                            self._on_best(step)
                    bar.set_postfix(loss=f"{loss:.4f}", **{f"dev_{main}": f"{metrics[main]:.4f}"})
        finally:
            bar.close()
            run_log.close()
            self.keeper.close()
        result = {"run": c.name, "config": dataclasses.asdict(c), "metrics": best, "best_step": best_step,
                  "steps": self.total_steps, "checkpoint": best_path,
                  "elapsed_sec": round(time.perf_counter() - start, 2)}
        del self.model, self.optimizer, self.train_iterator, self.train_step, self.eval_step
        gc.collect()
        return result
