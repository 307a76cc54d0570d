"""`scripts/pretrain.py --strategy multi_worker` with two real worker processes on 127.0.0.1.

Each test starts the CLI itself twice (TF_CONFIG names worker 0, the chief, and worker 1), as a user of a
cluster would: the run ends with both exit codes 0 and one export, and a restart the chief refuses ends
both; a run killed after a checkpoint and restarted on both workers equals an unbroken one; SIGTERM to
any one worker stops both at the same step (exit code 75) and the restart continues. And replica invariance
across workers: two workers, each fed its half of fixed global batches (tests/helpers/fixed_batches_run.py),
train like one process fed the whole batches.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_config, pretrain_command, subprocess_env, wait_for_step

from electra_tf.exit_codes import BAD_INPUT, OK, PREEMPTED

# Deterministic ops, one log row per step, checkpoints every 10 steps, no held-out eval in the loop.
DET = ["--no_export", "--set", "train.deterministic=true", "train.seed=7", "train.log_every=1",
       "train.checkpoint_every=10", "train.eval_every=0"]
STEPS = 40


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


class Processes:
    """Processes started at once, each with its own environment; output to files (no pipe can fill up)."""

    def __init__(self, log_dir, commands, tag="run"):
        """``commands``: [(name, argv, extra environment)]; logs are ``{tag}-{name}.out`` and ``.err``."""
        self.logs = [(os.path.join(log_dir, f"{tag}-{name}.out"), os.path.join(log_dir, f"{tag}-{name}.err"))
                     for name, _, _ in commands]
        self.procs = []
        for (_, cmd, env), (out_path, err_path) in zip(commands, self.logs):
            with open(out_path, "w") as out, open(err_path, "w") as err:
                self.procs.append(subprocess.Popen(cmd, env={**subprocess_env(), **env}, stdout=out, stderr=err))

    def wait(self, timeout=600):
        """Waits for all; kills all if any outlives ``timeout``; returns [(code, stdout, stderr)]."""
        deadline = time.time() + timeout
        try:
            for p in self.procs:
                p.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            self.kill()
        results = []
        for p, (out, err) in zip(self.procs, self.logs):
            with open(out) as f_out, open(err) as f_err:
                results.append((p.returncode, f_out.read(), f_err.read()))
        return results

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()

    def running(self):
        return all(p.poll() is None for p in self.procs)


def _worker_envs(n=2):
    """The environment of each of ``n`` workers on 127.0.0.1 (free ports; worker 0 is the chief)."""
    ports = _free_ports(n)
    return [{"TF_CONFIG": _tf_config(ports, i)} for i in range(n)]


class Workers(Processes):
    """Two `scripts/pretrain.py --strategy multi_worker` processes."""

    def __init__(self, log_dir, model_dir, data, *extra, steps, tag="run"):
        cmd = pretrain_command(model_dir, data, "--strategy", "multi_worker", "--worker_timeout", "120", *extra,
                               steps=steps)
        super().__init__(log_dir, [(f"w{i}", cmd, env) for i, env in enumerate(_worker_envs())], tag)


def _assert_codes(results, code):
    for i, (rc, _, err) in enumerate(results):
        assert rc == code, f"worker {i} exited {rc}, expected {code}:\n{err[-4000:]}"


def _rows(model_dir):
    with open(os.path.join(model_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _train_rows(model_dir):
    return [{k: v for k, v in r.items() if k != "tokens_per_sec"} for r in _rows(model_dir) if "split" not in r]


def _checkpoint_values(model_dir):
    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    reader = tf.train.load_checkpoint(path)
    keys = [k for k in reader.get_variable_to_shape_map()
            if k.startswith(("generator/", "discriminator/", "generator_optimizer/", "discriminator_optimizer/",
                             "step/"))]
    return path, {k: reader.get_tensor(k) for k in keys}


def _worker_iterator(model_dir, step):
    """The names in the data position worker 1 saved with the chief's checkpoint of ``step`` (None: none saved)."""
    path = os.path.join(model_dir, "checkpoints", "worker-1", f"iterator-{step}")
    if not tf.io.gfile.exists(path + ".index"):
        return None
    return [k for k in tf.train.load_checkpoint(path).get_variable_to_shape_map() if k.startswith("iterator")]


@pytest.mark.slow
def test_pretrain_script_with_two_workers_runs_to_the_end(tmp_path, tiny_data):
    model_dir = tmp_path / "mw"
    results = Workers(tmp_path, model_dir, tiny_data, "--set", "train.eval_every=2", steps=4).wait()
    _assert_codes(results, OK)
    (_, chief_out, _), (_, worker_out, _) = results
    assert "held-out RTD: accuracy" in chief_out and "exports:" in chief_out
    assert "held-out RTD" not in worker_out and "exports:" not in worker_out
    assert "worker 1 of 2" in worker_out  # it says the chief holds the results
    exports = sorted(os.path.relpath(p, model_dir) for p, _, files in os.walk(model_dir) if "saved_model.pb" in files)
    assert [e for e in exports if not e.startswith(".versions")] == []  # the export dir is a link to one version
    assert len(exports) == 2 and all(e.endswith(("discriminator", "generator")) for e in exports), exports
    assert os.path.exists(model_dir / "export" / "discriminator" / "saved_model.pb")
    evals = [r for r in _rows(model_dir) if r.get("split") == "eval"]
    assert [r["step"] for r in evals] == [2, 4]

    # A restart the chief refuses (max_steps below the step reached) ends the other worker too.
    results = Workers(tmp_path, model_dir, tiny_data, "--set", "train.eval_every=2", steps=2, tag="refused").wait()
    _assert_codes(results, BAD_INPUT)
    assert "train.max_steps (2) is below the step this run already reached (4" in results[0][2]
    assert "the chief (worker 0) could not start or resume this run; its log says why" in results[1][2]


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory, tiny_data):
    """An uninterrupted two-worker run of ``STEPS`` steps: (model dir, checkpoint values, metric rows)."""
    root = tmp_path_factory.mktemp("unbroken")
    model_dir = root / "run"
    _assert_codes(Workers(root, model_dir, tiny_data, *DET, steps=STEPS).wait(), OK)
    path, values = _checkpoint_values(model_dir)
    assert path.endswith(f"ckpt-{STEPS}")
    return model_dir, values, _train_rows(model_dir)


def _assert_equals_unbroken(model_dir, unbroken):
    _, values_a, rows_a = unbroken
    path, values_b = _checkpoint_values(model_dir)
    assert path.endswith(f"ckpt-{STEPS}")
    assert values_a.keys() == values_b.keys() and len(values_a) > 50
    for key in values_a:
        np.testing.assert_array_equal(values_a[key], values_b[key], err_msg=key)
    assert _train_rows(model_dir) == rows_a  # every step once, each with the unbroken run's metrics


@pytest.mark.slow
def test_two_workers_killed_after_a_checkpoint_resume_to_the_unbroken_result(tmp_path, tiny_data, unbroken):
    model_dir = tmp_path / "run"
    workers = Workers(tmp_path, model_dir, tiny_data, *DET, steps=STEPS, tag="first")
    try:
        wait_for_step(model_dir, workers.running, 15)  # past the checkpoint of step 10
    finally:
        workers.kill()
    killed_at = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    assert killed_at is not None and int(killed_at.rsplit("-", 1)[1]) < STEPS
    results = Workers(tmp_path, model_dir, tiny_data, *DET, steps=STEPS, tag="second").wait()
    _assert_codes(results, OK)
    for _, _, err in results:  # both restored the chief's checkpoint, each its own data position
        assert f"resumed from {killed_at}" in err
    _assert_equals_unbroken(model_dir, unbroken)


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_both_at_one_step_and_the_restart_continues(tmp_path, tiny_data, unbroken):
    model_dir = tmp_path / "run"
    workers = Workers(tmp_path, model_dir, tiny_data, *DET, steps=STEPS, tag="first")
    try:
        wait_for_step(model_dir, workers.running, 13)
        workers.procs[1].send_signal(signal.SIGTERM)  # the non-chief only
        results = workers.wait(timeout=300)
    finally:
        workers.kill()
    _assert_codes(results, PREEMPTED)
    saved = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    step = int(saved.rsplit("-", 1)[1])
    assert 13 < step < STEPS and step % 10, saved  # saved where it stopped, not at a regular checkpoint
    for _, _, err in results:
        assert f"preempted at step {step}; checkpoint saved" in err
    assert _worker_iterator(model_dir, step)  # worker 1 saved its data position at the same step
    assert max(r["step"] for r in _train_rows(model_dir)) == step

    results = Workers(tmp_path, model_dir, tiny_data, *DET, steps=STEPS, tag="second").wait()
    _assert_codes(results, OK)
    _assert_equals_unbroken(model_dir, unbroken)


# Dropout on in both models, op determinism (each process reproducible, so only the strategy differs).
INVARIANCE = ["train.mode=decoupled", "model.dropout=0.1", "model.attention_dropout=0.1", "train.seed=3",
              "train.deterministic=true", "train.max_steps=5"]
INVARIANCE_STEPS = 5


def _fixed_global_batches(data, path):
    """``INVARIANCE_STEPS`` global batches of the tiny data, saved as arrays ``[steps, batch, ...]``."""
    from electra_tf.training.data import check_data, pretraining_input

    cfg, _ = check_data(make_config(data, *INVARIANCE), data)
    batches = list(pretraining_input(cfg, data, "train").take(INVARIANCE_STEPS).as_numpy_iterator())
    np.savez(path, **{k: np.stack([b[k] for b in batches]) for k in batches[0]})
    return cfg.train.batch_size


@pytest.mark.slow
def test_two_workers_fed_halves_of_global_batches_train_like_one_process(tmp_path, tiny_data):
    """Replica invariance across workers: two workers (one CPU replica each), worker i fed rows [i*B/2, (i+1)*B/2)
    of the same global batches, give at each of 5 steps with dropout on the same generator and discriminator
    losses and both gradient norms, and after them every variable and optimizer slot, as one process fed the
    whole batches, on one device and on two mirrored replicas; the two workers end bitwise alike.

    Tolerance: rel 1e-5 (abs 1e-6 for variables near 0). The masks, the Gumbel noise and the loss denominators
    are the same, so only float32 summation order may differ (half-batch gradients summed by the all-reduce
    against one sum over the batch), a few ulps per reduction carried through 5 Adam steps: measured 1e-7
    relative against one_device, 0 against two mirrored replicas (not asserted: it rests on both processes'
    kernels splitting work alike). Dropout or Gumbel noise keyed by the worker's own row index instead of the
    global one, or a per-worker loss denominator, moves a loss or a gradient norm by 1e-4 to 3e-2 relative.
    """
    batch_size = _fixed_global_batches(tiny_data, tmp_path / "batches.npz")
    helper = os.path.join(os.path.dirname(__file__), "helpers", "fixed_batches_run.py")

    def command(strategies):
        return [sys.executable, helper, str(tmp_path), tiny_data, str(tmp_path / "batches.npz"), strategies,
                *INVARIANCE]

    runs = [(f"w{i}", command("multi_worker"), env) for i, env in enumerate(_worker_envs())]
    runs.append(("one", command("one_device,mirrored"), {}))  # one process, two references
    _assert_codes(Processes(tmp_path, runs).wait(), OK)
    out = {name: dict(np.load(tmp_path / f"{name}.npz")) for name in ("w0", "w1", "one_device", "mirrored")}

    w0, w1 = out["w0"], out["w1"]
    assert w0.keys() == w1.keys()
    for key in w0:  # every worker holds the same result
        np.testing.assert_array_equal(w0[key], w1[key], err_msg=key)
    assert len([k for k in w0 if k.startswith("var/")]) > 50
    assert sorted(k for k in w0 if k.startswith("step_norm_")) == ["step_norm_discriminator", "step_norm_generator"]
    for name in ("one_device", "mirrored"):
        ref = out[name]
        assert ref.keys() == w0.keys(), name
        # The same examples: as many masked and real positions at every step.
        for key in ("step_gen_count", "step_disc_count"):
            np.testing.assert_array_equal(ref[key], w0[key], err_msg=f"{name} {key}")
        assert len(ref["step_gen_loss"]) == INVARIANCE_STEPS and min(ref["step_disc_count"]) > batch_size
        for key in ("step_gen_loss", "step_disc_loss"):
            np.testing.assert_allclose(w0[key], ref[key], rtol=1e-5, atol=1e-6, err_msg=f"{name} {key}")
        for key in ("step_norm_generator", "step_norm_discriminator"):
            np.testing.assert_allclose(w0[key], ref[key], rtol=1e-5, err_msg=f"{name} {key}")
        for key in (k for k in ref if k.startswith("var/")):
            np.testing.assert_allclose(w0[key], ref[key], rtol=1e-5, atol=1e-6, err_msg=f"{name} {key}")
