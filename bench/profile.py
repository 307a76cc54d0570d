"""Where a train step spends its time: the TensorBoard profiler's trace, summarised by op type.

:func:`profile_steps` runs a few steps under ``tf.profiler.experimental`` (the
trace is kept in ``logdir`` for TensorBoard's Profile tab) and
:func:`op_time_table` adds up the host's TensorFlow op events in the written
``*.xplane.pb`` by op type (``MatMul``, ``_FusedMatMul``, ``Softmax``, ...),
which is what the benchmark reports as "what dominates".
"""

from __future__ import annotations

import collections
import glob
import os
import re
from typing import Callable, Dict, List, Tuple

import tensorflow as tf

__all__ = ["profile_steps", "op_time_table", "format_op_table"]

# TF op events on the host plane are named "name:OpType" (or "name/...:OpType").
_OP_NAME = re.compile(r"^(?P<name>.*):(?P<type>[A-Za-z0-9_]+)$")


def profile_steps(step: Callable[[], object], logdir: str, steps: int = 2) -> str:
    """Runs ``step()`` ``steps`` times under the profiler; returns the ``.xplane.pb`` written."""
    tf.profiler.experimental.start(logdir)
    try:
        for _ in range(steps):
            result = step()
            for t in tf.nest.flatten(result):
                if hasattr(t, "numpy"):
                    t.numpy()
    finally:
        tf.profiler.experimental.stop()
    files = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")), key=os.path.getmtime)
    if not files:
        raise FileNotFoundError(f"the profiler wrote no .xplane.pb under {logdir}")
    return files[-1]


def op_time_table(xplane_path: str) -> Tuple[Dict[str, float], float]:
    """``({op_type: self-inclusive seconds}, total seconds)`` of TF op events on the host plane.

    Each kernel event is counted once, on whichever thread ran it; the total
    is the sum over op events (it exceeds wall time when ops ran in parallel).
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as f:
        space.ParseFromString(f.read())
    by_type: Dict[str, float] = collections.defaultdict(float)
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        names = {mid: md.name for mid, md in plane.event_metadata.items()}
        for line in plane.lines:
            if "Compute" not in line.name and "Executor" not in line.name and "tf_" not in line.name:
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                match = None if "::" in name else _OP_NAME.match(name)
                if match:
                    by_type[match.group("type")] += event.duration_ps * 1e-12
    return dict(by_type), sum(by_type.values())


def format_op_table(by_type: Dict[str, float], total: float, top: int = 15) -> List[str]:
    """Markdown rows ``| op | seconds | share |`` of the ``top`` op types by time."""
    rows = ["| op type | s (all threads) | share |", "|---|---:|---:|"]
    for name, seconds in sorted(by_type.items(), key=lambda kv: -kv[1])[:top]:
        rows.append(f"| {name} | {seconds:.3f} | {100 * seconds / max(total, 1e-12):.1f}% |")
    return rows
