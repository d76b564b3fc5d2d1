"""A policy found by the drug's name when the service's codes are only RxNorm codes no policy
lists (catalog.PolicySet.governing): EHR orders are coded in RxNorm, and the shipped policies
list HCPCS and NDC codes. A code of another product is never overruled by a name."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from priorauth.catalog import PolicySet
from tests.conftest import example

POLICIES = PolicySet.from_directory()
UNLISTED_RXNORM = {"system": "rxnorm", "code": "999999901"}


def _renamed(name: str, example_name: str, *codes: dict[str, str]) -> dict[str, Any]:
    request = copy.deepcopy(example(example_name))
    service = request["service"]
    service.pop("code", None)
    service["codes"] = list(codes) or [UNLISTED_RXNORM]
    service["name"] = name
    return request


@pytest.mark.parametrize(
    ("example_name", "name", "policy", "product"),
    [
        ("01-approved-every-3-weeks.json", "ixabepilone 15 MG Injection", "ixempra", "ixabepilone"),
        ("01-approved-every-3-weeks.json", "Ixempra Kit", "ixempra", "ixabepilone"),
        (
            "eribulin-01-approved-breast-cancer.json",
            "eribulin mesylate 0.5 MG/ML",
            "eribulin",
            "eribulin",
        ),
        (
            "eribulin-01-approved-breast-cancer.json",
            "Halaven 1 MG in 2 ML Injection",
            "eribulin",
            "eribulin",
        ),
        (
            "denosumab-01-approved-osteoporosis.json",
            "Prolia 60 MG/ML Prefilled Syringe",
            "denosumab",
            "denosumab",
        ),
    ],
)
def test_an_order_coded_only_in_rxnorm_is_governed_by_the_drug_it_names(
    example_name: str, name: str, policy: str, product: str
) -> None:
    coded = POLICIES.evaluate(example(example_name))
    determination = POLICIES.evaluate(_renamed(name, example_name))
    assert determination.policy is not None and determination.policy.id == policy
    assert determination.governed_by is not None
    assert (determination.governed_by.product, determination.governed_by.text) == (product, name)
    # Decided as the coded request is: the codes named the policy, nothing else.
    assert (determination.outcome, determination.reasons) == (coded.outcome, coded.reasons)
    assert any("found by the drug's name" in line for line in determination.explain())
    # Written down, and read back the same.
    dumped = determination.model_dump()
    assert dumped["governed_by"] == {"field": "service.name", "text": name, "product": product}
    assert type(determination).model_validate(dumped) == determination


def test_a_name_does_not_say_which_product_so_a_preferred_product_rule_asks() -> None:
    # Infliximab's policy prefers some products by code: Inflectra's code approves, but the
    # name "infliximab-dyyb" is the ingredient alone, so which product it is stays unknown, and
    # the request pends with the question (unknown is not false).
    name = "infliximab-dyyb 100 MG"
    coded = POLICIES.evaluate(example("infliximab-02-approved-rheumatoid-arthritis.json"))
    assert coded.outcome == "approved"
    determination = POLICIES.evaluate(
        _renamed(name, "infliximab-02-approved-rheumatoid-arthritis.json")
    )
    assert determination.policy is not None and determination.policy.id == "infliximab"
    assert determination.outcome == "pended"
    assert determination.reasons == ("missing-information",)
    assert "tried_preferred_product" in {m.fact for m in determination.missing}


def test_a_policy_found_by_its_code_says_nothing_of_names() -> None:
    determination = POLICIES.evaluate(example("01-approved-every-3-weeks.json"))
    assert determination.governed_by is None
    assert "governed_by" not in determination.model_dump()


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        # An HCPCS or NDC code of a product no policy governs: another product, whatever the name.
        ("ixabepilone", [{"system": "hcpcs", "code": "J9999"}]),
        ("ixabepilone", [UNLISTED_RXNORM, {"system": "ndc", "code": "00000-0000-00"}]),
        # No name, or a name of no governed drug, or of two policies' drugs.
        ("", [UNLISTED_RXNORM]),
        ("capecitabine 500 MG Oral Tablet", [UNLISTED_RXNORM]),
        ("mesylate", [UNLISTED_RXNORM]),
        ("ixabepilone and eribulin", [UNLISTED_RXNORM]),
    ],
)
def test_no_policy_when_the_name_cannot_say_which(name: str, codes: list[dict[str, str]]) -> None:
    request = _renamed(name, "01-approved-every-3-weeks.json", *codes)
    if not name:
        request["service"].pop("name")
    determination = POLICIES.evaluate(request)
    assert determination.policy is None and determination.reasons == ("no-policy",)
    assert determination.governed_by is None
