"""Private directories on the controller, for credentials that must be on disk: fetched
kubeconfigs, and the certificates and keys the kubernetes client decodes from a kubeconfig's
``*-data`` fields (it writes them to files for the TLS library).

Each is 0700 (``mkdtemp``) and named ``chaosali-kubeconfig-<pid>-…``; the process that made it
holds a lock on its ``.owner`` file for as long as it lives. The lock, not the pid, tells
``chaosali cleanup`` (and ``chaosali lab down``) that the process died without removing it
(SIGKILL, or killed with the lab host it ran in): a pid means nothing outside its own PID
namespace, and the lab's hosts have their own but share this machine's /tmp. A directory made
before owner locks is judged by its pid, as then.

Private files (a var file with a password, a key) are written by :func:`write`: 0600 from the
moment they exist.
"""

from __future__ import annotations

import atexit
import fcntl
import glob
import os
import shutil
import stat
import tempfile
import threading

__all__ = ["PREFIX", "held", "make", "process_directory", "remove", "remove_orphans", "write"]

PREFIX = "chaosali-kubeconfig-"
_OWNER = ".owner"
_lock = threading.RLock()  # make() runs under process_directory()'s hold
_made: dict[int, str] = {}  # by pid: a forked child makes its own
_owned: dict[str, int] = {}  # directory -> the descriptor of its owner lock, held until it is removed


def make() -> str:
    """A new private directory of this process; remove it with :func:`remove`. It appears under
    its name only once its owner lock is held (made under another name, then renamed), so that
    no cleanup takes it for an orphan while it is being made."""
    making = tempfile.mkdtemp(prefix=f".making-{PREFIX}")
    owner = os.open(os.path.join(making, _OWNER), os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(owner, fcntl.LOCK_EX)
    directory = os.path.join(os.path.dirname(making), f"{PREFIX}{os.getpid()}-{os.path.basename(making)[-8:]}")
    os.rename(making, directory)
    with _lock:
        _owned[directory] = owner
    return directory


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
        with _lock:
            owner = _owned.pop(directory, None)
        if owner is not None:  # released once nothing is left to remove
            os.close(owner)


def write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` to a file only its owner may read: created 0600 (an existing one made 0600
    before it is written), never a moment readable by others; a symbolic link is refused."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        os.fchmod(descriptor, 0o600)
        stream.write(data.encode() if isinstance(data, str) else data)


def remove_orphans() -> tuple[list[str], list[str]]:
    """Remove the private directories of processes that died without removing theirs. Returns
    what was removed, and what was left and why: only a real directory of this user is removed,
    never what a symbolic link of that name points to."""
    removed, left = [], []
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{PREFIX}*")):
        if _in_use(path):
            continue
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


def _in_use(path: str) -> bool:
    """Whether the process that made ``path`` lives: it holds the owner lock (in whatever PID
    namespace it runs). Without an owner file (made before them), whether its pid lives here."""
    try:
        return held(os.path.join(path, _OWNER))
    except FileNotFoundError:
        pid = os.path.basename(path)[len(PREFIX):].split("-", 1)[0]
        return not pid.isdigit() or os.path.exists(f"/proc/{pid}")
    except OSError:
        return True  # not ours to judge (a link, no permission): the checks below say why it stays


def held(lock_path: str | os.PathLike) -> bool:
    """Whether a live process holds ``lock_path`` locked (flock): told by the kernel, so it holds
    across PID namespaces, where a pid would not. Raises OSError when there is no such file."""
    descriptor = os.open(lock_path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False
