"""What the safety screens cost per determination: the median time with and without them.

The policy is compiled twice in this process from the same files, once with its safety data and
once without. The requests are varied copies of examples/10 (labs, medications taken now,
allergies, the medication history), first with nothing for the screens to find, then with many
findings (low counts, raised liver tests, interacting drugs). Each request is validated once;
each determination is timed on its own, the two policies taking turns so that drift on a noisy
machine hits both alike. It also times the review alone (`SafetyReviewer.review` on the
validated request and the determination's dosing result). Medians in microseconds, over
`--rounds` rounds (the median round is printed); compare the columns of one run, not runs.

    .venv/bin/python benchmarks/safety.py [--requests 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
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
from priorauth.engine.safety import SafetyReviewer

ROOT = Path(__file__).resolve().parents[1]
ANC, PLATELETS, AST, ALT, BILIRUBIN = "751-8", "777-3", "1920-8", "1742-6", "1975-2"


def varied(base: dict[str, Any], count: int, findings: bool) -> list[Request]:
    """`count` different requests made from `base` (seeded): with `findings` many fall outside
    the label's limits or take an interacting drug, without it none do."""
    rng = random.Random(20261202)
    drugs = ["ondansetron", "metformin", "lisinopril", "dexamethasone"]
    if findings:
        drugs += ["ketoconazole", "rifampin"]
    low, liver = (800, 4.0) if findings else (1600, 2.4)
    requests = []
    for i in range(count):
        request = copy.deepcopy(base)
        request["request_id"] = f"PA-BENCH-{i}"
        request["patient"]["pregnant"] = False
        day = f"2026-11-{rng.randrange(1, 24):02d}"
        kept = [o for o in request["observations"] if o["code"] in ("8302-2", "29463-7")]
        request["observations"] = [
            *kept,
            {"code": ANC, "value": rng.randrange(low, 6000), "unit": "/uL", "date": day},
            {"code": PLATELETS, "value": rng.randrange(low * 70, 400_000), "unit": "/uL"},
            {"code": AST, "uln_multiple": round(rng.uniform(0.3, liver), 2), "date": day},
            {"code": ALT, "uln_multiple": round(rng.uniform(0.3, liver), 2), "date": day},
            {"code": BILIRUBIN, "uln_multiple": round(rng.uniform(0.2, liver / 2.5), 2)},
        ]
        current = [{"name": name, "status": "active"} for name in rng.sample(drugs, k=2)]
        history = [m for m in request["medications"] if m.get("status") == "completed"]
        for therapy in history:
            therapy["progression_date"] = f"2026-{rng.randrange(1, 11):02d}-15"
        request["medications"] = current + history
        requests.append(parse_request(request))
    return requests


def one_round(
    with_screens: CompiledPolicy, without: CompiledPolicy, requests: list[Request]
) -> tuple[float, float, float]:
    """Median µs of a determination without the screens, with them, and of the review alone."""
    timings: dict[str, list[float]] = {"without": [], "with": [], "review": []}
    reviewer = SafetyReviewer(with_screens.safety)
    pair = [("with", with_screens), ("without", without)]
    for request in requests:
        assert request.received_at is not None
        as_of = request.received_at.date()
        pair.reverse()
        for name, compiled in pair:
            start = time.perf_counter_ns()
            determination = compiled.evaluate(request, as_of)
            timings[name].append((time.perf_counter_ns() - start) / 1000)
        dosing = determination.dosing
        bsa = dosing.bsa_m2 if dosing is not None else None
        start = time.perf_counter_ns()
        reviewer.review(request, dosing, bsa)
        timings["review"].append((time.perf_counter_ns() - start) / 1000)
    return (
        statistics.median(timings["without"]),
        statistics.median(timings["with"]),
        statistics.median(timings["review"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    policy = load_policy(ROOT / "policies" / "ixempra.yaml")
    assert policy.safety is not None
    data = load_safety(ROOT / "policies" / policy.safety)
    base = json.loads((ROOT / "examples" / "10-pended-safety-review.json").read_text())
    with_screens, without = CompiledPolicy(policy, data), CompiledPolicy(policy)
    print(f"{'requests':<28}{'without':>9}{'with':>9}{'screens':>9}{'review':>9}   (median µs)")
    for findings in (False, True):
        requests = varied(base, args.requests, findings)
        one_round(with_screens, without, requests[:200])  # warm up
        rounds = sorted(
            (one_round(with_screens, without, requests) for _ in range(args.rounds)),
            key=lambda r: r[1] - r[0],
        )
        off, on, alone = rounds[len(rounds) // 2]
        label = f"{args.requests} {'with' if findings else 'without'} findings"
        print(f"{label:<28}{off:9.1f}{on:9.1f}{on - off:+9.1f}{alone:9.1f}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPU(s)")


if __name__ == "__main__":
    main()
