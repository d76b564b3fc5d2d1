"""What a reviewer's decision costs with its notices, and why the PDF waits until it is opened.

A denial writes two notices (provider, member). The service keeps their HTML at once and renders
each PDF (WeasyPrint) the first time it is opened. The alternative is to render both PDFs inside
the decision's unit of work, holding the write lock meanwhile. This times, on a SQLite file:

- decision: `decide` (deny with a reason code) as the service does it (HTML kept);
- decision + 2 PDFs: the same, then both PDFs rendered (what rendering at decision time adds);
- PDF alone: one `render_pdf` of a stored notice.

Contenders take turns on fresh cases so that drift on a noisy machine hits both alike; medians
in milliseconds over `--cases` cases.

    .venv/bin/python benchmarks/notices.py [--cases 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from priorauth.adapters.store import NoticeRow
from priorauth.service.config import Settings
from priorauth.service.notices import render_pdf
from priorauth.service.runtime import open_service
from priorauth.service.uow import UnitOfWork
from priorauth.service.workflow import Decision

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20)
    args = parser.parse_args()
    request = json.loads((ROOT / "examples" / "05-pended-not-covered-indication.json").read_text())
    with tempfile.TemporaryDirectory() as folder:
        service = open_service(
            Settings(database_url=f"sqlite:///{folder}/bench.db", policy_dir=ROOT / "policies")
        )
        service.add_user("clinic", "submitter", "Bench Clinic", token="t-clinic")
        service.add_user("md", "medical-director", None, "1679576722", "oncology", token="t-md")
        clinic, md = service.authenticate("t-clinic"), service.authenticate("t-md")
        timings: dict[str, list[float]] = {"decision": [], "decision + 2 PDFs": [], "PDF": []}
        render_pdf("<p>warm up</p>")
        for number in range(args.cases * 2):
            body = {**request, "request_id": f"BENCH-{number}"}
            case_id = service.submit(clinic, body, f"M-{number}").case["case_id"]
            denial = Decision("deny", "Not covered.", reason_code="not-covered-indication")
            started = time.perf_counter()
            service.decide(md, case_id, denial)
            decided = time.perf_counter() - started
            with UnitOfWork(service.database) as uow:
                htmls = list(
                    uow.session.scalars(
                        select(NoticeRow.html).order_by(NoticeRow.id.desc()).limit(2)
                    )
                )
            if number % 2:
                timings["decision"].append(decided)
            else:
                started = time.perf_counter()
                render_pdf(htmls[0])
                one = time.perf_counter() - started
                render_pdf(htmls[1])
                both = time.perf_counter() - started
                timings["PDF"].append(one)
                timings["decision + 2 PDFs"].append(decided + both)
        service.close()
    print(f"{'contender':<22}{'median ms':>10}")
    for name, values in timings.items():
        print(f"{name:<22}{1000 * statistics.median(values):>10.1f}")


if __name__ == "__main__":
    main()
