"""Thread counts in a forked job: the libraries read their variables when the warm-start process imported
them (every count at 1 there), so a job is given the counts a fresh process would take from its
environment and its CPU set."""
from __future__ import annotations

import os
import sys

# The thread variables Snakemake sets per job; the server itself runs with each at 1.
THREAD_VARS = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS")

def _env_threads(env: dict, names) -> int | None:
    """The first positive count among `names` (the first entry of a nested OMP list), as the library reads it."""
    for name in names:
        value = env.get(name, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def _physical_cores() -> int:
    """What PyTorch takes when no variable says (cpuinfo's physical cores), read from sysfs."""
    cores = set()
    for cpu in range(os.cpu_count() or 1):
        base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
        try:
            cores.add((open(base + "physical_package_id").read().strip(), open(base + "core_id").read().strip()))
        except OSError:
            continue
    return len(cores) or os.cpu_count() or 1


def fresh_thread_counts(env: dict) -> dict:
    """The thread counts a fresh process started with `env` would use, per library (the variables each
    reads at load, in its own order of precedence)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    omp = _env_threads(env, ("OMP_NUM_THREADS",))
    return {
        "torch": _env_threads(env, ("MKL_NUM_THREADS", "OMP_NUM_THREADS")) or min(_physical_cores(), cpus),
        "openmp": omp or cpus,
        "openblas": min(_env_threads(env, ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")) or cpus,
                        cpus),
        "mkl": _env_threads(env, ("MKL_NUM_THREADS", "OMP_NUM_THREADS")) or min(_physical_cores(), cpus),
        "blis": _env_threads(env, ("BLIS_NUM_THREADS", "OMP_NUM_THREADS")) or cpus,
    }


def apply_thread_counts(env: dict) -> None:
    """Give this (forked) process the thread counts a fresh one would have under `env`: the libraries read
    the variables when the server imported them, with every count at 1."""
    counts = fresh_thread_counts(env)
    try:
        from threadpoolctl import ThreadpoolController

        for lib in ThreadpoolController().lib_controllers:
            if lib.internal_api in counts:
                lib.set_num_threads(counts[lib.internal_api])
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(counts["torch"])


