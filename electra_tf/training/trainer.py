"""The pretraining loop: config -> strategy -> data -> models -> optimizers -> loop -> export.

Read top to bottom, this is what ``scripts/pretrain.py`` does.
"""

import logging
import os
import signal
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from electra_tf.config import ElectraConfig, dump_config
from electra_tf.data.builtin import ensure_builtin_data
from electra_tf.data.manifest import check_manifest, check_vocab_file, load_manifest
from electra_tf.data.tfrecords import corrupt_shard_error, pretraining_dataset, vocab_path
from electra_tf.models import ElectraPretrainer, build_models
from electra_tf.paths import check_output_dir
from electra_tf.training import metrics as M
from electra_tf.training.checkpoints import CheckpointKeeper
from electra_tf.training.optimizers import make_optimizer, partition_variables
from electra_tf.training.run_dir import (
    ModelDirLock,
    check_resume_data,
    data_identity,
    prepare_model_dir,
    write_data_record,
)
from electra_tf.training.run_log import RunLog
from electra_tf.training.step import OptimizerGroup, PretrainingSteps
from electra_tf.training.strategy import is_chief, worker_info
from electra_tf.training.warm_start import warm_start

log = logging.getLogger(__name__)

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: saved at SIGTERM, run the same command again to continue
POLICIES = {"none": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


class DivergenceError(RuntimeError):
    """Too many consecutive steps had a non-finite loss or gradient."""


class Preempted(Exception):
    """SIGTERM arrived; a checkpoint was saved at ``step``."""

    def __init__(self, step):
        super().__init__(f"preempted at step {step}; checkpoint saved")
        self.step = step


def resolve_data(cfg: ElectraConfig):
    """Returns ``(cfg with vocab size resolved, data_dir, manifest)``; builds the built-in data when unset."""
    data_dir = cfg.data.path
    if not data_dir:
        if cfg.model.vocab_size == "auto":
            raise ValueError("model.vocab_size must be a number when data.path is unset "
                             "(the built-in corpus is built with that many pieces)")
        data_dir = ensure_builtin_data(cfg.data.builtin_dir, cfg.model.vocab_size, cfg.data.max_seq_length,
                                       corpus_mb=cfg.data.builtin_corpus_mb, eval_fraction=cfg.data.eval_fraction,
                                       seed=cfg.train.seed)
    manifest = load_manifest(data_dir)
    wanted_vocab = None if cfg.model.vocab_size == "auto" else cfg.model.vocab_size
    check_manifest(manifest, wanted_vocab, cfg.data.max_seq_length, data_dir)
    check_vocab_file(data_dir, manifest)
    return cfg.with_vocab_size(manifest["vocab_size"]), data_dir, manifest


class Trainer:
    """Pretrains a generator and a discriminator as one config says.

    Args:
        cfg: the config (``model.vocab_size`` may be ``auto``).
        model_dir: where checkpoints, metrics, TensorBoard logs and exports go.
        strategy: a ``tf.distribute.Strategy``.
        overwrite: discard a run of a different config in ``model_dir``.
        init_from: warm start from a model dir, checkpoint or export (weights only).
        profile_steps: ``(first, last)`` steps to trace with the TensorBoard profiler.
        export: write SavedModels at the end.
        progress: show a progress bar.
    """

    def __init__(self, cfg, model_dir, strategy=None, overwrite=False, init_from=None, profile_steps=None,
                 export=True, progress=True):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.model_dir = model_dir
        self.init_from = init_from
        self.profile_steps = profile_steps
        self.do_export = export
        self.progress = progress
        self.chief = is_chief(self.strategy)
        self.num_workers, self.worker_index = worker_info(self.strategy)
        self._stop_signal = None

        # Config and data: the vocab size comes from the data dir's manifest.
        self.cfg, self.data_dir, self.manifest = resolve_data(cfg)
        t = self.cfg.train
        if t.batch_size % (self.strategy.num_replicas_in_sync * t.grad_accum_steps):
            raise ValueError(f"train.batch_size ({t.batch_size}) must be divisible by replicas x grad_accum_steps "
                             f"({self.strategy.num_replicas_in_sync} x {t.grad_accum_steps})")
        self.lock = None
        self.resume = False
        if self.chief:  # one run per model dir; config.yaml is written once the start or resume succeeded
            check_output_dir(model_dir, "--model_dir")
            self.lock = ModelDirLock(model_dir).acquire()
            try:
                self.resume = prepare_model_dir(model_dir, self.cfg, overwrite)
            except BaseException:
                self.close()
                raise

        # Determinism: seeded initialisation always; bitwise-reproducible kernels on request.
        keras.utils.set_random_seed(t.seed)
        if t.deterministic:
            tf.config.experimental.enable_op_determinism()

        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def close(self):
        """Releases the model dir (also done at the end of :meth:`train`)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # ------------------------------------------------------------------ construction
    def _dataset(self, split, per_worker_batch, repeat=True, shuffle=True):
        d = self.cfg.data
        context = None
        if self.num_workers > 1:
            context = tf.distribute.InputContext(self.num_workers, self.worker_index,
                                                 self.strategy.num_replicas_in_sync)
        return pretraining_dataset(
            self.data_dir, split=split, batch_size=per_worker_batch, max_seq_length=d.max_seq_length,
            mask_prob=d.mask_prob, max_predictions=d.num_predictions, mask_token_prob=d.mask_token_prob,
            seed=self.cfg.train.seed, shuffle_buffer=d.shuffle_buffer, repeat=repeat, shuffle=shuffle,
            input_context=context, masking=d.masking)

    def _build(self):
        cfg, t = self.cfg, self.cfg.train
        self.per_worker_batch = t.batch_size // self.num_workers
        dataset = self._dataset("train", self.per_worker_batch)
        self.iterator = iter(dataset)
        local_replicas = max(1, self.strategy.num_replicas_in_sync // self.num_workers)
        policy = POLICIES[t.mixed_precision]
        with self.strategy.scope():
            self.generator, self.discriminator = build_models(cfg, dtype=policy)
            self.pretrainer = ElectraPretrainer(self.generator, self.discriminator, temperature=t.temperature,
                                                disallow_correct=t.disallow_correct, name="electra_pretrainer")
            gen_vars, disc_vars = partition_variables(self.generator, self.discriminator)
            fp16 = t.mixed_precision == "float16"
            if t.mode == "joint":
                opt = make_optimizer(t.learning_rate, t, "optimizer")
                self.groups = [OptimizerGroup("joint", opt, gen_vars + disc_vars, t.clip_norm, "joint", fp16)]
            else:
                self.groups = [
                    OptimizerGroup("generator", make_optimizer(t.generator_lr, t, "generator_optimizer"), gen_vars,
                                   t.gen_clip, "generator", fp16),
                    OptimizerGroup("discriminator", make_optimizer(t.discriminator_lr, t, "discriminator_optimizer"),
                                   disc_vars, t.disc_clip, "discriminator", fp16),
                ]
            for group in self.groups:
                group.optimizer.build(group.variables)  # eagerly: a lazy build inside strategy.run fails
            self.steps = PretrainingSteps(self.strategy, self.pretrainer, self.groups, t, self.iterator,
                                          local_replicas)
        objects = dict(generator=self.generator, discriminator=self.discriminator, iterator=self.iterator,
                       dropout_seeds=_seed_states(self.generator, self.discriminator),
                       **self.steps.checkpoint_objects())
        if t.mode == "joint":
            objects["optimizer"] = self.groups[0].optimizer
        else:
            objects["generator_optimizer"] = self.groups[0].optimizer
            objects["discriminator_optimizer"] = self.groups[1].optimizer
        self._objects = objects
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.keeper = CheckpointKeeper(self.checkpoint, os.path.join(self.model_dir, "checkpoints"),
                                       keep=t.keep_checkpoints, is_chief=self.chief)

    # ------------------------------------------------------------------ helpers
    def _learning_rates(self):
        rates = {g.name: float(g.optimizer.learning_rate.numpy()) for g in self.groups}
        if "joint" in rates:
            return {"lr_generator": rates["joint"], "lr_discriminator": rates["joint"]}
        return {"lr_generator": rates["generator"], "lr_discriminator": rates["discriminator"]}

    def _on_sigterm(self, signum, frame):
        self._stop_signal = signum
        log.warning("received signal %d: saving a checkpoint after this step, then exiting", signum)

    def evaluate(self, steps=None):
        """RTD metrics (with AUC) on the held-out split, fixed masks and samples: the same on every call."""
        steps = steps or self.cfg.train.eval_steps
        if not self.manifest.get("examples", {}).get("eval"):
            return None
        dataset = self._dataset("eval", self.per_worker_batch, repeat=True, shuffle=False)
        total = {}
        for index, batch in enumerate(dataset.take(steps)):
            sums, hist = self.steps.eval_step(batch, tf.constant(index, tf.int64))
            M.add_sums(total, {k: v.numpy() for k, v in sums.items()})
            total["auc_hist"] = total.get("auc_hist", 0) + hist.numpy().astype(np.float64)
        return M.summarize(total)

    # ------------------------------------------------------------------ the loop
    def train(self):
        """Runs until ``train.max_steps``; returns the last logged metrics."""
        t = self.cfg.train
        try:
            restored = self._start()
        except BaseException:
            self.close()
            raise
        start = int(self.steps.step.numpy())
        self._check_profile_window(start)
        run_log = RunLog(self.model_dir, enabled=self.chief, resume_step=start if restored else None)
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        tokens_per_step = t.batch_size * self.cfg.data.max_seq_length
        bar = tqdm(total=t.max_steps, initial=start, unit="step", disable=not (self.progress and self.chief),
                   dynamic_ncols=True, desc="pretraining")
        last_row = {}
        finished = False
        window_start = time.perf_counter()
        try:
            step = start
            while step < t.max_steps:
                if self.profile_steps and step == self.profile_steps[0] and self.chief:
                    tf.profiler.experimental.start(os.path.join(self.model_dir, "tensorboard", "profile"))
                    self._profiling = True
                try:
                    norms, finite = self.steps.train_step()
                except tf.errors.DataLossError as exc:
                    raise corrupt_shard_error(self.data_dir, exc) from None
                step += 1
                if self.profile_steps and step == self.profile_steps[1] and self._profiling:
                    tf.profiler.experimental.stop()
                    self._profiling = False
                skips = int(self.steps.consecutive_skips.numpy())
                if step % t.log_every == 0 or step == t.max_steps or skips >= t.max_skipped_steps:
                    elapsed = time.perf_counter() - window_start
                    total, window_steps = self.steps.read_window()
                    row = {"step": step, **M.summarize(total), **self._learning_rates(),
                           "grad_norm_" + self.groups[0].name: float(norms[0]),
                           "skipped_steps": int(self.steps.skipped_steps.numpy()),
                           "tokens_per_sec": tokens_per_step * window_steps / max(elapsed, 1e-9)}
                    if len(self.groups) > 1:
                        row["grad_norm_" + self.groups[1].name] = float(norms[1])
                    run_log.write(row)
                    last_row = row
                    bar.set_postfix(gen_loss=f"{row['gen_loss']:.3f}", disc_f1=f"{row['disc_f1']:.3f}",
                                    tok_s=f"{row['tokens_per_sec']:.0f}")
                    window_start = time.perf_counter()
                bar.update(1)
                if skips >= t.max_skipped_steps:
                    raise DivergenceError(
                        f"step {step}: {skips} consecutive steps had a non-finite loss or gradient; the last good "
                        f"checkpoint is kept in {self.keeper.directory}. Lower the learning rate "
                        f"(train.learning_rate / train.generator_lr / train.discriminator_lr) or raise "
                        f"train.warmup_steps, then run again")
                if t.eval_every and step % t.eval_every == 0:
                    result = self.evaluate()
                    if result is not None:
                        run_log.write({"step": step, **result}, split="eval")
                # No checkpoint while steps are being skipped: the last good one must survive rotation.
                if skips == 0 and (step % t.checkpoint_every == 0 or step == t.max_steps):
                    self.keeper.save(step)
                if self._stop_signal is not None:
                    if step % t.checkpoint_every and step != t.max_steps:
                        self.keeper.save(step)
                    raise Preempted(step)
            finished = True
        finally:
            if self._profiling:
                tf.profiler.experimental.stop()
                self._profiling = False
            bar.close()
            run_log.close()
            signal.signal(signal.SIGTERM, previous)
            if not finished:
                self.close()
        try:
            if self.do_export and self.chief:
                self.export()
        finally:
            self.close()
        self.keeper.close()
        return last_row

    def _start(self):
        """Restores the latest checkpoint (or warm starts); then records the config and data; returns the path."""
        t = self.cfg.train
        identity = data_identity(self.data_dir, self.manifest)
        restored = None
        if self.resume and tf.train.latest_checkpoint(self.keeper.directory):
            same_layout = check_resume_data(self.model_dir, identity)
            partial = None
            if not same_layout:  # everything but the data position, which cannot follow another shard layout
                partial = tf.train.Checkpoint(**{k: v for k, v in self._objects.items() if k != "iterator"})
            restored = self.keeper.restore_latest(partial)
        if restored:
            step = int(self.steps.step.numpy())
            if step > t.max_steps:
                raise ValueError(f"train.max_steps ({t.max_steps}) is below the step this run already reached "
                                 f"({step}, {restored}); pass train.max_steps >= {step} to continue it, or use "
                                 f"another --model_dir")
            log.info("resumed from %s at step %d", restored, step)
        elif self.init_from:
            warm_start(self.init_from, self.generator, self.discriminator)
        if self.chief:
            dump_config(self.cfg, os.path.join(self.model_dir, "config.yaml"))
            write_data_record(self.model_dir, identity)
        return restored

    def _check_profile_window(self, start):
        self._profiling = False
        if not self.profile_steps:
            return
        first, last = self.profile_steps
        max_steps = self.cfg.train.max_steps
        if first < start or first >= max_steps:
            log.warning("--profile_steps %d,%d: step %d is not run (this run goes from step %d to "
                        "train.max_steps %d); no profiler trace is written", first, last, first, start, max_steps)
        elif last > max_steps:
            log.warning("--profile_steps %d,%d ends after train.max_steps (%d): the trace covers steps %d..%d",
                        first, last, max_steps, first, max_steps)

    def export(self):
        from electra_tf.export import export_models

        return export_models(self.model_dir, self.generator, self.discriminator, self.cfg,
                             vocab_model=vocab_path(self.data_dir))


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


def config_summary(cfg):
    g = cfg.generator_dims()
    return (f"D {cfg.model.num_layers}x{cfg.model.hidden_size}, G {g.num_layers}x{g.hidden_size}, "
            f"seq {cfg.data.max_seq_length}, vocab {cfg.model.vocab_size}, batch {cfg.train.batch_size}, "
            f"mode {cfg.train.mode}, sharing {cfg.embedding_sharing}, {cfg.train.max_steps} steps")


__all__ = ["Trainer", "DivergenceError", "Preempted", "PREEMPTED_EXIT_CODE", "resolve_data", "config_summary"]
