"""What a process runs inside, as the kernel reports it, and how a forked copy is made to match it.

The warm start forks its jobs from one long-lived process; a job must run inside whatever its caller was
put in (a sandbox, a namespace, limits, a CPU set), exactly as a fresh process would, or not be forked at
all. `read(pid)` takes the caller's context from /proc and the per-pid system calls (never from what the
caller says about itself); `plan(caller, server)` says what differs: what a forked child cannot reproduce
(namespaces, cgroup, capabilities, seccomp, ids, root directory, security label, personality) refuses the
fork, what it can (CPU affinity, nice value, I/O priority, resource limits, no_new_privs, OOM score
adjustment) the child applies (`apply`) and then checks on itself (`mismatch`). Linux only.
"""
from __future__ import annotations

import ctypes
import os
import platform
import resource
from dataclasses import dataclass

# Namespaces a job lives in: a different one cannot be entered by a forked child of another process.
NAMESPACES = ("user", "mnt", "net", "pid", "ipc", "uts", "cgroup", "time")
# /proc/PID/status lines that must be equal: capabilities, ids, seccomp (a filter cannot be copied).
FIXED_STATUS = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Seccomp",
                "Seccomp_filters")
LIMITS = {name[len("RLIMIT_"):].lower(): getattr(resource, name) for name in dir(resource)
          if name.startswith("RLIMIT_")}
CAP_SYS_NICE, CAP_SYS_RESOURCE = 23, 24
_PR_SET_NO_NEW_PRIVS = 38
# ioprio_get / ioprio_set(IOPRIO_WHO_PROCESS, pid[, prio]); numbers per architecture (none: not compared)
_IOPRIO_SYSCALLS = {"x86_64": (252, 251), "aarch64": (31, 30), "arm64": (31, 30)}
_IOPRIO_WHO_PROCESS = 1


class ContextError(Exception):
    """A context that cannot be read, or a forked child that could not be made to match its caller."""


@dataclass(frozen=True)
class Context:
    fixed: tuple  # ((what, value), ...): must be equal for a fork
    no_new_privs: int
    limits: tuple  # ((name, soft, hard), ...)
    nice: int
    affinity: frozenset
    oom_score_adj: int
    ioprio: int | None

    def as_dict(self) -> dict:
        return {"fixed": dict(self.fixed), "no_new_privs": self.no_new_privs,
                "limits": {n: (s, h) for n, s, h in self.limits}, "nice": self.nice,
                "affinity": sorted(self.affinity), "oom_score_adj": self.oom_score_adj, "ioprio": self.ioprio}


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _ioprio(pid: int) -> int | None:
    numbers = _IOPRIO_SYSCALLS.get(platform.machine())
    if numbers is None:
        return None
    value = _libc().syscall(numbers[0], _IOPRIO_WHO_PROCESS, pid)
    if value < 0:
        raise ContextError(f"ioprio_get({pid}) failed: {os.strerror(ctypes.get_errno())}")
    return value


def _status(pid: int) -> dict:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = " ".join(value.split())
    return fields


def _optional_text(path: str) -> str | None:
    """A /proc file that some kernels lack or refuse to read (no LSM: EINVAL); None then, for every process."""
    try:
        with open(path, "rb") as f:
            return f.read().rstrip(b"\0\n").decode("utf-8", "backslashreplace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (22, 95):  # EINVAL, EOPNOTSUPP: no such attribute here
            return None
        raise


def read(pid: int) -> Context:
    """The context of process `pid` (0: this one), from the kernel; ContextError if it cannot be read."""
    pid = pid or os.getpid()
    try:
        status = _status(pid)
        fixed = [(f"{name} namespace", _namespace(pid, name)) for name in NAMESPACES]
        fixed += [(key, status.get(key)) for key in FIXED_STATUS]
        root = os.stat(f"/proc/{pid}/root")
        fixed += [("root directory", (root.st_dev, root.st_ino)),
                  ("cgroup", _optional_text(f"/proc/{pid}/cgroup")),
                  ("security label", _optional_text(f"/proc/{pid}/attr/current")),
                  ("personality", _optional_text(f"/proc/{pid}/personality"))]
        limits = tuple((name, *resource.prlimit(pid, number)) for name, number in sorted(LIMITS.items()))
        with open(f"/proc/{pid}/oom_score_adj") as f:
            oom = int(f.read())
        return Context(fixed=tuple(fixed), no_new_privs=int(status.get("NoNewPrivs", "0")), limits=limits,
                       nice=os.getpriority(os.PRIO_PROCESS, pid), affinity=frozenset(os.sched_getaffinity(pid)),
                       oom_score_adj=oom, ioprio=_ioprio(pid))
    except (OSError, ValueError) as exc:
        raise ContextError(f"cannot read the context of pid {pid}: {exc}") from None


def _namespace(pid: int, name: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{name}")
    except FileNotFoundError:  # a kernel without this kind of namespace
        return None


def _has_capability(ctx: Context, cap: int) -> bool:
    return bool(int(dict(ctx.fixed).get("CapEff") or "0", 16) >> cap & 1)


def plan(caller: Context, server: Context) -> list[str]:
    """Why a child forked from `server` cannot become `caller` (empty: it can, by `apply`)."""
    problems = []
    server_fixed = dict(server.fixed)
    for what, value in caller.fixed:
        if value != server_fixed.get(what):
            problems.append(f"{what} {value!r}, the warm-start process's {server_fixed.get(what)!r}")
    if caller.no_new_privs < server.no_new_privs:
        problems.append("no_new_privs is off, on in the warm-start process")
    if not _has_capability(server, CAP_SYS_RESOURCE):
        server_limits = {n: h for n, _s, h in server.limits}
        for name, _soft, hard in caller.limits:
            if _raises(hard, server_limits[name]):
                problems.append(f"the hard {name} limit {hard} is above the warm-start process's {server_limits[name]}")
        if caller.oom_score_adj < server.oom_score_adj:
            problems.append(f"oom_score_adj {caller.oom_score_adj} is below the warm-start process's "
                            f"{server.oom_score_adj}")
    if caller.nice < server.nice and not _has_capability(server, CAP_SYS_NICE):
        problems.append(f"nice {caller.nice} is below the warm-start process's {server.nice}")
    return problems


def _raises(new: int, old: int) -> bool:
    infinity = resource.RLIM_INFINITY
    return new != old and (new == infinity or (old != infinity and new > old))


def apply(caller: Context) -> None:
    """In a forked child: take on what `plan` found reproducible; ContextError if the kernel refuses any."""
    try:
        now = read(0)
        if caller.no_new_privs and not now.no_new_privs:
            if _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        current = {n: (s, h) for n, s, h in now.limits}
        for name, soft, hard in caller.limits:
            if current[name] != (soft, hard):
                resource.setrlimit(LIMITS[name], (soft, hard))
        if caller.nice != now.nice:
            os.setpriority(os.PRIO_PROCESS, 0, caller.nice)
        if caller.affinity != now.affinity:
            os.sched_setaffinity(0, caller.affinity)
        if caller.oom_score_adj != now.oom_score_adj:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(caller.oom_score_adj))
        # read again: without a class of its own, a process's I/O priority follows its nice value
        if caller.ioprio is not None and caller.ioprio != _ioprio(os.getpid()):
            numbers = _IOPRIO_SYSCALLS[platform.machine()]
            if _libc().syscall(numbers[1], _IOPRIO_WHO_PROCESS, 0, caller.ioprio) != 0:
                raise OSError(ctypes.get_errno(), "ioprio_set")
    except (OSError, ValueError) as exc:
        raise ContextError(f"could not take on the caller's context: {exc}") from None
    left = mismatch(caller, read(0))
    if left:
        raise ContextError("still differs from the caller's context: " + "; ".join(left))


def mismatch(want: Context, have: Context) -> list[str]:
    """Every way `have` differs from `want` (empty: the same context)."""
    a, b = want.as_dict(), have.as_dict()
    out = []
    for key in a:
        if key in ("fixed", "limits"):
            out += [f"{k}: {v!r} vs {b[key].get(k)!r}" for k, v in a[key].items() if b[key].get(k) != v]
        elif a[key] != b[key]:
            out.append(f"{key}: {a[key]!r} vs {b[key]!r}")
    return out
