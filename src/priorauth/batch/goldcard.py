"""Gold cards: rules as data, approval rates per provider and service, the exemption list,
and samples for a rescission review.

A gold-card law (Texas HB 3459, and others) exempts a provider from prior authorization for a
service when enough of their requests for it were approved over a lookback: here, at least
`threshold_percent` of at least `minimum_requests` decided requests in the `lookback_days`
before the evaluation date. The service is the policy (one drug or drug family). The rates
are computed with SQL on DuckDB over a table `decisions(npi, service, decided_on, approved,
reference)`, read from the store (final decisions, people's included) or from a batch's
Parquet (the engine's outcome: pended counts as not approved, a conservative reading).
Requests approved as exempt are left out: they were never reviewed.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from priorauth.engine.goldcard import ExemptionEntry, ExemptionList

__all__ = [
    "DECISIONS",
    "GoldCardError",
    "GoldCardRules",
    "ProviderRate",
    "decisions_from_parquet",
    "decisions_from_store",
    "evaluate_rates",
    "exemption_document",
    "load_exemptions",
    "load_rules",
    "review_sample",
]

DECISIONS = pa.schema(
    [
        ("npi", pa.string()),
        ("service", pa.string()),
        ("decided_on", pa.date32()),
        ("approved", pa.bool_()),
        ("exempt", pa.bool_()),
        # The request id (batch) or case id (store), for review samples.
        ("reference", pa.string()),
    ]
)


class GoldCardError(ValueError):
    """A rules or exemption file that cannot be used; the message says what and where."""


class ReviewSampleRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    minimum: Annotated[int, Field(ge=1)] = 5
    maximum: Annotated[int, Field(ge=1)] = 20

    @model_validator(mode="after")
    def _ordered(self) -> ReviewSampleRule:
        if self.maximum < self.minimum:
            raise ValueError("review_sample: maximum is less than minimum")
        return self


class GoldCardRules(BaseModel):
    """The rules of a gold-card program, as a YAML file gives them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold_percent: Annotated[float, Field(gt=0, le=100)] = 90.0
    lookback_days: Annotated[int, Field(ge=1, le=3660)] = 365
    minimum_requests: Annotated[int, Field(ge=1)] = 5
    # Policy ids the program covers, or ["all"].
    services: Annotated[list[str], Field(min_length=1)] = ["all"]
    # How long an exemption lasts from its effective date.
    exemption_days: Annotated[int, Field(ge=1, le=3660)] = 365
    review_sample: ReviewSampleRule = ReviewSampleRule()

    def covers(self, service: str) -> bool:
        return "all" in self.services or service in self.services


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GoldCardError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise GoldCardError(f"{path}: not valid YAML: {exc}") from exc


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
    )


def load_rules(path: str | Path) -> GoldCardRules:
    """The rules in a YAML file; GoldCardError naming each field at fault."""
    source = Path(path)
    data = _yaml(source)
    try:
        return GoldCardRules.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise GoldCardError(f"{source}: {_problems(exc)}") from exc


class ExemptionRecord(BaseModel):
    """One exemption as the list file keeps it, with the figures it was granted on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    npi: Annotated[str, Field(pattern=r"^[0-9]{10}$")]
    service: Annotated[str, Field(min_length=1)]
    effective_from: dt.date
    effective_through: dt.date
    requests: int | None = None
    approved: int | None = None
    approval_percent: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ExemptionRecord:
        if self.effective_through < self.effective_from:
            raise ValueError("effective_through is before effective_from")
        return self


class ExemptionFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    evaluated_on: dt.date | None = None
    rules: GoldCardRules | None = None
    exemptions: list[ExemptionRecord] = []


def read_exemption_file(path: str | Path) -> ExemptionFile:
    source = Path(path)
    data = _yaml(source)
    try:
        return ExemptionFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise GoldCardError(f"{source}: {_problems(exc)}") from exc


def load_exemptions(path: str | Path) -> ExemptionList:
    """The exemption list in a YAML file, for the engine (PolicySet(exemptions=...))."""
    return ExemptionList(
        ExemptionEntry(e.npi, e.service, e.effective_from, e.effective_through)
        for e in read_exemption_file(path).exemptions
    )


def decisions_from_parquet(path: Path) -> pa.Table:
    """The decisions of a batch's determinations (priorauth batch decide's Parquet): its
    engine outcome, by the request's received date (else its as-of date)."""
    table = pq.read_table(
        path,
        columns=[
            "request_id",
            "prescriber_npi",
            "policy_id",
            "received_on",
            "as_of",
            "outcome",
            "exemption",
        ],
    )
    rows = table.to_pydict()
    decided = [r or a for r, a in zip(rows["received_on"], rows["as_of"], strict=True)]
    return pa.table(
        {
            "npi": rows["prescriber_npi"],
            "service": rows["policy_id"],
            "decided_on": decided,
            "approved": [o == "approved" for o in rows["outcome"]],
            "exempt": [e is not None for e in rows["exemption"]],
            "reference": rows["request_id"],
        },
        schema=DECISIONS,
    )


def decisions_from_store(database_url: str) -> pa.Table:
    """The store's decided cases: approved (automatically, by a reviewer, or modified) or
    denied, by the day of the decision; cases still open are not counted."""
    import orjson
    from sqlalchemy import select

    from priorauth.adapters.store import CaseRow, DeterminationRow
    from priorauth.adapters.store.database import DatabaseNotReady
    from priorauth.adapters.store.readiness import open_ready

    try:
        database = open_ready(database_url)
    except DatabaseNotReady as exc:
        raise GoldCardError(str(exc)) from exc
    columns: dict[str, list[Any]] = {name: [] for name in DECISIONS.names}
    try:
        with database.session() as session:
            latest: dict[int, str] = {}
            for case_pk, text in session.execute(
                select(DeterminationRow.case_pk, DeterminationRow.determination_json).order_by(
                    DeterminationRow.id
                )
            ):
                latest[case_pk] = text
            for case in session.scalars(
                select(CaseRow).where(
                    CaseRow.status.in_(("approved", "approved-modified", "denied"))
                )
            ):
                if case.decided_at is None or case.id not in latest:
                    continue
                determination = orjson.loads(latest[case.id])
                policy = determination.get("policy") or {}
                request = orjson.loads(case.request_json)
                npi = next(
                    (
                        p.get("npi")
                        for p in request.get("practitioners", [])
                        if p.get("role", "prescriber") == "prescriber" and p.get("npi")
                    ),
                    None,
                )
                columns["npi"].append(npi)
                columns["service"].append(policy.get("id"))
                columns["decided_on"].append(case.decided_at.date())
                columns["approved"].append(case.status != "denied")
                columns["exempt"].append(determination.get("exemption") is not None)
                columns["reference"].append(case.case_id)
    finally:
        database.dispose()
    return pa.table(columns, schema=DECISIONS)


class ProviderRate(BaseModel):
    """A provider's figures for one service over the lookback, and whether they qualify."""

    model_config = ConfigDict(frozen=True)

    npi: str
    service: str
    requests: int
    approved: int
    approval_percent: float
    qualifies: bool
    why: str


RATES_SQL = """
SELECT npi, service, count(*) AS requests,
       sum(CASE WHEN approved THEN 1 ELSE 0 END) AS approved
FROM decisions
WHERE NOT exempt AND npi IS NOT NULL AND service IS NOT NULL
  AND decided_on > CAST($start AS DATE) AND decided_on <= CAST($end AS DATE)
GROUP BY npi, service
ORDER BY service, npi
"""


def evaluate_rates(decisions: pa.Table, rules: GoldCardRules, on: dt.date) -> list[ProviderRate]:
    """Each provider's approval rate per covered service over the lookback ending on `on`
    (the day before the evaluation date and the `lookback_days` before it)."""
    import duckdb

    end = on - dt.timedelta(days=1)
    start = end - dt.timedelta(days=rules.lookback_days)
    connection = duckdb.connect()
    try:
        connection.register("decisions", decisions)
        found = connection.execute(
            RATES_SQL, {"start": start.isoformat(), "end": end.isoformat()}
        ).fetchall()
    finally:
        connection.close()
    rates = []
    for npi, service, requests, approved in found:
        if not rules.covers(service):
            continue
        percent = round(100 * approved / requests, 2)
        if requests < rules.minimum_requests:
            qualifies, why = False, f"{requests} request(s), fewer than {rules.minimum_requests}"
        elif percent < rules.threshold_percent:
            qualifies, why = False, f"{percent}% approved, below {rules.threshold_percent:g}%"
        else:
            qualifies, why = True, f"{percent}% of {requests} approved"
        rates.append(
            ProviderRate(
                npi=npi,
                service=service,
                requests=requests,
                approved=int(approved),
                approval_percent=percent,
                qualifies=qualifies,
                why=why,
            )
        )
    return rates


def exemption_document(
    rates: Iterable[ProviderRate], rules: GoldCardRules, on: dt.date
) -> dict[str, Any]:
    """The exemption list for the providers that qualify, effective from `on`, as the YAML
    file keeps it."""
    through = on + dt.timedelta(days=rules.exemption_days - 1)
    return {
        "evaluated_on": on.isoformat(),
        "rules": rules.model_dump(mode="json"),
        "exemptions": [
            {
                "npi": r.npi,
                "service": r.service,
                "effective_from": on.isoformat(),
                "effective_through": through.isoformat(),
                "requests": r.requests,
                "approved": r.approved,
                "approval_percent": r.approval_percent,
            }
            for r in rates
            if r.qualifies
        ],
    }


def review_sample(
    decisions: pa.Table,
    npi: str,
    service: str,
    since: dt.date,
    rules: GoldCardRules,
    size: int | None = None,
    seed: int = 0,
) -> tuple[list[str], int]:
    """A random sample of a provider's requests for a service approved as exempt since a date,
    for a rescission review: (the references sampled, how many there were). The size is
    `size` if given, else the rules' minimum, kept within their minimum and maximum; with
    fewer requests than that, all of them."""
    rows = decisions.to_pylist()
    eligible: Sequence[str] = sorted(
        str(r["reference"])
        for r in rows
        if r["npi"] == npi
        and r["service"] == service
        and r["exempt"]
        and r["decided_on"] is not None
        and r["decided_on"] >= since
    )
    wanted = size if size is not None else rules.review_sample.minimum
    wanted = max(rules.review_sample.minimum, min(rules.review_sample.maximum, wanted))
    if len(eligible) <= wanted:
        return list(eligible), len(eligible)
    return sorted(random.Random(seed).sample(list(eligible), wanted)), len(eligible)
