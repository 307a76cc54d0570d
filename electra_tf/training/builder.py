"""Everything a pretraining step needs, built from a config with nothing written anywhere.

:func:`build_pretraining` is what :class:`~electra_tf.training.trainer.Trainer`,
the benchmark, the tests and a notebook call: it returns the models, the
objective, the optimizer groups, the compiled train and eval steps and the
objects a checkpoint holds. It reads the data dir (never writes it), seeds
Keras's random number generators from ``train.seed`` (so the models'
initial weights are a function of the seed) and turns on op determinism when
``train.deterministic`` asks; it creates no file and no directory.
"""

import dataclasses
import logging
from typing import Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.data.tfrecords import vocab_path
from electra_tf.models import ElectraPretrainer, build_models, rtd_metrics
from electra_tf.models.objective import objective_for
from electra_tf.training.data import check_data, pretraining_input
from electra_tf.training.hardware import warn_if_bf16_emulated
from electra_tf.training.loss_scale import DynamicLossScale
from electra_tf.training.optimizers import make_optimizer, partition_variables, undecayed_variables
from electra_tf.training.step import OptimizerGroup, PretrainingSteps
from electra_tf.training.strategy import worker_info

log = logging.getLogger(__name__)

POLICIES = {"none": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@dataclasses.dataclass
class Pretraining:
    """What :func:`build_pretraining` returns.

    Attributes:
        cfg: the config, with ``model.vocab_size`` resolved.
        strategy: the ``tf.distribute.Strategy`` everything was built under.
        generator, discriminator: the two Keras models.
        pretrainer: the :class:`~electra_tf.models.ElectraPretrainer` holding both.
        objective: :class:`~electra_tf.models.objective.JointObjective` or
            :class:`~electra_tf.models.objective.DecoupledObjective`.
        groups: one :class:`~electra_tf.training.step.OptimizerGroup` per
            optimizer (joint: ``joint``; decoupled: ``generator``, ``discriminator``).
        steps: the :class:`~electra_tf.training.step.PretrainingSteps`
            (``train_step()``, ``eval_step(batch, index)``, loop state).
        iterator: the plain, checkpointable iterator the train step reads.
        data_dir: the data dir read, or None when a dataset was given.
        per_worker_batch: sequences per train step on this worker.
    """

    cfg: ElectraConfig
    strategy: tf.distribute.Strategy
    generator: keras.Model
    discriminator: keras.Model
    pretrainer: ElectraPretrainer
    objective: object
    groups: List[OptimizerGroup]
    steps: PretrainingSteps
    iterator: object
    data_dir: Optional[str]
    per_worker_batch: int

    @property
    def train_step(self):
        """One training step on the next batch: returns ``(grad norms per group, finite)``."""
        return self.steps.train_step

    @property
    def eval_step(self):
        """``eval_step(batch, index)``: RTD sums and AUC histograms with fixed samples."""
        return self.steps.eval_step

    def checkpoint_objects(self) -> Dict[str, object]:
        """The named objects of a run's ``tf.train.Checkpoint`` (README, Checkpoints)."""
        objects = dict(generator=self.generator, discriminator=self.discriminator, iterator=self.iterator,
                       dropout_seeds=_seed_states(self.generator, self.discriminator),
                       **self.steps.checkpoint_objects())
        if len(self.groups) == 1:
            objects["optimizer"] = self.groups[0].optimizer
        else:
            for group in self.groups:
                objects[f"{group.name}_optimizer"] = group.optimizer
        return objects

    @property
    def vocab_model(self):
        """The data dir's SentencePiece model (what an export needs for its text signatures), or None."""
        return None if self.data_dir is None else vocab_path(self.data_dir)

    def evaluate(self, steps=None):
        """RTD metrics (with AUC) on the held-out split, fixed masks and samples: the same on every call.

        Args:
            steps: eval batches to read (default ``train.eval_steps``).

        Returns:
            dict: ``gen_loss``, ``gen_accuracy``, ``disc_loss``, ``disc_accuracy``,
            ``disc_precision``, ``disc_recall``, ``disc_f1``, ``replaced_fraction``, ``disc_auc``.
        """
        dataset = self.dataset("eval", repeat=True, shuffle=False)
        total = {}
        for index, batch in enumerate(dataset.take(steps or self.cfg.train.eval_steps)):
            sums, hist = self.steps.eval_step(batch, tf.constant(index, tf.int64))
            rtd_metrics.add_sums(total, {k: v.numpy() for k, v in sums.items()})
            total["auc_hist"] = total.get("auc_hist", 0) + hist.numpy().astype(np.float64)
        return rtd_metrics.summarize(total)

    def dataset(self, split="train", batch_size=None, repeat=True, shuffle=True):
        """The batches of ``split`` of the data dir as the train step reads them (default: this worker's batch)."""
        if self.data_dir is None:
            raise ValueError("this Pretraining was built from a dataset, not a data dir; it has no other splits")
        return pretraining_input(self.cfg, self.data_dir, split, batch_size or self.per_worker_batch, repeat=repeat,
                                 shuffle=shuffle, input_context=_input_context(self.strategy))


def seed_everything(train_cfg):
    """Seeds Python, NumPy, TensorFlow and Keras from ``train.seed``; op determinism if ``train.deterministic``."""
    keras.utils.set_random_seed(train_cfg.seed)
    if train_cfg.deterministic:
        tf.config.experimental.enable_op_determinism()


def check_batch_split(train_cfg, strategy):
    """Raises ValueError unless ``train.batch_size`` splits evenly over replicas and micro-batches."""
    t = train_cfg
    if t.batch_size % (strategy.num_replicas_in_sync * t.grad_accum_steps):
        raise ValueError(f"train.batch_size ({t.batch_size}) must be divisible by replicas x grad_accum_steps "
                         f"({strategy.num_replicas_in_sync} x {t.grad_accum_steps})")


def _input_context(strategy):
    num_workers, worker_index = worker_info(strategy)
    if num_workers == 1:
        return None
    return tf.distribute.InputContext(num_workers, worker_index, strategy.num_replicas_in_sync)


def build_pretraining(cfg: ElectraConfig, data=None, strategy: Optional[tf.distribute.Strategy] = None
                      ) -> Pretraining:
    """Builds models, optimizers and steps for ``cfg``; writes nothing.

    Args:
        cfg: the config. ``model.vocab_size: auto`` is resolved from the data dir's manifest.
        data: a TFRecord data dir (default ``data.path``), or a ``tf.data.Dataset``
            of this worker's batches (dicts as :func:`~electra_tf.data.tfrecords.pretraining_dataset`
            yields, ``train.batch_size / workers`` sequences each).
        strategy: a ``tf.distribute.Strategy``; default the current one.

    Returns:
        A :class:`Pretraining`.

    Raises:
        ValueError: no data (``data.path`` unset: build the built-in data
            first with :func:`~electra_tf.training.data.resolve_data`), or a
            batch size that does not split over replicas and micro-batches.

    Example:

    >>> cfg = load_config("tiny", ["data.path=tfrecords/builtin-4mb-v4096-s64", "model.vocab_size=auto"])
    >>> run = build_pretraining(cfg)
    >>> norms, finite = run.train_step()
    """
    strategy = strategy or tf.distribute.get_strategy()
    t = cfg.train
    num_workers, _ = worker_info(strategy)
    check_batch_split(t, strategy)
    per_worker_batch = t.batch_size // num_workers
    data_dir = None
    if not isinstance(data, tf.data.Dataset):
        data_dir = data or cfg.data.path
        if not data_dir:
            raise ValueError("no data: pass a data dir or a tf.data.Dataset, or set data.path (the built-in "
                             "data is built by electra_tf.training.data.resolve_data)")
        cfg, _ = check_data(cfg, data_dir)
    elif cfg.model.vocab_size == "auto":
        raise ValueError("model.vocab_size is 'auto' but a dataset was given: set the vocabulary size")

    warn_if_bf16_emulated(t.mixed_precision)
    # Seeds first: the input pipeline's shuffles and the initial weights depend on them.
    seed_everything(t)
    if data_dir is not None:
        data = pretraining_input(cfg, data_dir, "train", per_worker_batch, input_context=_input_context(strategy))
    iterator = iter(data)
    local_replicas = max(1, strategy.num_replicas_in_sync // num_workers)
    with strategy.scope():
        generator, discriminator = build_models(cfg, dtype=POLICIES[t.mixed_precision])
        pretrainer = ElectraPretrainer(generator, discriminator, temperature=t.temperature,
                                       disallow_correct=t.disallow_correct, name="electra_pretrainer")
        objective = objective_for(t.mode, t.disc_weight)
        groups = _optimizer_groups(t, objective, *partition_variables(generator, discriminator),
                                   no_decay=undecayed_variables(generator, discriminator))
        for group in groups:
            group.optimizer.build(group.variables)  # eagerly: a lazy build inside strategy.run fails
        steps = PretrainingSteps(strategy, pretrainer, objective, groups, t, iterator, local_replicas)
    return Pretraining(cfg, strategy, generator, discriminator, pretrainer, objective, groups, steps, iterator,
                       data_dir, per_worker_batch)


def _optimizer_groups(t, objective, gen_vars, disc_vars, no_decay=()):
    """One AdamW per loss of the objective, on the variables that loss trains, with that role's settings."""
    fp16 = t.mixed_precision == "float16"

    def group(name, lr, variables, clip, opt_name, role):
        scaler = DynamicLossScale(name) if fp16 else None
        return OptimizerGroup(name, make_optimizer(lr, t, opt_name, role, no_decay), variables, clip, scaler)

    if objective.groups == ("joint",):
        return [group("joint", t.learning_rate, gen_vars + disc_vars, t.clip_norm, "optimizer", None)]
    return [group("generator", t.generator_lr, gen_vars, t.generator_clip_norm, "generator_optimizer", "generator"),
            group("discriminator", t.discriminator_lr, disc_vars, t.discriminator_clip_norm, "discriminator_optimizer",
                  "discriminator")]


def _seed_states(*models):
    """The state variables of the models' dropout seed generators, so a resume replays the same masks."""
    states, seen = [], set()
    for model in models:
        for layer in model._flatten_layers(include_self=False, recursive=True):
            generator = getattr(layer, "seed_generator", None)
            if generator is not None and id(generator.state) not in seen:
                seen.add(id(generator.state))
                states.append(generator.state)
    return states
