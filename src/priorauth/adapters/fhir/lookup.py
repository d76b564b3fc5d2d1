"""What finds a PAS request again: the keys `$inquire` matches on (claim identifier, patient
identifiers, provider, insurer), the earlier claim an update names, and certificationType."""

from __future__ import annotations

import json
from dataclasses import dataclass

from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.practitionerrole import PractitionerRole

from priorauth.adapters.fhir.bundle import Located, PasBundle
from priorauth.adapters.fhir.codes import code_table
from priorauth.adapters.fhir.problems import Problem
from priorauth.sizes import CLAIM_IDENTIFIER, FHIR_KEYS

__all__ = [
    "CANCEL",
    "ClaimKeys",
    "certification_code",
    "claim_keys",
    "key_problems",
    "related_claim",
    "stored_keys",
]

# X12 1322 certification type "3": cancel the earlier request.
CANCEL = "3"


@dataclass(frozen=True, slots=True)
class ClaimKeys:
    """The keys of a request. Each of patient, provider and insurer is a set of strings
    (`system|value` of an identifier, else `Type/id`); two requests match when the claim
    identifiers are equal and each set shares at least one key."""

    claim_identifier: str
    patient: frozenset[str]
    provider: frozenset[str]
    insurer: frozenset[str]

    def matches(self, other: ClaimKeys) -> bool:
        return (
            self.claim_identifier == other.claim_identifier
            and bool(self.patient & other.patient)
            and bool(self.provider & other.provider)
            and bool(self.insurer & other.insurer)
        )


def _identifiers(identifiers: list[Identifier] | None) -> set[str]:
    return {f"{i.system or ''}|{i.value}" for i in identifiers or () if i.value}


def _keys(bundle: PasBundle, reference: str | None, display: str | None) -> frozenset[str]:
    found: Located | None = bundle.resolve(reference)
    if found is None:
        return frozenset({f"display|{display}"} if display else {f"ref|{reference or ''}"})
    keys = _identifiers(getattr(found.resource, "identifier", None))
    if isinstance(found.resource, PractitionerRole):
        # A role rarely carries an identifier of its own: its practitioner's NPI does.
        for ref in (found.resource.practitioner, found.resource.organization):
            person = bundle.resolve(ref.reference if ref else None)
            if person is not None:
                keys |= _identifiers(getattr(person.resource, "identifier", None))
    return frozenset(keys or {found.key})


def claim_keys(bundle: PasBundle) -> ClaimKeys:
    """The inquiry keys of a bundle's Claim."""
    claim = bundle.claim
    identifier = next((i.value for i in claim.identifier or () if i.value), None)
    provider = claim.provider
    insurer = claim.insurer
    return ClaimKeys(
        claim_identifier=identifier or bundle.claim_entry.key,
        patient=_keys(bundle, claim.patient.reference, claim.patient.display),
        provider=_keys(
            bundle, provider.reference if provider else None, provider.display if provider else None
        ),
        insurer=_keys(
            bundle, insurer.reference if insurer else None, insurer.display if insurer else None
        ),
    )


def stored_keys(keys: frozenset[str]) -> str:
    """A set of keys as stored: a JSON list, sorted."""
    return json.dumps(sorted(keys), separators=(",", ":"), ensure_ascii=False)


def key_problems(keys: ClaimKeys) -> list[Problem]:
    """The keys too long to be stored (the claim identifier, the provider's and insurer's
    keys), each naming its element; empty when all fit."""
    problems = []
    if len(keys.claim_identifier) > CLAIM_IDENTIFIER:
        problems.append(
            Problem(
                "Bundle.entry[0].resource.identifier",
                "error",
                f"a claim identifier has at most {CLAIM_IDENTIFIER} characters",
                "too-long",
            )
        )
    for element, values in (("provider", keys.provider), ("insurer", keys.insurer)):
        if len(stored_keys(values)) > FHIR_KEYS:
            problems.append(
                Problem(
                    f"Bundle.entry[0].resource.{element}",
                    "error",
                    f"the {element}'s identifiers take at most {FHIR_KEYS} characters together",
                    "too-long",
                )
            )
    return problems


def related_claim(bundle: PasBundle) -> str | None:
    """The identifier of the earlier claim this Claim refers to (Claim.related.claim), if any."""
    for related in bundle.claim.related or ():
        reference = related.claim
        if reference is None:
            continue
        if reference.identifier is not None and reference.identifier.value:
            return reference.identifier.value
        found = bundle.resolve(reference.reference)
        if found is not None:
            value = next(
                (i.value for i in getattr(found.resource, "identifier", None) or () if i.value),
                None,
            )
            return value or found.key
    return None


def certification_code(bundle: PasBundle) -> str | None:
    """The certificationType code on the Claim (or on Claim.use), if any: `3` cancels."""
    url = code_table().extensions["certification_type"]
    claim = bundle.claim
    extensions: list[Extension] = list(claim.extension or ())
    if claim.use__ext is not None:
        extensions.extend(claim.use__ext.extension or ())
    for extension in extensions:
        if extension.url != url:
            continue
        if extension.valueCode:
            return str(extension.valueCode)
        concept = extension.valueCodeableConcept
        for coding in (concept.coding or ()) if concept else ():
            if coding.code:
                return str(coding.code)
    return None
