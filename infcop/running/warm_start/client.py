"""The job's side: an `infcop` command hands itself to the warm-start process and stays the job (signals
forwarded, the child's exit status or signal its own), or runs in its own process when there is no server,
it refuses, or it cannot make its child the process this one is."""
from __future__ import annotations

import json
import os
import signal
import socket
import sys

from .protocol import (FIRST_REPLY_DEADLINE, HEADER, JOB_ENV, REPLY, SIGNALS, SWITCH_ENV, enabled, identity,
                       peer_credentials, private_socket_problem, supported)

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
    if not (address and pid and token) or not enabled() or supported():
        return None
    try:
        server_pid = int(pid)
    except ValueError:
        return None
    sock = _connect(address, server_pid)
    if sock is None:
        return None
    from ..checkpoints import current_umask

    ignored = [int(s) for s in SIGNALS if signal.getsignal(s) is signal.SIG_IGN]  # e.g. SIGINT under nohup &
    env = {k: v for k, v in os.environ.items() if k not in JOB_ENV}
    request = json.dumps({"token": token, "argv": list(argv), "cwd": os.getcwd(), "env": env,
                          "umask": current_umask(), "pgid": os.getpgid(0), "ignored": ignored,
                          **identity()}).encode()
    try:
        socket.send_fds(sock, [HEADER.pack(len(request))], [0, 1, 2])
        sock.sendall(request)
        reply = _recv_exactly(sock, REPLY.size)  # within FIRST_REPLY_DEADLINE
    except OSError:  # socket.timeout included
        reply = None
    kind, child = REPLY.unpack(reply) if reply is not None else (b"R", 0)
    if kind != b"P" or child <= 0:
        sock.close()  # the server kills a child whose caller has gone: nothing runs twice
        return None
    sock.settimeout(None)  # the job may run for hours

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    before = {s: signal.signal(s, forward) for s in SIGNALS if int(s) not in ignored}
    try:
        reply = _recv_exactly(sock, REPLY.size)
    except OSError:
        reply = None
    if reply is not None and reply[:1] == b"R":  # the child could not become this process: run it here
        for s, handler in before.items():
            signal.signal(s, handler)
        sock.close()
        return None
    if reply is None:
        print("infcop: the warm-start job ended without reporting its exit status (killed?); run the "
              f"workflow again (or with {SWITCH_ENV}=off)", file=sys.stderr)
        return 1
    status = REPLY.unpack(reply)[1]
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        sys.stdout.flush()
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)  # die as the job would have
        return 128 + sig
    return os.waitstatus_to_exitcode(status)


