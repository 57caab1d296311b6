"""Flow measures (MEASURES) and their distances to the dense network's. Cheap to import (no torch):
config checks and tables read it; infcop.science.flows does the measuring.

Each measure names the per-layer vector it compares (recorded after every epoch and in the dense
metrics), the distance column of epochs.csv, and whether a noise floor (`epsilon: auto`) and the
`spatial: positions` mode exist for it:

- signed_mean: the study's connectivity, the signed mean of the Pearson correlation matrix between
  the units of consecutive layers; distance ||c - c_dense||.
- abs_mean: the same matrix's mean |r| (positive and negative correlations no longer cancel).
- cka: per layer, linear CKA (Kornblith et al., 2019) between the pruned and the dense network's
  activations on the probe (conv positions as samples); distance ||1 - CKA|| over layers.
- gradflow: per-layer mean |dL/dW| over surviving weights; distance ||g - g_dense||."""
from __future__ import annotations

import math

from .. import InfcopError
from .registry import Registry

DISTANCES = ("l2", "relative")
SPATIAL = ("mean", "positions")
MEASURES = Registry("flow measure")
MEASURES.add("signed_mean", None, vector="connectivity", column="info_distance", noise_floor=True, spatial=True,
             label="connectivity (signed mean r)")
MEASURES.add("abs_mean", None, vector="abs_connectivity", column="abs_distance", noise_floor=True, spatial=True,
             label="connectivity (mean |r|)")
MEASURES.add("cka", None, vector="cka", column="cka_distance", noise_floor=False, spatial=False,
             label="1 - linear CKA to dense")
MEASURES.add("gradflow", None, vector="gradflow", column="grad_distance", noise_floor=True, spatial=False,
             label="gradient flow (mean |dL/dW|)")
# Flow measures an information-flow criterion may use (gradflow belongs to the gradient-flow criterion).
INFO_MEASURES = ("signed_mean", "abs_mean", "cka")


def key(measure: str, spatial: str = "mean") -> str:
    """The name a measure's vector and distance are recorded under: 'abs_mean', 'abs_mean@positions'."""
    return measure if spatial == "mean" else f"{measure}@{spatial}"


def vector_key(measure_key: str) -> str:
    """The record's per-layer vector of a measure key: 'abs_mean@positions' -> 'abs_connectivity@positions'."""
    measure, _, spatial = measure_key.partition("@")
    base = MEASURES.get(measure).info["vector"]
    return f"{base}@{spatial}" if spatial else base


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


def distance(measure_key: str, record: dict, reference: dict, kind: str = "l2") -> float:
    """The distance of one measure between a record's vectors and the dense reference's."""
    vec = vector_key(measure_key)
    if measure_key.partition("@")[0] == "cka":
        # the dense network's CKA to itself is 1 in every layer
        return flow_distance(record[vec], [1.0] * len(record[vec]), kind)
    if vec not in record or vec not in reference:
        return float("nan")
    return flow_distance(record[vec], reference[vec], kind)
