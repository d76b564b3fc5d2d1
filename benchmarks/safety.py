"""What the safety screens cost: the median time of one determination with and without them.

Both policies are compiled in this process from the same files, one with the safety data and
one without; the batches alternate so that drift on a noisy machine hits both alike. Each
figure is the median over many batches of the mean time per determination in the batch.

The first table decides each example request over and over. The second is the honest case:
requests each seen for the first time (varied labs, medications and histories, on freshly
compiled policies), each determination timed on its own, once without any finding and once
with many; it is repeated `--rounds` times on fresh policies and the median round reported,
since one round on a busy machine can be off by half.

    .venv/bin/python benchmarks/safety.py [--batches 400] [--batch-size 50] [--rounds 3]

Target (issue 3): the screens add at most 10 microseconds at the median.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

from priorauth.catalog import load_policy, load_safety
from priorauth.engine.compiled import CompiledPolicy
from priorauth.engine.request import Request, parse_request
from priorauth.policy.model import Policy
from priorauth.policy.safety_model import SafetyData

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


def _varied(
    base: dict[str, Any], count: int, findings: bool
) -> list[tuple[Request, dict[str, Any]]]:
    """`count` different requests built from `base`: labs, medications and history vary; with
    `findings` many fall outside the label's limits, without it none do."""
    rng = random.Random(20261125)
    found = []
    for i in range(count):
        submitted = json.loads(json.dumps(base))
        submitted["request_id"] = f"PA-BENCH-{i}"
        low, liver = (800, 4.0) if findings else (1600, 2.4)
        submitted["labs"] = {
            "anc_per_mm3": rng.randrange(low, 6000),
            "platelets_per_mm3": rng.randrange(low * 70, 400_000),
            "ast_uln_ratio": round(rng.uniform(0.3, liver), 2),
            "alt_uln_ratio": round(rng.uniform(0.3, liver), 2),
            "bilirubin_uln_ratio": round(rng.uniform(0.2, liver / 2.5), 2),
        }
        drugs = ["ondansetron", "metformin", "lisinopril", "dexamethasone"]
        if findings:
            drugs += ["ketoconazole", "rifampin"]
        submitted["medications"] = rng.sample(drugs, k=2)
        for therapy in submitted.get("prior_therapies", []):
            therapy["progression_date"] = f"2026-{rng.randrange(1, 13):02d}-15"
        found.append((parse_request(submitted), submitted))
    return found


def _first_sight(
    policy: Policy, data: SafetyData, base: dict[str, Any], count: int, findings: bool
) -> tuple[float, float]:
    """One round: the median determination without and with the screens, in µs."""
    requests = _varied(base, count, findings)
    as_of = requests[0][0].received_at.date() if requests[0][0].received_at else None
    assert as_of is not None
    timings: dict[str, list[float]] = {"with": [], "without": []}
    # Fresh policies: nothing kept from any earlier run.
    with_screens, without = CompiledPolicy(policy, data), CompiledPolicy(policy)
    pair = [("with", with_screens), ("without", without)]
    for _, submitted in requests:
        # Parsed just before, as in service (a request is decided right after it is read),
        # and in alternating order, so that neither side always finds the caches warm.
        pair.reverse()
        for name, compiled in pair:
            request = parse_request(submitted)
            start = time.perf_counter_ns()
            compiled.evaluate(request, as_of, submitted)
            timings[name].append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(timings["without"]), statistics.median(timings["with"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--varied", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    policy = load_policy(ROOT / "policies" / "ixempra.yaml")
    assert policy.safety is not None
    data = load_safety(ROOT / "policies" / policy.safety)
    with_screens = CompiledPolicy(policy, data)
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
        print(f"{name:<{width}}  {off:9.1f}  {on:9.1f}  {added:+9.1f}  {added / off:+6.1%}")
    worst = max(r[3] for r in rows)
    overall = statistics.median(r[3] for r in rows)
    verdict = "within" if overall <= TARGET_US else "ABOVE"
    print(
        f"screens add {overall:.1f} µs at the median over the requests ({verdict} the "
        f"{TARGET_US:g} µs target), {worst:.1f} µs for the costliest request; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPU(s)"
    )
    base = json.loads((ROOT / "examples" / "10-pended-safety-review.json").read_text())
    base["patient"]["pregnant"] = False
    for findings in (False, True):
        rounds = sorted(
            (_first_sight(policy, data, base, args.varied, findings) for _ in range(args.rounds)),
            key=lambda r: r[1] - r[0],
        )
        off, on = rounds[len(rounds) // 2]
        added = on - off
        verdict = "within" if added <= TARGET_US else "ABOVE"
        print(
            f"first sight, {args.varied} different requests "
            f"{'with' if findings else 'without'} findings: without screens {off:.1f}, with "
            f"{on:.1f}, screens {added:+.1f} µs (median; {verdict} the {TARGET_US:g} µs target; "
            f"rounds {', '.join(f'{b - a:+.1f}' for a, b in rounds)})"
        )


if __name__ == "__main__":
    main()
