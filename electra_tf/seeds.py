"""Seed streams: the one place that says which random numbers are keyed by what.

Every random draw in pretraining and evaluation is a stateless op keyed by a
pair ``(stream seed, counter)``. The counter is an example index; the stream
seed is derived from ``train.seed`` (or the evaluation's ``seed``) by the
functions below. Changing a constant changes every mask or sample it keys:
they are part of the format of a reproducible run.

The streams of one run never share a stream seed, so no mask and no sample
reuse each other's random numbers, whatever the counters. With ``s`` the seed
(``0 <= s < SEED_LIMIT``), ``n`` input pipelines (``n <= MAX_INPUT_PIPELINES``)
and ``M = MASK_PIPELINE_MULTIPLIER``:

* masks use ``s`` (one pipeline) or ``s * M + p`` (pipeline ``p < n``);
* each sampling stream uses ``s + offset``, with distinct offsets in
  ``[MAX_INPUT_PIPELINES, M - 1)``.

``s + offset`` differs from ``s`` (offset > 0); it differs from ``s * M + p``
because for ``s = 0`` that is ``p < n <= offset``, and for ``s >= 1`` it is at
least ``s + (M - 1) > s + offset``; distinct offsets give distinct sampling
streams. ``tests/test_seeds.py`` checks these conditions on the constants.

The held-out split of a run is masked with the same keys as its training
split (``(s, example index)``): the examples differ, so the masks do not
repeat a training mask on the same tokens.
"""

import numbers

# Train seeds are in [0, SEED_LIMIT) (config validation); s * M then fits in int64 with room to spare.
SEED_LIMIT = 2**32

# Masks: data/tfrecords.py keys example i of pipeline p by (seed, i) with one
# input pipeline, else by (seed * MASK_PIPELINE_MULTIPLIER + p, i).
MASK_PIPELINE_MULTIPLIER = 1_000_003
MAX_INPUT_PIPELINES = 4096

# Generator samples during training: (train.seed + TRAIN_SAMPLING, step * global batch + i).
TRAIN_SAMPLING = 65_537

# Generator samples of the in-training evaluation: (train.seed + EVAL_SAMPLING, eval batch index * batch + i).
EVAL_SAMPLING = 7919

# Generator samples of the fair RTD evaluation (evaluation/rtd.py): (seed + RTD_SAMPLING, example index);
# its masks use (seed, example index), so the offset keeps the two apart.
RTD_SAMPLING = 104_729

# Token ids of Admin's profiling batch (models/factory.py, model.init: admin): (train.seed + ADMIN_PROFILE, 0).
ADMIN_PROFILE = 524_287

SAMPLING_STREAMS = {"train": TRAIN_SAMPLING, "eval": EVAL_SAMPLING, "rtd": RTD_SAMPLING, "admin": ADMIN_PROFILE}


def mask_stream(seed: int, pipelines: int = 1, pipeline_id: int = 0) -> int:
    """The stream seed of the masks read by input pipeline ``pipeline_id`` of ``pipelines``.

    Raises:
        ValueError: ``seed`` outside ``[0, SEED_LIMIT)`` or more than
            ``MAX_INPUT_PIPELINES`` pipelines (streams could then collide).
    """
    check_seed(seed)
    seed = int(seed)
    if not 1 <= pipelines <= MAX_INPUT_PIPELINES:
        raise ValueError(f"the number of input pipelines must be in [1, {MAX_INPUT_PIPELINES}] for the mask and "
                         f"sampling seed streams to stay apart, got {pipelines}")
    if not 0 <= pipeline_id < pipelines:
        raise ValueError(f"input pipeline id must be in [0, {pipelines}), got {pipeline_id}")
    return seed if pipelines == 1 else seed * MASK_PIPELINE_MULTIPLIER + pipeline_id


def sampling_stream(seed: int, offset: int) -> int:
    """The stream seed of a sampling stream (``TRAIN_SAMPLING``, ``EVAL_SAMPLING`` or ``RTD_SAMPLING``)."""
    check_seed(seed)
    seed = int(seed)
    if offset not in SAMPLING_STREAMS.values():
        raise ValueError(f"unknown sampling stream offset {offset}; the streams are {SAMPLING_STREAMS}")
    return seed + offset


def check_seed(seed) -> None:
    """Raises ValueError unless ``seed`` is an integer in ``[0, SEED_LIMIT)``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"a seed must be an integer in [0, 2**32), got {seed!r}")
