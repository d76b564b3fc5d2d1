"""Writers side by side against one lock around every use case, in one run.

Submissions from N threads of one process (database waits let the others run), on a database
given by --database-url (PostgreSQL is what this is about; SQLite has one writer at a time
either way). Two contenders, alternated in rounds so both see the same machine:

- `keys`: what the service does (service.uow): a writer locks the keys of what it changes, and
  holds the audit chain's head only from its first event to its commit;
- `one-lock`: what it did before: one advisory lock taken first and held to the commit, around
  the whole use case.

Printed: submissions per second of each, their ratio, and how long a submission holds the chain
(keys) or the lock (one-lock), median and p95 of the time from taking it to the end of commit.

    python benchmarks/writers.py --database-url postgresql://USER@HOST/DB --threads 16
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from priorauth.adapters.store import Database
from priorauth.service.config import Settings
from priorauth.service.people import Actor
from priorauth.service.runtime import open_service
from priorauth.service.uow import UnitOfWork
from priorauth.service.workflow import PriorAuthService

ROOT = Path(__file__).resolve().parents[1]
ONE_LOCK = 0x70A0_0002  # a key of its own, not the chain's

held: list[float] = []
_started = threading.local()


class OneLockDatabase(Database):
    """The database as it was: every writer takes one lock first, and keeps it to the end."""

    def lock_writes(self, session: Session) -> threading.Lock | None:
        if self.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ONE_LOCK})
            _started.at = time.perf_counter()
            return None
        lock = super().lock_writes(session)
        _started.at = time.perf_counter()
        return lock

    def lock_keys(self, session: Session, keys: list[str]) -> None:
        return None

    def lock_chain(self, session: Session) -> None:
        return None


class KeysDatabase(Database):
    def lock_chain(self, session: Session) -> None:
        super().lock_chain(session)
        _started.at = time.perf_counter()


@contextmanager
def timing_commits() -> Iterator[None]:
    """Record, per commit, how long the lock or chain was held (taken -> commit done)."""
    original = UnitOfWork.commit

    def commit(self: UnitOfWork) -> None:
        original(self)
        at = getattr(_started, "at", None)
        if at is not None:
            held.append(time.perf_counter() - at)
            _started.at = None

    UnitOfWork.commit = commit  # type: ignore[method-assign]
    try:
        yield
    finally:
        UnitOfWork.commit = original  # type: ignore[method-assign]


def service_on(url: str, kind: type[Database]) -> PriorAuthService:
    service = open_service(Settings(database_url=url, policy_dir=ROOT / "policies"))
    service.database.dispose()
    service.database = kind(url)
    return service


def drive(service: PriorAuthService, actor: Actor, count: int, threads: int) -> float:
    template = json.loads((ROOT / "examples" / "01-approved-every-3-weeks.json").read_text())
    prefix = uuid.uuid4().hex[:8]
    bodies: list[dict[str, Any]] = []
    for i in range(count):
        request = copy.deepcopy(template)
        request["request_id"] = f"W-{prefix}-{i}"
        bodies.append(request)
    # Decided once here: this measures the writes, not the engine.
    evaluated = [service._evaluate(b) for b in bodies]
    next_index = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal next_index
        while True:
            with guard:
                if next_index >= count:
                    return
                i = next_index
                next_index += 1
            with UnitOfWork(service.database) as uow:
                uow.lock_writes()
                service.submit_in(uow, actor, bodies[i], f"M-{i % 200}", evaluated=evaluated[i])
                uow.commit()

    started = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--requests", type=int, default=600, help="per contender per round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    contenders = {
        "keys": service_on(args.database_url, KeysDatabase),
        "one-lock": service_on(args.database_url, OneLockDatabase),
    }
    name = "writers-bench"
    token = "writers-bench-token-" + "x" * 24
    first = contenders["keys"]
    if name not in {u["name"] for u in first.users()}:
        first.add_user(name, "submitter", "Bench Org", token=token)
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    holds: dict[str, list[float]] = {k: [] for k in contenders}
    with timing_commits():
        for _ in range(args.rounds):
            for kind, service in contenders.items():
                actor = service.authenticate(token)
                held.clear()
                rates[kind].append(drive(service, actor, args.requests, args.threads))
                holds[kind].extend(held)
    print(
        f"database {args.database_url.split(':', 1)[0]}, {args.threads} threads, "
        f"{args.rounds} rounds x {args.requests} submissions, nproc {os.cpu_count()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    for kind in contenders:
        per_second = statistics.median(rates[kind])
        spans = sorted(holds[kind])
        p95 = spans[int(0.95 * (len(spans) - 1))] if spans else float("nan")
        print(
            f"{kind:>9}: {per_second:7.1f} submissions/s (rounds: "
            f"{', '.join(f'{r:.0f}' for r in rates[kind])}); held per submission: median "
            f"{1000 * statistics.median(spans):.2f} ms, p95 {1000 * p95:.2f} ms"
        )
    ratio = statistics.median(rates["keys"]) / statistics.median(rates["one-lock"])
    print(f"keys / one-lock: {ratio:.2f}x")
    for service in contenders.values():
        service.close()


if __name__ == "__main__":
    main()
