"""FHIR elements -> request fields: what is read, what is left unknown, what refuses the
bundle, and where each field came from."""

from __future__ import annotations

from typing import Any

import pytest

import priorauth
from priorauth import PolicySet
from priorauth.adapters.fhir import Problem, Rejected, Submission, map_bundle
from tests.unit.test_fhir_support import fhir_example, remove, resource

HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
NUCC = "http://nucc.org/provider-taxonomy"
NPI = "http://hl7.org/fhir/sid/us-npi"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def mapped(bundle: dict[str, Any], policies: PolicySet) -> tuple[dict[str, Any], list[Problem]]:
    """The first item's request (checked against the contract) and the warnings."""
    submission = map_bundle(bundle, policies)
    assert isinstance(submission, Submission), getattr(submission, "problems", None)
    request = submission.items[0].request
    assert request is not None
    priorauth.parse_request(request)
    return request, list(submission.problems)


def refused(bundle: dict[str, Any], policies: PolicySet) -> dict[str, str]:
    """The elements a refused bundle is refused for: {FHIRPath: message}."""
    result = map_bundle(bundle, policies)
    assert isinstance(result, Rejected), "expected the bundle to be refused"
    return {p.path: p.message for p in result.problems if p.blocking}


def where(bundle: dict[str, Any], key: str) -> str:
    """The FHIRPath of the resource `Type/id` in a bundle: `Bundle.entry[3].resource`."""
    for index, entry in enumerate(bundle["entry"]):
        found = entry["resource"]
        if f"{found['resourceType']}/{found.get('id')}" == key:
            return f"Bundle.entry[{index}].resource"
    raise KeyError(key)


def add(bundle: dict[str, Any], found: dict[str, Any]) -> None:
    """Add a resource to a bundle."""
    url = f"https://provider.example.org/fhir/{found['resourceType']}/{found['id']}"
    bundle["entry"].append({"fullUrl": url, "resource": found})


def observation(key: str, loinc: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": key,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": "Patient/pat-1"},
        "effectiveDateTime": "2026-11-19",
        **value,
    }


def entries(request: dict[str, Any], name: str, **match: Any) -> list[tuple[int, dict[str, Any]]]:
    """The entries of a list field whose fields match, with their places."""
    return [
        (index, entry)
        for index, entry in enumerate(request.get(name, ()))
        if all(entry.get(k) == v for k, v in match.items())
    ]


@pytest.fixture
def bundle() -> dict[str, Any]:
    return fhir_example("pas-approvable.json")


# --- the patient and the Claim -----------------------------------------------------------------


def test_a_missing_element_leaves_the_field_unknown_never_false(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    del resource(bundle, "Patient/pat-1")["birthDate"]
    remove(bundle, "QuestionnaireResponse/dtr-1")
    del resource(bundle, "Claim/claim-1")["supportingInfo"]
    request, _ = mapped(bundle, policies)
    assert request["patient"] == {"sex": "female"}
    assert "answers" not in request
    assert "patient.birth_date" not in request["sources"]


def test_a_partial_birth_date_is_unknown_with_a_warning(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "Patient/pat-1")["birthDate"] = "1968"
    request, problems = mapped(bundle, policies)
    assert "birth_date" not in request["patient"]
    assert [p.path for p in problems] == [f"{where(bundle, 'Patient/pat-1')}.birthDate"]
    assert "1968" not in problems[0].message


def test_urgency_and_continuation(bundle: dict[str, Any], policies: PolicySet) -> None:
    claim = resource(bundle, "Claim/claim-1")
    claim["priority"] = {"coding": [{"code": "stat"}]}
    claim["extension"] = [
        {
            "url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-certificationType",
            "valueCodeableConcept": {"coding": [{"code": "4"}]},
        }
    ]
    claim["related"] = [{"claim": {"identifier": {"value": "PA-2025-000042"}}}]
    request, _ = mapped(bundle, policies)
    assert request["urgency"] == "expedited"
    assert request["type"] == "continuation"
    assert request["prior_authorization_id"] == "PA-2025-000042"
    assert request["received_at"] == "2026-11-20T14:03:00+00:00"


# --- conditions ----------------------------------------------------------------------------------


def test_conditions_in_every_known_system_and_refuted_ones_skipped(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    condition = resource(bundle, "Condition/cond-2")
    condition["code"]["coding"].insert(0, {"system": "http://snomed.info/sct", "code": "94391008"})
    condition["clinicalStatus"] = {"coding": [{"code": "relapse"}]}
    condition["onsetDateTime"] = "2026-06-02"
    add(
        bundle,
        {
            "resourceType": "Condition",
            "id": "cond-3",
            "verificationStatus": {"coding": [{"code": "refuted"}]},
            "code": {"coding": [{"system": ICD10, "code": "C79.51"}]},
            "subject": {"reference": "Patient/pat-1"},
        },
    )
    request, _ = mapped(bundle, policies)
    assert [(c["system"], c["code"]) for c in request["conditions"]] == [
        ("icd-10-cm", "C50.912"),
        ("snomed", "94391008"),
        ("icd-10-cm", "C78.01"),
    ]
    assert request["conditions"][2]["status"] == "recurrence"
    assert request["conditions"][2]["onset_date"] == "2026-06-02"
    assert request["sources"]["conditions[2]"] == "Condition/cond-2.code.coding[1]"
    assert request["sources"]["conditions[2].status"] == (
        "Condition/cond-2.clinicalStatus.coding[0]"
    )


def test_claim_diagnosis_codeable_concepts_are_read(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    claim = resource(bundle, "Claim/claim-1")
    claim["diagnosis"] = [
        {
            "sequence": 1,
            "diagnosisCodeableConcept": {"coding": [{"system": ICD10, "code": "c50912"}]},
        }
    ]
    remove(bundle, "Condition/cond-1")
    remove(bundle, "Condition/cond-2")
    request, _ = mapped(bundle, policies)
    assert request["conditions"] == [{"code": "c50912", "system": "icd-10-cm"}]
    assert priorauth.parse_request(request).conditions[0].code == "C50.912"
    assert request["sources"]["conditions[0]"] == (
        "Claim/claim-1.diagnosis[0].diagnosisCodeableConcept.coding[0]"
    )


def test_a_tumour_morphology_in_icd_o_3(bundle: dict[str, Any], policies: PolicySet) -> None:
    """As Condition.code, or in mCODE's histology extension on the primary cancer."""
    condition = resource(bundle, "Condition/cond-1")
    condition["extension"] = [
        {
            "url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-histology-morphology-behavior",
            "valueCodeableConcept": {
                "coding": [{"system": "urn:oid:2.16.840.1.113883.6.43.1", "code": "8500/3"}]
            },
        }
    ]
    request, _ = mapped(bundle, policies)
    ((index, entry),) = entries(request, "conditions", system="icd-o-3")
    assert entry["code"] == "8500/3"
    assert request["sources"][f"conditions[{index}]"] == (
        "Condition/cond-1.extension[0].valueCodeableConcept.coding[0]"
    )


def test_a_condition_only_in_an_unknown_system_refuses_the_bundle(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "Condition/cond-2")["code"]["coding"] = [
        {"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": "174.9"}
    ]
    problems = refused(bundle, policies)
    path = f"{where(bundle, 'Condition/cond-2')}.code.coding[0].system"
    assert "unknown code system 'http://hl7.org/fhir/sid/icd-9-cm'" in problems[path]


def test_a_condition_with_a_known_coding_beside_a_local_one_is_read(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "Condition/cond-2")["code"]["coding"].append(
        {"system": "urn:oid:1.2.3.4.5", "code": "LOCAL-77"}
    )
    request, _ = mapped(bundle, policies)
    assert [c["code"] for c in request["conditions"]] == ["C50.912", "C78.01"]


def test_a_code_the_contract_refuses_is_named(bundle: dict[str, Any], policies: PolicySet) -> None:
    resource(bundle, "Condition/cond-2")["code"]["coding"][0]["code"] = "not-icd"
    problems = refused(bundle, policies)
    assert list(problems) == [f"{where(bundle, 'Condition/cond-2')}.code.coding[0]"]
    assert "not an ICD-10-CM code" in next(iter(problems.values()))


# --- the service -------------------------------------------------------------------------------


def test_the_service_from_the_item_and_its_order(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    request, _ = mapped(bundle, policies)
    assert request["service"] == {
        "codes": [{"system": "hcpcs", "code": "J9207"}],
        "name": "Injection, ixabepilone, 1 mg",
        "start_date": "2026-12-01",
        "dose": {"value": 40, "unit": "mg/m2"},
        "schedule": {"cycle_length_days": 21, "doses_per_cycle": 1},
        "route": "intravenous",
    }
    sources = request["sources"]
    assert sources["service.codes[0]"] == "Claim/claim-1.item[0].productOrService.coding[0]"
    order = "MedicationRequest/order-1.dosageInstruction[0]"
    assert sources["service.dose"] == f"{order}.doseAndRate[0].doseQuantity"
    assert sources["service.schedule"] == f"{order}.timing.repeat"


def test_ndc_and_rxnorm_codes_of_the_item_and_the_order(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    item = resource(bundle, "Claim/claim-1")["item"][0]
    item["productOrService"] = {
        "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "70020191001"}]
    }
    order = resource(bundle, "MedicationRequest/order-1")
    order["medicationCodeableConcept"]["coding"].append({"system": RXNORM, "code": "712553"})
    request, _ = mapped(bundle, policies)
    assert request["service"]["codes"] == [
        {"system": "ndc", "code": "70020191001"},
        {"system": "hcpcs", "code": "J9207"},
        {"system": "rxnorm", "code": "712553"},
    ]
    assert priorauth.parse_request(request).service.codes[0].code == "70020-1910-01"
    assert request["sources"]["service.codes[2]"] == (
        "MedicationRequest/order-1.medicationCodeableConcept.coding[1]"
    )


def test_an_item_in_an_unknown_code_system_refuses_the_bundle(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    item = resource(bundle, "Claim/claim-1")["item"][0]
    item["productOrService"] = {"coding": [{"system": "urn:example:drugs", "code": "IXA-1"}]}
    problems = refused(bundle, policies)
    path = "Bundle.entry[0].resource.item[0].productOrService.coding[0].system"
    assert "unknown code system 'urn:example:drugs'" in problems[path]


@pytest.mark.parametrize(
    ("repeat", "expected"),
    [
        (
            {"frequency": 3, "period": 28, "periodUnit": "d"},
            {"cycle_length_days": 28, "doses_per_cycle": 3},
        ),
        (
            {"frequency": 1, "period": 3, "periodUnit": "wk"},
            {"cycle_length_days": 21, "doses_per_cycle": 1},
        ),
        ({"period": 21, "periodUnit": "d"}, {"cycle_length_days": 21, "doses_per_cycle": 1}),
        # Once every so many months or years: an interval in calendar months (the engine
        # compares it with days as the fewest days it spans, never sparser).
        ({"frequency": 1, "period": 6, "periodUnit": "mo"}, {"interval_months": 6}),
        ({"frequency": 1, "period": 1, "periodUnit": "mo"}, {"interval_months": 1}),
        ({"frequency": 1, "period": 2, "periodUnit": "a"}, {"interval_months": 24}),
        # Twice a month: the fewest days a month spans, as a cycle.
        (
            {"frequency": 2, "period": 1, "periodUnit": "mo"},
            {"cycle_length_days": 28, "doses_per_cycle": 2},
        ),
        ({"frequency": 1, "period": 1.5, "periodUnit": "mo"}, None),
        ({"frequency": 1, "period": 1.5, "periodUnit": "d"}, None),
        ({"frequency": 2, "period": 1, "periodUnit": "h"}, None),
        ({"frequency": 1}, None),
    ],
)
def test_a_cycle_from_timing_repeat_where_it_is_whole_days(
    bundle: dict[str, Any],
    policies: PolicySet,
    repeat: dict[str, Any],
    expected: dict[str, int] | None,
) -> None:
    dosage = resource(bundle, "MedicationRequest/order-1")["dosageInstruction"][0]
    dosage["timing"] = {"repeat": repeat}
    request, problems = mapped(bundle, policies)
    assert request["service"].get("schedule") == expected
    if expected is None and "period" in repeat:
        assert any(p.path.endswith("dosageInstruction[0].timing.repeat") for p in problems)


def test_an_induction_on_given_dates_then_a_maintenance_interval(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    """Weeks 0, 2 and 6, then every 8 weeks, as two dosage instructions in sequence."""
    order = resource(bundle, "MedicationRequest/order-1")
    dose = {"doseQuantity": {"value": 5, "unit": "mg/kg", "system": UCUM, "code": "mg/kg"}}
    order["dosageInstruction"] = [
        {
            "sequence": 2,
            "timing": {"repeat": {"frequency": 1, "period": 8, "periodUnit": "wk"}},
            "doseAndRate": [dose],
        },
        {
            "sequence": 1,
            "timing": {"event": ["2026-12-01", "2026-12-15", "2027-01-12"]},
            "doseAndRate": [dose],
        },
    ]
    del resource(bundle, "Claim/claim-1")["item"][0]["servicedDate"]
    request, _ = mapped(bundle, policies)
    service = request["service"]
    assert service["schedule"] == {"induction_days": [0, 14, 42], "interval_days": 56}
    assert service["dose"] == {"value": 5, "unit": "mg/kg"}
    assert service["start_date"] == "2026-12-01"
    assert request["sources"]["service.start_date"] == (
        "MedicationRequest/order-1.dosageInstruction[1].timing.event[0]"
    )


def test_days_of_a_cycle_from_its_first_dates(bundle: dict[str, Any], policies: PolicySet) -> None:
    """Days 1 and 8 of a 21-day cycle: two doses a period, given on the first cycle's dates."""
    dosage = resource(bundle, "MedicationRequest/order-1")["dosageInstruction"][0]
    dosage["timing"] = {
        "event": ["2026-12-01", "2026-12-08"],
        "repeat": {"frequency": 2, "period": 21, "periodUnit": "d"},
    }
    request, _ = mapped(bundle, policies)
    assert request["service"]["schedule"] == {"cycle_length_days": 21, "cycle_days": [1, 8]}


def test_a_dose_in_a_volume_is_left_unknown_with_a_warning(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    dosage = resource(bundle, "MedicationRequest/order-1")["dosageInstruction"][0]
    dosage["doseAndRate"][0]["doseQuantity"] = {"value": 4, "unit": "mL", "code": "mL"}
    request, problems = mapped(bundle, policies)
    assert "dose" not in request["service"]
    assert any(p.path.endswith("doseAndRate[0].doseQuantity") for p in problems)


def test_dosage_instructions_that_disagree_leave_the_dose_unknown(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    order = resource(bundle, "MedicationRequest/order-1")
    second = {
        "sequence": 2,
        "doseAndRate": [{"doseQuantity": {"value": 16, "system": UCUM, "code": "mg/m2"}}],
    }
    order["dosageInstruction"].append(second)
    request, problems = mapped(bundle, policies)
    assert "dose" not in request["service"]
    assert any("different doses" in p.message for p in problems)


@pytest.mark.parametrize(
    ("quantity", "element", "words"),
    [
        ({"value": 40, "system": UCUM, "code": "mgs/m2"}, "code", "unknown unit 'mgs/m2'"),
        ({"value": 40, "unit": "milligrams per sq m"}, "unit", "unknown unit"),
        ({"value": 40, "system": "urn:example:units", "code": "MGM2"}, "system", "not a UCUM"),
    ],
)
def test_a_dose_unit_that_is_not_ucum_refuses_the_bundle(
    bundle: dict[str, Any],
    policies: PolicySet,
    quantity: dict[str, Any],
    element: str,
    words: str,
) -> None:
    dosage = resource(bundle, "MedicationRequest/order-1")["dosageInstruction"][0]
    dosage["doseAndRate"][0]["doseQuantity"] = quantity
    problems = refused(bundle, policies)
    path = (
        f"{where(bundle, 'MedicationRequest/order-1')}"
        f".dosageInstruction[0].doseAndRate[0].doseQuantity.{element}"
    )
    assert words in problems[path]


def test_one_request_per_item_each_with_its_own_order(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    claim = resource(bundle, "Claim/claim-1")
    second = dict(claim["item"][0])
    second["sequence"] = 2
    second["productOrService"] = {"coding": [{"system": HCPCS, "code": "J9171"}]}
    del second["extension"]
    claim["item"].append(second)
    submission = map_bundle(bundle, policies)
    assert isinstance(submission, Submission)
    first, other = (item.request for item in submission.items)
    assert first is not None and other is not None
    assert first["request_id"] == "PAS-2026-0001-1" and other["request_id"] == "PAS-2026-0001-2"
    assert first["service"]["dose"] == {"value": 40, "unit": "mg/m2"}
    assert "dose" not in other["service"]  # its order is not named, so not guessed
    assert other["service"]["codes"] == [{"system": "hcpcs", "code": "J9171"}]
    # The order of item 1 is the service asked for, not a medication the patient takes.
    assert [m["name"] for m in other["medications"]] == ["capecitabine"]


def test_an_item_with_no_code_and_no_known_name_has_no_request(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    claim = resource(bundle, "Claim/claim-1")
    claim["item"].append({"sequence": 2, "productOrService": {"text": "an office visit"}})
    submission = map_bundle(bundle, policies)
    assert isinstance(submission, Submission)
    assert submission.items[1].request is None
    assert submission.items[1].note is not None and "names no code" in submission.items[1].note


# --- observations --------------------------------------------------------------------------------


def test_observations_keep_their_ucum_units_and_dates(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    """A weight in pounds and a count in 10*3/uL are carried as sent: the engine converts."""
    add(
        bundle,
        observation(
            "weight-2",
            "29463-7",
            valueQuantity={"value": 154, "unit": "lb", "system": UCUM, "code": "[lb_av]"},
        ),
    )
    request, _ = mapped(bundle, policies)
    ((index, weight),) = entries(request, "observations", code="29463-7", value=154)
    assert weight == {
        "code": "29463-7",
        "system": "loinc",
        "value": 154,
        "unit": "[lb_av]",
        "date": "2026-11-19",
    }
    assert request["sources"][f"observations[{index}]"] == "Observation/weight-2.value"
    assert request["sources"][f"observations[{index}].date"] == (
        "Observation/weight-2.effectiveDateTime"
    )
    ((_, anc),) = entries(request, "observations", code="751-8")
    assert (anc["value"], anc["unit"]) == (3.2, "10*3/uL")


def test_the_upper_limit_of_normal_gives_a_multiple(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    """value / referenceRange.high in the value's unit (or one that converts to it); no upper
    limit, or one in a unit of another kind: the value alone."""
    resource(bundle, "Observation/alt-1")["referenceRange"][0]["high"] = {
        "value": 0.045,
        "system": UCUM,
        "code": "kU/L",
    }
    del resource(bundle, "Observation/ast-1")["referenceRange"]
    bilirubin = resource(bundle, "Observation/bili-1")
    bilirubin["referenceRange"][0]["high"] = {"value": 21, "system": UCUM, "code": "umol/L"}
    request, _ = mapped(bundle, policies)
    ((_, ast),) = entries(request, "observations", code="1920-8")
    ((index, alt),) = entries(request, "observations", code="1742-6")
    ((_, bili),) = entries(request, "observations", code="1975-2")
    assert "uln_multiple" not in ast and ast["value"] == 24
    assert alt["uln_multiple"] == pytest.approx(30 / 45)
    assert request["sources"][f"observations[{index}].uln_multiple"] == (
        "Observation/alt-1.referenceRange[0].high"
    )
    assert "uln_multiple" not in bili  # mg/dL against umol/L: not the same kind of unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {
                "valueCodeableConcept": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "10828004"}]
                }
            },
            "positive",  # a well-known result, as policies word it
        ),
        (
            {"valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA6577-6"}]}},
            "negative",
        ),
        (
            {
                "valueCodeableConcept": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "3+"}],
                    "text": "strongly positive",
                }
            },
            "3+",  # any other coded value: its code
        ),
        ({"valueBoolean": True}, True),
        ({"valueString": "3+ (strongly positive)"}, "3+ (strongly positive)"),
        ({"valueInteger": 2}, 2),
    ],
)
def test_coded_yes_no_text_and_integer_values(
    bundle: dict[str, Any], policies: PolicySet, value: dict[str, Any], expected: object
) -> None:
    add(bundle, observation("her2-1", "48676-1", **value))
    request, _ = mapped(bundle, policies)
    ((_, found),) = entries(request, "observations", code="48676-1")
    assert found["value"] == expected and "unit" not in found


def test_values_that_are_not_exact_are_not_read(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    add(
        bundle,
        observation(
            "bili-2",
            "1975-2",
            valueQuantity={"value": 0.2, "comparator": "<", "system": UCUM, "code": "mg/dL"},
        ),
    )
    add(bundle, observation("ratio-1", "2164-2", valueRange={"low": {"value": 50}}))
    request, problems = mapped(bundle, policies)
    assert entries(request, "observations", value=0.2) == []
    assert not entries(request, "observations", code="2164-2")
    paths = {p.path for p in problems}
    assert f"{where(bundle, 'Observation/bili-2')}.valueQuantity.comparator" in paths
    assert f"{where(bundle, 'Observation/ratio-1')}.valueRange" in paths


def test_an_unknown_unit_refuses_the_bundle_naming_it(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "Observation/anc-1")["valueQuantity"]["code"] = "thou/mcL"
    problems = refused(bundle, policies)
    path = f"{where(bundle, 'Observation/anc-1')}.valueQuantity.code"
    assert "unknown unit 'thou/mcL'" in problems[path]


def test_an_observation_coded_only_locally_refuses_the_bundle(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "Observation/plt-1")["code"]["coding"][0]["system"] = "urn:lab:local"
    problems = refused(bundle, policies)
    assert f"{where(bundle, 'Observation/plt-1')}.code.coding[0].system" in problems


def test_an_implausible_value_refuses_the_bundle_naming_its_element(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "Observation/height-1")["valueQuantity"]["value"] = 1650
    problems = refused(bundle, policies)
    path = f"{where(bundle, 'Observation/height-1')}.value"
    assert "not plausible" in problems[path]


def test_entered_in_error_observations_are_skipped(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "Observation/weight-1")["status"] = "entered-in-error"
    request, _ = mapped(bundle, policies)
    assert not entries(request, "observations", code="29463-7")


# --- medications and allergies -----------------------------------------------------------------


def test_medication_history_from_statements_and_earlier_orders(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    add(
        bundle,
        {
            "resourceType": "MedicationStatement",
            "id": "med-2",
            "status": "completed",
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM, "code": "56946", "display": "paclitaxel"}]
            },
            "subject": {"reference": "Patient/pat-1"},
            "effectivePeriod": {"start": "2025-03-01", "end": "2025-08-15"},
        },
    )
    add(
        bundle,
        {
            "resourceType": "MedicationStatement",
            "id": "med-3",
            "status": "not-taken",
            "medicationCodeableConcept": {"text": "letrozole"},
            "subject": {"reference": "Patient/pat-1"},
        },
    )
    add(
        bundle,
        {
            "resourceType": "Medication",
            "id": "doxo",
            "code": {"coding": [{"system": RXNORM, "code": "3639"}], "text": "doxorubicin"},
        },
    )
    add(
        bundle,
        {
            "resourceType": "MedicationRequest",
            "id": "order-0",
            "status": "stopped",
            "intent": "order",
            "medicationReference": {"reference": "Medication/doxo"},
            "subject": {"reference": "Patient/pat-1"},
            "authoredOn": "2024-10-01",
        },
    )
    request, _ = mapped(bundle, policies)
    assert request["medications"] == [
        {"name": "capecitabine", "code": "194000", "system": "rxnorm", "status": "active"},
        {
            "name": "paclitaxel",
            "code": "56946",
            "system": "rxnorm",
            "status": "completed",
            "start_date": "2025-03-01",
            "end_date": "2025-08-15",
        },
        {
            "name": "doxorubicin",
            "code": "3639",
            "system": "rxnorm",
            "status": "stopped",
            "start_date": "2024-10-01",
        },
    ]
    sources = request["sources"]
    assert sources["medications[1]"] == "MedicationStatement/med-2.medicationCodeableConcept"
    assert sources["medications[1].end_date"] == "MedicationStatement/med-2.effectivePeriod.end"
    assert sources["medications[2]"] == "Medication/doxo.code"
    assert sources["medications[2].start_date"] == "MedicationRequest/order-0.authoredOn"


def test_a_medication_named_beside_a_code_in_another_system_is_read_by_name(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    statement = resource(bundle, "MedicationStatement/med-1")
    statement["medicationCodeableConcept"]["coding"][0]["system"] = "urn:formulary:local"
    request, _ = mapped(bundle, policies)
    assert request["medications"] == [{"name": "capecitabine", "status": "active"}]
    statement["medicationCodeableConcept"] = {
        "coding": [{"system": "urn:formulary:local", "code": "CAP-500"}]
    }
    problems = refused(bundle, policies)
    path = (
        f"{where(bundle, 'MedicationStatement/med-1')}.medicationCodeableConcept.coding[0].system"
    )
    assert path in problems


def test_allergies_with_their_most_severe_reaction(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    allergy = resource(bundle, "AllergyIntolerance/allergy-1")
    allergy["code"] = {"coding": [{"system": RXNORM, "code": "7980"}], "text": "penicillin G"}
    allergy["reaction"].append({"manifestation": [{"text": "hives"}], "severity": "moderate"})
    request, _ = mapped(bundle, policies)
    assert request["allergies"] == [
        {"name": "penicillin G", "code": "7980", "system": "rxnorm", "severity": "moderate"}
    ]


# --- practitioners -------------------------------------------------------------------------------


def test_the_prescriber_is_the_orders_requester_with_its_taxonomy(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    request, _ = mapped(bundle, policies)
    assert request["practitioners"] == [
        {"role": "prescriber", "npi": "1234567893", "specialty": "207RX0202X"}
    ]
    assert request["sources"]["practitioners[0].specialty"] == (
        "PractitionerRole/role-1.specialty[0].coding[0]"
    )
    assert request["sources"]["practitioners[0].npi"] == "Practitioner/prac-1.identifier[0]"


def test_a_practitioner_requester_finds_its_role(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "MedicationRequest/order-1")["requester"] = {
        "reference": "Practitioner/prac-1"
    }
    resource(bundle, "Claim/claim-1")["provider"] = {"reference": "Organization/clinic-1"}
    request, _ = mapped(bundle, policies)
    assert request["practitioners"] == [
        {"role": "prescriber", "npi": "1234567893", "specialty": "207RX0202X"}
    ]


def test_another_practitioner_is_a_consultant_with_the_taxonomy_of_their_role(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "PractitionerRole/role-1")["specialty"][0]["coding"][0].update(
        code="207Q00000X", display="Family Medicine"
    )
    add(
        bundle,
        {
            "resourceType": "Practitioner",
            "id": "prac-2",
            "identifier": [{"system": NPI, "value": "1245319599"}],
        },
    )
    add(
        bundle,
        {
            "resourceType": "PractitionerRole",
            "id": "role-2",
            "practitioner": {"reference": "Practitioner/prac-2"},
            "specialty": [{"coding": [{"system": NUCC, "code": "207RH0003X"}]}],
        },
    )
    add(
        bundle,
        {
            "resourceType": "Practitioner",
            "id": "prac-3",
            "identifier": [{"system": NPI, "value": "1003000126"}],
            "qualification": [{"code": {"coding": [{"system": NUCC, "code": "2086X0206X"}]}}],
        },
    )
    request, _ = mapped(bundle, policies)
    assert request["practitioners"] == [
        {"role": "prescriber", "npi": "1234567893", "specialty": "207Q00000X"},
        {"role": "consultant", "npi": "1245319599", "specialty": "207RH0003X"},
        {"role": "consultant", "npi": "1003000126", "specialty": "2086X0206X"},
    ]
    assert request["sources"]["practitioners[1]"] == "PractitionerRole/role-2"
    assert request["sources"]["practitioners[2].specialty"] == (
        "Practitioner/prac-3.qualification[0].code.coding[0]"
    )


def test_an_invalid_npi_is_left_out_with_a_warning(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "Practitioner/prac-1")["identifier"][0]["value"] = "1234567890"
    request, problems = mapped(bundle, policies)
    assert request["practitioners"] == [{"role": "prescriber", "specialty": "207RX0202X"}]
    assert any("not a valid NPI" in p.message for p in problems)


# --- answers -------------------------------------------------------------------------------------


def test_answers_keyed_by_link_id_with_who_and_when(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    request, _ = mapped(bundle, policies)
    assert request["answers"] == {
        "metastatic": {"value": True, "by": "1234567893", "at": "2026-11-20T00:00:00+00:00"},
        "recurrent_unresectable_locoregional": {
            "value": False,
            "by": "1234567893",
            "at": "2026-11-20T00:00:00+00:00",
        },
    }
    assert request["sources"]["answers.metastatic"] == "QuestionnaireResponse/dtr-1.item[0].item[0]"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"valueDecimal": 2.5}, 2.5),
        ({"valueInteger": 3}, 3),
        ({"valueDate": "2026-05-04"}, "2026-05-04"),
        ({"valueString": "progressed on docetaxel"}, "progressed on docetaxel"),
        ({"valueCoding": {"system": "http://snomed.info/sct", "code": "255604002"}}, "255604002"),
        ({"valueCoding": {"system": LOINC, "code": "LA33-6"}}, True),
        (
            {
                "valueCoding": {
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0136",
                    "code": "N",
                }
            },
            False,
        ),
    ],
)
def test_each_kind_of_answer(
    bundle: dict[str, Any], policies: PolicySet, answer: dict[str, Any], expected: object
) -> None:
    """Carried as answered, for a drug no policy governs (so no policy's questions apply)."""
    item = resource(bundle, "Claim/claim-1")["item"][0]
    item["productOrService"] = {"coding": [{"system": HCPCS, "code": "J9171"}]}
    order = resource(bundle, "MedicationRequest/order-1")
    order["medicationCodeableConcept"] = {"text": "docetaxel"}
    items = resource(bundle, "QuestionnaireResponse/dtr-1")["item"]
    items.append({"linkId": "prior_regimens", "answer": [answer]})
    request, _ = mapped(bundle, policies)
    assert request["answers"]["prior_regimens"]["value"] == expected
    assert request["sources"]["answers.prior_regimens"] == ("QuestionnaireResponse/dtr-1.item[1]")


def test_link_ids_that_are_not_question_ids_are_not_read(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    items = resource(bundle, "QuestionnaireResponse/dtr-1")["item"]
    items.append({"linkId": "3.1", "answer": [{"valueBoolean": True}]})
    items.append({"linkId": "no-response", "answer": [{"valueBoolean": True}]})
    request, _ = mapped(bundle, policies)
    assert set(request["answers"]) == {"metastatic", "recurrent_unresectable_locoregional"}


def test_two_responses_that_disagree_leave_the_answer_unknown(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    other = dict(resource(bundle, "QuestionnaireResponse/dtr-1"))
    other["id"] = "dtr-2"
    other["item"] = [{"linkId": "metastatic", "answer": [{"valueBoolean": False}]}]
    add(bundle, other)
    request, problems = mapped(bundle, policies)
    assert "metastatic" not in request["answers"]
    assert "answers.metastatic" not in request["sources"]
    assert any("for a person to settle" in p.message for p in problems)


def test_pregnancy_and_breastfeeding_answers_are_the_patients(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    items = resource(bundle, "QuestionnaireResponse/dtr-1")["item"]
    items.append({"linkId": "pregnant", "answer": [{"valueBoolean": False}]})
    items.append({"linkId": "breastfeeding", "answer": [{"valueBoolean": False}]})
    request, _ = mapped(bundle, policies)
    assert request["patient"]["pregnant"] is False
    assert request["patient"]["breastfeeding"] is False
    assert "pregnant" not in request["answers"]


def test_answers_to_questions_the_policy_does_not_ask_are_not_read(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    """A form shared by several items may answer another drug's questions: each is left out
    of this item's request with a note, and the request is still decided."""
    items = resource(bundle, "QuestionnaireResponse/dtr-1")["item"]
    items.append({"linkId": "prior_regimens", "answer": [{"valueInteger": 2}]})
    request, problems = mapped(bundle, policies)
    assert set(request["answers"]) == {"metastatic", "recurrent_unresectable_locoregional"}
    note = next(p for p in problems if "prior_regimens" in p.message)
    assert note.severity == "information"
    assert note.path == f"{where(bundle, 'QuestionnaireResponse/dtr-1')}.item[1]"
    assert priorauth.evaluate(request, policies=policies).outcome == "approved"


def test_an_answer_of_the_wrong_kind_refuses_the_bundle_naming_the_item(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    response = resource(bundle, "QuestionnaireResponse/dtr-1")
    response["item"][0]["item"][0]["answer"] = [{"valueString": "yes, to the liver"}]
    problems = refused(bundle, policies)
    path = f"{where(bundle, 'QuestionnaireResponse/dtr-1')}.item[0].item[0]"
    assert "takes true or false" in problems[path]


def test_a_unit_that_is_only_an_annotation_is_unity(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    add(
        bundle,
        observation(
            "t-spine", "38267-1", valueQuantity={"value": -2.8, "system": UCUM, "code": "{T-score}"}
        ),
    )
    request, _ = mapped(bundle, policies)
    ((_, found),) = entries(request, "observations", code="38267-1")
    assert found["value"] == -2.8 and "unit" not in found
