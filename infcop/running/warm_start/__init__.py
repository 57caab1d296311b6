"""Warm start: one process per local workflow run imports torch, pandas and matplotlib once and forks a
child for each `infcop` job, so a job skips the seconds of imports a fresh interpreter pays (on small data
sets most of a job's time). Linux only (it needs the kernel's SO_PEERCRED and /proc); elsewhere every job
starts afresh.

The workflow's `onstart` starts the server (`launch.start`) for local runs only. It listens on a Unix
socket in a private directory (mode 0700, made by `mkdtemp`) and hands three things to the jobs through
their environment, never their command line: the socket's path, the server's pid and a random per-run
token. `infcop` (`client.run_remote`) checks the directory and the socket are its own uid's, connects,
asks the kernel who answered (the owner's uid and the recorded pid, or it sends nothing and runs afresh),
then sends the token, its arguments, working directory, environment, umask and standard streams (as file
descriptors). The server (`server.Server`) asks the kernel who called (the owner's uid only), checks the
token, the request's shape and size within a deadline, reads the caller's process context from the kernel
(`infcop.running.process_context`: namespaces, cgroup, capabilities, seccomp, limits, CPU set, nice value, ...) and
refuses what a forked child could not reproduce; only then it forks a child (`child.become_job`) that takes
on the caller's context, checks it, and runs the command as a fresh process would have. Anything that
fails is refused and logged, and the caller runs the command in its own process, as without a server.

The calling process stays the job: it forwards signals to the child and exits with the child's status (or
dies of the child's signal). If the calling process dies, the server kills its child at once (and a
watcher in the child does so if the server is gone). INFCOP_WARM_START=off turns it all off (e.g. to
measure a job's memory with Snakemake's benchmark files, which see only the calling process).
"""
import importlib

from .client import run_remote
from .protocol import (ADDRESS_ENV, JOB_ENV, PID_ENV, REQUEST_DEADLINE, SWITCH_ENV, TOKEN_ENV, enabled,
                       identity, peer_credentials, private_socket_problem, supported)

# Every `infcop` command imports this package for `run_remote`: the server's side is imported on first use.
_LATER = {"Handle": "launch", "main": "launch", "remove_socket": "launch", "start": "launch", "stop": "launch",
          "Refused": "log", "Server": "server", "THREAD_VARS": "threads", "apply_thread_counts": "threads",
          "fresh_thread_counts": "threads"}


def __getattr__(name: str):
    if name in _LATER:
        return getattr(importlib.import_module(f".{_LATER[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ADDRESS_ENV", "JOB_ENV", "PID_ENV", "REQUEST_DEADLINE", "SWITCH_ENV", "TOKEN_ENV", "THREAD_VARS",
           "Handle", "Refused", "Server", "apply_thread_counts", "enabled", "fresh_thread_counts", "identity",
           "main", "peer_credentials", "private_socket_problem", "remove_socket", "run_remote", "start", "stop",
           "supported"]
