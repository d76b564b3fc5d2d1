"""The database engine and sessions for a URL, and Alembic migrations applied at start.

Nothing connects at import: a `Database` is built explicitly from a URL by the service layer.
SQLite runs in WAL mode with full fsync: readers take a plain BEGIN, writers take a process-wide
lock (threads queue on it rather than on SQLite's sleeping busy handler) and then BEGIN
IMMEDIATE (one writer across processes too). PostgreSQL lets writers run side by side: each
takes advisory locks on the keys it changes (a case, a claim identifier), and the audit chain's
lock only to append its events, which it holds until it commits.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Insert, Row, Table, create_engine, event, insert, inspect, text
from sqlalchemy.engine import CursorResult, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Mapper, Session, sessionmaker
from sqlalchemy.sql import Executable

__all__ = [
    "UPGRADE",
    "Database",
    "DatabaseNotReady",
    "execute",
    "insert_row",
    "migrate",
    "normalize_url",
    "safe_url",
]

MIGRATIONS = Path(__file__).parent / "migrations"
# The key of the PostgreSQL advisory lock held to append to the audit chain (and until commit).
_CHAIN_LOCK = 0x70A0_0001
# A writer's keys: advisory locks in the same 64-bit space, keyed by the text's hash.
_KEY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
# The execution option that marks a SQLite connection as a writer (BEGIN IMMEDIATE).
_WRITER = "priorauth_writer"


UPGRADE = "run `priorauth db upgrade` (with the same --database-url) to create or migrate it"


class DatabaseNotReady(Exception):
    """A database the service cannot use as it is; the message is one line for the operator."""


def normalize_url(url: str) -> str:
    """The URL SQLAlchemy understands: `postgres://` (as libpq and many hosts write it) is
    `postgresql://`. DatabaseNotReady for a URL that does not read or names no known backend."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseNotReady(
            f"the database URL does not read ({safe_url(url)}): "
            "use sqlite:///FILE or postgresql://USER@HOST:PORT/NAME"
        ) from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseNotReady(
            f"unknown database URL scheme {parsed.drivername!r}: "
            "use sqlite:///FILE or postgresql://USER@HOST:PORT/NAME"
        )
    return url


def safe_url(url: str) -> str:
    """A URL fit for a message: never its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1][:80]


class Database:
    """An engine and a session factory for one database URL.

    With `create=False` a SQLite file that does not exist is refused (DatabaseNotReady) rather
    than created empty; only `priorauth db upgrade` creates databases.
    """

    def __init__(self, url: str, create: bool = True) -> None:
        url = normalize_url(url)
        parsed = make_url(url)
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # Parameters are request data: keep them out of error messages and logs.
        kwargs: dict[str, Any] = {"hide_parameters": True}
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                if not create and not Path(database).is_file():
                    raise DatabaseNotReady(f"no database file at {Path(database)}; {UPGRADE}")
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(parsed, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_transactions(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._sqlite_writer = threading.Lock()

    def session(self) -> Session:
        return self.sessions()

    def lock_writes(self, session: Session) -> threading.Lock | None:
        """Make this session's transaction a writer. Call before its first statement.

        SQLite has one writer at a time: this takes the process lock and BEGIN IMMEDIATE, and
        returns the lock for the caller to release once the transaction has ended. PostgreSQL
        writers run side by side (`lock_keys`, `lock_chain`): nothing is taken, None returned.
        """
        if self.dialect == "postgresql":
            return None
        self._sqlite_writer.acquire()
        try:
            session.connection(execution_options={_WRITER: True})
        except BaseException:
            self._sqlite_writer.release()
            raise
        return self._sqlite_writer

    def lock_keys(self, session: Session, keys: list[str]) -> None:
        """Serialize with every writer that locks one of `keys`, until this transaction ends
        (PostgreSQL; a SQLite writer is alone already). Sorted, so two writers that lock the
        same keys take them in the same order."""
        if self.dialect != "postgresql":
            return
        for key in sorted(set(keys)):
            session.execute(_KEY_LOCK, {"key": key})

    def lock_chain(self, session: Session) -> None:
        """Hold the audit chain's head until this transaction ends (PostgreSQL; a SQLite writer
        holds it already): the events appended after it take the next ids in one order."""
        if self.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})

    def first(self, statement: Executable, parameters: Mapping[str, Any]) -> Row[Any] | None:
        """The first row of a read-only Core statement, on a connection of its own: for a
        lookup made on every call (the bearer token's account), without a session's costs."""
        with self.engine.connect() as connection:
            return connection.execute(statement, parameters).first()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_transactions(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event below issue BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # Writers take the database's write lock at once; readers see a WAL snapshot.
        writer = connection.get_execution_options().get(_WRITER, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def execute(
    session: Session, statement: Executable, parameters: Mapping[str, Any] | None = None
) -> CursorResult[Any]:
    """A Core statement in the session's transaction, run on its connection: what
    `session.execute` does with one (pending changes flushed first), without the ORM's
    per-statement costs, which for the small statements of a submission exceed SQLite's own."""
    session.flush()
    return session.connection().execute(statement, parameters)


# One INSERT statement per table, built once: insert_row is on the hot path of every submission.
_INSERTS: dict[type[DeclarativeBase], tuple[Insert, Mapper[Any]]] = {}


def insert_row(session: Session, row: DeclarativeBase) -> Any:
    """Write a new row object with one plain INSERT in the session's transaction, and return its
    primary key (also set on the object).

    The object stays outside the session: readable as built, never flushed or tracked (the
    unit-of-work flush costs several times the INSERT itself). Columns left unset take their
    defaults, as they would through `session.add`. For rows written once, then read or changed
    later through the session like any other.
    """
    kind = type(row)
    if kind not in _INSERTS:
        _INSERTS[kind] = (insert(cast(Table, kind.__table__)), inspect(kind))
    statement, mapper = _INSERTS[kind]
    state = inspect(row).dict
    values = {
        attribute.columns[0].key: state[attribute.key]
        for attribute in mapper.column_attrs
        if attribute.key in state
    }
    inserted = execute(session, statement, values).inserted_primary_key
    assert inserted is not None, "a single-row INSERT has a primary key"
    [key] = inserted
    [column] = mapper.primary_key
    setattr(row, mapper.get_property_by_column(column).key, key)
    return key


def migrate(database: Database) -> None:
    """Bring the schema up to the newest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
