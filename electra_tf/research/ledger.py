"""A resumable record of finished trials: a JSON ledger in the experiment dir, plus its CSV view.

A sweep or an experiment is a list of named trials. Before a trial runs, the
ledger is asked for its result; a trial recorded as finished (``ok`` or
``diverged``) is never run again, so re-running an interrupted sweep with the
same command only runs what is missing. Every result is written at once
(atomically), so a kill loses at most the trial in progress, and that trial's
model dir resumes from its last checkpoint when it is run again.

Example:

>>> ledger = Ledger("runs/sweep")
>>> result = ledger.run("dlr_1e-03", {"train.discriminator_lr": 1e-3}, trial_fn)
"""

import csv
import json
import logging
import os
from typing import Callable, Dict, List, Optional

log = logging.getLogger(__name__)

LEDGER_FILE = "ledger.json"
FINISHED = ("ok", "diverged")


def _spec_equal(a, b):
    """Specs compare as JSON does (tuples and lists alike, floats to 12 significant digits)."""
    def norm(value):
        if isinstance(value, float):
            return float(f"{value:.12g}")
        if isinstance(value, (list, tuple)):
            return [norm(v) for v in value]
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        return value
    return norm(json.loads(json.dumps(a))) == norm(json.loads(json.dumps(b)))


class Ledger:
    """Finished trials of one experiment dir, keyed by trial name.

    Args:
        out_dir: the experiment dir; the ledger is ``out_dir/ledger.json``.
        context: what every trial shares but its spec does not say (preset,
            steps, batch size); a ledger recorded with another context is
            refused, so a rerun with other ``--steps`` cannot reuse old trials.

    Attributes:
        trials: name -> ``{"spec": ..., "result": ...}`` in the order recorded.
        runs: names of the trials run (not taken from the ledger) by this object.
    """

    def __init__(self, out_dir, context: Optional[Dict] = None):
        self.out_dir, self.context = out_dir, dict(context or {})
        self.path = os.path.join(out_dir, LEDGER_FILE)
        self.trials: Dict[str, Dict] = {}
        self.runs: List[str] = []
        os.makedirs(out_dir, exist_ok=True)
        if os.path.exists(self.path):
            with open(self.path, "r", encoding="utf-8") as f:
                try:
                    stored = json.load(f)
                    self.trials = stored["trials"]
                except (json.JSONDecodeError, KeyError) as exc:
                    raise ValueError(f"the ledger {self.path} is not a trial ledger ({exc}); move it away to start "
                                     "the experiment over") from None
            recorded = stored.get("context")  # None: an older ledger; the context is adopted
            if recorded is not None and context is not None and not _spec_equal(recorded, self.context):
                raise ValueError(f"{self.path} holds trials run with {recorded}, not {self.context}; use another "
                                 "--out dir, or the same flags as before to resume")
            if recorded is None and context is not None:
                self._write()

    def get(self, name, spec) -> Optional[Dict]:
        """The recorded result of a finished trial, or None.

        Raises:
            ValueError: the trial was recorded with another spec (another
                ``--steps`` or grid in the same dir); the message names both.
        """
        entry = self.trials.get(name)
        if entry is None:
            return None
        if not _spec_equal(entry["spec"], spec):
            raise ValueError(f"trial {name!r} in {self.path} was run with {entry['spec']}, not {spec}; use another "
                             "--out dir (or the same flags as before) so finished trials are not mixed up")
        return entry["result"] if entry["result"].get("status") in FINISHED else None

    def put(self, name, spec, result):
        """Records a trial's result and rewrites the ledger atomically."""
        self.trials[name] = {"spec": spec, "result": result}
        self._write()

    def _write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "context": self.context, "trials": self.trials}, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def run(self, name, spec, trial_fn: Callable[[str, Dict], Dict]) -> Dict:
        """The trial's result: from the ledger when finished, else from ``trial_fn(name, spec)`` (then recorded)."""
        cached = self.get(name, spec)
        if cached is not None:
            log.info("trial %s: finished earlier (%s), not rerun", name, cached.get("status"))
            return cached
        log.info("trial %s: running %s", name, spec)
        result = dict(trial_fn(name, spec))
        if result.get("status") not in FINISHED:
            raise ValueError(f"trial {name!r}: the trial function returned status {result.get('status')!r}; "
                             f"expected one of {FINISHED}")
        self.runs.append(name)
        self.put(name, spec, result)
        return result

    def rows(self) -> List[Dict]:
        """One flat dict per trial: its name, its spec and its result."""
        rows = []
        for name, entry in self.trials.items():
            spec = entry["spec"] if isinstance(entry["spec"], dict) else {"spec": entry["spec"]}
            rows.append({"trial": name, **spec, **entry["result"]})
        return rows


def write_csv(rows: List[Dict], path, columns=None):
    """Writes dict rows to a CSV; the columns are ``columns`` then every other key, in first-seen order."""
    keys = list(columns or [])
    for row in rows:
        keys += [k for k in row if k not in keys]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in keys})
    os.replace(tmp, path)
    return path
