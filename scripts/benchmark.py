#!/usr/bin/env python
"""Benchmark our ELECTRA train steps against Model Garden's, in one run, on the same dimensions.

Prints a markdown table and writes the figures as JSON (--json). Each system
runs in its own process (so peak RSS is per system) and the timed steps of
all systems are interleaved (so a change of machine load affects all alike).
See docs/performance.md for what the figures mean and a reference run.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from electra_tf import exit_codes  # noqa: E402 - after the path, like bench/

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    from bench.runner import DEFAULT_SYSTEMS
    from bench.systems import SYSTEMS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="small", help="config preset (or YAML path) giving the dimensions")
    p.add_argument("--json", default=None, help="write the figures here")
    p.add_argument("--steps", type=int, default=20, help="timed steps per system (after warm-up)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per system after the first (traced) one")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds the timed steps are split into")
    p.add_argument("--quick", action="store_true", help="test-sized models, a few steps: checks the machinery")
    p.add_argument("--systems", nargs="+", default=DEFAULT_SYSTEMS, choices=list(SYSTEMS),
                   help="systems to run (default: %(default)s)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="config overrides applied to every system (e.g. train.batch_size=64)")
    p.add_argument("--work_dir", default=None, help="synthetic data and worker logs (default: a temp dir)")
    p.add_argument("--build_jobs", type=int, default=None, help="systems built at once (default: CPU count)")
    p.add_argument("--profile", default=None, metavar="LOGDIR",
                   help="also trace 2 steps of --profile_system with the TensorBoard profiler into LOGDIR")
    p.add_argument("--profile_system", default="ours_decoupled_fp32", choices=list(SYSTEMS))
    p.add_argument("--memory_budget_gb", type=float, default=8.0,
                   help="per system, find the largest global batch whose peak RSS stays within this (GiB)")
    p.add_argument("--skip_memory_search", action="store_true", help="no max-batch search (it runs last)")
    p.add_argument("--memory_search_minutes", type=float, default=None,
                   help="time for the max-batch search (default: what remains of 9.5 minutes since the start, "
                        "at least 1.5)")
    p.add_argument("--max_batch", type=int, default=1024, help="the largest batch the search tries")
    p.add_argument("--batch_granularity", type=int, default=16, help="the search's batches are multiples of this")
    args = p.parse_args(argv)
    if args.quick and "--steps" not in (argv or sys.argv):
        args.steps, args.rounds, args.warmup = 4, 2, 1
    return args


def main(argv=None):
    args = parse_args(argv)
    from electra_tf.paths import check_output_file

    try:
        if args.json:  # before the benchmark runs, not after
            check_output_file(args.json, "--json")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    from bench.runner import markdown, run_benchmark

    figures = run_benchmark(
        preset=args.preset, steps=args.steps, warmup=args.warmup, rounds=args.rounds, quick=args.quick,
        systems=args.systems, overrides=args.set, work_dir=args.work_dir, build_jobs=args.build_jobs,
        profile_dir=args.profile, profile_system=args.profile_system, memory_budget_gb=args.memory_budget_gb,
        memory_search=not args.skip_memory_search,
        memory_search_s=None if args.memory_search_minutes is None else 60 * args.memory_search_minutes,
        max_batch=args.max_batch, batch_granularity=args.batch_granularity,
        log=lambda *a: print(*a, file=sys.stderr, flush=True))
    print(markdown(figures))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=2, sort_keys=True)
            f.write("\n")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
