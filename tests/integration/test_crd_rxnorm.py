"""CRD for an order coded the way EHRs code medication orders: in RxNorm only, with the drug's
name. The shipped policies list HCPCS and NDC codes, so the drug named in the order finds the
policy (catalog.PolicySet.governing) and PA is needed; it used to answer `no-auth`."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.crd_fixtures import CHARTS, hook_call
from tests.integration.test_crd_api import call, coverage

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NAMES = {
    "ixempra": "ixabepilone 15 MG Injection",
    "eribulin": "eribulin mesylate 0.5 MG/ML Injectable Solution",
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_an_order_coded_only_in_rxnorm_is_answered_by_the_policy_of_the_drug_it_names(
    client: TestClient, name: str
) -> None:
    body = hook_call(CHARTS[name]())
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    # A code the policy does not list, and the drug's name as the EHR displays it.
    order["medicationCodeableConcept"] = {
        "coding": [{"system": RXNORM, "code": "999999901", "display": NAMES[name]}],
        "text": NAMES[name],
    }
    answer = call(client, body)
    assert answer.status_code == 200, answer.text
    assert coverage(answer.json())["pa-needed"] == "satisfied"


def test_an_order_in_rxnorm_naming_no_governed_drug_needs_no_authorization(
    client: TestClient,
) -> None:
    body = hook_call(CHARTS["ixempra"]())
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["medicationCodeableConcept"] = {
        "coding": [{"system": RXNORM, "code": "999999902", "display": "capecitabine 500 MG"}],
        "text": "capecitabine 500 MG Oral Tablet",
    }
    answer = call(client, body)
    assert answer.status_code == 200, answer.text
    assert coverage(answer.json())["pa-needed"] == "no-auth"
