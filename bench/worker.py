"""One benchmark worker process: builds one system (or probe) and times it on command.

Run by :mod:`bench.runner` as ``python -m bench.worker --system NAME ...``.
Each system lives in its own process so that its peak RSS is its own; the
runner interleaves the workers' timed steps so that a change of machine load
affects every system alike. The protocol is one JSON object per line: the
worker prints ``{"ready": ...}`` after building and warming up, then answers
each command read from stdin:

- ``{"cmd": "run", "steps": n}`` -> ``{"times": [wall seconds per step, ...], "cpu": [CPU seconds, ...]}``
- ``{"cmd": "probe"}`` -> matmul GFLOP/s and input-pipeline sequences/s (the ``probes`` worker)
- ``{"cmd": "profile", "logdir": DIR, "steps": n}`` -> ``{"xplane": path, "op_seconds": {...}}``
- ``{"cmd": "quit"}`` -> ``{"peak_rss_mb", "rss_mb", "tensor_peak_mb", "tensor_current_mb", "traces"}``, exit.

Anything else the libraries print goes to stderr, never into the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import traceback

from electra_tf import exit_codes  # no TensorFlow: the import baseline stays TensorFlow's own


def _peak_rss_mb() -> float:
    # VmHWM is this process's own peak; ru_maxrss after exec keeps the parent's if that was larger (Linux).
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024.0
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2.0 ** 20


def _tensor_memory_mb() -> dict:
    """Peak and current bytes of TensorFlow's CPU tensors (its allocator's own count), in MiB."""
    import tensorflow as tf

    try:
        info = tf.config.experimental.get_memory_info("CPU:0")
    except (ValueError, RuntimeError):  # an allocator without statistics
        return {}
    return {"tensor_peak_mb": info["peak"] / 2.0 ** 20, "tensor_current_mb": info["current"] / 2.0 ** 20}


def _protocol_stream():
    """A private copy of stdout for the protocol; fd 1 then points at stderr."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def _sync(result) -> None:
    import tensorflow as tf

    for t in tf.nest.flatten(result):
        if hasattr(t, "numpy"):
            t.numpy()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--system", required=True, help="a name in bench.systems.SYSTEMS, or 'probes'")
    p.add_argument("--preset", default="small")
    p.add_argument("--data", required=True, help="the data dir")
    p.add_argument("--set", nargs="*", default=[], help="config overrides")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first (traced) one")
    p.add_argument("--quick", action="store_true", help="small probes (a test run)")
    args = p.parse_args(argv)
    out = _protocol_stream()

    def say(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        start = time.perf_counter()
        import tensorflow as tf  # noqa: F401  (its import is part of the baseline RSS)

        from bench import systems

        ready = {"import_rss_mb": _rss_mb(), "import_s": time.perf_counter() - start}
        step = None
        if args.system in systems.SYSTEMS:
            spec = systems.SYSTEMS[args.system]
            start = time.perf_counter()
            step, tokens = systems.build_system(spec, args.preset, args.set, args.data)
            ready.update(build_s=time.perf_counter() - start, built_rss_mb=_rss_mb(), tokens_per_step=tokens)
            start = time.perf_counter()
            _sync(step())
            ready.update(first_step_s=time.perf_counter() - start, first_step_rss_mb=_rss_mb())
            for _ in range(args.warmup):
                _sync(step())
            ready["warm_rss_mb"] = _rss_mb()
        elif args.system != "probes":
            raise ValueError(f"unknown system {args.system!r}; "
                             f"expected 'probes' or one of {', '.join(systems.SYSTEMS)}")
        say({"ready": ready})
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["cmd"] == "run":
                times, cpu = [], []
                for _ in range(int(cmd["steps"])):
                    t0, c0 = time.perf_counter(), time.process_time()
                    _sync(step())
                    times.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                say({"times": times, "cpu": cpu})
            elif cmd["cmd"] == "probe":
                figures = systems.measure_matmul(**(systems.QUICK_MATMUL if args.quick else {}))
                figures.update(systems.measure_pipeline(systems.config_for(args.preset, args.set, args.data),
                                                        batches=10 if args.quick else 60))
                say(figures)
            elif cmd["cmd"] == "profile":
                from bench.profile import op_time_table, profile_steps

                xplane = profile_steps(step, cmd["logdir"], int(cmd.get("steps", 2)))
                by_type, total = op_time_table(xplane)
                say({"xplane": xplane, "op_seconds": by_type, "op_total_s": total})
            elif cmd["cmd"] == "quit":
                end = {"peak_rss_mb": _peak_rss_mb(), "rss_mb": _rss_mb(), **_tensor_memory_mb()}
                if hasattr(step, "experimental_get_tracing_count"):
                    end["traces"] = step.experimental_get_tracing_count()  # 1: never retraced
                say(end)
                return exit_codes.OK
            else:
                raise ValueError(f"unknown command {cmd!r}")
        return exit_codes.OK
    except Exception as exc:  # reported to the runner, which names the system and shows the log
        traceback.print_exc()
        say({"error": f"{type(exc).__name__}: {exc}"})
        return exit_codes.TRIAL_FAILED


if __name__ == "__main__":
    sys.exit(main())
