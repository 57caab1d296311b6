"""Warm start: one process per local workflow run imports torch, pandas and matplotlib once and forks a
child for each `infcop` job, so a job skips the seconds of imports a fresh interpreter pays (on small data
sets most of a job's time).

The workflow's `onstart` starts the server (`start`) for local runs only. It listens on a Unix socket in a
private directory (mode 0700, made by `mkdtemp`) and hands three things to the jobs through their
environment, never their command line: the socket's path, the server's pid and a random per-run token.
`infcop` (`run_remote`) checks the directory and the socket are its own uid's, connects, asks the kernel who
answered (SO_PEERCRED: the owner's uid and the recorded pid, or it sends nothing and runs afresh), then
sends the token, its arguments, working directory, environment, umask and standard streams (as file
descriptors). The server asks the kernel who called (SO_PEERCRED: the owner's uid only), checks the token
(`hmac.compare_digest`), the request's shape and size within a deadline, and only then forks a child that
runs the command exactly as a fresh process would have (thread settings included). Anything that fails a
check is refused and logged, and the caller runs the command in its own process, as without a server.

The calling process stays the job: it forwards signals to the child and exits with the child's status (or
dies of the child's signal). The child reports its own exit status, so a finished job is reported right
even if the server died meanwhile. If the calling process dies, the server kills its child at once (and a
watcher in the child does so if the server is gone). INFCOP_WARM_START=off turns it all off (e.g. to
measure a job's memory with Snakemake's benchmark files, which see only the calling process).
"""
from __future__ import annotations

import errno
import hmac
import importlib
import io
import json
import os
import secrets
import selectors
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

ADDRESS_ENV = "INFCOP_WARM_START_ADDRESS"  # the socket's path
PID_ENV = "INFCOP_WARM_START_PID"  # the server's pid, as the kernel must report it
TOKEN_ENV = "INFCOP_WARM_START_TOKEN"  # a random secret of this run
NOTICE_FD_ENV = "INFCOP_WARM_START_NOTICE_FD"  # the server's copy of Snakemake's stderr
# What `start` hands the server process alone (it pops them): never a job's
READY_FD_ENV, PARENT_ENV, LOG_ENV = "INFCOP_WARM_START_READY_FD", "INFCOP_WARM_START_PARENT", "INFCOP_WARM_START_LOG"
SWITCH_ENV = "INFCOP_WARM_START"
JOB_ENV = (ADDRESS_ENV, PID_ENV, TOKEN_ENV)
ENTRY_POINT = "infcop.cli:main"  # by name: importing cli here would make an import circle
# What the children need, imported once here (each is skipped if it is not installed).
PRELOAD = ("torch", "numpy", "pandas", "threadpoolctl", "infcop.steps", "infcop.tables", "infcop.compare")
# The thread variables Snakemake sets per job; the server itself runs with each at 1.
THREAD_VARS = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS")
REQUEST_DEADLINE = 10.0  # seconds from accept to a whole request: a slow sender is cut off after it
FIRST_REPLY_DEADLINE = 120.0  # a caller's wait for "started" (the server may still be importing torch)
HANG_UP_GRACE = 0.2  # seconds between a caller's hang-up and the kill of its job (if it has not exited)
MAX_REQUEST = 4 << 20  # bytes of JSON (the environment is the large part)
_REPLY = struct.Struct("!cq")  # b"P" + child pid, b"S" + wait status, b"R" + 0 (refused: run in process)
_HEADER = struct.Struct("!I")
_PEERCRED = struct.Struct("3i")  # pid, uid, gid
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
_FIELDS = {"token": str, "argv": list, "cwd": str, "env": dict, "umask": int, "pgid": int, "ignored": list,
           "python": str, "infcop": str, "version": str}


def enabled() -> bool:
    return os.environ.get(SWITCH_ENV, "on").strip().lower() not in ("off", "0", "no", "false")


def _identity() -> dict:
    """Which installation runs the jobs: the server refuses (and says so) a job of another one."""
    import infcop

    return {"python": sys.prefix, "infcop": os.path.realpath(infcop.__file__), "version": infcop.__version__}


def _printable(text) -> str:
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


# ---------------------------------------------------------------------------------------------- client

def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _decline(why: str) -> None:
    print(f"infcop: warm start refused its server ({why}); running this job afresh", file=sys.stderr)


def _connect(address: str, server_pid: int) -> socket.socket | None:
    """A connection to the server of this run, checked by the kernel before anything is sent; else None."""
    problem = private_socket_problem(address)
    if problem:
        _decline(problem)
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(FIRST_REPLY_DEADLINE)
    try:
        sock.connect(address)
        pid, uid, _ = peer_credentials(sock)
    except OSError:
        sock.close()
        return None  # no server (it stopped, or never started): run in process, as without one
    if uid != os.getuid() or pid != server_pid:
        sock.close()
        _decline(f"the socket is served by pid {pid} of uid {uid}, not by pid {server_pid} of uid {os.getuid()}")
        return None
    return sock


def run_remote(argv: list[str]) -> int | None:
    """Run `infcop argv` in a child of the warm-start server; its exit status, or None to run in process
    (no server, or it refused, or it did not answer in time). Dies of the child's signal if it died of one."""
    address, pid, token = (os.environ.get(k) for k in JOB_ENV)
    if not (address and pid and token) or not enabled():
        return None
    try:
        server_pid = int(pid)
    except ValueError:
        return None
    sock = _connect(address, server_pid)
    if sock is None:
        return None
    from .checkpoints import current_umask

    ignored = [int(s) for s in _SIGNALS if signal.getsignal(s) is signal.SIG_IGN]  # e.g. SIGINT under nohup &
    env = {k: v for k, v in os.environ.items() if k not in JOB_ENV}
    request = json.dumps({"token": token, "argv": list(argv), "cwd": os.getcwd(), "env": env,
                          "umask": current_umask(), "pgid": os.getpgid(0), "ignored": ignored,
                          **_identity()}).encode()
    try:
        socket.send_fds(sock, [_HEADER.pack(len(request))], [0, 1, 2])
        sock.sendall(request)
        reply = _recv_exactly(sock, _REPLY.size)  # within FIRST_REPLY_DEADLINE
    except OSError:  # socket.timeout included
        reply = None
    kind, child = _REPLY.unpack(reply) if reply is not None else (b"R", 0)
    if kind != b"P" or child <= 0:
        sock.close()  # the server kills a child whose caller has gone: nothing runs twice
        return None
    sock.settimeout(None)  # the job may run for hours

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for s in _SIGNALS:
        if int(s) not in ignored:
            signal.signal(s, forward)
    try:
        reply = _recv_exactly(sock, _REPLY.size)
    except OSError:
        reply = None
    if reply is None:
        print("infcop: the warm-start job ended without reporting its exit status (killed?); run the "
              f"workflow again (or with {SWITCH_ENV}=off)", file=sys.stderr)
        return 1
    status = _REPLY.unpack(reply)[1]
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        sys.stdout.flush()
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)  # die as the job would have
        return 128 + sig
    return os.waitstatus_to_exitcode(status)


# ------------------------------------------------------------------------------------ threads in a job

def _env_threads(env: dict, names) -> int | None:
    """The first positive count among `names` (the first entry of a nested OMP list), as the library reads it."""
    for name in names:
        value = env.get(name, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def _physical_cores() -> int:
    """What PyTorch takes when no variable says (cpuinfo's physical cores), read from sysfs."""
    cores = set()
    for cpu in range(os.cpu_count() or 1):
        base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
        try:
            cores.add((open(base + "physical_package_id").read().strip(), open(base + "core_id").read().strip()))
        except OSError:
            continue
    return len(cores) or os.cpu_count() or 1


def fresh_thread_counts(env: dict) -> dict:
    """The thread counts a fresh process started with `env` would use, per library (the variables each
    reads at load, in its own order of precedence)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    omp = _env_threads(env, ("OMP_NUM_THREADS",))
    return {
        "torch": _env_threads(env, ("MKL_NUM_THREADS", "OMP_NUM_THREADS")) or _physical_cores(),
        "openmp": omp or cpus,
        "openblas": min(_env_threads(env, ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")) or cpus,
                        cpus),
        "mkl": _env_threads(env, ("MKL_NUM_THREADS", "OMP_NUM_THREADS")) or _physical_cores(),
        "blis": _env_threads(env, ("BLIS_NUM_THREADS", "OMP_NUM_THREADS")) or cpus,
    }


def apply_thread_counts(env: dict) -> None:
    """Give this (forked) process the thread counts a fresh one would have under `env`: the libraries read
    the variables when the server imported them, with every count at 1."""
    counts = fresh_thread_counts(env)
    try:
        from threadpoolctl import ThreadpoolController

        for lib in ThreadpoolController().lib_controllers:
            if lib.internal_api in counts:
                lib.set_num_threads(counts[lib.internal_api])
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(counts["torch"])


# ---------------------------------------------------------------------------------------------- server

def _preload(log) -> None:
    t0 = time.time()
    from .plots import FIGURES, style

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    try:
        style.mpl()  # the Agg backend first, as the figure jobs choose it
        for name in ("matplotlib.pyplot", "seaborn", *{f"infcop.plots.{s.module}" for s in FIGURES.values()}):
            importlib.import_module(name)
    except ImportError:
        pass
    print(f"preloaded in {time.time() - t0:.1f} s", file=log, flush=True)


def _gpu_possible() -> bool:
    """Whether a job may use a GPU, found without initialising CUDA here (that would make forks unsafe)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    if torch.backends.cuda.is_built() and any(n.startswith("nvidia") and n[6:].isdigit() for n in os.listdir("/dev")):
        return True
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_built() and sys.platform == "darwin")


def _std_stream(fd: int):
    """A text stream on `fd` as a fresh interpreter makes it: unbuffered under PYTHONUNBUFFERED, else
    line-buffered on a terminal (stderr always), block-buffered otherwise."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    raw = io.FileIO(fd, "wb", closefd=False)
    return io.TextIOWrapper(raw if unbuffered else io.BufferedWriter(raw), encoding=sys.stdout.encoding or "utf-8",
                            errors="backslashreplace" if fd == 2 else "strict", write_through=unbuffered,
                            line_buffering=not unbuffered and (fd == 2 or os.isatty(fd)))


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _entry_point():
    module, _, name = ENTRY_POINT.partition(":")
    return getattr(importlib.import_module(module), name)


def _child(conn: socket.socket, request: dict, fds: list[int], inherited: list[int]) -> None:
    """In the forked child: become the job, run the command, report and exit with its status. Never returns."""
    code = 1
    reported = []
    try:
        for fd in inherited:  # the listener and other jobs' connections (holding them would hide their callers' deaths)
            try:
                os.close(fd)
            except OSError:
                pass
        for s in _SIGNALS + (signal.SIGCHLD,):
            signal.signal(s, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for s in request["ignored"]:  # what the caller ignores, its job ignores, as a fresh process would
            signal.signal(s, signal.SIG_IGN)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        for name in JOB_ENV:
            os.environ.pop(name, None)
        apply_thread_counts(request["env"])
        for path in reversed([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]):
            if path not in sys.path:
                sys.path.insert(0, path)
        importlib.invalidate_caches()  # files written since the server started (e.g. plugins) are found
        sys.stdin = io.TextIOWrapper(io.open(0, "rb", closefd=False))
        sys.stdout = _std_stream(1)
        sys.stderr = _std_stream(2)
        sys.argv = ["infcop", *request["argv"]]
        from . import faults

        faults.job_group = request["pgid"]  # a fault test's kill takes the job's group, not the server's

        def die_with_caller():
            # The server kills a job whose caller died; this covers a server that died before its job.
            # (The connection is non-blocking: its file description is shared with the server.)
            import select

            while True:
                select.select([conn], [], [])
                try:
                    if not conn.recv(64):
                        break
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    break
            if not reported:
                os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=die_with_caller, daemon=True).start()
        code = _entry_point()(request["argv"])
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    _flush()
    code = code if isinstance(code, int) and 0 <= code < 256 else 1
    reported.append(True)
    try:  # the job's own word: right even if the server has gone since
        conn.send(_REPLY.pack(b"S", code << 8))
    except OSError:
        pass
    os._exit(code)


class Refused(Exception):
    """A request that is not run: the reason goes to the log (and, once per kind, to Snakemake's output)."""

    def __init__(self, reason: str, kind: str | None = None):
        super().__init__(reason)
        self.kind = kind  # None: the log only


@dataclass
class _Pending:
    conn: socket.socket
    pid: int
    uid: int
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    fds: list = field(default_factory=list)


@dataclass
class _Job:
    conn: socket.socket
    started: float
    what: str
    orphaned: float | None = None  # when its caller hung up (+ grace): the moment to kill it


class Server:
    """Accepts the owner's requests and forks their jobs; one select loop, so no caller can hold up another."""

    def __init__(self, address: str, token: str, parent: int, log, notices=None, log_name: str = "the log"):
        self.address, self.token, self.parent, self.log, self.notices = address, token, parent, log, notices
        self.log_name = log_name
        self.uid = os.getuid()
        self.selector = selectors.DefaultSelector()
        self.pending: dict[int, _Pending] = {}
        self.jobs: dict[int, _Job] = {}  # child pid -> its caller's connection
        self.noticed: set[str] = set()
        self.stopping = False
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(address)  # inside a 0700 directory: only the owner (and root) can connect
        self.listener.listen(128)  # callers queue here while the imports run
        self.listener.setblocking(False)
        self.identity: dict | None = None
        self.gpu = False

    def say(self, text: str) -> None:
        print(text, file=self.log, flush=True)

    def refuse(self, conn: socket.socket, fds: list, why: Refused, who: str) -> None:
        for fd in fds:
            os.close(fd)
        try:
            conn.setblocking(False)
            conn.send(_REPLY.pack(b"R", 0))
        except OSError:
            pass
        conn.close()
        self.say(f"refused {who}: {_printable(why)}")
        if why.kind and why.kind not in self.noticed and self.notices is not None:
            self.noticed.add(why.kind)
            try:
                print(f"infcop warm start: {why}; such jobs run afresh (slower); see {self.log_name}",
                      file=self.notices, flush=True)
            except (OSError, ValueError, AttributeError):
                pass

    # -- the loop
    def serve(self, ready_fd: int | None = None) -> None:
        # The handlers go in before the ready byte: a `stop` right after `start` must find the server
        # able to tidy its private directory, not killed by the default action.
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if ready_fd is not None:
            os.write(ready_fd, b"1")
            os.close(ready_fd)
        try:  # whatever happens from here, the socket and its directory go with the server
            _preload(self.log)
            self.identity = _identity()
            self.gpu = _gpu_possible()
            self.selector.register(self.listener, selectors.EVENT_READ, "listener")
            while True:
                if (self.stopping or os.getppid() != self.parent) and self.listener.fileno() >= 0:
                    self.selector.unregister(self.listener)
                    self.listener.close()
                if self.listener.fileno() < 0 and not self.jobs and not self.pending:
                    return
                for key, _ in self.selector.select(0.05):
                    try:
                        if key.data == "listener":
                            self.accept()
                        elif key.data[0] == "pending":
                            self.read(key.data[1])
                        else:
                            self.caller_event(key.data[1])
                    except Exception as exc:  # one request's trouble never stops the others
                        self.say(f"internal error, going on: {_printable(repr(exc))}")
                self.expire()
                self.reap()
                self.kill_orphans()
        finally:
            if self.listener.fileno() >= 0:
                self.listener.close()
            remove_socket(self.address)

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        pid, uid, _ = peer_credentials(conn)
        if uid != self.uid:
            self.refuse(conn, [], Refused(f"a request from uid {uid} (pid {pid}), not the owner's (uid {self.uid})",
                                          "foreign uid"), f"uid {uid} pid {pid}")
            return
        conn.setblocking(False)
        self.pending[conn.fileno()] = _Pending(conn, pid, uid, time.monotonic() + REQUEST_DEADLINE)
        self.selector.register(conn, selectors.EVENT_READ, ("pending", conn.fileno()))

    def read(self, fd: int) -> None:
        p = self.pending[fd]
        try:
            data, fds, flags, _addr = socket.recv_fds(p.conn, 65536, 3)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            return self.drop(fd, Refused(f"receive failed: {exc}"))
        p.fds.extend(fds)
        if flags & socket.MSG_CTRUNC:
            return self.drop(fd, Refused("more file descriptors sent than the 3 expected"))
        if not data:
            return self.drop(fd, Refused("the caller hung up before its request was complete"))
        p.data.extend(data)
        if len(p.fds) > 3:
            return self.drop(fd, Refused(f"{len(p.fds)} file descriptors sent, 3 expected"))
        if len(p.data) < _HEADER.size:
            return
        size = _HEADER.unpack_from(p.data)[0]
        if size > MAX_REQUEST:
            return self.drop(fd, Refused(f"a request of {size} bytes; at most {MAX_REQUEST}"))
        if len(p.data) < _HEADER.size + size:
            return
        if len(p.data) > _HEADER.size + size:
            return self.drop(fd, Refused("bytes after the request"))
        self.selector.unregister(p.conn)
        del self.pending[fd]
        try:
            request = self.check(bytes(p.data[_HEADER.size:]), p.fds)
        except Refused as why:
            self.refuse(p.conn, p.fds, why, f"uid {p.uid} pid {p.pid}")
            return
        self.fork(p.conn, request, p.fds)

    def drop(self, fd: int, why: Refused) -> None:
        p = self.pending.pop(fd)
        self.selector.unregister(p.conn)
        self.refuse(p.conn, p.fds, why, f"uid {p.uid} pid {p.pid}")

    def expire(self) -> None:
        now = time.monotonic()
        for fd in [fd for fd, p in self.pending.items() if p.deadline < now]:
            self.drop(fd, Refused(f"no whole request within {REQUEST_DEADLINE:g} s"))

    def check(self, body: bytes, fds: list) -> dict:
        try:
            request = json.loads(body)
        except ValueError:
            raise Refused("not JSON") from None
        if not isinstance(request, dict):
            raise Refused(f"a request must be a mapping, not {type(request).__name__}")
        token = request.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.token.encode()):
            raise Refused("wrong or missing token", "wrong token")
        for key, kind in _FIELDS.items():
            if not isinstance(request.get(key), kind) or isinstance(request.get(key), bool):
                raise Refused(f"'{key}' must be {kind.__name__}, got {type(request.get(key)).__name__}")
        if not all(isinstance(a, str) for a in request["argv"]):
            raise Refused("argv must be a list of strings")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in request["env"].items()):
            raise Refused("env must map strings to strings")
        if not 0 <= request["umask"] <= 0o777:
            raise Refused("umask out of range")
        if not all(isinstance(s, int) and s in {int(x) for x in _SIGNALS} for s in request["ignored"]):
            raise Refused("ignored must list signal numbers")
        if len(fds) != 3:
            raise Refused(f"{len(fds)} file descriptors sent, 3 expected")
        other = {k: request[k] for k in self.identity if request[k] != self.identity[k]}
        if other:
            raise Refused("a job of another interpreter or infcop installation ("
                          + ", ".join(f"{k} {v!r}, here {self.identity[k]!r}" for k, v in other.items()) + ")",
                          "another installation")
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            raise Refused("CUDA is initialised in the warm-start process: a fork would inherit it", "cuda")
        if self.gpu and request["env"].get("CUDA_VISIBLE_DEVICES", "x").strip() not in ("", "-1"):
            raise Refused("this machine has a GPU a job may use (CUDA_VISIBLE_DEVICES='' keeps jobs on the "
                          "CPU and warm)", "gpu")
        return request

    def fork(self, conn: socket.socket, request: dict, fds: list) -> None:
        _flush()
        self.log.flush()
        inherited = [self.listener.fileno(), self.selector.fileno(), *(j.conn.fileno() for j in self.jobs.values()),
                     *(p.conn.fileno() for p in self.pending.values())]
        if self.notices is not None:
            inherited.append(self.notices.fileno())
        try:
            pid = os.fork()
        except OSError as exc:
            self.refuse(conn, fds, Refused(f"fork failed: {exc.strerror}", "fork failed"), "a request")
            return
        if pid == 0:
            _child(conn, request, fds, inherited)
        for fd in fds:
            os.close(fd)
        argv = request["argv"]
        self.jobs[pid] = _Job(conn, time.time(), _printable(" ".join(argv[:1] + argv[1:][-1:])))
        self.selector.register(conn, selectors.EVENT_READ, ("job", pid))
        try:
            conn.send(_REPLY.pack(b"P", pid))
        except OSError:
            pass  # the caller is gone: its hang-up kills the child below

    def caller_event(self, pid: int) -> None:
        """The caller of a running job sent something or hung up: a hang-up means it died (or read the
        child's status and left): the job goes with it."""
        job = self.jobs.get(pid)
        if job is None:
            return
        try:
            data = job.conn.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            return
        self.selector.unregister(job.conn)
        job.orphaned = time.monotonic() + HANG_UP_GRACE  # a child that reported its status is exiting by then

    def kill_orphans(self) -> None:
        now = time.monotonic()
        for pid, job in self.jobs.items():
            if job.orphaned is not None and job.orphaned <= now:
                job.orphaned = float("inf")
                try:
                    os.kill(pid, signal.SIGKILL)  # still our unreaped child: the pid cannot belong to anyone else
                except ProcessLookupError:
                    pass

    def reap(self) -> None:
        while self.jobs:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            job = self.jobs.pop(pid, None)
            if job is None:
                continue
            try:
                self.selector.unregister(job.conn)
            except (KeyError, ValueError):
                pass
            try:
                job.conn.send(_REPLY.pack(b"S", status))  # a caller that already has the child's word ignores it
            except OSError:
                pass
            job.conn.close()
            self.say(f"{job.what}: pid {pid}, status {status}, {time.time() - job.started:.1f} s")


# ------------------------------------------------------------------------------------- start and stop

@dataclass
class Handle:
    """A started server: its process, and the environment its jobs need to reach it."""
    proc: subprocess.Popen
    address: str
    token: str

    @property
    def env(self) -> dict:
        return {ADDRESS_ENV: self.address, PID_ENV: str(self.proc.pid), TOKEN_ENV: self.token}


def remove_socket(address: str) -> None:
    """The socket and its private directory, once the server is done with them."""
    for remove, path in ((os.unlink, address), (os.rmdir, os.path.dirname(address))):
        try:
            remove(path)
        except OSError:
            pass


def _private_directory() -> str:
    base = tempfile.gettempdir()
    if len(base) > 60:  # a Unix socket's path must fit in 107 bytes
        base = "/tmp"
    directory = tempfile.mkdtemp(prefix="infcop-warm-start-", dir=base)  # mode 0700, a new name
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError(errno.EPERM, f"'{directory}' is not a private directory")
    return directory


def start(log_path: str, notices=None, export: bool = True) -> Handle | None:
    """Start a server for this process's jobs, or None if turned off or it could not start. With `export`,
    this process's environment gets the jobs' variables (Snakemake passes it on to its jobs). `notices`
    (a stream, e.g. Snakemake's stderr) gets one line per kind of refusal."""
    if not enabled():
        return None
    try:
        directory = _private_directory()
    except OSError as exc:
        print(f"infcop warm start: off ({exc})", file=sys.stderr)
        return None
    address = os.path.join(directory, "socket")
    token = secrets.token_hex(32)
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    ready, ready_w = os.pipe()
    pass_fds = [ready_w]
    env = {**os.environ, **{v: "1" for v in THREAD_VARS}, TOKEN_ENV: token, READY_FD_ENV: str(ready_w),
           PARENT_ENV: str(os.getpid()), ADDRESS_ENV: address, LOG_ENV: log_path}
    for name in (PID_ENV, NOTICE_FD_ENV):
        env.pop(name, None)
    if notices is not None:
        try:
            notice_fd = notices.fileno()
            pass_fds.append(notice_fd)
            env[NOTICE_FD_ENV] = str(notice_fd)
        except (AttributeError, OSError, ValueError):
            pass
    # `-c` and the private directory as working directory: the server imports infcop as the jobs' `infcop`
    # command does (from the installation), never from a folder that happens to be here.
    code = "import sys; sys.path.pop(0); from infcop.warm_start import main; main()"
    with open(log_path, "a") as log:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=directory, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, pass_fds=pass_fds,
                                start_new_session=True)  # out of the terminal's Ctrl-C: jobs get it
    os.close(ready_w)
    try:
        listening = _wait_ready(ready, 30)
    finally:
        os.close(ready)
    handle = Handle(proc, address, token)
    if not listening:  # jobs run in process, as without it
        stop(handle)
        return None
    if export:
        os.environ.update(handle.env)
    return handle


def _wait_ready(fd: int, timeout: float) -> bool:
    """Whether the server wrote its ready byte within `timeout` seconds."""
    import select

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
        remove_socket(handle.address)


def main() -> None:
    """The server process (started by `start`): its settings come through the environment, not argv."""
    token = os.environ.pop(TOKEN_ENV)
    address = os.environ.pop(ADDRESS_ENV)
    ready_fd = int(os.environ.pop(READY_FD_ENV))
    parent = int(os.environ.pop(PARENT_ENV))
    notice_fd = os.environ.pop(NOTICE_FD_ENV, None)
    log_name = os.environ.pop(LOG_ENV, "the log")
    notices = open(int(notice_fd), "w", closefd=True) if notice_fd else None
    print(f"=== warm-start server {os.getpid()} started {time.strftime('%Y-%m-%dT%H:%M:%S')} ===", flush=True)
    try:
        server = Server(address, token, parent, sys.stdout, notices, log_name)
    except OSError as exc:
        print(f"cannot listen on {address}: {exc}", flush=True)
        return
    server.serve(ready_fd)


if __name__ == "__main__":
    main()
