"""Load a policy's clinical-review data (safety screens, resistance windows) through named stages.

The stages are the policy loader's (policy.staged runs them), with their own codes; every issue
has a path and a line:

    parse       PS1xx  the text is YAML and a mapping at the top
    schema      PS2xx  the data fits policy.safety_model.SafetyData
    references  PS3xx  ids unique, message placeholders known, bands ordered, resistance terms
                       defined (the drug classes screens name are checked against the drug
                       vocabulary when the policy set is built: PS309)
    lint        PS4xx  warnings (none yet)
"""

from __future__ import annotations

import string

from priorauth.policy.safety_model import (
    AllergyScreen,
    AttestedScreen,
    ConditionScreen,
    InteractionScreen,
    ObservationBandsScreen,
    ObservationLimitsScreen,
    ObservationResultScreen,
    SafetyData,
)
from priorauth.policy.staged import Checked, Path, Report, Stages, check_text, load_text

__all__ = ["PLACEHOLDERS", "check_safety_text", "load_safety_text"]

# The {placeholders} each kind of screen fills in its messages.
PLACEHOLDERS: dict[type, frozenset[str]] = {
    ObservationLimitsScreen: frozenset({"found"}),
    ObservationBandsScreen: frozenset({"found", "band", "dose", "allowed"}),
    AllergyScreen: frozenset({"substance", "severity"}),
    AttestedScreen: frozenset(),
    InteractionScreen: frozenset({"drug", "strength", "dose", "limit"}),
    ConditionScreen: frozenset({"code", "dose"}),
    ObservationResultScreen: frozenset({"found"}),
}


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _references(data: SafetyData, add: Report) -> None:
    seen: set[str] = set()
    for i, screen in enumerate(data.screens):
        base: Path = ("screens", i)
        if screen.id in seen:
            add("PS301", (*base, "id"), f"screen id {screen.id!r} is used twice")
        seen.add(screen.id)
        allowed = PLACEHOLDERS[type(screen)]
        messages: list[tuple[str, str | None]] = [("message", screen.message)]
        if isinstance(screen, ObservationBandsScreen):
            messages.append(("not_recommended_message", screen.not_recommended_message))
        if isinstance(screen, InteractionScreen | ConditionScreen):
            messages.append(("otherwise_message", screen.otherwise_message))
        for key, template in messages:
            if template is None:
                continue
            try:
                unknown = _fields(template) - allowed
            except ValueError as exc:
                add("PS303", (*base, key), f"not a valid message template: {exc}")
                continue
            if unknown:
                names = ", ".join(sorted(f"{{{n}}}" for n in unknown))
                known = ", ".join(sorted(f"{{{n}}}" for n in allowed)) or "none"
                add("PS303", (*base, key), f"unknown placeholder {names} (known: {known})")
        if isinstance(screen, ObservationBandsScreen):
            _bands(screen, base, add)
    if data.resistance is not None:
        _resistance(data, add)


def _bands(screen: ObservationBandsScreen, base: Path, add: Report) -> None:
    keys = list(screen.observations)
    last = len(screen.bands) - 1
    previous: tuple[float, ...] = (0.0,) * len(keys)
    for k, band in enumerate(screen.bands):
        path: Path = (*base, "bands", k)
        unknown = sorted(set(band.at_most) - set(keys))
        if unknown:
            known = ", ".join(keys)
            add(
                "PS304",
                (*path, "at_most"),
                f"{', '.join(unknown)}: not among the observations ({known})",
            )
            continue
        if k == last:
            if band.at_most or not band.not_recommended:
                add("PS304", path, "the last band is the catch-all: no limits, not_recommended")
            continue
        if len(band.at_most) != len(keys):
            add("PS304", path, "a band before the last needs a limit for every observation")
            continue
        current = tuple(band.at_most[key] for key in keys)
        widens = all(c >= p for c, p in zip(current, previous, strict=True))
        if not widens or current == previous:
            add("PS304", path, "each band's limits must widen on the band before it")
        previous = current


def _resistance(data: SafetyData, add: Report) -> None:
    resistance = data.resistance
    assert resistance is not None
    owner: dict[str, str] = {}
    for class_id, agent_class in resistance.classes.items():
        for j, agent in enumerate(agent_class.agents):
            key = agent.casefold()
            if key in owner:
                add(
                    "PS306",
                    ("resistance", "classes", class_id, "agents", j),
                    f"agent {agent!r} is already in class {owner[key]!r}",
                )
            owner[key] = class_id
    for condition_id, condition in resistance.conditions.items():
        if condition.agent_class not in resistance.classes:
            add(
                "PS308",
                ("resistance", "conditions", condition_id, "agent_class"),
                f"{condition.agent_class!r} is not a class under resistance",
            )
    terms = set(resistance.classes) | set(resistance.conditions)
    for i, indication in enumerate(resistance.indications):
        for j, group in enumerate(indication.any_of):
            for k, term in enumerate(group):
                if term not in terms:
                    add(
                        "PS307",
                        ("resistance", "indications", i, "any_of", j, k),
                        f"{term!r} is neither a class nor a condition under resistance",
                    )


def _lint(data: SafetyData, warn: Report) -> None:
    del data, warn  # no warnings yet: the drug classes live in the vocabulary


SAFETY_STAGES = Stages(
    prefix="PS",
    model=SafetyData,
    not_a_mapping="safety data is a YAML mapping (id:, screens:)",
    references=_references,
    lint=_lint,
    kinds={"screens": "screen"},
)


def check_safety_text(text: str) -> Checked[SafetyData]:
    """Run every stage over the YAML text of a safety data file: the data (`.value`) and all
    the findings."""
    return check_text(text, SAFETY_STAGES)


def load_safety_text(text: str, source: str = "<safety>") -> SafetyData:
    """The safety data in `text`, or PolicyError listing every error the stages found."""
    return load_text(text, SAFETY_STAGES, source)
