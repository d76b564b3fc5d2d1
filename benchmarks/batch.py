"""Benchmark: batch determinations end to end (read, decide, write) on one machine, in one run.

Generated requests (each new: `priorauth batch generate` from the examples, across all four
policies and some with no policy, 1% of lines not requests at all), in a JSON Lines file,
decided to Parquet by

  in process   `decide_batch(workers=1)`: one core, no pool
  pool (1)     `decide_batch(workers=1)` through a pool of one worker: the pool's own cost
  pool (2)     `decide_batch(workers=2)`: a pool on 2 cores; each worker reads, decides and
               builds the record batches of its own parts of the file
  spark        `decide_on_spark` on `local[2]` (mapInArrow): reading the JSON Lines, deciding
               and writing Parquet; the SparkSession (JVM) start is timed apart

taking turns round by round (the order reversed every other round), so that a machine that
speeds up or slows down weighs on each alike. A pool's start (forking its workers) is inside
its time: that is what a user waits for; it is also timed apart on a one-request file.

Printed: `nproc` and the load average before, during and after (the machine is shared), each
contender's median rate and per core, the ratios (pool (2) / in process, pool (2) / pool (1),
Spark / pool (2)) beside the issue's targets (8,000 first-sight determinations a second per
core; the pool on 2 cores at least 1.7x one core; Spark local[2] at least half the pool), the
CPU each path spends a request (the pool's parent and workers apart), where the time of one
request goes, stage by stage (CPU µs, in this process), and the parity check: every path's
rows (every column, the whole determination included) and errors compared line by line.

The machine is shared, and Linux shares the cores between sessions before it shares them
between processes (scheduler autogroups): while another session keeps a core busy, a pool of
two gets about one core, whatever its design. So each contender's line also says how many cores
other work kept busy while it ran (from /proc/stat, less this process and its children), and
`--wait-quiet SECONDS` waits before each contender, up to that long, for the others to leave.

    .venv/bin/python benchmarks/batch.py                  # 10,000 requests, 3 rounds
    .venv/bin/python benchmarks/batch.py --wait-quiet 90  # on a shared machine
    .venv/bin/python benchmarks/batch.py --requests 2000 --rounds 1 --no-spark
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

from priorauth.batch.generate import example_requests, generate_lines
from priorauth.batch.policies import PolicySource
from priorauth.batch.rows import SCHEMA, determination_row, rows_to_batch
from priorauth.batch.runner import DICTIONARY_COLUMNS, BatchResult, decide_batch
from priorauth.batch.sources import RequestFile, read_part
from priorauth.catalog import PolicySet
from priorauth.engine.request import parse_request
from priorauth.errors import InvalidRequest

ROOT = Path(__file__).resolve().parents[1]
TARGET_PER_CORE = 8000.0
TARGET_POOL_RATIO = 1.7
TARGET_SPARK_SHARE = 0.5


def _rows(output: Path) -> dict[int, dict[str, Any]]:
    return {row["line"]: row for row in pq.read_table(output).to_pylist()}


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy since boot (all processes, /proc/stat), or
    0.0 where there is no /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(f) for f in fields]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _session_cpu() -> dict[int, float]:
    """CPU seconds of each process of this session's scheduler group (this process, the pool's
    workers, Spark's JVM and its Python workers), children it has reaped included; by process
    id. Without /proc autogroups: this process and its reaped children."""
    try:
        mine = Path("/proc/self/autogroup").read_text().split()[0]
    except OSError:
        return {os.getpid(): sum(_cpu())}
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "autogroup").read_text().split()[0] != mine:
                continue
            stat = (entry / "stat").read_text()
        except (OSError, IndexError):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # utime, stime, cutime, cstime: fields 14 to 17 of stat, 12 to 15 after the name
        found[int(entry.name)] = sum(int(f) for f in fields[11:15]) / tick
    return found


def _session_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def _others(seconds: float) -> float:
    """How many cores other work (not this session's processes) kept busy over the next
    `seconds`."""
    busy, mine, started = _machine_busy(), _session_cpu(), time.perf_counter()
    time.sleep(seconds)
    wall = time.perf_counter() - started
    return max(0.0, _machine_busy() - busy - _session_delta(mine, _session_cpu())) / wall


def _wait_quiet(limit: float, cores: float = 0.25) -> str:
    """Wait (at most `limit` seconds) until other work has kept less than `cores` busy for two
    seconds running; say how it went."""
    started = time.perf_counter()
    calm = 0
    while time.perf_counter() - started < limit:
        calm = calm + 1 if _others(1.0) < cores else 0
        if calm >= 2:
            return f"quiet after {time.perf_counter() - started:.0f} s"
    return f"not quiet after {limit:.0f} s, run anyway"


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process and of its ended children (user + system)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def stage_costs(requests: RequestFile, policies: PolicySet, count: int) -> dict[str, float]:
    """CPU µs a request in each stage of `decide_part` and the Parquet writer, measured on the
    first `count` requests in parts of 1,000, with the collector frozen as decide_batch has
    it. The steps are those of runner.decide_items, each timed apart."""
    clock = time.thread_time
    spent: dict[str, float] = dict.fromkeys(
        (
            "read the part",
            "parse the JSON",
            "validate",
            "decide",
            "the row",
            "  of it, the determination's JSON",
            "Arrow batch",
            "Parquet (zstd)",
        ),
        0.0,
    )
    done = 0
    sink = pq.ParquetWriter(
        io.BytesIO(), SCHEMA, compression="zstd", use_dictionary=DICTIONARY_COLUMNS
    )
    gc.freeze()
    try:
        for part in requests.parts(1000):
            if done >= count:
                break
            started = clock()
            items = read_part(part)
            spent["read the part"] += clock() - started
            rows = []
            for item in items:
                started = clock()
                try:
                    data = orjson.loads(item.text)
                except orjson.JSONDecodeError:
                    continue
                parsed = clock()
                try:
                    request = parse_request(data)
                except InvalidRequest:
                    continue
                validated = clock()
                when = request.received_at.date() if request.received_at else dt.date.today()
                determination = policies.decide(request, when, data)
                decided = clock()
                text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
                rows.append(determination_row(item.line, request, determination, text))
                rowed = clock()
                determination.model_dump_json_bytes()  # again, to time it apart
                spent["  of it, the determination's JSON"] += clock() - rowed
                spent["parse the JSON"] += parsed - started
                spent["validate"] += validated - parsed
                spent["decide"] += decided - validated
                spent["the row"] += rowed - decided
            started = clock()
            batch = rows_to_batch(rows)
            arrowed = clock()
            sink.write_batch(batch)
            spent["Arrow batch"] += arrowed - started
            spent["Parquet (zstd)"] += clock() - arrowed
            done += len(items)
        sink.close()
    finally:
        gc.unfreeze()
    return {stage: 1e6 * seconds / done for stage, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stages", type=int, default=4000, help="requests timed stage by stage")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each contender, wait up to this long for other work to leave the cores",
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="priorauth-bench-batch-"))
    path = folder / "requests.jsonl"
    lines = generate_lines(example_requests(ROOT / "examples"), args.requests, seed=2026, bad=0.01)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    requests = RequestFile.open(path)
    source = PolicySource()
    policies = source.load()
    loads: list[float] = [os.getloadavg()[0]]
    print(
        f"{args.requests:,} generated requests ({path}); nproc {os.cpu_count()}; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)",
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

    cpu: dict[str, list[tuple[float, float]]] = {}

    def local(workers: int, pool: bool) -> Callable[[Path], BatchResult]:
        def run(out: Path) -> BatchResult:
            return decide_batch(
                requests, out, out.with_suffix(".err"), source, workers=workers, pool=pool
            )

        return run

    def on_spark(out: Path) -> BatchResult:
        from priorauth.batch.spark import decide_on_spark, requests_frame

        assert spark is not None
        frame = requests_frame(spark, path)
        return decide_on_spark(spark, frame, out, out.with_suffix(".err"), source)

    contenders: dict[str, tuple[Callable[[Path], BatchResult], int]] = {
        "in process": (local(1, pool=False), 1),
        "pool (1)": (local(1, pool=True), 1),
        "pool (2)": (local(2, pool=True), 2),
    }
    # One run of each path first, untimed, so that every contender starts warm, as in a long
    # job: the drug vocabulary's cache and whatever the engine builds on first use (the pool's
    # workers, forked from this process, start with what it holds), the JVM and Spark's
    # Python workers.
    contenders["in process"][0](folder / "warm.parquet")
    if spark is not None:
        contenders["spark local[2]"] = (on_spark, 2)
        on_spark(folder / "warm-spark.parquet")

    one_request = folder / "one.jsonl"
    one_request.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n")

    def pool_start() -> float:
        """A pool's start: two workers forked and one request decided."""
        started = time.perf_counter()
        decide_batch(
            RequestFile.open(one_request),
            folder / "empty.parquet",
            folder / "empty.err",
            source,
            workers=2,
        )
        return time.perf_counter() - started

    starts: list[float] = []
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    others: dict[str, list[float]] = {name: [] for name in contenders}
    decided: dict[str, int] = {}
    for round_number in range(args.rounds):
        order = list(contenders)
        if round_number % 2:
            order.reverse()
        for name in order:
            run, _ = contenders[name]
            out = folder / f"{_file_name(name)}-{round_number}.parquet"
            waited = _wait_quiet(args.wait_quiet) if args.wait_quiet else ""
            before = _cpu()
            busy, session = _machine_busy(), _session_cpu()
            started = time.perf_counter()
            result = run(out)
            seconds[name].append(time.perf_counter() - started)
            after = _cpu()
            mine = _session_delta(session, _session_cpu())
            others[name].append(max(0.0, _machine_busy() - busy - mine) / seconds[name][-1])
            cpu.setdefault(name, []).append((after[0] - before[0], after[1] - before[1]))
            decided[name] = result.decided + result.failed
            loads.append(os.getloadavg()[0])
            print(
                f"  round {round_number + 1}: {name:<15} {seconds[name][-1]:6.2f} s "
                f"(load average {loads[-1]:.2f}; other work kept {others[name][-1]:.2f} "
                f"cores busy{'; ' + waited if waited else ''})",
                flush=True,
            )
        starts.append(pool_start())
        print(f"  round {round_number + 1}: pool (2) start, 1 request {starts[-1]:6.2f} s")

    print()
    print(
        f"nproc {os.cpu_count()}; load average during the run {min(loads):.2f} to "
        f"{max(loads):.2f} (1-minute figure, read after each contender)"
    )
    print(
        f"scheduler autogroups {_autogroups()}: while other sessions keep cores busy, the "
        "kernel shares the cores between sessions first, and a pool's second worker gets no "
        "second core; the 'others' column is that work, in cores, during each contender"
    )
    print(
        f"{'contender':<15} {'median s':>9} {'per second':>11} {'per core':>9} {'others':>7}"
        "  target"
    )
    rates: dict[str, float] = {}
    best: dict[str, float] = {}
    for name, (_, cores) in contenders.items():
        median = statistics.median(seconds[name])
        rates[name] = decided[name] / median
        per_core = rates[name] / cores
        verdict = "met" if per_core >= TARGET_PER_CORE else "NOT met"
        print(
            f"{name:<15} {median:9.2f} {rates[name]:11,.0f} {per_core:9,.0f} "
            f"{statistics.median(others[name]):7.2f}  "
            f"{TARGET_PER_CORE:,.0f}/s per core: {verdict}"
        )
        best[name] = decided[name] / min(seconds[name])
    print(
        "best round of each (the least disturbed: on a shared machine, others only ever slow "
        "a contender down):"
    )
    for name, (_, cores) in contenders.items():
        fastest = seconds[name].index(min(seconds[name]))
        print(
            f"{name:<15} {min(seconds[name]):9.2f} {best[name]:11,.0f} "
            f"{best[name] / cores:9,.0f} {others[name][fastest]:7.2f}"
        )
    for label, figures in (("medians", rates), ("best rounds", best)):
        ratio = figures["pool (2)"] / figures["in process"]
        line = (
            f"{label}: pool (2) / in process {ratio:.2f}x (target >= {TARGET_POOL_RATIO}x: "
            f"{'met' if ratio >= TARGET_POOL_RATIO else 'NOT met'}); pool (2) / pool (1) "
            f"{figures['pool (2)'] / figures['pool (1)']:.2f}x"
        )
        if spark is not None:
            share = figures["spark local[2]"] / figures["pool (2)"]
            line += (
                f"; spark local[2] / pool (2) {share:.2f} (target >= {TARGET_SPARK_SHARE}: "
                f"{'met' if share >= TARGET_SPARK_SHARE else 'NOT met'})"
            )
        print(line)
    if spark is not None:
        print(f"SparkSession start {spark_start:.1f} s, not counted")
    one = rates["in process"]
    start = statistics.median(starts)
    print(f"pool (2) start (2 workers forked, one request decided): {start:.2f} s, counted")

    print()
    print("CPU a request (medians; the pool's parent and its workers apart):")
    for name in contenders:
        if name.startswith("spark"):
            continue
        count = decided[name]
        parent = statistics.median(c[0] for c in cpu[name])
        workers = statistics.median(c[1] for c in cpu[name])
        print(
            f"  {name:<15} {1e6 * (parent + workers) / count:6.0f} µs: this process "
            f"{1e6 * parent / count:4.0f}, workers {1e6 * workers / count:4.0f}"
        )
    print(
        f"  in process, end to end by the clock: {1e6 / one:,.0f} µs a request "
        f"(8,000/s per core would need {1e6 / TARGET_PER_CORE:,.0f} µs)"
    )

    costs = stage_costs(requests, policies, args.stages)
    loads.append(os.getloadavg()[0])
    total = sum(v for k, v in costs.items() if not k.startswith(" "))
    print()
    print(
        f"where a request's time goes, CPU µs in this process ({min(args.stages, args.requests):,}"
        f" requests, load average {loads[-1]:.2f}):"
    )
    for stage, micros in costs.items():
        print(f"  {stage:<36} {micros:6.1f}")
    plumbing = total - costs["validate"] - costs["decide"]
    print(
        f"  {'total':<36} {total:6.1f}  (the engine: validate + decide "
        f"{costs['validate'] + costs['decide']:.0f}; the batch's own part {plumbing:.0f})"
    )

    # Parity: every path's rows and errors, line by line.
    reference = _rows(folder / "in-0.parquet")
    reference_errors = (folder / "in-0.err").read_bytes()
    same = True
    for name in contenders:
        prefix = _file_name(name)
        rows = _rows(folder / f"{prefix}-0.parquet")
        errors = (folder / f"{prefix}-0.err").read_bytes()
        if rows != reference or errors != reference_errors:
            same = False
            print(f"parity: {name} DIFFERS from in process")
    policy_ids = sorted({str(r["policy_id"]) for r in reference.values()})
    bad_lines = len(reference_errors.splitlines())
    print()
    print(
        f"parity on {args.requests:,} requests ({len(reference):,} decided, "
        f"{bad_lines:,} bad lines; policies {', '.join(policy_ids)}): "
        f"{'identical' if same else 'DIFFERENT'} across {', '.join(contenders)}"
    )
    if spark is not None:
        spark.stop()
    if not same:
        sys.exit(1)


def _autogroups() -> str:
    """Whether the kernel groups processes by session for fair sharing (Linux autogroup)."""
    try:
        enabled = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return "unknown"
    return "on" if enabled else "off"


def _file_name(contender: str) -> str:
    return {"in process": "in", "pool (1)": "pool1", "pool (2)": "pool2"}.get(contender, "spark")


if __name__ == "__main__":
    main()
