"""A determination as one row of the batch table, and the table's Arrow schema.

The columns a plan filters and counts on (outcome, reasons, each criterion's status, the dose
fit, the policy version and hashes) sit beside the whole determination as JSON, which is the
record: the columns are read from it, never the other way round.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import accumulate
from typing import Any

import pyarrow as pa

from priorauth.engine.determination import CriterionResult, Determination
from priorauth.engine.request import Request

__all__ = ["ERROR_SCHEMA", "SCHEMA", "determination_row", "rows_to_batch"]

CRITERION = pa.struct([("id", pa.string()), ("status", pa.string())])

SCHEMA = pa.schema(
    [
        # Where the request was read: its line in a JSON Lines file, its row in a Parquet file
        # (both from 1), or its case number in the store.
        ("line", pa.int64()),
        ("request_id", pa.string()),
        ("type", pa.string()),
        ("received_on", pa.date32()),
        ("prescriber_npi", pa.string()),
        ("service_code", pa.string()),
        ("policy_id", pa.string()),
        ("policy_version", pa.string()),
        ("policy_hash", pa.string()),
        ("safety_hash", pa.string()),
        ("as_of", pa.date32()),
        ("service_date", pa.date32()),
        ("outcome", pa.string()),
        ("reasons", pa.list_(pa.string())),
        # The reasons joined with commas ("" when approved): one value to group by in SQL.
        ("reasons_text", pa.string()),
        ("route", pa.string()),
        ("indication", pa.string()),
        ("criteria", pa.list_(CRITERION)),
        ("dose_status", pa.string()),
        ("dose_regimen", pa.string()),
        ("mg_per_dose", pa.float64()),
        ("exemption", pa.string()),
        ("request_hash", pa.string()),
        ("request_json", pa.string()),
        ("determination_json", pa.string()),
    ]
)

ERROR_SCHEMA = pa.schema([("line", pa.int64()), ("error", pa.string())])


def _criteria(node: CriterionResult | None) -> Iterator[dict[str, str]]:
    """Each node of the evaluated tree, parents before children, as {id, status}."""
    if node is None:
        return
    stack = [node]
    while stack:
        current = stack.pop()
        yield {"id": current.id, "status": current.status}
        stack.extend(reversed(current.children))


def determination_row(
    line: int, request: Request, determination: Determination, request_json: str | bytes
) -> dict[str, Any]:
    """The row for one decided request. `request_json` is the request as submitted (canonical
    JSON), so that the row can be decided again later (impact). The JSON columns are UTF-8
    bytes (Arrow's string columns take them as they are, a str would be encoded again)."""
    d = determination
    prescriber = next((p.npi for _, p in request.practitioner("prescriber") if p.npi), None)
    dosing = d.dosing
    policy = d.policy
    return {
        "line": line,
        "request_id": d.request_id,
        "type": d.type,
        "received_on": request.received_at.date() if request.received_at else None,
        "prescriber_npi": prescriber,
        "service_code": request.service.codes[0].code if request.service.codes else None,
        "policy_id": policy.id if policy else None,
        "policy_version": policy.version if policy else None,
        "policy_hash": policy.content_hash if policy else None,
        "safety_hash": policy.safety_hash if policy else None,
        "as_of": d.as_of,
        "service_date": d.service_date,
        "outcome": d.outcome,
        "reasons": list(d.reasons),
        "reasons_text": ",".join(d.reasons),
        "route": d.route,
        "indication": d.indication.id if d.indication else None,
        "criteria": list(_criteria(d.criteria)),
        "dose_status": dosing.status if dosing else None,
        "dose_regimen": dosing.regimen if dosing else None,
        "mg_per_dose": dosing.mg_per_dose if dosing else None,
        "exemption": d.exemption.program if d.exemption else None,
        "request_hash": d.request_hash,
        "request_json": request_json,
        "determination_json": d.model_dump_json_bytes(),
    }


def rows_to_batch(rows: Sequence[Mapping[str, Any]], schema: pa.Schema = SCHEMA) -> pa.RecordBatch:
    """Rows (as determination_row makes them) as one Arrow record batch of `schema` (a
    column a row lacks is null)."""
    # Column by column: a fifth of the cost of pyarrow's row-wise from_pylist here.
    columns: dict[str, Any] = {name: [row.get(name) for row in rows] for name in schema.names}
    for name in JSON_COLUMNS:
        columns[name] = _utf8_column(columns[name])
    return pa.RecordBatch.from_pydict(columns, schema=schema)


JSON_COLUMNS = ("request_json", "determination_json")


def _utf8_column(values: list[Any]) -> Any:
    """A string column of UTF-8 bytes, joined once: the bytes of a part's determinations are
    megabytes, and pyarrow's builder grows its buffer by doubling, each time onto fresh pages
    (that was three quarters of the time a batch took to become Arrow). Other values (null,
    str) take pyarrow's way."""
    if not all(type(value) is bytes for value in values):
        return values
    data = b"".join(values)
    if len(data) >= 2**31:  # beyond a string column's 32-bit offsets
        return values
    offsets = pa.array(list(accumulate(map(len, values), initial=0)), pa.int32())
    return pa.Array.from_buffers(
        pa.string(), len(values), [None, offsets.buffers()[1], pa.py_buffer(data)]
    )
