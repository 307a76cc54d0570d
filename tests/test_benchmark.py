"""The benchmark: its FLOP count against a hand count, and a quick end-to-end run's JSON."""

import json
import math
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # bench/ is not part of the installed package

from bench.flops import Dims, forward_flops_per_sequence, train_flops_per_token  # noqa: E402

# A model small enough to count by hand: D 1 layer x 4 wide (2 heads, FFN 8), G 1 layer x 2 wide
# (FFN 4), embeddings 3 wide (so both encoders project them), 4 tokens per sequence, 1 masked
# position, a vocabulary of 10.
TINY = Dims(vocab_size=10, seq_length=4, batch_size=2, max_predictions=1, embedding_size=3,
            max_position_embeddings=8, disc_hidden=4, disc_layers=1, disc_heads=2, disc_ffn=8,
            gen_hidden=2, gen_layers=1, gen_heads=1, gen_ffn=4)


def test_flop_count_matches_a_hand_count():
    # Discriminator, per sequence (S=4, h=4, f=8, E=3), 2 FLOPs per multiply-add:
    #   QKV 2*4*4*12 = 384, attention output 2*4*4*4 = 128, scores 2*4*4*4 = 128,
    #   context 128, FFN 2*4*4*8 * 2 = 512, embedding projection 2*4*3*4 = 96  -> 1376
    # RTD head: dense 2*4*4*4 = 128 + logit 2*4*4 = 32                           -> 160
    # Generator (h=2, f=4): QKV 2*4*2*6 = 96, output 2*4*2*2 = 32, scores 2*4*4*2 = 64,
    #   context 64, FFN 2*4*2*4 * 2 = 128, projection 2*4*3*2 = 48                -> 432
    # MLM head at P=1 position: transform 2*1*2*3 = 12 + vocabulary 2*1*3*10 = 60 -> 72
    assert forward_flops_per_sequence(TINY) == {"discriminator": 1376, "rtd_head": 160, "generator": 432,
                                                "mlm_head": 72}
    # Training = 3 x forward, per token: 3 * 2040 / 4.
    assert train_flops_per_token(TINY) == 1530.0
    # Without a projection when the embedding width equals the hidden width.
    no_projection = Dims(**{**TINY.as_dict(), "embedding_size": 2})
    assert forward_flops_per_sequence(no_projection)["generator"] == 432 - 48


def test_small_preset_flops_and_dims():
    from electra_tf.config import load_config

    dims = Dims.from_config(load_config("small", ["train.batch_size=32"]))
    assert (dims.disc_layers, dims.disc_hidden, dims.embedding_size, dims.gen_layers, dims.gen_hidden) == \
        (12, 256, 128, 12, 64)
    assert (dims.seq_length, dims.batch_size, dims.vocab_size, dims.max_predictions) == (128, 32, 30522, 19)
    # The vocabulary projection runs at 19 of 128 positions: 2*19*128*30522 FLOPs per sequence.
    assert forward_flops_per_sequence(dims)["mlm_head"] == 2 * 19 * 64 * 128 + 2 * 19 * 128 * 30522
    assert 70e6 < train_flops_per_token(dims) < 70.5e6


def test_synthetic_data_dir_is_read_by_the_pipeline(tmp_path):
    from bench.synthetic_data import write_synthetic_data
    from electra_tf.data.tfrecords import pretraining_dataset

    manifest = write_synthetic_data(str(tmp_path / "d"), vocab_size=300, max_seq_length=16, examples=8, shards=2)
    assert manifest["examples"]["train"] == 8
    batch = next(iter(pretraining_dataset(str(tmp_path / "d"), batch_size=4, vocab_size=300, max_seq_length=16)))
    ids = batch["input_ids"].numpy()
    assert ids.shape == (4, 16) and ids.min() >= 2 and ids.max() < 300
    assert (batch["input_mask"].numpy() == 1).all()  # full-length sequences
    assert (batch["masked_weights"].numpy().sum(axis=1) == 2).all()  # round(0.15 * 16) positions each


REQUIRED = [
    "model_garden_fp32_tokens_per_sec", "ours_joint_fp32_tokens_per_sec", "ours_decoupled_fp32_tokens_per_sec",
    "ours_decoupled_bf16_tokens_per_sec", "matmul_fp32_gflops", "matmul_bf16_gflops", "mfu_decoupled_fp32",
    "peak_rss_mb", "peak_rss_mb_model_garden_fp32", "peak_rss_mb_ours_joint_fp32",
    "peak_rss_mb_ours_decoupled_fp32", "peak_rss_mb_ours_decoupled_bf16", "data_pipeline_sequences_per_sec",
    "train_flops_per_token", "speedup_decoupled_fp32_vs_model_garden", "speedup_decoupled_bf16_vs_model_garden",
    "decoupled_vs_joint_fp32", "rss_ratio_vs_model_garden", "ours_decoupled_fp32_recompute_tokens_per_sec",
    "peak_rss_mb_ours_decoupled_fp32_recompute", "rss_ratio_recompute_vs_model_garden",
    "model_garden_bf16_tokens_per_sec", "peak_rss_mb_model_garden_bf16", "speedup_decoupled_bf16_vs_model_garden_bf16",
]


@pytest.mark.slow
def test_quick_benchmark_writes_every_key(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "benchmark.py"), "--quick", "--json", str(out),
         "--work_dir", str(tmp_path / "work"), "--skip_memory_search"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    for key in REQUIRED:
        value = figures[key]
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (key, value)
    assert figures["peak_rss_mb"] == figures["peak_rss_mb_ours_decoupled_fp32"]
    assert figures["steps_per_system"] >= 4
    assert set(figures["targets"]) >= {"speedup_decoupled_fp32_vs_model_garden", "mfu_decoupled_fp32"}
    table = proc.stdout
    assert "| system | tokens/s |" in table and "Model Garden" in table
    assert "memory_budget_gb" not in figures  # skipped


# The max-batch search (bench/memory_search.py) with a fake probe: peak RSS affine in the batch.
def _affine(base, per_seq, calls):
    def probe(batch):
        calls.append(batch)
        return base + per_seq * batch
    return probe


def test_batch_search_finds_the_largest_fitting_multiple_from_a_known_point():
    from bench.memory_search import BatchSearch, search_max_batch

    calls = []
    # 1700 MB + 30 MB/sequence within 8192 MB: 216 sequences, 208 in multiples of 16. The slope hint is off (28).
    search = BatchSearch(8192, granularity=16, cap=1024, slope_hint_mb=28)
    search.record(32, 1700 + 30 * 32, probe=False)
    search_max_batch(_affine(1700, 30, calls), search)
    assert search.largest_fit == 208 and search.exact and search.bracket == (208, 224)
    assert len(calls) <= 3, calls


def test_batch_search_without_a_hint_doubles_then_narrows():
    from bench.memory_search import BatchSearch, search_max_batch

    calls = []
    search = BatchSearch(4000, granularity=8, cap=4096)
    search.record(16, 1000 + 7 * 16, probe=False)
    search_max_batch(_affine(1000, 7, calls), search)  # (4000 - 1000) / 7 = 428 -> 424
    assert calls[0] == 32 and search.largest_fit == 424 and search.exact
    assert len(calls) <= 5, calls


def test_batch_search_stops_at_the_cap_and_at_max_probes_and_halves_below_a_miss():
    from bench.memory_search import BatchSearch, search_max_batch

    capped = search_max_batch(_affine(100, 1, []), BatchSearch(10_000, granularity=16, cap=256, slope_hint_mb=1))
    assert capped.largest_fit == 256 and capped.exact
    # A step that grows faster than affine (the hint is far off): the search bisects and still brackets.
    calls = []
    curved = BatchSearch(8192, granularity=16, cap=1024, slope_hint_mb=5)
    curved.record(32, 2000, probe=False)
    search_max_batch(lambda b: calls.append(b) or 1500 + 0.1 * b * b, curved)  # fits up to 258
    assert curved.largest_fit == 256 and curved.exact and len(calls) <= 6, calls
    # Few probes allowed: a lower bound, not exact.
    few = BatchSearch(8192, granularity=16, max_probes=1)
    few.record(32, 3000, probe=False)
    search_max_batch(_affine(2000, 10, []), few)
    assert few.largest_fit == 64 and not few.exact and few.bracket == (64, None)
    # Even the known batch misses: halve down.
    small = BatchSearch(1000, granularity=4)
    small.record(32, 1500, probe=False)
    search_max_batch(_affine(500, 20, []), small)  # fits up to 25
    assert small.largest_fit == 24 and small.exact


@pytest.mark.slow  # ~35 s: two TensorFlow processes
def test_one_real_probe_in_a_fresh_process(tmp_path):
    """A quick-sized system probed at two batches: one fits a generous budget; one misses a budget below its RSS."""
    from bench.memory_search import BatchSearch, run_memory_search
    from bench.runner import QUICK_OVERRIDES, Worker
    from bench.synthetic_data import synthetic_data_dir

    data = synthetic_data_dir(str(tmp_path / "data"), 1000, 32, 64)
    overrides = [*QUICK_OVERRIDES, "model.vocab_size=1000", "train.batch_size=4"]
    make = lambda name, batch: Worker(name, "small", data, [*overrides, f"train.batch_size={batch}"], 1,  # noqa
                                      str(tmp_path), quick=True, log_name=f"{name}-{batch}")
    fits = BatchSearch(64 * 1024, granularity=4, cap=8, max_probes=1)
    fits.record(4, 1.0, probe=False)
    misses = BatchSearch(200, granularity=4, cap=8, max_probes=1)  # TensorFlow alone is more than 200 MB
    misses.record(4, 1.0, probe=False)
    probes = run_memory_search({"ours_decoupled_fp32": fits}, make, parallel=1, time_budget_s=300,
                               expected_probe_s=1)
    (row,) = probes["ours_decoupled_fp32"]
    assert row["batch"] == 8 and 200 < row["peak_rss_mb"] < 64 * 1024 and not row["stopped_early"], row
    assert fits.largest_fit == 8 and fits.exact
    probes = run_memory_search({"ours_decoupled_fp32": misses}, make, parallel=1, time_budget_s=300,
                               expected_probe_s=1)
    assert probes["ours_decoupled_fp32"][0]["stopped_early"] and misses.bracket == (4, 8)
