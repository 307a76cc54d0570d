"""What the command-line scripts call: argument handling around the library, exit codes, summaries."""

import logging
import os

from electra_tf.exit_codes import BAD_INPUT as EXIT_BAD_INPUT
from electra_tf.exit_codes import DIVERGED as EXIT_DIVERGED
from electra_tf.exit_codes import IO_ERROR as EXIT_IO_ERROR
from electra_tf.exit_codes import OK as EXIT_OK
from electra_tf.exit_codes import PREEMPTED as PREEMPTED_EXIT_CODE

log = logging.getLogger("electra_tf")


def parse_profile_steps(text):
    if not text:
        return None
    try:
        first, last = (int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--profile_steps must look like A,B (two step numbers), got {text!r}") from None
    if not 0 <= first < last:
        raise ValueError(f"--profile_steps needs 0 <= A < B, got {text!r}")
    return first, last


def run_pretraining(args):
    """Runs ``scripts/pretrain.py``; returns ``(exit_code, lines to show the user)``."""
    from electra_tf.config import ConfigError, load_config
    from electra_tf.paths import check_output_dir

    # Inputs first, then the strategy (splitting the CPU into logical devices must precede other TensorFlow use).
    try:
        cfg = load_config(args.config, args.set)
        profile = parse_profile_steps(args.profile_steps)
        check_output_dir(args.model_dir, "--model_dir")
        from electra_tf.training.strategy import make_strategy

        strategy = make_strategy(args.strategy, args.cpu_replicas,
                                 worker_timeout=getattr(args, "worker_timeout", 600.0))
    except (ConfigError, ValueError) as exc:
        return EXIT_BAD_INPUT, [f"error: {exc}"]
    from electra_tf.data.manifest import DataError
    from electra_tf.training.checkpoints import CheckpointSaveError
    from electra_tf.training.trainer import DivergenceError, Preempted, Trainer, config_summary

    exporter = None
    if not args.no_export:
        from electra_tf.export import export_models as exporter
    try:
        trainer = Trainer(cfg, args.model_dir, strategy, overwrite=args.overwrite, init_from=args.init_from,
                          profile_steps=profile, export=exporter,
                          progress=not args.no_progress)
        log.info("%s", config_summary(trainer.cfg))
        log.info("data: %s (%s train examples)", trainer.data_dir,
                 trainer.manifest.get("examples", {}).get("train"))
        last = trainer.train()
    except (ConfigError, DataError, FileNotFoundError, ValueError) as exc:
        return EXIT_BAD_INPUT, [f"error: {exc}"]
    except DivergenceError as exc:
        return EXIT_DIVERGED, [f"error: {exc}"]
    except CheckpointSaveError as exc:
        return EXIT_IO_ERROR, [f"error: {exc}"]
    except Preempted as exc:
        return PREEMPTED_EXIT_CODE, [f"{exc} in {args.model_dir}/checkpoints; run the same command to continue "
                                     f"(exit code {PREEMPTED_EXIT_CODE})"]
    # The held-out evaluation reduces across workers: every worker runs it, only the chief reports it.
    result = trainer.evaluate()
    if not trainer.chief:
        from electra_tf.training.strategy import worker_info

        workers, index = worker_info(trainer.strategy)
        return EXIT_OK, ["", f"Done (worker {index} of {workers}; the chief, worker 0, writes the checkpoints, "
                             f"metrics and exports and prints the results)."]
    lines = ["", "Done."]
    if last:
        lines.append("last step {step}: gen_loss {gen_loss:.3f} gen_acc {gen_accuracy:.3f} disc_loss {disc_loss:.4f} "
                     "disc_f1 {disc_f1:.3f}".format(**last))
    if result:
        lines.append("held-out RTD: accuracy {disc_accuracy:.3f} precision {disc_precision:.3f} recall "
                     "{disc_recall:.3f} F1 {disc_f1:.3f} AUC {disc_auc:.3f}".format(**result))
    md = args.model_dir
    lines += [
        f"data dir:     {os.path.abspath(trainer.data_dir)}",
        f"config:       {os.path.join(md, 'config.yaml')}",
        f"checkpoints:  {os.path.join(md, 'checkpoints')}",
        f"metrics:      {os.path.join(md, 'metrics.jsonl')}",
        f"tensorboard:  tensorboard --logdir {os.path.join(md, 'tensorboard')}",
    ]
    if not args.no_export:
        lines.append(f"exports:      {os.path.join(md, 'export', 'discriminator')}, "
                     f"{os.path.join(md, 'export', 'generator')}")
    return EXIT_OK, lines
