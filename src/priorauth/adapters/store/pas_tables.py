"""The tables of the FHIR PAS exchange: claims as received, subscriptions, and the outbox of
notifications waiting to be delivered (written in the same transaction as the decision)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from priorauth import sizes
from priorauth.adapters.store.tables import Base, UtcDateTime

__all__ = ["FhirClaimRow", "OutboxRow", "SubscriptionRow"]


class FhirClaimRow(Base):
    """A PAS request bundle as received, the keys an inquiry finds it by, and its cases.

    `case_ids` is a JSON list with one case id (or null, for an item without a request) per
    Claim item, in order. `status`: active, or cancelled (certificationType 3).
    """

    __tablename__ = "fhir_claims"
    __table_args__ = (
        UniqueConstraint("organization", "claim_identifier", name="uq_fhir_claims_org_claim"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization: Mapped[str] = mapped_column(String(sizes.ORGANIZATION))
    claim_identifier: Mapped[str] = mapped_column(String(sizes.CLAIM_IDENTIFIER))
    submission_hash: Mapped[str] = mapped_column(String(80))
    bundle_json: Mapped[str] = mapped_column(Text)
    patient_keys: Mapped[str] = mapped_column(Text)
    provider_key: Mapped[str] = mapped_column(String(sizes.FHIR_KEYS))
    insurer_key: Mapped[str] = mapped_column(String(sizes.FHIR_KEYS))
    case_ids: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("fhir_claims.id"))
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class SubscriptionRow(Base):
    """An R4 Subscriptions Backport rest-hook subscription of one submitting organization."""

    __tablename__ = "fhir_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(40), unique=True)
    organization: Mapped[str] = mapped_column(String(sizes.ORGANIZATION), index=True)
    endpoint: Mapped[str] = mapped_column(String(sizes.SUBSCRIPTION_ENDPOINT))
    resource_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    events: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class OutboxRow(Base):
    """A notification to deliver: retried with backoff until delivered (or given up)."""

    __tablename__ = "fhir_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_pk: Mapped[int] = mapped_column(ForeignKey("fhir_subscriptions.id"), index=True)
    case_id: Mapped[str] = mapped_column(String(40))
    payload_json: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    failed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
