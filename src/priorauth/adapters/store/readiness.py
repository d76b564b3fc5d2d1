"""Whether a database can be used as it is: it exists, it answers, and its schema is the newest.

Only `priorauth db upgrade` creates or migrates a database; every other command opens one that
is ready, and says in one line what is wrong with one that is not (a typo'd URL must not leave
an empty database behind).
"""

from __future__ import annotations

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError, NoSuchModuleError

from priorauth.adapters.store.database import (
    MIGRATIONS,
    UPGRADE,
    Database,
    DatabaseNotReady,
    migrate,
    normalize_url,
    safe_url,
)

__all__ = [
    "DatabaseNotReady",
    "check_ready",
    "head_revision",
    "normalize_url",
    "open_ready",
    "schema_revision",
    "upgrade",
]


def head_revision() -> str:
    """The newest migration's revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None, "the migrations have a head"
    return head


def schema_revision(database: Database) -> str | None:
    """The revision the database is at (None for an empty database). DatabaseNotReady, in one
    line, when the database does not answer."""
    try:
        with database.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except (DBAPIError, NoSuchModuleError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        first = reason[0] if reason else type(exc).__name__
        raise DatabaseNotReady(
            f"cannot reach the database at {safe_url(database.url)}: {first}"
        ) from exc


def check_ready(database: Database) -> None:
    """Return when the database is at the newest schema; DatabaseNotReady saying what to do
    otherwise."""
    revision = schema_revision(database)
    if revision is None:
        raise DatabaseNotReady(f"the database at {safe_url(database.url)} is empty; {UPGRADE}")
    if revision != head_revision():
        raise DatabaseNotReady(
            f"the database at {safe_url(database.url)} is at schema {revision}, not the newest "
            f"({head_revision()}); {UPGRADE}"
        )


def upgrade(database: Database) -> tuple[str | None, str]:
    """Create or migrate the database to the newest schema: (the revision it was at, or None
    when empty; the revision it is at now). DatabaseNotReady, in one line, when it does not
    answer."""
    before = schema_revision(database)
    try:
        migrate(database)
    except DBAPIError as exc:
        first = str(exc.orig or exc).strip().splitlines()[0]
        raise DatabaseNotReady(
            f"the migration failed on {safe_url(database.url)}: {first}"
        ) from exc
    return before, head_revision()


def open_ready(url: str) -> Database:
    """A Database on `url` that exists at the newest schema (for commands that read the store);
    DatabaseNotReady, in one line, otherwise. Nothing is created."""
    database = Database(url, create=False)
    try:
        check_ready(database)
    except BaseException:
        database.dispose()
        raise
    return database
