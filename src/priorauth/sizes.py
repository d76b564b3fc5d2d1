"""The longest text each stored column holds: one place for the tables and for the contracts
that feed them, so that what the contract accepts the database can store.

PostgreSQL refuses a varchar longer than its column and any text with a NUL character (an error,
where SQLite stores either); the contracts refuse both first (`no_nul`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = [
    "ACCOUNT_NAME",
    "CLAIM_IDENTIFIER",
    "CRITERION",
    "DOSE_RULE",
    "FHIR_KEYS",
    "LINE_OF_BUSINESS",
    "MEMBER_ID",
    "NPI",
    "ORGANIZATION",
    "POLICY_ID",
    "QUEUE",
    "REASON_CODE",
    "REQUEST_ID",
    "SPECIALTY",
    "SUBSCRIPTION_ENDPOINT",
    "has_nul",
    "no_nul",
    "nul_paths",
]

# Accounts (users.*).
ACCOUNT_NAME = 200
ORGANIZATION = 200
NPI = 10
SPECIALTY = 100
# Cases (cases.*): the submitter's request id, the member, the line of business, the queue.
REQUEST_ID = 64
MEMBER_ID = 64
LINE_OF_BUSINESS = 64
QUEUE = 32
# A reviewer's decision (reviews.*): the unmet criterion or dose rule it names.
CRITERION = 100
DOSE_RULE = 100
# A denial's reason code (reviews.reason_code), from the review rules.
REASON_CODE = 40
# Policies (policy_versions.policy_id).
POLICY_ID = 100
# FHIR PAS (fhir_claims.*, fhir_subscriptions.endpoint): the claim identifier, the provider's
# and insurer's keys (a JSON list of `system|value` strings), the rest-hook endpoint.
CLAIM_IDENTIFIER = 200
FHIR_KEYS = 400
SUBSCRIPTION_ENDPOINT = 2000


def no_nul(value: str) -> str:
    """`value` unchanged; ValueError when it holds a NUL character (a pydantic validator)."""
    if "\x00" in value:
        raise ValueError("a NUL character is not accepted")
    return value


def has_nul(data: Any) -> bool:
    """Whether any string, or mapping key, in parsed JSON holds a NUL (no paths built: the
    common answer, no, costs one walk)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            for key, value in item.items():
                if isinstance(key, str) and "\x00" in key:
                    return True
                stack.append(value)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def nul_paths(data: Any, path: str = "") -> Iterator[str]:
    """The paths (`a.b[0].c`) of every string, or mapping key, in parsed JSON holding a NUL."""
    if isinstance(data, str):
        if "\x00" in data:
            yield path
    elif isinstance(data, dict):
        for key, value in data.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                yield inner
            else:
                yield from nul_paths(value, inner)
    elif isinstance(data, list | tuple):
        for index, value in enumerate(data):
            yield from nul_paths(value, f"{path}[{index}]")
