"""Fine-tuning the pretrained discriminator: GLUE and TSV tasks, token tagging (CoNLL), extractive QA (SQuAD).

>>> from electra_tf.finetune import get_task, run_search
>>> results = run_search(get_task("sst2"), "runs/tiny", "runs/sst2", data_dir="glue_data/SST-2")  # doctest: +SKIP
"""

from electra_tf.finetune.classifier import ClassificationHead, SequenceClassifier
from electra_tf.finetune.conll import chunk_scores, read_conll
from electra_tf.finetune.features import EncodedSplit, encode_examples, encode_pair, eval_dataset, train_dataset
from electra_tf.finetune.finetuned import load_finetuned
from electra_tf.finetune.glue import GLUE_TASKS, TASK_NAMES, Task, custom_task, get_task
from electra_tf.finetune.heads import SpanExtractor, TokenTagger
from electra_tf.finetune.metrics import accuracy, f1_score, matthews_corrcoef, pearson, spearman, task_metrics
from electra_tf.finetune.optimizer import LayerwiseAdamax, layer_depths, layerwise_multipliers
from electra_tf.finetune.qa import QA_NAMES, QATask, qa_task, read_qa
from electra_tf.finetune.qa_export import export_qa
from electra_tf.finetune.readers import Example, load_examples, read_tfds, read_tsv, read_tsv_dir
from electra_tf.finetune.runner import FinetuneConfig, FinetuneDiverged, FinetuneRun, build_classifier
from electra_tf.finetune.search import DEFAULT_SPACE, PAPER_SPACE, SearchSpace, find_vocab, run_search
from electra_tf.finetune.squad import read_squad, squad_scores
from electra_tf.finetune.synthetic import write_synthetic_chunking, write_synthetic_qa, write_synthetic_task
from electra_tf.finetune.tagging import TAGGING_NAMES, TaggingTask, read_tagging, tagging_task

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
    "write_synthetic_task", "write_synthetic_chunking", "write_synthetic_qa",
    "chunk_scores", "read_conll", "TAGGING_NAMES", "TaggingTask", "read_tagging", "tagging_task", "TokenTagger",
    "QA_NAMES", "QATask", "qa_task", "read_qa", "read_squad", "squad_scores", "SpanExtractor", "export_qa",
]
