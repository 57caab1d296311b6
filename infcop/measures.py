"""Flow measures and their distances to the dense network's. Cheap to import (no torch): config checks
and tables read it; infcop.flows does the measuring."""
from __future__ import annotations

import math

from . import InfcopError

DISTANCES = ("l2", "relative")


def flow_distance(a, b, kind: str = "l2") -> float:
    """Distance of a flow vector `a` to the dense network's `b`: l2, or l2 divided by ||b|| (relative)."""
    if len(a) != len(b):
        raise InfcopError(f"flow vectors differ in length ({len(a)} vs {len(b)}): is the dense reference "
                          "from another architecture?")
    d = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    if kind == "relative":
        norm = math.sqrt(sum(y * y for y in b))
        return d / norm if norm > 0 else d
    return d
