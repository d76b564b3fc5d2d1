"""Benchmark: batch determinations end to end (read, decide, write) on one machine, in one run.

Generated requests (each new: `priorauth batch generate` from the examples, across all four
policies and some with no policy, 1% of lines not requests at all), decided to Parquet by

  in process   `decide_batch(workers=1)`: one core
  pool         `decide_batch(workers=2)`: a process pool on 2 cores (its start, with each
               worker loading the policies, included: that is what a user waits for)
  spark        `decide_on_spark` on `local[2]` (mapInArrow): reading the JSON Lines, deciding
               and writing Parquet; the SparkSession (JVM) start is timed apart

taking turns round by round, so that a machine that speeds up or slows down weighs on each
alike. Printed: the median rate per contender, per core, beside the issue's targets (8,000
first-sight determinations a second per core; the pool at least 1.7x one core; Spark local[2]
at least half the pool), and the parity check: the three paths' rows (every column, the whole
determination included) and errors compared line by line.

    .venv/bin/python benchmarks/batch.py                  # 10,000 requests, 3 rounds
    .venv/bin/python benchmarks/batch.py --requests 2000 --rounds 1 --no-spark
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from priorauth.batch.generate import example_requests, generate_lines
from priorauth.batch.policies import PolicySource
from priorauth.batch.runner import BatchResult, decide_batch
from priorauth.batch.sources import read_items

ROOT = Path(__file__).resolve().parents[1]
TARGET_PER_CORE = 8000.0
TARGET_POOL_RATIO = 1.7
TARGET_SPARK_SHARE = 0.5


def _rows(output: Path) -> dict[int, dict[str, Any]]:
    return {row["line"]: row for row in pq.read_table(output).to_pylist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-spark", action="store_true")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="priorauth-bench-batch-"))
    requests = folder / "requests.jsonl"
    lines = generate_lines(example_requests(ROOT / "examples"), args.requests, seed=2026, bad=0.01)
    requests.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    source = PolicySource()
    source.load()
    print(
        f"{args.requests:,} generated requests ({requests}), {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )

    spark = None
    spark_start = 0.0
    if not args.no_spark:
        from priorauth.batch.spark import java_available, spark_session

        if java_available():
            started = time.perf_counter()
            spark = spark_session("local[2]", "priorauth-bench")
            spark_start = time.perf_counter() - started
        else:
            print("spark: no Java here, left out", flush=True)

    cpu_seconds: list[float] = []

    def in_process(out: Path) -> BatchResult:
        before = time.process_time()
        result = decide_batch(read_items(requests), out, out.with_suffix(".err"), source)
        cpu_seconds.append(time.process_time() - before)
        return result

    def pool(out: Path) -> BatchResult:
        return decide_batch(
            read_items(requests), out, out.with_suffix(".err"), source, workers=args.workers
        )

    def on_spark(out: Path) -> BatchResult:
        from priorauth.batch.spark import decide_on_spark, requests_frame

        frame = requests_frame(spark, requests)
        return decide_on_spark(spark, frame, out, out.with_suffix(".err"), source)

    contenders: dict[str, tuple[Callable[[Path], BatchResult], int]] = {
        "in process": (in_process, 1),
        f"pool ({args.workers} workers)": (pool, args.workers),
    }
    if spark is not None:
        contenders["spark local[2]"] = (on_spark, 2)
    if spark is not None:
        # One run first so the JVM and the Python workers are warm, as in a long job.
        on_spark(folder / "warm.parquet")

    one_request = folder / "one.jsonl"
    one_request.write_text(requests.read_text(encoding="utf-8").splitlines()[0] + "\n")

    def pool_start() -> float:
        """A pool's start: the workers forked, their policies loaded, and one request."""
        started = time.perf_counter()
        decide_batch(
            read_items(one_request),
            folder / "empty.parquet",
            folder / "empty.err",
            source,
            workers=args.workers,
        )
        return time.perf_counter() - started

    starts: list[float] = []
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    decided: dict[str, int] = {}
    for round_number in range(args.rounds):
        order = list(contenders)
        if round_number % 2:
            order.reverse()
        for name in order:
            run, _ = contenders[name]
            out = folder / f"{name.split()[0]}-{round_number}.parquet"
            started = time.perf_counter()
            result = run(out)
            seconds[name].append(time.perf_counter() - started)
            decided[name] = result.decided + result.failed
            print(
                f"  round {round_number + 1}: {name:<18} {seconds[name][-1]:6.2f} s "
                f"(load average {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        starts.append(pool_start())
        print(f"  round {round_number + 1}: pool start, 1 req  {starts[-1]:6.2f} s", flush=True)

    print()
    print(f"{'contender':<18} {'median s':>9} {'per second':>11} {'per core':>9}  target")
    rates: dict[str, float] = {}
    for name, (_, cores) in contenders.items():
        median = statistics.median(seconds[name])
        rates[name] = decided[name] / median
        per_core = rates[name] / cores
        verdict = "met" if per_core >= TARGET_PER_CORE else "NOT met"
        print(
            f"{name:<18} {median:9.2f} {rates[name]:11,.0f} {per_core:9,.0f}  "
            f"{TARGET_PER_CORE:,.0f}/s per core: {verdict}"
        )
    one = rates["in process"]
    pool_name = f"pool ({args.workers} workers)"
    ratio = rates[pool_name] / one
    print(
        f"pool / one core: {ratio:.2f}x (target >= {TARGET_POOL_RATIO}x: "
        f"{'met' if ratio >= TARGET_POOL_RATIO else 'NOT met'})"
    )
    if spark is not None:
        share = rates["spark local[2]"] / rates[pool_name]
        print(
            f"spark local[2] / pool: {share:.2f} (target >= {TARGET_SPARK_SHARE}: "
            f"{'met' if share >= TARGET_SPARK_SHARE else 'NOT met'}); "
            f"SparkSession start {spark_start:.1f} s, not counted"
        )
    start = statistics.median(starts)
    steady = decided[pool_name] / max(statistics.median(seconds[pool_name]) - start, 1e-9)
    print(
        f"pool start (workers forked, policies loaded, one request): {start:.2f} s; after it, "
        "the pool "
        f"decides {steady:,.0f}/s ({steady / one:.2f}x one core)"
    )
    cpu = statistics.median(cpu_seconds)
    count = decided["in process"]
    print(
        f"in process, by CPU time (this process's, whatever else the machine runs): "
        f"{count / cpu:,.0f}/s per core, {1e6 * cpu / count:,.0f} µs a request"
    )
    print(
        f"per request in process: {1e6 / one:,.0f} µs end to end "
        f"(8,000/s per core would need {1e6 / TARGET_PER_CORE:,.0f} µs)"
    )

    # Parity: every path's rows and errors, line by line.
    reference = _rows(folder / "in-0.parquet")
    reference_errors = (folder / "in-0.err").read_bytes()
    same = True
    for name in contenders:
        prefix = name.split()[0]
        rows = _rows(folder / f"{prefix}-0.parquet")
        errors = (folder / f"{prefix}-0.err").read_bytes()
        if rows != reference or errors != reference_errors:
            same = False
            print(f"parity: {name} DIFFERS from in process")
    policies = sorted({str(r["policy_id"]) for r in reference.values()})
    bad_lines = len(reference_errors.splitlines())
    print(
        f"parity on {args.requests:,} requests ({len(reference):,} decided, "
        f"{bad_lines:,} bad lines; policies {', '.join(policies)}): "
        f"{'identical' if same else 'DIFFERENT'} across {', '.join(contenders)}"
    )
    if spark is not None:
        spark.stop()
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
