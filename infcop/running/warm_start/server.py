"""The warm-start process: one select loop that reads the owner's requests side by side, checks each (the
kernel's word on the caller's uid and context, the token, the request's shape), forks a child per job
and reports its status. Every failure of a request is a refusal: its connection and descriptors are closed
and its caller runs the job itself. Nothing a request, a full disk or a shortage of descriptors does stops
the loop.

This module holds the loop and ties the parts together: `connections` (accepting and reading requests),
`checks` (what a whole request must be), `jobs` (forking, watching and reaping the children), `log` (the
log and the refusals) and `preload` (what is done once before serving)."""
from __future__ import annotations

import os
import selectors
import signal
import socket

from . import checks
from .child import flush, open_fds
from .connections import Connections, Pending
from .jobs import Jobs
from .log import Log, Refusals, Refused
from .preload import gpu_possible, preload
from .protocol import HEADER, identity, printable


class Server:
    """Accepts the owner's requests and forks their jobs; one select loop, so no caller can hold up another."""

    def __init__(self, address: str, token: str, parent: int, log, notices=None, log_name: str = "the log"):
        self.address, self.token, self.parent, self.notices = address, token, parent, notices
        self.log = log if isinstance(log, Log) else Log(log.fileno())
        self.log_name = log_name
        self.refusals = Refusals(self.log, notices, log_name)
        self.selector = selectors.DefaultSelector()
        self.jobs = Jobs(self.selector, self.refuse, self.say)
        self.stopping = False
        self.connections = Connections(address, self.selector, self.refuse, self.say, self.run)
        self.keep: set[int] = set()  # the descriptors of the preloaded libraries: a child keeps those
        self.identity: dict | None = None
        self.gpu = False

    @property
    def listener(self) -> socket.socket:
        return self.connections.listener

    def say(self, text: str) -> None:
        self.log.say(text)

    def refuse(self, conn: socket.socket, fds: list, why: Refused, who: str) -> None:
        self.refusals.refuse(conn, fds, why, who)

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
                if self.stopping or os.getppid() != self.parent:
                    self.connections.close()
                if self.connections.closed and not self.jobs.running and not self.connections.pending:
                    return
                self.connections.update()
                for key, _ in self.selector.select(0.05):
                    self.dispatch(key.data)
                self.connections.expire()
                self.jobs.reap()
                self.jobs.kill_orphans()
        finally:
            if self.listener.fileno() >= 0:
                self.listener.close()
            if on_exit is not None:
                on_exit()

    def _own_fds(self) -> set[int]:
        """Descriptors of the server's own: the listener, the selector, the reserve, the notices, every
        connection and every descriptor a caller passed. No child keeps any of them."""
        own = {self.selector.fileno(), *self.connections.own_fds(), *self.jobs.own_fds()}
        if self.notices is not None:
            try:
                own.add(self.notices.fileno())
            except (OSError, ValueError):
                pass
        return {fd for fd in own if fd is not None and fd >= 0}

    def dispatch(self, data) -> None:
        try:
            if data == "listener":
                self.connections.accept()
            elif data[0] == "pending":
                self.connections.read(data[1])
            else:
                self.jobs.caller_event(data[1])
        except Exception as exc:  # one request's trouble never stops the others, nor leaves it open
            if data != "listener" and data[0] == "pending" and data[1] in self.connections.pending:
                self.connections.drop(data[1], Refused(f"internal error: {printable(repr(exc))}"))
            else:
                self.say(f"internal error, going on: {printable(repr(exc))}")

    def run(self, p: Pending) -> None:
        """A whole request: checked, then its job forked; refused if any check fails."""
        try:
            request, caller = self.check(bytes(p.data[HEADER.size:]), p.fds, p.pid)
        except Refused as why:
            return self.refuse(p.conn, p.fds, why, f"uid {p.uid} pid {p.pid}")
        except Exception as exc:  # whatever a request does to the checks, it is refused, never left open
            return self.refuse(p.conn, p.fds, Refused(f"a request that could not be checked: {printable(repr(exc))}"),
                               f"uid {p.uid} pid {p.pid}")
        self.fork(p.conn, request, p.fds, caller)

    def check(self, body: bytes, fds: list, pid: int):
        """The request, and the context (read from the kernel) that its child must take on; Refused if any
        check fails."""
        return checks.check(body, fds, pid, self.token, self.identity, self.gpu)

    def fork(self, conn: socket.socket, request: dict, fds: list, caller) -> None:
        flush()
        keep = self.keep - self._own_fds()
        self.jobs.fork(conn, request, fds, caller, keep)
