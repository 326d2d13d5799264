"""The one interval used across seeds: the Student-t 95% interval of the mean.

mean +- t_{0.975, n-1} * sd / sqrt(n), sd with ddof 1. With 5 seeds a percentile or bootstrap
interval would just be the range of five numbers; the t interval assumes roughly normal seed
scatter and says so. scipy is not a dependency, so the t quantile is computed here exactly:
for integer degrees of freedom the t distribution function has a closed form (Abramowitz &
Stegun 26.7.3-4), inverted by bisection. Fewer than 2 values give no interval (NaN bounds).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

CONFIDENCE = 0.95


def t_central_probability(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer df >= 1 (A&S 26.7.3 for odd df, 26.7.4 for even)."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2:
        # odd: (2/pi) [theta + sin(theta) cos(theta) (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...)]
        series, term = 0.0, 1.0
        for k in range(1, (df - 1) // 2 + 1):
            series += term
            term *= cos2 * (2 * k) / (2 * k + 1)
        return 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * series)
    # even: sin(theta) (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
    series, term = 0.0, 1.0
    for k in range(1, df // 2 + 1):
        series += term
        term *= cos2 * (2 * k - 1) / (2 * k)
    return math.sin(theta) * series


@lru_cache(maxsize=None)
def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided critical value: P(|T| <= q) = confidence."""
    if df < 1:
        return math.nan
    lo, hi = 0.0, 1.0
    while t_central_probability(hi, df) < confidence:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_central_probability(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def half_width(sd, n):
    """t half-width of the mean's interval; works elementwise on arrays/Series (NaN for n < 2)."""
    n = np.asarray(n, dtype=float)
    t = np.array([t_quantile(int(k) - 1) if k >= 2 else math.nan for k in n.ravel()]).reshape(n.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return t * np.asarray(sd, dtype=float) / np.sqrt(n)


def mean_interval(values) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of the finite values."""
    x = pd.Series(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    h = float(half_width(x.std(ddof=1) if n > 1 else math.nan, n))
    return mean, mean - h, mean + h, n
