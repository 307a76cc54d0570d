"""The objective as the paper writes it, the float16 loss scale, and the builder's promise to write nothing."""

import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_config

from electra_tf.models.objective import DecoupledObjective, JointObjective, objective_for
from electra_tf.training.loss_scale import DynamicLossScale


def test_joint_objective_is_gen_loss_plus_lambda_disc_loss_for_one_optimizer():
    losses = JointObjective(50)(gen_loss=tf.constant(2.0), disc_loss=tf.constant(0.25))
    assert list(losses) == ["joint"] == list(JointObjective.groups)
    assert float(losses["joint"]) == 2.0 + 50 * 0.25


def test_decoupled_objective_gives_each_optimizer_its_own_loss():
    losses = DecoupledObjective()(gen_loss=tf.constant(2.0), disc_loss=tf.constant(0.25))
    assert {k: float(v) for k, v in losses.items()} == {"generator": 2.0, "discriminator": 0.25}
    assert list(DecoupledObjective.groups) == ["generator", "discriminator"]


def test_objective_for_names_the_accepted_modes():
    assert isinstance(objective_for("joint", 3.0), JointObjective)
    assert isinstance(objective_for("decoupled"), DecoupledObjective)
    with pytest.raises(ValueError, match="train.mode must be one of joint, decoupled; got 'both'"):
        objective_for("both")


def test_loss_scale_backs_off_on_overflow_and_never_below_one():
    scale = DynamicLossScale("g", initial_scale=4.0, growth_interval=3)
    scale.update(tf.constant(True))
    scale.update(tf.constant(False))  # overflow: halve and restart the count of good steps
    assert float(scale.scale.numpy()) == 2.0 and int(scale.good_steps.numpy()) == 0
    for _ in range(3):
        scale.update(tf.constant(False))
    assert float(scale.scale.numpy()) == 1.0


def test_loss_scale_doubles_after_growth_interval_good_steps():
    scale = DynamicLossScale("g", initial_scale=8.0, growth_interval=3)
    for expected in (8.0, 8.0, 16.0, 16.0, 16.0, 32.0):
        scale.update(tf.constant(True))
        assert float(scale.scale.numpy()) == expected
    assert int(scale.good_steps.numpy()) == 0


def test_loss_scale_refuses_bad_settings():
    with pytest.raises(ValueError, match="initial_scale must be >= 1, got 0.5"):
        DynamicLossScale("g", initial_scale=0.5)
    with pytest.raises(ValueError, match="growth_interval must be >= 1, got 0"):
        DynamicLossScale("g", growth_interval=0)


def _tree(root):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)


def test_build_pretraining_writes_nothing_and_trains(tmp_path, tiny_data, monkeypatch):
    from electra_tf.training.builder import build_pretraining

    monkeypatch.chdir(tmp_path)
    before = _tree(tiny_data)
    run = build_pretraining(make_config(tiny_data, "train.mode=joint", "embedding_sharing=shared"))
    assert [g.name for g in run.groups] == ["joint"] and isinstance(run.objective, JointObjective)
    assert set(run.checkpoint_objects()) >= {"generator", "discriminator", "optimizer", "step", "iterator"}
    norms, finite = run.train_step()
    assert bool(finite) and np.isfinite(float(norms[0])) and int(run.steps.step.numpy()) == 1
    sums, hist = run.eval_step(next(iter(run.dataset("eval", shuffle=False))), tf.constant(0, tf.int64))
    assert float(sums["disc_count"]) > 0 and hist.shape == (2, 2000)
    assert os.listdir(tmp_path) == [] and _tree(tiny_data) == before


def test_build_pretraining_refuses_missing_data(tiny_data):
    from electra_tf.training.builder import build_pretraining

    cfg = make_config(tiny_data, "data.path=null")
    with pytest.raises(ValueError, match="no data: pass a data dir or a tf.data.Dataset"):
        build_pretraining(cfg)
