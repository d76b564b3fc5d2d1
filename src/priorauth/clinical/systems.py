"""Code systems a request or a policy may name: short names, their FHIR URIs, how codes look.

A request may spell a system by its short name (`icd-10-cm`) or by the canonical URI FHIR uses
(`http://hl7.org/fhir/sid/icd-10-cm`); both mean the same system. A system not in this table is
refused with its name, so a misspelt one is caught rather than silently never matching.
"""

from __future__ import annotations

import difflib
from functools import lru_cache

__all__ = ["SYSTEMS", "URIS", "system_name"]

# short name -> canonical URI (FHIR R4 / US Core / Da Vinci usage)
SYSTEMS: dict[str, str] = {
    "icd-10-cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "icd-o-3": "http://terminology.hl7.org/CodeSystem/icd-o-3",
    "snomed": "http://snomed.info/sct",
    "loinc": "http://loinc.org",
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "ndc": "http://hl7.org/fhir/sid/ndc",
    "hcpcs": "https://bluebutton.cms.gov/resources/codesystem/hcpcs",
    "cpt": "http://www.ama-assn.org/go/cpt",
    "nucc": "http://nucc.org/provider-taxonomy",
    "npi": "http://hl7.org/fhir/sid/us-npi",
}
URIS: dict[str, str] = {uri: name for name, uri in SYSTEMS.items()}
# Other spellings of the same systems seen in FHIR data.
URIS.update(
    {
        "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs",
        # the spelling the Da Vinci PAS guide and its reference implementation use
        "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs",
        "urn:oid:2.16.840.1.113883.6.285": "hcpcs",
        "urn:oid:2.16.840.1.113883.6.90": "icd-10-cm",
        "urn:oid:2.16.840.1.113883.6.1": "loinc",
        "urn:oid:2.16.840.1.113883.6.88": "rxnorm",
        "urn:oid:2.16.840.1.113883.6.69": "ndc",
        "urn:oid:2.16.840.1.113883.6.96": "snomed",
        "urn:oid:2.16.840.1.113883.6.12": "cpt",
        "urn:oid:2.16.840.1.113883.6.43.1": "icd-o-3",
    }
)


@lru_cache(maxsize=256)
def system_name(text: str) -> str:
    """The short name of a code system given by short name or URI; ValueError naming it when
    unknown, with the nearest known names.

    >>> system_name("http://loinc.org")
    'loinc'
    """
    key = text.strip()
    if key.lower() in SYSTEMS:
        return key.lower()
    if key in URIS:
        return URIS[key]
    near = difflib.get_close_matches(key.lower(), [*SYSTEMS, *URIS], n=2, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
    known = ", ".join(SYSTEMS)
    raise ValueError(f"unknown code system {text!r}{hint}; known: {known}, or their FHIR URIs")
