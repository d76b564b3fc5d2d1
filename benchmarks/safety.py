"""What the safety screens cost: the median time of one determination with and without them.

Both policies are compiled in this process from the same files, one with the safety data and
one without; the batches alternate so that drift on a noisy machine hits both alike. Each
figure is the median over many batches of the mean time per determination in the batch.

    .venv/bin/python benchmarks/safety.py [--batches 400] [--batch-size 50]

Target (issue 3): the screens add at most 10 microseconds at the median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from priorauth.catalog import load_policy, load_safety
from priorauth.engine.compiled import CompiledPolicy
from priorauth.engine.request import Request, parse_request

ROOT = Path(__file__).resolve().parents[1]
TARGET_US = 10.0


def _requests() -> list[tuple[str, Request, dict[str, Any]]]:
    """The example requests governed by the policy, as parsed requests and submitted dicts."""
    found = []
    for path in sorted((ROOT / "examples").glob("*.json")):
        submitted = json.loads(path.read_text())
        if submitted["drug"].get("hcpcs") != "J9207":
            continue
        found.append((path.stem, parse_request(submitted), submitted))
    return found


def _median_us(
    compiled: CompiledPolicy, request: Request, submitted: dict[str, Any], size: int
) -> float:
    as_of = request.received_at.date() if request.received_at else None
    assert as_of is not None
    evaluate = compiled.evaluate
    start = time.perf_counter_ns()
    for _ in range(size):
        evaluate(request, as_of, submitted)
    return (time.perf_counter_ns() - start) / size / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    policy = load_policy(ROOT / "policies" / "ixempra.yaml")
    assert policy.safety is not None
    with_screens = CompiledPolicy(policy, load_safety(ROOT / "policies" / policy.safety))
    without = CompiledPolicy(policy)
    rows = []
    for name, request, submitted in _requests():
        for compiled in (with_screens, without):  # warm up caches
            _median_us(compiled, request, submitted, 200)
        timings: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(args.batches):
            timings["with"].append(_median_us(with_screens, request, submitted, args.batch_size))
            timings["without"].append(_median_us(without, request, submitted, args.batch_size))
        on = statistics.median(timings["with"])
        off = statistics.median(timings["without"])
        rows.append((name, off, on, on - off))
    width = max(len(r[0]) for r in rows)
    print(f"{'request':<{width}}  {'without':>9}  {'with':>9}  {'screens':>9}   (median µs)")
    for name, off, on, added in rows:
        print(f"{name:<{width}}  {off:9.1f}  {on:9.1f}  {added:+9.1f}")
    worst = max(r[3] for r in rows)
    overall = statistics.median(r[3] for r in rows)
    verdict = "within" if worst <= TARGET_US else "ABOVE"
    print(
        f"screens add {overall:.1f} µs at the median over the requests, {worst:.1f} µs at most: "
        f"{verdict} the {TARGET_US:g} µs target"
    )


if __name__ == "__main__":
    main()
