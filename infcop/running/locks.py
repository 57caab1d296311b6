"""One writer per stage: a job holds an exclusive lock on its stage for its whole life, so that a second
job writing the same stage (a second Snakemake started after `snakemake --unlock` while the first still
runs, or a job that outlived a killed Snakemake) stops at once, naming the holder, instead of overwriting
or deleting the other's files.

The lock is flock(2) on a small file beside the stage's output directory, `.{dir}.{stage}.lock` (beside,
not inside, so that a job refused before it starts leaves no directory behind). The kernel drops the lock
when its process ends, however it ends: the file of a dead holder is simply taken over. The file holds
the holder's pid, host and start time while it runs, for the message."""
from __future__ import annotations

import errno
import functools
import inspect
import json
import logging
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from .. import InfcopError

try:
    import fcntl
except ImportError:  # not POSIX: no locking
    fcntl = None

log = logging.getLogger("infcop")
# flock on a file system that does not support it (some parallel file systems, NFS without a lock daemon)
_UNSUPPORTED = {errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL}


class StageBusy(InfcopError):
    """Another live job holds the stage's lock."""


def lock_path(out_dir, stage: str) -> Path:
    out = Path(os.path.abspath(out_dir))
    return out.parent / f".{out.name}.{stage}.lock"


def _holder(fd) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode(errors="replace")
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}


def _describe(h: dict) -> str:
    if not h:
        return "a job that did not say who it is"
    return f"pid {h.get('pid')} on host {h.get('host')}, started {h.get('started')} ({h.get('command', '?')})"


@contextmanager
def stage_lock(out_dir, stage: str):
    """Hold the lock of `stage` writing `out_dir` for the duration of the block; StageBusy when another
    live job holds it."""
    if fcntl is None:
        yield
        return
    path = lock_path(out_dir, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if _acquire(fd, path, out_dir):
            previous = _holder(fd)
            if previous:  # a holder that ended without releasing: killed
                log.info("taking over the lock of stage '%s' from a job that ended without releasing it (%s)",
                         out_dir, _describe(previous))
            me = {"pid": os.getpid(), "host": socket.gethostname(), "command": f"infcop {stage}",
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)  # a clean end: a lock file with a holder in it means that holder died
        else:
            yield
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd, path: Path, out_dir) -> bool:
    """True when locked; False when the file system cannot lock (warned); StageBusy when held."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        raise StageBusy(
            f"stage '{out_dir}' is being written by another job: {_describe(_holder(fd))} (lock file "
            f"'{path}'). Two jobs for one stage run when a second Snakemake is started after "
            "`snakemake --unlock` while the first still runs, or when a job outlives a killed Snakemake. "
            "Let that job finish (or stop it), then run snakemake again; this job wrote nothing") from None
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED:
            raise
        log.warning("the file system of '%s' does not support locks (%s): a second job writing this stage "
                    "at the same time would not be noticed", path, exc.strerror)
        return False


def holding(stage: str, out: str = "out_dir"):
    """Decorator: run the stage function while holding the lock of its output directory (argument `out`)."""
    def wrap(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def locked(*args, **kwargs):
            with stage_lock(signature.bind(*args, **kwargs).arguments[out], stage):
                return fn(*args, **kwargs)
        return locked
    return wrap
