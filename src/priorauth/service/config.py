"""Service settings: the database, decision clocks per line of business, limits.

Read from the environment by `Settings.from_env()`; nothing here connects to anything.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

__all__ = [
    "DEFAULT_CLOCKS",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_RATE_LIMIT",
    "VARIABLES",
    "Settings",
    "Variable",
    "reference_text",
]

DEFAULT_DATABASE_URL = "sqlite:///var/priorauth.db"
N = TypeVar("N", int, float)
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
    # Start with the policy files that load, leaving out (and naming) those that do not.
    skip_bad_policies: bool = False
    # The Ed25519 private key (PEM) that signs audit checkpoints; None: checkpoints are refused.
    audit_key_file: Path | None = None
    # Minutes between the checkpoints `serve` makes (0: none but those made on demand).
    checkpoint_minutes: float = 60
    # "text" or "json" (one JSON object a line) for the service's log.
    log_format: str = "text"
    # A gold-card exemption list (priorauth goldcard evaluate writes one): consulted before a
    # request is pended (engine.goldcard). None: no gold cards.
    goldcard_exemptions: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from PRIORAUTH_* variables (DATABASE_URL, POLICY_DIR, CLOCKS as JSON,
        SUBSCRIPTION_HOSTS as a comma-separated list of host names, RATE_LIMIT like
        20/second;1000/hour, GOLDCARD_EXEMPTIONS a gold-card exemption list file)."""
        env = os.environ if environ is None else environ
        clocks: dict[str, Mapping[str, float]] = dict(DEFAULT_CLOCKS)
        if env.get("PRIORAUTH_CLOCKS"):
            try:
                clocks.update(json.loads(env["PRIORAUTH_CLOCKS"]))
            except ValueError as exc:
                message = f"PRIORAUTH_CLOCKS is not JSON hours by line of business: {exc}"
                raise ValueError(message) from exc
        policy_dir = env.get("PRIORAUTH_POLICY_DIR")
        key_file = env.get("PRIORAUTH_AUDIT_KEY_FILE")
        return cls(
            database_url=env.get("PRIORAUTH_DATABASE_URL") or DEFAULT_DATABASE_URL,
            policy_dir=Path(policy_dir) if policy_dir else None,
            clocks=clocks,
            extension_hours=_number(env, "PRIORAUTH_EXTENSION_HOURS", 14 * 24.0, float),
            max_body_bytes=_number(env, "PRIORAUTH_MAX_BODY_BYTES", 1_000_000, int),
            subscription_hosts=frozenset(
                h.strip().lower()
                for h in env.get("PRIORAUTH_SUBSCRIPTION_HOSTS", "127.0.0.1,localhost,::1").split(
                    ","
                )
                if h.strip()
            ),
            rate_limit=_rate_limit(env.get("PRIORAUTH_RATE_LIMIT", DEFAULT_RATE_LIMIT)),
            max_subscriptions=_number(env, "PRIORAUTH_MAX_SUBSCRIPTIONS", 20, int),
            audit_key_file=Path(key_file) if key_file else None,
            checkpoint_minutes=_number(env, "PRIORAUTH_CHECKPOINT_MINUTES", 60.0, float),
            log_format=_choice(env, "PRIORAUTH_LOG_FORMAT", ("text", "json")),
            skip_bad_policies=_choice(env, "PRIORAUTH_SKIP_BAD_POLICIES", ("no", "yes")) == "yes",
            goldcard_exemptions=Path(env["PRIORAUTH_GOLDCARD_EXEMPTIONS"])
            if env.get("PRIORAUTH_GOLDCARD_EXEMPTIONS")
            else None,
        )

    def clock(self, line_of_business: str, urgency: str) -> dt.timedelta:
        """How long a request of this line of business and urgency may wait for a decision."""
        hours = self.clocks.get(line_of_business, self.clocks["default"]).get(urgency)
        if hours is None:
            hours = self.clocks["default"][urgency]
        return dt.timedelta(hours=hours)


def _number(env: Mapping[str, str], name: str, default: N, kind: Callable[[str], N]) -> N:
    """A non-negative number from the environment; ValueError naming the variable otherwise."""
    text = env.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < 0:
        kind_name = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name} must be {kind_name} of 0 or more, not {text!r}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    text = env.get(name, choices[0]).strip().lower() or choices[0]
    if text not in choices:
        raise ValueError(f"{name} is one of {', '.join(choices)}, not {text!r}")
    return text


def _rate_limit(text: str | None) -> str | None:
    """The rate limit as given, once it is known to read (ValueError saying what is expected)."""
    if not text or text.strip().lower() in ("off", "none"):
        return None
    from priorauth.service.throttle import parse_rate_limit

    parse_rate_limit(text)
    return text


@dataclass(frozen=True)
class Variable:
    """One environment variable the service reads: its name, its default, what it does."""

    name: str
    default: str
    meaning: str


# Every PRIORAUTH_* variable the service reads (a test greps the code to keep this complete);
# docs/configuration.md and `priorauth serve --help` show it.
VARIABLES: tuple[Variable, ...] = (
    Variable(
        "PRIORAUTH_DATABASE_URL",
        DEFAULT_DATABASE_URL,
        "The database: sqlite:///FILE, or postgresql://USER:PASSWORD@HOST:PORT/NAME "
        "(postgres:// is read as postgresql://). `--database-url` overrides it. Create or "
        "migrate it with `priorauth db upgrade`; every other command refuses a database that "
        "is missing or not migrated.",
    ),
    Variable(
        "PRIORAUTH_POLICY_DIR",
        "the shipped policies/ folder",
        "The folder of policy YAML files (each with its safety data file beside it). A file "
        "that does not load stops `serve` with one line naming it, unless "
        "`--skip-bad-policies` is given.",
    ),
    Variable(
        "PRIORAUTH_SKIP_BAD_POLICIES",
        "no",
        "yes: start with the policy files that load, naming each one that does not (what "
        "`serve --skip-bad-policies` sets); no: one bad file stops the start.",
    ),
    Variable(
        "PRIORAUTH_CLOCKS",
        '{"default": {"standard": 168, "expedited": 72}}',
        "Hours to decide, as JSON by line of business and urgency, laid over the defaults "
        '(e.g. {"part-b": {"standard": 72, "expedited": 24}}).',
    ),
    Variable(
        "PRIORAUTH_EXTENSION_HOURS",
        "336",
        "Hours a reviewer's one extension adds to a case's clock (14 days).",
    ),
    Variable(
        "PRIORAUTH_MAX_BODY_BYTES",
        "1000000",
        "The largest request body accepted; larger bodies are refused with 413.",
    ),
    Variable(
        "PRIORAUTH_SUBSCRIPTION_HOSTS",
        "127.0.0.1,localhost,::1",
        "Comma-separated host names FHIR subscription notifications may be sent to "
        "(notifications carry health information; redirects are never followed).",
    ),
    Variable(
        "PRIORAUTH_MAX_SUBSCRIPTIONS",
        "20",
        "Active FHIR subscriptions one organization may hold; one more is a 422.",
    ),
    Variable(
        "PRIORAUTH_RATE_LIMIT",
        DEFAULT_RATE_LIMIT,
        "Calls each account may make, in each server process (e.g. 20/second;1000/hour); "
        "past it both APIs answer 429 with Retry-After. `off` turns limiting off.",
    ),
    Variable(
        "PRIORAUTH_AUDIT_KEY_FILE",
        "none",
        "An Ed25519 private key (PEM) that signs audit checkpoints "
        "(`priorauth audit keygen FILE` makes one). Without it no checkpoint is made.",
    ),
    Variable(
        "PRIORAUTH_CHECKPOINT_MINUTES",
        "60",
        "Minutes between the signed audit checkpoints `serve` makes (0: only on demand, "
        "`priorauth audit checkpoint`). Needs PRIORAUTH_AUDIT_KEY_FILE.",
    ),
    Variable(
        "PRIORAUTH_SESSION_SECRET",
        "a random secret per process",
        "The secret that signs the workbench's session cookies. Set it when several server "
        "processes share the work (or sessions only work on the process that made them) and so "
        "that a restart does not sign every reviewer out. See docs/workbench.md.",
    ),
    Variable(
        "PRIORAUTH_CRD_FHIR_HOSTS",
        "127.0.0.1,localhost,::1",
        "Comma-separated host names of EHR FHIR servers a CRD hook call may have read for "
        "what its prefetch lacks (with the call's token). Any other fhirServer is not read, "
        "and what it would have given is treated as unknown. See docs/crd-dtr.md.",
    ),
    Variable(
        "PRIORAUTH_DTR_LAUNCH_URL",
        "none",
        "The DTR SMART app a CRD card links to, with the form, the order and the coverage "
        "assertion in its appContext; without it the card links to the questionnaire itself.",
    ),
    Variable(
        "PRIORAUTH_GOLDCARD_EXEMPTIONS",
        "none",
        "A gold-card exemption list (`priorauth goldcard evaluate` writes one): a request "
        "that would pend for medical necessity is approved as exempt when its prescriber "
        "holds an exemption for its policy on the service date (never one pended for "
        "safety review). See docs/batch.md.",
    ),
    Variable(
        "PRIORAUTH_LOG_FORMAT",
        "text",
        "text, or json for one JSON object a line (time, level, logger, message). Neither "
        "ever holds request content: the access log names the method, route template, "
        "status and time only.",
    ),
)


def reference_text() -> str:
    """The variables as plain text, one paragraph each (for `serve --help`)."""
    return "\n\n".join(f"{v.name} (default: {v.default}): {v.meaning}" for v in VARIABLES)
