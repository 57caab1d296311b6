"""Starting and stopping the warm-start process: its private directory, its log (never through a link), the
environment it hands the jobs, and the tidy-up that removes only what it made (checked by inode)."""
from __future__ import annotations

import errno
import os
import secrets
import select
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from .protocol import (ADDRESS_ENV, JOB_ENV, LOG_ENV, NOTICE_FD_ENV, PARENT_ENV, PID_ENV, READY_FD_ENV,
                       TOKEN_ENV, enabled, supported)
from .threads import THREAD_VARS

DIRECTORY_ENV = "INFCOP_WARM_START_DIRECTORY"  # server only: "dev:inode" of its private directory


@dataclass
class Handle:
    """A started server: its process, and the environment its jobs need to reach it."""
    proc: subprocess.Popen
    address: str
    token: str
    directory_id: tuple[int, int] | None = None  # (device, inode) of the private directory it was given

    @property
    def env(self) -> dict:
        return {ADDRESS_ENV: self.address, PID_ENV: str(self.proc.pid), TOKEN_ENV: self.token}


def remove_socket(address: str, directory_id: tuple[int, int] | None) -> None:
    """The socket and its private directory, once the server is done with them: only if the directory is
    still the one made for it (device and inode), and only a socket of ours inside it."""
    directory = os.path.dirname(address)
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        info = os.fstat(dfd)
        if (info.st_dev, info.st_ino) != directory_id or info.st_uid != os.getuid():
            return  # swapped for another (a world-writable, non-sticky temporary directory): not ours to touch
        try:
            sock = os.lstat(os.path.basename(address), dir_fd=dfd)
            if stat.S_ISSOCK(sock.st_mode) and sock.st_uid == os.getuid():
                os.unlink(os.path.basename(address), dir_fd=dfd)
        except OSError:
            pass
    finally:
        os.close(dfd)
    try:
        now = os.lstat(directory)
        if (now.st_dev, now.st_ino) == directory_id:
            os.rmdir(directory)  # (an empty directory only)
    except OSError:
        pass


def _private_directory() -> tuple[str, tuple[int, int]]:
    base = tempfile.gettempdir()
    if len(base) > 60:  # a Unix socket's path must fit in 107 bytes
        base = "/tmp"
    directory = tempfile.mkdtemp(prefix="infcop-warm-start-", dir=base)  # mode 0700, a new name
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError(errno.EPERM, f"'{directory}' is not a private directory")
    return directory, (info.st_dev, info.st_ino)


def open_log(path: str) -> int:
    """The log, opened to append without following a link planted at its name: it must be a plain file of
    this user's with one name (a hard link to another file has two)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_nlink != 1:
        os.close(fd)
        raise OSError(errno.EPERM, f"'{path}' is not a plain file of uid {os.getuid()} with one name")
    return fd


def start(log_path: str, notices=None, export: bool = True) -> Handle | None:
    """Start a server for this process's jobs, or None if turned off or it could not start. With `export`,
    this process's environment gets the jobs' variables (Snakemake passes it on to its jobs). `notices`
    (a stream, e.g. Snakemake's stderr) gets one line per kind of refusal."""
    if not enabled():
        return None
    unsupported = supported()
    if unsupported:
        print(f"infcop warm start: off ({unsupported}); every job starts afresh", file=sys.stderr)
        return None
    try:
        log_fd = open_log(log_path)
    except OSError as exc:
        print(f"infcop warm start: off (its log: {exc.strerror or exc}); every job starts afresh", file=sys.stderr)
        return None
    try:
        directory, directory_id = _private_directory()
    except OSError as exc:
        os.close(log_fd)
        print(f"infcop warm start: off ({exc})", file=sys.stderr)
        return None
    address = os.path.join(directory, "socket")
    token = secrets.token_hex(32)
    ready, ready_w = os.pipe()
    pass_fds = [ready_w]
    env = {**os.environ, **{v: "1" for v in THREAD_VARS}, TOKEN_ENV: token, READY_FD_ENV: str(ready_w),
           PARENT_ENV: str(os.getpid()), ADDRESS_ENV: address, LOG_ENV: log_path,
           DIRECTORY_ENV: f"{directory_id[0]}:{directory_id[1]}"}
    for name in (PID_ENV, NOTICE_FD_ENV):
        env.pop(name, None)
    notice_fd = None
    if notices is not None:
        try:  # a copy above 2: the server's own 0-2 are /dev/null and its log
            notice_fd = os.dup(notices.fileno())
            pass_fds.append(notice_fd)
            env[NOTICE_FD_ENV] = str(notice_fd)
        except (AttributeError, OSError, ValueError):
            pass
    # `-c` and the private directory as working directory: the server imports infcop as the jobs' `infcop`
    # command does (from the installation), never from a folder that happens to be here.
    code = "import sys; sys.path.pop(0); from infcop.running.warm_start import main; main()"
    try:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=directory, env=env, stdin=subprocess.DEVNULL,
                                stdout=log_fd, stderr=subprocess.STDOUT, pass_fds=pass_fds,
                                start_new_session=True)  # out of the terminal's Ctrl-C: jobs get it
    finally:
        for fd in (log_fd, ready_w, notice_fd):
            if fd is not None:
                os.close(fd)
    try:
        listening = _wait_ready(ready, 30)
    finally:
        os.close(ready)
    handle = Handle(proc, address, token, directory_id)
    if not listening:  # jobs run in process, as without it
        stop(handle)
        return None
    if export:
        os.environ.update(handle.env)
    return handle


def _wait_ready(fd: int, timeout: float) -> bool:
    """Whether the server wrote its ready byte within `timeout` seconds."""
    return bool(select.select([fd], [], [], timeout)[0]) and os.read(fd, 1) == b"1"


def stop(handle: Handle | None) -> None:
    """Let the server go once its children are done (it also goes by itself when its parent does)."""
    for name in JOB_ENV:
        os.environ.pop(name, None)
    if handle is None:
        return
    if handle.proc.poll() is None:
        handle.proc.terminate()
    else:  # it died: its private directory is ours to tidy
        remove_socket(handle.address, handle.directory_id)


def main() -> None:
    """The server process (started by `start`): its settings come through the environment, not argv."""
    from .log import Log
    from .server import Server

    token = os.environ.pop(TOKEN_ENV)
    address = os.environ.pop(ADDRESS_ENV)
    ready_fd = int(os.environ.pop(READY_FD_ENV))
    parent = int(os.environ.pop(PARENT_ENV))
    notice_fd = os.environ.pop(NOTICE_FD_ENV, None)
    log_name = os.environ.pop(LOG_ENV, "the log")
    directory_id = tuple(int(x) for x in os.environ.pop(DIRECTORY_ENV).split(":"))
    notices = open(int(notice_fd), "w", closefd=True) if notice_fd else None
    log = Log(1)  # the log file, opened by `start`
    log.say(f"=== warm-start server {os.getpid()} started {time.strftime('%Y-%m-%dT%H:%M:%S')} ===")
    try:
        server = Server(address, token, parent, log, notices, log_name)
    except OSError as exc:
        log.say(f"cannot listen on {address}: {exc}")
        os.close(ready_fd)  # the starter reads end-of-file at once: no server
        remove_socket(address, directory_id)
        return
    server.serve(ready_fd, on_exit=lambda: remove_socket(address, directory_id))
