"""The batch on Apache Spark (local[2]): one SparkSession for the whole module, few tests.

The parity suite: in this process, in a process pool and on Spark, the same requests give the
same determinations, byte for byte, and the same errors. `make test` runs it on a few hundred
generated requests (PRIORAUTH_PARITY_REQUESTS to change that); benchmarks/batch.py runs it on
10,000 across all four policies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from priorauth.batch.policies import PolicySource
from priorauth.batch.runner import decide_batch
from priorauth.batch.sources import RequestFile, read_items
from tests.batch_helpers import by_line, spark_or_skip, write_requests

PARITY_REQUESTS = int(os.environ.get("PRIORAUTH_PARITY_REQUESTS", "300"))


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    spark_or_skip()
    from priorauth.batch.spark import spark_session

    session = spark_session("local[2]", "priorauth-tests")
    yield session
    session.stop()


def test_in_process_pool_and_spark_give_identical_determinations(
    spark: Any, tmp_path: Path
) -> None:
    from priorauth.batch.spark import decide_on_spark, requests_frame

    source = write_requests(tmp_path / "requests.jsonl", PARITY_REQUESTS, seed=2026, bad=0.01)
    policies = PolicySource()
    local = decide_batch(
        read_items(source), tmp_path / "local.parquet", tmp_path / "local.err", policies
    )
    pooled = decide_batch(
        RequestFile.open(source),  # each worker reads its own parts of the file
        tmp_path / "pool.parquet",
        tmp_path / "pool.err",
        policies,
        workers=2,
        chunk_size=64,
    )
    on_spark = decide_on_spark(
        spark,
        requests_frame(spark, source),
        tmp_path / "spark.parquet",
        tmp_path / "spark.err",
        policies,
    )
    assert local.decided == pooled.decided == on_spark.decided
    assert local.failed == pooled.failed == on_spark.failed > 0
    assert local.outcomes == pooled.outcomes == on_spark.outcomes
    rows = {name: by_line(tmp_path / f"{name}.parquet") for name in ("local", "pool", "spark")}
    assert len(rows["local"]) + local.failed == PARITY_REQUESTS
    # Every column of every row, the whole determination included, is the same.
    assert rows["local"] == rows["pool"] == rows["spark"]
    policies_seen = {row["policy_id"] for row in rows["local"].values()}
    assert policies_seen == {"denosumab", "eribulin", "infliximab", "ixempra", None}
    errors = {
        name: [json.loads(x) for x in (tmp_path / f"{name}.err").read_text().splitlines()]
        for name in ("local", "pool", "spark")
    }
    assert errors["local"] == errors["pool"] == errors["spark"]


def test_spark_batch_from_the_command_line(spark: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from priorauth.entrypoints.cli import app

    source = write_requests(tmp_path / "requests.jsonl", 40, seed=5)
    output = tmp_path / "out.parquet"
    result = CliRunner().invoke(
        app, ["batch", "decide", str(source), "-o", str(output), "--engine", "spark"]
    )
    assert result.exit_code == 0, result.output
    assert "decided 40 request(s)" in result.stdout
    assert output.is_dir()
    assert len(by_line(output)) == 40


def test_impact_on_spark_sql_gives_the_report_duckdb_gives(spark: Any, tmp_path: Path) -> None:
    from priorauth.batch.impact import history_from_parquet, run_impact
    from tests.batch_helpers import new_ixempra

    source = write_requests(tmp_path / "requests.jsonl", 150, seed=21)
    decide_batch(read_items(source), tmp_path / "h.parquet", tmp_path / "h.err", PolicySource())
    history = history_from_parquet(tmp_path / "h.parquet", "ixempra")
    new = new_ixempra(tmp_path / "new")
    on_duckdb = run_impact(history, "h", new, PolicySource(), tmp_path / "duckdb")
    on_spark = run_impact(history, "h", new, PolicySource(), tmp_path / "spark", spark=spark)
    assert on_duckdb.changed > 0
    duckdb_json, spark_json = on_duckdb.to_json(), on_spark.to_json()
    assert (duckdb_json.pop("engine"), spark_json.pop("engine")) == ("duckdb", "spark")
    assert duckdb_json == spark_json
