"""metrics.jsonl and TensorBoard scalars, kept consistent across a resume."""

import glob
import json
import logging
import os
import time

import tensorflow as tf

log = logging.getLogger(__name__)
TIMING_KEYS = ("tokens_per_sec", "elapsed_sec", "wall_time")


def truncate_jsonl(path, last_step):
    """Drops rows with ``step`` > ``last_step`` (written after the checkpoint being resumed)."""
    if not os.path.exists(path):
        return 0
    kept, dropped = [], 0
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                dropped += 1  # a line cut short by a kill
                continue
            if row.get("step", 0) <= last_step:
                kept.append(line if line.endswith("\n") else line + "\n")
            else:
                dropped += 1
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(kept)
    os.replace(tmp, path)
    return dropped


def truncate_events(logdir, last_step):
    """Rewrites TensorBoard event files so no event has a step > ``last_step``.

    TensorBoard would otherwise show two points for each step replayed after
    a resume. Each file is copied without those events and swapped in
    atomically.
    """
    from tensorboard.compat.proto import event_pb2

    for path in sorted(glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True)):
        keep, drop = [], 0
        try:
            for record in tf.data.TFRecordDataset(path):
                event = event_pb2.Event.FromString(record.numpy())
                if event.step > last_step and event.HasField("summary"):
                    drop += 1
                else:
                    keep.append(record.numpy())
        except tf.errors.DataLossError:
            drop += 1  # the tail of a file cut short by a kill
        if drop:
            tmp = path + ".tmp"
            with tf.io.TFRecordWriter(tmp) as writer:
                for record in keep:
                    writer.write(record)
            os.replace(tmp, path)


class RunLog:
    """Writes one JSON row per logged step and the same scalars to TensorBoard (chief only)."""

    def __init__(self, model_dir, enabled=True, resume_step=None):
        self.enabled = enabled
        self.path = os.path.join(model_dir, "metrics.jsonl")
        self.tb_dir = os.path.join(model_dir, "tensorboard")
        if not enabled:
            return
        if resume_step is not None:
            truncate_jsonl(self.path, resume_step)
            if os.path.isdir(self.tb_dir):
                truncate_events(self.tb_dir, resume_step)
        elif os.path.exists(self.path):
            os.remove(self.path)
        self.writers = {split: tf.summary.create_file_writer(os.path.join(self.tb_dir, split))
                        for split in ("train", "eval")}

    def write(self, row, split="train"):
        if not self.enabled:
            return
        row = dict(row)
        if split != "train":
            row["split"] = split
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
        writer = self.writers[split]
        with writer.as_default(step=int(row["step"])):
            for key, value in row.items():
                if key not in ("step", "split") and isinstance(value, (int, float)):
                    tf.summary.scalar(key, value)
        writer.flush()

    def close(self):
        if self.enabled:
            for writer in self.writers.values():
                writer.close()


def read_metrics(path):
    """Rows of a metrics.jsonl file."""
    with open(path, "r", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def now():
    return time.perf_counter()
