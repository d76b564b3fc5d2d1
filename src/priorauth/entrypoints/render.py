"""Render determinations and policies for people, with rich."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from priorauth.engine.determination import (
    SEVERITY_ORDER,
    Alert,
    CriterionResult,
    Determination,
)
from priorauth.engine.explain import fact_value
from priorauth.policy.model import Approval, CriterionSpec, Policy

__all__ = ["determination_panel", "policy_tree"]

_MARK = {"met": ("✓", "green"), "not-met": ("✗", "red"), "unknown": ("?", "yellow")}
_SEVERITY = {
    "contraindication": ("⛔", "bold red"),
    "dose-limit": ("▲", "bold magenta"),
    "review": ("?", "bold magenta"),
    "warning": ("!", "yellow"),
}
_FLAG = {True: "yes", False: "no", None: "unknown"}


def _plain(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _safety(d: Determination) -> list[RenderableType]:
    """Safety findings, contraindications first, then what could not be screened and the
    label indication and receptor context."""
    parts: list[RenderableType] = []
    if d.alerts:
        parts.append(Text("Safety findings", style="bold"))
        alerts: list[Alert] = sorted(d.alerts, key=lambda a: SEVERITY_ORDER[a.severity])
        for alert in alerts:
            mark, style = _SEVERITY[alert.severity]
            line = Text(f"{mark} {alert.severity.upper()} ", style=style)
            line.append(f"{alert.code}: ", style="bold")
            line.append(alert.message, style="red" if alert.severity != "warning" else "")
            read = ", ".join(f"{k}={_plain(v)}" for k, v in alert.facts.items() if v is not None)
            line.append(f"\n    source: {alert.source}", style="dim")
            if read:
                line.append(f"\n    read: {read}", style="dim")
            parts.append(line)
    for skipped in d.screens_not_run:
        why = skipped.reason or f"needs {', '.join(skipped.fields)}"
        parts.append(Text(f"Not screened: {skipped.screen}: {why}", style="dim"))
    if d.unrecognized:
        names = "; ".join(f"{u.field} {u.name!r}" for u in d.unrecognized)
        parts.append(Text(f"Not in the drug vocabulary: {names}", style="yellow"))
    label = d.label_indication
    if label is not None:
        flags = ", ".join(
            f"{k.removesuffix('_resistant')} {_FLAG[v]}" for k, v in label.flags.items()
        )
        status = next((c.status for c in label.indications if c.id == label.requested), "unknown")
        mark, colour = _MARK[status]
        parts.append(
            Text(
                f"{mark} Label indication {label.requested or '-'}: {status} "
                f"(resistant to: {flags}) - information only",
                style=colour,
            )
        )
        for therapy in label.therapies:
            parts.append(
                Text(
                    f"    medications[{therapy.index}] {therapy.agent} "
                    f"({therapy.agent_class}, {therapy.setting or 'setting unknown'}): "
                    f"{_FLAG[therapy.resistant]}, {therapy.detail}",
                    style="dim",
                )
            )
    context = d.guideline
    if context is not None and context.evidence:
        triple = _FLAG[context.triple_negative]
        text = (
            f"Receptors: HER2 {context.her2 or 'unknown'}, hormone receptor "
            f"{context.hormone_receptor or 'unknown'}, triple negative {triple}"
        )
        parts.append(Text(text, style="cyan"))
        for conflict in context.conflicts:
            parts.append(Text(f"    ⚠ {conflict}", style="yellow"))
        parts.append(Text(f"    {context.summary}", style="dim"))
    return parts


def _criterion(tree: Tree, node: CriterionResult, determination: Determination) -> None:
    mark, colour = _MARK[node.status]
    label = Text.assemble((f"{mark} {node.id} ", f"bold {colour}"), (node.text, ""))
    for name in node.facts:
        fact = determination.facts[name]
        value = fact_value(fact, yes="true", no="false")
        sources = ", ".join(f"{e.field}={e.value}" for e in fact.evidence)
        label.append(f"\n    {name} = {value}", style=colour)
        if sources:
            label.append(f"  from {sources}", style="dim")
        elif fact.note:
            label.append(f"  ({fact.note})", style="dim")
    branch = tree.add(label)
    for child in node.children:
        _criterion(branch, child, determination)


def determination_panel(determination: Determination, source: str = "") -> RenderableType:
    """A panel a reviewer reads top to bottom: outcome, why, what to ask, what is authorized."""
    d = determination
    approved = d.outcome == "approved"
    colour = "green" if approved else "yellow"
    parts: list[RenderableType] = [Text(d.summary, style=f"bold {colour}")]
    if d.reasons:
        parts.append(Text(f"Reasons: {', '.join(d.reasons)}    Route to: {d.route}"))
    for conflict in d.conflicts:
        parts.append(Text(f"⚠ Conflict on {conflict.fact}: {conflict.message}", style="bold red"))
    parts.extend(_safety(d))
    if d.indication is not None:
        ind = d.indication
        mark, ind_colour = _MARK[ind.status]
        parts.append(
            Text(f"{mark} Indication {ind.id}: {ind.title} ({ind.status})", style=ind_colour)
        )
    if d.criteria is not None:
        tree = Tree("Criteria", guide_style="dim")
        _criterion(tree, d.criteria, d)
        parts.append(tree)
    if d.dosing is not None:
        dosing = d.dosing
        table = Table(title=f"Dosing: {dosing.status}", title_justify="left", show_edge=False)
        table.add_column("regimen")
        table.add_column("status")
        table.add_column("detail")
        for check in dosing.checks:
            mark, check_colour = _MARK[check.status]
            table.add_row(
                check.id, Text(f"{mark} {check.status}", style=check_colour), check.detail
            )
        parts.append(table)
        if dosing.bsa_m2 is not None:
            parts.append(Text(f"BSA {dosing.bsa_m2:g} m2 from {dosing.bsa_source}", style="dim"))
        if dosing.weight_kg is not None:
            parts.append(
                Text(f"Weight {dosing.weight_kg:g} kg from {dosing.weight_source}", style="dim")
            )
    if d.missing:
        table = Table(title="Questions to answer", title_justify="left", show_edge=False)
        table.add_column("for")
        table.add_column("question")
        table.add_column("fields", style="dim")
        for item in d.missing:
            table.add_row(", ".join(item.criteria), item.question, ", ".join(item.fields))
        parts.append(table)
    if d.authorization is not None:
        auth = d.authorization
        text = f"Authorized {auth.valid_from} through {auth.valid_through}: regimen {auth.regimen}"
        if auth.dose is not None:
            text += f", {auth.dose:g} {auth.dose_unit} a dose"
        if auth.doses is not None:
            text += f", {auth.doses} dose(s)"
        if auth.mg_per_dose is not None:
            text += f"; {auth.mg_per_dose:g} mg a dose"
        if auth.units is not None:
            text += f"; {auth.units} units of {auth.billing_code} ({auth.units_per_dose} a dose)"
        if auth.continues:
            text += f"; continues {auth.continues}"
        parts.append(Text(text, style="green"))
    footer = f"engine {d.engine.version}  request {d.request_hash[:19]}"
    if d.policy is not None:
        footer = f"policy {d.policy.id} v{d.policy.version} {d.policy.content_hash[:19]}  " + footer
    parts.append(Text(footer, style="dim"))
    title = f"{d.request_id}: {d.outcome.upper()}" + (f"  ({source})" if source else "")
    return Panel(Group(*parts), title=title, title_align="left", border_style=colour)


_SIGNS = {"at_least": "≥", "at_most": "≤", "below": "<", "above": ">", "equals": "=", "in": "in"}


def _spec(tree: Tree, node: CriterionSpec) -> None:
    if node.fact is not None:
        test = "".join(
            f" is {value}" if name == "is" else f" {_SIGNS[name]} {_plain(value)}"
            for name, value in node.comparators().items()
        )
        label = Text.assemble((f"{node.id} ", "bold"), node.text, (f"  [{node.fact}{test}]", "dim"))
        tree.add(label)
        return
    operator = {
        "all": "ALL of",
        "any": "ONE of",
        "not": "NOT",
        "at-least": f"AT LEAST {int(node.at_least or 0)} of",
    }[node.operator]
    branch = tree.add(Text.assemble((f"{node.id} ", "bold"), (f"{operator}: ", "cyan"), node.text))
    for child in node.children():
        _spec(branch, child)


def _period(approval: Approval) -> str:
    parts = [
        f"{n} {word}{'s' if n > 1 else ''}"
        for n, word in (
            (approval.years, "year"),
            (approval.months, "month"),
            (approval.days, "day"),
        )
        if n
    ]
    return " ".join(parts)


def policy_tree(policy: Policy, content_hash: str) -> RenderableType:
    """The policy as its author wrote it: identity, drugs, criteria, dosing."""
    root = Tree(Text(f"{policy.title}", style="bold"))
    root.add(
        f"id {policy.id}  version {policy.version}  reviewed {policy.review_date}  "
        f"effective {policy.effective_date}  {content_hash[:19]}"
    )
    drugs = root.add("Drugs")
    for drug in policy.drugs:
        drugs.add(
            f"{drug.name}: HCPCS {', '.join(drug.hcpcs) or '-'}; "
            f"NDC {', '.join(drug.ndc_products) or '-'}"
            + (f"; RxNorm {', '.join(drug.rxnorm)}" if drug.rxnorm else "")
            + ("; preferred" if drug.preferred else "")
        )
    for indication in policy.indications:
        branch = root.add(
            Text(
                f"Indication {indication.id}: {indication.title} "
                f"(when {indication.when}; approve for {_period(indication.approval)})",
                style="bold",
            )
        )
        _spec(branch, indication.criteria)
        continued = indication.continuation
        if continued is not None:
            again = branch.add(
                Text(f"Continuation: approve for {_period(continued.approval)}", style="bold")
            )
            if continued.criteria is not None:
                _spec(again, continued.criteria)
    dosing = root.add(Text(f"Dosing: {policy.dosing.text}", style="bold"))
    for regimen in policy.dosing.regimens:
        dosing.add(f"{regimen.id}) {regimen.text}")
    if policy.continuation is not None:
        root.add(f"Continuation: {policy.continuation.text}")
    facts = root.add("Facts")
    for name, spec in policy.facts.items():
        facts.add(Text.assemble((name, "cyan"), f" ({spec.kind}) {spec.description}"))
    return root
