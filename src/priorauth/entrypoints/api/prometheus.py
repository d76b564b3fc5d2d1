"""`GET /metrics` in the Prometheus text format (version 0.0.4): requests by route and status,
their latencies, and the state of the work (open cases per queue, overdue cases, the outbox).

Requests are counted in this process (each worker process of a deployment is scraped apart);
the work's state is read from the database at each scrape. Labels are the method, the route
template (`/v1/requests/{case_id}`, never an id) and the status, so no health information and
no identifier reaches the metrics.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from priorauth._version import __version__
from priorauth.service.gauges import read_gauges
from priorauth.service.workflow import PriorAuthService

__all__ = ["BUCKETS", "PROMETHEUS_TEXT", "RequestMetrics", "render_metrics"]

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Latency buckets in seconds: a decision takes milliseconds; a slow database, seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    """Requests counted by method, route template and status, with their latencies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.totals: dict[tuple[str, str], int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        with self._lock:
            self.counts[(method, route, status)] += 1
            counts = self.buckets.setdefault(key, [0] * len(BUCKETS))
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[index] += 1
            self.sums[key] += seconds
            self.totals[key] += 1

    def lines(self) -> list[str]:
        with self._lock:
            counts = dict(self.counts)
            buckets = {k: list(v) for k, v in self.buckets.items()}
            sums = dict(self.sums)
            totals = dict(self.totals)
        lines = [
            "# HELP priorauth_http_requests_total HTTP requests answered, by route and status.",
            "# TYPE priorauth_http_requests_total counter",
        ]
        for (method, route, status), count in sorted(counts.items()):
            labels = f'method="{method}",route="{_escape(route)}",status="{status}"'
            lines.append(f"priorauth_http_requests_total{{{labels}}} {count}")
        lines += [
            "# HELP priorauth_http_request_duration_seconds Time to answer, by route.",
            "# TYPE priorauth_http_request_duration_seconds histogram",
        ]
        for (method, route), counts_in in sorted(buckets.items()):
            labels = f'method="{method}",route="{_escape(route)}"'
            for bound, count in zip(BUCKETS, counts_in, strict=True):
                lines.append(
                    f'priorauth_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} '
                    f"{count}"
                )
            total = totals[(method, route)]
            lines.append(
                f'priorauth_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {total}'
            )
            lines.append(
                f"priorauth_http_request_duration_seconds_sum{{{labels}}} "
                f"{sums[(method, route)]:.6f}"
            )
            lines.append(f"priorauth_http_request_duration_seconds_count{{{labels}}} {total}")
        return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(service: PriorAuthService, requests: RequestMetrics) -> str:
    """The whole exposition: build info, the request metrics, and the work's state."""
    gauges = read_gauges(service)
    lines = [
        "# HELP priorauth_build_info The running version.",
        "# TYPE priorauth_build_info gauge",
        f'priorauth_build_info{{version="{__version__}"}} 1',
    ]
    lines += requests.lines()
    lines += [
        "# HELP priorauth_queue_depth Cases waiting for a person, by queue.",
        "# TYPE priorauth_queue_depth gauge",
    ]
    for queue, count in sorted(gauges.open_by_queue.items()):
        lines.append(f'priorauth_queue_depth{{queue="{_escape(queue)}"}} {count}')
    lines += [
        "# HELP priorauth_overdue_cases Cases waiting past their due time.",
        "# TYPE priorauth_overdue_cases gauge",
        f"priorauth_overdue_cases {gauges.overdue}",
        "# HELP priorauth_outbox_backlog Subscription notifications not yet delivered.",
        "# TYPE priorauth_outbox_backlog gauge",
        f"priorauth_outbox_backlog {gauges.outbox_backlog}",
        "# HELP priorauth_outbox_failed Subscription notifications given up on.",
        "# TYPE priorauth_outbox_failed gauge",
        f"priorauth_outbox_failed {gauges.outbox_failed}",
    ]
    return "\n".join(lines) + "\n"
