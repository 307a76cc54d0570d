"""Learning-rate schedules: linear warm-up to the peak, linear decay to 0 at train.max_steps, logged as used."""

import json
import os

import pytest
from conftest import make_config

from electra_tf.training.builder import build_pretraining
from electra_tf.training.trainer import Trainer

WARMUP, MAX_STEPS = 10, 110
PEAKS = {"generator": 2e-4, "discriminator": 1.5e-3, "joint": 5e-4}
RATES = [f"train.generator_lr={PEAKS['generator']}", f"train.discriminator_lr={PEAKS['discriminator']}",
         f"train.learning_rate={PEAKS['joint']}"]


def _rate_at(optimizer, updates):
    """The rate ``optimizer`` uses for its update after ``updates`` updates were made."""
    optimizer.iterations.assign(updates)
    return float(optimizer.learning_rate.numpy())


@pytest.mark.parametrize("mode", ["decoupled", "joint"])
def test_warmup_reaches_the_peak_then_decays_linearly_to_zero_at_max_steps(tiny_data, mode):
    run = build_pretraining(make_config(tiny_data, f"train.mode={mode}", f"train.warmup_steps={WARMUP}",
                                        f"train.max_steps={MAX_STEPS}", *RATES))
    assert [g.name for g in run.groups] == (["generator", "discriminator"] if mode == "decoupled" else ["joint"])
    for group in run.groups:
        peak, opt = PEAKS[group.name], group.optimizer
        # Update 1 (0 made) already moves at peak / warm-up; update WARMUP is the first at the peak.
        assert _rate_at(opt, 0) == pytest.approx(peak / WARMUP, rel=1e-6)
        assert _rate_at(opt, WARMUP // 2 - 1) == pytest.approx(peak / 2, rel=1e-6)
        assert _rate_at(opt, WARMUP - 1) == pytest.approx(peak, rel=1e-6)
        assert _rate_at(opt, WARMUP) == pytest.approx(peak, rel=1e-6)
        # Halfway through the decay: half the peak; at max_steps (and after): 0.
        assert _rate_at(opt, (WARMUP + MAX_STEPS) // 2) == pytest.approx(peak / 2, rel=1e-6)
        assert _rate_at(opt, MAX_STEPS - 1) == pytest.approx(peak / (MAX_STEPS - WARMUP), rel=1e-5)
        assert _rate_at(opt, MAX_STEPS) == 0.0
        assert _rate_at(opt, MAX_STEPS + 5) == 0.0


def test_no_warmup_starts_at_the_peak(tiny_data):
    run = build_pretraining(make_config(tiny_data, "train.warmup_steps=0", "train.max_steps=8", *RATES))
    for group in run.groups:
        assert _rate_at(group.optimizer, 0) == pytest.approx(PEAKS[group.name], rel=1e-6)
        assert _rate_at(group.optimizer, 4) == pytest.approx(PEAKS[group.name] / 2, rel=1e-6)
        assert _rate_at(group.optimizer, 8) == 0.0


def test_the_logged_rate_is_the_one_the_steps_update_used(tmp_path, tiny_data):
    """Row k of metrics.jsonl shows the rate of update k (k-1 updates made), not of update k+1."""
    steps, warmup = 6, 2
    cfg = make_config(tiny_data, f"train.max_steps={steps}", f"train.warmup_steps={warmup}", "train.log_every=1",
                      "train.checkpoint_every=100", *RATES)
    model_dir = str(tmp_path / "run")
    Trainer(cfg, model_dir, export=False, progress=False).train()
    with open(os.path.join(model_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if '"split"' not in line]
    assert [r["step"] for r in rows] == list(range(1, steps + 1))

    def expected(peak, made):  # warm-up (made + 1) / warmup, then (steps - made) / (steps - warmup)
        return peak * min((made + 1) / warmup, (steps - made) / (steps - warmup))

    for row in rows:
        for name in ("generator", "discriminator"):
            assert row[f"lr_{name}"] == pytest.approx(expected(PEAKS[name], row["step"] - 1), rel=1e-6), row
    # The first update is at half the peak (warm-up of 2), the last at a quarter (decaying to 0 at step 6).
    assert rows[0]["lr_discriminator"] == pytest.approx(PEAKS["discriminator"] / 2, rel=1e-6)
    assert rows[-1]["lr_discriminator"] == pytest.approx(PEAKS["discriminator"] / 4, rel=1e-6)
