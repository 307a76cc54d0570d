#!/usr/bin/env python
"""Data throughput: TFRecord build speed (local builder, Apache Beam) and the masked tf.data pipeline's rate.

Measures, on the built-in corpus (English docstrings; everything is built under
--workdir and cached there), each timing the best of --repeats runs because the
machine may be shared (every timing is listed too, under ``timings``); CPU
seconds (this process's threads plus its finished child processes) are
reported too, as they depend little on other jobs:

* build throughput: MB of text per second of the builders chosen by
  ``--builder`` (tokenize, pack, serialize, write shards, hash, manifest),
  timed inside one process where TensorFlow (and Beam) are already imported:

  - ``local``: ``write_pretraining_data`` with each of ``--workers``;
  - ``beam``: ``write_pretraining_data_beam`` on Beam's DirectRunner in each
    of ``--beam_modes``: ``in_memory`` (the default DirectRunner, steps run in
    this process) and ``multi_processing`` (``--direct_running_mode
    multi_processing --direct_num_workers N``, N = ``--beam_workers``: SDK
    worker processes, each with its own Python). Its output is compared with the
    local builder's (``beam_*_same_files_as_local``: the manifests, hence
    every shard's sha256, equal) when both ran;

* pipeline throughput: sequences per second out of ``pretraining_dataset``
  (interleave, shuffle, parse, mask, batch) at the ``small`` preset's shapes:
  seq 128, batch 32, ``max_predictions`` 19 (``--batches 0`` skips it).

Examples:
    python bench/data_throughput.py --corpus_mb 16 --json bench/data_throughput.json
    python bench/data_throughput.py --builder both --corpus_mb 4 --vocab_size 4096 --workers 1 2 \\
        --beam_modes in_memory multi_processing --batches 0
"""

import argparse
import json
import logging
import os
import resource
import sys
import time

# Run as a script, this file's directory comes first on sys.path, and its profile.py would shadow the standard
# library's profile module, which cProfile imports (and Beam's runners import cProfile).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def cpu_seconds():
    """CPU time of this process (all threads) plus its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


BEAM_MODES = {
    "in_memory": [],
    "multi_processing": ["--direct_running_mode", "multi_processing"],
}


def cpu_model():
    """The CPU's model name, as ``lscpu`` prints it (from /proc/cpuinfo; None where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def timed(build, repeats):
    """Runs ``build()`` ``repeats`` times; returns its last result and the (wall, CPU) seconds of each run."""
    timings = []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), cpu_seconds()
        result = build()
        timings.append((time.perf_counter() - start, cpu_seconds() - cpu))
    return result, timings


def record(results, name, manifest, timings):
    """Adds a build's best timing (by wall clock) and rates, and every timing, under ``build_NAME_*``."""
    seconds, cpu = min(timings)
    text_mb = sum(manifest["text_bytes"].values()) / 1e6
    results[f"build_{name}_seconds"] = seconds
    results[f"build_{name}_mb_per_sec"] = text_mb / seconds
    results[f"build_{name}_cpu_seconds"] = cpu
    results[f"build_{name}_mb_per_cpu_sec"] = text_mb / cpu
    results["timings"][name] = [{"seconds": round(w, 3), "cpu_seconds": round(c, 3),
                                 "mb_per_sec": round(text_mb / w, 3), "mb_per_cpu_sec": round(text_mb / c, 3)}
                                for w, c in timings]
    results["text_mb"] = text_mb
    results["sequences_built"] = sum(manifest["examples"].values())


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="/tmp/electra_tf_data_bench")
    p.add_argument("--corpus_mb", type=float, default=16.0, help="size of the built-in corpus to build from")
    p.add_argument("--vocab_size", type=int, default=30522, help="upper bound (hard_vocab_limit=false)")
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--builder", choices=["local", "beam", "both"], default="local",
                   help="which builders to time: the local process pool, Apache Beam's DirectRunner, or both")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="local builder: worker counts")
    p.add_argument("--beam_modes", nargs="+", choices=list(BEAM_MODES), default=["in_memory"],
                   help="Beam: the DirectRunner's running modes")
    p.add_argument("--beam_workers", type=int, default=2, help="Beam multi_processing: --direct_num_workers")
    p.add_argument("--batches", type=int, default=400, help="pipeline batches timed (after 50 warm-up)")
    p.add_argument("--repeats", type=int, default=3, help="report the best of this many timings (shared machines)")
    p.add_argument("--json", default=None, help="also write the results here")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from electra_tf.data.docstrings import builtin_corpus
    from electra_tf.data.masking import default_max_predictions
    from electra_tf.data.tfrecords import pretraining_dataset, write_pretraining_data
    from electra_tf.data.vocab import load_sentencepiece, train_vocab

    results = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg()[0],
               "builder": args.builder, "timings": {}}
    corpus = builtin_corpus(args.workdir, args.corpus_mb)
    results["corpus_mb"] = os.path.getsize(corpus) / 1e6
    prefix = os.path.join(args.workdir, f"vocab-{args.corpus_mb:g}mb-{args.vocab_size}")
    if not os.path.exists(prefix + ".model"):
        start = time.perf_counter()
        train_vocab([corpus], args.vocab_size, prefix, hard_vocab_limit=False, max_sentences=300_000)
        results["vocab_train_seconds"] = time.perf_counter() - start
    vocab = prefix + ".model"
    results["vocab_size"] = load_sentencepiece(vocab).get_piece_size()

    data_dir, local_manifest = None, None
    if args.builder in ("local", "both"):
        for workers in args.workers:
            out = os.path.join(args.workdir, f"data-w{workers}")
            manifest, timings = timed(lambda: write_pretraining_data([corpus], vocab, out, args.max_seq_length,
                                                                     workers=workers, progress=False), args.repeats)
            record(results, f"{workers}_workers", manifest, timings)
            data_dir, local_manifest = data_dir or out, local_manifest or manifest
    if args.builder in ("beam", "both"):
        import apache_beam  # noqa: F401  (imported before timing, as TensorFlow is)

        from electra_tf.data.beam_writer import write_pretraining_data_beam

        results["apache_beam_version"] = apache_beam.__version__
        for mode in args.beam_modes:
            pipeline_args = ["--runner", "DirectRunner", *BEAM_MODES[mode]]
            if mode == "multi_processing":
                pipeline_args += ["--direct_num_workers", str(args.beam_workers)]
            out = os.path.join(args.workdir, f"data-beam-{mode}")
            manifest, timings = timed(lambda: write_pretraining_data_beam([corpus], vocab, out, args.max_seq_length,
                                                                          pipeline_args=pipeline_args), args.repeats)
            record(results, f"beam_{mode}", manifest, timings)
            results[f"beam_{mode}_pipeline_args"] = pipeline_args
            if local_manifest is not None:
                results[f"beam_{mode}_same_files_as_local"] = manifest == local_manifest
            data_dir = data_dir or out

    if args.batches <= 0:
        return finish(results, args)
    max_predictions = default_max_predictions(0.15, args.max_seq_length)
    ds = pretraining_dataset(data_dir, batch_size=args.batch_size, max_seq_length=args.max_seq_length,
                             max_predictions=max_predictions, vocab_size=results["vocab_size"])
    iterator = iter(ds)
    for _ in range(50):
        next(iterator)
    timings = []
    for _ in range(args.repeats):
        start, cpu = time.perf_counter(), cpu_seconds()
        for _ in range(args.batches):
            batch = next(iterator)
        tf.nest.map_structure(lambda t: t.numpy(), batch)
        timings.append((time.perf_counter() - start, cpu_seconds() - cpu))
    seconds, cpu = min(timings)
    results["pipeline_sequences_per_sec"] = args.batches * args.batch_size / seconds
    results["pipeline_sequences_per_cpu_sec"] = args.batches * args.batch_size / cpu
    results["pipeline_shapes"] = {"seq": args.max_seq_length, "batch": args.batch_size,
                                  "max_predictions": max_predictions}
    return finish(results, args)


def finish(results, args):
    results["load_average_at_end"] = os.getloadavg()[0]
    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
