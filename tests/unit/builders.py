"""Small policies and requests built in the tests, of shapes other than the shipped policies.

`policy(...)` makes a valid policy from a few parts (the rest defaults to one made-up drug,
J9999, one indication gated by a condition fact and one regimen); `request(...)` a request for
that drug with a service date of 2026-12-01. `fact(...)` derives one fact of a one-fact
policy, so each fact kind can be tested on its own.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from priorauth import CompiledPolicy, Determination, parse_request
from priorauth.engine.determination import Conflict, FactResult
from priorauth.engine.facts import ServiceDate, compile_fact
from priorauth.policy.model import Policy

SERVICE_DATE = dt.date(2026, 12, 1)
AS_OF = dt.date(2026, 11, 20)

DRUG = {"name": "Examplumab", "generic_name": "examplumab", "hcpcs": ["J9999"]}
GATE = {
    "kind": "condition",
    "codes": ["C50.*"],
    "absent": "false",
    "question": "What is the diagnosis?",
}
REGIMEN = {
    "id": "R",
    "text": "At most 100 mg once in each 21-day cycle",
    "dose": {"max": 100, "unit": "mg"},
    "cycle": {"length_days": 21, "max_doses": 1},
}


def policy(
    facts: dict[str, Any] | None = None,
    criteria: dict[str, Any] | None = None,
    regimens: list[dict[str, Any]] | None = None,
    **parts: Any,
) -> Policy:
    """A policy: `facts` are added to the gate fact `dx`; `criteria` default to `dx` itself."""
    data: dict[str, Any] = {
        "id": "examplumab",
        "title": "Examplumab",
        "version": "1",
        "review_date": "2026-01-01",
        "effective_date": "2026-01-01",
        "drugs": [DRUG],
        "facts": {"dx": GATE, **(facts or {})},
        "indications": [
            {
                "id": "1",
                "title": "Breast cancer",
                "when": "dx",
                "approval": {"months": 6},
                "criteria": criteria or {"id": "1", "text": "Has the diagnosis", "fact": "dx"},
            }
        ],
        "dosing": {"regimens": regimens or [REGIMEN]},
    }
    data.update(copy.deepcopy(parts))
    return Policy.model_validate(data)


def compiled(*args: Any, **kwargs: Any) -> CompiledPolicy:
    return CompiledPolicy(policy(*args, **kwargs))


def request(**parts: Any) -> dict[str, Any]:
    """A request for J9999 that meets the default policy: 100 mg every 21 days, from
    2026-12-01, for breast cancer. Keyword arguments replace top-level parts; `service_` ones
    update the service (`service_dose={"value": 50, "unit": "mg"}`)."""
    data: dict[str, Any] = {
        "request_id": "PA-T-1",
        "received_at": "2026-11-20T10:00:00Z",
        "service": {
            "code": "J9999",
            "dose": {"value": 100, "unit": "mg"},
            "schedule": {"cycle_length_days": 21, "doses_per_cycle": 1},
            "start_date": SERVICE_DATE.isoformat(),
        },
        "patient": {"birth_date": "1970-01-01", "sex": "female"},
        "conditions": ["C50.912"],
    }
    for key, value in parts.items():
        if key.startswith("service_"):
            name = key.removeprefix("service_")
            if value is None:
                data["service"].pop(name, None)
            else:
                data["service"][name] = value
        elif value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def decide(compiled_policy: CompiledPolicy, data: dict[str, Any]) -> Determination:
    return compiled_policy.evaluate(parse_request(data), AS_OF, data)


def fact(
    spec: dict[str, Any],
    data: dict[str, Any],
    on: dt.date = SERVICE_DATE,
    **parts: Any,
) -> tuple[FactResult, Conflict | None]:
    """The fact `f` (of `spec`) derived from a request, on a service date."""
    built = policy({"f": spec}, **parts)
    compiled_fact = compile_fact("f", built.facts["f"], built)
    return compiled_fact.derive(parse_request(data), ServiceDate(on, "service.start_date"))


def value(spec: dict[str, Any], data: dict[str, Any], **parts: Any) -> Any:
    """Just the fact's value."""
    return fact(spec, data, **parts)[0].value
