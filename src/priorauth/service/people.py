"""Accounts and bearer tokens: roles, organizations, and tokens kept only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["REVIEWER_ROLES", "ROLES", "Actor", "Role", "hash_token", "new_token"]

Role = Literal["submitter", "pharmacist", "medical-director", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
REVIEWER_ROLES = frozenset({"pharmacist", "medical-director"})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is calling: an account with its role (a submitter acts for an organization)."""

    user_id: int
    name: str
    role: str
    organization: str | None
    npi: str | None
    specialty: str | None

    @property
    def is_reviewer(self) -> bool:
        return self.role in REVIEWER_ROLES


def new_token() -> str:
    """A new bearer token: 256 random bits, shown once and stored only as its hash."""
    return "pa_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # The tokens are long random strings, so a plain SHA-256 is enough (no password stretching).
    return hashlib.sha256(token.encode()).hexdigest()
