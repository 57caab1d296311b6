"""Warm start: one process per local workflow run imports torch, pandas and matplotlib once and forks a
child for each `infcop` job, so a job skips the seconds of imports a fresh interpreter pays (on small data
sets most of a job's time).

The workflow's `onstart` starts the server (`start`) for local runs only and hands its address to the jobs
in INFCOP_WARM_START_ADDRESS; `infcop` then sends its arguments, working directory, environment, umask,
process group and standard streams (as file descriptors) to the server (`run_remote`), which forks a child
that runs the command exactly as the process itself would have. The calling process stays the job: it
forwards signals to the child, and exits with the child's status (or dies of the child's signal). If the
calling process dies (a kill of the job, of Snakemake, or of the whole job tree), the child dies at once:
it watches its connection. Without a server, or if it refuses (another interpreter or infcop), the command
runs in process, as always. INFCOP_WARM_START=off turns it off (e.g. to measure a job's memory with
Snakemake's benchmark files, which see only the calling process).
"""
from __future__ import annotations

import io
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid

ADDRESS_ENV = "INFCOP_WARM_START_ADDRESS"
SWITCH_ENV = "INFCOP_WARM_START"
# What the children need, imported once here (each is skipped if it is not installed).
PRELOAD = ("torch", "numpy", "pandas", "infcop.steps", "infcop.tables", "infcop.compare")
_REPLY = struct.Struct("!cq")  # b"P" + child pid, b"S" + wait status, b"R" + 0 (refused: run in process)
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def enabled() -> bool:
    return os.environ.get(SWITCH_ENV, "on").strip().lower() not in ("off", "0", "no", "false")


def _identity() -> dict:
    """Who may run whose commands: the same interpreter and the same infcop installation."""
    import infcop

    return {"python": sys.prefix, "infcop": os.path.realpath(infcop.__file__), "version": infcop.__version__}


def _new_address() -> str:
    name = f"infcop-warm-start-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    if sys.platform.startswith("linux"):
        return "@" + name  # an abstract socket ("@" stands for its leading NUL): no file, no path-length limit
    import tempfile

    return os.path.join(tempfile.gettempdir(), name + ".sock")


def _sockaddr(address: str) -> str:
    return "\0" + address[1:] if address.startswith("@") else address


# ---------------------------------------------------------------------------------------------- client

def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def run_remote(argv: list[str]) -> int | None:
    """Run `infcop argv` in a child of the warm-start server; its exit status, or None to run in process
    (no server, or it refused). Dies of the child's signal if the child died of one."""
    address = os.environ.get(ADDRESS_ENV)
    if not address or not enabled():
        return None
    from .checkpoints import current_umask

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ignored = [int(s) for s in _SIGNALS if signal.getsignal(s) is signal.SIG_IGN]  # e.g. SIGINT under nohup &
    request = json.dumps({"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ), "umask": current_umask(),
                          "pgid": os.getpgid(0), "ignored": ignored, **_identity()}).encode()
    try:
        sock.connect(_sockaddr(address))
        socket.send_fds(sock, [struct.pack("!I", len(request))], [0, 1, 2])
        sock.sendall(request)
        reply = _recv_exactly(sock, _REPLY.size)
    except OSError:
        reply = None
    kind, child = _REPLY.unpack(reply) if reply is not None else (b"R", 0)
    if kind != b"P":
        sock.close()
        return None  # nothing was started: run in process

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for s in _SIGNALS:
        if int(s) not in ignored:
            signal.signal(s, forward)
    reply = _recv_exactly(sock, _REPLY.size)
    if reply is None:
        print("infcop: the warm-start server stopped before it reported the job's exit status; run the "
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


# ---------------------------------------------------------------------------------------------- server

def _preload(log) -> None:
    import importlib

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


def _std_stream(fd: int):
    """A text stream on `fd` as a fresh interpreter makes it: unbuffered under PYTHONUNBUFFERED, else
    line-buffered on a terminal (stderr always), block-buffered otherwise."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    raw = io.FileIO(fd, "wb", closefd=False)
    return io.TextIOWrapper(raw if unbuffered else io.BufferedWriter(raw), encoding=sys.stdout.encoding or "utf-8",
                            errors="backslashreplace" if fd == 2 else "strict", write_through=unbuffered,
                            line_buffering=not unbuffered and (fd == 2 or os.isatty(fd)))


def _child(conn: socket.socket, request: dict, fds: list[int], server_sockets: list) -> None:
    """In the forked child: become the job, run the command, exit with its status. Never returns."""
    code = 1
    try:
        for other in server_sockets:  # another job's connection held here would hide its caller's death
            other.close()
        for s in _SIGNALS + (signal.SIGCHLD,):
            signal.signal(s, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for s in request.get("ignored", []):  # what the caller ignores, its job ignores, as a fresh process would
            signal.signal(s, signal.SIG_IGN)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop(ADDRESS_ENV, None)
        for path in reversed([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]):
            if path not in sys.path:
                sys.path.insert(0, path)
        import importlib

        importlib.invalidate_caches()  # files written since the server started (e.g. plugins) are found
        sys.stdin = io.TextIOWrapper(io.open(0, "rb", closefd=False))
        sys.stdout = _std_stream(1)
        sys.stderr = _std_stream(2)
        sys.argv = ["infcop", *request["argv"]]
        from . import faults

        faults.job_group = request["pgid"]  # a fault test's kill takes the job's group, not the server's

        def die_with_caller():
            try:
                while conn.recv(64):
                    pass
            except OSError:
                pass
            os.kill(os.getpid(), signal.SIGKILL)  # the calling process is gone: so is the job

        threading.Thread(target=die_with_caller, daemon=True).start()
        from .cli import main

        code = main(request["argv"])
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
    os._exit(code if isinstance(code, int) else 1)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _accept(listener, conns: dict, log, mine: dict) -> None:
    conn, _ = listener.accept()
    conn.settimeout(10)
    fds: list[int] = []
    try:
        header, fds, _flags, _addr = socket.recv_fds(conn, 4, 3)
        body = _recv_exactly(conn, struct.unpack("!I", header)[0]) if len(header) == 4 else None
        request = json.loads(body) if body else None
    except (OSError, ValueError):
        request = None
    if (request is None or len(fds) != 3
            or any(request.get(k) != v for k, v in mine.items())):
        for fd in fds:
            os.close(fd)
        try:
            conn.sendall(_REPLY.pack(b"R", 0))
        except OSError:
            pass
        conn.close()
        print(f"refused a request (another interpreter or infcop: {request and request.get('python')})",
              file=log, flush=True)
        return
    conn.settimeout(None)
    _flush()
    log.flush()
    pid = os.fork()
    if pid == 0:
        _child(conn, request, fds, [listener] + [c for c, _, _ in conns.values()])
    for fd in fds:
        os.close(fd)
    conns[pid] = (conn, time.time(), " ".join(request["argv"][:1] + request["argv"][1:][-1:]))
    try:
        conn.sendall(_REPLY.pack(b"P", pid))
    except OSError:
        pass  # the caller is gone; its child notices and dies


def _reap(conns: dict, log) -> None:
    while conns:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn, started, what = conns.pop(pid)
        try:
            conn.sendall(_REPLY.pack(b"S", status))
        except OSError:
            pass
        conn.close()
        print(f"{what}: pid {pid}, status {status}, {time.time() - started:.1f} s", file=log, flush=True)


def serve(address: str, parent: int, log=sys.stderr, ready_fd: int | None = None) -> None:
    """Listen on `address` until told to stop (SIGTERM) or `parent` is gone, then wait for the children.
    `ready_fd` gets a byte once callers can connect."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(_sockaddr(address))
    listener.listen(128)  # callers queue here while the imports run
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _preload(log)
    conns: dict = {}
    mine = _identity()
    try:
        while True:
            done = bool(stop) or os.getppid() != parent
            if done and not conns:
                return
            ready, _, _ = select.select([] if done else [listener], [], [], 0.02)
            if ready:
                _accept(listener, conns, log, mine)
            _reap(conns, log)
    finally:
        listener.close()
        if not address.startswith("@"):
            try:
                os.unlink(address)
            except OSError:
                pass


def start(log_path: str) -> subprocess.Popen | None:
    """Start a server for this process's jobs (their environment gets its address), or None if turned off."""
    if not enabled():
        return None
    address = _new_address()
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    ready, ready_w = os.pipe()
    with open(log_path, "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "infcop.warm_start", address, str(os.getpid()), str(ready_w)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, pass_fds=(ready_w,),
                                start_new_session=True)  # out of the terminal's Ctrl-C: jobs get it
    os.close(ready_w)
    try:
        listening = select.select([ready], [], [], 30)[0] and os.read(ready, 1) == b"1"
    finally:
        os.close(ready)
    if not listening:  # jobs run in process, as without it
        stop(proc)
        return None
    os.environ[ADDRESS_ENV] = address
    return proc


def stop(proc: subprocess.Popen | None) -> None:
    """Let the server go once its children are done (it also goes by itself when its parent does)."""
    os.environ.pop(ADDRESS_ENV, None)
    if proc is not None and proc.poll() is None:
        proc.terminate()


if __name__ == "__main__":
    print(f"=== warm-start server {os.getpid()} started {time.strftime('%Y-%m-%dT%H:%M:%S')} ===", flush=True)
    serve(sys.argv[1], int(sys.argv[2]), log=sys.stdout, ready_fd=int(sys.argv[3]))
