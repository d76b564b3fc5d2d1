"""DTR forms generated from each shipped policy: valid FHIR (fhir.resources), one item per
question the policy lets a requester answer, linkIds the question ids, branches as enableWhen,
ValueSets from the code sets, and ids that name exactly the questions asked."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from priorauth import PolicySet
from priorauth.adapters.fhir import dtr
from priorauth.engine.answers import answerable
from priorauth.policy.model import Policy

BASE = "https://payer.example.org/fhir"
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
SHIPPED = PolicySet.from_directory()
POLICIES = {c.policy.id: c.policy for c in SHIPPED.policies}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_each_policy_gives_a_valid_package_asking_its_questions(name: str) -> None:
    policy = POLICIES[name]
    bundle = dtr.package(policy, None, BASE, None, "Patient/p1", NOW)
    dtr.validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "Questionnaire"
    assert kinds[1] == "Library"
    assert kinds[-1] == "QuestionnaireResponse"
    for entry in bundle["entry"]:
        dtr.validate(entry["resource"])
    questionnaire = bundle["entry"][0]["resource"]
    link_ids = [item["linkId"] for item in questionnaire["item"]]
    assert sorted(link_ids) == sorted(answerable(policy))
    for item in questionnaire["item"]:
        assert item["text"] == policy.facts[item["linkId"]].question
        for condition in item.get("enableWhen", ()):
            # A branch depends on a question asked before it on the same form.
            assert link_ids.index(condition["question"]) < link_ids.index(item["linkId"])


def test_the_ixempra_any_of_three_asks_each_branch_only_while_the_criterion_is_open() -> None:
    questionnaire = dtr.build_questionnaire(POLICIES["ixempra"], None, BASE)
    items = {item["linkId"]: item for item in questionnaire["item"]}
    assert [i["linkId"] for i in questionnaire["item"]] == [
        "recurrent_unresectable_locoregional",
        "metastatic",
        "no_response_to_preoperative_therapy",
    ]
    assert all(i["type"] == "boolean" for i in items.values())
    assert "enableWhen" not in items["recurrent_unresectable_locoregional"]
    assert items["no_response_to_preoperative_therapy"]["enableWhen"] == [
        {
            "question": "recurrent_unresectable_locoregional",
            "operator": "!=",
            "answerBoolean": True,
        },
        {"question": "metastatic", "operator": "!=", "answerBoolean": True},
    ]
    assert items["no_response_to_preoperative_therapy"]["enableBehavior"] == "all"


def test_a_count_branch_is_open_below_its_threshold() -> None:
    questionnaire = dtr.build_questionnaire(POLICIES["infliximab"], None, BASE)
    items = {item["linkId"]: item for item in questionnaire["item"]}
    assert items["tried_steroid_or_immunomodulator"]["type"] == "integer"
    assert items["fistulas"]["enableWhen"] == [
        {"question": "tried_steroid_or_immunomodulator", "operator": "<", "answerInteger": 1}
    ]
    # Asked in two criteria (B and C of rheumatoid arthritis): no single branch condition.
    assert "enableWhen" not in items["methotrexate_contraindicated"]


def test_a_choice_question_takes_its_answers_from_the_policys_value_set() -> None:
    policy = POLICIES["eribulin"]
    questionnaire = dtr.build_questionnaire(policy, None, BASE)
    (item,) = [i for i in questionnaire["item"] if i["linkId"] == "child_pugh_class"]
    assert item["type"] == "choice"
    sets = {v["url"]: v for v in dtr.value_sets(policy, BASE)}
    value_set = sets[item["answerValueSet"]]
    expanded = dtr.expand(value_set, NOW.date())
    dtr.validate(expanded)
    assert [c["code"] for c in expanded["expansion"]["contains"]] == ["none", "A", "B", "C"]


def test_a_code_set_is_a_value_set_of_codes_and_is_a_roots() -> None:
    sets = {v["id"]: v for v in dtr.value_sets(POLICIES["ixempra"], BASE)}
    value_set = sets["ixempra-breast-cancer"]
    includes = value_set["compose"]["include"]
    assert {
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "concept": [{"code": "Z85.3"}],
    } in includes
    assert {
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "filter": [{"property": "concept", "op": "is-a", "value": "C50"}],
    } in includes
    contains = dtr.expand(value_set, NOW.date())["expansion"]["contains"]
    assert {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z85.3"} in contains
    (root,) = [c for c in contains if c["code"] == "C50"]
    assert root["abstract"] is True


def test_the_library_carries_the_cql_and_its_elm() -> None:
    library = dtr.build_library(POLICIES["ixempra"], BASE)
    dtr.validate(library)
    content = {c["contentType"]: base64.b64decode(c["data"]).decode() for c in library["content"]}
    assert "library IxempraPrepopulation version '2026.01.14'" in content["text/cql"]
    assert 'define "metastatic":' in content["text/cql"]
    elm = json.loads(content["application/elm+json"])
    names = [d["name"] for d in elm["library"]["statements"]["def"]]
    assert {"age_years", "breast_cancer", "metastatic"} <= set(names)


def _policies() -> st.SearchStrategy[Policy]:
    return st.sampled_from([POLICIES[n] for n in sorted(POLICIES)])


@given(st.data())
def test_a_questionnaire_id_names_exactly_the_questions_asked(data: st.DataObject) -> None:
    policy = data.draw(_policies())
    order = dtr.ask_order(policy)
    chosen = data.draw(st.lists(st.sampled_from(order), min_size=1, unique=True))
    ident = dtr.questionnaire_id(policy, chosen)
    read = dtr.read_questionnaire_id(ident, POLICIES.values())
    assert read is not None
    assert read[0].id == policy.id
    assert sorted(read[1]) == sorted(chosen)
    form = dtr.build_questionnaire(policy, read[1], BASE)
    assert sorted(i["linkId"] for i in form["item"]) == sorted(chosen)
    assert form["id"] == ident


@pytest.mark.parametrize("text", ["", "nothing", "ixempra.0", "ixempra.ff", "ixempra.zz", "x.1"])
def test_an_id_that_names_no_questions_is_none(text: str) -> None:
    assert dtr.read_questionnaire_id(text, POLICIES.values()) is None
