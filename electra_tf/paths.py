"""Checks of the paths a command writes to, made before any work is done.

Every script calls these on its output flags so that a path that is a file, a
directory that cannot be written, or a missing parent ends the run at once
with one line naming the flag and the path, not with a traceback after the work.

Example:

>>> check_output_dir("runs/tiny", "--model_dir")
>>> check_output_file("rtd.json", "--json")
"""

import errno
import os
import tempfile

__all__ = ["check_output_dir", "check_output_file", "process_alive"]


def _probe_writable(directory):
    """Raises OSError unless a file can be created in the existing ``directory`` (even for root on a read-only fs)."""
    with tempfile.TemporaryFile(dir=directory, prefix=".write-probe-"):
        pass


def _nearest_existing(path):
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_output_dir(path, flag):
    """Raises ValueError unless ``path`` is a directory that exists and is writable, or can be created.

    Nothing is created.

    Args:
        path: the directory.
        flag: how the user gave it (``--model_dir``), named in the message.
    """
    if not path:
        raise ValueError(f"{flag} must name a directory, got {path!r}")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{flag} {path} is a file, not a directory; pass a directory (it is created if absent)")
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        raise ValueError(f"{flag} {path} cannot be created: {existing} is a file, not a directory")
    try:
        _probe_writable(existing)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ValueError(f"{flag} {path} is not writable ({existing}: {reason}); pass a directory you can "
                         f"write to") from None


def check_output_file(path, flag):
    """Raises ValueError unless the file ``path`` can be written (its directory exists and is writable).

    Nothing is created, and an existing file is left as it is.
    """
    if not path:
        raise ValueError(f"{flag} must name a file, got {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path} is a directory; pass a file path")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"{flag} {path}: the directory {directory} does not exist")
    try:
        _probe_writable(directory)
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ValueError(f"{flag} {path} cannot be written ({reason})") from None


def process_alive(pid):
    """Whether a process with this PID runs on this machine."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except (OSError, ValueError, OverflowError):
        return False
    return True
