"""Research tools: the paper's hyperparameter roadmap as a sweep, and its findings at small scale.

- :mod:`~electra_tf.research.ledger`: resumable trial ledger (JSON) and CSV writer.
- :mod:`~electra_tf.research.trials`: one trial = a ``scripts/pretrain.py`` subprocess; fair RTD scoring.
- :mod:`~electra_tf.research.search`: geometric growth and golden-section search over log-lr.
- :mod:`~electra_tf.research.sweep`: the appendix C roadmap (discriminator lr, then generator lr).
- :mod:`~electra_tf.research.experiments`: ``fig3``, ``gen-size``, ``sharing``.
- :mod:`~electra_tf.research.plots`: metric curves and experiment figures (PNG).
"""
