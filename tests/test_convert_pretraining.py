"""Continuing to pretrain a model converted from google-research/electra, in joint and in decoupled mode.

The data here are synthetic id sequences masked by our pipeline's
``mask_sequence`` with the fixture vocabulary's BERT ids ([MASK] 103, [CLS]
101, [SEP] 102); WordPiece text end to end is ``tests/test_wordpiece_lineage.py``.
The warm start is the one ``scripts/pretrain.py --init_from`` runs.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tf1_fixtures import write_released_like

from electra_tf.config import dump_config, load_config
from electra_tf.convert import ConversionError, export_electra_tf1, import_electra_tf1
from electra_tf.data.masking import mask_sequence
from electra_tf.training.builder import build_pretraining
from electra_tf.training.warm_start import warm_start

STEPS, LENGTH, BATCH = 30, 32, 8
PAD, CLS, SEP, MASK = 0, 101, 102, 103


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("lineage")
    _, values = write_released_like(str(root / "source"))
    import_electra_tf1(str(root / "source"), str(root / "model"))
    return str(root / "model"), values


def _dataset(max_predictions):
    """16 sequences with structure a generator can learn (each token follows from the one before), repeated."""
    rng = np.random.default_rng(0)
    rows = np.zeros((16, LENGTH), np.int32)
    for row in rows:
        length = int(rng.integers(20, LENGTH + 1))
        token = int(rng.integers(104, 1000))
        row[0] = CLS
        for i in range(1, length - 1):
            row[i] = token
            token = 104 + (token * 7 + 3) % 896
        row[length - 1] = SEP
    ds = tf.data.Dataset.from_tensor_slices(rows).repeat().enumerate()
    ds = ds.map(lambda i, ids: mask_sequence(ids, tf.stack([tf.constant(7, tf.int64), i]), 0.15, max_predictions,
                                             mask_id=MASK, special_ids=(PAD, CLS, SEP)))
    return ds.batch(BATCH, drop_remainder=True)


def _losses(run):
    gen, disc = [], []
    for _ in range(STEPS):
        _, finite = run.train_step()
        assert bool(finite)
        sums, _ = run.steps.read_window()
        gen.append(sums["gen_loss_sum"] / sums["gen_count"])
        disc.append(sums["disc_loss_sum"] / sums["disc_count"])
    return np.array(gen), np.array(disc)


@pytest.mark.parametrize("mode", ["joint", "decoupled"])
def test_continue_pretraining_the_converted_model(converted, mode, tmp_path):
    model_dir, values = converted
    common = [f"data.max_seq_length={LENGTH}", f"train.batch_size={BATCH}", f"train.max_steps={STEPS}",
              "train.warmup_steps=0", "train.seed=3"]
    if mode == "joint":  # the original: one block, one AdamW on L_G + 50 L_D
        extra = ["train.learning_rate=1e-3"]
    else:  # one copy of the block per model, each trained by its own AdamW
        extra = ["train.mode=decoupled", "embedding_sharing=none", "train.generator_lr=1e-3",
                 "train.discriminator_lr=1e-3"]
    cfg = load_config(os.path.join(model_dir, "config.yaml"), common + extra)
    run = build_pretraining(cfg, data=_dataset(cfg.data.max_predictions))
    warm_start(model_dir, run.generator, run.discriminator)
    word = values["electra/embeddings/word_embeddings"]
    for model in (run.generator, run.discriminator):  # decoupled: both copies are the released block
        assert model.encoder.embeddings.word_embedding.embeddings.numpy().tobytes() == word.tobytes()
    gen, disc = _losses(run)
    assert np.isfinite(gen).all() and np.isfinite(disc).all()
    assert gen[-5:].mean() < gen[:3].mean() - 0.1, gen
    assert disc[-5:].mean() < disc[:3].mean() - 0.05, disc

    # Back to the original's format: decoupled training made two different blocks, which the original cannot
    # hold; the discriminator alone can go.
    trained = str(tmp_path / "trained")
    os.makedirs(trained)
    checkpoint = tf.train.Checkpoint(generator=run.generator, discriminator=run.discriminator)
    tf.train.CheckpointManager(checkpoint, os.path.join(trained, "checkpoints"), 1).save(checkpoint_number=STEPS)
    dump_config(cfg, os.path.join(trained, "config.yaml"))
    shutil.copyfile(os.path.join(model_dir, "vocab.txt"), os.path.join(trained, "vocab.txt"))
    if mode == "decoupled":
        with pytest.raises(ConversionError, match="differs from the discriminator's .*--discriminator_only"):
            export_electra_tf1(trained, str(tmp_path / "tf1"))
        assert not os.path.exists(tmp_path / "tf1")
    prefix = export_electra_tf1(trained, str(tmp_path / "tf1"), discriminator_only=mode == "decoupled")
    names = set(tf.train.load_checkpoint(prefix).get_variable_to_shape_map())
    assert any(n.startswith("generator") for n in names) == (mode == "joint")
    assert "electra/embeddings/word_embeddings" in names and prefix.endswith(f"model.ckpt-{STEPS}")


def _script(name):
    import importlib.util

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(name, os.path.join(root, "scripts", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_scripts_accept_a_converted_model_dir(tiny_data, tmp_path):
    """pretrain --init_from (decoupled, the copies), evaluate_rtd, export and finetune read a converted dir.

    The data are the test corpus's SentencePiece ids (the fixture is written at its vocabulary size): the
    scripts' plumbing; WordPiece text is tests/test_wordpiece_lineage.py."""
    from conftest import TEST_SEQ, TEST_VOCAB

    source, model_dir, run_dir = str(tmp_path / "source"), str(tmp_path / "model"), str(tmp_path / "run")
    _, values = write_released_like(source, vocab=TEST_VOCAB)
    assert _script("convert_checkpoint").main(["--from", "electra_tf1", "--input", source, "--output", model_dir]) == 0
    code = _script("pretrain").main([
        "--config", os.path.join(model_dir, "config.yaml"), "--init_from", model_dir, "--model_dir", run_dir,
        "--no_progress", "--set", "train.mode=decoupled", "embedding_sharing=none", f"data.path={tiny_data}",
        f"data.max_seq_length={TEST_SEQ}", "train.batch_size=8", "train.max_steps=3", "train.warmup_steps=0",
        "train.log_every=1", "train.checkpoint_every=3", "train.eval_steps=1"])
    assert code == 0
    # The run started from the converted weights: the position rows past the sequence length get no gradient,
    # only AdamW's decay over 3 steps (a relative change below 1e-4; a fresh table would differ entirely).
    from electra_tf.pretrained import load_pretrained

    _, _, discriminator = load_pretrained(run_dir, which=("discriminator",))
    rows = discriminator.encoder.embeddings.position_embedding.embeddings.numpy()[TEST_SEQ:]
    np.testing.assert_allclose(rows, values["electra/embeddings/position_embeddings"][TEST_SEQ:], rtol=1e-4)
    # The converted dir's own vocabulary is its vocab.txt, not this data's: evaluate_rtd refuses the pairing (the
    # converted dir on WordPiece data is tests/test_wordpiece_lineage.py); the run trained on this data passes.
    rtd = str(tmp_path / "rtd.json")
    assert _script("evaluate_rtd").main(["--generator", run_dir, "--discriminator", model_dir, "--data", tiny_data,
                                         "--max_batches", "1"]) == 2
    assert _script("evaluate_rtd").main(["--generator", run_dir, "--discriminator", run_dir, "--data", tiny_data,
                                         "--max_batches", "1", "--json", rtd]) == 0
    assert len(json.load(open(rtd))) == 1
    assert _script("export").main(["--model_dir", model_dir]) == 0
    assert os.path.isfile(os.path.join(model_dir, "export", "discriminator", "saved_model.pb"))
    # finetune --pretrained reads the converted weights; its tokenizer reads a SentencePiece model (--vocab).
    data = tmp_path / "scores"
    data.mkdir()
    for name, n in (("train.tsv", 16), ("dev.tsv", 8)):
        (data / name).write_text("".join(f"{i % 3}\t" + "good " * (i % 3) + "the value\n" for i in range(n)))
    out = tmp_path / "finetuned"
    assert _script("finetune").main([
        "--task", "custom", "--num_labels", "1", "--no_header", "--text_a", "1", "--label_column", "0",
        "--pretrained", model_dir, "--vocab", os.path.join(tiny_data, "vocab.model"), "--data_dir", str(data),
        "--output_dir", str(out), "--lr", "1e-4", "--max_steps", "2", "--batch_size", "8",
        "--max_seq_length", "16", "--no_progress"]) == 0
    assert "spearman" in json.load(open(out / "results.json"))
