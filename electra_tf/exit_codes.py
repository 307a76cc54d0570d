"""Exit codes of every command-line script (the one table; the README's "When things go wrong" cites it).

A script's ``main()`` returns one of these; ``sys.exit`` passes it on.
"""

OK = 0
TRIAL_FAILED = 1  # a research trial failed (its log is named in the message)
BAD_INPUT = 2  # a bad flag, config value, path or data dir: the message names it; nothing was written
DIVERGED = 3  # too many consecutive non-finite steps; the last good checkpoint is kept
IO_ERROR = 74  # EX_IOERR: a checkpoint could not be written (e.g. disk full); the previous ones are kept
PREEMPTED = 75  # EX_TEMPFAIL: stopped by SIGTERM after saving; run the same command again to continue

__all__ = ["OK", "TRIAL_FAILED", "BAD_INPUT", "DIVERGED", "IO_ERROR", "PREEMPTED"]
