"""Where a batch's requests come from: a JSON Lines file, a Parquet file, or the store.

Each source yields `Item`s: the request's line (or row, or case number), its JSON text and,
when the history says so, the date it is to be decided as of. Reading is lazy, so a file of
any size streams through in chunks.

A file is also split into `Part`s, each a chunk of requests that whoever decides it reads for
itself: a byte range of a JSON Lines file (with the number of its first line), or a slice of
one row group of a Parquet file. A pool worker is handed a part (a few numbers), not the
requests, so the process that runs the pool reads and sends nothing but those numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "InputError",
    "Item",
    "ItemsPart",
    "JsonlPart",
    "ParquetPart",
    "Part",
    "RequestFile",
    "chunks",
    "count_items",
    "item_parts",
    "read_items",
    "read_part",
    "store_items",
]


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
                yield _jsonl_item(number, raw)


def _jsonl_item(number: int, raw: bytes) -> Item:
    return Item(number, raw.decode("utf-8", errors="replace").strip())


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


def _parquet_columns(names: list[str], keep_as_of: bool) -> list[str]:
    """The columns a request is read from: its text column (with `line` and `as_of` when
    present and wanted), else every column (the request's fields)."""
    text_column = next((c for c in TEXT_COLUMNS if c in names), None)
    if text_column is None:
        return names
    wanted = {text_column, "line"} | ({"as_of"} if keep_as_of else set())
    return [name for name in names if name in wanted]


def _parquet_items(path: Path, keep_as_of: bool) -> Iterator[Item]:
    parquet = _parquet_file(path)
    columns = _parquet_columns(parquet.schema_arrow.names, keep_as_of)
    row = 0
    for batch in parquet.iter_batches(batch_size=4096, columns=columns):
        yield from _batch_items(batch, row + 1, keep_as_of)
        row += batch.num_rows


def _batch_items(batch: pa.RecordBatch | pa.Table, first_row: int, keep_as_of: bool) -> list[Item]:
    """The requests of some rows of a Parquet file, the first of them its row `first_row`."""
    names = batch.schema.names
    data = batch.to_pydict()
    text_column = next((c for c in TEXT_COLUMNS if c in names), None)
    has_line = "line" in names
    has_as_of = keep_as_of and "as_of" in names
    items = []
    for i in range(batch.num_rows):
        line = data["line"][i] if has_line else first_row + i
        if text_column is not None:
            text = data[text_column][i]
            if text is None:
                text = "null"
        else:
            record = {name: data[name][i] for name in names}
            text = orjson.dumps(_drop_nulls(record), default=str).decode()
        as_of = data["as_of"][i] if has_as_of else None
        items.append(Item(line, text, as_of.isoformat() if isinstance(as_of, dt.date) else None))
    return items


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


class JsonlPart(NamedTuple):
    """Bytes `start` to `end` of a JSON Lines file, whose first line is line `first_line`."""

    path: str
    start: int
    end: int
    first_line: int


class ParquetPart(NamedTuple):
    """Rows `offset` to `offset + length` of row group `group` of a Parquet file, the first of
    them the file's row `first_row` (from 1)."""

    path: str
    group: int
    offset: int
    length: int
    first_row: int
    keep_as_of: bool


class ItemsPart(NamedTuple):
    """Requests already read (from the store, say), handed over as they are."""

    items: list[Item]


Part = JsonlPart | ParquetPart | ItemsPart


def read_part(part: Part) -> list[Item]:
    """The requests of a part, as `read_items` gives them for the whole file."""
    if isinstance(part, ItemsPart):
        return part.items
    if isinstance(part, JsonlPart):
        with Path(part.path).open("rb") as handle:
            handle.seek(part.start)
            block = handle.read(part.end - part.start)
        lines = block.split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # the newline that ends the last line starts no line
        return [
            _jsonl_item(number, raw)
            for number, raw in enumerate(lines, start=part.first_line)
            if raw.strip()
        ]
    stat = Path(part.path).stat()
    group = _row_group(part.path, part.group, part.keep_as_of, stat.st_mtime_ns, stat.st_size)
    rows = group.slice(part.offset, part.length)
    return _batch_items(rows, part.first_row, part.keep_as_of)


@lru_cache(maxsize=1)
def _row_group(path: str, group: int, keep_as_of: bool, mtime: int, size: int) -> pa.Table:
    """One row group's request columns; kept while its parts are read (a worker is handed
    the parts of a large row group one after another). The file's time and size are in the
    key, so a file written again is read again."""
    parquet = _parquet_file(Path(path))
    columns = _parquet_columns(parquet.schema_arrow.names, keep_as_of)
    return parquet.read_row_group(group, columns=columns, use_threads=False)


def item_parts(items: Iterable[Item], size: int) -> Iterator[ItemsPart]:
    """Requests already read, in parts of `size`."""
    for chunk in chunks(iter(items), size):
        yield ItemsPart(chunk)


@dataclass(frozen=True, slots=True)
class RequestFile:
    """A JSON Lines or Parquet file of requests, decided part by part: `parts()` splits it
    without reading the requests, and whoever decides a part reads it (`read_part`)."""

    path: Path
    format: str
    keep_as_of: bool = False

    @classmethod
    def open(cls, path: Path, fmt: str | None = None, keep_as_of: bool = False) -> RequestFile:
        """The file, checked: InputError when it does not exist or is not Parquet."""
        if not path.exists():
            raise InputError(f"{path}: no such file")
        chosen = input_format(path, fmt)
        if chosen == "parquet":
            _parquet_file(path)
        return cls(path, chosen, keep_as_of)

    def items(self) -> Iterator[Item]:
        """Every request, in order (what `read_items` gives)."""
        return read_items(self.path, self.format, self.keep_as_of)

    def count(self) -> int | None:
        return count_items(self.path, self.format)

    def parts(self, size: int) -> Iterator[Part]:
        """The file in parts of `size` requests (a JSON Lines part's blank lines aside; a
        Parquet part never spans row groups, so a row group smaller than `size` is a part)."""
        if self.format == "parquet":
            return self._parquet_parts(size)
        return self._jsonl_parts(size)

    def _jsonl_parts(self, size: int) -> Iterator[Part]:
        path = str(self.path)
        with self.path.open("rb") as handle:
            start = offset = count = 0
            first = 1
            for number, raw in enumerate(handle, start=1):
                offset += len(raw)
                if raw.strip():
                    count += 1
                    if count == size:
                        yield JsonlPart(path, start, offset, first)
                        start, first, count = offset, number + 1, 0
            if count:
                yield JsonlPart(path, start, offset, first)

    def _parquet_parts(self, size: int) -> Iterator[Part]:
        metadata = _parquet_file(self.path).metadata
        row = 1
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            for offset in range(0, rows, size):
                length = min(size, rows - offset)
                yield ParquetPart(str(self.path), group, offset, length, row, self.keep_as_of)
                row += length
