"""Helpers for the batch tests: generated request files and the determinations of a Parquet
output, keyed by line, for comparing the paths that decide a batch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from priorauth.batch.generate import example_requests, generate_lines

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def write_requests(path: Path, count: int, seed: int = 7, bad: float = 0.0) -> Path:
    lines = generate_lines(example_requests(EXAMPLES), count, seed, bad)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def by_line(output: Path) -> dict[int, dict[str, Any]]:
    """The rows of a batch's Parquet (a file or Spark's folder), by line."""
    rows = pq.read_table(output).to_pylist()
    return {row["line"]: row for row in rows}


def spark_or_skip() -> None:
    """Skip a Spark test when Java or PySpark is absent, except in CI (CI=true), where the
    test fails instead: CI installs both (.ci/install-java, pip)."""
    from priorauth.batch.spark import java_available

    missing = []
    if not java_available():
        missing.append("Java (Debian: openjdk-17-jre-headless; .ci/install-java installs it)")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing.append("PySpark (pip install -e '.[dev]')")
    if not missing:
        return
    message = "Spark tests need " + " and ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def new_ixempra(folder: Path, age: int = 40, max_dose: int = 35) -> Path:
    """A new version of the shipped Ixempra policy: adults of at least `age` (was 18), each
    dose at most `max_dose` mg/m2 every 3 weeks (was 40)."""
    text = (ROOT / "policies" / "ixempra.yaml").read_text(encoding="utf-8")
    changed = (
        text.replace('version: "2026.01.14"', 'version: "2027.01.01"')
        .replace("          at_least: 18\n", f"          at_least: {age}\n")
        .replace("dose: {max: 40, unit: mg/m2}", f"dose: {{max: {max_dose}, unit: mg/m2}}")
    )
    assert changed.count("2027.01.01") == 1 and f"at_least: {age}" in changed
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ixempra.yaml"
    path.write_text(changed, encoding="utf-8")
    return path
