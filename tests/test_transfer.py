"""The built-in transfer benchmark: held-out tasks, scale-relative fine-tuning steps, the benchmark itself."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, make_config, subprocess_env

from electra_tf.data.docstrings import builtin_corpus
from electra_tf.finetune import custom_task, read_tsv_dir
from electra_tf.finetune.heldout import (
    TASK_NAMES,
    TOPICS,
    comment_blocks,
    heldout_tasks,
    normalize_text,
    reverse_span,
    write_task_tsv,
)
from electra_tf.finetune.optimizer import scale_multipliers


@pytest.fixture(scope="module")
def tasks():
    return heldout_tasks()


def test_heldout_tasks_share_no_text_with_the_builtin_corpus(tasks, tmp_path_factory):
    # The default run's corpus: 4 MB of docstrings. Not one held-out example occurs in it.
    corpus_path = builtin_corpus(str(tmp_path_factory.mktemp("corpus")), 4.0)
    with open(corpus_path, encoding="utf-8") as f:
        corpus = normalize_text(f.read())
    for name, (_, splits) in tasks.items():
        for split, examples in splits.items():
            texts = {t for e in examples for t in (e.text_a, e.text_b) if t}
            leaked = [t for t in texts if normalize_text(t) in corpus]
            assert not leaked, f"{name}/{split}: {leaked[:3]}"


def test_corpus_text_removes_examples_it_contains():
    blocks = comment_blocks()
    victim = blocks[0].text
    full = heldout_tasks(names=["topic"])["topic"][1]
    cut = heldout_tasks(names=["topic"], corpus_text="intro " + victim.upper() + " outro")["topic"][1]
    assert any(e.text_a == victim for s in full.values() for e in s)
    assert not any(e.text_a == victim for s in cut.values() for e in s)


def test_heldout_tasks_shapes_and_splits(tasks):
    assert set(tasks) == set(TASK_NAMES)
    topic_task, topic = tasks["topic"]
    assert topic_task.num_labels == len(TOPICS) == 4 and not topic_task.is_pair
    pair_task, pair = tasks["pair"]
    assert pair_task.num_labels == 2 and pair_task.is_pair
    assert len(topic["train"]) > 1500 and len(topic["dev"]) >= 300
    # dev is balanced: chance is 1/4 for topic, 1/2 for pair
    counts = np.bincount([e.label for e in topic["dev"]], minlength=4)
    assert counts.min() == counts.max()
    pair_counts = np.bincount([e.label for e in pair["dev"]])
    assert abs(int(pair_counts[0]) - int(pair_counts[1])) <= 1
    # low-resource versions: exact sizes, subsets of the full training set, the same dev split
    full_train = set(topic["train"])
    for name, size in (("topic_1000", 1000), ("topic_100", 100)):
        assert len(tasks[name][1]["train"]) == size
        assert set(tasks[name][1]["train"]) <= full_train
        assert tasks[name][1]["dev"] == topic["dev"]
    assert len(tasks["pair_1000"][1]["train"]) == 1000
    # no text is in both train and dev (whole files go to one split)
    train_texts = {e.text_a for e in topic["train"]}
    assert not train_texts & {e.text_a for e in topic["dev"]}


def test_order_task_keeps_the_words_and_defeats_bag_of_words(tasks):
    # Reversing a span changes the order and nothing else.
    import random

    words = "the pool may be shut down while a worker still holds a task".split()
    rng = random.Random(0)
    for _ in range(50):
        changed = reverse_span(words, rng)
        assert changed != words and sorted(changed) == sorted(words)
    assert reverse_span(["a", "a", "a", "a"], rng) is None  # no span changes the text
    # Both classes, about half each; a bag-of-words classifier is near chance (the topic task's is not).
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    def bag_of_words_accuracy(name):
        train, dev = tasks[name][1]["train"], tasks[name][1]["dev"]
        vectorizer = CountVectorizer().fit([e.text_a for e in train])
        model = LogisticRegression(max_iter=2000).fit(vectorizer.transform([e.text_a for e in train]),
                                                      [e.label for e in train])
        return model.score(vectorizer.transform([e.text_a for e in dev]), [e.label for e in dev])

    order = tasks["order"][1]
    assert len(order["train"]) > 1500 and len(order["dev"]) > 300
    counts = np.bincount([e.label for e in order["dev"]])
    assert abs(int(counts[0]) - int(counts[1])) < 0.1 * len(order["dev"])
    assert bag_of_words_accuracy("order") < 0.58
    assert bag_of_words_accuracy("topic2") > 0.7
    assert len(tasks["order_1000"][1]["train"]) == 1000


def test_heldout_tasks_are_deterministic_and_seeded(tasks):
    again = heldout_tasks(names=["topic", "pair"])
    assert again["topic"][1] == tasks["topic"][1] and again["pair"][1] == tasks["pair"][1]
    other = heldout_tasks(seed=1, names=["topic"])
    assert other["topic"][1]["dev"] != tasks["topic"][1]["dev"]


def test_unknown_task_is_an_error_naming_the_accepted_ones():
    with pytest.raises(ValueError, match="unknown held-out task 'sst9'.*topic"):
        heldout_tasks(names=["sst9"])


def test_written_tsv_reads_back_as_a_custom_task(tasks, tmp_path):
    for name in ("topic_100", "pair_1000"):
        task, splits = tasks[name]
        write_task_tsv(task, splits, str(tmp_path / name))
        back = read_tsv_dir(task, str(tmp_path / name))
        assert back["train"] == splits["train"] and back["dev"] == splits["dev"]
    # a user's command line reads them too: --task custom with the column names
    task = custom_task("topic", num_labels=4, label_names=tuple(TOPICS))
    assert read_tsv_dir(task, str(tmp_path / "topic_100"))["train"] == tasks["topic_100"][1]["train"]


# --------------------------------------------------------------------------- scale-relative fine-tuning steps
def _classifier(pretrained, cfg, seed=0, dropout=0.0):
    import keras

    from electra_tf.finetune.runner import build_classifier

    keras.utils.set_random_seed(seed)
    return build_classifier(pretrained, cfg, num_labels=2, dropout=dropout)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, tiny_data):
    from electra_tf.training.trainer import Trainer

    model_dir = str(tmp_path_factory.mktemp("pretrained"))
    Trainer(make_config(tiny_data, "train.max_steps=2"), model_dir, export=False, progress=False).train()
    return model_dir


def _train_steps(model, scale_rates, batch, steps=3, lr=1e-2):
    from electra_tf.finetune.optimizer import LayerwiseAdamax, layerwise_multipliers, trainable_variables

    variables = trainable_variables(model)
    opt = LayerwiseAdamax(lr, weight_decay=0.01, epsilon=1e-12)  # exact up to AdaMax's epsilon
    opt.set_lr_multipliers(layerwise_multipliers(model, 1.0))
    if scale_rates:
        opt.set_step_scales(scale_multipliers(model, model.encoder.initializer_range))
    opt.build(variables)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            logits = model(batch, training=False)["logits"]
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(batch["label"], logits))
        opt.apply(tape.gradient(loss, variables), variables)
    return model(batch, training=False)["logits"].numpy()


def test_scale_relative_steps_make_fine_tuning_invariant_to_the_embedding_scale(pretrained):
    """Scaling the word and type tables by 6 does not change the model (a LayerNorm follows them);
    with scale-relative steps it does not change fine-tuning either, without them it does."""
    from electra_tf.pretrained import find_config

    cfg = find_config(pretrained)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 500, size=(4, 12)).astype(np.int32)
    ids[:, 0] = 2
    batch = {"input_ids": tf.constant(ids), "input_mask": tf.ones_like(ids), "label": tf.constant([0, 1, 0, 1])}
    results = {}
    for scale_rates in (True, False):
        for factor in (1.0, 6.0):
            model = _classifier(pretrained, cfg)
            emb = model.encoder.embeddings
            tables = [emb.word_embedding.embeddings, emb.type_embedding.embeddings]
            for table in tables:
                table.assign(table * factor)
            before = model(batch, training=False)["logits"].numpy()
            results[(scale_rates, factor)] = (before, _train_steps(model, scale_rates, batch))
    np.testing.assert_allclose(results[(True, 1.0)][0], results[(True, 6.0)][0], atol=1e-5)  # same model
    np.testing.assert_allclose(results[(True, 1.0)][1], results[(True, 6.0)][1], atol=2e-4)  # same fine-tuning
    assert np.abs(results[(False, 1.0)][1] - results[(False, 6.0)][1]).max() > 1e-3  # fixed rates: not


def test_scale_multipliers_are_one_at_initialisation_and_follow_growth(pretrained):
    from electra_tf.pretrained import find_config

    cfg = find_config(pretrained)
    model = _classifier(pretrained, cfg)
    scales = dict((id(v), m) for v, m in scale_multipliers(model, model.encoder.initializer_range))
    # 2 pretraining steps barely move the weights: every matrix is near its initial scale
    assert all(1.0 <= m < 1.1 for m in scales.values())
    table = model.encoder.embeddings.word_embedding.embeddings
    table.assign(table * 4.0)
    grown = dict((id(v), m) for v, m in scale_multipliers(model, model.encoder.initializer_range))
    assert grown[id(table)] == pytest.approx(4.0 * scales[id(table)], rel=1e-4)
    head = {id(v) for v in model.head.trainable_variables}
    assert all(grown[i] == 1.0 for i in head)  # the new head trains at the plain rate


def test_shrink_returns_grown_block_kernels_to_their_initial_rms_and_keeps_their_directions(pretrained):
    from electra_tf.finetune.optimizer import shrink_blocks
    from electra_tf.pretrained import find_config

    cfg = find_config(pretrained)
    model = _classifier(pretrained, cfg)
    encoder = model.encoder
    before = {v.path: v.numpy().copy() for v in model.weights}
    assert shrink_blocks(encoder, encoder.initializer_range) == []  # near-initial weights: nothing is touched
    assert all(np.array_equal(before[v.path], v.numpy()) for v in model.weights)

    kernels = [v for b in encoder.blocks for v in b.weights if len(v.shape) == 2]
    assert len(kernels) == 4 * len(encoder.blocks)  # qkv, attention output, intermediate, output
    for i, v in enumerate(kernels):
        v.assign(v * (2.0 + i))  # grown as pretraining grows them
    table = encoder.embeddings.word_embedding.embeddings
    table.assign(table * 3.0)
    grown = {v.path: v.numpy().copy() for v in model.weights}
    changed = dict(shrink_blocks(encoder, encoder.initializer_range))
    assert set(changed) == {v.path for v in kernels}
    rms_init = 0.8796 * encoder.initializer_range  # TruncatedNormal cut at 2 stddev
    for v in kernels:
        now = v.numpy()
        assert np.sqrt(np.mean(now ** 2)) == pytest.approx(rms_init, rel=1e-4)
        old = grown[v.path]
        cosine = np.sum(now * old) / np.sqrt(np.sum(now ** 2) * np.sum(old ** 2))
        assert cosine == pytest.approx(1.0, abs=1e-6)  # the same directions
    untouched = [v for v in model.weights if v.path not in changed]
    assert any(v is table for v in untouched)  # embeddings, biases, LayerNorms, the head: as they were
    assert all(np.array_equal(grown[v.path], v.numpy()) for v in untouched)


def test_a_run_with_shrink_starts_from_the_shrunk_kernels(pretrained, tmp_path):
    """FinetuneConfig.shrink reaches the model a run trains: a checkpoint whose block kernels grew starts
    fine-tuning at the initial RMS with shrink, as saved without it."""
    from electra_tf.config import dump_config
    from electra_tf.finetune.glue import get_task
    from electra_tf.finetune.runner import FinetuneConfig, FinetuneRun
    from electra_tf.finetune.search import encode_task, find_vocab
    from electra_tf.finetune.synthetic import write_synthetic_task
    from electra_tf.pretrained import find_config, load_pretrained

    cfg = find_config(pretrained)
    _, generator, discriminator = load_pretrained(pretrained)
    for block in discriminator.encoder.blocks:
        for v in block.weights:
            if len(v.shape) == 2:
                v.assign(v * 3.0)
    grown_dir = tmp_path / "grown"
    grown_dir.mkdir()
    dump_config(cfg, str(grown_dir / "config.yaml"))
    grown = str(grown_dir / "checkpoints" / "ckpt-1")
    tf.train.Checkpoint(generator=generator, discriminator=discriminator).write(grown)

    task = get_task("sst2")
    data_dir = str(tmp_path / "SST-2")
    write_synthetic_task(task, data_dir, num_train=16, num_dev=8)
    data = encode_task(task, read_tsv_dir(task, data_dir), find_vocab(pretrained, cfg), 32)
    rms_init = 0.8796 * cfg.model.initializer_range
    for shrink, expected in ((True, rms_init), (False, None)):
        run = FinetuneRun(task, grown, cfg, data, FinetuneConfig(max_steps=1, batch_size=8, shrink=shrink),
                          str(tmp_path / f"run{shrink}"), progress=False)
        run._build()
        for block, saved in zip(run.model.encoder.blocks, discriminator.encoder.blocks):
            for v, w in zip(block.weights, saved.weights):
                if len(v.shape) == 2:
                    rms = float(np.sqrt(np.mean(v.numpy() ** 2)))
                    assert rms == pytest.approx(expected or float(np.sqrt(np.mean(w.numpy() ** 2))), rel=1e-4)


def test_shrink_is_on_by_default_below_width_256_and_reaches_the_run(pretrained, tmp_path, caplog):
    import logging

    from electra_tf.config import load_config
    from electra_tf.finetune.cli import _shrink, build_parser
    from electra_tf.finetune.runner import FinetuneConfig
    from electra_tf.finetune.search import shrink_for_model

    expected = {"tiny": True, "small": False, "base": False, "large": False}
    assert {p: shrink_for_model(load_config(p, ["model.vocab_size=1000"])) for p in expected} == expected
    caplog.set_level(logging.INFO)
    base = ["--task", "sst2", "--pretrained", pretrained, "--output_dir", str(tmp_path)]
    assert _shrink(build_parser().parse_args(base)) is True
    assert "--shrink auto: on (hidden" in caplog.text
    assert _shrink(build_parser().parse_args(base + ["--shrink", "off"])) is False
    assert FinetuneConfig(shrink=True).name.endswith("_shrink_seed0")
    assert "shrink" not in FinetuneConfig().name


def test_finetune_seed_changes_head_dropout_and_data_order(pretrained, tmp_path, tasks):
    """Two seeds must differ in the head's initialisation, the dropout masks and the order of the data."""
    import keras

    from electra_tf.finetune.features import train_dataset
    from electra_tf.finetune.search import encode_task, find_vocab
    from electra_tf.pretrained import find_config

    cfg = find_config(pretrained)
    heads, drops, orders = [], [], []
    task, splits = tasks["topic_100"]
    vocab = find_vocab(pretrained, cfg)
    data = encode_task(task, splits, vocab, 32, cfg.model.vocab_size)
    for seed in (0, 1):
        model = _classifier(pretrained, cfg, seed=seed, dropout=0.5)
        heads.append(model.head.out_proj.kernel.numpy())
        x = tf.ones([2, 8, cfg.model.hidden_size])
        drops.append(np.concatenate([model.encoder.embeddings.dropout_layer(x, training=True).numpy().ravel(),
                                     model.head.dropout_layer(x, training=True).numpy().ravel()]))
        keras.utils.set_random_seed(seed)
        batch = next(iter(train_dataset(data["train"], 8, seed=seed)))
        orders.append(batch["input_ids"].numpy()[:, :5])
    assert not np.array_equal(heads[0], heads[1])
    assert not np.array_equal(drops[0], drops[1])
    assert not np.array_equal(orders[0], orders[1])


# --------------------------------------------------------------------------- the benchmark end to end
@pytest.mark.slow
def test_reproduce_transfer_scores_random_init_and_every_checkpoint(tiny_data, tmp_path):
    model_dir = str(tmp_path / "run")
    from electra_tf.training.trainer import Trainer

    Trainer(make_config(tiny_data, "train.max_steps=4", "train.checkpoint_every=2"), model_dir, export=False,
            progress=False).train()
    out = str(tmp_path / "transfer")
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "reproduce.py"), "transfer", "--model_dir", model_dir,
           "--out", out, "--tasks", "topic_100,pair_1000", "--epochs", "0.2", "--seeds", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "random init" in proc.stdout and "step 4" in proc.stdout
    with open(os.path.join(out, "transfer.csv")) as f:
        rows = list(csv.DictReader(f))
    expected = {(s, t) for s in ("0", "2", "4") for t in ("topic_100", "pair_1000")}
    assert {(r["step"], r["task"]) for r in rows} == expected
    for r in rows:
        assert 0.0 <= float(r["finetune"]) <= 1.0 and 0.0 <= float(r["probe_mean"]) <= 1.0
        assert float(r["rank"]) > 1.0 and -1.0 <= float(r["cosine"]) <= 1.0
    assert os.path.getsize(os.path.join(out, "transfer.png")) > 0
    # a second run reuses every score (nothing is fine-tuned again)
    with open(os.path.join(out, "scores.json")) as f:
        first = json.load(f)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(out, "scores.json")) as f:
        assert json.load(f) == first
    assert "fine-tuning on" not in proc.stderr


def test_finetune_defaults_follow_the_model_size():
    from electra_tf.config import load_config
    from electra_tf.finetune.search import DEFAULT_SPACE, SMALL_SPACE, TINY_SPACE, space_for_model

    expected = {"tiny": (TINY_SPACE, "tiny"), "small": (SMALL_SPACE, "ELECTRA-Small"),
                "base": (DEFAULT_SPACE, "paper"), "large": (DEFAULT_SPACE, "paper")}
    for preset, (space, word) in expected.items():
        chosen, which = space_for_model(load_config(preset, ["model.vocab_size=1000"]))
        assert chosen == space and word in which
    assert TINY_SPACE.learning_rates == (1e-3, 3e-3) and TINY_SPACE.epochs == (10.0,)
    assert SMALL_SPACE.learning_rates == (1e-4, 3e-4)


def test_finetune_without_lr_says_which_grid_it_picked(pretrained, tmp_path, caplog):
    import logging

    from electra_tf.finetune.cli import _space, build_parser

    caplog.set_level(logging.INFO)
    args = build_parser().parse_args(["--task", "sst2", "--pretrained", pretrained, "--output_dir", str(tmp_path)])
    space = _space(args)
    assert space.learning_rates == (1e-3, 3e-3) and space.epochs == (10.0,)
    assert "No --lr given: searching the grid measured for tiny models" in caplog.text
    args = build_parser().parse_args(["--task", "sst2", "--pretrained", pretrained, "--output_dir", str(tmp_path),
                                      "--lr", "5e-5", "--epochs", "2"])
    assert _space(args).learning_rates == (5e-5,) and _space(args).epochs == (2.0,)


def test_find_vocab_finds_the_builtin_data_vocabulary_of_a_run_without_export(tmp_path):
    """Random init and runs pretrained with --no_export on the built-in data have no vocab.model beside them."""
    from electra_tf.config import load_config
    from electra_tf.finetune.search import find_vocab
    from electra_tf.pretrained import recorded_data_dir

    cfg = load_config("tiny", [f"data.builtin_dir={tmp_path / 'tfrecords'}"])
    data_dir = recorded_data_dir(cfg)
    os.makedirs(data_dir)
    with open(os.path.join(data_dir, "vocab.model"), "wb") as f:
        f.write(b"x")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    assert find_vocab(str(tmp_path / "run" / "checkpoints" / "ckpt-0"), cfg) == os.path.join(data_dir, "vocab.model")
