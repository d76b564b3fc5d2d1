"""Policy impact: history decided again under a new policy version, old and new compared.

1. The history: a batch's Parquet (`priorauth batch decide`) or the store (each case's first
   determination). Only requests under the new policy's id (or under no policy, which the new
   version may now govern) are taken.
2. Each request is decided again under the policy set with the new version in place of the
   old, as of the same date it was first decided, so that only the policy differs; in a
   process pool, or on Spark.
3. The comparison is SQL (QUERIES), run as it is on DuckDB over the Parquet files, or on Spark
   SQL over the same files: tables `old`, `new` (one row per request, the batch columns) and
   `old_criteria`, `new_criteria` (line, id, status: one row per criterion of each request).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from priorauth.batch.policies import PolicySource
from priorauth.batch.rows import SCHEMA, determination_row, rows_to_batch
from priorauth.batch.runner import BatchResult, decide_batch
from priorauth.batch.sources import InputError, Item
from priorauth.catalog import load_policy
from priorauth.engine.compiled import policy_hash
from priorauth.engine.determination import Determination
from priorauth.engine.request import parse_request

__all__ = [
    "QUERIES",
    "Change",
    "DuckDBAnalytics",
    "ImpactReport",
    "SparkAnalytics",
    "history_from_parquet",
    "history_from_store",
    "run_impact",
]

CRITERIA_SCHEMA = pa.schema([("line", pa.int64()), ("id", pa.string()), ("status", pa.string())])

# The queries, the same text on DuckDB and on Spark SQL.
QUERIES: dict[str, str] = {
    "outcomes": """
        SELECT o.outcome AS old_outcome, n.outcome AS new_outcome, count(*) AS requests
        FROM old o JOIN new n ON o.line = n.line
        GROUP BY o.outcome, n.outcome
        ORDER BY old_outcome, new_outcome
    """,
    "versions": """
        SELECT 'old' AS side, policy_id, policy_version, policy_hash, count(*) AS requests
        FROM old GROUP BY policy_id, policy_version, policy_hash
        UNION ALL
        SELECT 'new' AS side, policy_id, policy_version, policy_hash, count(*) AS requests
        FROM new GROUP BY policy_id, policy_version, policy_hash
        ORDER BY side DESC, requests DESC
    """,
    "changes": """
        SELECT o.outcome AS old_outcome, o.reasons_text AS old_reasons,
               n.outcome AS new_outcome, n.reasons_text AS new_reasons, count(*) AS requests
        FROM old o JOIN new n ON o.line = n.line
        WHERE o.outcome <> n.outcome OR o.reasons_text <> n.reasons_text
        GROUP BY o.outcome, o.reasons_text, n.outcome, n.reasons_text
        ORDER BY requests DESC, old_outcome, old_reasons, new_outcome, new_reasons
    """,
    "change_cases": """
        SELECT o.outcome AS old_outcome, o.reasons_text AS old_reasons,
               n.outcome AS new_outcome, n.reasons_text AS new_reasons,
               o.line AS line, o.request_id AS request_id
        FROM old o JOIN new n ON o.line = n.line
        WHERE o.outcome <> n.outcome OR o.reasons_text <> n.reasons_text
        ORDER BY line
    """,
    "criteria": """
        SELECT criterion, old_status, new_status, count(*) AS requests
        FROM (
            SELECT COALESCE(oc.id, nc.id) AS criterion,
                   COALESCE(oc.status, 'absent') AS old_status,
                   COALESCE(nc.status, 'absent') AS new_status
            FROM old_criteria oc
            FULL OUTER JOIN new_criteria nc ON oc.line = nc.line AND oc.id = nc.id
        ) flips
        WHERE old_status <> new_status
        GROUP BY criterion, old_status, new_status
        ORDER BY requests DESC, criterion, old_status, new_status
    """,
    "criterion_cases": """
        SELECT flips.criterion, flips.old_status, flips.new_status, flips.line, n.request_id
        FROM (
            SELECT COALESCE(oc.id, nc.id) AS criterion,
                   COALESCE(oc.status, 'absent') AS old_status,
                   COALESCE(nc.status, 'absent') AS new_status,
                   COALESCE(oc.line, nc.line) AS line
            FROM old_criteria oc
            FULL OUTER JOIN new_criteria nc ON oc.line = nc.line AND oc.id = nc.id
        ) flips JOIN new n ON flips.line = n.line
        WHERE flips.old_status <> flips.new_status
        ORDER BY flips.line, flips.criterion
    """,
}


class Analytics(Protocol):
    """Something that runs QUERIES over the four tables and gives rows as tuples."""

    def query(self, name: str) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...


class DuckDBAnalytics:
    """The queries on DuckDB (embedded), over the Parquet files in a folder."""

    def __init__(self, folder: Path) -> None:
        import duckdb

        self._connection = duckdb.connect()
        for table in ("old", "new", "old_criteria", "new_criteria"):
            path = str(folder / f"{table}.parquet").replace("'", "''")
            self._connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")

    def query(self, name: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._connection.execute(QUERIES[name]).fetchall()]

    def close(self) -> None:
        self._connection.close()


class SparkAnalytics:
    """The queries on Spark SQL, over the same Parquet files (temporary views)."""

    def __init__(self, spark: Any, folder: Path) -> None:
        self._spark = spark
        for table in ("old", "new", "old_criteria", "new_criteria"):
            spark.read.parquet(str(folder / f"{table}.parquet")).createOrReplaceTempView(table)

    def query(self, name: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._spark.sql(QUERIES[name]).collect()]

    def close(self) -> None:
        for table in ("old", "new", "old_criteria", "new_criteria"):
            self._spark.catalog.dropTempView(table)


@dataclass
class Change:
    """One kind of change (old outcome and reasons -> new), how many, and the cases."""

    old_outcome: str
    old_reasons: str
    new_outcome: str
    new_reasons: str
    requests: int
    cases: list[tuple[int, str]] = field(default_factory=list)

    @property
    def label(self) -> str:
        def side(outcome: str, reasons: str) -> str:
            return f"{outcome} ({reasons})" if reasons else outcome

        return (
            f"{side(self.old_outcome, self.old_reasons)} → "
            f"{side(self.new_outcome, self.new_reasons)}"
        )


@dataclass
class CriterionChange:
    criterion: str
    old_status: str
    new_status: str
    requests: int
    cases: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class ImpactReport:
    """What a new policy version changes in the history."""

    policy_id: str
    new_version: str
    new_hash: str
    engine: str
    history: str
    compared: int
    versions: list[tuple[str, str | None, str | None, str | None, int]]
    outcomes: list[tuple[str, str, int]]
    changes: list[Change]
    criteria: list[CriterionChange]
    errors: list[tuple[int, str]]
    error_count: int

    @property
    def changed(self) -> int:
        return sum(c.requests for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": {"id": self.policy_id, "version": self.new_version, "hash": self.new_hash},
            "engine": self.engine,
            "history": self.history,
            "compared": self.compared,
            "changed": self.changed,
            "versions": [
                dict(zip(("side", "policy_id", "version", "hash", "requests"), v, strict=True))
                for v in self.versions
            ],
            "outcomes": [{"old": o, "new": n, "requests": c} for o, n, c in self.outcomes],
            "changes": [
                {
                    "old_outcome": c.old_outcome,
                    "old_reasons": c.old_reasons.split(",") if c.old_reasons else [],
                    "new_outcome": c.new_outcome,
                    "new_reasons": c.new_reasons.split(",") if c.new_reasons else [],
                    "requests": c.requests,
                    "cases": [{"line": line, "request_id": r} for line, r in c.cases],
                }
                for c in self.changes
            ],
            "criteria": [
                {
                    "criterion": c.criterion,
                    "old_status": c.old_status,
                    "new_status": c.new_status,
                    "requests": c.requests,
                    "cases": [{"line": line, "request_id": r} for line, r in c.cases],
                }
                for c in self.criteria
            ],
            "errors": [{"line": line, "error": e} for line, e in self.errors],
            "error_count": self.error_count,
        }


def _affected(policy_id: str | None, new_id: str) -> bool:
    return policy_id is None or policy_id == new_id


def history_from_parquet(path: Path, new_id: str) -> pa.Table:
    """The rows of a batch's Parquet under the new policy's id (or under none)."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several kinds for a file that is not Parquet
        raise InputError(f"{path}: not a Parquet file ({exc})") from exc
    missing = [n for n in SCHEMA.names if n not in table.schema.names]
    if missing:
        raise InputError(
            f"{path}: not the output of `priorauth batch decide` (no {', '.join(missing)})"
        )
    table = table.select(SCHEMA.names).cast(SCHEMA)
    keep = pc.or_kleene(pc.is_null(table["policy_id"]), pc.equal(table["policy_id"], new_id))
    return table.filter(pc.fill_null(keep, True))


def history_from_store(database_url: str, new_id: str) -> pa.Table:
    """Each case's first determination in the store (the engine's first sight), as batch rows
    numbered by case, under the new policy's id (or under none)."""
    from sqlalchemy import select

    from priorauth.adapters.store import DeterminationRow
    from priorauth.adapters.store.database import DatabaseNotReady
    from priorauth.adapters.store.readiness import open_ready

    try:
        database = open_ready(database_url)
    except DatabaseNotReady as exc:
        raise InputError(str(exc)) from exc
    rows: list[dict[str, Any]] = []
    seen: set[int] = set()
    try:
        with database.session() as session:
            for case_pk, request_json, determination_json in session.execute(
                select(
                    DeterminationRow.case_pk,
                    DeterminationRow.request_json,
                    DeterminationRow.determination_json,
                ).order_by(DeterminationRow.id)
            ):
                if case_pk in seen:
                    continue
                seen.add(case_pk)
                determination = Determination.model_validate(orjson.loads(determination_json))
                policy = determination.policy
                if not _affected(policy.id if policy else None, new_id):
                    continue
                data = orjson.loads(request_json)
                text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
                rows.append(determination_row(case_pk, parse_request(data), determination, text))
    finally:
        database.dispose()
    return pa.Table.from_batches([rows_to_batch(rows)], schema=SCHEMA)


def _criteria_table(table: pa.Table) -> pa.Table:
    """One row per criterion of each request: (line, id, status)."""
    criteria = table["criteria"].combine_chunks()
    parents = pc.list_parent_indices(criteria)
    flat = pc.list_flatten(criteria)
    return pa.table(
        {
            "line": pc.take(table["line"], parents),
            "id": pc.struct_field(flat, "id"),
            "status": pc.struct_field(flat, "status"),
        },
        schema=CRITERIA_SCHEMA,
    )


def _items(table: pa.Table) -> Iterator[Item]:
    data = table.select(["line", "request_json", "as_of"]).to_pydict()
    for line, text, as_of in zip(data["line"], data["request_json"], data["as_of"], strict=True):
        yield Item(line, text, as_of.isoformat() if isinstance(as_of, dt.date) else None)


def _group_cases(
    rows: Sequence[tuple[Any, ...]], key_size: int, limit: int
) -> Mapping[tuple[Any, ...], list[tuple[int, str]]]:
    grouped: dict[tuple[Any, ...], list[tuple[int, str]]] = {}
    for row in rows:
        cases = grouped.setdefault(tuple(row[:key_size]), [])
        if len(cases) < limit:
            cases.append((int(row[key_size]), str(row[key_size + 1])))
    return grouped


def run_impact(
    history: pa.Table,
    history_name: str,
    new_policy: Path,
    base: PolicySource,
    work: Path,
    workers: int = 1,
    spark: Any | None = None,
    cases_per_change: int = 50,
) -> ImpactReport:
    """Decide the history again with `new_policy` in place of its namesake, and compare.

    `work` is a folder for the Parquet files the queries read (old, new and their criteria);
    with `spark` the requests are decided and the queries run on Spark, else in a process
    pool of `workers` and on DuckDB."""
    policy = load_policy(new_policy)
    source = PolicySource(base.directory, (*base.replacements, str(new_policy)), base.exemptions)
    source.load()
    work.mkdir(parents=True, exist_ok=True)
    pq.write_table(history, work / "old.parquet")
    pq.write_table(_criteria_table(history), work / "old_criteria.parquet")
    new_path = work / "new.parquet"
    result: BatchResult
    if spark is not None:
        from priorauth.batch.spark import decide_on_spark

        rows = [(i.line, i.text, i.as_of) for i in _items(history)]
        frame = spark.createDataFrame(rows, "line long, text string, as_of string")
        spark_out = work / "new-spark.parquet"
        result = decide_on_spark(spark, frame, spark_out, work / "new.errors.jsonl", source)
        new_table = pq.read_table(spark_out).select(SCHEMA.names).cast(SCHEMA).sort_by("line")
        shutil.rmtree(spark_out)
        pq.write_table(new_table, new_path)
    else:
        result = decide_batch(
            _items(history), new_path, work / "new.errors.jsonl", source, workers=workers
        )
        new_table = pq.read_table(new_path)
    pq.write_table(_criteria_table(new_table), work / "new_criteria.parquet")
    analytics: Analytics = (
        SparkAnalytics(spark, work) if spark is not None else DuckDBAnalytics(work)
    )
    try:
        versions = analytics.query("versions")
        outcomes = analytics.query("outcomes")
        change_cases = _group_cases(analytics.query("change_cases"), 4, cases_per_change)
        changes = [
            Change(
                str(row[0]),
                str(row[1]),
                str(row[2]),
                str(row[3]),
                int(row[4]),
                change_cases.get(tuple(row[:4]), []),
            )
            for row in analytics.query("changes")
        ]
        criterion_cases = _group_cases(analytics.query("criterion_cases"), 3, cases_per_change)
        criteria = [
            CriterionChange(
                str(row[0]),
                str(row[1]),
                str(row[2]),
                int(row[3]),
                criterion_cases.get(tuple(row[:3]), []),
            )
            for row in analytics.query("criteria")
        ]
    finally:
        analytics.close()
    return ImpactReport(
        policy_id=policy.id,
        new_version=policy.version,
        new_hash=policy_hash(policy),
        engine="spark" if spark is not None else "duckdb",
        history=history_name,
        compared=sum(int(row[2]) for row in outcomes),
        versions=[(str(v[0]), v[1], v[2], v[3], int(v[4])) for v in versions],
        outcomes=[(str(o), str(n), int(c)) for o, n, c in outcomes],
        changes=changes,
        criteria=criteria,
        errors=result.first_errors,
        error_count=result.failed,
    )
