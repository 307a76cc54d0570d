"""Evaluation of pretrained models: fair replaced-token detection against a fixed generator."""

from electra_tf.evaluation.rtd import evaluate_rtd, run_evaluation

__all__ = ["evaluate_rtd", "run_evaluation"]
