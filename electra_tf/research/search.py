"""The two searches of the paper's tuning roadmap (appendix C), as pure functions of an objective.

- :func:`grow_until_worse`: grow a value geometrically while the objective
  improves and the run is stable (the discriminator learning rate).
- :func:`golden_section_max`: the maximum of a unimodal objective over an
  interval (the generator learning rate, searched over log10(lr)).

Both only call the objective; what a call costs (a pretraining run) and
whether it is cached (the ledger) is the caller's business.

Example:

>>> result = golden_section_max(lambda x: -(x - 1.0) ** 2, 0.0, 3.0, max_evals=12)
>>> round(result.best_x, 2)
1.0
"""

import dataclasses
import logging
import math
from typing import Callable, List, Optional, Tuple

log = logging.getLogger(__name__)

INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618...: the golden ratio's inverse


@dataclasses.dataclass
class SearchResult:
    """What a search found.

    Attributes:
        best_x: the argument of the best evaluation (None if nothing was stable).
        best_y: its objective value (-inf if nothing was stable).
        history: every ``(x, y)`` evaluated, in order.
        reason: why the search stopped.
    """

    best_x: Optional[float]
    best_y: float
    history: List[Tuple[float, float]]
    reason: str


def golden_section_max(f: Callable[[float], float], lo: float, hi: float, max_evals: int) -> SearchResult:
    """Maximises a unimodal ``f`` on ``[lo, hi]`` with at most ``max_evals`` calls.

    Each step keeps the golden-ratio bracket that must hold the maximum of a
    unimodal function and reuses one interior point, so after the first two
    calls every call shrinks the bracket by 0.618. A value of -inf (a
    diverged run) is simply worse than any other, which keeps the search
    away from it.

    Args:
        f: the objective (higher is better).
        lo, hi: the interval, ``lo < hi``.
        max_evals: the budget, >= 1 (1: the midpoint only).

    Returns:
        A :class:`SearchResult` with the best point evaluated.

    Raises:
        ValueError: ``lo >= hi`` or ``max_evals < 1``.
    """
    if not lo < hi:
        raise ValueError(f"golden-section search needs lo < hi, got lo={lo!r}, hi={hi!r}")
    if not isinstance(max_evals, int) or max_evals < 1:
        raise ValueError(f"max_evals must be an integer >= 1, got {max_evals!r}")
    history: List[Tuple[float, float]] = []

    def call(x):
        y = float(f(x))
        history.append((x, y))
        log.info("golden-section: f(%.4g) = %.4g", x, y)
        return y

    if max_evals == 1:
        call((lo + hi) / 2.0)
    else:
        a, b = lo, hi
        c, d = b - INV_PHI * (b - a), a + INV_PHI * (b - a)
        fc, fd = call(c), call(d)
        while len(history) < max_evals:
            if fc >= fd:  # the maximum lies in [a, d]
                b, d, fd = d, c, fc
                c = b - INV_PHI * (b - a)
                fc = call(c)
            else:  # the maximum lies in [c, b]
                a, c, fc = c, d, fd
                d = a + INV_PHI * (b - a)
                fd = call(d)
    best_x, best_y = max(history, key=lambda p: p[1])
    return SearchResult(best_x if math.isfinite(best_y) else None, best_y, history, "budget")


def grow_until_worse(f: Callable[[float], Optional[float]], start: float, factor: float, max_evals: int,
                     min_gain: float = 0.0) -> SearchResult:
    """Evaluates ``start, start*factor, ...`` until a run is unstable or stops improving.

    Args:
        f: the objective; returns None (or a non-finite value) for an unstable run.
        start: the first value, > 0.
        factor: the growth factor, > 1.
        max_evals: the budget, >= 1.
        min_gain: a value must beat the best so far by more than this to count
            as an improvement.

    Returns:
        A :class:`SearchResult`; ``best_x`` is the largest stable value that
        still improved (None if the first one was unstable); ``reason`` is
        ``"diverged"``, ``"no improvement"`` or ``"budget"``.

    Raises:
        ValueError: bad ``start``, ``factor`` or ``max_evals``.
    """
    if not start > 0:
        raise ValueError(f"start must be > 0, got {start!r}")
    if not factor > 1:
        raise ValueError(f"factor must be > 1, got {factor!r}")
    if not isinstance(max_evals, int) or max_evals < 1:
        raise ValueError(f"max_evals must be an integer >= 1, got {max_evals!r}")
    history: List[Tuple[float, float]] = []
    best_x, best_y, x = None, -math.inf, float(start)
    reason = "budget"
    for _ in range(max_evals):
        y = f(x)
        y = -math.inf if y is None or not math.isfinite(y) else float(y)
        history.append((x, y))
        log.info("geometric growth: f(%.4g) = %.4g", x, y)
        if y == -math.inf:
            reason = "diverged"
            break
        if best_x is not None and y <= best_y + min_gain:
            reason = "no improvement"
            break
        best_x, best_y = x, y
        x *= factor
    return SearchResult(best_x, best_y, history, reason)
