"""A model dir keeps its run: --overwrite, the lock, resume with changed data or steps, failed starts, disk full."""

import glob
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf
import yaml
from conftest import SMALL_MODEL, make_config, run_pretrain, subprocess_env
from data_fixtures import rebuilt_data

from electra_tf.data.manifest import DataError
from electra_tf.training.run_dir import ModelDirLocked
from electra_tf.training.trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _trainer(data, model_dir, *overrides, **kwargs):
    return Trainer(make_config(data, *overrides), str(model_dir), export=False, progress=False, **kwargs)


def _latest(model_dir):
    return tf.train.latest_checkpoint(os.path.join(str(model_dir), "checkpoints"))


def _saved_config(model_dir):
    with open(os.path.join(str(model_dir), "config.yaml")) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data):
    """A 4-step run (checkpoints at 2 and 4); tests copy it."""
    model_dir = tmp_path_factory.mktemp("trained") / "run"
    _trainer(tiny_data, model_dir).train()
    return model_dir


@pytest.fixture
def run_copy(trained, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(trained, target, symlinks=True)
    return target


@pytest.fixture(scope="module")
def other_data(tmp_path_factory, tiny_data):
    return rebuilt_data(tiny_data, str(tmp_path_factory.mktemp("other_data")))


def test_overwrite_resumes_a_run_of_the_same_config_and_logs_what_it_deletes(run_copy, tiny_data, caplog):
    caplog.set_level(logging.INFO)
    trainer = _trainer(tiny_data, run_copy, "train.max_steps=6", overwrite=True)
    trainer.train()
    assert "only discards a run of a different config" in caplog.text
    assert "resumed from" in caplog.text and _latest(run_copy).endswith("ckpt-6")
    caplog.clear()
    trainer = _trainer(tiny_data, run_copy, "train.generator_lr=2e-4", "train.max_steps=2", overwrite=True)
    assert not trainer.resume
    deleted = [r.getMessage() for r in caplog.records if "deleting" in r.getMessage()]
    assert deleted and all(n in deleted[0] for n in ("checkpoints", "metrics.jsonl", "config.yaml"))
    assert "train.generator_lr: 0.001 -> 0.0002" in deleted[0]
    assert _latest(run_copy) is None
    trainer.close()


HOLD_LOCK = ("import sys, time\nfrom electra_tf.training.run_dir import ModelDirLock\n"
             "ModelDirLock(sys.argv[1]).acquire()\nprint('locked', flush=True)\ntime.sleep(600)\n")


def _hold_lock(model_dir):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(model_dir)], stdout=subprocess.PIPE, text=True,
                              env={**subprocess_env(), "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get(
                                  "PYTHONPATH", "")])})
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_live_run_holds_the_model_dir_and_a_killed_one_does_not(tmp_path, tiny_data, caplog):
    model_dir = tmp_path / "run"
    holder = _hold_lock(model_dir)
    try:
        with pytest.raises(ModelDirLocked, match=f"PID {holder.pid} on host {socket.gethostname()}"):
            _trainer(tiny_data, model_dir)
        assert not (model_dir / "config.yaml").exists() and not (model_dir / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    caplog.set_level(logging.WARNING)
    trainer = _trainer(tiny_data, model_dir, "train.max_steps=2")  # the SIGKILLed holder left its lock file
    assert f"taking over the lock of PID {holder.pid}" in caplog.text
    trainer.train()
    assert _latest(model_dir).endswith("ckpt-2")
    with open(model_dir / ".lock") as f:
        assert f.read() == ""  # released at the end


@pytest.mark.slow
def test_second_pretrain_script_on_a_busy_model_dir_exits_2_naming_the_holder(tmp_path, tiny_data):
    model_dir = tmp_path / "run"
    holder = _hold_lock(model_dir)
    try:
        _, proc = run_pretrain(model_dir, tiny_data, "--no_export", steps=2, expect=2)
        assert f"PID {holder.pid} on host {socket.gethostname()}" in proc.stderr
        assert "Traceback" not in proc.stderr and not (model_dir / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    rows, proc = run_pretrain(model_dir, tiny_data, "--no_export", steps=2)
    assert [r["step"] for r in rows] == [1, 2] and "taking over the lock" in proc.stderr


def test_resume_on_data_in_other_shards_restores_all_but_the_data_position(run_copy, tiny_data, other_data, caplog):
    caplog.set_level(logging.INFO)
    trainer = _trainer(other_data["relayout"], run_copy, "train.max_steps=6")
    trainer.train()
    assert "the data changed since the last checkpoint" in caplog.text
    assert "resumed from" in caplog.text and "ckpt-4" in caplog.text
    assert _latest(run_copy).endswith("ckpt-6")
    assert _saved_config(run_copy)["data"]["path"] == other_data["relayout"]


def test_resume_on_another_vocabulary_of_the_same_size_is_refused_and_changes_nothing(run_copy, tiny_data,
                                                                                       other_data):
    before = _saved_config(run_copy)
    trainer = _trainer(other_data["other_vocab"], run_copy, "train.max_steps=6")
    with pytest.raises(ValueError, match="another vocabulary") as info:
        trainer.train()
    assert other_data["other_vocab"] in str(info.value) and os.path.abspath(tiny_data) in str(info.value)
    assert _saved_config(run_copy) == before and _latest(run_copy).endswith("ckpt-4")


def test_resume_with_max_steps_below_the_step_reached_is_an_error(run_copy, tiny_data):
    trainer = _trainer(tiny_data, run_copy, "train.max_steps=2")
    with pytest.raises(ValueError, match=r"train.max_steps \(2\) is below the step this run already reached \(4"):
        trainer.train()
    assert _saved_config(run_copy)["train"]["max_steps"] == 4 and _latest(run_copy).endswith("ckpt-4")


def test_a_start_that_failed_before_its_first_checkpoint_does_not_block_a_corrected_config(tmp_path, tiny_data,
                                                                                         monkeypatch, caplog):
    model_dir = tmp_path / "run"
    trainer = _trainer(tiny_data, model_dir, "train.generator_lr=10")

    def out_of_memory(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(trainer.steps, "train_step", out_of_memory)
    with pytest.raises(tf.errors.ResourceExhaustedError):
        trainer.train()
    caplog.set_level(logging.WARNING)
    trainer = _trainer(tiny_data, model_dir, "train.max_steps=2")  # corrected: no --overwrite needed
    trainer.train()
    assert "never reached its first checkpoint" in caplog.text
    assert _saved_config(model_dir)["train"]["generator_lr"] == 1e-3  # the preset's, not the failed 10


def _fill_disk_at(step_to_fail, monkeypatch):
    """Makes the checkpoint save of ``step_to_fail`` fail as TensorFlow does on a full disk, leaving its temp dir."""
    real_save = tf.train.CheckpointManager.save

    def save(self, checkpoint_number=None, **kwargs):
        if checkpoint_number == step_to_fail:
            partial = os.path.join(self.directory, f"ckpt-{checkpoint_number}_temp")
            os.makedirs(partial, exist_ok=True)
            with open(os.path.join(partial, "part-00000-of-00001.data-00000-of-00001"), "wb") as f:
                f.write(b"\0" * 100)
            raise tf.errors.ResourceExhaustedError(
                None, None, f"{partial}/part-00000-of-00001.data-00000-of-00001.tempstate1; No space left on device")
        return real_save(self, checkpoint_number=checkpoint_number, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)


def test_disk_full_during_a_save_keeps_the_last_checkpoint_and_exits_with_one_line(tmp_path, tiny_data, monkeypatch):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        import pretrain
    finally:
        sys.path.pop(0)
    from electra_tf.cli import EXIT_IO_ERROR, run_pretraining

    model_dir = tmp_path / "run"
    _fill_disk_at(4, monkeypatch)
    args = pretrain.parse_args(["--model_dir", str(model_dir), "--no_progress", "--no_export", "--set",
                                *make_config_args(tiny_data), "train.max_steps=6"])
    code, lines = run_pretraining(args)
    assert code == EXIT_IO_ERROR and code != 0
    assert len(lines) == 1 and lines[0].startswith(f"error: no space left on device at {model_dir / 'checkpoints'}")
    assert _latest(model_dir).endswith("ckpt-2")
    assert not glob.glob(str(model_dir / "checkpoints" / "*_temp*"))
    monkeypatch.undo()
    os.makedirs(model_dir / "checkpoints" / "ckpt-9_temp")  # as a save killed midway leaves it
    trainer = _trainer(tiny_data, model_dir, "train.max_steps=6")
    assert not (model_dir / "checkpoints" / "ckpt-9_temp").exists()
    trainer.train()
    assert _latest(model_dir).endswith("ckpt-6")


def make_config_args(data):
    return [*SMALL_MODEL, f"data.path={data}"]


def test_a_tampered_manifest_is_caught_before_training(tmp_path, tiny_data):
    copy = tmp_path / "data"
    shutil.copytree(tiny_data, copy)
    with open(copy / "manifest.json") as f:
        manifest = json.load(f)
    manifest["vocab_size"] = manifest["vocab_size"] + 88
    with open(copy / "manifest.json", "w") as f:
        json.dump(manifest, f)
    start = time.time()
    with pytest.raises(DataError, match=f"vocab_size {manifest['vocab_size']} but its vocabulary .* has "
                                        f"{manifest['vocab_size'] - 88} pieces"):
        _trainer(str(copy), tmp_path / "run")  # model.vocab_size is auto in the test config
    assert time.time() - start < 60 and not (tmp_path / "run" / "checkpoints").exists()
