"""Read what prefetch left out from the EHR's FHIR server (the hook's fhirServer and token).

Only hosts the plan allows are read (PRIORAUTH_CRD_FHIR_HOSTS; loopback by default), redirects
are never followed (the token would go with them), and the reads of one call share a time
budget of 4 seconds (3 at most each): what cannot be read stays unknown, and the answer says
so.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from priorauth.adapters.cds.hooks import HookCall, render_template

__all__ = ["Fetched", "fetch_missing"]

_TIMEOUT_SECONDS = 3.0
# All reads of one call together: CRD answers within 5 seconds.
_BUDGET_SECONDS = 4.0
_MAX_BYTES = 5_000_000


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True, slots=True)
class Fetched:
    """What was read for the missing prefetch keys, and the keys that could not be read."""

    read: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]


def _get(url: str, token: str, timeout: float) -> object:
    request = urllib.request.Request(
        url,
        headers={"Accept": "application/fhir+json", "Authorization": f"Bearer {token}"},
    )
    with _OPENER.open(request, timeout=timeout) as response:
        if response.status != 200:
            raise urllib.error.HTTPError(url, response.status, "not 200", response.headers, None)
        return orjson.loads(response.read(_MAX_BYTES + 1)[:_MAX_BYTES])


def fetch_missing(
    call: HookCall, templates: dict[str, str], allowed_hosts: Iterable[str]
) -> Fetched:
    """Read each missing prefetch key from the EHR into the call's chart, when the call names
    a FHIR server on an allowed host and a token. Never raises: a failure is listed."""
    keys = [k for k in call.missing_prefetch if k in templates]
    if not keys:
        return Fetched((), ())
    if call.fhir_server is None or call.access_token is None:
        return Fetched((), tuple((k, "no fhirServer and token to read it from") for k in keys))
    host = (urlsplit(call.fhir_server).hostname or "").lower()
    if host not in {h.lower() for h in allowed_hosts}:
        reason = "the FHIR server's host is not one the plan reads (PRIORAUTH_CRD_FHIR_HOSTS)"
        return Fetched((), tuple((k, reason) for k in keys))
    base = call.fhir_server.rstrip("/")
    read: list[str] = []
    failed: list[tuple[str, str]] = []
    deadline = time.monotonic() + _BUDGET_SECONDS
    for key in keys:
        if time.monotonic() >= deadline:
            failed.append((key, "not read: the time for reading the chart ran out"))
            continue
        path = render_template(templates[key], call)
        if path is None:
            continue  # a template for another kind of user (a role, not a practitioner)
        try:
            timeout = min(_TIMEOUT_SECONDS, max(0.1, deadline - time.monotonic()))
            document = _get(f"{base}/{path}", call.access_token, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                read.append(key)  # nothing there: an empty answer, not a failure
                continue
            failed.append((key, f"the FHIR server answered {exc.code}"))
            continue
        except (OSError, ValueError) as exc:
            failed.append((key, f"the FHIR server could not be read ({type(exc).__name__})"))
            continue
        before = len(call.chart.problems)
        call.chart.add(document, f"fetched.{key}")
        if any(p.blocking for p in call.chart.problems[before:]):
            failed.append((key, "the FHIR server's answer could not be read"))
            del call.chart.problems[before:]
            continue
        read.append(key)
    return Fetched(tuple(read), tuple(failed))
