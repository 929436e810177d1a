"""Private directories on the controller, for credentials that must be on disk: fetched
kubeconfigs, and the certificates and keys the kubernetes client decodes from a kubeconfig's
``*-data`` fields (it writes them to files for the TLS library).

Each is 0700 (``mkdtemp``) and named ``chaosali-kubeconfig-<pid>-…``: the pid tells ``chaosali
cleanup`` that the process that made it died without removing it (SIGKILL), and only then.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import stat
import tempfile
import threading

__all__ = ["PREFIX", "make", "process_directory", "remove", "remove_orphans"]

PREFIX = "chaosali-kubeconfig-"
_lock = threading.Lock()
_made: dict[int, str] = {}  # by pid: a forked child makes its own


def make() -> str:
    """A new private directory of this process; remove it with :func:`remove`."""
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")


def process_directory() -> str:
    """This process's private directory for the kubernetes client's decoded certificates and keys,
    made on first use and removed when the process exits (or by ``chaosali cleanup`` after)."""
    with _lock:
        directory = _made.get(os.getpid())
        if directory is None or not os.path.isdir(directory):
            directory = _made[os.getpid()] = make()
            atexit.register(remove, directory)
        return directory


def remove(directory: str) -> None:
    """Remove a directory made by :func:`make`, quietly if already gone; never another one."""
    if os.path.basename(directory).startswith(PREFIX):
        shutil.rmtree(directory, ignore_errors=True)


def remove_orphans() -> tuple[list[str], list[str]]:
    """Remove the private directories of processes that died without removing theirs. Returns
    what was removed, and what was left and why: only a real directory of this user is removed,
    never what a symbolic link of that name points to."""
    removed, left = [], []
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{PREFIX}*")):
        pid = os.path.basename(path)[len(PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
            continue  # its process lives: still in use
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else (
                "not a directory" if not stat.S_ISDIR(info.st_mode) else f"owned by uid {info.st_uid}")
            left.append(f"{path}: {what}, not a directory a chaosali run of this user made; remove it by hand "
                        "if it is yours")
            continue
        shutil.rmtree(path, ignore_errors=True)
        if os.path.lexists(path):
            left.append(f"{path}: could not be removed whole")
        else:
            removed.append(path)
    return removed, left
