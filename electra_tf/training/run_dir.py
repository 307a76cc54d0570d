"""A pretraining run's directory: who may write it, whether to resume it, and what data it was trained on.

* :class:`ModelDirLock` — one run per model dir. The holder's PID and host are
  in ``MODEL_DIR/.lock``; the lock itself is an ``fcntl`` lock on that file,
  which the kernel releases when the process dies however it dies, so a lock
  left by a killed run never blocks the next start.
* :func:`prepare_model_dir` — the same config resumes; a different one is
  refused unless ``--overwrite``, which deletes that run (logging what it
  deletes); a ``config.yaml`` left by a start that never reached a checkpoint
  binds nothing.
* ``MODEL_DIR/run_data.json`` — the data a run was trained on (the
  vocabulary's sha256, the shard layout), written with ``config.yaml`` once a
  start or resume has succeeded. :func:`check_resume_data` compares it with the
  data of a resume: another vocabulary is refused; another shard layout (a new
  ``data.path``, or the data dir rebuilt) resumes the models, optimizers and
  step, and starts the new data's iterator from its beginning.
"""

import fcntl
import glob
import hashlib
import json
import logging
import os
import shutil
import socket
import time

import yaml

from electra_tf.config import config_from_dict, config_to_dict
from electra_tf.paths import check_output_dir

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
DATA_RECORD = "run_data.json"
RUN_FILES = ("checkpoints", "tensorboard", "export", ".versions", "metrics.jsonl", "config.yaml", DATA_RECORD)
# What may change between attempts of one run: how long to train, how often to log/checkpoint/evaluate,
# where the data lives (its vocabulary may not change: see check_resume_data).
RESUMABLE_TRAIN_KEYS = ("max_steps", "log_every", "checkpoint_every", "eval_every", "eval_steps",
                        "keep_checkpoints", "max_skipped_steps")
RESUMABLE_DATA_KEYS = ("path", "builtin_dir")

__all__ = ["ModelDirLock", "ModelDirLocked", "prepare_model_dir", "config_differences", "data_identity",
           "read_data_record", "write_data_record", "check_resume_data", "discard_run", "RUN_FILES"]


class ModelDirLocked(ValueError):
    """Another live process holds the model dir."""


class ModelDirLock:
    """An exclusive lock on a model dir for the life of a run (see the module docstring).

    Re-entrant within one process (a second ``Trainer`` on the same dir in the
    same process shares it).
    """

    _held = {}  # realpath -> (lock, count)

    def __init__(self, model_dir):
        self.model_dir = model_dir
        self.path = os.path.join(model_dir, LOCK_FILE)
        self._file = None

    def acquire(self):
        key = os.path.realpath(self.model_dir)
        if key in ModelDirLock._held:
            lock, count = ModelDirLock._held[key]
            ModelDirLock._held[key] = (lock, count + 1)
            self._file = lock._file
            return self
        os.makedirs(self.model_dir, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = _parse_holder(f.read())
            f.close()
            raise ModelDirLocked(
                f"{self.model_dir} is in use by another run (PID {holder.get('pid', '?')} on host "
                f"{holder.get('host', '?')}, started {holder.get('started', '?')}); wait for it to end, or use "
                f"another --model_dir") from None
        f.seek(0)
        previous = _parse_holder(f.read())
        if previous.get("pid"):
            log.warning("%s: taking over the lock of PID %s on %s, which ended without releasing it (killed?)",
                        self.model_dir, previous["pid"], previous.get("host", "?"))
        f.seek(0)
        f.truncate()
        json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                   "started": time.strftime("%Y-%m-%d %H:%M:%S")}, f)
        f.flush()
        self._file = f
        ModelDirLock._held[key] = (self, 1)
        return self

    def release(self):
        key = os.path.realpath(self.model_dir)
        if key not in ModelDirLock._held or self._file is None:
            return
        lock, count = ModelDirLock._held[key]
        if count > 1:
            ModelDirLock._held[key] = (lock, count - 1)
        else:
            del ModelDirLock._held[key]
            f = lock._file
            try:
                f.seek(0)
                f.truncate()  # a clean end leaves no holder to report
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            finally:
                f.close()
        self._file = None


def _parse_holder(text):
    try:
        holder = json.loads(text)
        return holder if isinstance(holder, dict) else {}
    except ValueError:
        return {}


def _comparable(cfg_dict):
    """The parts of a config that must match for a model dir to be resumed."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg_dict.items()}
    for key in RESUMABLE_TRAIN_KEYS:
        out["train"].pop(key, None)
    for key in RESUMABLE_DATA_KEYS:
        out["data"].pop(key, None)
    return out


def config_differences(previous, cfg):
    """``["train.generator_lr: 0.0002 -> 0.001", ...]``: what differs between two configs where it matters."""
    old, new = _comparable(config_to_dict(previous)), _comparable(config_to_dict(cfg))
    diffs = [f"{s}.{k}: {old[s][k]!r} -> {new[s].get(k)!r}" for s in old if isinstance(old[s], dict)
             for k in old[s] if old[s][k] != new[s].get(k)]
    diffs += [f"{k}: {old[k]!r} -> {new[k]!r}" for k in old if not isinstance(old[k], dict) and old[k] != new[k]]
    return diffs


def _has_checkpoint(model_dir):
    return bool(glob.glob(os.path.join(model_dir, "checkpoints", "ckpt-*.index")))


def discard_run(model_dir, reason):
    """Deletes a run's files from ``model_dir`` (not the lock), logging each; returns the names deleted."""
    names = [n for n in RUN_FILES if os.path.lexists(os.path.join(model_dir, n))]
    names += sorted(os.path.basename(p) for p in glob.glob(os.path.join(model_dir, ".export.*")))
    if names:
        log.warning("%s: deleting %s (%s)", model_dir, ", ".join(names), reason)
    for name in names:
        target = os.path.join(model_dir, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        else:
            os.remove(target)
    return names


def prepare_model_dir(model_dir, cfg, overwrite=False):
    """Creates ``model_dir`` or checks that it holds a run of the same config; returns whether to resume.

    Raises:
        ValueError: ``model_dir`` is a file or not writable, or holds a run of
            a different config and ``overwrite`` is false (the message lists
            the differing keys).
    """
    check_output_dir(model_dir, "--model_dir")
    path = os.path.join(model_dir, "config.yaml")
    if not os.path.exists(path):
        os.makedirs(model_dir, exist_ok=True)
        return False
    try:
        with open(path, "r", encoding="utf-8") as f:
            diffs = config_differences(config_from_dict(yaml.safe_load(f)), cfg)
    except (ValueError, yaml.YAMLError) as exc:  # ConfigError is a ValueError
        diffs = [f"its config.yaml cannot be read ({str(exc).splitlines()[0]})"]
    if not diffs:
        if overwrite:
            log.info("%s holds a run of the same config: resuming it (--overwrite only discards a run of a "
                     "different config)", model_dir)
        return True
    if not _has_checkpoint(model_dir):
        discard_run(model_dir, "a start with another config that never reached its first checkpoint: "
                               + "; ".join(diffs))
        return False
    if not overwrite:
        raise ValueError(f"{model_dir} already holds a run with a different config ({'; '.join(diffs)}); "
                         "use another --model_dir, or --overwrite to discard that run")
    discard_run(model_dir, "--overwrite: a run of a different config: " + "; ".join(diffs))
    return False


def data_identity(data_dir, manifest):
    """What a run records of its data: the vocabulary's sha256 and size, the sequence length, the shard layout."""
    layout = json.dumps({"shards": manifest.get("shards"), "examples": manifest.get("examples")}, sort_keys=True)
    return {"data_dir": os.path.abspath(data_dir), "vocab_sha256": manifest.get("vocab_sha256"),
            "vocab_size": manifest.get("vocab_size"), "max_seq_length": manifest.get("max_seq_length"),
            "layout_sha256": hashlib.sha256(layout.encode("utf-8")).hexdigest()}


def read_data_record(model_dir):
    """The ``run_data.json`` of a model dir, or None (a run from before it was written)."""
    path = os.path.join(model_dir, DATA_RECORD)
    try:
        with open(path, "r", encoding="utf-8") as f:
            record = json.load(f)
        return record if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None


def write_data_record(model_dir, identity):
    path = os.path.join(model_dir, DATA_RECORD)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(identity, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def check_resume_data(model_dir, identity):
    """Whether a resume may restore the data iterator's position; raises ValueError for another vocabulary.

    Returns:
        True when the data is laid out as when the run was saved (or the run
        predates the record), False when its shards differ (the iterator then
        starts at the beginning of the new data, with the run's seed).
    """
    record = read_data_record(model_dir)
    if record is None:
        return True
    old_sha, new_sha = record.get("vocab_sha256"), identity.get("vocab_sha256")
    if old_sha and new_sha and old_sha != new_sha:
        raise ValueError(
            f"the data dir {identity['data_dir']} has another vocabulary (sha256 {new_sha[:12]}...) than the one "
            f"{model_dir} was trained on ({record.get('data_dir')}, sha256 {old_sha[:12]}...), though of the same "
            f"size; resume with data built with that vocabulary, or start a new run in another --model_dir")
    if record.get("layout_sha256") != identity.get("layout_sha256"):
        log.warning("the data changed since the last checkpoint (%s -> %s, other shards): resuming the models, "
                    "optimizers and step; the data iterator cannot follow a new shard layout and starts at the "
                    "beginning of the new data's train split", record.get("data_dir"), identity["data_dir"])
        return False
    return True
