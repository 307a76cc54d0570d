"""Fine-tuning end to end from a tiny pretrained model: results.json, the best checkpoint, the CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import finetune_cli

from electra_tf.data.vocab import load_sentencepiece
from electra_tf.finetune import (
    FinetuneConfig,
    SearchSpace,
    encode_examples,
    eval_dataset,
    get_task,
    load_finetuned,
    read_tsv_dir,
    run_search,
    task_metrics,
    write_synthetic_task,
)
from electra_tf.pretrained import load_pretrained

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = FinetuneConfig(max_steps=4, batch_size=8, eval_every=2)


@pytest.fixture(scope="module")
def pretrained(tiny_pretrained):
    """A pretraining model dir (4 steps of the test-sized model) with its exports (tests/conftest.py)."""
    return tiny_pretrained


def test_search_writes_results_and_keeps_the_best_checkpoint(pretrained, tmp_path):
    task = get_task("sst2")
    data_dir = str(tmp_path / "SST-2")
    write_synthetic_task(task, data_dir, num_train=48, num_dev=20)
    out = str(tmp_path / "out")
    results = run_search(task, pretrained, out, data_dir=data_dir, space=SearchSpace(learning_rates=(3e-4,)),
                         seeds=(0, 1), base=FAST, max_seq_length=32, progress=False)

    with open(os.path.join(out, "results.json")) as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(results))
    assert 0.0 <= saved["accuracy"] <= 1.0 and saved["main_metric"] == "accuracy"
    assert len(saved["settings"]) == 1 and len(saved["settings"][0]["runs"]) == 2
    best = max(saved["settings"], key=lambda s: s["median"]["accuracy"])
    assert saved["best_config"] == best["config"]
    assert saved["accuracy"] == np.median([r["metrics"]["accuracy"] for r in best["runs"]])
    assert "| lr |" in open(os.path.join(out, "results.md")).read()
    for run in (r for s in saved["settings"] for r in s["runs"]):
        rows = [json.loads(line) for line in open(os.path.join(out, "runs", run["run"], "metrics.jsonl"))]
        assert [r["step"] for r in rows if r.get("split") == "eval"] == [2, 4]
        assert os.listdir(os.path.join(out, "runs", run["run"], "tensorboard"))

    # The kept checkpoint is the best single run's: every weight, fine-tuned ones included, and its dev accuracy.
    model, loaded_task, info = load_finetuned(out)
    reader = tf.train.load_checkpoint(info["checkpoint"])
    for i, weight in enumerate(model.weights):
        np.testing.assert_array_equal(weight.numpy(), reader.get_tensor(f"weights/{i}/.ATTRIBUTES/VARIABLE_VALUE"))
    _, _, disc = load_pretrained(pretrained, which=("discriminator",))
    block = {w.path: w.numpy() for w in disc.encoder.blocks[0].weights}
    tuned = [w for w in model.encoder.blocks[0].weights if w.path in block]
    assert tuned and any(np.abs(w.numpy() - block[w.path]).max() > 1e-6 for w in tuned)
    top = max((r for s in saved["settings"] for r in s["runs"]), key=lambda r: r["metrics"]["accuracy"])
    assert info["run"] == top["run"] and loaded_task == task
    sp = load_sentencepiece(info["vocab"])
    dev = encode_examples(sp, read_tsv_dir(task, data_dir)["dev"], 32)
    logits = np.concatenate([model(b, training=False)["logits"].numpy() for b in eval_dataset(dev, 8)])[:len(dev)]
    assert task_metrics(task, logits, dev.labels)["accuracy"] == pytest.approx(top["metrics"]["accuracy"])

    # A repeated command reuses finished runs instead of training again.
    again = run_search(task, pretrained, out, data_dir=data_dir, space=SearchSpace(learning_rates=(3e-4,)),
                       seeds=(0, 1), base=FAST, max_seq_length=32, progress=False)
    assert again["accuracy"] == results["accuracy"]
    assert [r["elapsed_sec"] for s in again["settings"] for r in s["runs"]] == \
           [r["elapsed_sec"] for s in saved["settings"] for r in s["runs"]]


def test_the_logged_learning_rate_is_the_one_each_step_used(pretrained, tmp_path):
    """No warm-up over 4 steps: the updates use 1, 3/4, 1/2 and 1/4 of the peak (0 comes after the last)."""
    task = get_task("sst2")
    data_dir = str(tmp_path / "SST-2")
    write_synthetic_task(task, data_dir, num_train=32, num_dev=8)
    out = str(tmp_path / "out")
    base = FinetuneConfig(max_steps=4, batch_size=8, eval_every=4, log_every=1, warmup_proportion=0.0)
    results = run_search(task, pretrained, out, data_dir=data_dir, space=SearchSpace(learning_rates=(3e-4,)),
                         base=base, max_seq_length=32, progress=False)
    run = results["settings"][0]["runs"][0]["run"]
    with open(os.path.join(out, "runs", run, "metrics.jsonl")) as f:
        rates = [json.loads(line)["learning_rate"] for line in f if '"split"' not in line]
    assert len(rates) == 4 and rates[0] > 0
    assert [r / rates[0] for r in rates] == pytest.approx([1.0, 0.75, 0.5, 0.25], rel=1e-5)


def test_mnli_from_tfds_and_a_discriminator_export_with_layer_decay(pretrained, tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=16):
        results = run_search(get_task("mnli"), os.path.join(pretrained, "export", "discriminator"),
                             str(tmp_path / "mnli"), space=SearchSpace(learning_rates=(1e-4,), layer_decays=(0.8,)),
                             base=FAST, max_seq_length=24, progress=False)
    assert {"accuracy", "accuracy_mismatched"} <= set(results)
    assert results["examples"] == {"train": 16, "dev": 16, "dev_mismatched": 16}
    assert results["best_config"]["layer_decay"] == 0.8


def test_cli_custom_regression_task_and_input_errors(pretrained, tmp_path, capsys):
    data = tmp_path / "scores"
    data.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train.tsv", 24), ("dev.tsv", 12)):
        scores = rng.integers(0, 4, n)
        lines = [f"{s}\t" + " ".join(["good"] * s + ["the", "value"]) for s in scores]
        (data / name).write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    code = finetune_cli("--task", "custom", "--num_labels", "1", "--no_header", "--text_a", "1", "--label_column", "0",
                "--pretrained", pretrained, "--data_dir", str(data), "--output_dir", str(out), "--lr", "1e-4",
                "--max_steps", "3", "--batch_size", "8", "--max_seq_length", "16", "--no_progress")
    printed = capsys.readouterr().out
    assert code == 0, printed
    results = json.loads((out / "results.json").read_text())
    assert {"spearman", "pearson"} <= set(results) and results["main_metric"] == "spearman"
    assert "dev spearman" in printed and "results.json" in printed

    assert finetune_cli("--task", "sst3", "--pretrained", pretrained, "--output_dir", str(out)) == 2
    assert "unknown task 'sst3'; accepted: cola, sst2" in capsys.readouterr().err
    assert finetune_cli("--task", "rte", "--pretrained", pretrained, "--data_dir", str(data), "--output_dir",
                        str(out)) == 2
    assert f"{data}/train.tsv: no column 'sentence1' in the header" in capsys.readouterr().err


def _sst2(directory):
    write_synthetic_task(get_task("sst2"), directory, num_train=32, num_dev=12)
    return ["--task", "sst2", "--max_seq_length", "24"]


def _squad2(directory):
    from electra_tf.finetune.synthetic import write_synthetic_qa

    write_synthetic_qa(directory, num_train=24, num_dev=12, version=2, context_words=(6, 20))
    return ["--task", "qa_custom", "--max_seq_length", "24", "--max_query_length", "8", "--doc_stride", "8",
            "--no_export"]


@pytest.mark.slow
@pytest.mark.parametrize("make_task", [_sst2, _squad2], ids=["sst2", "squad2"])
def test_two_mirrored_replicas_train_like_one_device(pretrained, tmp_path, make_task):
    """Gradients summed over replicas and clipped once: the same losses on 1 and 2 replicas (QA's too)."""
    data_dir = str(tmp_path / "data")
    task_args = make_task(data_dir)
    metrics = {}
    for name, extra in (("one", ["--strategy", "one_device"]),
                        ("two", ["--strategy", "mirrored", "--cpu_replicas", "2"])):
        cmd = [sys.executable, os.path.join(ROOT, "scripts", "finetune.py"), *task_args, "--pretrained",
               pretrained, "--data_dir", data_dir, "--output_dir", str(tmp_path / name), "--lr", "3e-4",
               "--max_steps", "4", "--batch_size", "8", "--dropout", "0", "--log_every", "1", "--no_progress",
               *extra]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        run = json.loads((tmp_path / name / "results.json").read_text())["settings"][0]["runs"][0]
        rows = [json.loads(line) for line in open(tmp_path / name / "runs" / run["run"] / "metrics.jsonl")]
        metrics[name] = [r["loss"] for r in rows if "loss" in r]
    assert len(metrics["one"]) == 4
    np.testing.assert_allclose(metrics["one"], metrics["two"], rtol=1e-4)


def test_head_only_phase_trains_the_head_on_the_frozen_encoder(pretrained, tmp_path):
    """LP-FT (``probe_epochs``): the first phase changes the head and not one encoder weight; then all train."""
    from electra_tf.finetune.runner import FinetuneRun
    from electra_tf.finetune.search import encode_task, find_vocab
    from electra_tf.pretrained import find_config

    task = get_task("sst2")
    data_dir = str(tmp_path / "SST-2")
    write_synthetic_task(task, data_dir, num_train=32, num_dev=8)
    cfg = find_config(pretrained)
    data = encode_task(task, read_tsv_dir(task, data_dir), find_vocab(pretrained, cfg), 32)
    config = FinetuneConfig(max_steps=2, batch_size=8, probe_epochs=2, learning_rate=1e-2)
    run = FinetuneRun(task, pretrained, cfg, data, config, str(tmp_path / "run"), progress=False)
    run._build()
    assert run.probe_steps == 8 and "lp2" in config.name  # 2 epochs of 32 examples in batches of 8
    encoder = [w.numpy() for w in run.model.encoder.weights]
    head = [w.numpy() for w in run.model.head.weights]
    losses = [float(run.head_step(run.train_iterator)) for _ in range(run.probe_steps)]
    assert all(np.isfinite(losses))
    for before, after in zip(encoder, run.model.encoder.weights):
        np.testing.assert_array_equal(before, after.numpy())
    assert any(np.abs(before - after.numpy()).max() > 1e-4 for before, after in zip(head, run.model.head.weights))
    # The whole run: the head-only phase, then fine-tuning of everything, which does move the encoder.
    result = FinetuneRun(task, pretrained, cfg, data, config, str(tmp_path / "run2"),
                         progress=False).train()
    assert result["steps"] == 2 and 0.0 <= result["metrics"]["accuracy"] <= 1.0
    with pytest.raises(ValueError, match="probe_epochs"):
        FinetuneConfig(probe_epochs=-1)
