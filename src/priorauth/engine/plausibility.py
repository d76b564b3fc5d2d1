"""Questions about implausible values: a fact left unknown because the value it read is
implausible for its unit and the patient (clinical.observations.PLAUSIBLE) asks the requester
to confirm that value and its unit, naming its field, rather than the fact's general question.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from priorauth.clinical.observations import KNOWN
from priorauth.engine import measures
from priorauth.engine.determination import FactResult, Missing
from priorauth.engine.request import Request

__all__ = ["confirm_implausible"]


def confirm_implausible(
    missing: list[Missing], request: Request, on: dt.date, facts: Mapping[str, FactResult]
) -> list[Missing]:
    """The questions, each one that an implausible observation left unknown asking to confirm
    that value and its unit (naming its field) instead of the fact's general question."""
    doubts = measures.doubts(request, on)
    if not doubts:
        return missing
    asked: list[Missing] = []
    for question in missing:
        fact = facts.get(question.fact)
        if fact is not None:
            read = [e.field for e in fact.evidence if e.field in doubts]
        else:
            read = [field for field in doubts if _names(question, request, field)]
        if not read:
            asked.append(question)
            continue
        words = " ".join(
            f"{field}.value: {doubts[field]}; confirm the value and its unit." for field in read
        )
        fields = tuple(f"{field}.{part}" for field in read for part in ("value", "unit"))
        asked.append(Missing(question.fact, words, fields + question.fields, question.criteria))
    return asked


def _names(question: Missing, request: Request, field: str) -> bool:
    """Whether a question that is not a policy fact's (a dosing question for the body measures,
    `observations[8302-2]`) asks for the observation at `field`: by its code, or by another
    code of the same measure (a stated height for a measured one)."""
    code = request.observations[int(field.removeprefix("observations[").rstrip("]"))].code
    named = {f.removeprefix("observations[").rstrip("]") for f in question.fields}
    measure = KNOWN.get(code)
    return code in named or (measure is not None and any(KNOWN.get(c) == measure for c in named))
