"""The server's side of a connection until its request is whole: accepting on the listening socket (the
owner's uid only, by the kernel's SO_PEERCRED), at most MAX_PENDING requests read side by side, each
whole, within limits and before its deadline, and accepting that pauses (with one descriptor in reserve
to refuse the waiting caller) when the process is out of descriptors. Every failure is a refusal."""
from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from dataclasses import dataclass, field

from .log import Refused
from .protocol import HEADER, MAX_REQUEST, REQUEST_DEADLINE, peer_credentials

MAX_PENDING = 32  # requests read at once; later callers wait in the listen backlog
ACCEPT_BACKOFF = (0.05, 2.0)  # seconds: the first and the longest pause of accept() when out of descriptors
_CMSG_CLOEXEC = getattr(socket, "MSG_CMSG_CLOEXEC", 0)


@dataclass
class Pending:
    """A connection whose request is being read: the caller the kernel reported, and what came so far."""
    conn: socket.socket
    pid: int
    uid: int
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    fds: list = field(default_factory=list)


class Connections:
    """The listening socket and the requests being read. `refuse(conn, fds, why, who)` refuses one;
    `complete(pending)` gets each whole request (no longer registered with the selector nor pending)."""

    def __init__(self, address: str, selector: selectors.BaseSelector, refuse, say, complete):
        self.selector, self.refuse, self.say, self.complete = selector, refuse, say, complete
        self.uid = os.getuid()
        self.pending: dict[int, Pending] = {}
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(address)  # inside a 0700 directory: only the owner (and root) can connect
        self.listener.listen(128)  # callers queue here while the imports run
        self.listener.setblocking(False)
        self.listening = False  # registered with the selector (paused when busy or out of descriptors)
        self.paused_until, self.backoff = 0.0, ACCEPT_BACKOFF[0]
        # One descriptor in reserve: freed when accept() finds none left, it lets the server take the waiting
        # caller and refuse it (the caller then runs its job at once) instead of leaving it waiting.
        self.reserve: int | None = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    @property
    def closed(self) -> bool:
        return self.listener.fileno() < 0

    def close(self) -> None:
        """Stop accepting (the requests being read go on)."""
        if not self.closed:
            self._listen(False)
            self.listener.close()

    def update(self) -> None:
        """Listen while open, not too busy and not pausing."""
        self._listen(not self.closed and len(self.pending) < MAX_PENDING and time.monotonic() >= self.paused_until)

    def _listen(self, on: bool) -> None:
        if on != self.listening:
            if on:
                self.selector.register(self.listener, selectors.EVENT_READ, "listener")
            else:
                self.selector.unregister(self.listener)
            self.listening = on

    def own_fds(self) -> set:
        """The listener, the reserve, every connection being read and every descriptor its caller passed."""
        own = {self.listener.fileno(), self.reserve}
        for p in self.pending.values():
            own.add(p.conn.fileno())
            own.update(p.fds)
        return own

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
        self.pending[conn.fileno()] = Pending(conn, pid, uid, time.monotonic() + REQUEST_DEADLINE)
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
        self.complete(p)

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
