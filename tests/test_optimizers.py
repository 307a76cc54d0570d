"""The pretraining optimizers: per-optimizer settings."""

import pytest
from conftest import make_config

from electra_tf.training.builder import build_pretraining


def _lr_at(optimizer, step):
    optimizer.iterations.assign(step)
    return float(optimizer.learning_rate)


def test_each_optimizer_gets_its_own_warmup_decay_and_betas(tiny_data):
    run = build_pretraining(make_config(
        tiny_data, "train.mode=decoupled", "train.max_steps=100", "train.generator_lr=1e-3",
        "train.discriminator_lr=4e-3", "train.warmup_steps=5", "train.generator_warmup_steps=10",
        "train.discriminator_warmup_steps=4", "train.weight_decay=0.1", "train.discriminator_weight_decay=0.02",
        "train.generator_adam_beta1=0.8", "train.discriminator_adam_beta2=0.999"))
    gen, disc = (g.optimizer for g in run.groups)
    assert [g.name for g in run.groups] == ["generator", "discriminator"]
    # Warm-up: linear to the peak over each optimizer's own number of steps, then linear decay to 0.
    assert _lr_at(gen, 0) == pytest.approx(1e-3 / 10) and _lr_at(disc, 0) == pytest.approx(4e-3 / 4)
    assert _lr_at(gen, 3) == pytest.approx(1e-3 * 4 / 10) and _lr_at(disc, 3) == pytest.approx(4e-3)
    assert _lr_at(gen, 10) == pytest.approx(1e-3) and _lr_at(disc, 10) == pytest.approx(4e-3 * 90 / 96)
    assert _lr_at(gen, 100) == 0.0 and _lr_at(disc, 100) == 0.0
    assert (gen.weight_decay, disc.weight_decay) == pytest.approx((0.1, 0.02))
    assert (gen.beta_1, gen.beta_2) == pytest.approx((0.8, 0.98))
    assert (disc.beta_1, disc.beta_2) == pytest.approx((0.9, 0.999))


@pytest.mark.parametrize("mode", ["decoupled", "joint"])
def test_without_overrides_every_optimizer_uses_the_shared_settings(tiny_data, mode):
    run = build_pretraining(make_config(tiny_data, f"train.mode={mode}", "train.max_steps=100",
                                        "train.warmup_steps=8", "train.weight_decay=0.05", "train.adam_beta1=0.85",
                                        "train.adam_beta2=0.99"))
    peaks = {"joint": [run.cfg.train.learning_rate],
             "decoupled": [run.cfg.train.generator_lr, run.cfg.train.discriminator_lr]}[mode]
    assert len(run.groups) == len(peaks)
    for group, peak in zip(run.groups, peaks):
        opt = group.optimizer
        assert _lr_at(opt, 0) == pytest.approx(peak / 8) and _lr_at(opt, 7) == pytest.approx(peak)
        assert (opt.weight_decay, opt.beta_1, opt.beta_2) == pytest.approx((0.05, 0.85, 0.99))
