"""The pretraining algorithm: the paper's λ argument, decoupled optimizers, strategies, labels, GDES."""

import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_config, run_pretrain

from electra_tf.models.objective import discriminator_loss_sum, generator_loss_sum
from electra_tf.models.sampling import replaced_labels, scatter_replacements
from electra_tf.training.builder import build_pretraining


def _build(tmp_path, data, name, *overrides):
    """Models, optimizers and steps of a test-sized config, built with nothing written (``tmp_path`` unused)."""
    return build_pretraining(make_config(data, *overrides))


def _batch(run, size=8):
    return next(iter(run.dataset("train", batch_size=size)))


def _values(variables):
    return {v.path: v.numpy().copy() for v in variables}


def _adam_first_update_for_scaled_gradient(u1, scale, lr, beta2):
    """Adam's first update for gradient ``scale * g``, given its first update ``u1`` for ``g``.

    Keras's first Adam step is ``u = -a g / (s |g| + eps)`` with ``s = sqrt(1 - beta2)`` and
    ``a = lr * s``; solving ``u1`` for ``eps / |g|`` gives the update for ``scale * g``
    without knowing ``g`` or ``eps``: ``sign(u1) * scale a / ((scale - 1) s + a / |u1|)``.
    """
    s = np.sqrt(1.0 - beta2)
    a = lr * s
    out = np.zeros_like(u1, dtype=np.float64)
    nz = u1 != 0
    mag = np.abs(u1[nz]).astype(np.float64)
    out[nz] = np.sign(u1[nz]) * scale * a / ((scale - 1.0) * s + a / mag)
    return out


def test_lambda_cancels_under_adam_except_on_shared_embeddings(tmp_path, tiny_data):
    """Sec. 3.2: with one Adam on L_G + λ·L_D, λ only matters for variables both losses reach.

    For every variable that only one model has, the update with λ=50 is exactly what Adam's
    formula predicts from the λ=1 update when the gradient is 50x larger (λ enters only
    through ε); the shared embedding departs from that prediction.
    """
    lr, beta2 = 1e-3, 0.98
    common = ["train.mode=joint", "embedding_sharing=shared", "train.warmup_steps=0", "model.dropout=0.0",
              "model.attention_dropout=0.0", "train.clip_norm=0", "train.weight_decay=0.0",
              f"train.learning_rate={lr}", f"train.adam_beta2={beta2}", "train.seed=5", "train.deterministic=true"]
    updates = {}
    for weight in (1, 50):
        run = _build(tmp_path, tiny_data, f"w{weight}", *common, f"train.disc_weight={weight}")
        variables = run.generator.trainable_variables + run.discriminator.trainable_variables
        before = _values(variables)
        run.steps.train_step()
        after = _values(variables)
        updates[weight] = {k: after[k].astype(np.float64) - before[k] for k in before}
        # An update is read as a difference of float32 values: it is known to one ulp of the
        # variable, and predicting the λ=50 update from the λ=1 one can amplify that up to 50x.
        ulp = {k: np.spacing(np.maximum(np.abs(before[k]), np.abs(after[k])).astype(np.float32)) for k in before}
        shared = run.generator.encoder.word_embedding.embeddings.path
        gen_only = {v.path for v in run.generator.trainable_variables} - {shared}
        disc_only = {v.path for v in run.discriminator.trainable_variables} - {shared}
    assert disc_only and gen_only
    for path in disc_only:
        # D's gradient is 50x larger with λ=50; nothing else differs.
        predicted = _adam_first_update_for_scaled_gradient(updates[1][path], 50.0, lr, beta2)
        error = np.abs(updates[50][path] - predicted)
        # Some gradients are mathematically zero and numerically rounding noise (the key bias:
        # softmax ignores a constant shift), so not exactly proportional; Adam turns such noise
        # into updates far below lr * 1e-5, which is the floor allowed here.
        assert np.all(error <= 1e-4 * np.abs(predicted) + 51 * ulp[path] + 1e-5 * lr), (path, error.max())
    for path in gen_only:
        np.testing.assert_allclose(updates[50][path], updates[1][path], rtol=1e-4, atol=1e-9, err_msg=path)
    # The shared table gets g_G + λ g_D: its update is neither of the above.
    shared_pred = _adam_first_update_for_scaled_gradient(updates[1][shared], 50.0, lr, beta2)
    assert np.abs(updates[50][shared] - shared_pred).max() > 1e-4
    assert np.abs(updates[50][shared] - updates[1][shared]).max() > 1e-4


def test_decoupled_optimizers_partition_and_isolate(tmp_path, tiny_data):
    run = _build(tmp_path, tiny_data, "dec", "train.mode=decoupled", "train.generator_lr=1e-12",
                       "train.discriminator_lr=1e-3", "train.warmup_steps=0")
    gen_group, disc_group = run.groups
    gen_ids, disc_ids = {id(v) for v in gen_group.variables}, {id(v) for v in disc_group.variables}
    everything = {id(v) for v in run.generator.trainable_variables + run.discriminator.trainable_variables}
    assert not gen_ids & disc_ids
    assert gen_ids | disc_ids == everything

    # L_D sends no gradient into the generator.
    batch = _batch(run)
    with tf.GradientTape() as tape:
        out = run.pretrainer(batch, tf.constant([1, 2]), training=True)
        disc_loss = discriminator_loss_sum(out["disc_logits"], out["labels"], batch["input_mask"])
    grads = tape.gradient(disc_loss, gen_group.variables)
    assert all(g is None or not np.any(tf.convert_to_tensor(g).numpy()) for g in grads)

    # A near-zero generator lr freezes the generator while the discriminator learns.
    g_before, d_before = _values(gen_group.variables), _values(disc_group.variables)
    for _ in range(2):
        run.steps.train_step()
    g_after, d_after = _values(gen_group.variables), _values(disc_group.variables)
    assert max(np.abs(g_after[k] - g_before[k]).max() for k in g_before) < 1e-9
    assert all(np.abs(d_after[k] - d_before[k]).max() > 0 for k in d_before)


def _run_cli(model_dir, data, *extra, steps=3):
    return run_pretrain(model_dir, data, *extra, steps=steps)


@pytest.mark.slow
def test_mirrored_two_replicas_matches_one_device(tmp_path, tiny_data):
    """Gradients aggregated and scaled right: same generator loss at steps 1-3 on 1 and 2 replicas."""
    sets = ["train.mode=decoupled", "model.dropout=0.0", "model.attention_dropout=0.0", "train.seed=3"]
    one, _ = _run_cli(tmp_path / "one", tiny_data, "--strategy", "one_device", "--no_export", "--set", *sets)
    two, _ = _run_cli(tmp_path / "two", tiny_data, "--strategy", "mirrored", "--cpu_replicas", "2", "--no_export",
                      "--set", *sets)
    one = [r for r in one if "split" not in r]
    two = [r for r in two if "split" not in r]
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2, 3]
    for a, b in zip(one, two):
        assert a["gen_loss"] == pytest.approx(b["gen_loss"], rel=1e-5, abs=1e-6)
        assert a["grad_norm_generator"] == pytest.approx(b["grad_norm_generator"], rel=1e-4)


def _trained_values(model_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.startswith(("generator/", "discriminator/", "generator_optimizer/", "discriminator_optimizer/"))}


@pytest.mark.slow
def test_mirrored_two_replicas_match_one_device_with_dropout_on(tmp_path, tiny_data):
    """Replica invariance, whole: with dropout on, both losses and both gradient norms at each of 5 steps and every
    variable and optimizer slot after them agree between 1 and 2 replicas (dropout masks keyed by example)."""
    sets = ["train.mode=decoupled", "model.dropout=0.1", "model.attention_dropout=0.1", "train.seed=3",
            "train.log_every=1", "train.checkpoint_every=5"]
    one, _ = _run_cli(tmp_path / "one", tiny_data, "--strategy", "one_device", "--no_export", "--set", *sets, steps=5)
    two, _ = _run_cli(tmp_path / "two", tiny_data, "--strategy", "mirrored", "--cpu_replicas", "2", "--no_export",
                      "--set", *sets, steps=5)
    one = [r for r in one if "split" not in r]
    two = [r for r in two if "split" not in r]
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2, 3, 4, 5]
    for a, b in zip(one, two):
        for key in ("gen_loss", "disc_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (a["step"], key)
        for key in ("grad_norm_generator", "grad_norm_discriminator"):
            assert a[key] == pytest.approx(b[key], rel=1e-4), (a["step"], key)
    values_one, values_two = _trained_values(tmp_path / "one"), _trained_values(tmp_path / "two")
    assert values_one.keys() == values_two.keys() and len(values_one) > 50
    for key in values_one:
        np.testing.assert_allclose(values_one[key], values_two[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_labels_mark_exactly_the_changed_tokens():
    original = tf.constant([[2, 10, 11, 12, 3, 0], [2, 20, 21, 3, 0, 0]])
    mask = tf.cast(original != 0, tf.int32)
    positions = tf.constant([[1, 2, 0], [2, 0, 0]])
    weights = tf.constant([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    sampled = tf.constant([[10, 99, 55], [77, 66, 66]])  # position 1 re-samples its original token
    corrupted = scatter_replacements(original, positions, sampled, weights)
    np.testing.assert_array_equal(corrupted.numpy(), [[2, 10, 99, 12, 3, 0], [2, 20, 77, 3, 0, 0]])
    labels = replaced_labels(original, corrupted, mask).numpy()
    np.testing.assert_array_equal(labels, [[0, 0, 1, 0, 0, 0], [0, 0, 1, 0, 0, 0]])


def test_padding_slots_never_overwrite_a_sample_at_position_0():
    """Unused slots of the position list hold index 0; a real sample there must survive them."""
    original = tf.constant([[10, 11, 12, 13, 0], [20, 21, 22, 23, 24]])
    positions = tf.constant([[0, 2, 0, 0], [0, 0, 0, 0]])
    weights = tf.constant([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    sampled = tf.constant([[99, 98, 97, 96], [88, 87, 86, 85]])
    corrupted = scatter_replacements(original, positions, sampled, weights)
    np.testing.assert_array_equal(corrupted.numpy(), [[99, 11, 98, 13, 0], [88, 21, 22, 23, 24]])


def test_a_sequence_without_cls_can_be_replaced_at_position_0():
    """Data that does not begin with [CLS]: a token sampled for position 0 reaches the discriminator."""
    from electra_tf.config import load_config
    from electra_tf.models import ElectraPretrainer, build_models

    cfg = load_config("tiny", ["model.vocab_size=64", "model.hidden_size=16", "model.num_layers=1",
                               "model.num_heads=1", "model.intermediate_size=32", "generator.hidden_size=8",
                               "generator.num_layers=1", "generator.num_heads=1", "generator.intermediate_size=16"])
    generator, _ = build_models(cfg)
    pretrainer = ElectraPretrainer(generator, disallow_correct=True)  # every real sample differs
    ids = tf.constant([[17, 30, 41, 3], [17, 30, 41, 3]])
    batch = {"input_ids": ids, "input_mask": tf.ones_like(ids),
             "masked_input_ids": tf.constant([[4, 30, 41, 3], [4, 30, 4, 3]]),
             "masked_positions": tf.constant([[0, 0, 0], [0, 2, 0]]),
             "masked_ids": tf.constant([[17, 0, 0], [17, 41, 0]]),
             "masked_weights": tf.constant([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])}
    out = pretrainer.corrupt(batch, tf.constant([3, 4]), training=False)
    np.testing.assert_array_equal(out["labels"].numpy(), [[1, 0, 0, 0], [1, 0, 1, 0]])
    np.testing.assert_array_equal(out["corrupted_ids"].numpy()[:, 0], out["sampled_ids"].numpy()[:, 0])


def test_gdes_routes_each_loss_to_its_own_table(tmp_path, tiny_data):
    run = _build(tmp_path, tiny_data, "gdes", "embedding_sharing=gdes", "train.mode=decoupled")
    shared = run.generator.encoder.word_embedding.embeddings
    delta = run.discriminator.encoder.word_embedding.delta
    assert np.count_nonzero(delta.numpy()) == 0
    gen_group, disc_group = run.groups
    assert any(v is shared for v in gen_group.variables) and not any(v is shared for v in disc_group.variables)
    assert any(v is delta for v in disc_group.variables)
    batch = _batch(run)
    with tf.GradientTape(persistent=True) as tape:
        out = run.pretrainer(batch, tf.constant([1, 2]), training=True)
        gen_loss = generator_loss_sum(out["gen_logits"], batch["masked_ids"], batch["masked_weights"])
        disc_loss = discriminator_loss_sum(out["disc_logits"], out["labels"], batch["input_mask"])

    def norm(g):
        return 0.0 if g is None else float(tf.norm(tf.convert_to_tensor(g)))

    assert norm(tape.gradient(disc_loss, shared)) == 0.0
    assert norm(tape.gradient(gen_loss, delta)) == 0.0
    assert norm(tape.gradient(gen_loss, shared)) > 0.0
    assert norm(tape.gradient(disc_loss, delta)) > 0.0
    run.steps.train_step()
    assert np.count_nonzero(delta.numpy()) > 0


@pytest.mark.slow
def test_end_to_end_run_writes_everything(tmp_path, tiny_data):
    model_dir = tmp_path / "run"
    rows, proc = _run_cli(model_dir, tiny_data, "--profile_steps", "1,3", "--set", "train.eval_every=2", steps=4)
    train_rows = [r for r in rows if "split" not in r]
    eval_rows = [r for r in rows if r.get("split") == "eval"]
    keys = {"step", "gen_loss", "gen_accuracy", "disc_loss", "disc_accuracy", "disc_precision", "disc_recall",
            "disc_f1", "replaced_fraction", "lr_generator", "lr_discriminator", "tokens_per_sec", "skipped_steps"}
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    assert keys <= set(train_rows[0])
    assert [r["step"] for r in eval_rows] == [2, 4] and "disc_auc" in eval_rows[0]
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith("ckpt-4")
    events = [f for _, _, fs in os.walk(model_dir / "tensorboard") for f in fs if f.startswith("events.out")]
    assert events
    for name in ("discriminator", "generator"):
        assert os.path.exists(model_dir / "export" / name / "saved_model.pb")
    assert "exports:" in proc.stdout
    traces = [f for _, _, fs in os.walk(model_dir / "tensorboard" / "profile") for f in fs if f.endswith(".xplane.pb")]
    assert traces, "--profile_steps should write a profiler trace"


@pytest.mark.slow
def test_deterministic_runs_write_identical_metrics(tmp_path, tiny_data):
    sets = ["--set", "train.deterministic=true", "train.seed=11"]
    a, _ = _run_cli(tmp_path / "a", tiny_data, "--no_export", *sets)
    b, _ = _run_cli(tmp_path / "b", tiny_data, "--no_export", *sets)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "tokens_per_sec"} for r in rows]  # noqa: E731
    assert strip(a) == strip(b)


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_gradient_accumulation_equals_one_large_batch(tmp_path, tiny_data, dropout):
    """Two micro-batches of 4 give the same update as one batch of 8 (losses use global denominators; dropout
    masks keyed by the example's index in the global batch)."""
    common = [f"model.dropout={dropout}", f"model.attention_dropout={dropout}", "train.warmup_steps=0",
              "train.seed=2"]
    results = []
    for accum in (1, 2):
        run = _build(tmp_path, tiny_data, f"acc{accum}", *common, f"train.grad_accum_steps={accum}")
        run.steps.train_step()
        results.append([v.numpy() for v in run.generator.weights + run.discriminator.weights])
        sums, _ = run.steps.read_window()
        results.append(sums)
    one, one_sums, two, two_sums = results
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for key in ("gen_count", "disc_count", "true_pos"):
        assert one_sums[key] == two_sums[key]
    assert one_sums["gen_loss_sum"] == pytest.approx(two_sums["gen_loss_sum"], rel=1e-5)


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_keeps_losses_and_sampling_in_float32(tmp_path, tiny_data, precision):
    run = _build(tmp_path, tiny_data, precision, f"train.mixed_precision={precision}")
    batch = _batch(run)
    out = run.pretrainer(batch, tf.constant([1, 2]), training=True)
    assert out["gen_logits"].dtype == tf.float32 and out["disc_logits"].dtype == tf.float32
    assert run.discriminator.encoder.blocks[0].compute_dtype == precision
    assert all(v.dtype == tf.float32 for v in run.discriminator.trainable_variables)
    for _ in range(3):
        _, finite = run.steps.train_step()
    sums, steps = run.steps.read_window()
    assert steps == 3 and np.isfinite(sums["gen_loss_sum"]) and np.isfinite(sums["disc_loss_sum"])
    if precision == "float16":
        assert all(g.loss_scale is not None for g in run.groups)
        assert bool(finite) and float(run.groups[0].loss_scale.numpy()) == 2.0 ** 15
    else:
        assert all(g.loss_scale is None for g in run.groups)


@pytest.mark.slow
def test_jit_compiled_step_matches_the_plain_step(tmp_path, tiny_data):
    common = ["model.dropout=0.0", "model.attention_dropout=0.0", "train.warmup_steps=0", "train.seed=4"]
    losses = []
    for jit in ("false", "true"):
        run = _build(tmp_path, tiny_data, f"jit{jit}", *common, f"train.jit_compile={jit}")
        for _ in range(2):
            run.steps.train_step()
        sums, _ = run.steps.read_window()
        losses.append(sums["gen_loss_sum"] / sums["gen_count"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_gumbel_sampling_follows_the_softmax_and_can_forbid_the_original():
    from electra_tf.models.sampling import gumbel_sample

    logits = tf.math.log(tf.constant([[[0.7, 0.2, 0.1]]] * 1))
    logits = tf.tile(logits, [4000, 1, 1])  # 4000 independent draws
    draws = gumbel_sample(logits, tf.constant([3, 9])).numpy().ravel()
    freq = np.bincount(draws, minlength=3) / draws.size
    np.testing.assert_allclose(freq, [0.7, 0.2, 0.1], atol=0.03)
    again = gumbel_sample(logits, tf.constant([3, 9])).numpy().ravel()
    np.testing.assert_array_equal(draws, again)  # stateless: same seed, same tokens
    forbid = tf.zeros([4000, 1], tf.int32)
    no_zero = gumbel_sample(logits, tf.constant([3, 9]), forbid_ids=forbid).numpy().ravel()
    assert not np.any(no_zero == 0)
    hot = gumbel_sample(logits, tf.constant([3, 9]), temperature=0.05).numpy().ravel()
    assert np.mean(hot == 0) > 0.99  # low temperature approaches argmax


def test_recomputed_blocks_train_exactly_like_stored_activations(tmp_path, tiny_data):
    """``train.recompute`` replays every dropout mask in the backward pass: same updates, bit for bit."""
    common = ["model.dropout=0.2", "model.attention_dropout=0.2", "train.warmup_steps=0", "train.seed=6"]
    runs = []
    for recompute in ("false", "true"):
        run = _build(tmp_path, tiny_data, f"recompute{recompute}", *common, f"train.recompute={recompute}")
        assert run.discriminator.encoder.recompute_blocks is (recompute == "true")
        for _ in range(2):
            run.steps.train_step()
        sums, _ = run.steps.read_window()
        runs.append((sums, _values(run.generator.weights + run.discriminator.weights)))
    (plain_sums, plain), (re_sums, re) = runs
    assert plain_sums["gen_loss_sum"] == re_sums["gen_loss_sum"]
    assert plain_sums["disc_loss_sum"] == re_sums["disc_loss_sum"]
    assert plain.keys() == re.keys()
    for path in plain:
        np.testing.assert_allclose(plain[path], re[path], rtol=0, atol=1e-7, err_msg=path)
