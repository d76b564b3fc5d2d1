"""The clinical-review parts of a determination: screens that could not run, the label
indication and the guideline context.

Frozen, slotted records (engine.records) like the rest of the determination, kept in their own
module so that the safety screens can grow without touching the core contract; the screens build
some of them for every request.
"""

from __future__ import annotations

from typing import Literal

from priorauth.engine.records import record

__all__ = [
    "GuidelineContext",
    "LabelIndication",
    "LabelIndicationCheck",
    "ScreenNotRun",
    "TherapyFinding",
]


@record
class ScreenNotRun:
    """A safety screen that could not run: the request lacks what it reads. Not a finding."""

    screen: str
    title: str
    fields: tuple[str, ...]


@record
class TherapyFinding:
    """One prior therapy judged against its class's resistance window."""

    index: int
    agent: str
    agent_class: str
    setting: str | None
    resistant: bool | None
    detail: str


@record
class LabelIndicationCheck:
    """One of the label's indications and whether the therapy history fits it."""

    id: str
    text: str
    status: Literal["met", "not-met", "unknown"]


@record
class LabelIndication:
    """The FDA-label indication, for the reviewer's information: it never pends a request.

    `flags` holds `<class>_resistant` for each agent class (true, false or null for unknown);
    `requested` is the label indication that matches the requested regimen (alone or with an
    agent), `fits` that indication when the history meets it, else null; `therapies` are the
    prior therapies that decided the flags.
    """

    flags: dict[str, bool | None]
    requested: str | None
    fits: str | None
    indications: tuple[LabelIndicationCheck, ...]
    therapies: tuple[TherapyFinding, ...]


@record
class GuidelineContext:
    """Receptor status (explicit fields, else ICD-10-CM Z17.* codes) and the policy's guideline
    summary, shown as context only. `evidence` says where each status came from."""

    her2: str | None
    hormone_receptor: str | None
    triple_negative: bool | None
    evidence: dict[str, str]
    conflicts: tuple[str, ...]
    summary: str
    source: str
