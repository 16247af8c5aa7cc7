"""One training run per run folder.

Two runs writing the same folder interleave `train.log`, prune each other's checkpoints and
leave a `checkpoint.json` pointing at a mix of both. The first run holds an exclusive
`flock` on `OUTPUT/.lock` for its whole life; the file records host, PID and start time
so that the second run's error says who holds the folder. The operating system drops the lock
when its process dies (even on kill -9), so a lock file left by a dead run is taken over, with
a message naming the process that left it.

Only EWOULDBLOCK/EAGAIN from `flock` means another process holds the lock. Any other error
(ENOLCK, EOPNOTSUPP, ENOSYS, EINVAL: file systems without `flock`, such as some NFS or FUSE
mounts) is reported as what it is, so nobody goes looking for a run that does not exist.
"""
import contextlib
import errno
import fcntl
import json
import os
import socket
import time

from ..errors import UserError
from .checkpoint import remove_stale_temporaries

__all__ = ["RunLock", "RunLockError", "RunFolderBusy", "LOCK_NAME", "hold_run_folder"]

LOCK_NAME = ".lock"

_BUSY = frozenset({errno.EWOULDBLOCK, errno.EAGAIN})
_NO_FLOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL,
                       getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)})


class RunLockError(UserError):
    """The run folder could not be locked (busy, or the file system refuses locks)."""


class RunFolderBusy(RunLockError):
    """Another live process trains into this run folder."""


class RunLock:
    """`with RunLock(folder, log=print):` holds the folder; `acquire`/`release` by hand too."""

    def __init__(self, folder, log=print):
        self.folder, self.log = folder, log
        self.path = os.path.join(folder, LOCK_NAME)
        self._fd = None

    def acquire(self):
        os.makedirs(self.folder, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            failure = self._failure(fd, err)
            os.close(fd)
            raise failure from None
        previous = _read(fd)
        if previous:
            self.log(f"taking over the lock of a run that is no longer running "
                     f"({_describe(previous)})")
        _write(fd, {"host": socket.gethostname(), "pid": os.getpid(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        self._fd = fd
        return self

    def _failure(self, fd, err):
        """The error to raise for a failed `flock`: busy only for EWOULDBLOCK/EAGAIN."""
        if err.errno in _BUSY:
            return RunFolderBusy(
                f"{self.folder} is in use by another training run ({_describe(_read(fd))}); "
                f"wait for it to finish, stop it, or choose another --output")
        cause = f"{errno.errorcode.get(err.errno, err.errno)}: {err.strerror}"
        if err.errno in _NO_FLOCK:
            return RunLockError(
                f"cannot lock {self.path} ({cause}): the file system of {self.folder} does not "
                f"support flock (some NFS and FUSE mounts do not); put --output on a local "
                f"disk or another lock-capable file system")
        return RunLockError(f"cannot lock {self.path} ({cause}); this is not another run "
                            f"holding it: check the file system of {self.folder}")

    def release(self):
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # an empty file: nobody to take over from
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def _read(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace").strip()
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return {"unreadable": text[:80]}


def _write(fd, info):
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(info).encode())
    os.fsync(fd)


def _describe(info):
    if not info:
        return "holder unknown"
    if "unreadable" in info:
        return f"lock file reads {info['unreadable']!r}"
    return f"PID {info.get('pid')} on host {info.get('host')}, started {info.get('started')}"


@contextlib.contextmanager
def hold_run_folder(folder, rank, any_flag, log=print):
    """Worker 0 locks `folder` and clears the temporaries a killed run left there; every
    worker raises RunFolderBusy when the folder is taken, RunLockError when it cannot be
    locked at all (none is left waiting)."""
    lock, failure = None, None
    if rank == 0:
        try:
            lock = RunLock(folder, log).acquire()
        except RunLockError as exc:
            failure = exc
        else:
            stale = remove_stale_temporaries(folder)
            if stale:
                log(f"removed {len(stale)} temporary file(s) a stopped run left in {folder}: "
                    f"{', '.join(sorted(stale)[:5])}")
    if any_flag(failure is not None):
        raise failure or RunLockError(f"{folder}: worker 0 could not lock the run folder "
                                      f"(its message says why)")
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
