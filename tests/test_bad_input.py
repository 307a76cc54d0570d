"""Bad inputs end with one line and exit code 2 before any work; ignored flags warn; workers say whom they wait for."""

import glob
import json
import logging
import os
import socket
import subprocess
import sys
import threading

import pytest
from conftest import SMALL_MODEL, make_config, subprocess_env

from electra_tf.training.cluster import WorkerTimeout, parse_tf_config, wait_for_workers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(name):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


def _pretrain(tmp_path, tiny_data, *flags, model_dir=None):
    from electra_tf.cli import run_pretraining

    model_dir = model_dir or str(tmp_path / "run")
    args = _script("pretrain").parse_args(["--model_dir", model_dir, "--no_progress", "--no_export", *flags,
                                           "--set", *SMALL_MODEL, f"data.path={tiny_data}", "train.max_steps=2"])
    return run_pretraining(args)


@pytest.fixture
def list_yaml(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- model\n- train\n")
    return str(path)


def test_yaml_that_is_a_list_is_one_line_exit_2(tmp_path, tiny_data, list_yaml):
    code, lines = _pretrain(tmp_path, tiny_data, "--config", list_yaml)
    assert code == 2 and lines == [f"error: {list_yaml} must hold a mapping of sections (model:, generator:, "
                                   "data:, train:), got a YAML list"]


@pytest.mark.parametrize("case", ["file", "under_a_file", "read_only"])
def test_model_dir_that_is_a_file_or_not_writable_is_one_line_exit_2(tmp_path, tiny_data, case):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    model_dir = {"file": str(a_file), "under_a_file": str(a_file / "run"), "read_only": "/proc/electra_run"}[case]
    code, lines = _pretrain(tmp_path, tiny_data, model_dir=model_dir)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: --model_dir {model_dir}")
    assert ("is a file" in lines[0]) if case != "read_only" else ("not writable" in lines[0])


def test_strategy_tpu_without_a_tpu_is_one_line_exit_2(tmp_path, tiny_data):
    code, lines = _pretrain(tmp_path, tiny_data, "--strategy", "tpu")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: --strategy tpu: no TPU could be reached")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("tf_config,message", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('["a"]', "TF_CONFIG must be a JSON object"),
    ('{"cluster": {"worker": ["localhost:1"]}}', "TF_CONFIG's task must name this process's job and index"),
    ('{"cluster": {"worker": "localhost:1"}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG's cluster.worker must be a list"),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}', "is not in the cluster"),
    ("", "needs the TF_CONFIG environment variable"),
])
def test_malformed_tf_config_is_one_line_exit_2(tmp_path, tiny_data, monkeypatch, tf_config, message):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    code, lines = _pretrain(tmp_path, tiny_data, "--strategy", "multi_worker")
    assert code == 2 and len(lines) == 1 and message in lines[0]


def test_errors_from_set_are_attributed_to_set(tmp_path, tiny_data):
    code, lines = _pretrain(tmp_path, tiny_data, "--set", "train.generator_lr=0")
    assert code == 2 and lines[0].endswith("(from --set train.generator_lr=0)") and "(in " not in lines[0]


def test_script_prints_one_line_not_a_traceback(tmp_path, list_yaml):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "pretrain.py"), "--config", list_yaml,
                           "--model_dir", str(tmp_path / "run")], capture_output=True, text=True,
                          env=subprocess_env(), timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {list_yaml} must hold a mapping")


@pytest.mark.parametrize("case", ["missing_dir", "a_dir"])
def test_evaluate_rtd_checks_its_json_path_before_evaluating(tmp_path, case, capsys):
    evaluate_rtd = _script("evaluate_rtd")
    path = str(tmp_path / "no" / "such" / "rtd.json") if case == "missing_dir" else str(tmp_path)
    code = evaluate_rtd.main(["--generator", str(tmp_path / "g"), "--discriminator", str(tmp_path / "d"),
                              "--json", path])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: --json {path}")


def test_finetune_refuses_an_output_dir_of_another_pretrained_model(tmp_path):
    from electra_tf.finetune.cli import build_parser, run_finetuning

    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"pretrained": str(tmp_path / "model_a"), "accuracy": 0.9}))
    args = build_parser().parse_args(["--task", "sst2", "--pretrained", str(tmp_path / "model_b"),
                                      "--output_dir", str(out)])
    code, lines = run_finetuning(args, strategy=None)
    assert code == 2 and "holds the results of fine-tuning --pretrained" in lines[0] and "model_a" in lines[0]
    assert json.loads((out / "results.json").read_text())["accuracy"] == 0.9


def test_cpu_replicas_without_mirrored_warns(caplog):
    from electra_tf.training.strategy import make_strategy

    caplog.set_level(logging.WARNING)
    make_strategy("default", cpu_replicas=2)
    assert "--cpu_replicas 2 is ignored: it only applies to --strategy mirrored" in caplog.text


def test_profile_window_past_max_steps_warns_and_still_writes_the_trace(tmp_path, tiny_data, caplog):
    from electra_tf.training.trainer import Trainer

    caplog.set_level(logging.WARNING)
    trainer = Trainer(make_config(tiny_data, "train.max_steps=2"), str(tmp_path / "run"), profile_steps=(1, 10),
                      export=False, progress=False)
    trainer.train()
    assert "--profile_steps 1,10 ends after train.max_steps (2)" in caplog.text
    assert glob.glob(str(tmp_path / "run" / "tensorboard" / "profile" / "plugins" / "profile" / "*" / "*.xplane.pb"))


def test_tensorboard_can_show_the_profile():
    from importlib.metadata import entry_points

    assert "profile" in [e.name for e in entry_points(group="tensorboard_plugins")]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def test_a_worker_says_which_peer_it_waits_for_and_gives_up_after_the_timeout(caplog):
    ports = _free_ports(3)
    caplog.set_level(logging.INFO)
    with pytest.raises(WorkerTimeout, match=f"worker 1 at 127.0.0.1:{ports[1]}, worker 2 at 127.0.0.1:{ports[2]} "
                                            r"did not come up within 2 s \(--worker_timeout\)"):
        wait_for_workers(parse_tf_config(_tf_config(ports, 0)), timeout=2, report_every=0.5)
    assert f"waiting for worker 1 at 127.0.0.1:{ports[1]}" in caplog.text and "still waiting for" in caplog.text


def test_workers_that_all_come_up_pass_the_rendezvous():
    ports = _free_ports(2)
    errors = []

    def worker(index):
        try:
            wait_for_workers(parse_tf_config(_tf_config(ports, index)), timeout=30)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and not any(t.is_alive() for t in threads)


@pytest.mark.slow
def test_pretrain_with_a_missing_worker_exits_2_naming_it(tmp_path, tiny_data):
    from conftest import pretrain_command

    ports = _free_ports(2)
    env = {**subprocess_env(), "TF_CONFIG": _tf_config(ports, 0)}
    proc = subprocess.run(pretrain_command(tmp_path / "run", tiny_data, "--strategy", "multi_worker",
                                           "--worker_timeout", "3", steps=2),
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"waiting for worker 1 at 127.0.0.1:{ports[1]}" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (f"error: worker 1 at 127.0.0.1:{ports[1]} did not come up within "
                                                    "3 s (--worker_timeout); start every worker of TF_CONFIG, or "
                                                    "check the addresses")


class NetworkBoundary(Exception):
    """Raised where TFDS would open its first connection."""


def test_tfds_sources_reach_the_network_boundary(tmp_path, monkeypatch):
    """``--task sst2`` without ``--data_dir``: everything up to the download runs on a fresh install."""
    import importlib.util

    from electra_tf.finetune.glue import get_task
    from electra_tf.finetune.readers import read_tfds

    assert importlib.util.find_spec("importlib_resources") is not None  # download_and_prepare imports it

    def refuse(*args, **kwargs):
        raise NetworkBoundary(f"a connection to {args[1:] or args} would open here")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with pytest.raises(Exception) as info:
        read_tfds(get_task("sst2"), data_dir=str(tmp_path / "tfds"))
    chain, exc = [], info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    text = " | ".join(f"{type(e).__name__}: {e}" for e in chain)
    assert "would open here" in text, text
    assert "No module named" not in text


@pytest.mark.parametrize("script,argv", [
    ("build_vocab", ["--input", "builtin", "--vocab_size", "100", "--output", "{bad}/vocab"]),
    ("build_pretraining_data", ["--input", "builtin", "--vocab", "v.model", "--max_seq_length", "32",
                                "--output", "{bad}/data"]),
    ("benchmark", ["--json", "{bad}/bench.json"]),
    ("plot_runs", ["runs/x", "--out", "{bad}/runs.png"]),
    ("export", ["--model_dir", "{bad}"]),
    ("sweep", ["--out", "{bad}/sweep"]),
    ("reproduce", ["fig3", "--out", "{bad}/reproduce"]),
])
def test_every_script_refuses_an_output_path_it_cannot_write_in_one_line(tmp_path, capsys, script, argv):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    code = _script(script).main([arg.format(bad=a_file) for arg in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) >= 1 and err[-1].startswith("error: --") and str(a_file) in err[-1]
