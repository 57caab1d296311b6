"""Every statistic of the tables and the figures, on scipy.stats: Student-t quantiles, the seed-paired
one-sided t-tests and their bounds, the two one-sided tests (TOST) of equivalence, the power of each at a
given number of seeds (and so the seeds that would reach 80%), Holm's step-down adjustment over a family of
tests, and the median and range of per-seed cost ratios. Deterministic throughout (no bootstrap). What a
test means for a method (the verdicts) is in infcop.judging.verdicts."""
from __future__ import annotations

import math

ALPHA = 0.05  # of each one-sided test: the one-sided 95% bounds are the 90% two-sided t-interval
POWER = 0.80  # the power at which "seeds needed" is stated
MAX_SEEDS = 1000
_GRID = 400  # quantiles of the sample standard deviation's distribution, for the TOST power integral
MIN_SPEEDUP_COST = 0.5  # epoch-equivalents: below it a speed-up ratio is noise over a near-zero cost


def t975(dof: int) -> float:
    """The 97.5% quantile of Student's t with `dof` degrees of freedom (NaN below 1): the figures' two-sided
    95% intervals."""
    from scipy import stats

    if dof < 1:
        return math.nan
    return float(stats.t.ppf(0.975, dof))


def clean(values) -> list[float]:
    return [float(x) for x in values if x is not None and math.isfinite(float(x))]


def describe(values) -> tuple[int, float, float]:
    """(n, mean, sample standard deviation) of the finite values; sd NaN below two."""
    v = clean(values)
    n = len(v)
    if n == 0:
        return 0, math.nan, math.nan
    mean = sum(v) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else math.nan
    return n, mean, sd


def t_quantile(n: int) -> float:
    """The one-sided 1 - ALPHA quantile of Student's t with n - 1 degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(1 - ALPHA, n - 1))


def bounds(values) -> tuple[float, float, float]:
    """(mean, lower, upper): the mean and its one-sided 95% bounds (NaN bounds below two values)."""
    n, mean, sd = describe(values)
    if n < 2:
        return mean, math.nan, math.nan
    half = t_quantile(n) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def p_above(values, bound: float) -> float:
    """p-value of H0: mean <= bound against mean > bound (one-sided t-test); 1 below two values."""
    return _p(values, bound, above=True)


def p_below(values, bound: float) -> float:
    """p-value of H0: mean >= bound against mean < bound."""
    return _p(values, bound, above=False)


def _p(values, bound: float, above: bool) -> float:
    from scipy import stats

    n, mean, sd = describe(values)
    if n < 2:
        return 1.0
    if sd == 0:  # no spread: the sign decides, exactly
        return 0.0 if (mean > bound if above else mean < bound) else 1.0
    t = (mean - bound) / (sd / math.sqrt(n))
    return float(stats.t.sf(t, n - 1) if above else stats.t.cdf(t, n - 1))


def tost(diffs, margin: float) -> dict:
    """Two one-sided tests of mean(diffs) against +-margin: verdict, mean, the one-sided 95% bounds, the p-value
    of the verdict's test, and for an inconclusive verdict the seeds that would resolve it at 80% power at the
    observed mean and spread (None: no number would)."""
    n, mean, sd = describe(diffs)
    out = {"verdict": "n/a", "delta": mean if n else math.nan, "lo": math.nan, "hi": math.nan,
           "seeds_needed": None, "p": math.nan}
    if n < 2:
        return out
    _, lo, hi = bounds(diffs)
    tests = {"better": p_above(diffs, margin), "worse": p_below(diffs, -margin),
             "equivalent": max(p_above(diffs, -margin), p_below(diffs, margin))}
    word = next((w for w, p in tests.items() if p < ALPHA), "inconclusive")
    out.update(verdict=word, lo=lo, hi=hi, p=tests[word] if word != "inconclusive" else min(tests.values()))
    if word == "inconclusive":
        out["seeds_needed"] = seeds_needed(mean, sd, margin, n)
    return out


def power_above(gap: float, sd: float, n: int) -> float:
    """Power of the one-sided t-test of mean > bound at n seeds when the true mean is `gap` above the bound
    and the spread is `sd` (noncentral t)."""
    from scipy import stats

    if n < 2:
        return 0.0
    if sd == 0:
        return 1.0 if gap > 0 else 0.0
    return float(stats.nct.sf(t_quantile(n), n - 1, gap * math.sqrt(n) / sd))


def power_within(mean: float, sd: float, n: int, low: float, high: float) -> float:
    """Power of the two one-sided tests that the mean lies in (low, high) at n seeds, for a true mean `mean`
    and spread `sd`: over the distribution of the sample sd, the chance that the sample mean falls where both
    tests reject (exact up to the quantile grid; no independence assumed)."""
    import numpy as np
    from scipy import stats

    if n < 2 or high <= low:
        return 0.0
    if sd == 0:
        return 1.0 if low < mean < high else 0.0
    q = (np.arange(_GRID) + 0.5) / _GRID
    s = sd * np.sqrt(stats.chi2.ppf(q, n - 1) / (n - 1))  # the sample sd's quantiles
    half = t_quantile(n) * s / math.sqrt(n)
    se = sd / math.sqrt(n)
    hi, lo = high - half, low + half
    p = stats.norm.cdf((hi - mean) / se) - stats.norm.cdf((lo - mean) / se)
    return float(np.mean(np.where(hi > lo, p, 0.0)))


def seeds_for(power_at, n_now: int) -> int | None:
    """The fewest seeds (at least n_now, at least 2) at which `power_at(n)` reaches POWER; None when no
    number up to MAX_SEEDS does. Power grows with n, so a doubling search then bisection."""
    n = max(n_now, 2)
    if power_at(n) >= POWER:
        return n
    hi = n
    while power_at(hi) < POWER:
        if hi >= MAX_SEEDS:
            return None
        hi = min(2 * hi, MAX_SEEDS)
    lo = hi // 2 if hi // 2 >= n else n
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if power_at(mid) >= POWER:
            hi = mid
        else:
            lo = mid
    return hi


def seeds_needed(mean: float, sd: float, margin: float, n_now: int) -> int | None:
    """The fewest seeds at which the paired tests would resolve a difference of `mean` at spread `sd` with 80%
    power: better or worse if it lies beyond the margin, equivalent if inside (TOST power); None when no
    number up to 1000 would (e.g. a mean on the margin)."""
    if not (math.isfinite(mean) and math.isfinite(sd)):
        return None
    if mean > margin:
        return seeds_for(lambda n: power_above(mean - margin, sd, n), n_now)
    if mean < -margin:
        return seeds_for(lambda n: power_above(-margin - mean, sd, n), n_now)
    return seeds_for(lambda n: power_within(mean, sd, n, -margin, margin), n_now)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (in the input's order; NaN stays NaN): a test holds at level ALPHA
    over the whole family when its adjusted p-value is below ALPHA."""
    idx = [i for i, p in enumerate(pvalues) if p is not None and math.isfinite(p)]
    m = len(idx)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def ratio_stats(nums, dens) -> tuple[float, float, float]:
    """Median, min and max over seeds of per-seed cost ratios; NaN where a denominator is near zero."""
    rs = [a / b for a, b in zip(nums, dens) if math.isfinite(a) and math.isfinite(b) and b >= MIN_SPEEDUP_COST]
    if len(rs) < len(nums) or not rs:
        return math.nan, math.nan, math.nan
    rs.sort()
    mid = len(rs) // 2
    med = rs[mid] if len(rs) % 2 else (rs[mid - 1] + rs[mid]) / 2
    return med, rs[0], rs[-1]
