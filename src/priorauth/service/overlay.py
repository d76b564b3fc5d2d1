"""New information laid over a stored request (`POST /v1/requests/{case_id}/information`).

Objects merge key by key. The lists of the clinical record merge by what each entry is about,
so a submitter sends only what is new: an entry of the patch that is about the same thing as a
stored entry is laid over it (key by key), any other is added after the stored ones:

- `conditions`: the same code in the same system (`C50.912` and `c50912` are one code);
- `observations`: the same code in the same system on the same date (or both undated);
- `medications`: the same code (or, uncoded, the same name) started on the same date;
- `allergies`: the same code (or, uncoded, the same name);
- `practitioners`: the prescriber (there is one), or a consultant with the same NPI.

Any other list (`service.codes`, `service.with`) is replaced by the patch's. Nothing is taken
away: to correct a request as a whole, submit it again under a new request_id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["overlay"]

Key = tuple[object, ...]


def _text(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _code(value: object) -> object:
    """A code compared as the contract normalizes it: case and ICD-10-CM's dot aside."""
    return value.strip().upper().replace(".", "") if isinstance(value, str) else value


def _condition(entry: Any) -> Key:
    if isinstance(entry, str):
        return ("icd-10-cm", _code(entry))
    return (_text(entry.get("system") or "icd-10-cm"), _code(entry.get("code")))


def _observation(entry: Any) -> Key:
    return (_text(entry.get("system") or "loinc"), _code(entry.get("code")), entry.get("date"))


def _medication(entry: Any) -> Key:
    if isinstance(entry, str):
        return ("name", _text(entry), None)
    if entry.get("code") is not None:
        return (_text(entry.get("system")), _code(entry["code"]), entry.get("start_date"))
    return ("name", _text(entry.get("name")), entry.get("start_date"))


def _allergy(entry: Any) -> Key:
    if isinstance(entry, str):
        return ("name", _text(entry))
    if entry.get("code") is not None:
        return (_text(entry.get("system")), _code(entry["code"]))
    return ("name", _text(entry.get("name")))


def _practitioner(entry: Any) -> Key:
    role = entry.get("role") or "prescriber"
    return (role,) if role == "prescriber" else (role, entry.get("npi"))


_IDENTITY: dict[str, Callable[[Any], Key]] = {
    "conditions": _condition,
    "observations": _observation,
    "medications": _medication,
    "allergies": _allergy,
    "practitioners": _practitioner,
}


def _laid_over(stored: Any, new: Any) -> Any:
    """One entry over another about the same thing: objects merge; a bare string (a condition
    code, a medication name) gives way to the patch's entry."""
    if isinstance(stored, Mapping) and isinstance(new, Mapping):
        return overlay(stored, new)
    return new


def _merged_list(stored: list[Any], patch: list[Any], identity: Callable[[Any], Key]) -> list[Any]:
    merged = list(stored)
    for entry in patch:
        if not isinstance(entry, str | Mapping):
            merged.append(entry)  # not an entry the contract reads: its parse names the field
            continue
        key = identity(entry)
        for index, current in enumerate(merged):
            if isinstance(current, str | Mapping) and identity(current) == key:
                merged[index] = _laid_over(current, entry)
                break
        else:
            merged.append(entry)
    return merged


def overlay(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`patch` laid over `base` (neither is changed): objects merge key by key, the record's
    lists merge entry by entry (see the module's doc), other values are replaced."""
    merged = dict(base)
    for key, value in patch.items():
        current = merged.get(key)
        identity = _IDENTITY.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = overlay(current, value)
        elif identity is not None and isinstance(value, list) and isinstance(current, list):
            merged[key] = _merged_list(current, value, identity)
        else:
            merged[key] = value
    return merged
