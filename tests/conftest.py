"""Shared test setup: quiet TensorFlow, seeded, CPU only."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end tests that take more than ~20 s (CI runs them)")


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
    yield


TEST_VOCAB, TEST_SEQ = 512, 32

# A test-sized model: small enough that one step takes milliseconds.
SMALL_MODEL = [
    "model.vocab_size=auto", "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
    "model.intermediate_size=64", "model.max_position_embeddings=64", "model.relative_buckets=8",
    "model.relative_max_distance=16", "generator.hidden_size=16", "generator.num_layers=1",
    "generator.num_heads=1", "generator.intermediate_size=32", f"data.max_seq_length={TEST_SEQ}",
    "data.shuffle_buffer=100", "train.batch_size=8", "train.warmup_steps=2", "train.max_steps=4",
    "train.log_every=1", "train.checkpoint_every=2", "train.eval_steps=2",
]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A data dir built from a small slice of the built-in corpus (shared by the whole session)."""
    from electra_tf.data.builtin import ensure_builtin_data

    root = tmp_path_factory.mktemp("builtin")
    return ensure_builtin_data(str(root), vocab_size=TEST_VOCAB, max_seq_length=TEST_SEQ, corpus_mb=0.3)


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory, tiny_data):
    """A pretraining model dir (4 steps of the test-sized model) with its exports, for fine-tuning tests."""
    from electra_tf.export import export_models
    from electra_tf.training.trainer import Trainer

    model_dir = str(tmp_path_factory.mktemp("pretrained"))
    Trainer(make_config(tiny_data), model_dir, export=export_models, progress=False).train()
    return model_dir


def finetune_cli(*args):
    """Runs scripts/finetune.py's main() in this process with ``args``; returns its exit code."""
    from importlib import util

    spec = util.spec_from_file_location("finetune_script", os.path.join(ROOT, "scripts", "finetune.py"))
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(list(args))


def make_config(data_dir, *overrides):
    from electra_tf.config import load_config

    return load_config("tiny", [*SMALL_MODEL, f"data.path={data_dir}", *overrides])


def pretrain_command(model_dir, data, *extra, steps=3):
    """The scripts/pretrain.py command line for a test-sized run."""
    return [sys.executable, os.path.join(ROOT, "scripts", "pretrain.py"), "--model_dir", str(model_dir),
            "--no_progress", "--set", *SMALL_MODEL, f"data.path={data}", f"train.max_steps={steps}", *extra]


def subprocess_env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def run_pretrain(model_dir, data, *extra, steps=3, expect=0):
    """Runs scripts/pretrain.py; returns (metrics rows, completed process)."""
    proc = subprocess.run(pretrain_command(model_dir, data, *extra, steps=steps), capture_output=True, text=True,
                          env=subprocess_env(), timeout=900)
    assert proc.returncode == expect, proc.stderr[-3000:]
    path = os.path.join(model_dir, "metrics.jsonl")
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f]
    return rows, proc


def wait_for_step(model_dir, running, step, timeout=300):
    """Waits until ``model_dir``'s metrics log has a row of ``step``; ``running()`` False first is a failure."""
    path = os.path.join(model_dir, "metrics.jsonl")
    start = time.time()
    while time.time() - start < timeout:
        assert running(), "the run ended before it could be interrupted"
        if os.path.exists(path):
            with open(path) as f:
                if any(f'"step": {step},' in line for line in f):
                    return
        time.sleep(0.02)
    raise AssertionError(f"step {step} not reached in {timeout}s")
