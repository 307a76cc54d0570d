"""One set of checks for every public layer, in the spirit of keras-hub's ``TestCase.run_layer_test``.

:func:`run_layer_test` builds a layer from its class and constructor
arguments and checks: an eager call (output shape), a symbolic call on
``keras.Input``s (the same shape), the expected number of trainable weights, a
``get_config``/``from_config`` round trip with equal outputs and equal
configs, a ``.keras`` save and load with equal outputs, and a call under the
``mixed_bfloat16`` policy (bfloat16 compute, float32 variables, finite outputs).
A layer tied to another layer's weights (``serializable=False``) gets every
check but the two that serialise it, which it refuses by design.
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf


def _symbolic(value):
    return keras.Input(batch_shape=tuple(value.shape), dtype=value.dtype.name)


def _first(outputs):
    """The output that shapes are checked on: the tensor, or the first value of a dict in key order."""
    return outputs[sorted(outputs)[0]] if isinstance(outputs, dict) else outputs


def _numpy(outputs):
    return tf.nest.map_structure(lambda t: np.asarray(t), outputs)


def _assert_same(a, b, atol):
    tf.nest.map_structure(lambda x, y: np.testing.assert_allclose(x, y, rtol=0, atol=atol), _numpy(a), _numpy(b))


def run_layer_test(cls, init_kwargs, inputs, expected_output_shape, expected_num_trainable_weights,
                   call_kwargs=None, atol=1e-6, run_mixed_precision=True, serializable=True):
    """Runs every check on ``cls(**init_kwargs)`` called as ``layer(*inputs, **call_kwargs)``.

    Args:
        cls: the layer (or model) class.
        init_kwargs: constructor arguments (plain values: the config round trip rebuilds from them).
        inputs: a tuple of positional tensor inputs (a dict counts as one input).
        expected_output_shape: the shape of the (first, by key) output.
        expected_num_trainable_weights: ``len(layer.trainable_weights)`` once built.
        call_kwargs: keyword tensor inputs (e.g. ``padding_mask``), part of the symbolic call too.
        atol: tolerance of "equal outputs" (0 asks for bitwise equality).
        run_mixed_precision: also call it under ``mixed_bfloat16``.
        serializable: False for a layer tied to another's weights: no config or ``.keras`` round trip.
    """
    call_kwargs = call_kwargs or {}
    layer = cls(**init_kwargs)

    # Eager call, shape and weights.
    out = layer(*inputs, **call_kwargs)
    assert tuple(_first(out).shape) == tuple(expected_output_shape), (_first(out).shape, expected_output_shape)
    assert len(layer.trainable_weights) == expected_num_trainable_weights, \
        f"{cls.__name__}: {len(layer.trainable_weights)} trainable weights, expected {expected_num_trainable_weights}"

    # Symbolic call on keras.Input, in a functional model that the .keras check saves.
    sym_inputs = tf.nest.map_structure(_symbolic, tuple(inputs))
    sym_kwargs = tf.nest.map_structure(_symbolic, call_kwargs)
    sym_out = layer(*sym_inputs, **sym_kwargs)
    assert tuple(_first(sym_out).shape) == tuple(expected_output_shape), _first(sym_out).shape

    if serializable:
        _check_round_trips(cls, layer, inputs, call_kwargs, sym_inputs, sym_kwargs, sym_out, out, atol)

    if run_mixed_precision:
        mixed = cls(**{**init_kwargs, "dtype": "mixed_bfloat16"})
        mixed_out = mixed(*inputs, **call_kwargs)
        assert mixed.compute_dtype == "bfloat16" and mixed.variable_dtype == "float32"
        assert all(w.dtype == "float32" for w in mixed.weights), [w.path for w in mixed.weights if w.dtype != "float32"]
        tf.nest.map_structure(lambda t: np.testing.assert_array_equal(np.isfinite(np.asarray(t, np.float32)), True),
                              mixed_out)
    return out


def _check_round_trips(cls, layer, inputs, call_kwargs, sym_inputs, sym_kwargs, sym_out, out, atol):
    # get_config / from_config: the same config, and the same outputs with the same weights.
    config = layer.get_config()
    clone = cls.from_config(config)
    clone(*inputs, **call_kwargs)
    clone.set_weights(layer.get_weights())
    _assert_same(clone(*inputs, **call_kwargs), out, atol)
    assert clone.get_config() == config

    # .keras save and load.
    flat_inputs = list(sym_inputs) + list(sym_kwargs.values())
    model = keras.Model(flat_inputs, sym_out)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    values = list(inputs) + list(call_kwargs.values())
    _assert_same(loaded(values), model(values), atol)
    _assert_same(model(values), out, atol)
