"""`priorauth dtr`: what a policy gives DTR, printed offline (the form, its CQL, its ELM).

An analyst writing a policy sees the questions the form will ask and the pre-population logic
before any server runs:

    priorauth dtr questionnaire policies/my-drug.yaml
    priorauth dtr questionnaire policies/my-drug.yaml --ask metastatic
    priorauth dtr cql policies/my-drug.yaml
    priorauth dtr elm policies/my-drug.yaml > my-drug.elm.json

The FHIR and CQL adapters are imported by the commands themselves: `priorauth` starts without
fhir.resources.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from priorauth.entrypoints.cli_common import fail, policy_or_fail

__all__ = ["dtr_app"]

dtr_app = typer.Typer(
    help="Show what a policy gives DTR: its questionnaire, its CQL and ELM.",
    no_args_is_help=True,
)

PolicyFile = Annotated[
    Path, typer.Argument(help="A policy file, e.g. policies/my-drug.yaml", show_default=False)
]
Base = Annotated[str, typer.Option("--base", help="The FHIR base URL the canonicals are under.")]


@dtr_app.command("questionnaire")
def questionnaire(
    file: PolicyFile,
    ask: Annotated[
        list[str] | None,
        typer.Option(
            "--ask",
            help="Ask only these questions (fact names; repeat the option). "
            "Default: every question the policy lets a requester answer.",
        ),
    ] = None,
    base: Base = "http://127.0.0.1:8000/fhir",
) -> None:
    """Print the SDC Questionnaire generated from the policy, as FHIR JSON."""
    from priorauth.adapters.fhir import dtr

    policy = policy_or_fail(file)
    order = dtr.ask_order(policy)
    unknown = [a for a in ask or () if a not in order]
    if unknown:
        fail(
            f"the policy asks no question {', '.join(map(repr, unknown))}; "
            f"it asks: {', '.join(order)}"
        )
    form = dtr.build_questionnaire(policy, ask or None, base.rstrip("/"))
    typer.echo(json.dumps(form, indent=2, ensure_ascii=False))


@dtr_app.command("cql")
def cql(file: PolicyFile) -> None:
    """Print the CQL library generated from the policy's facts."""
    from priorauth.adapters.cql import compile_policy

    typer.echo(compile_policy(policy_or_fail(file)).cql)


@dtr_app.command("elm")
def elm(file: PolicyFile) -> None:
    """Print the ELM JSON of that library (what a CQL engine such as cql-execution runs)."""
    from priorauth.adapters.cql import compile_policy

    typer.echo(compile_policy(policy_or_fail(file)).elm_json)
