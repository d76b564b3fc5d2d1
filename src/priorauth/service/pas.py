"""The Da Vinci PAS use cases: `$submit`, `$inquire`, updates and cancellations, subscriptions.

Each governed Claim item goes through the workflow's own submit use case, so a FHIR request
becomes the same case, determination, audit events and queue entry as a REST request. The
bundle as received is kept (with the keys an inquiry matches on) so the current PAS response
can be rebuilt at any time: the engine's answer, with a person's later decision laid over it
(A3 / A6 / A1 and the reviewer extension).

When a person decides a case that came in as FHIR, `enqueue_notifications` (a decision hook)
writes one outbox row per active subscription of the submitting organization, in the same unit
of work as the decision; `service.outbox.OutboxWorker` delivers them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.orm import Session

from priorauth.adapters import fhir
from priorauth.adapters.fhir.lookup import (
    CANCEL,
    ClaimKeys,
    certification_code,
    claim_keys,
    key_problems,
    related_claim,
    stored_keys,
)
from priorauth.adapters.fhir.reviewed import ItemReview, apply_reviews
from priorauth.adapters.fhir.subscription import notification_bundle, read_subscription
from priorauth.adapters.store import (
    AuthorizationRow,
    CaseRow,
    DeterminationRow,
    FhirClaimRow,
    OutboxRow,
    ReviewRow,
    SubscriptionRow,
    execute,
    insert_row,
)
from priorauth.engine.determination import Determination
from priorauth.service.audit import append_event
from priorauth.service.casestate import next_state, review_rules
from priorauth.service.errors import Conflict, Forbidden
from priorauth.service.people import Actor
from priorauth.service.refusals import record_refusal
from priorauth.service.uow import (
    UnitOfWork,
    case_key,
    claim_key,
    request_key,
    subscriptions_key,
)
from priorauth.service.workflow import OPEN_STATUSES, PriorAuthService, canonical
from priorauth.sizes import MEMBER_ID, nul_paths

__all__ = ["FhirAnswer", "PasService", "enqueue_notifications"]

_MEMBER_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")
_NUL = "a NUL character is not accepted"


@dataclass(frozen=True, slots=True)
class FhirAnswer:
    """An HTTP status and the FHIR resource to answer with (a Bundle, a Subscription, or an
    OperationOutcome for a 4xx)."""

    status: int
    body: dict[str, Any]


def _rejected(status: int, problems: Iterable[fhir.Problem]) -> FhirAnswer:
    return FhirAnswer(status, fhir.operation_outcome(problems))


def _problem(status: int, path: str, message: str, code: Any = "invalid") -> FhirAnswer:
    return _rejected(status, [fhir.Problem(path, "error", message, code)])


def _parse(body: bytes | object, root: str = "Bundle") -> tuple[object, FhirAnswer | None]:
    """The JSON of a body, or the OperationOutcome refusing it: not JSON, or text holding a
    NUL character (which PostgreSQL can neither store nor compare), naming each element."""
    if isinstance(body, bytes | bytearray | str):
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None, _problem(400, root, "the body is not JSON", "structure")
    else:
        document = body
    nul = [
        fhir.Problem(f"{root}.{path}" if path else root, "error", _NUL, "invalid")
        for path in nul_paths(document)
    ]
    if nul:
        return None, _rejected(400, nul)
    return document, None


def _sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _stored(document: object) -> str:
    """The bundle as stored and hashed: JSON with sorted keys and no spaces, written by orjson
    (the standard library takes twenty times as long over a request bundle). A document orjson
    cannot write (an integer beyond 64 bits) is written by `canonical`."""
    try:
        return orjson.dumps(document, default=str, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return canonical(document)


def _same_bundle(row: FhirClaimRow, submission_hash: str, document: object) -> bool:
    """Whether a stored claim was made from this bundle: the same hash, or the same JSON (a
    bundle stored with another spelling of its numbers, `1e-07` by the standard library's
    `canonical` against orjson's `1e-7`, is the same bundle)."""
    return row.submission_hash == submission_hash or json.loads(row.bundle_json) == document


def _require_submitter(actor: Actor) -> str:
    if actor.role != "submitter" or actor.organization is None:
        raise Forbidden("only a submitter sends PAS requests")
    return actor.organization


def _member_id(bundle: fhir.PasBundle, keys: ClaimKeys) -> str:
    """The member the request is for: the Patient's first identifier value (the member id in
    the PAS examples), else the patient's key. Cut to what the store accepts."""
    patient = bundle.resolve(bundle.claim.patient.reference)
    identifiers = getattr(patient.resource, "identifier", None) if patient else None
    value = next((i.value for i in identifiers or () if i.value), None)
    member = value or min(keys.patient)
    return _MEMBER_UNSAFE.sub("-", member)[:MEMBER_ID] or "unknown"


def _keys_of(row: FhirClaimRow) -> ClaimKeys:
    return ClaimKeys(
        row.claim_identifier,
        frozenset(json.loads(row.patient_keys)),
        frozenset(json.loads(row.provider_key)),
        frozenset(json.loads(row.insurer_key)),
    )


_CLAIMS = cast(Table, FhirClaimRow.__table__)
_CLAIM_ID = select(_CLAIMS.c.id).where(
    _CLAIMS.c.organization == bindparam("organization"),
    _CLAIMS.c.claim_identifier == bindparam("claim_identifier"),
)


def _find(session: Session, organization: str, claim_identifier: str) -> FhirClaimRow | None:
    """The organization's stored claim with this identifier. Looked up by key first: a new
    claim, the usual case, loads no row."""
    found = execute(
        session, _CLAIM_ID, {"organization": organization, "claim_identifier": claim_identifier}
    ).scalar()
    return None if found is None else session.get_one(FhirClaimRow, found)


def _item_review(
    case: CaseRow, review: ReviewRow | None, authorizations: Sequence[AuthorizationRow]
) -> ItemReview | None:
    """A person's decision on a case as the response shows it (None: the engine's stands)."""
    if case.status == "cancelled":
        return ItemReview("cancelled")
    if review is None or (case.status == "approved" and case.decided_by == "automatic"):
        return None
    npi, specialty = review.reviewer_npi, review.reviewer_specialty
    latest = authorizations[-1] if authorizations else None
    number = latest.authorization_id if latest else None
    period = (latest.valid_from, latest.valid_through) if latest else None
    if case.status == "approved":
        return ItemReview("approved", None, number, period, npi, specialty)
    if case.status == "approved-modified":
        return ItemReview("modified", review.reason, number, period, npi, specialty)
    if case.status == "denied":
        reason = review.reason or "not certified"
        if review.criterion:
            reason = f"{reason} (criterion {review.criterion} not met)"
        elif review.dose_rule:
            reason = f"{reason} (dose rule {review.dose_rule} not met)"
        elif review.reason_code is not None and review.reason_code in review_rules().reasons:
            reason = f"{reason} ({review_rules().reasons[review.reason_code].title.lower()})"
        return ItemReview("denied", reason, None, None, npi, specialty)
    if case.status == "information-requested":
        asked = f"information requested: {review.reason}" if review.reason else None
        return ItemReview("pended", asked, None, None, npi, specialty)
    if case.status == "appealed":
        return ItemReview("pended", "under appeal", None, None, npi, specialty)
    return None


def current_response(
    service: PriorAuthService,
    session: Session,
    row: FhirClaimRow,
    submission: fhir.Submission | None = None,
) -> dict[str, Any]:
    """The PAS response bundle for a stored claim as its cases stand now."""
    if submission is None:
        mapped = fhir.map_bundle(json.loads(row.bundle_json), service.policies)
        if isinstance(mapped, fhir.Rejected):
            # Stored before a stricter mapping (an earlier version read it): the cases stand,
            # but this version cannot build their PAS response from the bundle.
            raise Conflict(
                "the stored claim no longer reads under this version of the service; its cases "
                "are still available under /v1/requests"
            )
        submission = mapped
    case_ids: list[str | None] = json.loads(row.case_ids)
    wanted = [c for c in case_ids if c]
    cases = {
        c.case_id: c for c in session.scalars(select(CaseRow).where(CaseRow.case_id.in_(wanted)))
    }
    pks = [c.id for c in cases.values()]
    latest: dict[int, DeterminationRow] = {
        d.case_pk: d
        for d in session.scalars(
            select(DeterminationRow)
            .where(DeterminationRow.case_pk.in_(pks))
            .order_by(DeterminationRow.id)
        )
    }
    reviews: dict[int, ReviewRow] = {
        r.case_pk: r
        for r in session.scalars(
            select(ReviewRow).where(ReviewRow.case_pk.in_(pks)).order_by(ReviewRow.id)
        )
    }
    granted: dict[int, list[AuthorizationRow]] = {}
    for authorization in session.scalars(
        select(AuthorizationRow)
        .where(AuthorizationRow.case_pk.in_(pks))
        .order_by(AuthorizationRow.id)
    ):
        granted.setdefault(authorization.case_pk, []).append(authorization)

    created = row.received_at
    determinations: list[Determination | None] = []
    item_reviews: list[ItemReview | None] = []
    numbers: dict[str, str] = {}
    for case_id in case_ids:
        case = cases.get(case_id) if case_id else None
        if case is None:
            determinations.append(None)
            item_reviews.append(ItemReview("cancelled") if row.status == "cancelled" else None)
            continue
        determination = Determination.model_validate(json.loads(latest[case.id].determination_json))
        determinations.append(determination)
        authorizations = granted.get(case.id, [])
        if determination.outcome == "approved" and authorizations:
            numbers[determination.request_hash] = authorizations[0].authorization_id
        item_reviews.append(_item_review(case, reviews.get(case.id), authorizations))
        created = max(created, case.updated_at)
    body = fhir.build_response(
        submission,
        determinations,
        created=created,
        number=lambda d: numbers.get(d.request_hash) or fhir.authorization_number(d),
    )
    return apply_reviews(body, item_reviews, issued=created.date())


def enqueue_notifications(
    service: PriorAuthService, uow: UnitOfWork, case: CaseRow, now: dt.datetime
) -> None:
    """A decision hook: queue a notification of the case's current PAS response for each
    active subscription of its organization (nothing when it did not come in as FHIR)."""
    session = uow.session
    subscriptions = list(
        session.scalars(
            select(SubscriptionRow).where(
                SubscriptionRow.organization == case.organization,
                SubscriptionRow.status == "active",
            )
        )
    )
    if not subscriptions:
        return
    row = session.scalar(
        select(FhirClaimRow)
        .where(
            FhirClaimRow.organization == case.organization,
            FhirClaimRow.case_ids.contains(f'"{case.case_id}"'),
            FhirClaimRow.status != "replaced",
        )
        .order_by(FhirClaimRow.id.desc())
        .limit(1)
    )
    if row is None:
        return
    session.flush()
    try:
        response = current_response(service, session, row)
    except Conflict:
        return  # no PAS response to send for a claim this version cannot read; the case stands
    for subscription in subscriptions:
        subscription.events += 1
        session.add(
            OutboxRow(
                subscription_pk=subscription.id,
                case_id=case.case_id,
                payload_json=canonical(
                    notification_bundle(
                        subscription.subscription_id, subscription.events, response, now
                    )
                ),
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )


def _claim_row(
    organization: str,
    keys: ClaimKeys,
    submission_hash: str,
    stored: str,
    case_ids: list[str | None],
    replaces_id: int | None,
    now: dt.datetime,
) -> FhirClaimRow:
    """A new stored claim: the bundle, the keys $inquire matches on, and the cases it made."""
    return FhirClaimRow(
        organization=organization,
        claim_identifier=keys.claim_identifier,
        submission_hash=submission_hash,
        bundle_json=stored,
        patient_keys=canonical(sorted(keys.patient)),
        provider_key=stored_keys(keys.provider),
        insurer_key=stored_keys(keys.insurer),
        case_ids=canonical(case_ids),
        status="active",
        replaces_id=replaces_id,
        received_at=now,
        updated_at=now,
    )


class PasService:
    """The PAS exchange over a started workflow service."""

    def __init__(self, service: PriorAuthService) -> None:
        self.service = service
        self.database = service.database
        if enqueue_notifications not in service.decision_hooks:
            service.decision_hooks.append(enqueue_notifications)

    # ------------------------------------------------------------------ $submit

    def submit(self, actor: Actor, body: bytes | object) -> FhirAnswer:
        """`Claim/$submit`: a PAS request bundle in, the PAS response bundle out (200), or an
        OperationOutcome (400 for a broken PAS rule, 409 for a reused claim identifier).

        The same bundle again answers the same response. A Claim whose related.claim names an
        earlier request of the organization updates it (open items are decided again); with
        certificationType 3 it cancels it.
        """
        organization = _require_submitter(actor)
        document, failed = _parse(body)
        if failed is not None:
            return failed
        mapped = fhir.map_bundle(document, self.service.policies)
        if isinstance(mapped, fhir.Rejected):
            return _rejected(400, mapped.problems)
        keys = claim_keys(mapped.bundle)
        too_long = key_problems(keys)
        if too_long:
            return _rejected(400, too_long)
        earlier_identifier = related_claim(mapped.bundle)
        if certification_code(mapped.bundle) == CANCEL:
            return self._cancel(actor, organization, earlier_identifier or keys.claim_identifier)
        # The bundle as stored, and its hash: the same bundle again is the same request.
        stored = _stored(document)
        submission_hash = _sha256(stored)
        claim_keys_held = [
            claim_key(organization, identifier)
            for identifier in (keys.claim_identifier, earlier_identifier)
            if identifier
        ]
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            uow.lock(*claim_keys_held)
            row = _find(uow.session, organization, keys.claim_identifier)
            if row is not None:
                if not _same_bundle(row, submission_hash, document):
                    return _problem(
                        409,
                        "Bundle.entry[0].resource.identifier",
                        "this claim identifier was sent before with a different bundle; "
                        "send an update that names it in Claim.related.claim",
                        "duplicate",
                    )
                return FhirAnswer(200, current_response(self.service, uow.session, row, mapped))
            earlier = (
                _find(uow.session, organization, earlier_identifier)
                if earlier_identifier and earlier_identifier != keys.claim_identifier
                else None
            )
            if earlier is None:
                return self._submit_new(uow, actor, stored, mapped, keys, submission_hash)
            earlier_cases: list[str | None] = json.loads(earlier.case_ids)
            earlier_id = earlier.id
        member_id = _member_id(mapped.bundle, keys)
        case_ids: list[str | None] = []
        for index, item in enumerate(mapped.items):
            if item.request is None:
                case_ids.append(None)
                continue
            reuse = earlier_cases[index] if index < len(earlier_cases) else None
            if reuse is not None and self._is_open(reuse):
                # An update of an item still waiting: the resubmitted claim is the whole
                # request now, so it replaces the stored one and is decided again.
                case = self.service.add_information(actor, reuse, item.request, replace=True)
            else:
                case = self.service.submit(actor, item.request, member_id).case
            case_ids.append(case["case_id"])
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            uow.lock(*claim_keys_held)
            now = self.service.clock()
            row = _find(uow.session, organization, keys.claim_identifier)
            if row is None:
                row = _claim_row(
                    organization, keys, submission_hash, stored, case_ids, earlier_id, now
                )
                uow.session.add(row)
                if earlier_id is not None:
                    replaced = uow.session.get(FhirClaimRow, earlier_id)
                    if replaced is not None:
                        replaced.status = "replaced"
                        replaced.updated_at = now
                uow.session.flush()
                append_event(
                    uow,
                    actor.name,
                    "fhir.claim.updated" if earlier_id else "fhir.claim.received",
                    None,
                    {"items": len(case_ids), "cases": [c for c in case_ids if c]},
                    now,
                )
            elif not _same_bundle(row, submission_hash, document):
                raise Conflict("the claim identifier is being submitted with another bundle")
            answer = current_response(self.service, uow.session, row, mapped)
            uow.commit()
        return FhirAnswer(200, answer)

    def _submit_new(
        self,
        uow: UnitOfWork,
        actor: Actor,
        stored: str,
        mapped: fhir.Submission,
        keys: ClaimKeys,
        submission_hash: str,
    ) -> FhirAnswer:
        """A new request: its cases, the claim and the audit events commit together."""
        assert actor.organization is not None
        member_id = _member_id(mapped.bundle, keys)
        case_ids: list[str | None] = []
        determinations: list[Determination | None] = []
        numbers: dict[str, str] = {}
        fresh = True
        # Every item's request id before the first is submitted (its audit event holds the
        # chain, and a writer holding the chain takes no more keys).
        uow.lock(
            *(
                request_key(actor.organization, str(item.request.get("request_id")))
                for item in mapped.items
                if item.request is not None
            )
        )
        for item in mapped.items:
            if item.request is None:
                case_ids.append(None)
                determinations.append(None)
                continue
            submitted = self.service.submit_in(
                uow, actor, item.request, member_id, parsed=item.parsed
            )
            case_ids.append(submitted.case["case_id"])
            determinations.append(submitted.determination)
            # A request_id already known (sent through the REST API, say) has a history.
            fresh = fresh and submitted.determination is not None
            authorizations = submitted.case["authorizations"]
            if submitted.determination is not None and authorizations:
                numbers[submitted.determination.request_hash] = authorizations[0][
                    "authorization_id"
                ]
        now = self.service.clock()
        row = _claim_row(actor.organization, keys, submission_hash, stored, case_ids, None, now)
        insert_row(uow.session, row)
        append_event(
            uow,
            actor.name,
            "fhir.claim.received",
            None,
            {"items": len(case_ids), "cases": [c for c in case_ids if c]},
            now,
        )
        if fresh:
            # What current_response would rebuild from the store (the engine's answers, made
            # before `now`), without reading it back.
            answer = fhir.build_response(
                mapped,
                determinations,
                created=now,
                number=lambda d: numbers.get(d.request_hash) or fhir.authorization_number(d),
            )
        else:
            answer = current_response(self.service, uow.session, row, mapped)
        uow.commit()
        return FhirAnswer(200, answer)

    def _is_open(self, case_id: str) -> bool:
        with UnitOfWork(self.database) as uow:
            status = uow.session.scalar(select(CaseRow.status).where(CaseRow.case_id == case_id))
        return status in ("pended", "information-requested")

    def _cancel(self, actor: Actor, organization: str, claim_identifier: str) -> FhirAnswer:
        """certificationType 3: cancel the earlier request's cases that are not yet denied."""
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            uow.lock(claim_key(organization, claim_identifier))
            row = _find(uow.session, organization, claim_identifier)
            if row is None:
                return _problem(
                    404,
                    "Bundle.entry[0].resource.related",
                    "no earlier request of this organization has that claim identifier",
                    "not-found",
                )
            now = self.service.clock()
            wanted = [c for c in json.loads(row.case_ids) if c]
            uow.lock(*(case_key(c) for c in wanted))
            for case in uow.session.scalars(select(CaseRow).where(CaseRow.case_id.in_(wanted))):
                if case.status in (*OPEN_STATUSES, "approved", "approved-modified"):
                    case.status = next_state(case.status, "cancel")
                    case.queue = None
                    case.updated_at = now
                    append_event(uow, actor.name, "request.cancelled", case.case_id, {}, now)
            if row.status != "cancelled":
                row.status = "cancelled"
                row.updated_at = now
            uow.session.flush()
            answer = current_response(self.service, uow.session, row)
            uow.commit()
        return FhirAnswer(200, answer)

    # ------------------------------------------------------------------ $inquire

    def inquire(self, actor: Actor, body: bytes | object) -> FhirAnswer:
        """`Claim/$inquire`: find a request of the caller's organization by claim identifier,
        patient identifier, provider and insurer, and answer its current response bundle."""
        organization = _require_submitter(actor)
        document, failed = _parse(body)
        if failed is not None:
            return failed
        read = fhir.read_bundle(document)
        if isinstance(read, fhir.Rejected):
            return _rejected(400, read.problems)
        keys = claim_keys(read)
        too_long = key_problems(keys)
        if too_long:
            return _rejected(400, too_long)
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            row = _find(uow.session, organization, keys.claim_identifier)
            if row is not None and row.status == "replaced":
                row = uow.session.scalar(
                    select(FhirClaimRow)
                    .where(FhirClaimRow.replaces_id == row.id)
                    .order_by(FhirClaimRow.id.desc())
                    .limit(1)
                )
            if row is None or not _keys_of(row).matches(
                ClaimKeys(row.claim_identifier, keys.patient, keys.provider, keys.insurer)
            ):
                # Another organization's request answers exactly like one that does not exist.
                return _problem(
                    404,
                    "Bundle.entry[0].resource",
                    "no request matches this claim identifier, patient, provider and insurer",
                    "not-found",
                )
            append_event(
                uow,
                actor.name,
                "fhir.claim.inquired",
                None,
                {"cases": [c for c in json.loads(row.case_ids) if c]},
                self.service.clock(),
            )
            answer = current_response(self.service, uow.session, row)
            uow.commit()
        return FhirAnswer(200, answer)

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, actor: Actor, body: bytes | object) -> FhirAnswer:
        """Register a rest-hook subscription for the caller's organization (201)."""
        organization = _require_submitter(actor)
        document, failed = _parse(body, "Subscription")
        if failed is not None:
            return failed
        request = read_subscription(document)
        if isinstance(request, list):
            return _rejected(400, request)
        host = (urlsplit(request.endpoint).hostname or "").lower()
        if host not in self.service.settings.subscription_hosts:
            return _rejected(
                400,
                [
                    fhir.Problem(
                        "Subscription.channel.endpoint",
                        "error",
                        "notifications may only go to the hosts this plan allows "
                        "(PRIORAUTH_SUBSCRIPTION_HOSTS)",
                        "value",
                    )
                ],
            )
        subscription_id = uuid.uuid4().hex
        resource = dict(request.resource)
        resource["id"] = subscription_id
        resource["status"] = "active"
        limit = self.service.settings.max_subscriptions
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            uow.lock(subscriptions_key(organization))
            held = uow.session.scalar(
                select(func.count())
                .select_from(SubscriptionRow)
                .where(
                    SubscriptionRow.organization == organization,
                    SubscriptionRow.status == "active",
                )
            )
            if (held or 0) >= limit:
                return _problem(
                    422,
                    "Subscription",
                    f"an organization holds at most {limit} active subscriptions "
                    "(PRIORAUTH_MAX_SUBSCRIPTIONS)",
                    "business-rule",
                )
            now = self.service.clock()
            uow.session.add(
                SubscriptionRow(
                    subscription_id=subscription_id,
                    organization=organization,
                    endpoint=request.endpoint,
                    resource_json=canonical(resource),
                    status="active",
                    events=0,
                    created_at=now,
                )
            )
            append_event(
                uow,
                actor.name,
                "fhir.subscription.added",
                None,
                {"id": subscription_id},
                now,
            )
            uow.commit()
        return FhirAnswer(201, resource)

    def subscription(self, actor: Actor, subscription_id: str) -> FhirAnswer:
        """One of the caller's organization's subscriptions."""
        organization = _require_submitter(actor)
        with UnitOfWork(self.database) as uow:
            row = uow.session.scalar(
                select(SubscriptionRow).where(SubscriptionRow.subscription_id == subscription_id)
            )
            if row is not None and row.organization != organization:
                # Answered like one that does not exist, and on the record.
                record_refusal(uow, actor, subscription_id, self.service.clock(), "subscription")
                row = None
            if row is None:
                return _problem(404, "Subscription", "no such subscription", "not-found")
            resource: dict[str, Any] = json.loads(row.resource_json)
        return FhirAnswer(200, resource)
