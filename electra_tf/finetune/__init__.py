"""Fine-tuning the pretrained discriminator on GLUE tasks and user-defined TSV tasks.

>>> from electra_tf.finetune import get_task, run_search
>>> results = run_search(get_task("sst2"), "runs/tiny", "runs/sst2", data_dir="glue_data/SST-2")  # doctest: +SKIP
"""

from electra_tf.finetune.classifier import ClassificationHead, SequenceClassifier
from electra_tf.finetune.features import EncodedSplit, encode_examples, encode_pair, eval_dataset, train_dataset
from electra_tf.finetune.finetuned import load_finetuned
from electra_tf.finetune.glue import GLUE_TASKS, TASK_NAMES, Task, custom_task, get_task
from electra_tf.finetune.metrics import accuracy, f1_score, matthews_corrcoef, pearson, spearman, task_metrics
from electra_tf.finetune.optimizer import LayerwiseAdamax, layer_depths, layerwise_multipliers
from electra_tf.finetune.readers import Example, load_examples, read_tfds, read_tsv, read_tsv_dir
from electra_tf.finetune.runner import FinetuneConfig, FinetuneDiverged, FinetuneRun, build_classifier
from electra_tf.finetune.search import DEFAULT_SPACE, PAPER_SPACE, SearchSpace, find_vocab, run_search
from electra_tf.finetune.synthetic import write_synthetic_task

__all__ = [
    "ClassificationHead", "SequenceClassifier",
    "EncodedSplit", "encode_examples", "encode_pair", "eval_dataset", "train_dataset",
    "load_finetuned",
    "GLUE_TASKS", "TASK_NAMES", "Task", "custom_task", "get_task",
    "accuracy", "f1_score", "matthews_corrcoef", "pearson", "spearman", "task_metrics",
    "LayerwiseAdamax", "layer_depths", "layerwise_multipliers",
    "Example", "load_examples", "read_tfds", "read_tsv", "read_tsv_dir",
    "FinetuneConfig", "FinetuneDiverged", "FinetuneRun", "build_classifier",
    "DEFAULT_SPACE", "PAPER_SPACE", "SearchSpace", "find_vocab", "run_search",
    "write_synthetic_task",
]
