"""Fault injection for the reliability tests: with INFCOP_KILL_AT=<point>[:<n>] set, the process SIGKILLs
its whole process group (the job and the Snakemake that started it) the n-th time it reaches <point>
(n = 1 by default), optionally only in the stage whose output directory contains INFCOP_KILL_WHERE.
Points: epoch (an epoch checkpoint was just written), write (halfway through writing a file),
evaluate (an iteration was just evaluated), plot (a figure is about to be saved), done (a command
wrote all its outputs). Unset, every call is a no-op."""
from __future__ import annotations

import os
import signal

_seen: dict[str, int] = {}
job_group: int | None = None  # set in a warm-started job: its caller's process group (infcop.running.warm_start)


def fires(point: str, where: str = "") -> bool:
    """Whether this visit of `point` is the one to die at (counts the visit)."""
    spec = os.environ.get("INFCOP_KILL_AT")
    if not spec:
        return False
    name, _, n = spec.partition(":")
    if name != point or os.environ.get("INFCOP_KILL_WHERE", "") not in str(where):
        return False
    _seen[point] = _seen.get(point, 0) + 1
    return _seen[point] == int(n or 1)


def die() -> None:
    os.killpg(job_group or os.getpgid(0), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)  # a warm-started job is outside its caller's group


def kill_point(point: str, where: str = "") -> None:
    if fires(point, where):
        die()
