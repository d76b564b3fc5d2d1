"""Where a first-sight determination's cost goes, in CPU instructions: a figure the noise of a
shared machine does not move.

Wall-clock medians on the development machine vary up to twice over with other work
(benchmarks/engine.py). Instructions counted by valgrind's callgrind do not: the same code gives
the same count to within a fraction of a percent, so a change can be judged in one run. This
script runs itself under callgrind once per stage, on requests the engine has not seen (as
benchmarks/engine.py makes them, after the same warm-up), and prints instructions per request:

  parse     the request's validation (pydantic, into the Request model)
  hash      the request hash (canonical JSON, SHA-256)
  facts     the service date and every fact the policy speaks of
  criteria  facts, then the criteria tree
  dosing    facts, then the body measures and the requested regimen against the regimens
  safety    dosing, then the safety screens, the label indication and the guideline context
  build     only constructing the Determination record from its parts
  decide    CompiledPolicy.evaluate on a validated request (all of the above but parse)
  full      PolicySet.evaluate(dict): what benchmarks/engine.py times

Only the stage's work is counted: the child calls it through `operator.call`, and callgrind
collects inside that C function alone (`--toggle-collect`), so the set-up, which costs a
hundred times more, and the interpreter's exit are left out. Counting whole runs less a
baseline run, as this script did first, let noise of a fraction of a percent in the set-up move
a stage by tens of thousands of instructions a request. Hash randomization is fixed
(PYTHONHASHSEED=0), and the cyclic GC is off while a stage runs: its passes depend on what
else is alive, not on the stage. valgrind is needed (apt-get install valgrind); one stage takes
a minute or so.

    .venv/bin/python benchmarks/cost.py                 # every stage, 1000 requests each
    .venv/bin/python benchmarks/cost.py full decide     # some stages

To turn instructions into time, divide by the rate `--rate` measures here (instructions per
microsecond of the full determination, median wall time over the same requests, no valgrind).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import operator
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine import ROOT, timed_together, varied_requests  # noqa: E402
from priorauth import PolicySet, parse_request  # noqa: E402
from priorauth.engine.compiled import request_hash, service_date  # noqa: E402
from priorauth.engine.determination import Determination  # noqa: E402

STAGES = ("parse", "hash", "facts", "criteria", "dosing", "safety", "build", "decide", "full")
WARM_UP = 2000
AS_OF = dt.date(2026, 11, 25)
_COLLECTED = re.compile(r"Collected : (\d+)")


def _stage(name: str, calls: int) -> Callable[[], None]:
    """Set up, then return the work of `calls` first-sight requests for one stage."""
    requests = varied_requests(WARM_UP + calls)
    policies = PolicySet.from_directory(ROOT / "policies")
    policy = policies.get("ixempra")
    assert policy is not None
    for request in requests[:WARM_UP]:
        policies.evaluate(request)
    todo = requests[WARM_UP:]
    parsed = [parse_request(r) for r in todo]
    # Parts for `build` come from another policy object, so the timed one has not seen them.
    other = PolicySet.from_directory(ROOT / "policies").get("ixempra")
    assert other is not None
    names = [f.name for f in dataclasses.fields(Determination)]
    parts = [
        {n: getattr(d, n) for n in names}
        for d in (other.evaluate(p, AS_OF, r) for p, r in zip(parsed, todo, strict=True))
    ]

    def facts(request: Any) -> dict[str, Any]:
        service = service_date(request, AS_OF)
        return {name: fact.derive(request, service)[0] for name, fact in policy.facts.items()}

    def dosing(request: Any) -> Any:
        found = facts(request)
        on = service_date(request, AS_OF).date
        return policy._dosing.evaluate(request, on, found, policy._questions)[0]

    def run() -> None:
        if name == "parse":
            for raw in todo:
                parse_request(raw)
        elif name == "hash":
            for raw in todo:
                request_hash(raw)
        elif name == "facts":
            for request in parsed:
                facts(request)
        elif name == "criteria":
            for request in parsed:
                policy._pick_indication(request, facts(request))
        elif name == "dosing":
            for request in parsed:
                dosing(request)
        elif name == "safety":
            for request in parsed:
                result = dosing(request)
                policy._safety.review(request, result, result.bsa_m2)
        elif name == "build":
            for fields in parts:
                Determination(**fields)
        elif name == "decide":
            for request, raw in zip(parsed, todo, strict=True):
                policy.evaluate(request, AS_OF, raw)
        else:
            for raw in todo:
                policies.evaluate(raw)

    return run


def _child(name: str, calls: int) -> None:
    work = _stage(name, calls)
    # The cyclic GC is off for the counted work. Its passes walk whatever else is alive (here
    # the set-up's thousands of requests and parts), so they moved a stage by up to 20k
    # instructions a request from run to run. In wall time it cost about 2% of a
    # determination (89 against 87 µs, on and off in turns).
    gc.disable()
    # Callgrind counts inside operator.call only (see _count): exactly the stage's work.
    operator.call(work)


def _count(name: str, calls: int) -> int:
    """Instructions of one stage's work for `calls` requests, counted under callgrind."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += ["--collect-atstart=no", "--toggle-collect=_operator_call"]
    command += [sys.executable, __file__, "--child", name, str(calls)]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"callgrind run of stage {name!r} failed:\n{done.stderr[-2000:]}")
    if int(found.group(1)) == 0:
        sys.exit("callgrind counted nothing inside _operator_call: is libpython stripped?")
    return int(found.group(1))


def _rate(calls: int) -> float:
    """Instructions per microsecond on this machine now: callgrind's count of the full stage
    over its median wall time per request (each request timed once, first sight)."""
    requests = varied_requests(WARM_UP + calls)
    policies = PolicySet.from_directory(ROOT / "policies")
    samples = timed_together({"full": (policies.evaluate, requests)}, WARM_UP)["full"]
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", help=f"any of {', '.join(STAGES)} (default: all)")
    parser.add_argument("--calls", type=int, default=1000, help="first-sight requests per stage")
    parser.add_argument("--rate", action="store_true", help="also time `full` without valgrind")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, calls = args.child
        _child(name, int(calls))
        return
    if shutil.which("valgrind") is None:
        sys.exit("benchmarks/cost.py needs valgrind (apt-get install valgrind)")
    unknown = [name for name in args.stages if name not in STAGES]
    if unknown:
        parser.error(f"no stage {', '.join(unknown)}; the stages are {', '.join(STAGES)}")
    calls = args.calls
    print(f"instructions per first-sight request (callgrind; {calls} requests per stage)")
    counts: dict[str, int] = {}
    for name in args.stages or STAGES:
        print(f"  {name:<9}", end="", flush=True)
        counts[name] = _count(name, calls) // calls
        print(f"{counts[name]:>10,}")
    if args.rate and "full" in counts:
        median_us = _rate(calls * 10)
        rate = counts["full"] / median_us
        print(f"\nfull: median {median_us:.1f} µs wall time now, so {rate:,.0f} instructions/µs")
        for name, count in counts.items():
            print(f"  {name:<9}{count / rate:>8.1f} µs")


if __name__ == "__main__":
    main()
