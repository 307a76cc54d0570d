"""electra_tf: ELECTRA pretraining with DecoupledOptim in TensorFlow 2 + Keras 3.

The Python API (README, "Python API"): :func:`load_config`,
:func:`build_pretraining` (models, optimizers and steps; nothing written),
:class:`Trainer` (the run: model dir, data, logs, checkpoints, the loop) and
:func:`export_models`. They are imported on first use, so ``import electra_tf``
does not load TensorFlow.
"""

import importlib

_API = {
    "load_config": "electra_tf.config",
    "build_pretraining": "electra_tf.training.builder",
    "resolve_data": "electra_tf.training.data",
    "Trainer": "electra_tf.training.trainer",
    "export_models": "electra_tf.export",
    "evaluate_rtd": "electra_tf.evaluation.rtd",
}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'electra_tf' has no attribute {name!r}; the public API is {__all__}")
