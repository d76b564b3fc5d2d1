"""Deciding a batch: in this process or a process pool, written to Parquet.

Every path (this process, the pool, Spark) decides a chunk with `decide_items`, so the
determinations are the same whichever ran them. A request that cannot be decided (not JSON,
not a request) becomes an error with its line and one line of text, never a traceback.

A batch read from a file is decided part by part (`sources.RequestFile.parts`): each pool
worker reads its own part of the file, validates, decides and builds the part's Arrow record
batch, and hands back that batch (Arrow IPC bytes), its errors and its outcome counts. This
process only splits the file, writes the batches in the order of the parts, and counts. The
workers are forked from this process (where the platform can fork), so they start with the
policies already loaded; elsewhere each loads them once, when it starts.

Nothing half-written is ever left under the output's name: the Parquet file (one row group
per part) and the errors file are written beside it under `.partial` names and renamed when
complete.
"""

from __future__ import annotations

import datetime as dt
import gc
import multiprocessing
import shutil
import tempfile
import time
import warnings
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from priorauth.batch.policies import PolicySource
from priorauth.batch.rows import SCHEMA, determination_row, rows_to_batch
from priorauth.batch.sources import Item, Part, RequestFile, item_parts, read_part
from priorauth.catalog import PolicySet
from priorauth.engine.request import parse_request
from priorauth.errors import InvalidRequest

__all__ = [
    "BatchResult",
    "Decided",
    "ParquetOutput",
    "decide_batch",
    "decide_items",
    "decide_part",
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
        text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        rows.append(determination_row(item.line, request, determination, text))
    return rows, errors


class Decided(NamedTuple):
    """A part decided: its rows as one record batch of SCHEMA, its errors as (line, message),
    and how many rows had each outcome."""

    batch: pa.RecordBatch
    errors: list[tuple[int, str]]
    outcomes: Counter[str]


def decide_part(policies: PolicySet, part: Part, as_of: dt.date | None = None) -> Decided:
    """Read a part of the input and decide it: what this process, and each pool worker, runs
    on each part."""
    rows, errors = decide_items(policies, read_part(part), as_of)
    batch = rows_to_batch(rows)
    return Decided(batch, errors, Counter(row["outcome"] for row in rows))


# What a pool worker hands back: the file holding its record batch (Arrow IPC), the errors,
# the outcome counts.
Shipped = tuple[str, list[tuple[int, str]], dict[str, int]]


@dataclass(frozen=True, slots=True)
class _Worker:
    policies: PolicySet
    as_of: dt.date | None
    spool: Path


_worker: _Worker | None = None


def _start_worker(source: PolicySource, as_of: dt.date | None, spool: str) -> None:
    """A pool worker's start: the policies (already loaded when forked), and the objects they
    are made of moved out of the collector's sight (they live as long as the worker)."""
    global _worker
    _worker = _Worker(source.load(), as_of, Path(spool))
    gc.freeze()


def _decide_shipped(index: int, part: Part) -> Shipped:
    """Decide a part in a pool worker. Its record batch goes to a file in the spool folder,
    which the parent maps into memory: a determination's JSON is kilobytes, and a pipe would
    copy each part's megabytes several times on each side."""
    assert _worker is not None, "a pool worker decides only after _start_worker"
    batch, errors, outcomes = decide_part(_worker.policies, part, _worker.as_of)
    path = _worker.spool / f"{index}.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return str(path), errors, dict(outcomes)


def _unship(shipped: Shipped) -> Decided:
    path, errors, outcomes = shipped
    batch = pa.ipc.open_file(pa.memory_map(path)).get_batch(0)
    Path(path).unlink()  # the mapping stays readable until the batch is let go
    return Decided(batch, errors, Counter(outcomes))


# Columns whose values repeat (outcomes, policy versions, dates, ...) are dictionary-encoded;
# those unique to each row (the request and determination JSON, hashes, ids) are not: building
# a dictionary of kilobyte strings that never repeat was a third of the Parquet writer's time.
UNIQUE_COLUMNS = {"line", "request_id", "request_hash", "request_json", "determination_json"}
DICTIONARY_COLUMNS = [name for name in SCHEMA.names if name not in UNIQUE_COLUMNS]


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
        self._writer = pq.ParquetWriter(
            partial_name(output), SCHEMA, compression="zstd", use_dictionary=DICTIONARY_COLUMNS
        )
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

    def add(self, decided: Decided) -> None:
        self.decided += decided.batch.num_rows
        self.failed += len(decided.errors)
        self.outcomes.update(decided.outcomes)
        room = 20 - len(self.first_errors)
        if room > 0:
            self.first_errors.extend(decided.errors[:room])


def _pool_context() -> BaseContext:
    """Fork where the platform can: a worker then starts as a copy of this process, the
    policies loaded, in milliseconds. Elsewhere a fork server (or spawn), each worker loading
    the policies once."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["priorauth.batch.runner"])
        return context
    return multiprocessing.get_context("spawn")


def _pooled(
    source: PolicySource, parts: Iterator[Part], as_of: dt.date | None, workers: int
) -> Generator[Decided, None, None]:
    """Parts decided in a pool of processes, in input order, two parts in flight a worker."""
    spool = tempfile.mkdtemp(prefix="priorauth-batch-")
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_pool_context(),
        initializer=_start_worker,
        initargs=(source, as_of, spool),
    )
    pending: deque[Future[Shipped]] = deque()
    try:
        for index, part in enumerate(parts):
            with warnings.catch_warnings():
                # Python 3.12+ warns when a process with threads forks (its first submit forks
                # the workers). The workers run only the batch's code, which takes no lock
                # another thread of this process may hold.
                warnings.filterwarnings("ignore", ".*fork", DeprecationWarning)
                pending.append(pool.submit(_decide_shipped, index, part))
            if len(pending) >= 2 * workers:
                yield _unship(pending.popleft().result())
        while pending:
            yield _unship(pending.popleft().result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(spool, ignore_errors=True)


def decide_batch(
    requests: RequestFile | Iterable[Item],
    output: Path,
    errors_path: Path,
    source: PolicySource,
    workers: int = 1,
    as_of: dt.date | None = None,
    chunk_size: int = CHUNK,
    progress: Callable[[int], None] | None = None,
    pool: bool | None = None,
) -> BatchResult:
    """Decide every request and write the determinations (Parquet) and the errors (JSON Lines).

    `requests`: a file (each worker reads its own parts of it), or requests already read
    (handed to the workers in parts). `workers` 1 decides in this process; more use a pool of
    that many processes (`pool` True: a pool even of one, to measure what the pool costs).
    `progress` is called with the number of requests done after each
    part. The output is the same, row for row and byte for byte, whichever way it was decided.
    PolicyError when the policies do not load.
    """
    policies = source.load()  # a policy that does not load is reported before anything starts
    result = BatchResult(output, errors_path)
    started = time.perf_counter()
    # The policies, modules and everything else alive now outlive the batch: out of the
    # collector's sight while it runs, they are not walked again at each full collection
    # (and a forked worker does not copy their pages by touching them).
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    parts: Iterator[Part] = (
        requests.parts(chunk_size)
        if isinstance(requests, RequestFile)
        else item_parts(requests, chunk_size)
    )
    pooled = workers > 1 if pool is None else pool
    decided: Generator[Decided, None, None] = (
        _pooled(source, parts, as_of, workers)
        if pooled
        else (decide_part(policies, part, as_of) for part in parts)
    )
    sink = ParquetOutput(output, errors_path)
    try:
        for one in decided:
            sink.write(one.batch, one.errors)
            result.add(one)
            if progress is not None:
                progress(one.batch.num_rows + len(one.errors))
    except BaseException:
        sink.abandon()
        raise
    finally:
        decided.close()  # the pool shut down now, not when the generator is collected
        if freeze:
            gc.unfreeze()
    sink.close()
    result.seconds = time.perf_counter() - started
    return result
