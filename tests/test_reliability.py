"""Each reliability promise: exact resume, preemption, divergence guard, warm start, multi-worker, bad input."""

import glob
import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_config, pretrain_command, run_pretrain, subprocess_env, wait_for_step

from electra_tf.exit_codes import PREEMPTED as PREEMPTED_EXIT_CODE
from electra_tf.training.builder import build_pretraining
from electra_tf.training.trainer import Trainer

HERE = os.path.dirname(os.path.abspath(__file__))
DET = ["train.deterministic=true", "train.seed=7", "train.log_every=5", "train.checkpoint_every=10"]


def _checkpoint_values(model_dir):
    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    reader = tf.train.load_checkpoint(path)
    keys = [k for k in reader.get_variable_to_shape_map()
            if k.startswith(("generator/", "discriminator/", "generator_optimizer/", "discriminator_optimizer/"))]
    return path, {k: reader.get_tensor(k) for k in keys}


def _tensorboard_steps(model_dir):
    from tensorboard.compat.proto import event_pb2

    seen = []
    for path in glob.glob(os.path.join(model_dir, "tensorboard", "train", "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag == "gen_loss":
                    seen.append(event.step)
    return seen


def _strip_timing(rows):
    return [{k: v for k, v in r.items() if k != "tokens_per_sec"} for r in rows]


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_unbroken_run(tmp_path, tiny_data):
    steps = 120
    unbroken = tmp_path / "unbroken"
    rows_a, _ = run_pretrain(unbroken, tiny_data, "--no_export", "--set", *DET, steps=steps)

    broken = tmp_path / "broken"
    proc = subprocess.Popen(pretrain_command(broken, tiny_data, "--no_export", "--set", *DET, steps=steps),
                            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_step(broken, lambda: proc.poll() is None, 45)  # past the checkpoints at 10..40, between two of them
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = tf.train.latest_checkpoint(str(broken / "checkpoints"))
    assert killed_at is not None and int(killed_at.rsplit("-", 1)[1]) < steps
    rows_b, proc = run_pretrain(broken, tiny_data, "--no_export", "--set", *DET, steps=steps)
    assert "resumed from" in proc.stderr

    path_a, values_a = _checkpoint_values(unbroken)
    path_b, values_b = _checkpoint_values(broken)
    assert path_a.endswith(f"ckpt-{steps}") and path_b.endswith(f"ckpt-{steps}")
    assert values_a.keys() == values_b.keys() and len(values_a) > 50
    for key in values_a:
        np.testing.assert_array_equal(values_a[key], values_b[key], err_msg=key)
    assert _strip_timing(rows_a) == _strip_timing(rows_b)  # no duplicated or missing rows
    tb = _tensorboard_steps(broken)
    assert sorted(tb) == sorted(set(tb)) == list(range(5, steps + 1, 5))


@pytest.mark.slow
def test_sigterm_saves_and_exits_with_the_documented_code(tmp_path, tiny_data):
    model_dir = tmp_path / "run"
    cmd = pretrain_command(model_dir, tiny_data, "--no_export", "--set", "train.checkpoint_every=1000",
                           "train.log_every=1", steps=2000)
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_step(model_dir, lambda: proc.poll() is None, 20)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == PREEMPTED_EXIT_CODE == 75, err[-2000:]
    saved = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    saved_step = int(saved.rsplit("-", 1)[1])
    assert 20 <= saved_step < 1000  # saved at the step it stopped, not at a regular interval
    rows, proc = run_pretrain(model_dir, tiny_data, "--no_export", "--set", "train.checkpoint_every=1000",
                              "train.log_every=1", steps=saved_step + 3)
    assert [r["step"] for r in rows] == list(range(1, saved_step + 4))


def test_divergence_guard_skips_then_stops_and_keeps_the_good_checkpoint(tmp_path, tiny_data):
    model_dir = tmp_path / "run"
    rows, proc = run_pretrain(model_dir, tiny_data, "--no_export", "--set", "train.warmup_steps=0",
                              "train.generator_lr=1e30", "train.discriminator_lr=1e30", "train.max_skipped_steps=3",
                              "train.checkpoint_every=1", "train.log_every=1", steps=50, expect=3)
    assert "consecutive steps had a non-finite loss or gradient" in proc.stderr
    assert "Lower the learning rate" in proc.stderr
    skipped = [r["skipped_steps"] for r in rows]
    assert skipped[-3:] == [1, 2, 3] and rows[-1]["step"] < 50
    last_good = rows[-4]["step"]  # the step before the skips began
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    assert latest.endswith(f"ckpt-{last_good}")
    reader = tf.train.load_checkpoint(latest)  # intact: every variable reads, and is finite
    keys = [k for k in reader.get_variable_to_shape_map() if k.endswith("VARIABLE_VALUE")]
    assert len(keys) > 50
    for key in keys:
        value = reader.get_tensor(key)
        assert value.dtype.kind not in "fc" or np.all(np.isfinite(value)), key


def test_skipped_step_leaves_variables_and_optimizer_untouched(tmp_path, tiny_data):
    trainer = build_pretraining(make_config(tiny_data))
    trainer.steps.train_step()
    before = [v.numpy().copy() for v in trainer.discriminator.weights]
    iterations = [int(g.optimizer.iterations.numpy()) for g in trainer.groups]
    kernel = trainer.discriminator.rtd_head.logit.kernel
    kernel.assign(tf.fill(kernel.shape, float("nan")))
    nan_copy = [v.numpy().copy() for v in trainer.discriminator.weights]
    _, finite = trainer.steps.train_step()
    assert not bool(finite)
    assert int(trainer.steps.skipped_steps.numpy()) == 1
    assert [int(g.optimizer.iterations.numpy()) for g in trainer.groups] == iterations
    for a, b in zip(nan_copy, trainer.discriminator.weights):
        np.testing.assert_array_equal(a, b.numpy())
    assert len(before) == len(nan_copy)


@pytest.mark.parametrize("bad_example", [5, 2, -1], ids=["on_replica_1", "on_replica_0", "none"])
def test_a_loss_overflowing_on_one_replica_is_skipped_by_every_replica(tiny_data, bad_example):
    """One skip decision: a non-finite loss on either replica skips the step everywhere, weights untouched."""
    proc = subprocess.run([sys.executable, os.path.join(HERE, "helpers", "one_skip_decision.py"), tiny_data,
                           str(bad_example)], capture_output=True, text=True, env=subprocess_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["replicas_agree"]
    skipped = bad_example >= 0
    assert (result["finite"], result["skipped_steps"]) == (not skipped, int(skipped))
    assert result["changed_on_replica"] == [not skipped, not skipped]


def test_warm_start_loads_weights_not_optimizer_state(tmp_path, tiny_data):
    source = tmp_path / "source"
    run_pretrain(source, tiny_data, steps=4)
    cfg = make_config(tiny_data)
    trainer = build_pretraining(cfg)
    from electra_tf.training.warm_start import warm_start

    warm_start(str(source), trainer.generator, trainer.discriminator)
    from electra_tf.pretrained import load_pretrained

    _, source_gen, source_disc = load_pretrained(str(source))
    for mine, theirs in zip(trainer.generator.weights + trainer.discriminator.weights,
                            source_gen.weights + source_disc.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)
    assert np.abs(source_disc.rtd_head.logit.kernel.numpy()).sum() > 0
    assert all(int(g.optimizer.iterations.numpy()) == 0 for g in trainer.groups)
    # The same works from the exports alone.
    other = build_pretraining(cfg)
    warm_start(str(source / "export"), other.generator, other.discriminator)
    np.testing.assert_array_equal(other.discriminator.rtd_head.logit.kernel.numpy(),
                                  source_disc.rtd_head.logit.kernel.numpy())


def test_warm_start_refuses_a_shape_mismatch_naming_the_variable(tmp_path, tiny_data):
    source = tmp_path / "source"
    run_pretrain(source, tiny_data, "--no_export", steps=2)
    _, proc = run_pretrain(tmp_path / "bad", tiny_data, "--init_from", str(source), "--no_export", "--set",
                           "generator.hidden_size=8", "generator.intermediate_size=16", steps=2, expect=2)
    assert "do not fit" in proc.stderr and "incompatible tensor with shape" in proc.stderr
    assert "and name generator/" in proc.stderr  # the variable, with both shapes


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_train_identically_and_only_the_chief_writes(tmp_path, tiny_data):
    ports = [str(_free_port()), str(_free_port())]
    model_dir = tmp_path / "mw"
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "helpers", "multi_worker_run.py"), str(i), *ports,
                               tiny_data, str(model_dir), str(tmp_path / f"w{i}.npz")],
                              env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(w0.files) > 30
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])
    written = sorted(os.listdir(model_dir))
    assert written == [".lock", ".versions", "checkpoints", "config.yaml", "export", "metrics.jsonl", "run_data.json",
                       "tensorboard"]
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith("ckpt-3")
    # The non-chief wrote its obligatory checkpoint copy to a scratch dir and removed it.
    with open(model_dir / "metrics.jsonl") as f:
        steps = [line for line in f if '"split"' not in line]
    assert len(steps) == 3


def test_a_different_config_in_the_model_dir_is_refused_unless_overwrite(tmp_path, tiny_data):
    model_dir = tmp_path / "run"
    run_pretrain(model_dir, tiny_data, "--no_export", steps=2)
    _, proc = run_pretrain(model_dir, tiny_data, "--no_export", "--set", "train.generator_lr=2e-4", steps=4,
                           expect=2)
    assert "already holds a run with a different config" in proc.stderr
    assert "train.generator_lr: 0.001 -> 0.0002" in proc.stderr
    rows, _ = run_pretrain(model_dir, tiny_data, "--no_export", steps=4)  # same config: resumes
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    rows, _ = run_pretrain(model_dir, tiny_data, "--no_export", "--overwrite", "--set", "train.generator_lr=2e-4",
                           steps=2)
    assert [r["step"] for r in rows] == [1, 2]


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, tiny_data):
    model_dir = tmp_path / "run"
    run_pretrain(model_dir, tiny_data, "--no_export", steps=4)  # checkpoints at 2 and 4
    data_files = glob.glob(str(model_dir / "checkpoints" / "ckpt-4.data-*"))
    assert data_files
    with open(data_files[0], "r+b") as f:
        f.truncate(100)
    rows, proc = run_pretrain(model_dir, tiny_data, "--no_export", steps=6)
    assert "ckpt-4 cannot be restored" in proc.stderr and "falling back" in proc.stderr
    assert "resumed from" in proc.stderr and "ckpt-2" in proc.stderr
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]


def test_interrupted_export_leaves_no_partial_export(tmp_path, tiny_data, monkeypatch):
    from electra_tf import export as export_module

    trainer = Trainer(make_config(tiny_data), str(tmp_path / "m"), progress=False, export=export_module.export_models)
    real_save = tf.saved_model.save

    def dying_save(module, path, signatures=None, **kwargs):
        real_save(module, path, signatures=signatures, **kwargs)
        raise KeyboardInterrupt("killed mid-export")

    monkeypatch.setattr(export_module.tf.saved_model, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        trainer.export()
    export_dir = tmp_path / "m" / "export"
    assert not (export_dir / "discriminator").exists() and not (export_dir / "generator").exists()
    leftovers = [p for p, _, files in os.walk(tmp_path / "m") if "saved_model.pb" in files]
    assert leftovers == []  # no SavedModel anywhere that a reader could take as whole


@pytest.mark.parametrize("override,message", [
    ("train.generator_lr=0", "train.generator_lr must be > 0, got 0"),
    ("train.learning_rat=1", "unknown config key train.learning_rat"),
    ("data.max_seq_length=128", "data.max_seq_length must be <= model.max_position_embeddings (64), got 128"),
    ("model.vocab_size=1000", "1000"),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, tiny_data, override, message):
    model_dir = tmp_path / "never"
    _, proc = run_pretrain(model_dir, tiny_data, "--set", override, steps=2, expect=2)
    assert message in proc.stderr
    assert not model_dir.exists()
