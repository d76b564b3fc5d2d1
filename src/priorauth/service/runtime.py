"""Building the service: connect, migrate, register policies. Called by entry points at start."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from priorauth.adapters.store import Database, migrate
from priorauth.adapters.store.readiness import check_ready
from priorauth.service.config import Settings
from priorauth.service.errors import Conflict
from priorauth.service.workflow import PriorAuthService, utcnow

__all__ = ["DEMO_ACCOUNTS", "load_demo", "open_service", "running_service"]


def open_service(
    settings: Settings, clock: Callable[[], dt.datetime] = utcnow, *, upgrade: bool = True
) -> PriorAuthService:
    """Connect to the configured database and register the policies. With `upgrade` (tests,
    embedding) an empty or older database is created or migrated first; without it (the
    commands an operator runs) it must exist at the newest schema, else DatabaseNotReady says
    so in one line (`priorauth db upgrade` makes it so)."""
    database = Database(settings.database_url, create=upgrade)
    try:
        if upgrade:
            migrate(database)
        else:
            check_ready(database)
        service = PriorAuthService(database, settings, clock)
        service.start()
    except BaseException:
        database.dispose()
        raise
    return service


@contextlib.contextmanager
def running_service(settings: Settings, *, upgrade: bool = True) -> Iterator[PriorAuthService]:
    """`open_service` for the length of a `with` block; the connections are closed after."""
    service = open_service(settings, upgrade=upgrade)
    try:
        yield service
    finally:
        service.close()


# Invented accounts for trying the service out; their tokens are printed in the README.
DEMO_ACCOUNTS: tuple[tuple[str, str, str | None, str | None, str | None, str], ...] = (
    ("demo-clinic", "submitter", "Demo Oncology Clinic", None, None, "demo-submitter-token"),
    (
        "demo-pharmacist",
        "pharmacist",
        None,
        "1245319599",
        "oncology-pharmacy",
        "demo-pharmacist-token",
    ),
    ("demo-md-1", "medical-director", None, "1679576722", "medical-oncology", "demo-md1-token"),
    ("demo-md-2", "medical-director", None, "1306849450", "hematology-oncology", "demo-md2-token"),
    ("demo-admin", "admin", None, None, None, "demo-admin-token"),
)


def load_demo(service: PriorAuthService, examples: Path) -> int:
    """Add the demo accounts (if absent) and submit the example requests; returns how many new.

    An example already submitted is answered from the store, not submitted again; one whose
    request_id the demo clinic used with another body (an earlier copy of the example, in a
    database kept from an earlier version) is left as it was stored."""
    for name, role, organization, npi, specialty, token in DEMO_ACCOUNTS:
        with contextlib.suppress(Conflict):
            service.add_user(name, role, organization, npi, specialty, token=token)
    submitter = service.authenticate("demo-submitter-token")
    created = 0
    for number, path in enumerate(sorted(examples.glob("*.json")), start=1):
        request = json.loads(path.read_text(encoding="utf-8"))
        with contextlib.suppress(Conflict):
            if service.submit(submitter, request, member_id=f"M-DEMO-{number:03d}").created:
                created += 1
    return created
