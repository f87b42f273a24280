"""Statistics for comparing two sets of samples of one figure.

Timed figures on a shared machine are noisy and have few samples (3 repetitions), so a change
is called only when the bootstrap interval of the median ratio excludes 1 *and* the change is
larger than a minimum effect; the Mann-Whitney p-value is reported beside it. Instruction
counts are deterministic and compare exactly.
"""

import math
import random


def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return float("nan")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def quantile(xs, q):
    """Linear-interpolated quantile, q in [0, 1]."""
    s = sorted(xs)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def bootstrap_ratio_ci(old, new, iters=4000, level=0.95, seed=17):
    """Percentile bootstrap interval of median(new) / median(old); a fixed seed keeps the
    report reproducible."""
    rng = random.Random(seed)
    ratios = []
    for _ in range(iters):
        o = median([rng.choice(old) for _ in old])
        n = median([rng.choice(new) for _ in new])
        if o > 0:
            ratios.append(n / o)
    a = (1 - level) / 2
    return quantile(ratios, a), quantile(ratios, 1 - a)


def mann_whitney_p(a, b):
    """Two-sided Mann-Whitney U p-value: exact by enumeration for small samples (the usual
    case here), normal approximation with tie correction otherwise."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return float("nan")

    def u_of(xs, ys):
        return sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in xs for y in ys)

    u = u_of(a, b)
    mean = n1 * n2 / 2
    if n1 + n2 <= 14:
        from itertools import combinations

        pooled = list(a) + list(b)
        idx = range(n1 + n2)
        extreme = total = 0
        for pick in combinations(idx, n1):
            s = set(pick)
            xs = [pooled[i] for i in pick]
            ys = [pooled[i] for i in idx if i not in s]
            total += 1
            if abs(u_of(xs, ys) - mean) >= abs(u - mean) - 1e-9:
                extreme += 1
        return extreme / total
    pooled = sorted(list(a) + list(b))
    ties = {}
    for x in pooled:
        ties[x] = ties.get(x, 0) + 1
    n = n1 + n2
    tie_term = sum(t**3 - t for t in ties.values()) / (n * (n - 1))
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term))
    if sd == 0:
        return 1.0
    z = (abs(u - mean) - 0.5) / sd
    return math.erfc(z / math.sqrt(2))


def verdict(old, new, better, min_effect=0.03, exact=False):
    """Compare two sample lists of one figure.

    Returns a dict with ratio (new/old medians), ci, p and `change`: "better", "worse" or
    "same". `better` is "lower" or "higher". Exact figures (instruction counts) change when
    the medians differ at all.
    """
    mo, mn = median(old), median(new)
    ratio = mn / mo if mo else float("nan")
    out = {"old": mo, "new": mn, "ratio": ratio, "ci": None, "p": None}
    if exact:
        changed = mn != mo
    else:
        lo, hi = bootstrap_ratio_ci(old, new)
        out["ci"] = (lo, hi)
        out["p"] = mann_whitney_p(old, new)
        changed = (lo > 1 or hi < 1) and abs(ratio - 1) >= min_effect
    if not changed or math.isnan(ratio):
        out["change"] = "same"
    elif (ratio < 1) == (better == "lower"):
        out["change"] = "better"
    else:
        out["change"] = "worse"
    return out


def loglog_at(points, x):
    """y at `x` on a curve of (x, y) points sorted by x, interpolated linearly in log x and
    log y (bytes at a DSSIM, for the settings scripts); None when `x` is off the curve."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= x <= x1:
            t = math.log(x / x0) / math.log(x1 / x0) if x1 > x0 else 0.0
            return math.exp(math.log(y0) + t * math.log(y1 / y0))
    return None
