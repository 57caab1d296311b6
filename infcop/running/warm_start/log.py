"""What the warm-start server reports: its log (one unbuffered line at a time, rate-limited, a failed write
skipped, never fatal) and its refusals (to the caller, to the log, and once per kind to Snakemake's output)."""
from __future__ import annotations

import os
import socket
import time

from .protocol import REPLY, printable

LOG_LINES_PER_SECOND = 20


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


class Refusals:
    """Refuses a request: closes the descriptors it passed, tells its caller (who then runs the job itself),
    logs why, and says each kind of refusal once on `notices` (a copy of Snakemake's standard error)."""

    def __init__(self, log: Log, notices=None, log_name: str = "the log"):
        self.log, self.notices, self.log_name = log, notices, log_name
        self.noticed: set[str] = set()

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
        self.log.say(f"refused {who}: {printable(why)}")
        if why.kind and why.kind not in self.noticed and self.notices is not None:
            self.noticed.add(why.kind)
            try:
                print(f"infcop warm start: {why}; such jobs run afresh (slower); see {self.log_name}",
                      file=self.notices, flush=True)
            except (OSError, ValueError, AttributeError):
                pass
