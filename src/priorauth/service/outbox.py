"""Deliver the subscription notifications waiting in the outbox: POST each to its rest-hook
endpoint, retry with exponential backoff while the subscriber is down, and survive restarts
(the outbox is a table, written in the decision's own transaction).

Delivery is at least once: a notification sent just before a crash may be sent again; each
carries its event number so a subscriber can tell. Log lines name outbox ids and error kinds,
never a payload.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from priorauth.adapters.store import Database, OutboxRow, SubscriptionRow
from priorauth.service.uow import UnitOfWork, outbox_key

__all__ = ["OutboxWorker", "utcnow"]

log = logging.getLogger("priorauth.outbox")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class _Due:
    outbox_id: int
    endpoint: str
    headers: tuple[str, ...]
    payload: bytes
    attempts: int


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are never followed: the subscriber's endpoint is the host the plan allowed
    (PRIORAUTH_SUBSCRIPTION_HOSTS), and a redirect would send the notification, with its
    health information and the subscription's secret headers, somewhere it did not."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class OutboxWorker:
    """Sends due notifications. `deliver_due()` does one pass; `start()` runs passes in a
    background thread every `poll_seconds` until `stop()`.

    After a failed attempt n (1, 2, ...) the next is due `base_delay * 2**(n-1)` seconds later
    (at most `max_delay`); after `max_attempts` the notification is marked failed.
    """

    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        base_delay: float = 1.0,
        max_delay: float = 600.0,
        max_attempts: int = 15,
        timeout: float = 5.0,
        poll_seconds: float = 1.0,
        batch: int = 20,
        allowed_hosts: frozenset[str] | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        self.batch = batch
        # Checked again at each delivery: a host taken off PRIORAUTH_SUBSCRIPTION_HOSTS after
        # a subscription was made is not called (None: every host, for tests of delivery).
        self.allowed_hosts = allowed_hosts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def delay(self, attempts: int) -> dt.timedelta:
        """How long to wait after the `attempts`-th failed attempt."""
        return dt.timedelta(seconds=min(self.max_delay, self.base_delay * 2 ** (attempts - 1)))

    def _due(self) -> list[_Due]:
        with UnitOfWork(self.database) as uow:
            rows = uow.session.execute(
                select(OutboxRow, SubscriptionRow)
                .join(SubscriptionRow, SubscriptionRow.id == OutboxRow.subscription_pk)
                .where(
                    OutboxRow.delivered_at.is_(None),
                    OutboxRow.failed_at.is_(None),
                    OutboxRow.next_attempt_at <= self.clock(),
                )
                .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
                .limit(self.batch)
            ).all()
            return [
                _Due(
                    outbox.id,
                    subscription.endpoint,
                    tuple(
                        str(h)
                        for h in json.loads(subscription.resource_json)
                        .get("channel", {})
                        .get("header", ())
                    ),
                    outbox.payload_json.encode(),
                    outbox.attempts,
                )
                for outbox, subscription in rows
            ]

    def _send(self, due: _Due) -> str | None:
        """POST one notification; None when the subscriber took it (2xx), else the error kind."""
        host = (urlsplit(due.endpoint).hostname or "").lower()
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            return "host not allowed (PRIORAUTH_SUBSCRIPTION_HOSTS)"
        request = urllib.request.Request(
            due.endpoint,
            data=due.payload,
            method="POST",
            headers={"Content-Type": "application/fhir+json"},
        )
        for header in due.headers:
            name, _, value = header.partition(":")
            if name.strip() and value.strip():
                request.add_header(name.strip(), value.strip())
        try:
            with _OPENER.open(request, timeout=self.timeout) as answer:
                answer.read()
                status = int(answer.status)
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                return f"HTTP {exc.code} (redirects are not followed)"
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None)
            return type(reason if isinstance(reason, BaseException) else exc).__name__
        return None if 200 <= status < 300 else f"HTTP {status}"

    def deliver_due(self) -> int:
        """Try every due notification once; returns how many were delivered."""
        delivered = 0
        for due in self._due():
            error = self._send(due)
            with UnitOfWork(self.database) as uow:
                uow.lock_writes()
                # Another server process may be delivering it too (at least once).
                uow.lock(outbox_key(due.outbox_id))
                row = uow.session.get(OutboxRow, due.outbox_id)
                if row is None or row.delivered_at is not None:
                    continue
                now = self.clock()
                row.attempts = due.attempts + 1
                if error is None:
                    row.delivered_at = now
                    row.last_error = None
                    delivered += 1
                else:
                    row.last_error = error[:200]
                    row.next_attempt_at = now + self.delay(row.attempts)
                    if row.attempts >= self.max_attempts:
                        row.failed_at = now
                    log.warning(
                        "notification %d not delivered (attempt %d): %s",
                        row.id,
                        row.attempts,
                        row.last_error,
                    )
                uow.commit()
        return delivered

    def start(self) -> None:
        """Deliver in a background thread until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="priorauth-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:  # a database hiccup must not end delivery for good
                log.exception("outbox pass failed; retrying")
            self._stop.wait(self.poll_seconds)
