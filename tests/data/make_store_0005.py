"""How tests/data/store-0005.json was made: a database written by priorauth before the general
request contract (commit 3cbabbb, schema revision 0005), dumped table by table.

It runs only against that commit's code (a checkout of it on PYTHONPATH), since it submits
requests in the old contract:

    git worktree add --detach /tmp/old 3cbabbb
    PYTHONPATH=/tmp/old/src python tests/data/make_store_0005.py /tmp/old tests/data/store-0005.json

Kept so the fixture can be read as the story it is (the test of migration 0006 loads it).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, select, text

from priorauth.service.config import Settings
from priorauth.service.pas import PasService
from priorauth.service.runtime import open_service
from priorauth.service.workflow import Decision

TABLES = (
    "users",
    "policy_versions",
    "safety_versions",
    "cases",
    "determinations",
    "reviews",
    "appeals",
    "authorizations",
    "audit_events",
    "fhir_claims",
)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(minutes=1)
        return self.now


def main(old: Path, out: Path, database: Path) -> None:
    database.unlink(missing_ok=True)
    settings = Settings(database_url=f"sqlite:///{database}", policy_dir=old / "policies")
    service = open_service(settings, Clock())
    service.add_user("clinic", "submitter", "Sunrise Oncology", token="t-clinic")
    service.add_user(
        "pharmacist", "pharmacist", None, "1245319599", "oncology-pharmacy", "t-pharmacist"
    )
    service.add_user("md1", "medical-director", None, "1679576722", "medical-oncology", "t-md1")
    service.add_user("md2", "medical-director", None, "1306849450", "hematology-oncology", "t-md2")
    service.add_user("admin", "admin", token="t-admin")
    clinic = service.authenticate("t-clinic")
    pharmacist = service.authenticate("t-pharmacist")
    md1 = service.authenticate("t-md1")

    def example(name: str, **changes: Any) -> dict[str, Any]:
        request: dict[str, Any] = json.loads((old / "examples" / name).read_text())
        request.update(changes)
        return request

    def submit(name: str, member: str, **changes: Any) -> str:
        case_id: str = service.submit(clinic, example(name, **changes), member).case["case_id"]
        return case_id

    # Approved at once; an earlier authorization and its continuation.
    submit("01-approved-every-3-weeks.json", "M-1")
    submit("01-approved-every-3-weeks.json", "M-7", request_id="PA-2025-000042")
    submit("03-continuation-approved.json", "M-7")
    # Denied by a medical director, then appealed (open, for another medical director).
    denied = submit("04-pended-criteria-not-met-age.json", "M-2")
    service.read(md1, denied)
    service.decide(md1, denied, Decision("deny", "Under 18.", criterion="A"))
    service.appeal(clinic, denied, "Adult dosing applies.")
    # Approved at a modified regimen.
    modified = submit("07-pended-dose-exception.json", "M-3")
    regimen = {"dose": 40, "dose_unit": "mg/m2", "doses_per_cycle": 1, "cycle_length_days": 21}
    service.decide(md1, modified, Decision("approve-modified", "Label dose.", regimen=regimen))
    # Pended for missing information, then approved once it was added (two determinations).
    missing = submit("06-pended-missing-information.json", "M-4")
    patch = {
        "disease": {"metastatic": True},
        "prescriber": {"specialty": "207RX0202X"},
        "patient": {"height_cm": 165, "weight_kg": 70},
    }
    service.add_information(clinic, missing, patch)
    # Still open: a safety review, a reviewer's request for information, no policy.
    submit("10-pended-safety-review.json", "M-5")
    asked = submit("08-pended-conflicting-evidence.json", "M-6")
    service.decide(pharmacist, asked, Decision("request-info", "Is the disease metastatic?"))
    submit("09-pended-no-policy.json", "M-8")
    # A PAS bundle (its request carries `sources`), left pended.
    pas = PasService(service)
    bundle = json.loads((old / "examples" / "fhir" / "pas-pended.json").read_text())
    answer = pas.submit(clinic, bundle)
    assert answer.status == 200, answer

    dump: dict[str, list[dict[str, Any]]] = {}
    with service.database.engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        assert revision == "0005", revision
        for name in TABLES:
            # Reflected, so booleans read as booleans and times as times (ISO text in the dump).
            table = Table(name, MetaData(), autoload_with=connection)
            rows = connection.execute(select(table).order_by(table.c.id))
            dump[name] = [
                {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row._mapping.items()}
                for row in rows
            ]
    service.close()
    out.write_text(json.dumps(dump, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path("/tmp/store-0005.db"))
