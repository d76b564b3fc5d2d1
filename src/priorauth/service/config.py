"""Service settings: the database, decision clocks per line of business, limits.

Read from the environment by `Settings.from_env()`; nothing here connects to anything.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_CLOCKS", "DEFAULT_DATABASE_URL", "DEFAULT_RATE_LIMIT", "Settings"]

DEFAULT_DATABASE_URL = "sqlite:///var/priorauth.db"
# The calls each account may make when PRIORAUTH_RATE_LIMIT is not set (per worker process):
# far above what a clinic's systems send, low enough that one runaway client cannot starve the
# others. PRIORAUTH_RATE_LIMIT=off turns limiting off.
DEFAULT_RATE_LIMIT = "50/second;1500/minute"

# Hours to decide, by line of business and urgency. Medicare Advantage: standard 7 calendar days,
# expedited 72 hours (42 CFR 422.568, 422.572). The drug-specific clocks (72 h / 24 h) are not
# confirmed, so they are left to configuration (PRIORAUTH_CLOCKS) rather than built in.
DEFAULT_CLOCKS: Mapping[str, Mapping[str, float]] = {
    "default": {"standard": 7 * 24, "expedited": 72},
    "medicare-advantage": {"standard": 7 * 24, "expedited": 72},
}


@dataclass(frozen=True)
class Settings:
    """What the service needs to run. `clocks` maps line of business -> urgency -> hours."""

    database_url: str = DEFAULT_DATABASE_URL
    policy_dir: Path | None = None
    clocks: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_CLOCKS)
    extension_hours: float = 14 * 24
    max_body_bytes: int = 1_000_000
    # Hosts a subscription may send notifications to. Notifications carry health information,
    # so an endpoint anywhere else is refused; loopback only unless configured.
    subscription_hosts: frozenset[str] = frozenset({"127.0.0.1", "localhost", "::1"})
    # Calls each account may make, e.g. "20/second;1000/hour" (service.throttle); None: no limit.
    # (from_env gives DEFAULT_RATE_LIMIT unless PRIORAUTH_RATE_LIMIT says otherwise.)
    rate_limit: str | None = None
    # Active FHIR subscriptions one organization may hold.
    max_subscriptions: int = 20

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from PRIORAUTH_* variables (DATABASE_URL, POLICY_DIR, CLOCKS as JSON,
        SUBSCRIPTION_HOSTS as a comma-separated list of host names, RATE_LIMIT like
        20/second;1000/hour)."""
        env = os.environ if environ is None else environ
        clocks: dict[str, Mapping[str, float]] = dict(DEFAULT_CLOCKS)
        if env.get("PRIORAUTH_CLOCKS"):
            try:
                clocks.update(json.loads(env["PRIORAUTH_CLOCKS"]))
            except ValueError as exc:
                message = f"PRIORAUTH_CLOCKS is not JSON hours by line of business: {exc}"
                raise ValueError(message) from exc
        policy_dir = env.get("PRIORAUTH_POLICY_DIR")
        return cls(
            database_url=env.get("PRIORAUTH_DATABASE_URL") or DEFAULT_DATABASE_URL,
            policy_dir=Path(policy_dir) if policy_dir else None,
            clocks=clocks,
            extension_hours=float(env.get("PRIORAUTH_EXTENSION_HOURS", 14 * 24)),
            max_body_bytes=int(env.get("PRIORAUTH_MAX_BODY_BYTES", 1_000_000)),
            subscription_hosts=frozenset(
                h.strip().lower()
                for h in env.get("PRIORAUTH_SUBSCRIPTION_HOSTS", "127.0.0.1,localhost,::1").split(
                    ","
                )
                if h.strip()
            ),
            rate_limit=_rate_limit(env.get("PRIORAUTH_RATE_LIMIT", DEFAULT_RATE_LIMIT)),
            max_subscriptions=int(env.get("PRIORAUTH_MAX_SUBSCRIPTIONS", 20)),
        )

    def clock(self, line_of_business: str, urgency: str) -> dt.timedelta:
        """How long a request of this line of business and urgency may wait for a decision."""
        hours = self.clocks.get(line_of_business, self.clocks["default"]).get(urgency)
        if hours is None:
            hours = self.clocks["default"][urgency]
        return dt.timedelta(hours=hours)


def _rate_limit(text: str | None) -> str | None:
    """The rate limit as given, once it is known to read (ValueError saying what is expected)."""
    if not text or text.strip().lower() in ("off", "none"):
        return None
    from priorauth.service.throttle import parse_rate_limit

    parse_rate_limit(text)
    return text
