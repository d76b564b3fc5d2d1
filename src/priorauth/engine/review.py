"""The clinical-review parts of a determination: screens that could not run, the label
indication and the guideline context.

Frozen, slotted records (engine.records) like the rest of the determination, kept in their own
module so that the safety screens (engine.safety) can grow without touching the core contract.
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
    "Unrecognized",
]


@record
class ScreenNotRun:
    """A safety screen that could not run: the request lacks what it reads, or names what the
    drug vocabulary does not know. Not a finding.

    `fields` names what would let it run, in the request's words (`observations[751-8]`,
    `service.dose`, `patient.pregnant`, `medications`, `service.with[0]`); `reason` says why in
    words."""

    screen: str
    title: str
    fields: tuple[str, ...]
    reason: str = ""


@record
class Unrecognized:
    """A medication or an agent given alongside that the drug vocabulary does not know, so no
    screen could tell what it is: `field` is where it is in the request, `name` as written."""

    field: str
    name: str


@record
class TherapyFinding:
    """One medication of an agent class judged against its class's resistance window: `index`
    is its place in the request's `medications`, `agent` its name."""

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
    medications (past therapies) that decided the flags.
    """

    flags: dict[str, bool | None]
    requested: str | None
    fits: str | None
    indications: tuple[LabelIndicationCheck, ...]
    therapies: tuple[TherapyFinding, ...]


@record
class GuidelineContext:
    """Receptor status from the conditions' ICD-10-CM Z17.* codes and the policy's guideline
    summary, shown as context only. `evidence` says where each status came from; codes that
    disagree (Z17.31 and Z17.32) leave the status unknown and are listed in `conflicts`."""

    her2: str | None
    hormone_receptor: str | None
    triple_negative: bool | None
    evidence: dict[str, str]
    conflicts: tuple[str, ...]
    summary: str
    source: str
