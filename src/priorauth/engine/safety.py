"""INTERIM (replaced by the safety port on the general contract): no screen runs."""

from __future__ import annotations

from typing import NamedTuple

from priorauth.engine.determination import Alert, DosingResult
from priorauth.engine.request import Request
from priorauth.engine.review import GuidelineContext, LabelIndication, ScreenNotRun
from priorauth.policy.safety_model import SafetyData

__all__ = ["Review", "SafetyReviewer"]


class Review(NamedTuple):
    alerts: tuple[Alert, ...]
    not_run: tuple[ScreenNotRun, ...]
    label_indication: LabelIndication | None
    guideline: GuidelineContext | None
    holds: bool


class SafetyReviewer:
    def __init__(self, data: SafetyData | None) -> None:
        self.data = data

    def review(self, request: Request, dosing: DosingResult | None, bsa: float | None) -> Review:
        return Review((), (), None, None, False)
