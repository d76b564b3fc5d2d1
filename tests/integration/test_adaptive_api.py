"""SDC adaptive forms over real HTTP (uvicorn on 127.0.0.1, the database of each backend):
`$questionnaire-package` hands out the adaptive form and a response holding the chart; each
`$next-question` adds only the questions whose answers can still change the outcome, until
the response is completed with what the answers lead to. Bad forms are 400 (404 for a form
of no policy here) OperationOutcomes, never a server error."""

from __future__ import annotations

import base64
import copy
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from priorauth.adapters.fhir.adaptive import QUESTIONNAIRE_ADAPTIVE, RECORD_ITEM
from tests.crd_fixtures import (
    CHARTS,
    denosumab_chart,
    remove_condition,
    resources,
    without_answers,
)
from tests.integration.test_crd_api import UNKNOWN
from tests.json_trees import json_values, paths
from tests.service_fixtures import Env, LoopbackServer, auth

PACKAGE = "/fhir/Questionnaire/$questionnaire-package"
NEXT = "/fhir/Questionnaire/$next-question"
OUTCOME = "priorauth.outcome"


def open_chart(name: str) -> dict[str, Any]:
    """A chart that meets its policy, less what the form will ask: the secondary-site code
    (breast cancer), the answers (infliximab), the postmenopausal code (denosumab)."""
    if name == "denosumab":
        return remove_condition(denosumab_chart(), "Z78")
    if name == "infliximab":
        return without_answers(CHARTS[name]())
    return without_answers(remove_condition(CHARTS[name](), "C78"))


# What the prescriber answers for each chart: the chart's truth.
TRUE_ANSWERS: dict[str, dict[str, dict[str, Any]]] = {
    "ixempra": {"metastatic": {"valueBoolean": True}},
    "eribulin": {
        "unresectable": {"valueBoolean": True},
        "metastatic": {"valueBoolean": True},
        "child_pugh_class": {"valueCoding": {"code": "none"}},
    },
    "infliximab": {"moderately_to_severely_active": {"valueBoolean": True}},
    "denosumab": {"postmenopausal": {"valueBoolean": True}},
}
POLICIES = sorted(TRUE_ANSWERS)
# The questions the chart leaves open (the static form CRD points to asks exactly these).
OPEN = {**UNKNOWN, "denosumab": {"postmenopausal"}}


@pytest.fixture
def http(env: Env) -> Iterator[httpx.Client]:
    with (
        LoopbackServer(env.service) as url,
        httpx.Client(base_url=url, headers=auth("clinic"), timeout=30) as client,
    ):
        yield client


def post(client: httpx.Client, path: str, body: object) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers={"Content-Type": "application/fhir+json"})


def canonical(client: httpx.Client, policy: str) -> str:
    return f"{client.base_url}/fhir/Questionnaire/{policy}.adaptive"


def start(client: httpx.Client, policy: str, chart: dict[str, Any] | None) -> dict[str, Any]:
    """`$questionnaire-package` for the adaptive form (with the order and the chart as data,
    when given): the response to start from."""
    parameters: list[dict[str, Any]] = [
        {"name": "questionnaire", "valueCanonical": canonical(client, policy)}
    ]
    for resource in resources(chart) if chart else ():
        if resource["resourceType"] in ("Claim", "QuestionnaireResponse"):
            continue
        name = "order" if resource["resourceType"] == "MedicationRequest" else "data"
        parameters.append({"name": name, "resource": resource})
    answer = post(client, PACKAGE, {"resourceType": "Parameters", "parameter": parameters})
    assert answer.status_code == 200, answer.text
    (parameter,) = answer.json()["parameter"]
    bundle = parameter["resource"]
    Bundle.model_validate(bundle)
    found = {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}
    form = found["Questionnaire"]
    assert form["extension"][0]["url"] == QUESTIONNAIRE_ADAPTIVE
    assert form["extension"][0]["valueUrl"] == f"{client.base_url}/fhir"
    assert "item" not in form
    response: dict[str, Any] = found["QuestionnaireResponse"]
    (contained,) = response["contained"]
    assert response["questionnaire"] == f"#{contained['id']}"
    assert contained["derivedFrom"] == [f"{form['url']}|{form['version']}"]
    return response


def step(client: httpx.Client, response: dict[str, Any]) -> dict[str, Any]:
    answer = post(
        client,
        NEXT,
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "questionnaire-response", "resource": response}],
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = answer.json()
    QuestionnaireResponse.model_validate(body)
    return body


def questions(response: dict[str, Any]) -> list[str]:
    (contained,) = response["contained"]
    return [
        i["linkId"] for i in contained.get("item", ()) if i["linkId"] not in (RECORD_ITEM, OUTCOME)
    ]


Answerer = Callable[[str, dict[str, Any]], dict[str, Any] | None]


def walk(
    client: httpx.Client, response: dict[str, Any], answer: Answerer, limit: int = 30
) -> tuple[dict[str, Any], list[list[str]]]:
    """Call `$next-question` until the response is completed, answering each new question
    with `answer(linkId, item)` (None: left unanswered). Returns the last response and the
    questions each call added."""
    rounds: list[list[str]] = []
    for _ in range(limit):
        before = questions(response)
        response = step(client, response)
        after = questions(response)
        assert after[: len(before)] == before, "a question was taken back"
        added = after[len(before) :]
        rounds.append(added)
        if response["status"] == "completed":
            assert added == []
            return response, rounds
        assert added, "in progress, yet nothing asked"
        (contained,) = response["contained"]
        items = {i["linkId"]: i for i in contained["item"]}
        for item in response["item"]:
            if item["linkId"] in added:
                given = answer(item["linkId"], items[item["linkId"]])
                if given is not None:
                    item["answer"] = [given]
    raise AssertionError("the form did not complete")


def outcome(response: dict[str, Any]) -> str:
    (item,) = [i for i in response["item"] if i["linkId"] == OUTCOME]
    coverage = {e["url"]: e for e in response["extension"][0]["extension"]}
    assert coverage["pa-needed"]["valueCode"] == "auth-needed"
    assert coverage["coverage-assertion-id"]["valueString"].startswith("dtr-")
    text: str = item["text"]
    assert "denied" not in text.lower()
    return text


@pytest.mark.parametrize("policy", POLICIES)
def test_each_policys_form_is_walked_to_an_approvable_request(
    http: httpx.Client, policy: str
) -> None:
    """The chart's truth, answered as asked: the form completes, the request could be
    approved, and every question asked was one the chart left open."""
    truth = TRUE_ANSWERS[policy]
    response = start(http, policy, open_chart(policy))
    final, rounds = walk(http, response, lambda link, _: truth.get(link))
    asked = [q for r in rounds for q in r]
    assert len(asked) == len(set(asked))
    assert set(asked) <= OPEN[policy], asked
    assert "can be approved at once" in outcome(final)


def test_an_answer_that_meets_an_any_makes_its_other_branches_moot(http: httpx.Client) -> None:
    # Ixempra B: recurrent unresectable disease, OR metastatic, OR no response to preoperative
    # therapy. The first branch met: the other two are never asked.
    response = start(http, "ixempra", open_chart("ixempra"))
    final, rounds = walk(http, response, lambda link, _: {"valueBoolean": True})
    assert rounds == [["recurrent_unresectable_locoregional"], []]
    assert "can be approved at once" in outcome(final)


def test_a_failed_criterion_goes_to_a_clinician_and_asks_nothing_more(
    http: httpx.Client,
) -> None:
    response = start(http, "ixempra", open_chart("ixempra"))
    final, rounds = walk(http, response, lambda link, _: {"valueBoolean": False})
    assert [q for r in rounds for q in r] == [
        "recurrent_unresectable_locoregional",
        "metastatic",
        "no_response_to_preoperative_therapy",
    ]
    text = outcome(final)
    assert "not met" in text and "medical director" in text, text


def test_unanswered_questions_stay_unknown_and_are_not_asked_again(http: httpx.Client) -> None:
    response = start(http, "eribulin", open_chart("eribulin"))
    final, rounds = walk(http, response, lambda link, _: None)
    asked = [q for r in rounds for q in r]
    assert sorted(asked) == ["child_pugh_class", "metastatic", "unresectable"]
    assert "still unknown" in outcome(final)


def test_a_form_started_without_the_chart_asks_and_says_what_the_record_must_show(
    http: httpx.Client,
) -> None:
    response = start(http, "ixempra", None)
    assert "item" not in response
    final, rounds = walk(http, response, lambda link, _: {"valueBoolean": True})
    assert rounds[0] == ["recurrent_unresectable_locoregional"]
    text = outcome(final)
    assert "still unknown" in text


def test_the_completed_form_in_a_pas_request_is_approved(http: httpx.Client) -> None:
    """The completed adaptive response rides in the PAS bundle: its answers fill the
    request's (the hidden chart item is not a question and is not read)."""
    chart = open_chart("ixempra")
    response = start(http, "ixempra", chart)
    final, _ = walk(http, response, lambda link, _: TRUE_ANSWERS["ixempra"].get(link))
    final["author"] = {"reference": "Practitioner/prac-1"}
    chart["entry"][0]["resource"]["identifier"][0]["value"] += "-adaptive"
    chart["entry"].append(
        {
            "fullUrl": "https://provider.example.org/fhir/QuestionnaireResponse/adaptive",
            "resource": final,
        }
    )
    answer = post(http, "/fhir/Claim/$submit", chart)
    assert answer.status_code == 200, answer.text
    claim_response = answer.json()["entry"][0]["resource"]
    assert "A1" in json.dumps(claim_response["item"])


def test_the_form_and_the_operation_are_advertised(http: httpx.Client) -> None:
    form = http.get("/fhir/Questionnaire/eribulin.adaptive")
    assert form.status_code == 200
    Questionnaire.model_validate(form.json())
    assert form.json()["extension"][0] == {
        "url": QUESTIONNAIRE_ADAPTIVE,
        "valueUrl": f"{http.base_url}/fhir",
    }
    statement = http.get("/fhir/metadata").json()
    CapabilityStatement.model_validate(statement)
    operations = {
        op["name"]: op["definition"]
        for resource in statement["rest"][0]["resource"]
        for op in resource.get("operation", ())
    }
    assert operations["next-question"].endswith("DTR-Questionnaire-next-question")
    assert any("uv.sdc" in guide for guide in statement["implementationGuide"])


def test_each_call_leaves_one_audit_event_and_no_clinical_value(
    http: httpx.Client, env: Env
) -> None:
    response = start(http, "ixempra", open_chart("ixempra"))
    step(http, response)
    with env.service.database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT detail_json FROM audit_events WHERE action = 'dtr.next-question'")
        ).all()
    (payload,) = [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]
    assert payload == {"form": "ixempra.adaptive", "asked": 0, "added": 1, "completed": False}


def _first_step(client: httpx.Client) -> dict[str, Any]:
    return step(client, start(client, "eribulin", open_chart("eribulin")))


def _answer(response: dict[str, Any], link: str, value: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(response)
    for item in changed["item"]:
        if item["linkId"] == link:
            item["answer"] = [value]
    return changed


def _set_contained(response: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(response)
    changed["contained"][0][key] = value
    return changed


def _with_item(response: dict[str, Any], link: str, value: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(response)
    changed["item"].append({"linkId": link, "answer": [value]})
    return changed


def _record(response: dict[str, Any], data: str) -> dict[str, Any]:
    changed = copy.deepcopy(response)
    for item in changed["item"]:
        if item["linkId"] == RECORD_ITEM:
            item["answer"][0]["valueAttachment"]["data"] = data
    return changed


BAD: dict[str, tuple[Callable[[dict[str, Any]], object], int, str]] = {
    "not JSON": (lambda r: b"{not json", 400, "$"),
    "a JSON array": (lambda r: [r], 400, "$"),
    "a Parameters without the response": (
        lambda r: {"resourceType": "Parameters", "parameter": [{"name": "x", "valueString": "y"}]},
        400,
        "Parameters.parameter",
    ),
    "not a FHIR resource": (lambda r: {**r, "authored": "yesterday"}, 400, "authored"),
    "no contained form": (lambda r: {**r, "contained": []}, 400, "questionnaire"),
    "a form of no policy here": (
        lambda r: _set_contained(r, "derivedFrom", ["http://x/Questionnaire/nothing.adaptive"]),
        404,
        "derivedFrom",
    ),
    "a form of an earlier version": (
        lambda r: _set_contained(
            r, "derivedFrom", ["http://x/Questionnaire/eribulin.adaptive|2020.01.01"]
        ),
        400,
        "derivedFrom",
    ),
    "text for a yes/no question": (
        lambda r: _answer(r, "unresectable", {"valueString": "yes"}),
        400,
        "answer[0]",
    ),
    "a choice not among the policy's": (
        lambda r: _answer(r, "child_pugh_class", {"valueCoding": {"code": "Z"}}),
        400,
        "answer[0]",
    ),
    "an answer to a question not asked": (
        lambda r: _with_item(r, "prior_taxane", {"valueInteger": 1}),
        400,
        "linkId",
    ),
    "two answers to one question": (
        lambda r: (
            _answer(r, "unresectable", {"valueBoolean": True})
            | {
                "item": [
                    {**i, "answer": [{"valueBoolean": True}, {"valueBoolean": False}]}
                    if i["linkId"] == "unresectable"
                    else i
                    for i in r["item"]
                ]
            }
        ),
        400,
        "answer",
    ),
    "a chart that is not base64 JSON": (lambda r: _record(r, "bm90IGpzb24="), 400, "data"),
    "a chart that is not a request": (
        lambda r: _record(r, base64.b64encode(b'{"service": 1}').decode()),
        400,
        RECORD_ITEM,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_form_is_an_operation_outcome_naming_the_element(
    http: httpx.Client, case: str
) -> None:
    spoil, status, where = BAD[case]
    answer = post(http, NEXT, spoil(_first_step(http)))
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    outcome = answer.json()
    OperationOutcome.model_validate(outcome)
    assert any(where in str(issue.get("expression")) for issue in outcome["issue"]), outcome


def test_only_a_submitter_fills_in_forms(http: httpx.Client) -> None:
    body = json.dumps(_first_step(http)).encode()
    assert http.post(NEXT, content=body, headers={"Authorization": ""}).status_code == 401
    assert http.post(NEXT, content=body, headers=auth("pharmacist")).status_code == 403


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "crd" / "adaptive-package.json"


def test_the_readme_walk_through_answers_as_it_says(http: httpx.Client) -> None:
    """README: the package for the example order, a first question, "no", the next, "yes",
    completed: the request could be approved."""
    answer = post(http, PACKAGE, EXAMPLE.read_bytes())
    assert answer.status_code == 200, answer.text
    form = answer.json()["parameter"][0]["resource"]["entry"][-1]["resource"]
    form = step(http, form)
    assert questions(form) == ["recurrent_unresectable_locoregional"]
    form = step(http, _answer(form, "recurrent_unresectable_locoregional", {"valueBoolean": False}))
    assert questions(form)[-1] == "metastatic"
    form = step(http, _answer(form, "metastatic", {"valueBoolean": True}))
    assert form["status"] == "completed"
    assert "can be approved at once" in outcome(form)


def _json_values() -> st.SearchStrategy[Any]:
    return json_values(["", "#form", "metastatic", "priorauth.record", "boolean", "choice"])


@pytest.fixture(scope="module")
def first_form() -> dict[str, Any]:
    """A form after its first `$next-question` (eribulin, the chart in it), made once."""
    import tempfile

    from priorauth.service.config import Settings
    from priorauth.service.runtime import open_service
    from tests.service_fixtures import ROOT, TOKENS

    with tempfile.TemporaryDirectory() as folder:
        service = open_service(
            Settings(database_url=f"sqlite:///{folder}/f.db", policy_dir=ROOT / "policies")
        )
        service.add_user("clinic", "submitter", "Sunrise Oncology", token=TOKENS["clinic"])
        try:
            with (
                LoopbackServer(service) as url,
                httpx.Client(base_url=url, headers=auth("clinic")) as client,
            ):
                return _first_step(client)
        finally:
            service.database.dispose()


@settings(
    max_examples=int(os.environ.get("PRIORAUTH_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_a_mutated_form_gets_a_fhir_answer_never_a_server_error(
    client: TestClient, first_form: dict[str, Any], data: st.DataObject
) -> None:
    form: Any = copy.deepcopy(first_form)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(form)))
        value = data.draw(_json_values())
        if not path:
            form = value
            break
        holder: Any = form
        for part in path[:-1]:
            holder = holder[part]
        holder[path[-1]] = value
    answer = client.post(
        NEXT,
        content=json.dumps(form).encode(),
        headers={**auth("clinic"), "Content-Type": "application/fhir+json"},
    )
    assert answer.status_code in (200, 400, 404), answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    if answer.status_code == 200:
        QuestionnaireResponse.model_validate(answer.json())
    else:
        OperationOutcome.model_validate(answer.json())


@pytest.mark.parametrize("operation", ["$next-question", "$questionnaire-package"])
def test_an_operation_read_with_get_is_a_405_operation_outcome(
    client: TestClient, operation: str
) -> None:
    answer = client.get(f"/fhir/Questionnaire/{operation}", headers=auth("clinic"))
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == "POST"
    OperationOutcome.model_validate(answer.json())
