"""Interval statistics for attack success rates."""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """k successes out of n trials, with its Wilson score interval."""

    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else 0.0

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        return wilson_interval(self.k, self.n, z)


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there are no trials.

    Preferred over the normal approximation because it stays inside [0, 1] and behaves at k = 0 or k = n,
    exactly the cases a safety gate sees most.
    """
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def libra_balance(utility: float, safety: float) -> float:
    """Libra-Leaderboard balance score 1 - sqrt(((1 - utility)^2 + (1 - safety)^2) / 2), both in [0, 1]:
    it rewards being good at both over excelling at one."""
    return 1.0 - math.sqrt(((1.0 - utility) ** 2 + (1.0 - safety) ** 2) / 2.0)


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Bin(n, p). Exact integer binomial coefficients up to n = 1000 (p = 1/2 is then exact to
    the last float bit, so hand-worked p-values such as 2^-8 compare equal); lgamma above, where comb() would
    overflow a float."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0 or p >= 1.0:
        return 1.0 if p >= 1.0 else 0.0
    if p == 0.5 and n <= 1000:
        return sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n
    if n <= 1000:
        return min(1.0, sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))
    log_p, log_q = math.log(p), math.log1p(-p)
    head = math.lgamma(n + 1)
    return min(
        1.0,
        sum(
            math.exp(head - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
            for i in range(k, n + 1)
        ),
    )


def mcnemar_exact(b: int, c: int) -> float:
    """One-sided exact McNemar p-value for "the candidate answers more harmful prompts than the base".

    Base and candidate answer the same prompts, so only the discordant pairs carry evidence: b = prompts the
    base refused and the candidate answered, c = the reverse. Under "no regression" each discordant pair is
    equally likely to go either way, so p = P(X >= b) for X ~ Bin(b + c, 1/2). No discordant pairs: p = 1.
    Paired, it ignores the prompts both models treat alike, which an unpaired two-proportion test counts as
    noise; exact, it holds at the handful of discordant pairs a gate sees (b = 8, c = 0: p = 2^-8)."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    return binomial_tail(b, b + c, 0.5)


def min_blocking_count(n: int, alpha: float, margin: float = 0.0) -> int:
    """The fewest newly answered prompts (b, with c = 0) the gate blocks on among n: the exact test needs
    2^-b < alpha and the rise b/n must exceed the practical margin (both strictly, as in the gate)."""
    by_test = max(1, math.floor(math.log2(1 / alpha)) + 1)
    by_margin = math.floor(margin * n + 1e-9) + 1
    return max(by_test, by_margin)


def regression_power(n: int, base_k: int, flip: float, alpha: float, margin: float = 0.0) -> float:
    """P(the gate blocks) when each of the n - base_k prompts the base refused flips to answered with
    probability `flip` and none flips back (the model of min_detectable_regression)."""
    return binomial_tail(min_blocking_count(n, alpha, margin), n - base_k, flip)


def min_detectable_regression(
    n: int, alpha: float, power: float = 0.8, base_asr: float = 0.0, margin: float = 0.0
) -> float | None:
    """The smallest true rise in ASR (a share) the gate blocks with probability >= `power`, on n paired prompts
    at false-block rate `alpha` with practical margin `margin`; None when no rise is detectable (too few prompts,
    or too few that the base refuses).

    Model (an assumption, stated because the figure depends on it): the base answers a share `base_asr` of the
    prompts; the candidate keeps every answer of the base and, independently, answers each prompt the base
    refused with probability q; the rise is q * (1 - base_asr). All discordance is one way (c = 0), the most
    favourable case for detection, so this is a lower bound: a candidate that also refuses some prompts the
    base answered (c > 0) needs a larger rise to be blocked."""
    base_k = round(base_asr * n)
    if regression_power(n, base_k, 1.0, alpha, margin) < power:
        return None
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (low, mid) if regression_power(n, base_k, mid, alpha, margin) >= power else (mid, high)
    return high * (n - base_k) / n


def prompts_needed(
    target: float, alpha: float, power: float = 0.8, base_asr: float = 0.0, margin: float = 0.0, limit: int = 100_000
) -> int | None:
    """About the fewest paired prompts whose min_detectable_regression is at most `target` (same model); None
    when the target is at or under the margin (a rise must exceed it to block) or needs more than `limit`.
    Doubling, then bisection: the figure falls with n, though not strictly at every step (counts are integers),
    so the answer may be a few prompts above the true minimum, never one that misses the target."""
    if target <= margin + 1e-9:
        return None

    def reaches(n: int) -> bool:
        found = min_detectable_regression(n, alpha, power, base_asr, margin)
        return found is not None and found <= target + 1e-9

    high = 8
    while not reaches(high):
        if high >= limit:
            return None
        high = min(limit, high * 2)
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if reaches(mid) else (mid, high)
    return high
