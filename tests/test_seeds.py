"""Seed streams: masks and samples never draw the same random numbers."""

import pytest
from conftest import make_config

from electra_tf import seeds
from electra_tf.config import ConfigError, load_config
from electra_tf.training.builder import build_pretraining


def _stream_seeds(seed, pipelines):
    masks = [seeds.mask_stream(seed, pipelines, p) for p in range(pipelines)]
    sampling = [seeds.sampling_stream(seed, offset) for offset in seeds.SAMPLING_STREAMS.values()]
    return masks, sampling


@pytest.mark.parametrize("seed", [0, 1, 5, 7918, 65_536, 1_000_002, seeds.SEED_LIMIT - 1])
@pytest.mark.parametrize("pipelines", [1, 2, 7, seeds.MAX_INPUT_PIPELINES])
def test_no_two_streams_share_a_stream_seed(seed, pipelines):
    masks, sampling = _stream_seeds(seed, pipelines)
    every = masks + sampling
    assert len(set(every)) == len(every), (seed, pipelines)
    assert max(every) < 2**63


def test_the_constants_keep_the_streams_apart_for_every_seed():
    """The conditions of the argument in seeds.py, so that it holds beyond the seeds tried above."""
    offsets = list(seeds.SAMPLING_STREAMS.values())
    assert len(set(offsets)) == len(offsets)
    assert all(seeds.MAX_INPUT_PIPELINES <= o < seeds.MASK_PIPELINE_MULTIPLIER - 1 for o in offsets)
    assert (seeds.SEED_LIMIT - 1) * seeds.MASK_PIPELINE_MULTIPLIER + seeds.MAX_INPUT_PIPELINES < 2**63


def test_seeds_and_pipelines_outside_the_safe_range_are_refused():
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\), got -1"):
        seeds.mask_stream(-1)
    with pytest.raises(ValueError, match="input pipelines must be in"):
        seeds.mask_stream(0, seeds.MAX_INPUT_PIPELINES + 1, 0)
    with pytest.raises(ConfigError, match=r"train.seed must be an integer in \[0, 2\*\*32\).*got -3"):
        load_config("tiny", ["train.seed=-3"])


def test_training_samples_do_not_reuse_the_masks_random_numbers(tiny_data):
    """Example i is masked with the key (train.seed, i); the Gumbel noise of its sample needs another key."""
    run = build_pretraining(make_config(tiny_data, "train.seed=3"))
    batch = run.cfg.train.batch_size
    masking = {(3, i) for i in range(4 * batch)}
    for step in range(4):
        sampling = run.steps._seeds(seeds.TRAIN_SAMPLING, step, 0, batch).numpy()
        assert not {tuple(int(v) for v in row) for row in sampling} & masking, step
