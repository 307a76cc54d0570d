#!/usr/bin/env python
"""Does Admin initialisation (model.init: admin) keep a deep post-LN discriminator trainable at a high rate?

Trains the same deep, narrow discriminator (and a small generator) with ``model.init: normal`` and
``admin`` at each discriminator learning rate of ``--disc_lrs``, from the same seed on the built-in
data. The generator is held near its random start (``--generator_lr`` 1e-7), so its replacements are
easy to detect: a discriminator that can be trained at that rate learns fast, and one that cannot
stays at a constant predictor (at this scale a learning generator leaves the discriminator little to
learn in a few hundred steps, whatever its initialisation). Reported per run: the discriminator's
training loss against a constant predictor's (``gain`` = label entropy − loss, in nats per token:
0 means it learned nothing), whether any step was non-finite, and the held-out RTD AUC at the end.
``--profile`` also prints the ω that profiling gives the ``base`` and ``large`` presets (random
weights, no training).

Example (the figures in docs/research.md, "Admin initialisation"):
    python bench/admin_stability.py --layers 12 --hidden 64 --initializer_range 0.07 \
        --disc_lrs 1e-3 3e-3 1e-2 3e-2 --steps 200
"""

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=12, help="discriminator layers")
    p.add_argument("--hidden", type=int, default=128, help="discriminator width (heads of 64)")
    p.add_argument("--initializer_range", type=float, default=0.02)
    p.add_argument("--disc_lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2])
    p.add_argument("--generator_lr", type=float, default=1e-7,
                   help="the generator's rate: near 0 keeps it at its random start, so its samples are easy to "
                        "detect and what is measured is whether the discriminator can be trained at all")
    p.add_argument("--inits", nargs="+", default=["normal", "admin"])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--warmup", type=int, default=40)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--window", type=int, default=50, help="steps per reported loss window")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--profile", action="store_true", help="also print the base and large presets' profiled ω")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p.parse_args(argv)


def _entropy(p):
    return 0.0 if p <= 0.0 or p >= 1.0 else -(p * math.log(p) + (1 - p) * math.log(1 - p))


def profile_presets(log):
    import keras

    from electra_tf.config import load_config
    from electra_tf.models import build_models

    out = {}
    for preset in ("base", "large"):
        cfg = load_config(preset, ["model.vocab_size=30522"])  # the table's size does not change the ω
        keras.utils.set_random_seed(cfg.train.seed)
        start = time.perf_counter()
        generator, discriminator = build_models(cfg)
        omegas = [round(float(w.numpy()), 3) for w in discriminator.encoder.non_trainable_weights]
        out[preset] = {"discriminator_omega": omegas, "build_s": round(time.perf_counter() - start, 1)}
        log(f"{preset}: discriminator ω (attention, ffn per block) {omegas}")
        del generator, discriminator
    return out


def run_trial(data_cfg, data_dir, args, init, lr):
    from electra_tf.config import load_config
    from electra_tf.training.builder import build_pretraining

    cfg = load_config("tiny", [
        f"model.num_layers={args.layers}", f"model.hidden_size={args.hidden}",
        f"model.num_heads={max(1, args.hidden // 64)}", f"model.initializer_range={args.initializer_range}",
        f"model.init={init}", f"model.vocab_size={data_cfg.model.vocab_size}", f"data.path={data_dir}",
        f"train.discriminator_lr={lr}", f"train.generator_lr={args.generator_lr}",
        f"train.warmup_steps={args.warmup}", f"train.max_steps={args.steps}",
        f"train.batch_size={args.batch}", f"train.seed={args.seed}", f"train.max_skipped_steps={args.steps}",
    ])
    run = build_pretraining(cfg, data_dir)
    windows, non_finite, start = [], 0, time.perf_counter()
    for step in range(1, args.steps + 1):
        _, finite = run.train_step()
        non_finite += not bool(finite)
        if step % args.window == 0:
            sums, steps = run.steps.read_window()
            loss = sums["disc_loss_sum"] / max(sums["disc_count"], 1.0)
            replaced = sums["actual_pos"] / max(sums["disc_count"], 1.0)
            windows.append({"step": step, "disc_loss": round(loss, 4),
                            "gain": round(_entropy(replaced) - loss, 4), "steps_applied": steps})
    held_out = run.evaluate(steps=4)
    return {"init": init, "disc_lr": lr, "non_finite_steps": non_finite, "windows": windows,
            "held_out_auc": round(float(held_out["disc_auc"]), 4), "seconds": round(time.perf_counter() - start, 1)}


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from bench.data_throughput import cpu_model
    from electra_tf.config import load_config
    from electra_tf.training.data import resolve_data

    def log(msg):
        print(msg, flush=True)

    with open("/proc/cpuinfo", encoding="utf-8") as f:
        bf16 = "avx512_bf16" in f.read()
    results = {"cpu": cpu_model(), "avx512_bf16": bf16, "args": vars(args), "trials": []}
    if args.profile:
        results["profile"] = profile_presets(log)
    data_cfg, data_dir, _ = resolve_data(load_config("tiny"))
    for lr in args.disc_lrs:
        for init in args.inits:
            trial = run_trial(data_cfg, data_dir, args, init, lr)
            results["trials"].append(trial)
            last = trial["windows"][-1] if trial["windows"] else {}
            log(f"{args.layers}x{args.hidden} D lr {lr:g} {init:6s}: gain by window "
                f"{[w['gain'] for w in trial['windows']]}, non-finite steps {trial['non_finite_steps']}, "
                f"held-out AUC {trial['held_out_auc']}, final loss {last.get('disc_loss')} ({trial['seconds']} s)")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
