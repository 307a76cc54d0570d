"""The pretraining loop: config -> strategy -> data -> models -> optimizers -> loop -> export.

Read top to bottom, this is what ``scripts/pretrain.py`` does.
"""

import logging
import os
import signal
import time

import tensorflow as tf
from tqdm.auto import tqdm

from electra_tf.config import dump_config
from electra_tf.data.tfrecords import corrupt_shard_error, vocab_path
from electra_tf.exit_codes import PREEMPTED as PREEMPTED_EXIT_CODE
from electra_tf.models import rtd_metrics as M
from electra_tf.paths import check_output_dir
from electra_tf.training.builder import build_pretraining, check_batch_split
from electra_tf.training.checkpoints import CheckpointKeeper
from electra_tf.training.data import resolve_data
from electra_tf.training.run_dir import (
    ModelDirLock,
    check_resume_data,
    data_identity,
    prepare_model_dir,
    write_data_record,
)
from electra_tf.training.run_log import RunLog
from electra_tf.training.strategy import is_chief, worker_info
from electra_tf.training.warm_start import warm_start

log = logging.getLogger(__name__)


class DivergenceError(RuntimeError):
    """Too many consecutive steps had a non-finite loss or gradient."""


class Preempted(Exception):
    """SIGTERM arrived (on any worker); every worker saved its checkpoint at ``step``."""

    def __init__(self, step):
        super().__init__(f"preempted at step {step}; checkpoint saved")
        self.step = step


class Trainer:
    """Pretrains a generator and a discriminator as one config says.

    Args:
        cfg: the config (``model.vocab_size`` may be ``auto``).
        model_dir: where checkpoints, metrics, TensorBoard logs and exports go.
        strategy: a ``tf.distribute.Strategy``.
        overwrite: discard a run of a different config in ``model_dir``.
        init_from: warm start from a model dir, checkpoint or export (weights only).
        profile_steps: ``(first, last)`` steps to trace with the TensorBoard profiler.
        export: called at the end of the run on the chief as
            ``export(model_dir, generator, discriminator, cfg, vocab_model=...)``
            (the CLI passes :func:`electra_tf.export.export_models`); None: no export.
        progress: show a progress bar.
    """

    def __init__(self, cfg, model_dir, strategy=None, overwrite=False, init_from=None, profile_steps=None,
                 export=None, progress=True):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.model_dir = model_dir
        self.init_from = init_from
        self.profile_steps = profile_steps
        if export is True:
            raise ValueError("export must be a callable such as electra_tf.export.export_models, or None; got True "
                             "(the training package does not import export/)")
        self.exporter = export or None
        self.progress = progress
        self.chief = is_chief(self.strategy)
        self.num_workers, self.worker_index = worker_info(self.strategy)
        self._stop_signal = None
        self._profiling = False

        # Config and data: the vocab size comes from the data dir's manifest (the built-in data is built here).
        self.cfg, self.data_dir, self.manifest = resolve_data(cfg)
        check_batch_split(self.cfg.train, self.strategy)
        self.lock = None
        self.resume = False  # the chief's decision; in _start it tells every other worker what it restored
        if self.chief:  # one run per model dir; config.yaml is written once the start or resume succeeded
            check_output_dir(model_dir, "--model_dir")
            self.lock = ModelDirLock(model_dir).acquire()
            try:
                self.resume = prepare_model_dir(model_dir, self.cfg, overwrite)
            except BaseException:
                self.close()
                raise

        try:
            # Models, optimizers and steps (seeded from train.seed); then the checkpoint of their state.
            self.run = build_pretraining(self.cfg, self.data_dir, self.strategy)
            self.generator, self.discriminator = self.run.generator, self.run.discriminator
            self.pretrainer, self.groups, self.steps = self.run.pretrainer, self.run.groups, self.run.steps
            self._objects = self.run.checkpoint_objects()
            self.checkpoint = tf.train.Checkpoint(**self._objects)
            self.keeper = CheckpointKeeper(self.checkpoint, os.path.join(self.model_dir, "checkpoints"),
                                           keep=self.cfg.train.keep_checkpoints, is_chief=self.chief,
                                           worker_state={"iterator": self._objects["iterator"]},
                                           worker_index=self.worker_index)
        except BaseException:
            self.close()
            raise

    def close(self):
        """Releases the model dir (also done at the end of :meth:`train`)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # ------------------------------------------------------------------ helpers
    def _learning_rates(self):
        # The rates the last step's updates used (the optimizers' own now give the next step's).
        rates = {g.name: float(r.numpy()) for g, r in zip(self.groups, self.steps.learning_rates)}
        if "joint" in rates:
            return {"lr_generator": rates["joint"], "lr_discriminator": rates["joint"]}
        return {"lr_generator": rates["generator"], "lr_discriminator": rates["discriminator"]}

    def _on_sigterm(self, signum, frame):
        self._stop_signal = signum
        log.warning("received signal %d: every worker saves a checkpoint after the next step, then exits", signum)

    def evaluate(self, steps=None):
        """RTD metrics (with AUC) on the held-out split, fixed masks and samples: the same on every call."""
        if not self.manifest.get("examples", {}).get("eval"):
            return None
        return self.run.evaluate(steps)

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
                try:  # a stop asked by any worker (SIGTERM) is agreed by all inside the step
                    norms, finite = self.steps.train_step(self._stop_signal is not None)
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
                if int(self.steps.stop_agreed.numpy()):
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
            if self.exporter is not None and self.chief:
                self.export()
        finally:
            self.close()
        self.keeper.close()
        return last_row

    def _without_iterator(self):
        return tf.train.Checkpoint(**{k: v for k, v in self._objects.items() if k != "iterator"})

    def _start(self):
        """Restores the latest checkpoint (or warm starts); then records the config and data; returns the path.

        The chief chooses the checkpoint (the latest readable one) and tells every other worker, which
        restores that same checkpoint of the chief and its own data position saved with it.
        """
        t = self.cfg.train
        identity = data_identity(self.data_dir, self.manifest)
        restored, same_layout, failure = None, True, None
        if self.chief:
            try:
                if self.resume and tf.train.latest_checkpoint(self.keeper.directory):
                    same_layout = check_resume_data(self.model_dir, identity)
                    # Not same_layout: everything but the data position, which cannot follow another shard layout.
                    restored = self.keeper.restore_latest(None if same_layout else self._without_iterator())
                if restored:
                    step = int(self.steps.step.numpy())
                    if step > t.max_steps:
                        raise ValueError(f"train.max_steps ({t.max_steps}) is below the step this run already "
                                         f"reached ({step}, {restored}); pass train.max_steps >= {step} to continue "
                                         f"it, or use another --model_dir")
            except Exception as exc:  # noqa: BLE001 - re-raised below, once the other workers know
                failure = exc
        if self.num_workers > 1:
            number = int(restored.rsplit("-", 1)[1]) if restored else 0
            number, same_layout, failed = self._from_chief([number, int(same_layout), int(failure is not None)])
            if failed and failure is None:
                raise ValueError("the chief (worker 0) could not start or resume this run; its log says why")
            if number and not self.chief:
                restored = self.keeper.restore_chief_checkpoint(number, self._without_iterator(),
                                                                worker_state=bool(same_layout))
        if failure is not None:
            raise failure
        if restored:
            log.info("resumed from %s at step %d", restored, int(self.steps.step.numpy()))
        elif self.init_from:
            warm_start(self.init_from, self.generator, self.discriminator)
        if self.chief:
            dump_config(self.cfg, os.path.join(self.model_dir, "config.yaml"))
            write_data_record(self.model_dir, identity)
        return restored

    def _from_chief(self, values):
        """Every worker gets the chief's list of ints ``values`` (one all-reduce, which all workers must call)."""
        mine = tf.constant(values if self.chief else [0] * len(values), tf.int64)
        local = max(1, self.strategy.num_replicas_in_sync // self.num_workers)

        def contribution():
            first_local = tf.equal(tf.distribute.get_replica_context().replica_id_in_sync_group % local, 0)
            return tf.where(first_local, mine, tf.zeros_like(mine))

        @tf.function
        def broadcast():
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, self.strategy.run(contribution), axis=None)

        return [int(v) for v in broadcast().numpy()]

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
        """Writes the SavedModels with the ``export`` callable (e.g. :func:`electra_tf.export.export_models`)."""
        if self.exporter is None:
            raise ValueError("this Trainer was built with export=None; pass export=electra_tf.export.export_models")
        return self.exporter(self.model_dir, self.generator, self.discriminator, self.cfg,
                             vocab_model=vocab_path(self.data_dir))


def config_summary(cfg):
    g = cfg.generator_dims()
    return (f"D {cfg.model.num_layers}x{cfg.model.hidden_size}, G {g.num_layers}x{g.hidden_size}, "
            f"seq {cfg.data.max_seq_length}, vocab {cfg.model.vocab_size}, batch {cfg.train.batch_size}, "
            f"mode {cfg.train.mode}, sharing {cfg.embedding_sharing}, {cfg.train.max_steps} steps")


__all__ = ["Trainer", "DivergenceError", "Preempted", "PREEMPTED_EXIT_CODE", "resolve_data", "config_summary"]
