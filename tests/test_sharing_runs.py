"""Runs with tied embeddings (``shared``, ``gdes``): export, restore, resume and fine-tune keep the tie's values.

A 4-step run of the test-sized model per sharing mode; every check compares with
the trainer's own in-memory models or with an unbroken run of the same config.
"""

import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_config

from electra_tf.export import EXPORT_DIR, KERAS_ENCODER, export_models
from electra_tf.finetune import FinetuneConfig, SearchSpace, get_task, load_finetuned, run_search
from electra_tf.finetune.runner import build_classifier
from electra_tf.pretrained import find_config, load_pretrained
from electra_tf.training.trainer import Preempted, Trainer

SHARING = {"gdes": ["embedding_sharing=gdes", "train.mode=decoupled"],
           "shared": ["embedding_sharing=shared", "train.mode=joint"]}
RUN = ["train.max_steps=4", "train.checkpoint_every=2", "train.deterministic=true", "train.seed=11"]
TOL = 1e-5


@pytest.fixture(scope="module", params=sorted(SHARING))
def sharing_run(request, tmp_path_factory, tiny_data):
    """``(mode, cfg, trainer)``: a finished 4-step run of that sharing mode that exported at its end."""
    mode = request.param
    cfg = make_config(tiny_data, *SHARING[mode], *RUN)
    trainer = Trainer(cfg, str(tmp_path_factory.mktemp(mode) / "run"), export=export_models, progress=False)
    trainer.train()
    return mode, cfg, trainer


def _inputs(trainer):
    batch = next(iter(trainer.run.dataset("eval", batch_size=4, repeat=False, shuffle=False)))
    return batch["input_ids"], batch["input_mask"]


def _disc_outputs(discriminator, ids, mask):
    out = discriminator({"input_ids": ids, "input_mask": mask}, training=False)
    return out["sequence_output"].numpy(), out["logits"].numpy()


def _assert_same_weights(restored, trained, where):
    assert len(restored.weights) == len(trained.weights), where
    for mine, theirs in zip(restored.weights, trained.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=f"{where}: {mine.path}")


def _table(discriminator):
    return discriminator.encoder.embeddings.word_embedding


def test_the_run_trained_through_the_tie(sharing_run):
    """The premise of the checks below: the tie holds and its weights moved in training."""
    mode, _, trainer = sharing_run
    table = _table(trainer.discriminator)
    if mode == "shared":
        assert table is trainer.generator.encoder.embeddings.word_embedding
    else:
        assert table.shared is trainer.generator.encoder.embeddings.word_embedding
        assert np.count_nonzero(table.delta.numpy()) > 0


@pytest.mark.parametrize("source", ["checkpoint", "export"])
def test_restore_gives_the_trained_models_with_the_tie(sharing_run, source):
    mode, _, trainer = sharing_run
    path = trainer.model_dir if source == "checkpoint" else os.path.join(trainer.model_dir, EXPORT_DIR)
    _, generator, discriminator = load_pretrained(path)
    _assert_same_weights(generator, trainer.generator, f"{mode} {source} generator")
    _assert_same_weights(discriminator, trainer.discriminator, f"{mode} {source} discriminator")
    tied = _table(discriminator) if mode == "shared" else _table(discriminator).shared
    assert tied is generator.encoder.embeddings.word_embedding
    # The discriminator alone (what fine-tuning and RTD evaluation load) reads its effective table too.
    _, _, alone = load_pretrained(path, which=("discriminator",))
    ids, mask = _inputs(trainer)
    for got, want in zip(_disc_outputs(alone, ids, mask), _disc_outputs(trainer.discriminator, ids, mask)):
        np.testing.assert_array_equal(got, want)


def test_exports_serve_the_trained_models(sharing_run):
    mode, _, trainer = sharing_run
    export = os.path.join(trainer.model_dir, EXPORT_DIR)
    ids, mask = _inputs(trainer)
    sequence, logits = _disc_outputs(trainer.discriminator, ids, mask)
    served = tf.saved_model.load(os.path.join(export, "discriminator"))
    encoded = served.signatures["encode"](input_ids=ids, input_mask=mask)
    np.testing.assert_allclose(encoded["sequence_output"].numpy(), sequence, atol=TOL, err_msg=mode)
    detected = served.signatures["detect"](input_ids=ids, input_mask=mask)["replaced_probability"].numpy()
    np.testing.assert_allclose(detected, tf.sigmoid(logits).numpy() * mask.numpy(), atol=TOL, err_msg=mode)

    # The .keras encoder folds the tie into its own table and gives the same hidden states.
    encoder = keras.saving.load_model(os.path.join(export, KERAS_ENCODER))
    assert not any("delta" in w.path for w in encoder.weights)
    hidden = encoder({"input_ids": ids, "input_mask": mask}, training=False)["sequence_output"]
    np.testing.assert_allclose(hidden.numpy(), sequence, atol=TOL, err_msg=mode)

    # The generator's fill_mask: the in-memory generator's most likely token at each [MASK].
    masked = tf.where(tf.logical_and(mask > 0, tf.range(ids.shape[1])[None, :] % 5 == 3), 4, ids)
    filled = tf.saved_model.load(os.path.join(export, "generator")).signatures["fill_mask"](
        input_ids=masked, input_mask=mask)
    positions, weights = filled["masked_positions"], filled["masked_weights"].numpy()
    gen_logits = trainer.generator({"input_ids": masked, "input_mask": mask, "masked_positions": positions},
                                   training=False)["logits"]
    best = tf.argmax(gen_logits, axis=-1, output_type=tf.int32).numpy()
    assert weights.sum() > 0
    np.testing.assert_array_equal(filled["top_ids"].numpy()[..., 0][weights > 0], best[weights > 0])


@pytest.mark.slow
def test_a_preempted_run_resumes_to_the_unbroken_runs_weights(sharing_run, tmp_path):
    """Stopped by SIGTERM's path after step 2, then run again: step 4 equals the unbroken run, bit for bit."""
    mode, cfg, unbroken = sharing_run
    model_dir = str(tmp_path / "broken")
    first = Trainer(cfg, model_dir, export=False, progress=False)
    train_step, calls = first.steps.train_step, []

    def stop_after_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            first._on_sigterm(signal.SIGTERM, None)
        return train_step(*args, **kwargs)

    first.steps.train_step = stop_after_two
    with pytest.raises(Preempted):
        first.train()
    second = Trainer(cfg, model_dir, export=False, progress=False)
    second.train()
    assert int(second.steps.step.numpy()) == 4

    def saved(directory):
        path = tf.train.latest_checkpoint(os.path.join(directory, "checkpoints"))
        reader = tf.train.load_checkpoint(path)
        keys = [k for k in reader.get_variable_to_shape_map() if k.startswith(
            ("generator/", "discriminator/", "generator_optimizer/", "discriminator_optimizer/", "optimizer/"))]
        return path, {k: reader.get_tensor(k) for k in keys}

    path_a, values_a = saved(unbroken.model_dir)
    path_b, values_b = saved(model_dir)
    assert path_a.endswith("ckpt-4") and path_b.endswith("ckpt-4")
    assert values_a.keys() == values_b.keys() and len(values_a) > 20
    for key in values_a:  # model weights, optimizer slots and steps
        np.testing.assert_array_equal(values_a[key], values_b[key], err_msg=f"{mode}: {key}")
    _assert_same_weights(second.generator, unbroken.generator, f"{mode} resumed generator")
    _assert_same_weights(second.discriminator, unbroken.discriminator, f"{mode} resumed discriminator")


def test_finetuning_starts_from_the_pretrained_discriminator(sharing_run):
    mode, _, trainer = sharing_run
    classifier = build_classifier(trainer.model_dir, find_config(trainer.model_dir), num_labels=2, dropout=0.0)
    ids, mask = _inputs(trainer)
    hidden = classifier.encoder({"input_ids": ids, "input_mask": mask}, training=False)["sequence_output"]
    np.testing.assert_array_equal(hidden.numpy(), _disc_outputs(trainer.discriminator, ids, mask)[0])


@pytest.mark.slow
def test_a_finetuning_search_runs_and_its_best_model_reloads(sharing_run, tmp_path):
    from electra_tf.finetune import write_synthetic_task

    mode, _, trainer = sharing_run
    task = get_task("sst2")
    data_dir = str(tmp_path / "SST-2")
    write_synthetic_task(task, data_dir, num_train=32, num_dev=16)
    out = str(tmp_path / "out")
    results = run_search(task, trainer.model_dir, out, data_dir=data_dir, space=SearchSpace(learning_rates=(3e-4,)),
                         seeds=(0,), base=FinetuneConfig(max_steps=4, batch_size=8, eval_every=2),
                         max_seq_length=32, progress=False)
    assert 0.0 <= results["accuracy"] <= 1.0
    model, _, info = load_finetuned(out)
    reader = tf.train.load_checkpoint(info["checkpoint"])
    for i, weight in enumerate(model.weights):
        np.testing.assert_array_equal(weight.numpy(), reader.get_tensor(f"weights/{i}/.ATTRIBUTES/VARIABLE_VALUE"),
                                      err_msg=f"{mode}: {weight.path}")
