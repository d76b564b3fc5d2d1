"""Read a PAS request Bundle: parse it with fhir.resources and check the rules the guide states.

The rules (Da Vinci PAS): the first entry is the Claim, and there is one Claim; Claim.use is
`preauthorization`; the Claim has at least one item, with unique item and supportingInfo
sequence numbers; each resource appears once; every reference resolves inside the bundle.
Every problem is collected with its FHIRPath; nothing raises for bad input. The resources of a
Bundle inside the request (a DTR bundle attached to the Claim) are part of the record: they
are found by reference like the request's own.

Each entry's resource is validated by its own model class (found once from its resourceType),
and the Bundle's own elements by the Bundle model with the resources left out: the same checks
as validating the whole Bundle model at once, without fhir.resources looking up every entry's
class by import path again (a fifth of the cost of reading a request).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.resource import Resource
from pydantic import TypeAdapter, ValidationError

from priorauth.adapters.fhir.problems import Problem, problems_from_validation

__all__ = ["PasBundle", "Rejected", "read_bundle"]


@dataclass(frozen=True, slots=True)
class Located:
    """A resource of the bundle and where it sits: `Bundle.entry[3].resource`, `Patient/p1`."""

    resource: Resource
    path: str
    key: str
    raw: dict[str, Any]
    full_url: str | None


@dataclass(frozen=True, slots=True)
class PasBundle:
    """A request bundle that passed the PAS rules: its Claim and its resources by reference."""

    claim: Claim
    claim_entry: Located
    resources: tuple[Located, ...]
    by_reference: Mapping[str, Located]
    problems: tuple[Problem, ...]
    identifier: dict[str, Any] | None

    def resolve(self, reference: str | None) -> Located | None:
        """The resource a reference points to (`Patient/p1`, a fullUrl or `urn:uuid:`)."""
        if not reference:
            return None
        found = self.by_reference.get(reference)
        if found is None:
            key = _relative_key(reference)
            found = self.by_reference.get(key) if key else None
        return found

    def of_type(self, resource_type: str) -> Iterator[Located]:
        """Every resource of one type, in bundle order."""
        return (r for r in self.resources if r.resource.get_resource_type() == resource_type)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A document that cannot be used as a PAS request, with every problem found."""

    problems: tuple[Problem, ...]


def _relative_key(reference: str) -> str | None:
    """`Type/id` from a relative or absolute reference (history suffix dropped), else None."""
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-1]:
        return f"{parts[-2]}/{parts[-1]}"
    return None


def _referenced(reference: str) -> str:
    """What a reference points at, in words that carry no identifier: `the Condition`."""
    key = _relative_key(reference)
    return f"the {key.split('/')[0]} referred to" if key else "the resource referred to"


def _load(data: object) -> tuple[object, list[Problem]]:
    if isinstance(data, bytes | bytearray | memoryview | str):
        try:
            return orjson.loads(data), []
        except orjson.JSONDecodeError as exc:
            message = f"not JSON: {exc.__class__.__name__}"
            return None, [Problem("Bundle", "fatal", message, "structure")]
    return data, []


# The model class of each known type name seen (None: a data type, not a resource). Names
# fhir.resources does not know are not kept, so a caller cannot grow this table.
_MODELS: dict[str, type[Resource] | None] = {}


def _model_class(name: str) -> type[Resource] | None:
    """The fhir.resources model of a resource type, or None when the name is not one (an
    unknown name, or a data type such as Quantity that is not a resource)."""
    if name in _MODELS:
        return _MODELS[name]
    try:
        found = get_fhir_model_class(name)
    except (ValueError, KeyError):
        return None
    model: type[Resource] | None = None
    if isinstance(found, type) and issubclass(found, Resource) and found.has_resource_base():
        model = found
    _MODELS[name] = model
    return model


def _shape(document: object) -> tuple[list[type[Resource]], list[Problem]]:
    """What fhir.resources cannot be trusted to report on its own: the outer shape, and each
    entry's resourceType (an unknown one would fail inside the library, a missing one pass).
    Returns the model class of each entry's resource, or the problems."""
    if not isinstance(document, dict):
        return [], [
            Problem("Bundle", "fatal", "a PAS request is a Bundle (a JSON object)", "structure")
        ]
    kind = document.get("resourceType")
    if kind != "Bundle":
        what = f"a {kind} resource" if isinstance(kind, str) else "no resourceType"
        return [], [
            Problem("Bundle", "fatal", f"a PAS request is a Bundle, got {what}", "structure")
        ]
    entries = document.get("entry")
    if entries is None or entries == []:
        return [], [
            Problem(
                "Bundle.entry",
                "error",
                "the bundle has no entries; a PAS request starts with its Claim",
                "required",
            )
        ]
    if not isinstance(entries, list):
        return [], [Problem("Bundle.entry", "error", "expected a JSON array here", "structure")]
    classes: list[type[Resource]] = []
    found: list[Problem] = []
    for index, entry in enumerate(entries):
        where = f"Bundle.entry[{index}]"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            found.append(
                Problem(f"{where}.resource", "error", "each entry carries a resource", "required")
            )
            continue
        name = resource.get("resourceType")
        if not isinstance(name, str):
            found.append(
                Problem(
                    f"{where}.resource.resourceType", "error", "resourceType is missing", "required"
                )
            )
            continue
        model = _model_class(name)
        if model is None:
            found.append(
                Problem(
                    f"{where}.resource.resourceType",
                    "error",
                    f"{name} is not a FHIR R4 resource type",
                    "value",
                )
            )
        else:
            classes.append(model)
    return classes, found


# An entry that carries nothing but its resource and a fullUrl string is, without the resource,
# a BundleEntry that passes exactly when its fullUrl passes the field's own type: BundleEntry has
# no required element and no choice of types, and a string holds no list for a null to hide in.
_FULL_URL = BundleEntry.model_fields["fullUrl"]
_FULL_URLS: TypeAdapter[Any] | None = (
    TypeAdapter(cast(Any, list)[_FULL_URL.annotation])
    if _FULL_URL.alias in (None, "fullUrl")
    and not BundleEntry.model_construct().get_required_fields()
    and not BundleEntry.model_construct().get_one_of_many_fields()
    else None
)


def _shell_problems(document: dict[str, Any], entries: list[dict[str, Any]]) -> list[Problem]:
    """What the Bundle model finds in the bundle's own elements (its entries without their
    resources). Entries of a resource and a fullUrl alone, the usual shape, have their fullUrls
    checked in one call rather than a BundleEntry model each (a tenth of reading a request);
    anything that fails is checked again the whole way, so the problems read the same."""
    shell = {name: value for name, value in document.items() if name != "entry"}
    if _FULL_URLS is not None and all(
        entry.keys() <= {"fullUrl", "resource"} and isinstance(entry.get("fullUrl", ""), str)
        for entry in entries
    ):
        try:
            Bundle.model_validate(shell)
            _FULL_URLS.validate_python(
                [entry["fullUrl"] for entry in entries if "fullUrl" in entry]
            )
        except ValidationError:
            pass
        else:
            return []
    shell["entry"] = [{k: v for k, v in entry.items() if k != "resource"} for entry in entries]
    try:
        Bundle.model_validate(shell)
    except ValidationError as exc:
        return problems_from_validation("Bundle", exc)
    return []


def _validate(
    document: dict[str, Any], classes: list[type[Resource]]
) -> tuple[list[Resource], list[Problem]]:
    """The resources as fhir.resources models, or every problem the models find: the Bundle's
    own elements (its entries without their resources), then each resource by its class."""
    entries: list[dict[str, Any]] = document["entry"]
    problems = _shell_problems(document, entries)
    resources: list[Resource] = []
    for index, (entry, model) in enumerate(zip(entries, classes, strict=True)):
        try:
            resources.append(model.model_validate(entry["resource"]))
        except ValidationError as exc:
            problems.extend(problems_from_validation(f"Bundle.entry[{index}].resource", exc))
    return resources, problems


# Where a reference sits, spelled as a FHIRPath only when it is reported: the root's path, or
# (the parent's place, an element name or a list index).
_Place = tuple[Any, str | int] | str


def _references(
    node: object, at: _Place, found: list[tuple[_Place, str]]
) -> list[tuple[_Place, str]]:
    """Every Reference.reference under a resource's JSON (narrative skipped), appended to
    `found` with its place. Places are pairs, not FHIRPath text: most references resolve, and
    spelling a path for every element on the way cost more than the rest of the check."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "reference" and isinstance(value, str):
                found.append(((at, name), value))
            elif name not in ("text", "contained") and isinstance(value, dict | list):
                _references(value, (at, name), found)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, dict | list):
                _references(value, (at, index), found)
    return found


def _spelled(at: _Place) -> str:
    """A place as FHIRPath: `Bundle.entry[0].resource.item[1].reference`."""
    pieces: list[str] = []
    while isinstance(at, tuple):
        at, piece = at
        pieces.append(f"[{piece}]" if isinstance(piece, int) else f".{piece}")
    return at + "".join(reversed(pieces))


def read_bundle(data: object) -> PasBundle | Rejected:
    """Parse and check a PAS request bundle given as JSON text, bytes or parsed JSON.

    Returns a PasBundle (with any warnings in `problems`) or Rejected with every problem.

    >>> read_bundle({"resourceType": "Claim"}).problems[0].message
    'a PAS request is a Bundle, got a Claim resource'
    """
    document, problems = _load(data)
    if problems:
        return Rejected(tuple(problems))
    classes, problems = _shape(document)
    if problems:
        return Rejected(tuple(problems))
    assert isinstance(document, dict)
    try:
        resources, problems = _validate(document, classes)
    except Exception as exc:  # the library's own failures on odd input: report, never crash
        message = f"the bundle could not be read ({exc.__class__.__name__})"
        return Rejected((Problem("Bundle", "error", message, "structure"),))
    if problems:
        return Rejected(tuple(problems))
    return _check(resources, document)


def _check(resources: list[Resource], document: dict[str, Any]) -> PasBundle | Rejected:
    """The PAS rules over a bundle whose resources validated (`resources[i]` is entry i's)."""
    problems: list[Problem] = []
    if document.get("type") != "collection":
        problems.append(
            Problem("Bundle.type", "warning", "a PAS request bundle is a collection", "value")
        )
    located: list[Located] = []
    by_reference: dict[str, Located] = {}
    for index, (entry, resource) in enumerate(zip(document["entry"], resources, strict=True)):
        path = f"Bundle.entry[{index}].resource"
        kind = resource.get_resource_type()
        key = f"{kind}/{resource.id}" if resource.id else f"{kind}/#{index}"
        full_url = entry.get("fullUrl")
        here = Located(resource, path, key, entry["resource"], full_url)
        located.append(here)
        names = [key] if resource.id else []
        if full_url:
            names.append(full_url)
        if not names:
            problems.append(
                Problem(
                    f"{path}.id",
                    "warning",
                    "a resource without id or fullUrl cannot be referenced",
                    "required",
                )
            )
        duplicate = False
        for name in dict.fromkeys(names):
            if name in by_reference:
                if duplicate:
                    continue
                duplicate = True
                first = by_reference[name].path
                problems.append(
                    Problem(
                        path,
                        "error",
                        f"this {kind} appears more than once (first at {first}); "
                        "each resource goes in the bundle once",
                        "duplicate",
                    )
                )
            else:
                by_reference[name] = here
    claims = [r for r in located if isinstance(r.resource, Claim)]
    # Bundles inside the request, after its own entries: those are the ones a key names first.
    for here in list(located):
        if isinstance(here.resource, Bundle):
            _nested(here.resource, here.raw, here.path, located, by_reference)
    if not claims:
        problems.append(
            Problem(
                "Bundle.entry[0].resource",
                "error",
                "the bundle has no Claim; a PAS request starts with its Claim",
                "required",
            )
        )
    elif not isinstance(located[0].resource, Claim):
        problems.append(
            Problem(
                "Bundle.entry[0].resource",
                "error",
                "the first entry of a PAS request is the Claim",
                "structure",
            )
        )
    for extra in claims[1:]:
        problems.append(
            Problem(extra.path, "error", "a PAS request carries one Claim", "structure")
        )
    claim_entry = claims[0] if claims else None
    if claim_entry is not None:
        claim = claim_entry.resource
        assert isinstance(claim, Claim)
        problems.extend(_check_claim(claim, claim_entry.path))
    for here in located:
        if isinstance(here.resource, Bundle):
            continue  # its resources are walked one by one, each with its own contained ones
        contained = {
            f"#{c.get('id')}" for c in (here.raw.get("contained") or ()) if isinstance(c, dict)
        }
        for at, reference in _references(here.raw, here.path, []):
            if not _resolves(reference, contained, by_reference):
                problems.append(
                    Problem(
                        _spelled(at),
                        "error",
                        f"{_referenced(reference)} is not in the bundle; every resource "
                        "a PAS request refers to travels inside it",
                        "not-found",
                    )
                )
    if claim_entry is None or any(p.blocking for p in problems):
        return Rejected(tuple(problems))
    claim = claim_entry.resource
    assert isinstance(claim, Claim)
    identifier = document.get("identifier")
    return PasBundle(
        claim,
        claim_entry,
        tuple(located),
        by_reference,
        tuple(problems),
        identifier if isinstance(identifier, dict) else None,
    )


def _nested(
    bundle: Bundle,
    raw: dict[str, Any],
    path: str,
    located: list[Located],
    by_reference: dict[str, Located],
) -> None:
    """The resources of a bundle inside the request (a DTR bundle attached to the Claim) are
    part of the record: each is added once, so references to it resolve. One the request
    already carries (the same Patient, say) is not added again; the request's own copy is the
    one read."""
    for index, (entry, raw_entry) in enumerate(
        zip(bundle.entry or (), raw.get("entry") or (), strict=True)
    ):
        resource = entry.resource
        if resource is None or not isinstance(raw_entry, dict):
            continue
        kind = resource.get_resource_type()
        key = f"{kind}/{resource.id}" if resource.id else f"{path}#{index}"
        full_url = raw_entry.get("fullUrl")
        if key in by_reference or (full_url and full_url in by_reference):
            continue
        inner_path = f"{path}.entry[{index}].resource"
        here = Located(resource, inner_path, key, raw_entry["resource"], full_url)
        located.append(here)
        by_reference[key] = here
        if full_url:
            by_reference[full_url] = here
        if isinstance(resource, Bundle):
            _nested(resource, here.raw, inner_path, located, by_reference)


def _resolves(reference: str, contained: set[str], by_reference: Mapping[str, Located]) -> bool:
    """Whether a reference points inside the bundle (a contained resource, a fullUrl, or a
    `Type/id` of an entry)."""
    if reference in contained or reference in by_reference:
        return True
    target = _relative_key(reference)
    return target is not None and target in by_reference


def _check_claim(claim: Claim, path: str) -> list[Problem]:
    problems: list[Problem] = []
    if claim.use != "preauthorization":
        problems.append(
            Problem(
                f"{path}.use",
                "error",
                "Claim.use must be preauthorization for a PAS request",
                "value",
            )
        )
    if claim.patient is None:
        problems.append(
            Problem(
                f"{path}.patient",
                "error",
                "a PAS Claim names its patient (Claim.patient is required)",
                "required",
            )
        )
    if not claim.item:
        problems.append(
            Problem(
                f"{path}.item",
                "error",
                "a PAS Claim has at least one item (the service asked for)",
                "required",
            )
        )
    problems += _reused_sequences(
        claim.item or (), f"{path}.item", "item", "each item's sequence is unique"
    )
    problems += _reused_sequences(
        claim.supportingInfo or (), f"{path}.supportingInfo", "supportingInfo", "each is unique"
    )
    return problems


def _reused_sequences(elements: Iterable[Any], where: str, name: str, rule: str) -> list[Problem]:
    """A problem for each element whose sequence an earlier element already has."""
    problems: list[Problem] = []
    seen: set[int | None] = set()
    for index, element in enumerate(elements):
        if element.sequence in seen:
            problems.append(
                Problem(
                    f"{where}[{index}].sequence",
                    "error",
                    f"{name} sequence {element.sequence} is used twice; {rule}",
                    "duplicate",
                )
            )
        seen.add(element.sequence)
    return problems
