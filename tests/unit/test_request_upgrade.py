"""Migration 0006's conversions: old-contract requests and determinations into the new shapes."""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from priorauth.engine.determination import Determination
from priorauth.engine.request import parse_request

MIGRATION = importlib.import_module(
    "priorauth.adapters.store.migrations.versions.0006_general_request"
)
upgrade_request = MIGRATION.upgrade_request
upgrade_determination = MIGRATION.upgrade_determination
# A database written before the general contract (tests/data/make_store_0005.py).
STORE = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "store-0005.json").read_text(encoding="utf-8")
)

OLD: dict[str, Any] = {
    "request_id": "PA-OLD-1",
    "type": "continuation",
    "prior_authorization_id": "PA-OLD-0",
    "urgency": "expedited",
    "received_at": "2026-11-20T14:03:00Z",
    "drug": {"hcpcs": "J9207", "ndc": "70020-1910-01", "name": "ixabepilone kit"},
    "patient": {
        "birth_date": "1968-03-14",
        "sex": "female",
        "height_cm": 165,
        "weight_kg": 68,
        "bsa_m2": None,
        "pregnant": False,
        "breastfeeding": None,
    },
    "diagnoses": ["C50.912", "z17.0"],
    "disease": {
        "metastatic": True,
        "recurrent_unresectable_locoregional": None,
        "no_response_to_preoperative_therapy": False,
        "her2": "negative",
        "hormone_receptor": "positive",
        "triple_negative": None,
    },
    "prescriber": {
        "npi": "1234567893",
        "specialty": "207RX0202X",
        "consulting_oncologist_npi": "1245319599",
    },
    "regimen": {
        "dose": 40,
        "dose_unit": "mg/m2",
        "doses_per_cycle": 1,
        "cycle_length_days": 21,
        "start_date": "2026-12-01",
        "route": "intravenous",
        "with": ["capecitabine"],
    },
    "labs": {
        "anc_per_mm3": 1800,
        "platelets_per_mm3": None,
        "ast_uln_ratio": 1.2,
        "collected_on": "2026-11-18",
    },
    "medications": ["ondansetron", {"name": "ketoconazole", "rxnorm": "6135"}],
    "allergies": [{"name": "penicillin", "rxnorm": "7980", "severity": "severe"}, "latex"],
    "prior_therapies": [
        {
            "agent": "paclitaxel",
            "setting": "metastatic",
            "start_date": "2024-01-10",
            "end_date": "2024-09-30",
            "progression_date": None,
            "progressed_on_therapy": True,
        }
    ],
    "sources": {
        "drug.hcpcs": "Claim/c.item[0].productOrService.coding[0]",
        "diagnoses[1]": "Condition/c2.code.coding[0]",
        "patient.weight_kg": "Observation/w.valueQuantity",
        "labs.collected_on": "Observation/anc.effectiveDateTime",
        "prescriber.specialty": "PractitionerRole/r.specialty[0]",
        "regimen.dose_unit": "MedicationRequest/m.dosageInstruction[0]",
        "prior_therapies[0].agent": "MedicationStatement/p.medicationCodeableConcept",
        "allergies[0].rxnorm": "AllergyIntolerance/a.code",
        "somewhere.else": "Basic/b",
    },
}


def test_an_old_request_maps_field_for_field() -> None:
    old = copy.deepcopy(OLD)
    assert upgrade_request(old) == {
        "request_id": "PA-OLD-1",
        "type": "continuation",
        "prior_authorization_id": "PA-OLD-0",
        "urgency": "expedited",
        "received_at": "2026-11-20T14:03:00Z",
        "service": {
            "code": "J9207",
            "codes": [{"system": "ndc", "code": "70020-1910-01"}],
            "name": "ixabepilone kit",
            "dose": {"value": 40, "unit": "mg/m2"},
            "schedule": {"cycle_length_days": 21, "doses_per_cycle": 1},
            "start_date": "2026-12-01",
            "route": "intravenous",
            "with": ["capecitabine"],
        },
        # Unknowns (null) stay unknown: no breastfeeding, no BSA, no platelets, no answer.
        "patient": {"birth_date": "1968-03-14", "sex": "female", "pregnant": False},
        # z17.0 is already there (any spelling): the hormone receptor adds no second one.
        "conditions": ["C50.912", "z17.0", "Z17.32"],
        "observations": [
            {"code": "8302-2", "value": 165, "unit": "cm"},
            {"code": "29463-7", "value": 68, "unit": "kg"},
            {"code": "751-8", "value": 1800, "unit": "/uL", "date": "2026-11-18"},
            {"code": "1920-8", "uln_multiple": 1.2, "date": "2026-11-18"},
        ],
        "medications": [
            {"name": "ondansetron", "status": "active"},
            {"name": "ketoconazole", "code": "6135", "system": "rxnorm", "status": "active"},
            {
                "name": "paclitaxel",
                "status": "completed",
                "setting": "metastatic",
                "start_date": "2024-01-10",
                "end_date": "2024-09-30",
                "progressed_on_therapy": True,
            },
        ],
        "allergies": [
            {"name": "penicillin", "code": "7980", "system": "rxnorm", "severity": "severe"},
            {"name": "latex"},
        ],
        "practitioners": [
            {"role": "prescriber", "npi": "1234567893", "specialty": "207RX0202X"},
            {"role": "consultant", "npi": "1245319599", "specialty": "oncology"},
        ],
        "answers": {"metastatic": True, "no_response_to_preoperative_therapy": False},
        "sources": {
            "service.code": "Claim/c.item[0].productOrService.coding[0]",
            "conditions[1]": "Condition/c2.code.coding[0]",
            "observations[1]": "Observation/w.valueQuantity",
            "observations[2].date": "Observation/anc.effectiveDateTime",
            "practitioners[0].specialty": "PractitionerRole/r.specialty[0]",
            "service.dose.unit": "MedicationRequest/m.dosageInstruction[0]",
            "medications[2].name": "MedicationStatement/p.medicationCodeableConcept",
            "allergies[0].code": "AllergyIntolerance/a.code",
            "somewhere.else": "Basic/b",
        },
    }
    assert old == OLD, "the old request is not changed"
    parse_request(upgrade_request(old))


def test_a_request_in_the_new_shape_passes_through_unchanged() -> None:
    new = upgrade_request(copy.deepcopy(OLD))
    assert upgrade_request(new) is new
    minimal = {"request_id": "R-1", "service": {"code": "J9207"}}
    assert upgrade_request(minimal) is minimal
    # "With nothing alongside" was said, and stays said.
    alone = {"request_id": "R", "drug": {"hcpcs": "J9207"}, "regimen": {"with": []}}
    assert upgrade_request(alone)["service"] == {"code": "J9207", "with": []}


@pytest.mark.parametrize(
    ("disease", "markers"),
    [
        ({"triple_negative": True}, ["Z17.1", "Z17.22", "Z17.32"]),
        # HER2 "low" has no code; the hormone receptor's Z17.1 is not repeated.
        (
            {"her2": "low", "hormone_receptor": "negative", "triple_negative": True},
            ["Z17.1", "Z17.22", "Z17.32"],
        ),
        ({"her2": "positive", "hormone_receptor": "negative"}, ["Z17.31", "Z17.1"]),
        # Conflicting attestations convert as they are: the engine shows the conflict.
        ({"her2": "positive", "triple_negative": True}, ["Z17.31", "Z17.1", "Z17.22", "Z17.32"]),
        ({"her2": "low", "triple_negative": False, "metastatic": None}, []),
    ],
)
def test_receptor_status_becomes_z17_conditions_once(
    disease: dict[str, Any], markers: list[str]
) -> None:
    new = upgrade_request({"request_id": "R", "drug": {"hcpcs": "J9207"}, "disease": disease})
    assert new.get("conditions", []) == markers
    assert "answers" not in new


def test_a_bare_request_keeps_only_what_it_said() -> None:
    old = {"request_id": "R", "drug": {"code": "99213", "system": "cpt"}, "diagnoses": []}
    assert upgrade_request(old) == {
        "request_id": "R",
        "service": {"codes": [{"system": "cpt", "code": "99213"}]},
    }
    # The old contract let a code go without its system; the new one asks for it, so such a
    # request converts but is then refused with the field named, never decided on a guess.
    orphan = upgrade_request({"request_id": "R", "drug": {"code": "X1"}})
    assert orphan["service"] == {"codes": [{"code": "X1"}]}
    with pytest.raises(Exception, match=r"service\.codes\[0\]\.system"):
        parse_request(orphan)


def test_a_dose_in_mg_and_labs_without_a_date() -> None:
    old = {
        "request_id": "R",
        "drug": {"hcpcs": "J9207"},
        "regimen": {"dose": 28, "dose_unit": "mg", "doses_per_cycle": 3},
        "labs": {"platelets_per_mm3": 90000, "bilirubin_uln_ratio": 0.7, "alt_uln_ratio": None},
    }
    new = upgrade_request(old)
    assert new["service"]["dose"] == {"value": 28, "unit": "mg"}
    assert new["service"]["schedule"] == {"doses_per_cycle": 3}
    assert new["observations"] == [
        {"code": "777-3", "value": 90000, "unit": "/uL"},
        {"code": "1975-2", "uln_multiple": 0.7},
    ]
    parse_request(new)


def test_every_stored_old_request_converts_to_one_the_new_contract_reads() -> None:
    bodies = [row["request_json"] for row in (*STORE["cases"], *STORE["determinations"])]
    assert len(bodies) == 21
    for body in bodies:
        old = json.loads(body)
        assert "drug" in old
        new = upgrade_request(old)
        parsed = parse_request(new)
        assert parsed.request_id == old["request_id"]
        assert upgrade_request(new) is new


def test_every_stored_old_determination_reads_as_a_new_record() -> None:
    for row in STORE["determinations"]:
        old = json.loads(row["determination_json"])
        new = upgrade_determination(old)
        record = Determination.model_validate(new)
        assert upgrade_determination(new) is new
        # What the engine decided is kept as it was.
        for key in ("outcome", "reasons", "summary", "criteria", "facts", "request_hash"):
            assert new[key] == old[key]
        assert record.outcome == old["outcome"]


def test_an_old_authorization_and_dosing_gain_their_new_fields() -> None:
    approved = next(
        json.loads(row["determination_json"])
        for row in STORE["determinations"]
        if '"cycles":' in row["determination_json"]
    )
    old_dosing, old_authorization = approved["dosing"], approved["authorization"]
    new = upgrade_determination(approved)
    authorization = new["authorization"]
    assert (authorization["dose"], authorization["dose_unit"]) == (40, "mg/m2")
    assert (
        authorization["doses"] == old_authorization["doses_per_cycle"] * old_authorization["cycles"]
    )
    for kept in ("mg_per_dose", "billing_code", "units_per_dose", "units", "valid_through"):
        assert authorization[kept] == old_authorization[kept]
    assert not {"cycles", "doses_per_cycle", "cycle_length_days", "dose_mg_per_m2"} & set(
        authorization
    )
    dosing = new["dosing"]
    assert "dose_mg_per_m2" not in dosing
    assert {(c["dose"], c["dose_unit"]) for c in dosing["checks"]} == {
        (old_dosing["dose_mg_per_m2"], "mg/m2")
    }
    assert dosing["mg_per_dose"] == old_authorization["mg_per_dose"]
    assert dosing["requested"]["interval_days"] is None


def test_the_downgrade_refuses_with_a_reason() -> None:
    with pytest.raises(RuntimeError, match=r"no\s+way back to 0005"):
        MIGRATION.downgrade()
