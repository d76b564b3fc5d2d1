"""Deciding a batch: in this process or a process pool, written to Parquet.

Every path (this process, the pool, Spark) decides a chunk with `decide_chunk`, so the
determinations are the same whichever ran them. A request that cannot be decided (not JSON,
not a request) becomes an error with its line and one line of text, never a traceback.

Nothing half-written is ever left under the output's name: the Parquet file (one row group
per chunk) and the errors file are written beside it under `.partial` names and renamed when
complete.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from priorauth.batch.policies import PolicySource
from priorauth.batch.rows import SCHEMA, determination_row, rows_to_batch
from priorauth.batch.sources import Item, chunks
from priorauth.catalog import PolicySet
from priorauth.engine.request import parse_request
from priorauth.errors import InvalidRequest

__all__ = [
    "BatchResult",
    "ParquetOutput",
    "decide_batch",
    "decide_chunk",
    "decide_items",
    "one_line",
]

CHUNK = 1000


def one_line(text: str) -> str:
    """A message on one line (problems joined with `; `)."""
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def decide_items(
    policies: PolicySet, items: Iterable[Item], as_of: dt.date | None = None
) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Decide each item: (rows, errors as (line, message)). The as-of date is `as_of` if
    given, else the item's own, else the request's received date, else today."""
    rows: list[dict[str, Any]] = []
    errors: list[tuple[int, str]] = []
    for item in items:
        try:
            data = orjson.loads(item.text)
        except orjson.JSONDecodeError as exc:
            errors.append((item.line, f"not valid JSON: {one_line(str(exc))}"))
            continue
        try:
            request = parse_request(data)
            when = as_of or (dt.date.fromisoformat(item.as_of) if item.as_of else None)
            if when is None:
                when = request.received_at.date() if request.received_at else dt.date.today()
            determination = policies.decide(request, when, data)
        except InvalidRequest as exc:
            errors.append((item.line, f"invalid request: {one_line(str(exc))}"))
            continue
        except Exception as exc:  # a fault of ours: reported with the line, the batch goes on
            errors.append((item.line, f"not decided: {type(exc).__name__}: {one_line(str(exc))}"))
            continue
        text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
        rows.append(determination_row(item.line, request, determination, text))
    return rows, errors


def decide_chunk(
    source: PolicySource, items: list[Item], as_of: dt.date | None = None
) -> tuple[pa.RecordBatch, list[tuple[int, str]]]:
    """Decide a chunk under a policy source (loaded once per process): an Arrow record batch
    of SCHEMA and the errors. What a pool worker runs."""
    rows, errors = decide_items(source.load(), items, as_of)
    return rows_to_batch(rows), errors


def _warm(source: PolicySource) -> None:
    source.load()


def partial_name(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


class ParquetOutput:
    """The determinations file and the errors file (JSON Lines: line, error), each written
    under a `.partial` name and renamed by `close()`; `abandon()` removes them."""

    def __init__(self, output: Path, errors: Path) -> None:
        self.output = output
        self.errors = errors
        output.parent.mkdir(parents=True, exist_ok=True)
        errors.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(partial_name(output), SCHEMA, compression="zstd")
        self._errors = partial_name(errors).open("wb")

    def write(self, batch: pa.RecordBatch, errors: list[tuple[int, str]]) -> None:
        if batch.num_rows:
            self._writer.write_batch(batch)
        for line, message in errors:
            self._errors.write(orjson.dumps({"line": line, "error": message}) + b"\n")
        self._errors.flush()

    def close(self) -> None:
        self._writer.close()
        self._errors.close()
        partial_name(self.output).replace(self.output)
        partial_name(self.errors).replace(self.errors)

    def abandon(self) -> None:
        self._writer.close()
        self._errors.close()
        partial_name(self.output).unlink(missing_ok=True)
        partial_name(self.errors).unlink(missing_ok=True)


@dataclass
class BatchResult:
    """What a batch did: how many were decided, by outcome, the errors (first ones kept)."""

    output: Path
    errors_path: Path
    decided: int = 0
    failed: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    first_errors: list[tuple[int, str]] = field(default_factory=list)

    def add(self, batch: pa.RecordBatch, errors: list[tuple[int, str]]) -> None:
        self.decided += batch.num_rows
        self.failed += len(errors)
        self.outcomes.update(batch.column("outcome").to_pylist())
        room = 20 - len(self.first_errors)
        if room > 0:
            self.first_errors.extend(errors[:room])


def _pooled(
    source: PolicySource, pieces: Iterator[list[Item]], as_of: dt.date | None, workers: int
) -> Iterator[tuple[pa.RecordBatch, list[tuple[int, str]]]]:
    """Chunks decided in a pool of processes, in input order, a few chunks in flight each."""
    # A fork server (not a plain fork of this process, which may hold threads): it imports
    # the engine once, and each worker forked from it starts with the modules loaded.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["priorauth.batch.runner"])
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_warm, initargs=(source,)
    ) as pool:
        pending: list[Future[tuple[pa.RecordBatch, list[tuple[int, str]]]]] = []
        for piece in pieces:
            pending.append(pool.submit(decide_chunk, source, piece, as_of))
            if len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        while pending:
            yield pending.pop(0).result()


def decide_batch(
    items: Iterator[Item],
    output: Path,
    errors_path: Path,
    source: PolicySource,
    workers: int = 1,
    as_of: dt.date | None = None,
    chunk_size: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> BatchResult:
    """Decide every item and write the determinations (Parquet) and the errors (JSON Lines).

    `workers` 1 decides in this process; more use a pool of that many processes. `progress`
    is called with the number of requests done after each chunk. PolicyError when the
    policies do not load.
    """
    source.load()  # a policy that does not load is reported before anything starts
    result = BatchResult(output, errors_path)
    started = time.perf_counter()
    sink = ParquetOutput(output, errors_path)
    try:
        pieces = chunks(items, chunk_size)
        if workers <= 1:
            decided: Iterator[tuple[pa.RecordBatch, list[tuple[int, str]]]] = (
                decide_chunk(source, piece, as_of) for piece in pieces
            )
        else:
            decided = _pooled(source, pieces, as_of, workers)
        for batch, errors in decided:
            sink.write(batch, errors)
            result.add(batch, errors)
            if progress is not None:
                progress(batch.num_rows + len(errors))
    except BaseException:
        sink.abandon()
        raise
    sink.close()
    result.seconds = time.perf_counter() - started
    return result
