"""One seed's fixed-budget control curve, and the bracket it puts around any cost.

The controls of a seed are points (cost, test accuracy). Between two budgets nobody measured the curve, so
a method's cost c is not compared with one straight line (a chord flatters whatever sits under a concave
curve, and a non-monotone chord starts from the curve's lowest point) but with a *bracket*:

- **lower**: the least the curve gives at c, the best of the chord at c and of every control that costs at
  most c (one could always have stopped at a cheaper budget: the monotone envelope);
- **upper**: the most a concave curve through the controls could reach at c: the lines extending the
  neighbouring segments of the envelope (the one before, forward; the one after, backward), capped by the
  envelope at the next dearer control. Beyond the dearest control only the last segment's extension bounds it.

At a control's own cost both are that control's accuracy (or a cheaper control's, if higher)."""
from __future__ import annotations

import math
from dataclasses import dataclass

EPS = 1e-9


@dataclass(frozen=True)
class Control:
    method: str
    cost: float
    accuracy: float
    budget: float  # its retraining epochs per iteration


@dataclass(frozen=True)
class Bracket:
    lower: float
    upper: float
    next_control: Control | None  # the next control costing at least c (None beyond the dearest)
    cheaper: tuple  # the controls costing at most c
    budget: float  # the per-iteration budget a control costing c would have (linear between neighbours); NaN
    between: tuple  # (cheaper neighbour, dearer neighbour) method names, or () at a control or beyond


def _line(x0, y0, x1, y1, x) -> float:
    if abs(x1 - x0) <= EPS:
        return math.inf  # no slope to extend: no bound from it
    return y1 + (y1 - y0) / (x1 - x0) * (x - x1)


def bracket(controls, cost: float) -> Bracket | None:
    """The bracket of `controls` (one seed's Control points) at `cost`; None below the cheapest control or
    with fewer than two controls (no curve)."""
    pts = sorted(controls, key=lambda p: (p.cost, p.budget))
    if len(pts) < 2 or cost < pts[0].cost - EPS:
        return None
    xs = [p.cost for p in pts]
    env, best = [], -math.inf
    for p in pts:
        best = max(best, p.accuracy)
        env.append(best)  # the monotone envelope: the best accuracy at no more than this cost
    cheaper = tuple(p for p in pts if p.cost <= cost + EPS)
    floor = max(p.accuracy for p in cheaper)
    n = len(pts)
    if cost > xs[-1] + EPS:  # beyond the dearest control
        ext = _line(xs[-2], env[-2], xs[-1], env[-1], cost)
        return Bracket(floor, max(floor, ext if math.isfinite(ext) else floor), None, cheaper, math.nan, ())
    i = next(k for k in range(n) if xs[k] >= cost - EPS)
    if abs(xs[i] - cost) <= EPS:  # at a control's own cost
        at = max(floor, pts[i].accuracy)  # the curve is known here: this control is the next one to beat
        return Bracket(at, at, pts[i], cheaper, pts[i].budget, ())
    a, b = pts[i - 1], pts[i]
    t = (cost - a.cost) / (b.cost - a.cost)
    chord = a.accuracy + t * (b.accuracy - a.accuracy)
    lower = max(chord, floor)
    bounds = [env[i]]  # an increasing concave curve never passes the next dearer control's envelope before it
    if i - 2 >= 0:
        bounds.append(_line(xs[i - 2], env[i - 2], xs[i - 1], env[i - 1], cost))
    if i + 1 < n:
        bounds.append(_line(xs[i + 1], env[i + 1], xs[i], env[i], cost))
    upper = max(lower, min(bounds))
    return Bracket(lower, upper, b, cheaper, a.budget + t * (b.budget - a.budget), (a.method, b.method))
