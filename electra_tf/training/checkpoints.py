"""Checkpoints that restore everything a run needs, and survive a bad latest file."""

import errno
import glob
import logging
import os
import shutil
import tempfile

import tensorflow as tf

log = logging.getLogger(__name__)


class CheckpointSaveError(RuntimeError):
    """A checkpoint could not be written (``no_space``: the device is full); the previous ones are intact."""

    def __init__(self, message, no_space=False):
        super().__init__(message)
        self.no_space = no_space


class ResumeError(ValueError):
    """No checkpoint of a model dir can be restored into the run being built."""


def remove_partial_saves(directory):
    """Removes the ``ckpt-N_temp`` dirs a save leaves when it fails or is killed midway; returns their names."""
    removed = []
    for path in glob.glob(os.path.join(directory, "*_temp*")):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except OSError:
                continue
        removed.append(os.path.basename(path))
    return removed


def _is_no_space(exc):
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return "no space left on device" in str(exc).lower()


class CheckpointKeeper:
    """A ``tf.train.CheckpointManager`` with a fallback for a corrupt latest checkpoint.

    The checkpoint's objects are whatever the trainer names (``generator``,
    ``discriminator``, the optimizers, ``step``, the data ``iterator``, ...).
    ``tf.train.CheckpointManager`` writes the index file last, so a process
    killed mid-save leaves the previous checkpoint as the latest complete one.

    In multi-worker training every worker must take part in a save; only the
    chief writes into ``directory``, the others into a scratch dir that is
    removed. Every worker restores the chief's checkpoint. What differs
    between workers (``worker_state``: the data iterator, over this worker's
    shard) a non-chief worker saves beside it, in ``directory/worker-N/``
    (``iterator-STEP``, at the same steps as the chief).

    Args:
        checkpoint: the ``tf.train.Checkpoint`` of the run.
        directory: the run's checkpoint dir (the chief's).
        keep: checkpoints to keep.
        is_chief: whether this process writes ``directory``.
        worker_state: objects of ``checkpoint`` that are this worker's own
            (e.g. ``{"iterator": it}``); a non-chief worker saves them in
            ``directory/worker-<worker_index>``.
        worker_index: this worker's index (0: the chief).
    """

    def __init__(self, checkpoint, directory, keep=3, is_chief=True, worker_state=None, worker_index=0):
        self.checkpoint = checkpoint
        self.directory = directory
        self.is_chief = is_chief
        self.keep = keep
        self._worker_state = None if is_chief or not worker_state else tf.train.Checkpoint(**worker_state)
        self.worker_directory = None if self._worker_state is None else os.path.join(directory,
                                                                                   f"worker-{worker_index}")
        self._worker_manager = None  # made at the first save or restore, after the chief prepared the model dir
        target = directory if is_chief else tempfile.mkdtemp(prefix="electra-worker-ckpt-")
        self._scratch = None if is_chief else target
        if is_chief:
            removed = remove_partial_saves(directory)
            if removed:
                log.warning("removed %s in %s: left by a checkpoint save that did not complete",
                            ", ".join(removed), directory)
        self.manager = tf.train.CheckpointManager(checkpoint, target, max_to_keep=keep)

    def restore_latest(self, checkpoint=None):
        """Restores the newest readable checkpoint; returns its path, or None when there is none.

        A checkpoint that cannot be read (truncated or corrupt files) is
        skipped with a warning in favour of the one before it.

        Args:
            checkpoint: restore into this ``tf.train.Checkpoint`` (a subset of
                the saved objects) instead of the whole one.
        """
        target = checkpoint or self.checkpoint
        candidates = list(reversed(tf.train.CheckpointManager(self.checkpoint, self.directory,
                                                              max_to_keep=None).checkpoints))
        reason = ""
        for path in candidates:
            try:
                status = target.restore(path).assert_existing_objects_matched()
                if checkpoint is not None:
                    status.expect_partial()
                return path
            except Exception as exc:  # noqa: BLE001 - any failure to read means "not this one"
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                log.warning("checkpoint %s cannot be restored (%s); falling back to the previous one", path, reason)
        if candidates:
            raise ResumeError(f"no checkpoint in {self.directory} can be restored (tried {len(candidates)}; the last "
                              f"error: {reason}); it was written by a run of another model or code version. The run "
                              f"is left as it is: use another --model_dir, or --overwrite to discard it")
        return None

    def _worker_checkpoints(self):
        if self._worker_manager is None:
            remove_partial_saves(self.worker_directory)
            self._worker_manager = tf.train.CheckpointManager(self._worker_state, self.worker_directory,
                                                              max_to_keep=self.keep, checkpoint_name="iterator")
        return self._worker_manager

    def restore_chief_checkpoint(self, number, checkpoint, worker_state=True):
        """A non-chief worker's restore: the chief's ``ckpt-<number>`` into ``checkpoint``; returns its path.

        Args:
            number: the step of the chief's checkpoint (the chief chose it and
                told every worker).
            checkpoint: what to restore from it (the run's objects but this
                worker's own state).
            worker_state: also restore this worker's own state saved with that
                checkpoint (when the chief restored its data position too).
        """
        path = os.path.join(self.directory, f"ckpt-{int(number)}")
        checkpoint.restore(path).assert_existing_objects_matched().expect_partial()
        if worker_state and self._worker_state is not None:
            own = os.path.join(self.worker_directory, f"iterator-{int(number)}")
            self._worker_checkpoints()
            if tf.io.gfile.exists(own + ".index"):
                self._worker_state.restore(own).assert_existing_objects_matched()
            else:
                log.warning("%s has no data position of this worker for step %d (saved by another number of "
                            "workers, or removed): this worker's data iterator starts at the beginning of its "
                            "shard", self.worker_directory, int(number))
        return path

    def save(self, step):
        """Saves a checkpoint numbered ``step``; returns its path (None on a non-chief worker).

        Raises:
            CheckpointSaveError: the write failed (a full disk among others);
                the partial files are removed and the previous checkpoints kept.
        """
        directory = self.manager.directory
        try:
            path = self.manager.save(checkpoint_number=int(step))
            if self._worker_state is not None:
                directory = self.worker_directory
                self._worker_checkpoints().save(checkpoint_number=int(step))
        except Exception as exc:  # noqa: BLE001 - turned into one line; the traceback is TensorFlow's internals
            remove_partial_saves(directory)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            if _is_no_space(exc):
                raise CheckpointSaveError(
                    f"no space left on device at {directory} while saving the checkpoint of step "
                    f"{int(step)}; the previous checkpoints are kept (latest: {self.manager.latest_checkpoint}). "
                    f"Free some space and run the same command to continue", no_space=True) from None
            raise CheckpointSaveError(f"saving the checkpoint of step {int(step)} in {directory} "
                                      f"failed: {first}; the previous checkpoints are kept") from None
        if not self.is_chief:
            return None
        return path

    def close(self):
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
