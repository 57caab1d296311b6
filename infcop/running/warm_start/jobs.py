"""The life of a forked job, seen from the server: forking the child for a checked request, watching its
caller's connection (a caller that hangs up takes its job with it, killed after a short grace), and
reaping each child and reporting its status to its caller and the log."""
from __future__ import annotations

import os
import selectors
import signal
import socket
import time
from dataclasses import dataclass

from .child import become_job
from .log import Refused
from .protocol import REPLY, printable

HANG_UP_GRACE = 0.2  # seconds between a caller's hang-up and the kill of its job (if it has not exited)


@dataclass
class Job:
    """A running child: its caller's connection, and what the log says of it."""
    conn: socket.socket
    started: float
    what: str
    orphaned: float | None = None  # when its caller hung up (+ grace): the moment to kill it


class Jobs:
    """The running children, by pid. `refuse(conn, fds, why, who)` refuses a request that cannot be forked."""

    def __init__(self, selector: selectors.BaseSelector, refuse, say):
        self.selector, self.refuse, self.say = selector, refuse, say
        self.running: dict[int, Job] = {}  # child pid -> its caller's connection

    def own_fds(self) -> set:
        """The connections of the running jobs' callers."""
        return {j.conn.fileno() for j in self.running.values()}

    def fork(self, conn: socket.socket, request: dict, fds: list, caller, keep: set[int]) -> None:
        """Fork the child that becomes the job (keeping only `keep` of the server's descriptors)."""
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
        self.running[pid] = Job(conn, time.time(), printable(" ".join(argv[:1] + argv[1:][-1:])))
        self.selector.register(conn, selectors.EVENT_READ, ("job", pid))
        try:
            conn.send(REPLY.pack(b"P", pid))
        except OSError:
            pass  # the caller is gone: its hang-up kills the child below

    def caller_event(self, pid: int) -> None:
        """The caller of a running job sent something or hung up: a hang-up means it died (or read the
        child's status and left): the job goes with it."""
        job = self.running.get(pid)
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
        for pid, job in self.running.items():
            if job.orphaned is not None and job.orphaned <= now:
                job.orphaned = float("inf")
                try:
                    os.kill(pid, signal.SIGKILL)  # still our unreaped child: the pid cannot belong to anyone else
                except ProcessLookupError:
                    pass

    def reap(self) -> None:
        while self.running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            job = self.running.pop(pid, None)
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
