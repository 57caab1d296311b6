"""What the warm-start server does once, before it serves: import what the jobs need (so that each forked
job skips those imports), and find whether a job may use a GPU (without initialising CUDA here)."""
from __future__ import annotations

import importlib
import os
import sys
import time

from .log import Log

# What the children need, imported once here (each is skipped if it is not installed). torch._dynamo: what
# constructing the first torch.optim optimizer imports (about a second in every training job otherwise).
PRELOAD = ("torch", "torch._dynamo", "numpy", "pandas", "threadpoolctl", "scipy.stats", "sklearn.datasets",
           "infcop.running.steps", "infcop.judging.tables", "infcop.judging.compare")


def preload(log: Log) -> None:
    t0 = time.time()
    from ...showing.plots import FIGURES, style

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    try:
        style.mpl()  # the Agg backend first, as the figure jobs choose it
        for name in ("matplotlib.pyplot", "seaborn", *{f"infcop.showing.plots.{s.module}" for s in FIGURES.values()}):
            importlib.import_module(name)
    except ImportError:
        pass
    log.say(f"preloaded in {time.time() - t0:.1f} s")


def gpu_possible() -> bool:
    """Whether a job may use a GPU, found without initialising CUDA here (that would make forks unsafe)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    if torch.backends.cuda.is_built() and any(n.startswith("nvidia") and n[6:].isdigit() for n in os.listdir("/dev")):
        return True
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_built() and sys.platform == "darwin")
