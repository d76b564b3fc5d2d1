"""Stored requests move to the general request contract (issue #11), so they still replay.

Revision ID: 0006
Revises: 0005

The request contract changed from fields shaped for one drug (`drug`, `diagnoses`, `disease`,
`prescriber`, `regimen`, `labs`, `prior_therapies`) to the shape of the clinical record
(`service`, `conditions`, `observations`, `medications`, `practitioners`, `answers`), and the
determination records changed with it. A request stored in the old shape no longer parses, and
a determination stored in the old shape no longer reads, so a case pended before the upgrade
could not be decided, re-decided or replayed after it. This revision rewrites them:

- `cases.request_json` and `determinations.request_json`: each request through
  `upgrade_request` (below; old fields mapped one to one onto the new ones, nothing decided).
  A request already in the new shape (it has no `drug`) is left as it is, so running the
  conversion twice changes nothing.
- `determinations.determination_json`: through `upgrade_determination`, which only gives the
  records their new fields (the requested schedule's cycle days, induction and interval: none;
  the dose in mg/m2 each regimen was checked with as the check's dose; an authorization's
  dose in mg/m2 and its number of doses, doses per cycle x cycles). Outcomes, reasons,
  criteria, facts, evidence and summaries are kept word for word: they are what the engine
  decided then, in the field names of the request it decided on (so a fact's evidence still
  names `patient.height_cm`).
- `cases.submission_hash`: recomputed over the converted request, so the idempotency check
  keeps meaning "the same body gives the same case": re-sending the converted body answers with
  the stored case, any other body for that request_id is a 409. A client that re-sends its *old*
  body gets a 422: the old contract no longer parses, before any look-up (docs/request.md).
- `determinations.request_hash` (and the `request_hash` inside the stored determination) is
  kept: it is the hash of the body the determination was made on, and PAS authorization
  numbers are derived from it. The body it hashes is gone from the table; the audit event
  below keeps the hash of each stored text before and after, so a backup can still be checked.

Determinations are append-only: the database refuses UPDATE on them (revision 0002). This
revision lifts that guard for its own rewrite, inside its own transaction, and puts it back
before it commits; nothing else can write meanwhile (on PostgreSQL it holds the service's
write lock).

The audit chain is not touched: its events never hold request bodies (service.audit keeps
identifiers, outcomes and reason codes only), so no event's hash covers what changes here and
`priorauth audit verify` holds as before. The rewrite is not silent either: for each case it
changes, one `request.upgraded` event by `system` is appended to the chain, with the revision
and the SHA-256 of every text it replaced and of its replacement.

Left as recorded: reviewers' regimens (`reviews.regimen_json`) and authorizations' regimens
(`authorizations.regimen_json`) are what people approved, in the words of the time; the FHIR
bundles (`fhir_claims.bundle_json`) are FHIR, mapped afresh on each read.

A few old requests convert but do not parse under the new contract, since it checks more: a
drug code in a code system it does not know (or with no system), a height under 20 cm, a
weight under 0.3 kg or a BSA under 0.05 m2, a prior therapy that ends before it starts. They
are kept as converted; deciding them again (new information, replay) answers with the field at
fault, never a crash.

There is no way back: the new contract holds more than the old one could (any code system, any
observation), so `downgrade` refuses. Restore the backup taken before upgrading instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from priorauth.service.audit import GENESIS, event_hash

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Body measures and laboratory values of the old contract -> LOINC code and UCUM unit.
_MEASURES = (
    ("height_cm", "8302-2", "cm"),
    ("weight_kg", "29463-7", "kg"),
    ("bsa_m2", "8277-6", "m2"),
)
_COUNTS = (("anc_per_mm3", "751-8", "/uL"), ("platelets_per_mm3", "777-3", "/uL"))
_ULN_MULTIPLES = (
    ("ast_uln_ratio", "1920-8"),
    ("alt_uln_ratio", "1742-6"),
    ("bilirubin_uln_ratio", "1975-2"),
)
# Attested disease flags that became answers to the policy's questions (same ids).
_ANSWERS = (
    "metastatic",
    "recurrent_unresectable_locoregional",
    "no_response_to_preoperative_therapy",
)
# Receptor status -> ICD-10-CM Z17 codes (HER2 "low" has no code of its own and is dropped).
_HER2 = {"positive": "Z17.31", "negative": "Z17.32"}
_HORMONE_RECEPTOR = {"positive": "Z17.0", "negative": "Z17.1"}
_TRIPLE_NEGATIVE = ("Z17.1", "Z17.22", "Z17.32")
_THERAPY_FIELDS = ("setting", "start_date", "end_date", "progression_date", "progressed_on_therapy")


def upgrade_request(old: dict[str, Any]) -> dict[str, Any]:
    """A request of the old contract in the new one; a request already in the new shape (one
    without `drug`, which the old contract required and the new one refuses) is returned as it
    is. Pure: nothing is looked up, nothing is decided, `old` is not changed.

    Null means unknown in both contracts, so an old null is left out, never turned into a no.
    `sources` keys (field paths of the old shape) are renamed to the fields they moved to.
    """
    if "drug" not in old:
        return old
    new: dict[str, Any] = {}
    # Old field path -> new field path, for the `sources` map.
    moved: dict[str, str] = {}
    for key in ("request_id", "type", "prior_authorization_id", "urgency", "received_at"):
        if key in old:
            new[key] = old[key]
            moved[key] = key
    new["service"] = _service(old["drug"] or {}, old.get("regimen") or {}, moved)

    patient = old.get("patient") or {}
    kept = {
        key: patient[key]
        for key in ("birth_date", "sex", "pregnant", "breastfeeding")
        if patient.get(key) is not None
    }
    if kept:
        new["patient"] = kept
        moved.update({f"patient.{key}": f"patient.{key}" for key in kept})

    conditions = _conditions(old.get("diagnoses") or (), old.get("disease") or {}, moved)
    if conditions:
        new["conditions"] = conditions
    observations = _observations(patient, old.get("labs") or {}, moved)
    if observations:
        new["observations"] = observations
    medications = _medications(
        old.get("medications") or (), old.get("prior_therapies") or (), moved
    )
    if medications:
        new["medications"] = medications
    allergies: list[dict[str, Any]] = []
    for index, item in enumerate(old.get("allergies") or ()):
        allergy = {"name": item} if isinstance(item, str) else _coded_by_name(item)
        if not isinstance(item, str) and item.get("severity") is not None:
            allergy["severity"] = item["severity"]
        moved[f"allergies[{index}]"] = f"allergies[{len(allergies)}]"
        moved[f"allergies[{index}].rxnorm"] = f"allergies[{len(allergies)}].code"
        allergies.append(allergy)
    if allergies:
        new["allergies"] = allergies
    practitioners = _practitioners(old.get("prescriber") or {}, moved)
    if practitioners:
        new["practitioners"] = practitioners
    disease = old.get("disease") or {}
    answers = {key: disease[key] for key in _ANSWERS if disease.get(key) is not None}
    if answers:
        new["answers"] = answers
        moved.update({f"disease.{key}": f"answers.{key}" for key in answers})
    if old.get("sources"):
        new["sources"] = {_moved_path(path, moved): where for path, where in old["sources"].items()}
    return new


def _service(
    drug: dict[str, Any], regimen: dict[str, Any], moved: dict[str, str]
) -> dict[str, Any]:
    service: dict[str, Any] = {}
    if drug.get("hcpcs") is not None:
        # `code` is HCPCS unless a system is given (the contract's shorthand).
        service["code"] = drug["hcpcs"]
        moved["drug.hcpcs"] = "service.code"
    codes: list[dict[str, Any]] = []
    if drug.get("ndc") is not None:
        moved["drug.ndc"] = f"service.codes[{len(codes)}]"
        codes.append({"system": "ndc", "code": drug["ndc"]})
    if drug.get("code") is not None:
        moved["drug.code"] = f"service.codes[{len(codes)}].code"
        moved["drug.system"] = f"service.codes[{len(codes)}].system"
        # An old code without its system keeps no system: the new contract asks for one.
        coding = {"code": drug["code"]}
        if drug.get("system") is not None:
            coding = {"system": drug["system"], **coding}
        codes.append(coding)
    if codes:
        service["codes"] = codes
    if drug.get("name") is not None:
        service["name"] = drug["name"]
        moved["drug.name"] = "service.name"
    if regimen.get("dose") is not None:
        service["dose"] = {"value": regimen["dose"], "unit": regimen.get("dose_unit")}
        moved["regimen.dose"] = "service.dose.value"
        moved["regimen.dose_unit"] = "service.dose.unit"
    schedule = {
        key: regimen[key]
        for key in ("cycle_length_days", "doses_per_cycle")
        if regimen.get(key) is not None
    }
    if schedule:
        service["schedule"] = schedule
        moved.update({f"regimen.{key}": f"service.schedule.{key}" for key in schedule})
    for key in ("start_date", "route"):
        if regimen.get(key) is not None:
            service[key] = regimen[key]
            moved[f"regimen.{key}"] = f"service.{key}"
    given_with = regimen.get("with", regimen.get("with_"))
    if given_with is not None:
        # Kept when empty too: "with nothing" was said, not left unknown.
        service["with"] = list(given_with)
        moved["regimen.with"] = "service.with"
    return service


def _conditions(diagnoses: Any, disease: dict[str, Any], moved: dict[str, str]) -> list[str]:
    """ICD-10-CM codes, bare (the contract's shorthand for a condition in that system)."""
    conditions: list[str] = []
    for index, code in enumerate(diagnoses):
        moved[f"diagnoses[{index}]"] = f"conditions[{len(conditions)}]"
        conditions.append(code)
    # The same code spelt with or without its dot, in either case, is one condition.
    present = {str(code).strip().upper().replace(".", "") for code in conditions}
    markers: list[tuple[str, str]] = []
    her2 = _HER2.get(disease.get("her2") or "")
    if her2 is not None:
        markers.append(("disease.her2", her2))
    receptor = _HORMONE_RECEPTOR.get(disease.get("hormone_receptor") or "")
    if receptor is not None:
        markers.append(("disease.hormone_receptor", receptor))
    if disease.get("triple_negative") is True:
        markers.extend(("disease.triple_negative", code) for code in _TRIPLE_NEGATIVE)
    for path, code in markers:
        key = code.replace(".", "")
        if key in present:
            continue
        present.add(key)
        moved.setdefault(path, f"conditions[{len(conditions)}]")
        conditions.append(code)
    return conditions


def _observations(
    patient: dict[str, Any], labs: dict[str, Any], moved: dict[str, str]
) -> list[dict[str, Any]]:
    observations: list[dict[str, Any]] = []

    def observe(path: str, observation: dict[str, Any]) -> None:
        moved[path] = f"observations[{len(observations)}]"
        observations.append(observation)

    for field, code, unit in _MEASURES:
        if patient.get(field) is not None:
            observe(f"patient.{field}", {"code": code, "value": patient[field], "unit": unit})
    dated = {"date": labs["collected_on"]} if labs.get("collected_on") is not None else {}
    first_lab = len(observations)
    for field, code, unit in _COUNTS:
        if labs.get(field) is not None:
            observe(f"labs.{field}", {"code": code, "value": labs[field], "unit": unit, **dated})
    for field, code in _ULN_MULTIPLES:
        if labs.get(field) is not None:
            observe(f"labs.{field}", {"code": code, "uln_multiple": labs[field], **dated})
    if dated and len(observations) > first_lab:
        moved["labs.collected_on"] = f"observations[{first_lab}].date"
    return observations


def _coded_by_name(item: dict[str, Any]) -> dict[str, Any]:
    """`{name, rxnorm}` as `{name, code, system: rxnorm}`."""
    entry: dict[str, Any] = {"name": item["name"]}
    if item.get("rxnorm") is not None:
        entry.update(code=item["rxnorm"], system="rxnorm")
    return entry


def _medications(current: Any, therapies: Any, moved: dict[str, str]) -> list[dict[str, Any]]:
    medications: list[dict[str, Any]] = []
    for index, item in enumerate(current):
        entry = {"name": item} if isinstance(item, str) else _coded_by_name(item)
        moved[f"medications[{index}]"] = f"medications[{len(medications)}]"
        moved[f"medications[{index}].rxnorm"] = f"medications[{len(medications)}].code"
        medications.append({**entry, "status": "active"})
    for index, therapy in enumerate(therapies):
        at = len(medications)
        moved[f"prior_therapies[{index}]"] = f"medications[{at}]"
        moved[f"prior_therapies[{index}].agent"] = f"medications[{at}].name"
        entry = {"name": therapy["agent"], "status": "completed"}
        entry.update({key: therapy[key] for key in _THERAPY_FIELDS if therapy.get(key) is not None})
        medications.append(entry)
    return medications


def _practitioners(prescriber: dict[str, Any], moved: dict[str, str]) -> list[dict[str, Any]]:
    practitioners: list[dict[str, Any]] = []
    known = {
        key: prescriber[key] for key in ("npi", "specialty") if prescriber.get(key) is not None
    }
    if known:
        moved.update({f"prescriber.{key}": f"practitioners[0].{key}" for key in known})
        practitioners.append({"role": "prescriber", **known})
    if prescriber.get("consulting_oncologist_npi") is not None:
        moved["prescriber.consulting_oncologist_npi"] = f"practitioners[{len(practitioners)}].npi"
        practitioners.append(
            {
                "role": "consultant",
                "npi": prescriber["consulting_oncologist_npi"],
                "specialty": "oncology",
            }
        )
    return practitioners


def _moved_path(path: str, moved: dict[str, str]) -> str:
    """Where an old field path went: the field itself, else the entry or object holding it
    (`prior_therapies[0].setting` -> `medications[2].setting`); unknown paths stay."""
    head, rest = path, ""
    while True:
        if head in moved:
            return moved[head] + rest
        cut = max(head.rfind("."), head.rfind("["))
        if cut <= 0:
            return path
        head, rest = head[:cut], head[cut:] + rest


def upgrade_determination(old: dict[str, Any]) -> dict[str, Any]:
    """A stored determination with the fields the new records have and the old ones lacked;
    one already in the new shape is returned as it is. Nothing the engine decided changes.

    The old records knew one dose unit (mg/m2): the dosing result's `dose_mg_per_m2` is the
    dose each regimen was checked with, so it becomes each check's dose; an authorization's
    `dose_mg_per_m2` becomes its dose in mg/m2 and its doses per cycle x cycles its doses."""
    dosing = old.get("dosing")
    authorization = old.get("authorization")
    old_dosing = isinstance(dosing, dict) and "dose_mg_per_m2" in dosing
    old_authorization = isinstance(authorization, dict) and "cycles" in authorization
    if not (old_dosing or old_authorization):
        return old
    new = dict(old)
    if isinstance(dosing, dict) and old_dosing:
        new["dosing"] = _dosing(dosing, authorization)
    if isinstance(authorization, dict) and old_authorization:
        new["authorization"] = _authorization(authorization)
    return new


def _dosing(dosing: dict[str, Any], authorization: dict[str, Any] | None) -> dict[str, Any]:
    per_m2 = dosing["dose_mg_per_m2"]
    checked = {"dose": per_m2, "dose_unit": "mg/m2" if per_m2 is not None else None}
    requested = dosing.get("requested") or {}
    mg_per_dose = None
    if requested.get("dose_unit") == "mg":
        mg_per_dose = requested.get("dose")
    elif authorization is not None:
        mg_per_dose = authorization.get("mg_per_dose")
    return {
        "status": dosing["status"],
        "requested": {
            "dose": requested.get("dose"),
            "dose_unit": requested.get("dose_unit"),
            "cycle_length_days": requested.get("cycle_length_days"),
            "doses_per_cycle": requested.get("doses_per_cycle"),
            "cycle_days": None,
            "induction_days": None,
            "interval_days": None,
            "route": None,
        },
        "bsa_m2": dosing.get("bsa_m2"),
        "bsa_source": dosing.get("bsa_source"),
        "weight_kg": None,
        "weight_source": None,
        "mg_per_dose": mg_per_dose,
        "regimen": dosing.get("regimen"),
        "checks": [{**check, **checked} for check in dosing.get("checks") or ()],
    }


def _authorization(authorization: dict[str, Any]) -> dict[str, Any]:
    per_m2 = authorization.get("dose_mg_per_m2")
    per_cycle, cycles = authorization.get("doses_per_cycle"), authorization.get("cycles")
    return {
        "valid_from": authorization["valid_from"],
        "valid_through": authorization["valid_through"],
        "regimen": authorization["regimen"],
        "regimen_text": authorization["regimen_text"],
        "dose": per_m2,
        "dose_unit": "mg/m2" if per_m2 is not None else None,
        "doses": per_cycle * cycles if per_cycle is not None and cycles is not None else None,
        "mg_per_dose": authorization.get("mg_per_dose"),
        "billing_code": authorization.get("billing_code"),
        "units_per_dose": authorization.get("units_per_dose"),
        "units": authorization.get("units"),
        "continues": authorization.get("continues"),
    }


# ------------------------------------------------------------------------- the rewrite

# The service's write lock on PostgreSQL (adapters.store.database): running servers wait.
_WRITE_LOCK = 0x70A0_0001
_BATCH = 500

_cases = sa.table(
    "cases",
    sa.column("id", sa.Integer),
    sa.column("case_id", sa.String),
    sa.column("member_id", sa.String),
    sa.column("line_of_business", sa.String),
    sa.column("submission_hash", sa.String),
    sa.column("request_json", sa.Text),
)
_determinations = sa.table(
    "determinations",
    sa.column("id", sa.Integer),
    sa.column("case_pk", sa.Integer),
    sa.column("request_json", sa.Text),
    sa.column("determination_json", sa.Text),
)
_events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer),
    sa.column("at", sa.DateTime),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("case_id", sa.String),
    sa.column("detail_json", sa.Text),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)


def _canonical(data: Any) -> str:
    """The service's canonical JSON (service.workflow.canonical): sorted keys, no spaces."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _converted(
    text: str, convert: Callable[[dict[str, Any]], dict[str, Any]], dump: Callable[[Any], str]
) -> str:
    """The stored JSON text converted, or the same text when there was nothing to convert."""
    data = json.loads(text)
    new = convert(data)
    return text if new is data else dump(new)


def _determination_text(data: Any) -> str:
    """Compact JSON in field order, as the engine's model_dump_json writes a determination."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


class _Chain:
    """Appends events to the audit chain the way service.audit.append_event does."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        last = connection.execute(
            sa.select(_events.c.id, _events.c.hash).order_by(_events.c.id.desc()).limit(1)
        ).first()
        self.last_id: int = 0 if last is None else last.id
        self.last_hash: str = GENESIS if last is None else last.hash
        self.at = dt.datetime.now(dt.UTC)

    def append(self, action: str, case_id: str, detail: dict[str, Any]) -> None:
        event_id = self.last_id + 1
        detail_json = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
        digest = event_hash(
            event_id, self.at, "system", action, case_id, detail_json, self.last_hash
        )
        self.connection.execute(
            _events.insert().values(
                id=event_id,
                at=self.at.replace(tzinfo=None),  # stored as naive UTC, like UtcDateTime
                actor="system",
                action=action,
                case_id=case_id,
                detail_json=detail_json,
                prev_hash=self.last_hash,
                hash=digest,
            )
        )
        self.last_id, self.last_hash = event_id, digest


def _lift_guard(postgres: bool) -> None:
    if postgres:
        op.execute("ALTER TABLE determinations DISABLE TRIGGER determinations_append_only")
    else:
        op.execute("DROP TRIGGER determinations_no_update")


def _restore_guard(postgres: bool) -> None:
    if postgres:
        op.execute("ALTER TABLE determinations ENABLE TRIGGER determinations_append_only")
    else:
        op.execute(
            "CREATE TRIGGER determinations_no_update BEFORE UPDATE ON determinations "
            "BEGIN SELECT RAISE(ABORT, 'determinations is append-only'); END"
        )


def _upgrade_case(connection: sa.Connection, chain: _Chain, case: sa.Row[Any]) -> None:
    detail: dict[str, Any] = {"revision": revision}
    request_json = _converted(case.request_json, upgrade_request, _canonical)
    if request_json != case.request_json:
        submission = {
            "member_id": case.member_id,
            "line_of_business": case.line_of_business,
            "request": json.loads(request_json),
        }
        connection.execute(
            _cases.update()
            .where(_cases.c.id == case.id)
            .values(request_json=request_json, submission_hash=_sha256(_canonical(submission)))
        )
        detail["request"] = {"before": _sha256(case.request_json), "after": _sha256(request_json)}
    changed: dict[str, Any] = {}
    for row in connection.execute(
        sa.select(_determinations)
        .where(_determinations.c.case_pk == case.id)
        .order_by(_determinations.c.id)
    ).all():
        texts = {
            "request_json": _converted(row.request_json, upgrade_request, _canonical),
            "determination_json": _converted(
                row.determination_json, upgrade_determination, _determination_text
            ),
        }
        before = {"request_json": row.request_json, "determination_json": row.determination_json}
        if texts == before:
            continue
        connection.execute(
            _determinations.update().where(_determinations.c.id == row.id).values(**texts)
        )
        changed[str(row.id)] = {
            name.removesuffix("_json"): {"before": _sha256(before[name]), "after": _sha256(text)}
            for name, text in texts.items()
            if text != before[name]
        }
    if changed:
        detail["determinations"] = changed
    if len(detail) > 1:
        chain.append("request.upgraded", case.case_id, detail)


def upgrade() -> None:
    connection = op.get_bind()
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK})
    chain = _Chain(connection)
    _lift_guard(postgres)
    after = 0
    while True:
        batch = connection.execute(
            sa.select(_cases).where(_cases.c.id > after).order_by(_cases.c.id).limit(_BATCH)
        ).all()
        if not batch:
            break
        for case in batch:
            _upgrade_case(connection, chain, case)
        after = batch[-1].id
    _restore_guard(postgres)


def downgrade() -> None:
    raise RuntimeError(
        "revision 0006 converted the stored requests to the general request contract, which "
        "holds more than the old one could (any code system, any observation): there is no "
        "way back to 0005. Restore the database backup taken before upgrading instead."
    )
