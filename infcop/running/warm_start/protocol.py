"""What the jobs and the warm-start process agree on: the environment that reaches a job, the wire format
of a request and its replies, and the kernel's word on who is at the other end of the socket."""
from __future__ import annotations

import os
import signal
import socket
import stat
import struct
import sys

ADDRESS_ENV = "INFCOP_WARM_START_ADDRESS"  # the socket's path
PID_ENV = "INFCOP_WARM_START_PID"  # the server's pid, as the kernel must report it
TOKEN_ENV = "INFCOP_WARM_START_TOKEN"  # a random secret of this run
NOTICE_FD_ENV = "INFCOP_WARM_START_NOTICE_FD"  # the server's copy of Snakemake's stderr
# What `start` hands the server process alone (it pops them): never a job's
READY_FD_ENV, PARENT_ENV, LOG_ENV = "INFCOP_WARM_START_READY_FD", "INFCOP_WARM_START_PARENT", "INFCOP_WARM_START_LOG"
SWITCH_ENV = "INFCOP_WARM_START"
JOB_ENV = (ADDRESS_ENV, PID_ENV, TOKEN_ENV)
REQUEST_DEADLINE = 10.0  # seconds from accept to a whole request: a slow sender is cut off after it
FIRST_REPLY_DEADLINE = 120.0  # a caller's wait for "started" (the server may still be importing torch)
MAX_REQUEST = 4 << 20  # bytes of JSON (the environment is the large part)
TOKEN_LENGTH = 64  # hex digits
REPLY = struct.Struct("!cq")  # b"P" + child pid, b"S" + wait status, b"R" + 0 (refused: run in process)
HEADER = struct.Struct("!I")
_PEERCRED = struct.Struct("3i")  # pid, uid, gid
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
FIELDS = {"token": str, "argv": list, "cwd": str, "env": dict, "umask": int, "pgid": int, "ignored": list,
          "python": str, "infcop": str, "version": str}


def enabled() -> bool:
    return os.environ.get(SWITCH_ENV, "on").strip().lower() not in ("off", "0", "no", "false")


def supported() -> str | None:
    """Why this platform cannot run the warm start (None: it can). It needs the kernel's word on who is at
    the other end of a socket (SO_PEERCRED) and on what a process runs inside (/proc): Linux."""
    if not hasattr(socket, "SO_PEERCRED") or not hasattr(socket, "send_fds"):
        return "this platform's kernel does not report a socket peer's credentials (SO_PEERCRED: Linux only)"
    if not os.path.isdir("/proc/self/ns") or not hasattr(os, "sched_getaffinity"):
        return "no /proc with the processes' namespaces and CPU affinity (Linux only)"
    return None


def identity() -> dict:
    """Which installation runs the jobs: the server refuses (and says so) a job of another one."""
    import infcop

    return {"python": sys.prefix, "infcop": os.path.realpath(infcop.__file__), "version": infcop.__version__}


def printable(text) -> str:
    """For the log: control characters escaped, so a caller cannot forge log lines."""
    return str(text).encode("unicode_escape", "backslashreplace").decode("ascii")


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end, as the kernel recorded it at connect / listen."""
    return _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))


def private_socket_problem(address: str) -> str | None:
    """Why `address` is not a socket of ours in a directory only we can enter (None when it is)."""
    if not os.path.isabs(address):
        return f"'{address}' is not an absolute path"
    uid = os.getuid()
    directory = os.path.dirname(address)
    try:
        d, s = os.lstat(directory), os.lstat(address)
    except OSError as exc:
        return f"cannot inspect '{address}': {exc.strerror}"
    if not stat.S_ISDIR(d.st_mode):
        return f"'{directory}' is not a directory (a symlink?)"
    if d.st_uid != uid or d.st_mode & 0o077:
        return f"'{directory}' is owned by uid {d.st_uid} with mode {stat.S_IMODE(d.st_mode):o}, not private to uid {uid}"
    if not stat.S_ISSOCK(s.st_mode) or s.st_uid != uid:
        return f"'{address}' is not a socket of uid {uid}"
    return None
