"""Da Vinci CRD over CDS Hooks: discovery, reading a hook call, the coverage answer.

`read_hook(service_id, body)` -> `HookCall` (the orders, the chart from context and prefetch);
`fetch_missing` reads what prefetch left out from the EHR's FHIR server; `chart_request` maps
one order with the chart to a priorauth request (through the PAS mapping); `coverage_answer`
turns the determination into the coverage-information extension; `eligibility` reads the
member's Coverage on the service date (`not-covered` when none is in force).
"""

from priorauth.adapters.cds.chart import Chart, ChartResult, chart_request, orders_of
from priorauth.adapters.cds.coverage import OrderAnswer, assertion_id, coverage_answer
from priorauth.adapters.cds.ehr import Fetched, fetch_missing
from priorauth.adapters.cds.eligibility import Eligibility, eligibility
from priorauth.adapters.cds.hooks import (
    COVERAGE_INFORMATION,
    HOOKS,
    PREFETCH,
    CoverageAnswer,
    HookCall,
    appointment_order,
    discovery,
    read_hook,
    render_template,
)

__all__ = [
    "COVERAGE_INFORMATION",
    "HOOKS",
    "PREFETCH",
    "Chart",
    "ChartResult",
    "CoverageAnswer",
    "Eligibility",
    "Fetched",
    "HookCall",
    "OrderAnswer",
    "appointment_order",
    "assertion_id",
    "chart_request",
    "coverage_answer",
    "discovery",
    "eligibility",
    "fetch_missing",
    "orders_of",
    "read_hook",
    "render_template",
]
