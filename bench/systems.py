"""What the benchmark measures, each built in the worker process that measures it.

A *system* is a train step that takes no arguments (it pulls its batch from
its own iterator) plus the number of tokens it trains on. Ours are built the
way ``scripts/pretrain.py`` builds them, by
:func:`electra_tf.training.builder.build_pretraining` (nothing written); Model Garden's in
:mod:`bench.model_garden`. The two *probes* measure the machine (matmul
GFLOP/s through TensorFlow) and the input pipeline (sequences/s).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Dict, List, Optional, Tuple

__all__ = ["SYSTEMS", "QUICK_MATMUL", "SystemSpec", "build_system", "config_for", "measure_matmul", "measure_pipeline"]


@dataclasses.dataclass(frozen=True)
class SystemSpec:
    """One benchmarked train step: whose, which mode, which precision, XLA or not."""

    name: str
    label: str
    kind: str = "ours"  # "ours" or "model_garden"
    mode: str = "decoupled"
    precision: str = "none"
    jit: bool = False
    recompute: bool = False  # train.recompute: blocks recomputed in the backward pass (less memory)


SYSTEMS: Dict[str, SystemSpec] = {s.name: s for s in [
    SystemSpec("model_garden_fp32", "Model Garden ElectraPretrainer, one Adam, fp32", kind="model_garden",
               mode="joint"),
    SystemSpec("model_garden_bf16", "Model Garden ElectraPretrainer, one Adam, mixed bfloat16", kind="model_garden",
               mode="joint", precision="bfloat16"),
    SystemSpec("ours_joint_fp32", "ours, joint (one AdamW), fp32", mode="joint"),
    SystemSpec("ours_decoupled_fp32", "ours, decoupled (two AdamW), fp32"),
    SystemSpec("ours_decoupled_bf16", "ours, decoupled, mixed bfloat16", precision="bfloat16"),
    SystemSpec("ours_decoupled_fp32_recompute", "ours, decoupled, fp32, train.recompute", recompute=True),
    # Not in the default set: measured on request (--systems) to decide whether XLA helps.
    SystemSpec("ours_decoupled_fp32_xla", "ours, decoupled, fp32, XLA", jit=True),
    SystemSpec("ours_decoupled_bf16_xla", "ours, decoupled, mixed bfloat16, XLA", precision="bfloat16", jit=True),
]}


def config_for(preset: str, overrides: List[str], data_dir: str, spec: Optional[SystemSpec] = None):
    """The config of a benchmark run: the preset, the synthetic data, the caller's overrides, the system's mode."""
    from electra_tf.config import load_config

    items = [f"data.path={data_dir}", "data.shuffle_buffer=1000", "train.eval_every=0", *overrides]
    if spec is not None:
        items += [f"train.mode={spec.mode}", f"train.mixed_precision={spec.precision}",
                  f"train.jit_compile={str(spec.jit).lower()}", f"train.recompute={str(spec.recompute).lower()}"]
    return load_config(preset, items)


def build_system(spec: SystemSpec, preset: str, overrides: List[str],
                 data_dir: str) -> Tuple[Callable[[], object], int]:
    """Returns ``(step, tokens_per_step)`` for one system; ``step()`` trains one step and returns tensors."""
    from bench.flops import Dims

    cfg = config_for(preset, overrides, data_dir, spec)
    if spec.kind == "model_garden":
        from bench.model_garden import build_model_garden_step

        dims = Dims.from_config(cfg)
        step = build_model_garden_step(dims, data_dir, dims.batch_size, learning_rate=cfg.train.learning_rate,
                                       disc_weight=cfg.train.disc_weight, seed=cfg.train.seed,
                                       precision=spec.precision)
        return step, dims.tokens_per_step
    from electra_tf.training.builder import build_pretraining

    run = build_pretraining(cfg)  # models, optimizers and the step; nothing written
    return run.train_step, run.cfg.train.batch_size * run.cfg.data.max_seq_length


def _timed_calls(fn: Callable[[], object], calls: int) -> List[float]:
    import tensorflow as tf

    times = []
    for _ in range(calls):
        start = time.perf_counter()
        for t in tf.nest.flatten(fn()):
            t.numpy()
        times.append(time.perf_counter() - start)
    return times


QUICK_MATMUL = {"repeats": 3, "shapes": ((512, 512, 512),)}


def measure_matmul(repeats: int = 10, shapes=((4096, 1024, 1024), (2048, 2048, 2048))) -> Dict[str, float]:
    """The best GFLOP/s of ``tf.matmul`` over ``shapes`` (M, K, N), in float32 and bfloat16.

    Median time per call of each shape, best shape reported: the practical
    peak that the step's matmuls (dispatched the same way, through
    TensorFlow's oneDNN kernels) can reach on this machine.
    """
    import statistics

    import tensorflow as tf

    out = {}
    for dtype, key in ((tf.float32, "matmul_fp32_gflops"), (tf.bfloat16, "matmul_bf16_gflops")):
        best = 0.0
        for m, k, n in shapes:
            a = tf.cast(tf.random.normal([m, k]), dtype)
            b = tf.cast(tf.random.normal([k, n]), dtype)
            fn = tf.function(lambda a=a, b=b: tf.matmul(a, b)[:1, :1])
            _timed_calls(fn, 2)
            seconds = statistics.median(_timed_calls(fn, repeats))
            best = max(best, 2.0 * m * k * n / seconds / 1e9)
        out[key] = best
    return out


def measure_pipeline(cfg, batches: int = 60) -> Dict[str, float]:
    """Sequences/s that :func:`~electra_tf.data.tfrecords.pretraining_dataset` delivers (reading, parsing, masking)."""
    from electra_tf.data.tfrecords import pretraining_dataset

    d = cfg.data
    ds = pretraining_dataset(d.path, batch_size=cfg.train.batch_size, max_seq_length=d.max_seq_length,
                             mask_prob=d.mask_prob, max_predictions=d.max_predictions,
                             mask_token_prob=d.mask_token_prob, seed=cfg.train.seed, shuffle_buffer=d.shuffle_buffer)
    it = iter(ds)
    for _ in range(5):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)["input_ids"].numpy()
    seconds = time.perf_counter() - start
    return {"data_pipeline_sequences_per_sec": batches * cfg.train.batch_size / seconds}
