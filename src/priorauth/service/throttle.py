"""Rate limits per account (PRIORAUTH_RATE_LIMIT), kept in this process's memory.

The limits are in the `limits` library's notation: `20/second`, or several at once separated by
semicolons, `20/second;1000/hour`. Each account has its own moving windows. A server running
several worker processes counts in each process apart.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from priorauth.service.errors import Throttled

__all__ = ["Throttle", "parse_rate_limit"]


def parse_rate_limit(text: str) -> list[RateLimitItem]:
    """The limits in `text`; ValueError, saying what is expected, for anything else."""
    try:
        items = parse_many(text)
    except ValueError as exc:
        raise ValueError(
            f"PRIORAUTH_RATE_LIMIT {text!r} is not a rate limit like 20/second or "
            "20/second;1000/hour"
        ) from exc
    if not items:
        raise ValueError(f"PRIORAUTH_RATE_LIMIT {text!r} names no limit")
    return items


class Throttle:
    """Admits an account's calls while it is within every limit."""

    def __init__(self, text: str) -> None:
        self.items = parse_rate_limit(text)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def admit(self, account: str) -> None:
        """Count one call of `account`, or raise Throttled with the seconds to wait."""
        for item in self.items:
            if not self._limiter.hit(item, account):
                reset, _ = self._limiter.get_window_stats(item, account)
                wait = max(1, math.ceil(reset - time.time()))
                raise Throttled(f"rate limit {item} exceeded; try again in {wait} s", wait)
