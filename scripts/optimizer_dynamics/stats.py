"""The one interval used across seeds: the Student-t 95% interval of the mean.

mean +- t_{0.975, n-1} * sd / sqrt(n), sd with ddof 1. With 5 seeds a percentile or bootstrap
interval would just be the range of five numbers; the t interval assumes roughly normal seed
scatter and says so. Fewer than 2 values give no interval (NaN bounds).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95


def t_quantile(df, confidence: float = CONFIDENCE):
    """The two-sided critical value q, P(|T| <= q) = confidence; NaN for df < 1 (elementwise)."""
    df = np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(df >= 1, stats.t.ppf((1 + confidence) / 2, np.maximum(df, 1)), np.nan)


def half_width(sd, n):
    """t half-width of the mean's interval; works elementwise on arrays/Series (NaN for n < 2)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return t_quantile(n - 1) * np.asarray(sd, dtype=float) / np.sqrt(n)


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
