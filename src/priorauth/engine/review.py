"""The clinical-review parts of a determination: screens that could not run, the label
indication and the guideline context.

Frozen, slotted dataclasses like the rest of the determination (engine.determination), kept in
their own module so that the safety screens can grow without touching the core contract. Their
__init__ sets each slot through the slot's own setter (`_quick`), as the determination's records
do: the screens build some of them for every request.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar, dataclass_transform

__all__ = [
    "GuidelineContext",
    "LabelIndication",
    "LabelIndicationCheck",
    "ScreenNotRun",
    "TherapyFinding",
]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def _quick(cls: type[_T]) -> type[_T]:
    """A frozen, slotted dataclass whose __init__ skips the frozen check once, at construction
    (each field set through its slot's setter rather than object.__setattr__): about twice as
    fast. Assignment after construction still raises FrozenInstanceError. The fields here have
    no defaults."""
    built = dataclass(frozen=True, slots=True)(cls)
    names = [f.name for f in fields(built)]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {f"_set_{name}": built.__dict__[name].__set__ for name in names}
    body = "".join(f"    _set_{name}(self, {name})\n" for name in names)
    exec(f"def __init__(self, {', '.join(names)}):\n{body}", namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{built.__qualname__}.__init__"
    built.__init__ = init  # type: ignore[method-assign]
    return built


@_quick
class ScreenNotRun:
    """A safety screen that could not run: the request lacks what it reads. Not a finding."""

    screen: str
    title: str
    fields: tuple[str, ...]


@_quick
class TherapyFinding:
    """One prior therapy judged against its class's resistance window."""

    index: int
    agent: str
    agent_class: str
    setting: str | None
    resistant: bool | None
    detail: str


@_quick
class LabelIndicationCheck:
    """One of the label's indications and whether the therapy history fits it."""

    id: str
    text: str
    status: Literal["met", "not-met", "unknown"]


@_quick
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


@_quick
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
