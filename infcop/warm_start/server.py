"""The warm-start process: one select loop that reads the owner's requests side by side, checks each (the
kernel's word on the caller's uid and context, the token, the request's shape), forks a child per job
and reports its status. Every failure of a request is a refusal: its connection and descriptors are closed
and its caller runs the job itself. Nothing a request, a full disk or a shortage of descriptors does stops
the loop."""
from __future__ import annotations

import errno
import hmac
import importlib
import json
import os
import re
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from .. import process_context
from .child import become_job, flush, open_fds
from .protocol import (FIELDS, HEADER, MAX_REQUEST, REPLY, REQUEST_DEADLINE, SIGNALS, TOKEN_LENGTH, identity,
                       peer_credentials, printable)

# What the children need, imported once here (each is skipped if it is not installed). torch._dynamo: what
# constructing the first torch.optim optimizer imports (about a second in every training job otherwise).
PRELOAD = ("torch", "torch._dynamo", "numpy", "pandas", "threadpoolctl", "scipy.stats", "sklearn.datasets",
           "infcop.steps", "infcop.tables", "infcop.compare")
HANG_UP_GRACE = 0.2  # seconds between a caller's hang-up and the kill of its job (if it has not exited)
MAX_PENDING = 32  # requests read at once; later callers wait in the listen backlog
ACCEPT_BACKOFF = (0.05, 2.0)  # seconds: the first and the longest pause of accept() when out of descriptors
LOG_LINES_PER_SECOND = 20
# A request is one mapping holding two lists and one mapping: 8 brackets outside its strings. A bound on
# them, checked before parsing, bounds the nesting that the parser would otherwise recurse into.
MAX_BRACKETS = 16
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_CMSG_CLOEXEC = getattr(socket, "MSG_CMSG_CLOEXEC", 0)


class Refused(Exception):
    """A request that is not run: the reason goes to the log (and, once per kind, to Snakemake's output)."""

    def __init__(self, reason: str, kind: str | None = None):
        super().__init__(reason)
        self.kind = kind  # None: the log only


class Log:
    """The server's log: one unbuffered append per line, at most LOG_LINES_PER_SECOND lines a second (the
    rest counted and said after), and a write that fails (a full disk) is counted, never raised."""

    def __init__(self, fd: int):
        self.fd = fd
        self.second, self.lines, self.suppressed, self.lost = 0, 0, 0, 0

    def say(self, text: str) -> None:
        now = int(time.monotonic())
        if now != self.second:
            if self.suppressed:
                self._write(f"({self.suppressed} lines not logged: more than {LOG_LINES_PER_SECOND} a second)")
            self.second, self.lines, self.suppressed = now, 0, 0
        if self.lines >= LOG_LINES_PER_SECOND:
            self.suppressed += 1
            return
        self.lines += 1
        self._write(text)

    def _write(self, text: str) -> None:
        try:
            os.write(self.fd, (text + "\n").encode("utf-8", "backslashreplace"))
        except OSError:
            self.lost += 1


def preload(log: Log) -> None:
    t0 = time.time()
    from ..plots import FIGURES, style

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
    log.say(f"preloaded in {time.time() - t0:.1f} s")


def gpu_possible() -> bool:
    """Whether a job may use a GPU, found without initialising CUDA here (that would make forks unsafe)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    if torch.backends.cuda.is_built() and any(n.startswith("nvidia") and n[6:].isdigit() for n in os.listdir("/dev")):
        return True
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_built() and sys.platform == "darwin")


def _clean(text: str, what: str) -> None:
    """A string the child can pass to the system: valid UTF-8 (no lone surrogate) and no NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(f"{what} is not valid UTF-8") from None
    if "\0" in text:
        raise Refused(f"{what} holds a NUL character")


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
        self.address, self.token, self.parent, self.notices = address, token, parent, notices
        self.log = log if isinstance(log, Log) else Log(log.fileno())
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
        self.listening = False  # registered with the selector (paused when busy or out of descriptors)
        self.paused_until, self.backoff = 0.0, ACCEPT_BACKOFF[0]
        # One descriptor in reserve: freed when accept() finds none left, it lets the server take the waiting
        # caller and refuse it (the caller then runs its job at once) instead of leaving it waiting.
        self.reserve: int | None = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.keep: set[int] = set()  # the descriptors of the preloaded libraries: a child keeps those
        self.identity: dict | None = None
        self.gpu = False

    def say(self, text: str) -> None:
        self.log.say(text)

    def refuse(self, conn: socket.socket, fds: list, why: Refused, who: str) -> None:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            conn.setblocking(False)
            conn.send(REPLY.pack(b"R", 0))
        except OSError:
            pass
        conn.close()
        self.say(f"refused {who}: {printable(why)}")
        if why.kind and why.kind not in self.noticed and self.notices is not None:
            self.noticed.add(why.kind)
            try:
                print(f"infcop warm start: {why}; such jobs run afresh (slower); see {self.log_name}",
                      file=self.notices, flush=True)
            except (OSError, ValueError, AttributeError):
                pass

    # -- the loop
    def serve(self, ready_fd: int | None = None, on_exit=None) -> None:
        # The handlers go in before the ready byte: a `stop` right after `start` must find the server
        # able to tidy its private directory, not killed by the default action.
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if ready_fd is not None:
            os.write(ready_fd, b"1")
            os.close(ready_fd)
        try:  # whatever happens from here, the socket and its directory go with the server
            preload(self.log)
            self.identity = identity()
            self.gpu = gpu_possible()
            self.keep = open_fds() - self._own_fds()
            while True:
                if (self.stopping or os.getppid() != self.parent) and self.listener.fileno() >= 0:
                    self._listen(False)
                    self.listener.close()
                if self.listener.fileno() < 0 and not self.jobs and not self.pending:
                    return
                self._listen(self.listener.fileno() >= 0 and len(self.pending) < MAX_PENDING
                             and time.monotonic() >= self.paused_until)
                for key, _ in self.selector.select(0.05):
                    self.dispatch(key.data)
                self.expire()
                self.reap()
                self.kill_orphans()
        finally:
            if self.listener.fileno() >= 0:
                self.listener.close()
            if on_exit is not None:
                on_exit()

    def _listen(self, on: bool) -> None:
        if on != self.listening:
            if on:
                self.selector.register(self.listener, selectors.EVENT_READ, "listener")
            else:
                self.selector.unregister(self.listener)
            self.listening = on

    def _own_fds(self) -> set[int]:
        """Descriptors of the server's own: the listener, the selector, the reserve, the notices, every
        connection and every descriptor a caller passed. No child keeps any of them."""
        own = {self.listener.fileno(), self.selector.fileno(), self.reserve}
        if self.notices is not None:
            try:
                own.add(self.notices.fileno())
            except (OSError, ValueError):
                pass
        for p in self.pending.values():
            own.add(p.conn.fileno())
            own.update(p.fds)
        own.update(j.conn.fileno() for j in self.jobs.values())
        return {fd for fd in own if fd is not None and fd >= 0}

    def dispatch(self, data) -> None:
        try:
            if data == "listener":
                self.accept()
            elif data[0] == "pending":
                self.read(data[1])
            else:
                self.caller_event(data[1])
        except Exception as exc:  # one request's trouble never stops the others, nor leaves it open
            if data != "listener" and data[0] == "pending" and data[1] in self.pending:
                self.drop(data[1], Refused(f"internal error: {printable(repr(exc))}"))
            else:
                self.say(f"internal error, going on: {printable(repr(exc))}")

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                raise
            return self.out_of_descriptors(exc)
        self.backoff = ACCEPT_BACKOFF[0]
        if self.reserve is None:
            try:
                self.reserve = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                pass
        try:
            pid, uid, _ = peer_credentials(conn)
        except OSError as exc:
            return self.refuse(conn, [], Refused(f"no peer credentials: {exc.strerror}"), "a caller")
        if uid != self.uid:
            return self.refuse(conn, [], Refused(f"a request from uid {uid} (pid {pid}), not the owner's "
                                                 f"(uid {self.uid})", "foreign uid"), f"uid {uid} pid {pid}")
        conn.setblocking(False)
        self.pending[conn.fileno()] = _Pending(conn, pid, uid, time.monotonic() + REQUEST_DEADLINE)
        self.selector.register(conn, selectors.EVENT_READ, ("pending", conn.fileno()))

    def out_of_descriptors(self, exc: OSError) -> None:
        """accept() found no descriptor: refuse the waiting caller through the reserve, pause accepting
        (longer each time, up to the longest back-off) instead of spinning on a listener that stays ready."""
        if self.reserve is not None:
            os.close(self.reserve)
            self.reserve = None
            try:
                conn, _ = self.listener.accept()
            except OSError:
                conn = None
            if conn is not None:
                self.refuse(conn, [], Refused(f"out of file descriptors ({exc.strerror})", "descriptors"), "a caller")
            try:
                self.reserve = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                pass
        self.say(f"accept: {exc.strerror}; pausing {self.backoff:g} s")
        self.paused_until = time.monotonic() + self.backoff
        self.backoff = min(2 * self.backoff, ACCEPT_BACKOFF[1])

    def read(self, fd: int) -> None:
        p = self.pending[fd]
        try:  # passed descriptors close on exec; forks close them explicitly (they are not in `keep`)
            data, fds, flags, _addr = socket.recv_fds(p.conn, 65536, 3, _CMSG_CLOEXEC)
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
        if len(p.data) < HEADER.size:
            return
        size = HEADER.unpack_from(p.data)[0]
        if size > MAX_REQUEST:
            return self.drop(fd, Refused(f"a request of {size} bytes; at most {MAX_REQUEST}"))
        if len(p.data) < HEADER.size + size:
            return
        if len(p.data) > HEADER.size + size:
            return self.drop(fd, Refused("bytes after the request"))
        self.selector.unregister(p.conn)
        del self.pending[fd]
        try:
            request, caller = self.check(bytes(p.data[HEADER.size:]), p.fds, p.pid)
        except Refused as why:
            return self.refuse(p.conn, p.fds, why, f"uid {p.uid} pid {p.pid}")
        except Exception as exc:  # whatever a request does to the checks, it is refused, never left open
            return self.refuse(p.conn, p.fds, Refused(f"a request that could not be checked: {printable(repr(exc))}"),
                               f"uid {p.uid} pid {p.pid}")
        self.fork(p.conn, request, p.fds, caller)

    def drop(self, fd: int, why: Refused) -> None:
        p = self.pending.pop(fd)
        try:
            self.selector.unregister(p.conn)
        except (KeyError, ValueError):
            pass
        self.refuse(p.conn, p.fds, why, f"uid {p.uid} pid {p.pid}")

    def expire(self) -> None:
        now = time.monotonic()
        for fd in [fd for fd, p in self.pending.items() if p.deadline < now]:
            self.drop(fd, Refused(f"no whole request within {REQUEST_DEADLINE:g} s"))

    def check(self, body: bytes, fds: list, pid: int) -> tuple[dict, process_context.Context]:
        """The request, and the context (read from the kernel) that its child must take on; Refused if any
        check fails."""
        brackets = sum(map(_STRINGS.sub(b"", body).count, (b"[", b"{")))
        if brackets > MAX_BRACKETS // 2:
            raise Refused(f"{brackets} lists and mappings; a request has 4")
        try:
            request = json.loads(body)
        except ValueError:
            raise Refused("not JSON") from None
        if not isinstance(request, dict):
            raise Refused(f"a request must be a mapping, not {type(request).__name__}")
        token = request.get("token")
        if not (isinstance(token, str) and len(token) == TOKEN_LENGTH and token.isascii()
                and hmac.compare_digest(token.encode("ascii"), self.token.encode("ascii"))):
            raise Refused("wrong or missing token", "wrong token")
        for key, kind in FIELDS.items():
            if not isinstance(request.get(key), kind) or isinstance(request.get(key), bool):
                raise Refused(f"'{key}' must be {kind.__name__}, got {type(request.get(key)).__name__}")
        if not all(isinstance(a, str) for a in request["argv"]):
            raise Refused("argv must be a list of strings")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in request["env"].items()):
            raise Refused("env must map strings to strings")
        for what, text in [("cwd", request["cwd"]), *((f"argument {i}", a) for i, a in enumerate(request["argv"])),
                           *((f"variable {k[:40]!r}", k + v) for k, v in request["env"].items()),
                           *((key, request[key]) for key in ("python", "infcop", "version"))]:
            _clean(text, what)
        if not 0 <= request["umask"] <= 0o777:
            raise Refused("umask out of range")
        if not all(isinstance(s, int) and s in {int(x) for x in SIGNALS} for s in request["ignored"]):
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
        try:
            caller = process_context.read(pid)
            problems = process_context.plan(caller, process_context.read(0))
        except process_context.ContextError as exc:
            raise Refused(str(exc), "context") from None
        if problems:
            raise Refused("the job runs inside what a forked child cannot reproduce: " + "; ".join(problems),
                          "confinement")
        return request, caller

    def fork(self, conn: socket.socket, request: dict, fds: list, caller) -> None:
        flush()
        keep = self.keep - self._own_fds()
        try:
            pid = os.fork()
        except OSError as exc:
            self.refuse(conn, fds, Refused(f"fork failed: {exc.strerror}", "fork failed"), "a request")
            return
        if pid == 0:
            become_job(conn, request, fds, keep, caller)
        for fd in fds:
            os.close(fd)
        argv = request["argv"]
        self.jobs[pid] = _Job(conn, time.time(), printable(" ".join(argv[:1] + argv[1:][-1:])))
        self.selector.register(conn, selectors.EVENT_READ, ("job", pid))
        try:
            conn.send(REPLY.pack(b"P", pid))
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
                job.conn.send(REPLY.pack(b"S", status))  # a caller that already has the child's word ignores it
            except OSError:
                pass
            job.conn.close()
            self.say(f"{job.what}: pid {pid}, status {status}, {time.time() - job.started:.1f} s")
