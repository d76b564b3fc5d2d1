"""Load a policy from YAML text through named checking stages, collecting every problem.

Stages, each with its own codes, in order (a stage runs only if the ones before found no error;
policy.staged runs them):

    parse       PA1xx  the text is YAML (PA101), a mapping at the top (PA102), no key written
                       twice in one mapping (PA103)
    schema      PA201  the data fits the policy model (policy.model.Policy): a misspelt key or
                       fact kind is answered with the nearest allowed names
    references  PA3xx  names resolve and fit together (the table below)
    lint        PA4xx  warnings: facts or agent classes never used, questions that do not end
                       in "?", no routing, a retro window longer than an approval period
                       (PA407), ...

The reference checks:

    PA301  a criterion, indication or regimen names a fact that is not defined
    PA302  a criterion id is used twice in one criteria tree
    PA303  a numeric fact is tested without a number comparison (at_least, below, ...)
    PA304  a true/false fact is compared with a number
    PA305  a regimen id is used twice
    PA306  an indication id is used twice
    PA307  an indication's `when`, or a regimen's `when`/`unless` fact, is not true/false
    PA308  a medication fact names an agent class that is not defined
    PA309  a comparison that does not fit the fact (a choice outside the fact's choices,
           `equals` on a number, two kinds of comparison on one leaf, ...)
    PA310  an indication lists a regimen that is not defined
    PA311  a unit that is not UCUM, or not a unit of the observation it is for
    PA312  a code system that is not known (clinical.systems), or not by its short name
    PA313  a code that does not look like a code of its system
    PA314  two drugs of the policy claim the same HCPCS code or NDC product
    PA315  a `product` fact with no codes, but no drug is marked `preferred: true`

Every issue carries the path in the document and its line, so an author can go straight to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from priorauth.clinical.observations import KNOWN, ULN
from priorauth.clinical.systems import system_name
from priorauth.clinical.units import UnitError, compatible, dimension
from priorauth.policy.model import (
    AgeFact,
    AnswerFact,
    Approval,
    CodeRef,
    ConditionFact,
    CriterionSpec,
    CurrentMedicationFact,
    FactSpec,
    MeasureFact,
    MedicationHistoryFact,
    ObservationFact,
    Policy,
    ProductFact,
)
from priorauth.policy.staged import (
    Checked,
    Path,
    Report,
    Stages,
    check_text,
    did_you_mean,
    load_text,
)

__all__ = [
    "CODE_SHAPES",
    "check_policy_text",
    "criteria_trees",
    "load_policy_text",
    "value_type",
]

NUMBER_COMPARATORS = frozenset({"at_least", "at_most", "below", "above"})
# What a code of each system looks like (a trailing `*` in a policy means "and every code
# under it"), so that a code pasted into the wrong system is caught.
CODE_SHAPES: dict[str, str] = {
    "icd-10-cm": r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{0,4})?\*?$",
    "icd-o-3": r"^[0-9]{3}[0-9*](/[0-9])?$",
    "loinc": r"^[0-9]{1,7}-[0-9]$",
    "hcpcs": r"^[A-Z][0-9]{4}$",
    "cpt": r"^[0-9]{4}[0-9A-Z]$",
    "rxnorm": r"^[0-9]{1,10}$",
    "ndc": r"^[0-9]{4,5}-[0-9]{3,4}(-[0-9]{1,2})?$",
    "nucc": r"^[0-9]{3}[0-9A-Z]{6}X$",
    "snomed": r"^[0-9]{6,18}$",
}


def value_type(spec: FactSpec) -> str:
    """What a fact's value is: `boolean`, `number`, `choice`, `date`, `text`, or `any` (an
    observation with no unit: a coded, yes/no or plain value, whatever the record holds)."""
    if isinstance(spec, AgeFact | MeasureFact | MedicationHistoryFact):
        return "number"
    if isinstance(spec, ObservationFact):
        return "number" if spec.unit is not None else "any"
    if isinstance(spec, AnswerFact):
        return spec.type
    return "boolean"


def criteria_trees(policy: Policy) -> Iterator[tuple[Path, CriterionSpec]]:
    """Every criteria tree of a policy with its path: each indication's criteria and its
    continuation's, the policy's continuation criteria, and regimens' `when`/`unless` tests."""
    for i, indication in enumerate(policy.indications):
        yield ("indications", i, "criteria"), indication.criteria
        if indication.continuation is not None and indication.continuation.criteria is not None:
            yield ("indications", i, "continuation", "criteria"), indication.continuation.criteria
    if policy.continuation is not None and policy.continuation.criteria is not None:
        yield ("continuation", "criteria"), policy.continuation.criteria
    for j, regimen in enumerate(policy.dosing.regimens):
        for key, test in (("when", regimen.when), ("unless", regimen.unless)):
            if isinstance(test, CriterionSpec):
                yield ("dosing", "regimens", j, key), test


def _nodes(node: CriterionSpec, path: Path) -> Iterator[tuple[CriterionSpec, Path]]:
    yield node, path
    for key, children in (("all", node.all), ("any", node.any), ("of", node.of)):
        for k, child in enumerate(children or []):
            yield from _nodes(child, (*path, key, k))
    if node.not_ is not None:
        yield from _nodes(node.not_, (*path, "not"))


def _fact_names(policy: Policy) -> Iterator[tuple[str, Path]]:
    """Every place a fact is named by itself (not in a criterion leaf), with its path."""
    for i, indication in enumerate(policy.indications):
        yield indication.when, ("indications", i, "when")
    for j, regimen in enumerate(policy.dosing.regimens):
        for key, test in (("when", regimen.when), ("unless", regimen.unless)):
            if isinstance(test, str):
                yield test, ("dosing", "regimens", j, key)


def _references(policy: Policy, add: Report) -> None:
    facts = policy.facts
    for name, path in _fact_names(policy):
        spec = facts.get(name)
        if spec is None:
            add(
                "PA301",
                path,
                f"fact {name!r} is not defined under facts{did_you_mean(name, facts)}",
            )
        elif value_type(spec) not in ("boolean", "any"):
            add(
                "PA307",
                path,
                f"fact {name!r} is a {value_type(spec)}: `{path[-1]}` needs a true/false fact "
                "(or, in a regimen, a test such as {id, text, fact, at_least})",
            )
    for tree_path, tree in criteria_trees(policy):
        seen: set[str] = set()
        for node, path in _nodes(tree, tree_path):
            if node.id in seen:
                add("PA302", (*path, "id"), f"criterion id {node.id!r} is used twice in this tree")
            seen.add(node.id)
            if node.fact is not None:
                _leaf(policy, node, path, add)
    _ids(policy, add)
    _facts(policy, add)
    _drugs(policy, add)


def _leaf(policy: Policy, node: CriterionSpec, path: Path, add: Report) -> None:
    """A criterion that tests one fact: the fact exists and the comparison fits its value."""
    assert node.fact is not None
    spec = policy.facts.get(node.fact)
    if spec is None:
        hint = did_you_mean(node.fact, policy.facts)
        add("PA301", (*path, "fact"), f"fact {node.fact!r} is not defined under facts{hint}")
        return
    given = node.comparators()
    numbers = NUMBER_COMPARATORS & set(given)
    others = set(given) - NUMBER_COMPARATORS
    kind = value_type(spec)
    name = node.fact
    if numbers and others:
        add(
            "PA309",
            path,
            f"compare fact {name!r} one way: {', '.join(sorted(numbers))} or "
            f"{', '.join(sorted(others))}, not both",
        )
        return
    if "equals" in given and "in" in given:
        add("PA309", path, f"fact {name!r}: give `equals` or `in`, not both")
        return
    if kind == "number":
        if not numbers:
            add(
                "PA303",
                path,
                f"fact {name!r} is a number: give at_least, at_most, below or above",
            )
        return
    if kind == "boolean":
        if numbers:
            add("PA304", path, f"fact {name!r} is true/false: drop {', '.join(sorted(numbers))}")
        elif others - {"is"}:
            add(
                "PA309",
                path,
                f"fact {name!r} is true/false: test it bare, or with `is: false`",
            )
        return
    if kind in ("choice", "text"):
        if numbers or "is" in given or not others:
            add("PA309", path, f"fact {name!r} is a {kind}: test it with `equals` or `in`")
            return
        if isinstance(spec, AnswerFact) and kind == "choice":
            values = [node.equals] if node.in_ is None else list(node.in_)
            for value in values:
                if str(value) not in spec.choices:
                    hint = did_you_mean(str(value), spec.choices)
                    add(
                        "PA309",
                        path,
                        f"{value!r} is not one of the choices of {name!r} "
                        f"({', '.join(spec.choices)}){hint}",
                    )
        return
    if kind == "date":
        add(
            "PA309",
            path,
            f"fact {name!r} is a date: a criterion cannot test it (ask a yes/no question)",
        )


def _ids(policy: Policy, add: Report) -> None:
    regimen_ids = [r.id for r in policy.dosing.regimens]
    for j, regimen_id in enumerate(regimen_ids):
        if regimen_ids.index(regimen_id) != j:
            add(
                "PA305", ("dosing", "regimens", j, "id"), f"regimen id {regimen_id!r} is used twice"
            )
    indication_ids = [ind.id for ind in policy.indications]
    for i, indication in enumerate(policy.indications):
        if indication_ids.index(indication.id) != i:
            add("PA306", ("indications", i, "id"), f"indication id {indication.id!r} is used twice")
        for k, regimen_id in enumerate(indication.regimens):
            if regimen_id not in regimen_ids:
                hint = did_you_mean(regimen_id, regimen_ids) or f" ({', '.join(regimen_ids)})"
                add(
                    "PA310",
                    ("indications", i, "regimens", k),
                    f"regimen {regimen_id!r} is not defined under dosing.regimens{hint}",
                )


def _facts(policy: Policy, add: Report) -> None:
    for name, spec in policy.facts.items():
        base: Path = ("facts", name)
        if isinstance(spec, MedicationHistoryFact | CurrentMedicationFact):
            for k, class_name in enumerate(spec.classes):
                if class_name not in policy.agent_classes:
                    hint = did_you_mean(class_name, policy.agent_classes)
                    add(
                        "PA308",
                        (*base, "classes", k),
                        f"agent class {class_name!r} is not defined under agent_classes{hint}",
                    )
        if isinstance(spec, ConditionFact | ObservationFact) and _system(
            spec.system, (*base, "system"), add
        ):
            lists = [("codes", spec.codes)]
            if isinstance(spec, ConditionFact):
                lists.append(("exclude", spec.exclude))
            for key, codes in lists:
                for k, code in enumerate(codes):
                    _code_shape(spec.system, code, (*base, key, k), add)
        if isinstance(spec, ObservationFact) and spec.unit is not None and spec.unit != ULN:
            _observation_unit(spec, (*base, "unit"), add)
        if isinstance(spec, AnswerFact) and spec.unit is not None:
            _unit(spec.unit, (*base, "unit"), add)
        if isinstance(spec, ProductFact):
            for k, ref in enumerate(spec.codes):
                _code_ref(ref, (*base, "codes", k), add)
            if not spec.codes and not any(drug.preferred for drug in policy.drugs):
                add(
                    "PA315",
                    base,
                    "a product fact without codes means 'a preferred drug', but no drug is "
                    "marked `preferred: true`",
                )
    for class_name, agent_class in policy.agent_classes.items():
        for k, ref in enumerate(agent_class.codes):
            _code_ref(ref, ("agent_classes", class_name, "codes", k), add)


def _system(system: str, path: Path, add: Report) -> bool:
    """Whether a policy names a code system by a short name the engine knows."""
    try:
        short = system_name(system)
    except ValueError as exc:
        add("PA312", path, str(exc))
        return False
    if short != system:
        add("PA312", path, f"write the code system by its short name: {short!r}, not {system!r}")
        return False
    return True


def _code_shape(system: str, code: str, path: Path, add: Report) -> None:
    shape = CODE_SHAPES.get(system)
    if shape is not None and not re.match(shape, code):
        add("PA313", path, f"{code!r} does not look like a {system} code")


def _code_ref(ref: CodeRef, path: Path, add: Report) -> None:
    if _system(ref.system, (*path, "system"), add):
        _code_shape(ref.system, ref.code, (*path, "code"), add)


def _unit(unit: str, path: Path, add: Report) -> bool:
    try:
        dimension(unit)
    except UnitError as exc:
        add("PA311", path, str(exc))
        return False
    except TypeError:
        # The UCUM parser fails this way on an annotation alone (`{T-score}`): still a unit the
        # engine cannot read, so said as one rather than a traceback.
        add(
            "PA311",
            path,
            f"unit {unit!r} cannot be read (a UCUM annotation alone is not "
            "supported; leave the unit out for a unitless value)",
        )
        return False
    return True


def _observation_unit(spec: ObservationFact, path: Path, add: Report) -> None:
    assert spec.unit is not None
    if not _unit(spec.unit, path, add) or spec.system != "loinc":
        return
    for code in spec.codes:
        measure = KNOWN.get(code)
        if measure is not None and not compatible(spec.unit, measure.unit):
            add(
                "PA311",
                path,
                f"{spec.unit!r} is not a unit of {measure.name} (LOINC {code}; e.g. "
                f"{measure.unit})",
            )
            return


def _drugs(policy: Policy, add: Report) -> None:
    claimed: dict[str, int] = {}
    for i, drug in enumerate(policy.drugs):
        for key, codes in (("hcpcs", drug.hcpcs), ("ndc_products", drug.ndc_products)):
            for k, code in enumerate(codes):
                first = claimed.setdefault(code, i)
                if first != i:
                    add(
                        "PA314",
                        ("drugs", i, key, k),
                        f"{code} is claimed by drugs[{first}] too: a code names one product",
                    )


def _lint(policy: Policy, warn: Report) -> None:
    used = {name for name, _ in _fact_names(policy)}
    for _, tree in criteria_trees(policy):
        used.update(node.fact for node, _ in _nodes(tree, ()) if node.fact)
    for name, spec in policy.facts.items():
        if name not in used:
            warn("PA401", ("facts", name), f"fact {name!r} is defined but nothing uses it")
        if not spec.question.rstrip().endswith("?"):
            warn("PA402", ("facts", name, "question"), "a question should end with '?'")
    if not policy.routing:
        warn("PA403", ("routing",), "no routing: every pended request goes to 'clinician'")
    classes_used = {
        class_name
        for spec in policy.facts.values()
        if isinstance(spec, MedicationHistoryFact | CurrentMedicationFact)
        for class_name in spec.classes
    }
    for class_name in policy.agent_classes:
        if class_name not in classes_used:
            warn(
                "PA404",
                ("agent_classes", class_name),
                f"agent class {class_name!r} is defined but no fact uses it",
            )
    if all(indication.regimens for indication in policy.indications):
        offered = {r for indication in policy.indications for r in indication.regimens}
        for j, regimen in enumerate(policy.dosing.regimens):
            if regimen.id not in offered:
                warn(
                    "PA405",
                    ("dosing", "regimens", j),
                    f"regimen {regimen.id!r} is listed by no indication, so never approved",
                )
    for i, drug in enumerate(policy.drugs):
        if drug.billing is not None and drug.hcpcs and drug.billing.code not in drug.hcpcs:
            warn(
                "PA406",
                ("drugs", i, "billing", "code"),
                f"the billing code {drug.billing.code} is not among the drug's HCPCS codes",
            )
    _lint_service_dates(policy, warn)


def _approvals(policy: Policy) -> Iterator[tuple[Path, Approval]]:
    for i, indication in enumerate(policy.indications):
        yield ("indications", i, "approval"), indication.approval
        if indication.continuation is not None:
            yield ("indications", i, "continuation", "approval"), indication.continuation.approval
    if policy.continuation is not None:
        yield ("continuation", "approval"), policy.continuation.approval


def _lint_service_dates(policy: Policy, warn: Report) -> None:
    """A retro window that reaches further back than an approval period lasts: such a request
    can never be approved (its period would be over), so the window promises what it cannot."""
    if policy.service_dates is None:
        return
    retro = policy.service_dates.retro_days
    for path, approval in _approvals(policy):
        # The fewest days the period can last (a month as 28 days, a year as 365).
        fewest = approval.years * 365 + approval.months * 28 + approval.days
        if retro >= fewest:
            warn(
                "PA407",
                ("service_dates", "retro_days"),
                f"retro_days {retro} reaches back further than the approval period at "
                f"{'.'.join(str(p) for p in path)} lasts: such a request is always pended",
            )
            return


POLICY_STAGES = Stages(
    prefix="PA",
    model=Policy,
    not_a_mapping="a policy is a YAML mapping (id:, title:, ...)",
    references=_references,
    lint=_lint,
    kinds={"facts": "fact"},
)


def check_policy_text(text: str) -> Checked[Policy]:
    """Run every stage over a policy's YAML text: the policy (`.value`) and all the findings."""
    return check_text(text, POLICY_STAGES)


def load_policy_text(text: str, source: str = "<policy>") -> Policy:
    """The policy in `text`, or PolicyError listing every error the stages found."""
    return load_text(text, POLICY_STAGES, source)
