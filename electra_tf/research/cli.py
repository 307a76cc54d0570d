"""What the research scripts share: running a command of trials and turning its end into an exit code."""

import sys
from typing import Any, Callable, Tuple, Type

from electra_tf.exit_codes import BAD_INPUT as EXIT_BAD_INPUT
from electra_tf.exit_codes import PREEMPTED as EXIT_INTERRUPTED  # resumable: run the same command again
from electra_tf.exit_codes import TRIAL_FAILED as EXIT_TRIAL_FAILED
from electra_tf.research.trials import TrialFailed, TrialInterrupted, interrupt_on_sigterm


def run_command(action: Callable[[], Any], bad_input: Tuple[Type[BaseException], ...] = (ValueError,)
                ) -> Tuple[int, Any]:
    """Runs ``action()`` with SIGTERM turned into an interruption; returns ``(exit_code, result)``.

    ``(0, result)`` when it finishes; otherwise the reason goes to stderr and
    the result is None: ``bad_input`` errors give 2, a failed trial 1, and an
    interruption (Ctrl-C, SIGTERM) 75, after which the same command resumes.
    """
    interrupt_on_sigterm()
    try:
        return 0, action()
    except bad_input as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT, None
    except TrialFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TRIAL_FAILED, None
    except (TrialInterrupted, KeyboardInterrupt) as exc:
        reason = f" ({exc})" if str(exc) else ""
        print(f"interrupted{reason}; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED, None
