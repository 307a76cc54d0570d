"""What ``scripts/finetune.py`` calls: its flags, the task they describe, the search, the lines to print."""

import argparse
import dataclasses
import json
import logging
import os

from electra_tf.exit_codes import BAD_INPUT as EXIT_BAD_INPUT
from electra_tf.exit_codes import DIVERGED as EXIT_DIVERGED
from electra_tf.exit_codes import OK as EXIT_OK

__all__ = ["build_parser", "task_from_args", "run_finetuning", "check_output_reuse"]

log = logging.getLogger("electra_tf")

def build_parser(description=None):
    from electra_tf.finetune.glue import TASK_NAMES
    from electra_tf.finetune.qa import QA_NAMES
    from electra_tf.finetune.tagging import TAGGING_NAMES
    from electra_tf.training.strategy import STRATEGIES

    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help=f"one of {', '.join(TASK_NAMES + TAGGING_NAMES + QA_NAMES)}")
    p.add_argument("--pretrained", required=True,
                   help="pretraining model dir (scripts/pretrain.py --model_dir), checkpoint, or export dir")
    p.add_argument("--output_dir", required=True, help="results.json, results.md, best/, runs/ (TensorBoard)")
    p.add_argument("--data_dir", default=None,
                   help="dir with the task's TSV files (train.tsv, dev.tsv, ...); omit to use TFDS glue/<task>")
    p.add_argument("--tfds_data_dir", default=None, help="TFDS data dir (when --data_dir is not given)")
    p.add_argument("--vocab", default=None,
                   help="SentencePiece model or WordPiece vocab.txt (default: found beside --pretrained)")
    search = p.add_argument_group("search (each flag takes one or more values; the search runs all combinations)")
    search.add_argument("--lr", type=float, nargs="+", default=None, help="peak learning rates (5e-5 1e-4 3e-4)")
    search.add_argument("--epochs", type=float, nargs="+", default=None, help="training epochs (3)")
    search.add_argument("--batch_size", type=int, nargs="+", default=None, help="global batch sizes (32)")
    search.add_argument("--weight_decay", type=float, nargs="+", default=None, help="weight decay (0.01)")
    search.add_argument("--warmup_proportion", type=float, nargs="+", default=None, help="warm-up fraction (0.1)")
    search.add_argument("--layer_decay", type=float, nargs="+", default=None,
                        help="layer-wise lr decay factor, 1 = off (1)")
    search.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds run for every setting (0)")
    search.add_argument("--paper_grid", action="store_true",
                        help="the paper's whole Table 3 grid (epochs, batch, weight decay, warm-up); "
                             "the flags above narrow it")
    fixed = p.add_argument_group("fixed settings")
    fixed.add_argument("--max_seq_length", type=int, default=None, help="256 (QA: 384)")
    fixed.add_argument("--dropout", type=float, default=0.1)
    fixed.add_argument("--probe_epochs", type=float, default=0.0,
                       help="first train the new head alone on the frozen encoder for this many epochs (LP-FT)")
    fixed.add_argument("--shrink", choices=("auto", "on", "off"), default="auto",
                       help="rescale the transformer blocks' kernels that pretraining grew back to their initial RMS "
                            "before fine-tuning (auto: on for models narrower than 256)")
    fixed.add_argument("--clip_norm", type=float, default=1.0, help="global gradient-norm clip (0 = none)")
    fixed.add_argument("--max_steps", type=int, default=None, help="cap the steps of every run (smoke tests)")
    fixed.add_argument("--eval_every", type=int, default=0, help="evaluate every N steps (0 = every epoch)")
    fixed.add_argument("--log_every", type=int, default=10, help="write training metrics every N steps")
    fixed.add_argument("--keep_all_checkpoints", action="store_true", help="keep every run's best checkpoint")
    custom = p.add_argument_group("--task custom (your own TSV files in --data_dir)")
    custom.add_argument("--num_labels", type=int, default=None, help="number of classes; 1 = regression")
    custom.add_argument("--text_a", default="sentence", help="first text column (name, or index with --no_header)")
    custom.add_argument("--text_b", default=None, help="second text column, for sentence pairs")
    custom.add_argument("--label_column", default="label", help="label column")
    custom.add_argument("--label_names", nargs="+", default=None, help="labels of class 0, 1, ... as in the files")
    custom.add_argument("--no_header", action="store_true", help="the files have no header line")
    custom.add_argument("--train_file", default=None,
                        help="train.tsv; tagging: train.txt; qa_custom: train.json; squad1/2: the official name")
    custom.add_argument("--dev_file", default=None,
                        help="dev.tsv; chunking: test.txt; tagging_custom: dev.txt; qa_custom: dev.json")
    custom.add_argument("--metric", default=None, help="the selecting metric (accuracy, f1, mcc, spearman, pearson)")
    tagging = p.add_argument_group("--task chunking | tagging_custom (CoNLL-style files in --data_dir)")
    tagging.add_argument("--token_column", type=int, default=0, help="tagging_custom: the word's field (0)")
    tagging.add_argument("--tag_column", type=int, default=-1, help="tagging_custom: the tag's field (-1: last)")
    qa = p.add_argument_group("--task squad1 | squad2 | qa_custom (SQuAD JSON in --data_dir, or TFDS squad)")
    qa.add_argument("--doc_stride", type=int, default=128, help="tokens between the starts of context windows")
    qa.add_argument("--max_query_length", type=int, default=64, help="question tokens kept")
    qa.add_argument("--max_answer_length", type=int, default=30, help="longest answer decoded, in tokens")
    qa.add_argument("--n_best_size", type=int, default=20, help="start and end candidates per window")
    qa.add_argument("--answerable_head", action="store_true",
                    help="add ELECTRA's answerability classifier on [CLS] to the null-span decision (v2)")
    qa.add_argument("--no_export", action="store_true",
                    help="skip OUT/export (the best model as a SavedModel with a text signature)")
    dist = p.add_argument_group("distribution")
    dist.add_argument("--strategy", default="default", choices=list(STRATEGIES))
    dist.add_argument("--cpu_replicas", type=int, default=0, help="split the CPU into N devices (mirrored)")
    p.add_argument("--no_progress", action="store_true", help="no progress bars")
    return p


def task_from_args(args):
    """The :class:`~electra_tf.finetune.glue.Task` the flags describe."""
    from electra_tf.finetune.glue import custom_task, get_task
    from electra_tf.finetune.qa import QA_NAMES, qa_task
    from electra_tf.finetune.tagging import TAGGING_NAMES, tagging_task

    if args.task in TAGGING_NAMES:
        if not args.data_dir:
            raise ValueError(f"--task {args.task} needs --data_dir with its CoNLL-style files")
        return tagging_task(args.task, args.token_column, args.tag_column, args.train_file, args.dev_file)
    if args.task in QA_NAMES:
        return qa_task(args.task, train_file=args.train_file, dev_file=args.dev_file, doc_stride=args.doc_stride,
                       max_query_length=args.max_query_length, max_answer_length=args.max_answer_length,
                       n_best_size=args.n_best_size, from_tfds=not args.data_dir,
                       answerable_head=args.answerable_head)
    if args.task != "custom":
        if args.num_labels is not None:
            raise ValueError(f"--num_labels only applies to --task custom (task {args.task} has its own labels)")
        return get_task(args.task)
    if args.num_labels is None:
        raise ValueError("--task custom needs --num_labels (1 for regression)")
    if not args.data_dir:
        raise ValueError("--task custom needs --data_dir with its TSV files")
    return custom_task("custom", text_a=args.text_a, text_b=args.text_b, label=args.label_column,
                       num_labels=args.num_labels, label_names=args.label_names, header=not args.no_header,
                       train_file=args.train_file or "train.tsv", dev_file=args.dev_file or "dev.tsv",
                       main_metric=args.metric)


def _space(args):
    """The search the flags describe; without --lr (and --paper_grid), the grid for the model's size."""
    from electra_tf.finetune.search import PAPER_SPACE, space_for_model
    from electra_tf.pretrained import find_config

    if args.paper_grid:
        space = PAPER_SPACE
    else:
        space, which = space_for_model(find_config(args.pretrained))
        if not args.lr:
            log.info("No --lr given: searching %s, %s (learning rates %s, %s epochs)", which,
                     "set by the pretrained model's size", ", ".join(f"{x:g}" for x in space.learning_rates),
                     "/".join(f"{x:g}" for x in (args.epochs or space.epochs)))
    chosen = {"learning_rates": args.lr, "epochs": args.epochs, "batch_sizes": args.batch_size,
              "weight_decays": args.weight_decay, "warmup_proportions": args.warmup_proportion,
              "layer_decays": args.layer_decay}
    return dataclasses.replace(space, **{k: tuple(v) for k, v in chosen.items() if v})


def _shrink(args):
    """``--shrink``: on, off, or (auto) by the pretrained model's width."""
    if args.shrink != "auto":
        return args.shrink == "on"
    from electra_tf.finetune.search import shrink_for_model
    from electra_tf.pretrained import find_config

    cfg = find_config(args.pretrained)
    on = shrink_for_model(cfg)
    log.info("--shrink auto: %s (hidden %d; on below 256)", "on" if on else "off", cfg.model.hidden_size)
    return on


def check_output_reuse(output_dir, pretrained):
    """Raises ValueError unless ``output_dir`` is new, or holds results of the same ``--pretrained`` (resumed).

    A search from another pretrained model would overwrite ``results.json`` and
    ``best/`` of the one there.
    """
    from electra_tf.paths import check_output_dir

    check_output_dir(output_dir, "--output_dir")
    path = os.path.join(output_dir, "results.json")
    if not os.path.isfile(path):
        return
    try:
        with open(path, "r", encoding="utf-8") as f:
            previous = json.load(f).get("pretrained")
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(f"--output_dir {output_dir} holds a results.json that cannot be read ({exc}); use another "
                         f"--output_dir") from None
    if previous and os.path.abspath(previous) != os.path.abspath(pretrained):
        raise ValueError(f"--output_dir {output_dir} holds the results of fine-tuning --pretrained {previous}; "
                         f"refusing to overwrite them with a search from {os.path.abspath(pretrained)}: use another "
                         f"--output_dir (the same --pretrained resumes the search there)")


def run_finetuning(args, strategy):
    """Runs ``scripts/finetune.py``; returns ``(exit_code, lines to show the user)``."""
    from electra_tf.data.vocab import VocabError
    from electra_tf.finetune.qa import QA_NAMES
    from electra_tf.finetune.report import markdown_table
    from electra_tf.finetune.runner import FinetuneConfig, FinetuneDiverged
    from electra_tf.finetune.search import run_search
    from electra_tf.training.strategy import is_chief

    try:
        task = task_from_args(args)
        check_output_reuse(args.output_dir, args.pretrained)
        base = FinetuneConfig(dropout=args.dropout, probe_epochs=args.probe_epochs, shrink=_shrink(args),
                              clip_norm=args.clip_norm,
                              max_steps=args.max_steps,
                              eval_every=args.eval_every, log_every=args.log_every)
        max_seq_length = args.max_seq_length or (384 if args.task in QA_NAMES else 256)
        results = run_search(task, args.pretrained, args.output_dir, data_dir=args.data_dir, space=_space(args),
                             seeds=args.seeds, base=base, max_seq_length=max_seq_length, vocab=args.vocab,
                             tfds_data_dir=args.tfds_data_dir, strategy=strategy, progress=not args.no_progress,
                             keep_all_checkpoints=args.keep_all_checkpoints, pad_to_max=args.strategy == "tpu")
        exported = None
        if args.task in QA_NAMES and not args.no_export and is_chief(strategy):
            from electra_tf.finetune.qa_export import export_qa

            exported = export_qa(args.output_dir)
    except (FileNotFoundError, ValueError, VocabError) as exc:
        return EXIT_BAD_INPUT, [f"error: {exc}"]
    except FinetuneDiverged as exc:
        return EXIT_DIVERGED, [f"error: {exc}"]
    out = args.output_dir
    main = results["main_metric"]
    lines = ["", markdown_table(results).rstrip(), "",
             f"{task.name}: dev {main} {results[main]:.4f} (median of seeds {results['seeds']}) with "
             + ", ".join(f"{k} {results['best_config'][k]:g}" for k in ("learning_rate", "epochs", "batch_size",
                                                                       "weight_decay", "warmup_proportion",
                                                                       "layer_decay")),
             f"results:      {os.path.join(out, 'results.json')}, {os.path.join(out, 'results.md')}",
             f"checkpoint:   {results['best_run']['checkpoint'] if results.get('best_run') else '-'}",
             *([f"predictions:  {os.path.join(out, 'predictions.json')} (the best run's, official SQuAD format)"]
               if os.path.isfile(os.path.join(out, "predictions.json")) else []),
             *([f"export:       {exported} (signature answer_text: question, context -> answer, score)"]
               if exported else []),
             f"tensorboard:  tensorboard --logdir {results['tensorboard']}",
             f"time:         {results['elapsed_sec']:.0f} s"]
    return EXIT_OK, lines
