"""The batch on Apache Spark: the same `decide_items` run inside `mapInArrow`.

The driver reads nothing but names: each executor's Python worker loads the policy set once
(from the same PolicySource) and decides the requests of its partitions, so a plan's cluster
can decide millions of requests. Locally, `local[2]` runs it on two cores of this machine.
Spark needs Java (Debian's openjdk-17-jre-headless) and PySpark.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from priorauth.batch.policies import PolicySource
from priorauth.batch.rows import SCHEMA, rows_to_batch
from priorauth.batch.runner import BatchResult, decide_items, partial_name
from priorauth.batch.sources import InputError, Item, input_format

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["decide_on_spark", "java_available", "spark_session"]

# The rows Spark carries: SCHEMA plus the error of a request that could not be decided.
SPARK_SCHEMA = SCHEMA.append(pa.field("error", pa.string()))


def java_available() -> bool:
    """Whether a Java runtime is on the PATH (or JAVA_HOME), as Spark needs one."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return True
    return shutil.which("java") is not None


def spark_session(master: str = "local[2]", app: str = "priorauth") -> SparkSession:
    """A SparkSession: on `master` (a cluster's URL, or local[N]); locally bound to loopback,
    with no web UI, its Python workers running this interpreter."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(app)
    settings = {
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "1000",
        "spark.python.worker.reuse": "true",
        "spark.ui.showConsoleProgress": "false",
    }
    if master.startswith("local"):
        settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_schema() -> Any:
    """SPARK_SCHEMA as a Spark StructType."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(SPARK_SCHEMA)


def _decider(source: PolicySource, as_of: dt.date | None) -> Any:
    def decide(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        policies = source.load()
        # The policies outlive every batch this Python worker decides: out of the collector's
        # sight, as in a pool worker (runner._start_worker).
        gc.freeze()
        for batch in batches:
            data = batch.to_pydict()
            whens = data.get("as_of") or [None] * batch.num_rows
            items = [
                Item(line, text, when)
                for line, text, when in zip(data["line"], data["text"], whens, strict=True)
            ]
            rows, errors = decide_items(policies, items, as_of)
            rows.extend({"line": line, "error": message} for line, message in errors)
            yield rows_to_batch(rows, SPARK_SCHEMA)

    return decide


def requests_frame(
    spark: SparkSession, path: Path, fmt: str | None = None, partitions: int | None = None
) -> DataFrame:
    """The requests of a JSON Lines or Parquet file as a DataFrame (line, text, as_of): line
    numbers from 1, counted as in the local reader (blank lines skipped but counted)."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    context = spark.sparkContext
    if input_format(path, fmt) == "parquet":
        from priorauth.batch.sources import read_items

        rows = [(i.line, i.text, None) for i in read_items(path, fmt)]
        return spark.createDataFrame(rows, "line long, text string, as_of string").repartition(
            partitions or context.defaultParallelism
        )
    lines = context.textFile(str(path), minPartitions=partitions or context.defaultParallelism)
    numbered = (
        lines.zipWithIndex()
        .filter(lambda pair: pair[0].strip() != "")
        .map(lambda pair: (pair[1] + 1, pair[0].strip(), None))
    )
    return spark.createDataFrame(numbered, "line long, text string, as_of string")


def decide_on_spark(
    spark: SparkSession,
    frame: DataFrame,
    output: Path,
    errors_path: Path,
    source: PolicySource,
    as_of: dt.date | None = None,
) -> BatchResult:
    """Decide a DataFrame of requests (line, text, as_of) with mapInArrow. The determinations
    go to `output` as a Parquet folder (Spark's part files), the errors to `errors_path`
    (JSON Lines, by line); both are written under `.partial` names and renamed at the end."""
    source.load()
    started = time.perf_counter()
    decided = frame.mapInArrow(_decider(source, as_of), spark_schema()).cache()
    try:
        staging = partial_name(output)
        shutil.rmtree(staging, ignore_errors=True)
        (
            decided.where("error IS NULL")
            .drop("error")
            .write.option("compression", "zstd")
            .parquet(str(staging))
        )
        errors = sorted(
            (row["line"], row["error"])
            for row in decided.where("error IS NOT NULL").select("line", "error").collect()
        )
        counts = {
            row["outcome"]: row["count"]
            for row in decided.where("error IS NULL").groupBy("outcome").count().collect()
        }
    finally:
        decided.unpersist()
    errors_partial = partial_name(errors_path)
    errors_partial.parent.mkdir(parents=True, exist_ok=True)
    with errors_partial.open("wb") as handle:
        for line, message in errors:
            handle.write(orjson.dumps({"line": line, "error": message}) + b"\n")
    if output.is_dir():
        shutil.rmtree(output)
    elif output.exists():
        output.unlink()
    staging.replace(output)
    errors_partial.replace(errors_path)
    result = BatchResult(output, errors_path)
    result.outcomes = Counter(counts)
    result.decided = sum(counts.values())
    result.failed = len(errors)
    result.first_errors = errors[:20]
    result.seconds = time.perf_counter() - started
    return result
