"""Matching a requested product code to the products a policy lists."""

from __future__ import annotations

from priorauth.engine.request import Coding
from priorauth.policy.model import Drug

__all__ = ["coding_keys", "drug_keys"]

Key = tuple[str, str]


def drug_keys(drug: Drug) -> frozenset[Key]:
    """The keys a policy's product is known by: its HCPCS codes, NDC products (labeler and
    product) and RxNorm codes."""
    return frozenset(
        [("hcpcs", code) for code in drug.hcpcs]
        + [("ndc-product", product) for product in drug.ndc_products]
        + [("rxnorm", code) for code in drug.rxnorm]
    )


def coding_keys(coding: Coding) -> set[Key]:
    """The keys a requested code matches: itself (upper case) and, for an NDC (kept in 5-4-2
    form by the request model), its product, the first ten characters."""
    keys = {(coding.system, coding.code.upper())}
    if coding.system == "ndc":
        keys.add(("ndc-product", coding.code[:10]))
    return keys
