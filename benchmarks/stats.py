"""Percentiles, summaries of samples, and how figures are written in the report."""
import math
from dataclasses import dataclass


def pct(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[k - 1]


def fmt(v, digits=2):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.{digits}f}"


@dataclass
class Summary:
    """Samples in ms: count, percentiles, extremes, and how many fell below 0 and below 20 ms."""
    n: int
    p50: float
    p95: float
    p99: float
    min: float
    max: float
    negative: int
    below_20ms: int


def summarize_ms(samples_ns):
    s = sorted(x / 1e6 for x in samples_ns)
    return Summary(n=len(s), p50=pct(s, 50), p95=pct(s, 95), p99=pct(s, 99),
                   min=s[0] if s else float("nan"), max=s[-1] if s else float("nan"),
                   negative=sum(1 for x in s if x < 0), below_20ms=sum(1 for x in s if x < 20))
