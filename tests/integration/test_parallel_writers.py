"""Writers side by side (service.uow): on PostgreSQL, writers of different keys do not wait for
each other and queue only to append to the audit chain; what each key guards still holds when
writers race for it (one twin created, one decision taken), and the chain stays one line.
The same tests run on SQLite, where one writer runs at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select, text

from priorauth.adapters.store import AuditEventRow, ReviewRow
from priorauth.service.audit import append_event
from priorauth.service.errors import Conflict
from priorauth.service.integrity import verify_trail
from priorauth.service.uow import LockOrderError, UnitOfWork, case_key
from priorauth.service.workflow import Decision
from tests.conftest import example
from tests.service_fixtures import POSTGRES_URL, TOKENS, Env

THREADS = 8


def _race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once (released together by a barrier); each result or exception."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        try:
            return call()
        except Exception as exc:  # the race's losers: what they raised is the result
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _events(env: Env) -> list[int]:
    with UnitOfWork(env.service.database) as uow:
        return list(uow.session.scalars(select(AuditEventRow.id).order_by(AuditEventRow.id)))


def test_concurrent_submissions_are_all_kept_in_one_unbroken_chain(env: Env) -> None:
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    before = len(_events(env))

    def submit(n: int) -> Callable[[], Any]:
        request = example("01-approved-every-3-weeks.json")
        request["request_id"] = f"PAR-{n}"
        return lambda: service.submit(clinic, request, f"M-{n}")

    results = _race([submit(n) for n in range(THREADS * 3)])
    assert all(not isinstance(r, Exception) for r in results), results
    assert all(r.created for r in results)
    assert len({r.case["case_id"] for r in results}) == THREADS * 3
    events = _events(env)
    # One event per submission, numbered without a gap.
    assert len(events) == before + THREADS * 3
    assert events == list(range(1, len(events) + 1))
    assert verify_trail(service.database).problem is None


def test_twins_sent_at_once_make_one_case_and_the_rest_answer_with_it(env: Env) -> None:
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    request = example("01-approved-every-3-weeks.json")
    results = _race([lambda: service.submit(clinic, request, "M-1") for _ in range(THREADS)])
    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(r.created for r in results) == 1
    assert len({r.case["case_id"] for r in results}) == 1


def test_a_different_body_under_the_same_request_id_at_once_is_a_conflict(env: Env) -> None:
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    first = example("01-approved-every-3-weeks.json")
    second = {**first, "answers": {**first.get("answers", {})}}
    second["patient"] = {**first["patient"], "sex": "male"}
    results = _race(
        [lambda: service.submit(clinic, first, "M-1")] * 3
        + [lambda: service.submit(clinic, second, "M-1")] * 3
    )
    created = [r for r in results if not isinstance(r, Exception) and r.created]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1
    # Whichever body came first stands; every call with the other body is refused.
    assert len(conflicts) == 3
    assert all(
        isinstance(r, Conflict) or r.case["case_id"] == created[0].case["case_id"] for r in results
    )


def test_reviewers_deciding_one_case_at_once_take_one_decision(env: Env) -> None:
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    md1 = service.authenticate(TOKENS["md1"])
    md2 = service.authenticate(TOKENS["md2"])
    case = service.submit(clinic, example("04-pended-criteria-not-met-age.json"), "M-1").case
    assert case["status"] == "pended"
    calls = [
        (lambda who=who: service.decide(who, case["case_id"], Decision("approve")))
        for who in (md1, md2) * (THREADS // 2)
    ]
    results = _race(calls)
    decided = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(decided) == 1 and len(refused) == THREADS - 1, results
    with UnitOfWork(service.database) as uow:
        reviews = uow.session.scalar(select(func.count()).select_from(ReviewRow))
    assert reviews == 1
    assert verify_trail(service.database).problem is None


def test_a_writer_that_appended_an_event_may_lock_no_more_keys(env: Env) -> None:
    with UnitOfWork(env.service.database) as uow:
        uow.lock_writes()
        uow.lock(case_key("a"))
        append_event(uow, "system", "test.event", None, {}, env.clock())
        uow.lock(case_key("a"))  # held already: nothing to wait for
        with pytest.raises(LockOrderError):
            uow.lock(case_key("b"))
    with UnitOfWork(env.service.database) as uow, pytest.raises(LockOrderError):
        append_event(uow, "system", "test.event", None, {}, env.clock())


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL: set PRIORAUTH_TEST_POSTGRES_URL")
@pytest.mark.parametrize("env", ["postgresql"], indirect=True)
def test_on_postgresql_writers_of_other_keys_do_not_wait_and_appends_queue(env: Env) -> None:
    database = env.service.database
    with UnitOfWork(database) as first:
        first.lock_writes()
        first.lock(case_key("a"))

        def other_key() -> None:
            with UnitOfWork(database) as uow:
                uow.lock_writes()
                uow.lock(case_key("b"))
                uow.session.execute(text("SELECT 1"))
                uow.commit()

        # Another key: done while the first writer still holds its own.
        runner = threading.Thread(target=other_key)
        runner.start()
        runner.join(timeout=30)
        assert not runner.is_alive()

        same_key_done = threading.Event()

        def same_key() -> None:
            with UnitOfWork(database) as uow:
                uow.lock_writes()
                uow.lock(case_key("a"))
                uow.commit()
            same_key_done.set()

        waiter = threading.Thread(target=same_key)
        waiter.start()
        # The same key waits for the first writer: not done until it ends.
        assert not same_key_done.wait(timeout=1)
        append_event(first, "system", "test.first", None, {}, env.clock())
        appended: list[str] = []

        def append_too() -> None:
            with UnitOfWork(database) as uow:
                uow.lock_writes()
                append_event(uow, "system", "test.second", None, {}, env.clock())
                uow.commit()
            appended.append("second")

        appender = threading.Thread(target=append_too)
        appender.start()
        # The chain's head is the first writer's until it commits.
        appender.join(timeout=1)
        assert appended == []
        first.commit()
    waiter.join(timeout=30)
    appender.join(timeout=30)
    assert same_key_done.is_set() and appended == ["second"]
    with UnitOfWork(database) as uow:
        actions = list(
            uow.session.scalars(
                select(AuditEventRow.action)
                .where(AuditEventRow.action.like("test.%"))
                .order_by(AuditEventRow.id)
            )
        )
    assert actions == ["test.first", "test.second"]
    assert verify_trail(database).problem is None


def test_a_read_shows_its_own_event_as_the_chain_keeps_it(env: Env) -> None:
    # The read's event is appended after the case is read, and added to what it shows.
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    case = service.submit(clinic, example("01-approved-every-3-weeks.json"), "M-1").case
    first = service.read(clinic, case["case_id"])
    env.clock.advance(minutes=1)
    second = service.read(clinic, case["case_id"])
    assert [e["action"] for e in first["history"]] == ["request.submitted", "request.read"]
    assert second["history"][:-1] == first["history"]
    assert second["history"][-1]["number"] == 3
