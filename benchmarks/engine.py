"""Benchmark: a whole determination against GoRules zen-engine's bare criteria, in one run.

For Ixempra requests that are each new (other birth dates, heights, weights and doses), it
times, call by call, the contenders taking turns in batches:

  priorauth    PolicySet.evaluate(dict): validation, facts, criteria, dosing, safety screens and
               the whole determination (criteria trace, facts with provenance, authorization,
               hashes)
  parse only   the request validation alone (pydantic)
  decide only  CompiledPolicy.evaluate on an already validated request
  zen-engine   the bare Ixempra criteria (A, B, C, approved) as a GoRules JDM expression graph,
               given the facts already derived (no validation, no trace, no dosing)

and prints medians, p90 and p99 in microseconds, throughput, and the ratio priorauth / zen. The
guard (issue #11): a whole determination costs at most half of zen-engine's time. The machine
is shared and noisy: medians over many calls are the figures to quote.

    make bench            # or: .venv/bin/python benchmarks/engine.py --calls 20000
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from priorauth import PolicySet, parse_request

ROOT = Path(__file__).resolve().parents[1]
GUARD = 0.5


def _examples() -> list[dict[str, Any]]:
    """The example requests a policy governs (the no-policy one is left out)."""
    return [
        json.loads(p.read_text())
        for p in sorted((ROOT / "examples").glob("[0-9]*.json"))
        if "no-policy" not in p.name
    ]


ZEN_GRAPH = {
    "nodes": [
        {"id": "in", "type": "inputNode", "name": "request", "position": {"x": 0, "y": 0}},
        {
            "id": "criteria",
            "type": "expressionNode",
            "name": "criteria",
            "position": {"x": 200, "y": 0},
            "content": {
                "expressions": [
                    {"id": "a", "key": "A", "value": "age >= 18"},
                    {
                        "id": "b",
                        "key": "B",
                        "value": "recurrent == true or metastatic == true or no_response == true",
                    },
                    {"id": "c", "key": "C", "value": "oncologist == true"},
                    {"id": "d", "key": "approved", "value": "$.A and $.B and $.C"},
                ]
            },
        },
        {"id": "out", "type": "outputNode", "name": "decision", "position": {"x": 400, "y": 0}},
    ],
    "edges": [
        {"id": "e1", "sourceId": "in", "targetId": "criteria", "type": "edge"},
        {"id": "e2", "sourceId": "criteria", "targetId": "out", "type": "edge"},
    ],
}


def varied_requests(count: int) -> list[dict[str, Any]]:
    """`count` distinct requests made from the examples (seeded): other birth dates, heights,
    weights and doses, so no cache of a few repeated requests flatters the figures."""
    rng = random.Random(20261125)
    examples = _examples()
    requests: list[dict[str, Any]] = []
    for i in range(count):
        request = copy.deepcopy(examples[i % len(examples)])
        request["request_id"] = f"PA-BENCH-{i:06d}"
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 30000))
        request["patient"]["birth_date"] = birth.isoformat()
        for observation in request.get("observations", []):
            if observation["code"] == "8302-2":
                observation["value"] = round(rng.uniform(145, 195), 1)
            elif observation["code"] == "29463-7":
                observation["value"] = round(rng.uniform(42, 120), 1)
        dose = request["service"].get("dose")
        if dose is not None and dose["unit"] == "mg":
            dose["value"] = rng.randrange(20, 90)
        requests.append(request)
    return requests


def timed_together(
    contenders: dict[str, tuple[Callable[[Any], object], list[Any]]],
    warm_up: int,
    batch: int = 200,
) -> dict[str, list[float]]:
    """Microseconds for each call of each contender, each input once. The first `warm_up`
    inputs are called untimed first, so the timed calls see requests the engine has not seen
    before. After the warm-ups the contenders' timed calls take turns in batches, so a machine
    that speeds up or slows down during the run (this shared one swings up to twice over within
    minutes) weighs on every contender alike and their ratios hold."""
    for call, inputs in contenders.values():
        for item in inputs[:warm_up]:
            call(item)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    clock = time.perf_counter_ns
    start_at = warm_up
    while any(start_at < len(inputs) for _, inputs in contenders.values()):
        for name, (call, inputs) in contenders.items():
            found = samples[name]
            for item in inputs[start_at : start_at + batch]:
                start = clock()
                call(item)
                found.append((clock() - start) / 1000.0)
        start_at += batch
    return samples


def summary(name: str, samples: list[float]) -> dict[str, float | str]:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    return {
        "name": name,
        "median_us": round(median, 2),
        "p90_us": round(ordered[int(len(ordered) * 0.9)], 2),
        "p99_us": round(ordered[int(len(ordered) * 0.99)], 2),
        "per_second": round(1e6 / median),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000, help="timed calls per contender")
    parser.add_argument("--warm-up", type=int, default=2000, help="untimed requests first")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    warm = args.warm_up

    def fresh() -> PolicySet:
        return PolicySet.from_directory(ROOT / "policies")

    requests = varied_requests(warm + args.calls)
    parsed = [parse_request(r) for r in requests]
    as_of = dt.date(2026, 11, 25)
    compiled = fresh().get("ixempra")
    assert compiled is not None
    facts = [compiled.evaluate(r, as_of).facts for r in parsed]
    contexts = [
        {
            "age": f["age_years"].value,
            "recurrent": f["recurrent_unresectable_locoregional"].value,
            "metastatic": f["metastatic"].value,
            "no_response": f["no_response_to_preoperative_therapy"].value,
            "oncologist": f["prescribed_by_or_with_oncologist"].value,
        }
        for f in facts
    ]

    decide = compiled.evaluate
    contenders: dict[str, tuple[Callable[[Any], object], list[Any]]] = {
        "priorauth evaluate(dict)": (fresh().evaluate, requests),
        "  parse only": (parse_request, requests),
        "  decide only": (
            lambda pair: decide(pair[0], as_of, pair[1]),
            list(zip(parsed, requests, strict=True)),
        ),
    }
    try:
        import zen
    except ImportError:
        zen = None
    if zen is not None:
        decision = zen.ZenEngine().create_decision(json.dumps(ZEN_GRAPH))
        contenders["zen-engine bare criteria"] = (decision.evaluate, contexts)
    results = [summary(name, samples) for name, samples in timed_together(contenders, warm).items()]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{args.calls} timed calls each, every request different and unseen "
        f"(after {warm} to warm up), the contenders taking turns in batches; figures in µs"
    )
    print(f"{'contender':<28}{'median':>10}{'p90':>10}{'p99':>10}{'per second':>14}")
    for row in results:
        print(
            f"{row['name']:<28}{row['median_us']:>10}{row['p90_us']:>10}{row['p99_us']:>10}"
            f"{row['per_second']:>14,}"
        )
    ours = float(results[0]["median_us"])
    if zen is not None:
        theirs = float(results[-1]["median_us"])
        ratio = ours / theirs
        verdict = "holds" if ratio <= GUARD else "does not hold"
        print(
            f"\npriorauth whole determination / zen-engine bare criteria = {ratio:.2f} "
            f"(guard: at most {GUARD:g}; {verdict})"
        )


if __name__ == "__main__":
    main()
