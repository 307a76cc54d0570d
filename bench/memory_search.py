"""The largest global batch whose peak RSS stays within a memory budget, per system, found by probing.

A *probe* is a fresh ``bench.worker`` process that builds one system at one
batch size, runs its first (traced) step and one more, and reports its peak
RSS (``VmHWM``); the parent watches its RSS and kills it as soon as it passes
the budget (early stop: that batch does not fit). :class:`BatchSearch` decides
which batch to probe next for one system, from what is known:

- the benchmark's own worker for that system already measured the peak RSS at
  the benchmark's batch (a free first point), and TensorFlow's allocator count
  of its peak live tensors gives the bytes per sequence (a slope hint);
- with two fitting points the slope is measured (peak RSS is close to affine
  in the batch: a fixed runtime, model and graph, plus activations per sequence);
- the next probe is the batch the line predicts at the budget, kept strictly
  inside the bracket ``(largest fit, smallest miss)``; without a slope, doubling;
  bisection once a miss is known and only one point fits (the hint overshot), and
  whenever a prediction failed to halve the bracket.

The search stops when the bracket is ``granularity`` wide, at ``cap``, or after
``max_probes``; :func:`run_memory_search` probes several systems at once,
round-robin, and stops launching probes when its time budget would be passed,
so the result may be a lower bound (``bracket[1]`` is None or wider than the
granularity): the JSON says which.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import time
from typing import Callable, Dict, List, Optional, Tuple

__all__ = ["BatchSearch", "search_max_batch", "run_memory_search"]


@dataclasses.dataclass
class BatchSearch:
    """The state of the search for one system; ``next_batch()`` then ``record()`` until ``next_batch()`` is None.

    Attributes:
        budget_mb: the peak RSS allowed (MiB).
        granularity: batches are multiples of it; the search ends when the bracket is this wide.
        cap: the largest batch tried.
        max_probes: probes allowed (known points do not count).
        slope_hint_mb: MiB of peak RSS per sequence, used until two fitting points measure it.
        points: ``(batch, peak RSS MiB or None)``, None = over the budget.
    """

    budget_mb: float
    granularity: int = 16
    cap: int = 1024
    max_probes: int = 6
    slope_hint_mb: Optional[float] = None
    points: List[Tuple[int, Optional[float]]] = dataclasses.field(default_factory=list)
    probes: int = 0
    _bisect_next: bool = False  # the last probe did not halve the bracket: bisect once

    def record(self, batch: int, peak_mb: Optional[float], probe: bool = True) -> None:
        """Records a probe (or a known point, ``probe=False``): ``peak_mb`` None or above the budget = a miss."""
        if peak_mb is not None and peak_mb > self.budget_mb:
            peak_mb = None
        before = self._width()
        self.points.append((int(batch), peak_mb))
        self.probes += int(probe)
        after = self._width()
        self._bisect_next = before is not None and after is not None and after > before / 2

    def _width(self) -> Optional[int]:
        lo, hi = self.bracket
        return None if hi is None or lo == 0 else hi - lo

    @property
    def fits(self) -> List[Tuple[int, float]]:
        return sorted((b, r) for b, r in self.points if r is not None)

    @property
    def largest_fit(self) -> int:
        """The largest batch measured within the budget (0: none)."""
        return max((b for b, _ in self.fits), default=0)

    @property
    def smallest_miss(self) -> Optional[int]:
        return min((b for b, r in self.points if r is None), default=None)

    @property
    def bracket(self) -> Tuple[int, Optional[int]]:
        return self.largest_fit, self.smallest_miss

    @property
    def exact(self) -> bool:
        """Whether the largest fit is known to within the granularity (or is the cap)."""
        lo, hi = self.bracket
        return lo >= self.cap or (hi is not None and hi - lo <= self.granularity)

    def slope(self) -> Optional[float]:
        """MiB per sequence: from the two largest fitting points if they differ enough, else the hint."""
        fits = self.fits
        if len(fits) >= 2 and fits[-1][0] > fits[-2][0]:
            (b1, r1), (b2, r2) = fits[-2], fits[-1]
            if r2 > r1:
                return (r2 - r1) / (b2 - b1)
        return self.slope_hint_mb if self.slope_hint_mb and self.slope_hint_mb > 0 else None

    def next_batch(self) -> Optional[int]:
        """The batch to probe next, or None when the search is over."""
        if self.exact or self.probes >= self.max_probes:
            return None
        lo, hi = self.bracket
        g = self.granularity
        if lo == 0 and hi is None:  # nothing known yet
            return min(g, self.cap)
        if lo == 0:  # even the smallest batch tried misses: halve
            candidate = hi // 2 if hi > g else hi - 1
            return candidate if candidate >= 1 else None
        slope, r_lo = self.slope(), dict(self.fits)[lo]
        if hi is not None and (len(self.fits) < 2 or self._bisect_next):
            slope = None  # the hint already overshot once, or the last prediction did not halve the bracket
        if slope is not None:
            candidate = lo + (self.budget_mb - r_lo) / slope
        elif hi is None:
            candidate = 2 * lo
        else:
            candidate = (lo + hi) / 2
        candidate = int(candidate) // g * g
        upper = min(self.cap, hi - g if hi is not None else self.cap)
        return max(lo + g, min(candidate, upper)) if lo + g <= upper else None


def search_max_batch(probe: Callable[[int], Optional[float]], search: BatchSearch) -> BatchSearch:
    """Runs ``search`` to the end with ``probe(batch) -> peak RSS MiB (None: over the budget)``, one at a time."""
    while (batch := search.next_batch()) is not None:
        search.record(batch, probe(batch))
    return search


class _Probe:
    """One probe process: a ``bench.runner.Worker`` at one batch, watched for its RSS."""

    def __init__(self, make_worker: Callable[[str, int], object], system: str, batch: int, budget_mb: float):
        self.system, self.batch, self.budget_mb = system, batch, budget_mb
        self.started = time.perf_counter()
        self.worker = make_worker(system, batch)
        self.peak_mb: Optional[float] = None
        self.done, self.killed = False, False
        self.error: Optional[str] = None

    def poll(self, timeout: float) -> bool:
        """Advances the probe; True when it has finished (``peak_mb`` None: over the budget or failed)."""
        import psutil

        try:
            rss = psutil.Process(self.worker.proc.pid).memory_info().rss / 2.0 ** 20
        except psutil.Error:
            rss = 0.0
        if rss > self.budget_mb:  # early stop: no need to finish a step that is already over the budget
            self.killed, self.done = True, True
            self.worker.close()
            return True
        try:
            line = self.worker._lines.get(timeout=0.2)
        except queue.Empty:
            if time.perf_counter() - self.started > timeout:
                self.done = True
                self.worker.close()
            return self.done
        message = None if line is None else json.loads(line)
        if message is None or "error" in message:  # e.g. out of memory before the budget was seen
            self.error = "the process exited" if message is None else message["error"][:200]
            self.done = True
            self.worker.close()
        elif "ready" in message:
            self.worker.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.worker.proc.stdin.flush()
        elif "peak_rss_mb" in message:
            self.peak_mb, self.done = message["peak_rss_mb"], True
            self.worker.close()
        return self.done


def run_memory_search(searches: Dict[str, BatchSearch], make_worker: Callable[[str, int], object],
                      parallel: int = 2, time_budget_s: float = 240.0, probe_timeout_s: float = 600.0,
                      expected_probe_s: float = 60.0, log=print) -> Dict[str, List[dict]]:
    """Probes the systems' searches, ``parallel`` processes at a time, round-robin, within ``time_budget_s``.

    A probe is launched only if the time spent plus the longest probe seen so
    far (``expected_probe_s`` before the first) fits in the budget. Returns,
    per system, the probes run: ``{"batch", "peak_rss_mb" (None: a miss),
    "seconds", "stopped_early"}``.
    """
    start = time.perf_counter()
    running: List[_Probe] = []
    log_rows: Dict[str, List[dict]] = {name: [] for name in searches}
    longest = expected_probe_s
    order = list(searches)
    turn = 0
    try:
        while True:
            busy = {p.system for p in running}
            elapsed = time.perf_counter() - start
            while len(running) < parallel and elapsed + longest <= time_budget_s:
                candidates = [order[(turn + i) % len(order)] for i in range(len(order))]
                pick = next(((name, b) for name in candidates if name not in busy
                             and (b := searches[name].next_batch()) is not None), None)
                if pick is None:
                    break
                name, batch = pick
                turn = (order.index(name) + 1) % len(order)
                running.append(_Probe(make_worker, name, batch, searches[name].budget_mb))
                busy.add(name)
            if not running:
                break
            for probe in list(running):
                if probe.poll(probe_timeout_s):
                    running.remove(probe)
                    seconds = time.perf_counter() - probe.started
                    if not probe.killed:
                        longest = max(longest, seconds)
                    searches[probe.system].record(probe.batch, probe.peak_mb)
                    log_rows[probe.system].append({"batch": probe.batch, "peak_rss_mb": probe.peak_mb,
                                                   "seconds": round(seconds, 1), "stopped_early": probe.killed,
                                                   **({"error": probe.error} if probe.error else {})})
                    peak = "over the budget" if probe.peak_mb is None else f"{probe.peak_mb:,.0f} MB"
                    if probe.error:
                        peak = f"failed, counted as a miss ({probe.error})"
                    log(f"  memory probe {probe.system} batch {probe.batch}: {peak} ({seconds:.0f} s)"
                        + (" (stopped early)" if probe.killed else ""))
    finally:
        for probe in running:
            probe.worker.close()
    return log_rows


def probe_parallelism(budget_mb: float) -> int:
    """Probes at once: one per core, as many as the available memory holds at the budget each."""
    import psutil

    by_memory = int(psutil.virtual_memory().available / 2.0 ** 20 // max(budget_mb, 1.0))
    return max(1, min(os.cpu_count() or 1, by_memory))
