"""Seed streams: the one place that says which random numbers are keyed by what.

Every random draw in pretraining and evaluation is a stateless op keyed by a
pair ``(stream seed, counter)``. The stream seed is ``train.seed`` (or the
evaluation's ``seed``) plus one of the offsets below, so two uses of the same
seed never draw the same numbers; the counter is an example index. Changing a
constant changes every mask or sample it keys: they are part of the format of
a reproducible run.
"""

# Masks: data/tfrecords.py keys example i of pipeline p by (seed, i) with one
# input pipeline, else by (seed * MASK_PIPELINE_MULTIPLIER + p, i).
MASK_PIPELINE_MULTIPLIER = 1_000_003

# Generator samples during training: (train.seed + TRAIN_SAMPLING, step * global batch + i).
TRAIN_SAMPLING = 0

# Generator samples of the in-training evaluation: (train.seed + EVAL_SAMPLING, eval batch index * batch + i).
EVAL_SAMPLING = 7919

# Generator samples of the fair RTD evaluation (evaluation/rtd.py): (seed + RTD_SAMPLING, example index);
# its masks use (seed, example index), so the offset keeps the two apart.
RTD_SAMPLING = 104_729

# Token ids of Admin's profiling batch (models/factory.py, model.init: admin): (train.seed + ADMIN_PROFILE, 0).
ADMIN_PROFILE = 15_485_863
