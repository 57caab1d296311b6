"""Stop criteria for retraining: after each epoch each listed criterion looks at the network; retraining
stops at the first that fires, and always at the epoch budget."""
from __future__ import annotations

import math

from . import InfcopError

STOPS = ("budget", "infoflow", "gradflow", "accuracy")
DISTANCES = ("l2", "relative")
REQUIRED = {"budget": (), "infoflow": ("epsilon",), "gradflow": ("epsilon",), "accuracy": ("delta",)}


def normalise_stops(stops) -> list[dict]:
    """Accept ['budget', {'name': 'infoflow', 'epsilon': 0.1}, ...]; check names and parameters."""
    if isinstance(stops, (str, dict)):
        stops = [stops]
    out = []
    for s in stops or ["budget"]:
        s = {"name": s} if isinstance(s, str) else dict(s)
        name = s.get("name")
        if name not in STOPS:
            raise InfcopError(f"unknown stop criterion '{name}'; known: {', '.join(STOPS)}")
        unknown = sorted(set(s) - {"name", *REQUIRED[name]})
        if unknown:
            raise InfcopError(f"stop criterion '{name}': unknown key '{unknown[0]}' (a typo?); allowed: "
                              f"{', '.join(('name',) + REQUIRED[name])}")
        for key in REQUIRED[name]:
            if key not in s:
                raise InfcopError(f"stop criterion '{name}' needs '{key}'")
        if "epsilon" in s and not (isinstance(s["epsilon"], (int, float)) and s["epsilon"] > 0):
            raise InfcopError(f"stop '{name}': epsilon must be a number > 0, got {s['epsilon']!r}")
        if "delta" in s and not (isinstance(s["delta"], (int, float)) and 0 <= s["delta"] <= 1):
            raise InfcopError(f"stop '{name}': delta must be a number in [0, 1], got {s['delta']!r}")
        out.append(s)
    return out


def flow_distance(a, b, kind: str = "l2") -> float:
    if len(a) != len(b):
        raise InfcopError(f"flow vectors differ in length ({len(a)} vs {len(b)}): is the dense reference "
                          "from another architecture?")
    d = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    if kind == "relative":
        norm = math.sqrt(sum(y * y for y in b))
        return d / norm if norm > 0 else d
    return d


def decide(stops: list[dict], epoch: int, max_epochs: int, min_epochs: int, *, info_distance: float,
           grad_distance: float, val_accuracy: float, dense_val_accuracy: float) -> tuple[bool, str]:
    """(stop, reason): reason is the first criterion that fired, '' when training goes on."""
    if epoch >= min_epochs:
        for s in stops:
            name = s["name"]
            if name == "infoflow" and info_distance < s["epsilon"]:
                return True, name
            if name == "gradflow" and grad_distance < s["epsilon"]:
                return True, name
            if name == "accuracy" and val_accuracy >= dense_val_accuracy - s["delta"]:
                return True, name
    if epoch >= max_epochs:
        return True, "budget"
    return False, ""
