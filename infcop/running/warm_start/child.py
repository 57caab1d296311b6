"""The forked child: it becomes its caller's process (context, descriptors, signals, directory, environment,
umask, streams, thread counts), runs the command and reports its exit status itself. Never returns."""
from __future__ import annotations

import importlib
import io
import os
import signal
import socket
import sys
import threading

from .. import process_context
from .protocol import JOB_ENV, REPLY, SIGNALS, printable
from .threads import apply_thread_counts

ENTRY_POINT = "infcop.cli:main"  # by name: importing cli here would make an import circle


def std_stream(fd: int):
    """A text stream on `fd` as a fresh interpreter makes it: unbuffered under PYTHONUNBUFFERED, else
    line-buffered on a terminal (stderr always), block-buffered otherwise."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    raw = io.FileIO(fd, "wb", closefd=False)
    return io.TextIOWrapper(raw if unbuffered else io.BufferedWriter(raw), encoding=sys.stdout.encoding or "utf-8",
                            errors="backslashreplace" if fd == 2 else "strict", write_through=unbuffered,
                            line_buffering=not unbuffered and (fd == 2 or os.isatty(fd)))


def flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def entry_point():
    module, _, name = ENTRY_POINT.partition(":")
    return getattr(importlib.import_module(module), name)


def open_fds() -> set[int]:
    listed = {int(name) for name in os.listdir("/proc/self/fd")}
    open_now = set()
    for fd in listed:  # (the listing's own descriptor is closed by now)
        try:
            os.fstat(fd)
            open_now.add(fd)
        except OSError:
            pass
    return open_now


def close_all_but(keep: set[int]) -> None:
    """Close every descriptor not in `keep`: the listener, the log's and the notices' copies, other jobs'
    connections and other callers' passed streams (holding them would hide their callers' deaths and keep
    their pipes open)."""
    for fd in open_fds() - keep:
        try:
            os.close(fd)
        except OSError:
            pass


def become_job(conn: socket.socket, request: dict, fds: list[int], keep: set[int], caller) -> None:
    """In the forked child: take on the caller's context `caller` first (anything that cannot be reproduced
    sends the caller back to run the command itself), then run the command, report and exit with its
    status."""
    code = 1
    reported = []
    try:
        close_all_but(keep | {0, 1, 2, conn.fileno(), *fds})
        try:
            process_context.apply(caller)
        except process_context.ContextError as exc:
            try:  # fd 1 is still the server's log
                os.write(1, f"refused {printable(request['argv'][:1])}: {printable(exc)}; its caller runs it\n".encode())
                conn.send(REPLY.pack(b"R", 0))
            except OSError:
                pass
            os._exit(0)
        for s in SIGNALS + (signal.SIGCHLD,):
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
        sys.stdout = std_stream(1)
        sys.stderr = std_stream(2)
        sys.argv = ["infcop", *request["argv"]]
        from .. import faults

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
        code = entry_point()(request["argv"])
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    flush()
    code = code if isinstance(code, int) and 0 <= code < 256 else 1
    reported.append(True)
    try:  # the job's own word: right even if the server has gone since
        conn.send(REPLY.pack(b"S", code << 8))
    except OSError:
        pass
    os._exit(code)

