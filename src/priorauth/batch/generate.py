"""Varied requests made from example requests, for tests, benchmarks and demonstrations.

Each generated request is an example with a new id and some changes drawn from a seeded random
generator: another dose, an observation or a condition left out, the answers left out, an
older or younger patient, another prescriber, an earlier received date. The same seed gives the
same requests. Some requests may come out invalid (a dose of zero, say); that is a case a batch
must handle too. `bad` adds lines that are not requests at all.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = ["example_requests", "generate_lines", "make_npi"]


def make_npi(nine_digits: int) -> str:
    """A valid NPI from nine digits: the tenth is the Luhn check digit over 80840 + the nine."""
    body = f"{nine_digits:09d}"
    total = 0
    # The check digit will be the rightmost, so from the right of the body the first digit is
    # doubled.
    for place, digit in enumerate(reversed("80840" + body)):
        value = int(digit) * (1 if place % 2 else 2)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def example_requests(folder: Path) -> list[dict[str, Any]]:
    """The request documents (JSON objects with a `request_id`) in a folder, by file name."""
    found = []
    for path in sorted(folder.glob("*.json")):
        data = orjson.loads(path.read_bytes())
        if isinstance(data, dict) and "request_id" in data:
            found.append(data)
    return found


PRESCRIBERS = [make_npi(100_000_001 + 7 * i) for i in range(40)]
DOSE_FACTORS = (0.5, 0.8, 1.0, 1.0, 1.0, 1.0, 1.2, 1.6, 2.5)
BAD_LINES = (
    "{not json",
    '["a list, not a request"]',
    '{"request_id": "", "service": {}}',
    '{"request_id": "BAD-1", "service": {"code": "J9999", "dose": {"value": -1, "unit": "mg"}}}',
)


def _vary(base: Mapping[str, Any], number: int, rng: random.Random) -> dict[str, Any]:
    request = copy.deepcopy(dict(base))
    request["request_id"] = f"GEN-{number:07d}"
    service = request.get("service", {})
    dose = service.get("dose")
    if isinstance(dose, dict) and isinstance(dose.get("value"), int | float):
        dose["value"] = round(dose["value"] * rng.choice(DOSE_FACTORS), 2)
    if request.get("observations") and rng.random() < 0.15:
        del request["observations"][rng.randrange(len(request["observations"]))]
    if request.get("conditions") and rng.random() < 0.1:
        del request["conditions"][rng.randrange(len(request["conditions"]))]
    if request.get("answers") and rng.random() < 0.1:
        del request["answers"]
    patient = request.get("patient")
    if isinstance(patient, dict) and "birth_date" in patient and rng.random() < 0.2:
        born = dt.date.fromisoformat(patient["birth_date"])
        patient["birth_date"] = born.replace(year=born.year + rng.randint(-20, 50)).isoformat()
    for practitioner in request.get("practitioners", []):
        if practitioner.get("role", "prescriber") == "prescriber":
            practitioner["npi"] = rng.choice(PRESCRIBERS)
    received = request.get("received_at")
    if isinstance(received, str):
        # The whole request moves back in time together (its start date, lab and therapy
        # dates), so a start stays as near the day received as the example's was.
        back = dt.timedelta(days=rng.randint(0, 300))
        when = dt.datetime.fromisoformat(received.replace("Z", "+00:00"))
        when -= back + dt.timedelta(minutes=rng.randint(0, 1440))
        request = _shifted(request, back)
        request["received_at"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return request


def _shifted(value: Any, back: dt.timedelta, key: str = "") -> Any:
    """Every calendar date in a request moved `back` (birth dates stay)."""
    if isinstance(value, dict):
        return {k: _shifted(v, back, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shifted(v, back, key) for v in value]
    if isinstance(value, str) and key != "birth_date" and len(value) == 10:
        try:
            return (dt.date.fromisoformat(value) - back).isoformat()
        except ValueError:
            return value
    return value


def generate_lines(
    examples: Sequence[Mapping[str, Any]], count: int, seed: int = 0, bad: float = 0.0
) -> Iterator[str]:
    """`count` JSON Lines: requests varied from the examples in turn; a share `bad` of them
    lines that are not requests."""
    if not examples:
        raise ValueError("no example requests to vary")
    rng = random.Random(seed)
    for number in range(1, count + 1):
        if bad and rng.random() < bad:
            yield rng.choice(BAD_LINES)
            continue
        base = examples[(number - 1) % len(examples)]
        yield orjson.dumps(_vary(base, number, rng)).decode()
