"""The benchmark run: our train steps against Model Garden's, side by side, in one run.

Order of a run (:func:`run_benchmark`):

1. the config of the preset, with the caller's batch size etc.; a synthetic
   data dir of that vocabulary and sequence length (:mod:`bench.synthetic_data`);
2. one worker process per system (:mod:`bench.worker`), at most ``build_jobs``
   building (tracing, first step, warm-up) at a time;
3. the probes, each alone on the machine: TensorFlow matmul GFLOP/s (fp32,
   bf16) and the input pipeline's sequences/s;
4. ``rounds`` rounds in which every system, one at a time, in a rotating
   order, runs ``steps / rounds`` timed steps: a change of background load
   hits every system alike, so the ratios stay fair even when the absolute
   numbers do not;
5. optionally a TensorBoard profile of one system's steps;
6. each worker's peak RSS, then the figures: median tokens/s, analytic FLOPs,
   MFU, ratios and the targets of the performance issue.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

from bench.flops import Dims, forward_flops_per_sequence, train_flops_per_token
from bench.systems import SYSTEMS, config_for

__all__ = ["run_benchmark", "DEFAULT_SYSTEMS", "QUICK_OVERRIDES", "TARGETS"]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SYSTEMS = ["model_garden_fp32", "model_garden_bf16", "ours_joint_fp32", "ours_decoupled_fp32",
                   "ours_decoupled_bf16", "ours_decoupled_fp32_recompute"]
RECOMPUTE = "ours_decoupled_fp32_recompute"
BASELINE = "model_garden_fp32"
BASELINE_BF16 = "model_garden_bf16"
MAIN = "ours_decoupled_fp32"
MAIN_BF16 = "ours_decoupled_bf16"

# The dimensions: seq 128, batch 32, vocab 30522, D 12x256 (emb 128), G 12x64.
BENCH_OVERRIDES = ["train.batch_size=32"]
# --quick: a few-second smoke run of the whole machinery on test-sized models.
QUICK_OVERRIDES = [
    "model.vocab_size=1000", "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
    "model.intermediate_size=64", "model.embedding_size=16", "model.max_position_embeddings=64",
    "model.relative_buckets=8", "model.relative_max_distance=16", "generator.hidden_size=16",
    "generator.num_layers=1", "generator.num_heads=1", "generator.intermediate_size=32",
    "data.max_seq_length=32", "train.batch_size=8",
]

# (key, description, threshold, at_least): a target is met when figures[key] >= threshold
# (at_least) or <= threshold (not at_least).
# The goals of issue 19 (the bf16 one also has a floor of 2.0x).
TARGETS = [
    ("speedup_decoupled_bf16_vs_model_garden", "decoupled bf16 >= 2.5x Model Garden fp32 tokens/s", 2.5, True),
    ("speedup_decoupled_bf16_vs_model_garden_bf16", "decoupled bf16 >= 1.5x Model Garden bf16 tokens/s", 1.5, True),
    ("speedup_decoupled_fp32_vs_model_garden", "decoupled fp32 >= 1.7x Model Garden tokens/s", 1.7, True),
    ("mfu_decoupled_fp32", "fp32 MFU >= 60% of the measured fp32 matmul peak", 0.60, True),
    ("decoupled_vs_joint_fp32", "decoupled within 3% of joint (ratio >= 0.97)", 0.97, True),
    ("max_batch_ratio_vs_model_garden", "max batch within the memory budget >= 2x Model Garden's", 2.0, True),
    ("max_batch_ratio_recompute_vs_model_garden", "the same with train.recompute >= 3x", 3.0, True),
]


def target_met(value, threshold, at_least):
    if value is None:
        return False
    return value >= threshold if at_least else value <= threshold


class Worker:
    """A ``bench.worker`` subprocess and the JSON lines it answers with."""

    def __init__(self, system: str, preset: str, data_dir: str, overrides: List[str], warmup: int, log_dir: str,
                 quick: bool = False, log_name: Optional[str] = None):
        self.system = system
        self.log_path = os.path.join(log_dir, f"{log_name or system}.log")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        cmd = [sys.executable, "-m", "bench.worker", "--system", system, "--preset", preset, "--data", data_dir,
               "--warmup", str(warmup), *(["--quick"] if quick else []), "--set", *overrides]
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True, bufsize=1)
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def recv(self, timeout: float) -> Dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{self.system}: no answer within {timeout:.0f} s; log: {self.log_path}") from None
        if line is None:
            raise RuntimeError(f"{self.system}: the worker exited (code {self.proc.wait()}); "
                               f"log tail:\n{self.log_tail()}")
        message = json.loads(line)
        if "error" in message:
            raise RuntimeError(f"{self.system}: {message['error']}; log tail:\n{self.log_tail()}")
        return message

    def ask(self, timeout: float, **cmd) -> Dict[str, Any]:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self.recv(timeout)

    def log_tail(self, lines: int = 25) -> str:
        self._log.flush()
        with open(self.log_path, "r", encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _start_all(names, make, jobs: int, timeout: float, log=print) -> Dict[str, Worker]:
    """Starts workers with at most ``jobs`` building at once; returns them once all are ready."""
    pending, building, ready = list(names), {}, {}
    try:
        while pending or building:
            while pending and len(building) < jobs:
                name = pending.pop(0)
                building[name] = (make(name), time.perf_counter())
            for name, (worker, started) in list(building.items()):
                try:
                    message = worker._lines.get(timeout=0.2)
                except queue.Empty:
                    if time.perf_counter() - started > timeout:
                        raise RuntimeError(f"{name}: not ready after {timeout:.0f} s; log: {worker.log_path}")
                    continue
                worker._lines.put(message)  # let recv() parse it (and raise on an error)
                worker.ready = worker.recv(1)["ready"]
                ready[name] = worker
                del building[name]
                if "first_step_s" in worker.ready:
                    log(f"  {name}: ready in {time.perf_counter() - started:.0f} s "
                        f"(first step {worker.ready['first_step_s']:.1f} s)")
    except BaseException:
        for worker in [*ready.values(), *(w for w, _ in building.values())]:
            worker.close()
        raise
    return ready


def _median_rate(times: List[float], tokens: int) -> float:
    return tokens / statistics.median(times)


def _spread(times: List[float]) -> float:
    """Relative half-width of the central 50% of step times (a noise indicator)."""
    if len(times) < 4:
        return 0.0
    q = statistics.quantiles(times, n=4)
    return (q[2] - q[0]) / 2 / statistics.median(times)


def machine_info() -> Dict[str, Any]:
    """CPU, cores, memory and the CPU features that decide fp32/bf16 matmul speed.

    ``hardware_bf16`` is :func:`electra_tf.training.hardware.hardware_bf16`:
    True, False (bf16 emulated) or None (not an x86 CPU, or no flags to read).
    """
    import psutil

    from electra_tf.training.hardware import hardware_bf16

    info = {"cpu_count": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2 ** 30, 1),
            "platform": platform.platform(), "python": platform.python_version()}
    flags = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and "cpu" not in info:
                    info["cpu"] = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    info["cpu_features"] = sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma")))
    info["hardware_bf16"] = hardware_bf16()
    return info


def run_benchmark(preset: str = "small", steps: int = 20, warmup: int = 2, rounds: int = 5, quick: bool = False,
                  systems: Optional[List[str]] = None, overrides: Optional[List[str]] = None,
                  work_dir: Optional[str] = None, build_jobs: Optional[int] = None, profile_dir: Optional[str] = None,
                  profile_system: str = MAIN, step_timeout: float = 600.0, memory_budget_gb: float = 8.0,
                  memory_search: bool = True, memory_search_s: Optional[float] = None, max_batch: int = 1024,
                  batch_granularity: int = 16, run_time_limit_s: float = 570.0, log=print) -> Dict[str, Any]:
    """Runs the benchmark and returns its figures (the JSON written by ``scripts/benchmark.py``).

    The memory search (:mod:`bench.memory_search`) runs last, after every
    timed step, for ``memory_search_s`` seconds (default: what remains of
    ``run_time_limit_s`` since the start, at least 90 s).
    """
    from bench.synthetic_data import synthetic_data_dir

    t_start = time.perf_counter()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    machine = machine_info()
    systems = list(systems or DEFAULT_SYSTEMS)
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    overrides = [*BENCH_OVERRIDES, *(QUICK_OVERRIDES if quick else []), *(overrides or [])]
    work_dir = work_dir or os.path.join(tempfile.gettempdir(), "electra_tf_bench")
    os.makedirs(work_dir, exist_ok=True)
    log_dir = tempfile.mkdtemp(prefix="logs-", dir=work_dir)

    cfg = config_for(preset, overrides, "unused")
    if not isinstance(cfg.model.vocab_size, int):
        raise ValueError("the benchmark needs model.vocab_size as a number (the synthetic data is made with it)")
    dims = Dims.from_config(cfg)
    examples = max(256, 8 * dims.batch_size)
    data_dir = synthetic_data_dir(os.path.join(work_dir, "data"), dims.vocab_size, dims.seq_length, examples)
    overrides = [*overrides, f"model.vocab_size={dims.vocab_size}"]
    log(f"benchmark: preset {preset}{' (quick)' if quick else ''}, {dims.tokens_per_step} tokens/step, "
        f"data {data_dir}, worker logs {log_dir}")

    jobs = build_jobs or max(1, min(len(systems), os.cpu_count() or 1))
    make = lambda name: Worker(name, preset, data_dir, overrides, warmup, log_dir, quick)  # noqa: E731
    workers: Dict[str, Worker] = {}
    try:
        log(f"building {len(systems)} systems ({jobs} at a time)")
        # The probe worker starts with the others but measures only when they are idle.
        workers = _start_all(["probes", *systems], make, jobs + 1, step_timeout)
        figures: Dict[str, Any] = dict(workers["probes"].ask(step_timeout, cmd="probe"))
        figures["peak_rss_mb_probes"] = workers["probes"].ask(60, cmd="quit")["peak_rss_mb"]
        workers.pop("probes").close()

        per_round = max(1, -(-steps // rounds))
        steps_in_round = {name: per_round for name in systems}
        if machine["hardware_bf16"] is False:
            # Without AVX512-BF16/AMX, oneDNN emulates bf16 matmuls (several times slower than fp32):
            # one step per round keeps the run short; the figure is then only a sanity check.
            slow = [name for name in systems if SYSTEMS[name].precision == "bfloat16"]
            steps_in_round.update({name: 1 for name in slow})
            if slow:
                log(f"  this CPU has no bf16 instructions: {', '.join(slow)} time 1 step per round")
        times: Dict[str, List[float]] = {name: [] for name in systems}
        cpu: Dict[str, List[float]] = {name: [] for name in systems}
        for r in range(rounds):
            order = systems[r % len(systems):] + systems[:r % len(systems)]
            for name in order:
                answer = workers[name].ask(step_timeout * per_round, cmd="run", steps=steps_in_round[name])
                times[name] += answer["times"]
                cpu[name] += answer["cpu"]
            log(f"  round {r + 1}/{rounds}: " + ", ".join(
                f"{n} {_median_rate(times[n], workers[n].ready['tokens_per_step']):.0f} tok/s" for n in systems))

        profile = None
        if profile_dir and profile_system in workers:
            profile = workers[profile_system].ask(step_timeout * 4, cmd="profile", logdir=profile_dir, steps=2)
        ends = {name: workers[name].ask(60, cmd="quit") for name in systems}
    finally:
        for worker in workers.values():
            worker.close()

    memory: Dict[str, Any] = {}
    if memory_search:
        budget_s = memory_search_s if memory_search_s is not None else max(
            90.0, run_time_limit_s - (time.perf_counter() - t_start))
        memory = _memory_search(systems, ends, {n: workers[n].ready for n in systems}, memory_budget_gb, budget_s,
                                max_batch, batch_granularity, dims.batch_size,
                                lambda name, batch: Worker(name, preset, data_dir,
                                                           [*overrides, f"train.batch_size={batch}"], 1, log_dir,
                                                           quick, f"{name}-batch{batch}"), step_timeout, log)

    for name in systems:
        ready, tokens = workers[name].ready, workers[name].ready["tokens_per_step"]
        figures[f"{name}_tokens_per_sec"] = _median_rate(times[name], tokens)
        figures[f"{name}_step_spread"] = _spread(times[name])
        # CPU seconds the process used per step (all its threads): robust to other load on the machine,
        # and = cores x wall time when the step keeps every core busy.
        figures[f"{name}_cpu_seconds_per_step"] = statistics.median(cpu[name])
        figures[f"peak_rss_mb_{name}"] = ends[name]["peak_rss_mb"]
        if "tensor_peak_mb" in ends[name]:
            # Live tensors only (activations kept for the backward pass, gradients, temporaries): the part of
            # the RSS that the step's code decides; the rest is the TF runtime, the model and the allocator.
            figures[f"tensor_peak_mb_{name}"] = ends[name]["tensor_peak_mb"]
            figures[f"state_mb_{name}"] = ends[name]["tensor_current_mb"]
        figures[f"first_step_s_{name}"] = ready["first_step_s"]
        if "traces" in ends[name]:
            figures[f"traces_{name}"] = ends[name]["traces"]
        figures[f"build_s_{name}"] = ready["build_s"]
        figures[f"import_rss_mb_{name}"] = ready["import_rss_mb"]
        figures[f"warm_rss_mb_{name}"] = ready["warm_rss_mb"]
    figures.update(memory)
    flops = train_flops_per_token(dims)
    figures.update(_derived(figures, flops, systems))
    figures.update({
        "preset": preset, "quick": quick, "dims": dims.as_dict(), "overrides": overrides,
        "train_flops_per_token": flops, "forward_flops_per_sequence": forward_flops_per_sequence(dims),
        "steps_per_system": max(len(t) for t in times.values()),
        "steps_by_system": {name: len(t) for name, t in times.items()}, "warmup_steps": warmup + 1, "rounds": rounds,
        "machine": machine, "load_average_at_start": load_at_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": time.perf_counter() - t_start,
    })
    if profile is not None:
        figures["profile"] = {"system": profile_system, "xplane": profile["xplane"],
                              # [op type, seconds] pairs, largest first (a list keeps the order in the JSON).
                              "op_seconds": sorted(profile["op_seconds"].items(), key=lambda kv: -kv[1])[:25],
                              "op_total_s": profile["op_total_s"]}
    return figures


def _memory_search(systems, ends, ready, budget_gb, budget_s, cap, granularity, batch, make_worker, timeout, log):
    """``max_batch_within_budget_<system>`` and the search's details, from probes in fresh processes."""
    from bench.memory_search import BatchSearch, probe_parallelism, run_memory_search

    budget_mb = budget_gb * 1024.0
    searches = {}
    # The systems the targets compare first: the search may run out of time before the others.
    first = [n for n in (BASELINE, MAIN, RECOMPUTE) if n in systems]
    for name in first + [n for n in systems if n not in first]:
        slope = None
        if "tensor_peak_mb" in ends[name]:  # live tensors per sequence: where the search starts
            slope = (ends[name]["tensor_peak_mb"] - ends[name]["tensor_current_mb"]) / batch
        searches[name] = BatchSearch(budget_mb, granularity=granularity, cap=cap, slope_hint_mb=slope)
        # The benchmark's own worker is a free first point (its peak over every timed step).
        searches[name].record(batch, ends[name]["peak_rss_mb"], probe=False)
    parallel = probe_parallelism(budget_mb)
    expected = max(r.get("build_s", 0) + r.get("first_step_s", 0) for r in ready.values()) + 15.0
    log(f"memory search: budget {budget_gb:g} GB, {parallel} probe(s) at a time, {budget_s:.0f} s")
    probes = run_memory_search(searches, make_worker, parallel=parallel, time_budget_s=budget_s,
                               probe_timeout_s=timeout, expected_probe_s=expected, log=log)
    out: Dict[str, Any] = {"memory_budget_gb": budget_gb, "memory_search_seconds": budget_s}
    for name, search in searches.items():
        out[f"max_batch_within_budget_{name}"] = search.largest_fit
        # [largest fit, smallest miss]: the answer is exact when they are `granularity` apart (or at the cap).
        out[f"max_batch_bracket_{name}"] = list(search.bracket)
        out[f"max_batch_exact_{name}"] = search.exact
        out[f"max_batch_probes_{name}"] = probes[name]
    out["max_batch_granularity"], out["max_batch_cap"] = granularity, cap
    return out


def _derived(f: Dict[str, Any], flops: float, systems: List[str]) -> Dict[str, Any]:
    """MFU, the ratios the targets are stated in, and which targets are met."""
    out: Dict[str, Any] = {}
    for name in systems:
        peak = f["matmul_bf16_gflops"] if "bf16" in name else f["matmul_fp32_gflops"]
        out[f"mfu_{name.replace('ours_', '')}"] = flops * f[f"{name}_tokens_per_sec"] / (peak * 1e9)
        out[f"achieved_gflops_{name}"] = flops * f[f"{name}_tokens_per_sec"] / 1e9
    base = f.get(f"{BASELINE}_tokens_per_sec")
    if base:
        for name in systems:
            if name != BASELINE:
                out[f"speedup_{name.replace('ours_', '')}_vs_model_garden"] = f[f"{name}_tokens_per_sec"] / base
    if base:
        for name in systems:
            if name != BASELINE:
                out[f"cpu_speedup_{name.replace('ours_', '')}_vs_model_garden"] = (
                    f[f"{BASELINE}_cpu_seconds_per_step"] / f[f"{name}_cpu_seconds_per_step"])
    if "ours_joint_fp32" in systems and MAIN in systems:
        out["decoupled_vs_joint_fp32"] = f[f"{MAIN}_tokens_per_sec"] / f["ours_joint_fp32_tokens_per_sec"]
    if MAIN in systems:
        out["peak_rss_mb"] = f[f"peak_rss_mb_{MAIN}"]
        if BASELINE in systems:
            ratio = f[f"peak_rss_mb_{MAIN}"] / f[f"peak_rss_mb_{BASELINE}"]
            out["rss_ratio_vs_model_garden"] = ratio
            out["rss_headroom_vs_model_garden"] = 0.6 / ratio
    if RECOMPUTE in systems and BASELINE in systems:
        out["rss_ratio_recompute_vs_model_garden"] = f[f"peak_rss_mb_{RECOMPUTE}"] / f[f"peak_rss_mb_{BASELINE}"]
    if MAIN_BF16 in systems and BASELINE_BF16 in systems:  # bf16 against bf16
        out["speedup_decoupled_bf16_vs_model_garden_bf16"] = (
            f[f"{MAIN_BF16}_tokens_per_sec"] / f[f"{BASELINE_BF16}_tokens_per_sec"])
    base_batch = f.get(f"max_batch_within_budget_{BASELINE}")
    if base_batch and f.get(f"max_batch_exact_{BASELINE}"):
        for key, name in (("max_batch_ratio_vs_model_garden", MAIN),
                          ("max_batch_ratio_recompute_vs_model_garden", RECOMPUTE)):
            # Only between two exact answers: a lower bound (the search's time ran out) is no ratio.
            if f.get(f"max_batch_exact_{name}"):
                out[key] = f[f"max_batch_within_budget_{name}"] / base_batch
    both = f | out
    out["targets"] = {key: {"target": text, "value": both[key], "met": target_met(both[key], threshold, at_least)}
                      for key, text, threshold, at_least in TARGETS if key in both}
    return out


def markdown(f: Dict[str, Any]) -> str:
    """The run as a markdown table (what ``scripts/benchmark.py`` prints)."""
    d = f["dims"]
    lines = [
        f"ELECTRA {f['preset']}{' (quick)' if f['quick'] else ''}: D {d['disc_layers']}x{d['disc_hidden']} "
        f"(emb {d['embedding_size']}), G {d['gen_layers']}x{d['gen_hidden']}, seq {d['seq_length']}, "
        f"batch {d['batch_size']}, vocab {d['vocab_size']}, {d['max_predictions']} predictions/seq; "
        f"{f['steps_per_system']} timed steps/system in {f['rounds']} interleaved rounds after "
        f"{f['warmup_steps']} warm-up steps",
        "",
        "| system | tokens/s | vs Model Garden | vs MG bf16 | MFU | CPU s/step (MG / this) | peak RSS (MB) "
        "| peak tensors (MB) | max batch in budget | first step (s) | step spread |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    emulated = f["machine"]["hardware_bf16"] is False
    for name, spec in SYSTEMS.items():
        if f"{name}_tokens_per_sec" not in f:
            continue
        short = name.replace("ours_", "")
        speed = 1.0 if name == BASELINE else f.get(f"speedup_{short}_vs_model_garden")
        cpu_speed = 1.0 if name == BASELINE else f.get(f"cpu_speedup_{short}_vs_model_garden")
        vs_bf16 = None
        if spec.precision == "bfloat16" and f.get(f"{BASELINE_BF16}_tokens_per_sec"):
            vs_bf16 = f[f"{name}_tokens_per_sec"] / f[f"{BASELINE_BF16}_tokens_per_sec"]
        batch = f.get(f"max_batch_within_budget_{name}")
        batch_cell = "" if batch is None else ("" if f.get(f"max_batch_exact_{name}") else ">= ") + f"{batch:,}"
        cells = [
            spec.label + (" (bf16 emulated)" if emulated and spec.precision == "bfloat16" else ""),
            f"{f[f'{name}_tokens_per_sec']:,.0f}",
            "" if speed is None else f"{speed:.2f}x",
            "" if vs_bf16 is None else f"{vs_bf16:.2f}x",
            f"{100 * f[f'mfu_{short}']:.0f}%",
            f"{f[f'{name}_cpu_seconds_per_step']:.2f}" + ("" if cpu_speed is None else f" ({cpu_speed:.2f}x)"),
            f"{f[f'peak_rss_mb_{name}']:,.0f}",
            f"{f[f'tensor_peak_mb_{name}']:,.0f}" if f"tensor_peak_mb_{name}" in f else "",
            batch_cell,
            f"{f[f'first_step_s_{name}']:.0f}",
            f"±{100 * f[f'{name}_step_spread']:.0f}%",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Machine: TF matmul {f['matmul_fp32_gflops']:.0f} GFLOP/s fp32, {f['matmul_bf16_gflops']:.0f} GFLOP/s bf16; "
        f"model {f['train_flops_per_token'] / 1e6:.1f} MFLOP/token (train); input pipeline "
        f"{f['data_pipeline_sequences_per_sec']:,.0f} sequences/s; load average "
        f"{f['load_average_at_start']} at start, {f['load_average_at_end']} at end.",
        f"CPU: {f['machine'].get('cpu', '?')}, {f['machine']['cpu_count']} cores, "
        + {True: "with hardware bf16", False: "WITHOUT hardware bf16: bf16 emulated",
           None: "hardware bf16 unknown"}[f["machine"]["hardware_bf16"]] + " "
        f"({' '.join(f['machine']['cpu_features']) or 'no AVX flags found'}).",
    ]
    if f["targets"]:
        lines += ["", "| target | value | met |", "|---|---:|:---:|"]
    for key, *_ in TARGETS:
        if key in f["targets"]:
            t = f["targets"][key]
            lines.append(f"| {t['target']} | {t['value']:.2f} | {'yes' if t['met'] else 'no'} |")
    if "memory_budget_gb" in f:
        lines += ["", f"Max batch in budget: the largest global batch whose peak RSS stays within "
                  f"{f['memory_budget_gb']:g} GB, probed in fresh processes (first step + 1) in multiples of "
                  f"{f['max_batch_granularity']} up to {f['max_batch_cap']}; '>=' where the search's time ran out "
                  f"before a miss bracketed it (details: max_batch_probes_* in the JSON)."]
    if emulated and any(SYSTEMS[n].precision == "bfloat16" for n in f["steps_by_system"]):
        lines += ["", "bf16 emulated: this CPU has no bf16 instructions (AVX512-BF16/AMX): oneDNN emulates bf16 "
                  "matmuls, so the bf16 "
                  "figures say nothing about a CPU that has them."]
    if "profile" in f:
        total = f["profile"]["op_total_s"]
        lines += ["", f"Profile of {f['profile']['system']} (TensorBoard trace: {f['profile']['xplane']}):", "",
                  "| op type | share of op time |", "|---|---:|"]
        for op, seconds in f["profile"]["op_seconds"][:12]:
            lines.append(f"| {op} | {100 * seconds / total:.1f}% |")
    return "\n".join(lines)
