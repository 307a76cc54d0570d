"""Multi-worker start-up: a checked ``TF_CONFIG`` and a rendezvous that says whom it waits for.

``tf.distribute.MultiWorkerMirroredStrategy`` blocks inside TensorFlow until
every worker has joined, silently, holding the interpreter (it cannot be
interrupted or timed out from Python, and ignores SIGTERM while it waits).
:func:`wait_for_workers` runs first: each worker listens on its own address,
greets every peer there, logs which ones it is still waiting for, and gives
up after ``timeout`` seconds naming them. Only then is the strategy built.

Example:

>>> spec = parse_tf_config(os.environ["TF_CONFIG"])
>>> wait_for_workers(spec, timeout=600)
"""

import json
import logging
import socket
import threading
import time

log = logging.getLogger(__name__)

__all__ = ["ClusterSpecError", "WorkerTimeout", "parse_tf_config", "wait_for_workers"]

JOBS = ("chief", "worker")
GREETING = "electra-worker"


class ClusterSpecError(ValueError):
    """``TF_CONFIG`` is missing or malformed."""


class WorkerTimeout(ValueError):
    """A peer did not come up within the timeout."""


def parse_tf_config(text):
    """Checks a ``TF_CONFIG`` string; returns ``{"tasks": [(job, index, "host:port"), ...], "me": i}``.

    Raises:
        ClusterSpecError: not JSON, or missing/ill-typed ``cluster`` or ``task``
            entries (the message names the part and shows the expected shape).
    """
    shape = ('expected {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": N}}')
    if not text or not text.strip():
        raise ClusterSpecError(f"--strategy multi_worker needs the TF_CONFIG environment variable; {shape}")
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ClusterSpecError(f"TF_CONFIG is not valid JSON ({exc}): {text[:200]!r}; {shape}") from None
    if not isinstance(config, dict):
        raise ClusterSpecError(f"TF_CONFIG must be a JSON object, got {type(config).__name__}; {shape}")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not any(cluster.get(job) for job in JOBS):
        raise ClusterSpecError(f"TF_CONFIG's cluster must name its workers, got {cluster!r}; {shape}")
    tasks = []
    for job in JOBS:
        addresses = cluster.get(job) or []
        if not isinstance(addresses, list) or not all(isinstance(a, str) and _split(a) for a in addresses):
            raise ClusterSpecError(f"TF_CONFIG's cluster.{job} must be a list of \"host:port\" strings, "
                                   f"got {addresses!r}")
        tasks += [(job, i, address) for i, address in enumerate(addresses)]
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int):
        raise ClusterSpecError(f"TF_CONFIG's task must name this process's job and index, e.g. "
                               f'{{"type": "worker", "index": 0}}, got {task!r}')
    if task["type"] not in JOBS or not 0 <= task["index"] < len(cluster[task["type"]]):
        raise ClusterSpecError(f"TF_CONFIG's task {task!r} is not in the cluster ({cluster!r})")
    me = [i for i, (job, index, _) in enumerate(tasks) if job == task["type"] and index == task["index"]][0]
    return {"tasks": tasks, "me": me}


def _split(address):
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _greet(address, me):
    """Connects to a peer's address and says who this is; False when nothing listens there yet."""
    host, port = _split(address)
    try:
        with socket.create_connection((host, port), timeout=0.5) as conn:
            conn.sendall(f"{GREETING} {me}\n".encode())
            return True
    except OSError:
        return False


class _Listener:
    """Listens on this worker's address until the rendezvous ends, noting which peers said hello."""

    def __init__(self, address):
        host, port = _split(address)
        self.heard = set()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(64)
            self._sock.settimeout(0.2)
        except OSError:
            self._sock.close()
            raise
        self._thread = threading.Thread(target=self._serve, daemon=True, name="worker-rendezvous")
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    words = conn.recv(64).decode("ascii", "replace").split()
                except OSError:
                    continue
                if len(words) == 2 and words[0] == GREETING and words[1].isdigit():
                    self.heard.add(int(words[1]))

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


def wait_for_workers(spec, timeout=600.0, poll=0.5, report_every=10.0):
    """Blocks until every task of ``spec`` is up; logs whom it waits for.

    Each worker listens on its own address (TensorFlow's port, still free),
    greets every peer there, and passes when it has reached every peer and
    been greeted by every peer: so no worker leaves before all of them are
    up, and the listening socket is closed before TensorFlow needs the port.

    Raises:
        WorkerTimeout: some peer did not come up within ``timeout`` seconds
            (the message names each one and its address).
    """
    tasks, me = spec["tasks"], spec["me"]
    peers = {i: t for i, t in enumerate(tasks) if i != me}
    if not peers:
        return
    job, index, address = tasks[me]
    try:
        listener = _Listener(address)
    except OSError as exc:
        listener = None
        log.warning("cannot listen on %s before TensorFlow does (%s): waiting only until every peer answers",
                    address, exc)
    start = last_report = time.monotonic()
    reached = set()
    try:
        log.info("%s %d of %d: waiting for %s to come up (timeout %.0f s, --worker_timeout)", job, index,
                 len(tasks), _names(peers.values()), timeout)
        while True:
            reached |= {i for i, t in peers.items() if i not in reached and _greet(t[2], me)}
            heard = listener.heard if listener is not None else set(peers)
            waiting = [t for i, t in peers.items() if i not in reached or i not in heard]
            if not waiting:
                log.info("all %d workers are up after %.1f s", len(tasks), time.monotonic() - start)
                return
            elapsed = time.monotonic() - start
            if elapsed >= timeout:
                raise WorkerTimeout(f"{_names(waiting)} did not come up within {timeout:.0f} s (--worker_timeout); "
                                    f"start every worker of TF_CONFIG, or check the addresses")
            if time.monotonic() - last_report >= report_every:
                log.info("still waiting for %s (%.0f s of %.0f s)", _names(waiting), elapsed, timeout)
                last_report = time.monotonic()
            time.sleep(poll)
    finally:
        if listener is not None:
            listener.close()


def _names(tasks):
    return ", ".join(f"{job} {index} at {address}" for job, index, address in tasks)
