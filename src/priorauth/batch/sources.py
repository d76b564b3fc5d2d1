"""Where a batch's requests come from: a JSON Lines file, a Parquet file, or the store.

Each source yields `Item`s: the request's line (or row, or case number), its JSON text and,
when the history says so, the date it is to be decided as of. Reading is lazy, so a file of
any size streams through in chunks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pyarrow.parquet as pq

__all__ = ["InputError", "Item", "chunks", "count_items", "read_items", "store_items"]


class Item(NamedTuple):
    """One request to decide: where it was read, its JSON text, and its as-of date (ISO) if
    the source fixes one."""

    line: int
    text: str
    as_of: str | None = None


class InputError(ValueError):
    """A source that cannot be read at all (no such file, not Parquet, no request column)."""


# Columns of a Parquet file that hold each request as JSON text, in order of preference:
# `request_json` is what `priorauth batch decide` writes, so its output can be read again.
TEXT_COLUMNS = ("request_json", "request")


def input_format(path: Path, given: str | None = None) -> str:
    """`jsonl` or `parquet`: as given, else from the file's suffix."""
    if given:
        return given
    return "parquet" if path.suffix.lower() in (".parquet", ".pq") else "jsonl"


def read_items(path: Path, fmt: str | None = None, keep_as_of: bool = False) -> Iterator[Item]:
    """The requests in a file. Blank lines of a JSON Lines file are skipped (their numbers
    still count). `keep_as_of`: take each row's `as_of` column (a batch output) as its date."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if input_format(path, fmt) == "parquet":
        return _parquet_items(path, keep_as_of)
    return _jsonl_items(path)


def _jsonl_items(path: Path) -> Iterator[Item]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield Item(number, raw.decode("utf-8", errors="replace").strip())


def _drop_nulls(value: Any) -> Any:
    """A nested Parquet row as the request's JSON: fields absent from a row come back null."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several kinds for a file that is not Parquet
        raise InputError(f"{path}: not a Parquet file ({exc})") from exc


def _parquet_items(path: Path, keep_as_of: bool) -> Iterator[Item]:
    parquet = _parquet_file(path)
    names = parquet.schema_arrow.names
    text_column = next((c for c in TEXT_COLUMNS if c in names), None)
    has_line = "line" in names
    has_as_of = keep_as_of and "as_of" in names
    row = 0
    for batch in parquet.iter_batches(batch_size=4096):
        data = batch.to_pydict()
        for i in range(batch.num_rows):
            row += 1
            line = data["line"][i] if has_line else row
            if text_column is not None:
                text = data[text_column][i]
                if text is None:
                    text = "null"
            else:
                record = {name: data[name][i] for name in names}
                text = orjson.dumps(_drop_nulls(record), default=str).decode()
            as_of = data["as_of"][i] if has_as_of else None
            yield Item(line, text, as_of.isoformat() if isinstance(as_of, dt.date) else None)


def count_items(path: Path, fmt: str | None = None) -> int | None:
    """How many requests a file holds (for the progress bar), or None when unknown."""
    if not path.exists():
        return None
    if input_format(path, fmt) == "parquet":
        return int(_parquet_file(path).metadata.num_rows)
    count = 0
    with path.open("rb") as handle:
        for raw in handle:
            if raw.strip():
                count += 1
    return count


def store_items(database_url: str) -> Iterator[Item]:
    """The requests of every case in the store, by case number, each as of the date the
    service decided it on (the request's received date, else the case's)."""
    from sqlalchemy import select

    from priorauth.adapters.store import CaseRow
    from priorauth.adapters.store.database import DatabaseNotReady
    from priorauth.adapters.store.readiness import open_ready

    try:
        database = open_ready(database_url)
    except DatabaseNotReady as exc:
        raise InputError(str(exc)) from exc
    try:
        with database.session() as session:
            rows = session.execute(
                select(CaseRow.id, CaseRow.request_json, CaseRow.received_at).order_by(CaseRow.id)
            )
            for case_pk, text, received in rows:
                # As the service decided it: as of the request's own received date, else the
                # day the case was received.
                try:
                    own = isinstance(orjson.loads(text).get("received_at"), str)
                except (orjson.JSONDecodeError, AttributeError):
                    own = False
                yield Item(case_pk, text, None if own else received.date().isoformat())
    finally:
        database.dispose()


def chunks(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    """The items in lists of `size` (the last may be shorter)."""
    while True:
        chunk = list(islice(items, size))
        if not chunk:
            return
        yield chunk
