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
