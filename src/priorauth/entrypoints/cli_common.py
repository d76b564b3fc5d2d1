"""What the CLI's command groups share: the error console, failing with one line, and reading
a policy file a command was given."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from priorauth.catalog import load_policy
from priorauth.errors import PolicyError
from priorauth.policy.model import Policy

__all__ = ["err", "fail", "policy_or_fail"]

err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (2: bad usage or input)."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise typer.Exit(code)


def policy_or_fail(file: Path) -> Policy:
    """The policy in `file`, or each problem printed as FILE:LINE and exit 1 (2 when there is
    no such file)."""
    if not file.is_file():
        fail(f"{file}: no such policy file")
    try:
        return load_policy(file)
    except PolicyError as exc:
        for issue in exc.issues:
            err.print(f"{file}:{issue}", markup=False)
        fail(f"{file}: {len(exc.issues)} problem(s); run `priorauth policy validate {file}`", 1)
