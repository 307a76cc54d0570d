"""Checkpoints that restore everything a run needs, and survive a bad latest file."""

import logging
import os
import shutil
import tempfile

import tensorflow as tf

log = logging.getLogger(__name__)


class CheckpointKeeper:
    """A ``tf.train.CheckpointManager`` with a fallback for a corrupt latest checkpoint.

    The checkpoint's objects are whatever the trainer names (``generator``,
    ``discriminator``, the optimizers, ``step``, the data ``iterator``, ...).
    ``tf.train.CheckpointManager`` writes the index file last, so a process
    killed mid-save leaves the previous checkpoint as the latest complete one.

    In multi-worker training every worker must take part in a save; only the
    chief writes into ``directory``, the others into a scratch dir that is
    removed.
    """

    def __init__(self, checkpoint, directory, keep=3, is_chief=True):
        self.checkpoint = checkpoint
        self.directory = directory
        self.is_chief = is_chief
        target = directory if is_chief else tempfile.mkdtemp(prefix="electra-worker-ckpt-")
        self._scratch = None if is_chief else target
        self.manager = tf.train.CheckpointManager(checkpoint, target, max_to_keep=keep)

    def restore_latest(self):
        """Restores the newest readable checkpoint; returns its path, or None when there is none.

        A checkpoint that cannot be read (truncated or corrupt files) is
        skipped with a warning in favour of the one before it.
        """
        candidates = list(reversed(tf.train.CheckpointManager(self.checkpoint, self.directory,
                                                              max_to_keep=None).checkpoints))
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
                return path
            except Exception as exc:  # noqa: BLE001 - any failure to read means "not this one"
                log.warning("checkpoint %s cannot be restored (%s: %s); falling back to the previous one",
                            path, type(exc).__name__, str(exc).splitlines()[0][:200])
        if candidates:
            raise RuntimeError(f"no checkpoint in {self.directory} can be restored (tried {len(candidates)}); "
                               "move the directory away or pass --overwrite to start afresh")
        return None

    def save(self, step):
        path = self.manager.save(checkpoint_number=int(step))
        if not self.is_chief:
            return None
        return path

    def close(self):
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)


def latest_checkpoint_path(path):
    """A checkpoint prefix from a model dir, a ``checkpoints/`` dir or a prefix itself."""
    for candidate in (os.path.join(path, "checkpoints"), path):
        if os.path.isdir(candidate):
            found = tf.train.latest_checkpoint(candidate)
            if found:
                return found
    if tf.io.gfile.exists(path + ".index"):
        return path
    return None
