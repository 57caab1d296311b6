"""Small statistics shared by the tables and the figures: Student-t quantiles and intervals, deterministic
(no bootstrap), without importing scipy."""
from __future__ import annotations

import math

# Two-sided 95 % Student-t quantiles t_{0.975, dof}, dof = 1..30.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(dof: int) -> float:
    """The 97.5% quantile of Student's t with `dof` degrees of freedom (NaN below 1)."""
    if dof < 1:
        return float("nan")
    if dof <= len(_T975):
        return _T975[dof - 1]
    for limit, value in ((40, 2.021), (60, 2.000), (120, 1.980)):
        if dof <= limit:
            return value
    return 1.960


def mean_interval(values) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean and its 95% t-interval; lo = hi = NaN with fewer than two values."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return float("nan"), float("nan"), float("nan")
    m = sum(v) / len(v)
    if len(v) < 2:
        return m, float("nan"), float("nan")
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    half = t975(len(v) - 1) * sd / math.sqrt(len(v))
    return m, m - half, m + half
