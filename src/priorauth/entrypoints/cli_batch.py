"""The batch commands: `priorauth batch decide|generate`, `priorauth impact`, `priorauth
goldcard ...` and `priorauth report yearly`.

Their modules (pyarrow, DuckDB, PySpark) are imported by the commands that use them, so the
other commands start without them.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from priorauth.entrypoints.cli_common import err, fail
from priorauth.errors import PolicyError

if TYPE_CHECKING:
    from priorauth.batch.policies import PolicySource
    from priorauth.batch.runner import BatchResult
    from priorauth.batch.sources import Item, RequestFile

__all__ = ["register"]

out = Console(highlight=False, soft_wrap=True)

batch_app = typer.Typer(
    help="Decide many requests at once, to Parquet (and make requests to try it on).",
    no_args_is_help=True,
)


class Engine(StrEnum):
    local = "local"
    spark = "spark"


class InputFormat(StrEnum):
    jsonl = "jsonl"
    parquet = "parquet"


PoliciesOption = Annotated[
    Path | None,
    typer.Option(help="A folder of policy YAML files (default: the shipped policies)."),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the store (default: $PRIORAUTH_DATABASE_URL, else "
        "sqlite:///var/priorauth.db).",
    ),
]
EngineOption = Annotated[
    Engine,
    typer.Option(help="local: this machine (a process pool); spark: Apache Spark (needs Java)."),
]
MasterOption = Annotated[
    str, typer.Option(help="With --engine spark: the Spark master, e.g. local[2] or a cluster.")
]


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)")


def _database_url(given: str | None) -> str:
    from priorauth.service.config import DEFAULT_DATABASE_URL

    return given or os.environ.get("PRIORAUTH_DATABASE_URL") or DEFAULT_DATABASE_URL


def _load(source: PolicySource) -> None:
    """Load the policies once, here, so that a bad policy file is one clear error."""
    try:
        source.load()
    except PolicyError as exc:
        for issue in exc.issues:
            err.print(f"{exc.source}: {issue}", markup=False)
        fail(f"cannot load the policies: {exc}")
    except (OSError, ValueError) as exc:
        fail(f"cannot load the policies: {exc}")


def _progress(auto_refresh: bool = True) -> Progress:
    """A progress bar on stderr (shown only on a terminal): done of total, rate, time left.
    `auto_refresh` False: redrawn only when `refresh()` is called (no thread)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
        auto_refresh=auto_refresh,
    )


def _report(result: BatchResult, engine: str) -> None:
    outcomes = ", ".join(f"{n} {o}" for o, n in sorted(result.outcomes.items())) or "none"
    rate = result.decided / result.seconds if result.seconds else 0.0
    out.print(
        f"decided {result.decided} request(s) ({escape(outcomes)}) in {result.seconds:.1f} s "
        f"({rate:,.0f}/s, {engine}) -> {escape(str(result.output))}"
    )
    if not result.failed:
        return
    err.print(
        f"[yellow]{result.failed} line(s) could not be decided[/] "
        f"(all in {escape(str(result.errors_path))}):",
        markup=True,
    )
    for line, message in result.first_errors:
        err.print(f"  line {line}: {message}", markup=False)
    if result.failed > len(result.first_errors):
        err.print(f"  ... and {result.failed - len(result.first_errors)} more", markup=False)


@batch_app.command("decide")
def batch_decide(
    input: Annotated[
        Path | None,
        typer.Argument(
            help="Requests: a JSON Lines file (one request a line) or a Parquet file (a "
            "request_json or request column of JSON text, or the request's fields as columns)."
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The determinations, as Parquet.")
    ] = Path("determinations.parquet"),
    errors: Annotated[
        Path | None,
        typer.Option(
            help="Where lines that could not be decided go (default: OUTPUT.errors.jsonl)."
        ),
    ] = None,
    input_format: Annotated[
        InputFormat | None,
        typer.Option("--format", help="The input's format (default: from its suffix)."),
    ] = None,
    from_store: Annotated[
        bool, typer.Option(help="Decide the requests of every case in the store instead.")
    ] = False,
    database_url: DatabaseOption = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processes on this machine (default: one per core); 1 decides in this process.",
        ),
    ] = os.cpu_count() or 1,
    engine: EngineOption = Engine.local,
    spark_master: MasterOption = "local[2]",
    policies: PoliciesOption = None,
    exemptions: Annotated[
        Path | None,
        typer.Option(help="A gold-card exemption list (priorauth goldcard evaluate writes one)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Decide as of this date (YYYY-MM-DD); default: each request's "
            "received date (from the store: as the service decided it)."
        ),
    ] = None,
) -> None:
    """Decide many requests and write the determinations to Parquet.

    One row per request: where it was read (line), request id, policy id, version and hashes,
    outcome, reasons, each criterion's status, the dose fit, and the whole determination as
    JSON (with the request, so it can be decided again by `priorauth impact`). A line that is
    not a valid request is reported with its number and written to the errors file; the rest
    are decided. Output is written under a .partial name and renamed when complete.

    Examples:

      priorauth batch generate --count 10000 -o requests.jsonl

      priorauth batch decide requests.jsonl -o determinations.parquet --workers 2

      priorauth batch decide requests.jsonl -o out.parquet --engine spark --spark-master local[2]

    Exit code 0 when every request was decided, 2 when some could not be (or the input
    cannot be read).
    """
    from priorauth.batch.policies import PolicySource
    from priorauth.batch.sources import InputError, RequestFile, store_items

    when = _date(as_of, "--as-of")
    if (input is None) == (not from_store):
        fail("give an input file, or --from-store (not both)")
    source = PolicySource(
        str(policies) if policies else None,
        exemptions=str(exemptions) if exemptions else None,
    )
    _load(source)
    errors_path = errors or output.with_name(output.name + ".errors.jsonl")
    fmt = input_format.value if input_format else None
    try:
        if engine is Engine.spark:
            result = _decide_on_spark(
                input,
                _database_url(database_url) if from_store else None,
                fmt,
                output,
                errors_path,
                source,
                when,
                spark_master,
            )
        else:
            requests: RequestFile | Iterator[Item]
            total = None
            if input is not None:
                requests = RequestFile.open(input, fmt)
                total = requests.count()
            else:
                requests = store_items(_database_url(database_url))
            result = _decide_locally(requests, total, output, errors_path, source, workers, when)
    except InputError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    _report(result, engine.value if engine is Engine.spark else f"{workers} worker(s)")
    if result.failed:
        raise typer.Exit(2)


def _decide_locally(
    requests: RequestFile | Iterator[Item],
    total: int | None,
    output: Path,
    errors_path: Path,
    source: PolicySource,
    workers: int,
    when: dt.date | None,
) -> BatchResult:
    from priorauth.batch.runner import decide_batch

    # Redrawn after each part rather than by a thread of its own, so that the pool's workers
    # are forked from a process with one thread.
    with _progress(auto_refresh=False) as bar:
        task = bar.add_task("deciding", total=total, rate="")

        def advance(done: int) -> None:
            bar.advance(task, done)
            elapsed = bar.tasks[task].elapsed or 0.0
            completed = bar.tasks[task].completed
            bar.update(task, rate=f"{completed / elapsed:,.0f}/s" if elapsed else "")
            bar.refresh()

        return decide_batch(requests, output, errors_path, source, workers, when, progress=advance)


@contextmanager
def _spark_errors() -> Iterator[None]:
    """A failure inside Spark (the JVM, a lost executor) as one line, not a Java stack."""
    try:
        yield
    except Exception as exc:
        if not type(exc).__module__.startswith(("pyspark", "py4j")):
            raise
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        fail(f"Spark failed: {type(exc).__name__}: {first}")


def _spark_or_fail(master: str) -> Any:
    from priorauth.batch.spark import java_available, spark_session

    if not java_available():
        fail(
            "--engine spark needs Java: install a Java 17 runtime (Debian: "
            "openjdk-17-jre-headless) or set JAVA_HOME"
        )
    try:
        import pyspark  # noqa: F401
    except ImportError:
        fail("--engine spark needs PySpark: pip install 'priorauth[spark]'")
    with _spark_errors():
        return spark_session(master)


def _decide_on_spark(
    input: Path | None,
    store_url: str | None,
    fmt: str | None,
    output: Path,
    errors_path: Path,
    source: PolicySource,
    when: dt.date | None,
    master: str,
) -> BatchResult:
    from priorauth.batch.sources import store_items
    from priorauth.batch.spark import decide_on_spark, requests_frame

    spark = _spark_or_fail(master)
    with _progress() as bar, _spark_errors():
        bar.add_task(f"deciding on Spark ({master})", total=None, rate="")
        if input is not None:
            frame = requests_frame(spark, input, fmt)
        else:
            assert store_url is not None
            rows = [(i.line, i.text, i.as_of) for i in store_items(store_url)]
            frame = spark.createDataFrame(rows, "line long, text string, as_of string")
        return decide_on_spark(spark, frame, output, errors_path, source, when)


@batch_app.command("generate")
def batch_generate(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where the requests go, as JSON Lines.")
    ] = Path("requests.jsonl"),
    count: Annotated[int, typer.Option(min=1, help="How many requests.")] = 1000,
    examples: Annotated[
        Path, typer.Option(help="A folder of example request files to vary.")
    ] = Path("examples"),
    seed: Annotated[int, typer.Option(help="The same seed makes the same requests.")] = 0,
    bad: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="The share of lines that are not requests at all."),
    ] = 0.0,
) -> None:
    """Make varied requests from example requests (invented people), for trying a batch.

    Each is an example with a new id and seeded changes: the dose, an observation, condition
    or the answers left out, the patient's age, the prescriber, the received date.
    """
    from priorauth.batch.generate import example_requests, generate_lines

    if not examples.is_dir():
        fail(f"--examples: {examples} is not a folder")
    found = example_requests(examples)
    if not found:
        fail(f"--examples: no request files (*.json with a request_id) in {examples}")
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as handle:
        for line in generate_lines(found, count, seed, bad):
            handle.write(line + "\n")
    out.print(f"wrote {count} line(s) to {escape(str(output))}")


def impact(
    policy: Annotated[
        Path, typer.Option("--policy", help="The new version of a policy (a policy YAML file).")
    ],
    history: Annotated[
        Path | None,
        typer.Argument(help="A batch's determinations (Parquet from `priorauth batch decide`)."),
    ] = None,
    from_store: Annotated[
        bool, typer.Option(help="Use each case's first determination in the store instead.")
    ] = False,
    database_url: DatabaseOption = None,
    html: Annotated[
        Path | None, typer.Option(help="Also write the report as one self-contained HTML file.")
    ] = None,
    json_output: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON.")
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            help="local: decide in a process pool, analyse on DuckDB; spark: both on Spark."
        ),
    ] = Engine.local,
    spark_master: MasterOption = "local[2]",
    workers: Annotated[
        int, typer.Option(min=1, help="With --engine local: processes deciding.")
    ] = os.cpu_count() or 1,
    policies: PoliciesOption = None,
    cases: Annotated[
        int, typer.Option(min=1, help="How many cases to list behind each count.")
    ] = 50,
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the Parquet files compared (old, new, criteria) in this folder."),
    ] = None,
) -> None:
    """What a new policy version would change: the history decided again, old and new side
    by side.

    Every request of the history under the policy (a batch's Parquet, or the store's cases)
    is decided again with --policy in place of the version now in the policy folder, as of
    the date it was first decided. Printed: the versions, outcomes old x new, each change
    (e.g. approved -> pended for criteria-not-met) with its count and cases, and each
    criterion whose status changed. The same SQL runs on DuckDB (default) or Spark SQL.

    Example:

      priorauth impact --policy new/POLICY.yaml determinations.parquet --html impact.html
    """
    import json
    import tempfile

    from priorauth.batch.impact import history_from_parquet, history_from_store, run_impact
    from priorauth.batch.impact_report import impact_html, impact_tables
    from priorauth.batch.policies import PolicySource
    from priorauth.batch.sources import InputError
    from priorauth.catalog import load_policy

    if (history is None) == (not from_store):
        fail("give a history file (Parquet from batch decide), or --from-store (not both)")
    try:
        new_id = load_policy(policy).id
    except PolicyError as exc:
        for issue in exc.issues:
            err.print(f"{policy}: {issue}", markup=False)
        fail(f"{policy}: the new policy does not load ({len(exc.issues)} problem(s))")
    base = PolicySource(str(policies) if policies else None)
    _load(PolicySource(base.directory, (str(policy),)))
    try:
        if history is not None:
            table = history_from_parquet(history, new_id)
            name = str(history)
        else:
            table = history_from_store(_database_url(database_url), new_id)
            name = "the store"
    except InputError as exc:
        fail(str(exc))
    if table.num_rows == 0:
        fail(f"the history holds no request under {new_id} (or under no policy)")
    spark = _spark_or_fail(spark_master) if engine is Engine.spark else None
    with tempfile.TemporaryDirectory(prefix="priorauth-impact-") as scratch:
        work = work_dir or Path(scratch)
        with _progress() as bar, _spark_errors():
            bar.add_task(f"deciding {table.num_rows:,} again", total=None, rate="")
            report = run_impact(
                table, name, policy, base, work, workers, spark, cases_per_change=cases
            )
    out.print(impact_tables(report))
    out.print(
        f"{report.changed:,} of {report.compared:,} requests change under {report.policy_id} "
        f"version {escape(report.new_version)}"
    )
    if html is not None:
        html.write_text(impact_html(report), encoding="utf-8")
        out.print(f"HTML report: {escape(str(html))}")
    if json_output is not None:
        json_output.write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
        out.print(f"JSON report: {escape(str(json_output))}")


goldcard_app = typer.Typer(
    help="Gold cards: providers exempt from prior authorization for a service, by their "
    "approval rate over a lookback.",
    no_args_is_help=True,
)

RulesOption = Annotated[
    Path,
    typer.Option(
        "--rules",
        help="The program's rules (YAML: threshold_percent, lookback_days, minimum_requests, "
        "services, exemption_days, review_sample).",
    ),
]
HistoryOption = Annotated[
    Path | None,
    typer.Option(
        "--history",
        help="A batch's determinations (Parquet); default: the store's decided cases.",
    ),
]


def _decisions(history: Path | None, database_url: str | None) -> Any:
    from priorauth.batch.goldcard import decisions_from_parquet, decisions_from_store

    if history is not None:
        if not history.exists():
            fail(f"{history}: no such file")
        try:
            return decisions_from_parquet(history)
        except Exception as exc:  # pyarrow: not Parquet, or not a batch's columns
            fail(f"{history}: not the output of `priorauth batch decide` ({exc})")
    from priorauth.batch.goldcard import GoldCardError

    try:
        return decisions_from_store(_database_url(database_url))
    except GoldCardError as exc:
        fail(str(exc))


def _rules(path: Path) -> Any:
    from priorauth.batch.goldcard import GoldCardError, load_rules

    try:
        return load_rules(path)
    except GoldCardError as exc:
        fail(str(exc))


@goldcard_app.command("evaluate")
def goldcard_evaluate(
    rules: RulesOption,
    on: Annotated[
        str, typer.Option(help="The evaluation date (YYYY-MM-DD): exemptions start on it.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the exemption list (YAML) here."),
    ] = None,
    history: HistoryOption = None,
    database_url: DatabaseOption = None,
    all_providers: Annotated[
        bool, typer.Option("--all", help="List every provider, not only those who qualify.")
    ] = False,
) -> None:
    """Each provider's approval rate per service over the lookback, and who qualifies.

    A provider (prescriber NPI) qualifies for a service (a policy) when at least
    minimum_requests of their requests for it were decided in the lookback_days before --on
    and at least threshold_percent of those were approved. From the store, final decisions
    count (a reviewer's included; open cases do not); from a batch, the engine's outcome
    (pended counts as not approved). Requests approved as exempt are not counted.

    Example:

      priorauth goldcard evaluate --rules goldcard.yaml --on 2027-01-01 -o exemptions.yaml
    """
    import yaml
    from rich.table import Table

    from priorauth.batch.goldcard import evaluate_rates, exemption_document

    when = _date(on, "--on")
    assert when is not None
    program = _rules(rules)
    rates = evaluate_rates(_decisions(history, database_url), program, when)
    shown = rates if all_providers else [r for r in rates if r.qualifies]
    table = Table(title=f"Gold cards on {when.isoformat()}", title_justify="left")
    for column in ("NPI", "service", "requests", "approved", "%", "qualifies", "why"):
        table.add_column(
            column, justify="right" if column in ("requests", "approved", "%") else "left"
        )
    for r in shown:
        table.add_row(
            r.npi,
            r.service,
            str(r.requests),
            str(r.approved),
            f"{r.approval_percent:g}",
            "yes" if r.qualifies else "no",
            r.why,
        )
    out.print(table)
    qualified = sum(1 for r in rates if r.qualifies)
    out.print(f"{qualified} of {len(rates)} provider-service pair(s) qualify")
    if output is not None:
        document = exemption_document(rates, program, when)
        output.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        out.print(f"exemption list: {escape(str(output))}")


@goldcard_app.command("show")
def goldcard_show(
    exemptions: Annotated[Path, typer.Argument(help="An exemption list (YAML).")],
    on: Annotated[
        str | None, typer.Option(help="Only the exemptions in effect on this date.")
    ] = None,
) -> None:
    """List the exemptions of a list, with their dates and the figures they rest on."""
    from rich.table import Table

    from priorauth.batch.goldcard import GoldCardError, read_exemption_file

    when = _date(on, "--on")
    try:
        document = read_exemption_file(exemptions)
    except GoldCardError as exc:
        fail(str(exc))
    table = Table(title=f"Exemptions in {exemptions}", title_justify="left")
    for column in ("NPI", "service", "from", "through", "requests", "approved %"):
        table.add_column(column)
    for e in document.exemptions:
        if when is not None and not e.effective_from <= when <= e.effective_through:
            continue
        table.add_row(
            e.npi,
            e.service,
            e.effective_from.isoformat(),
            e.effective_through.isoformat(),
            "" if e.requests is None else str(e.requests),
            "" if e.approval_percent is None else f"{e.approval_percent:g}",
        )
    out.print(table)


@goldcard_app.command("sample")
def goldcard_sample(
    rules: RulesOption,
    npi: Annotated[str, typer.Option(help="The provider's NPI.")],
    service: Annotated[str, typer.Option(help="The service (policy id), e.g. as in the list.")],
    since: Annotated[str, typer.Option(help="Requests approved as exempt from this date.")],
    size: Annotated[
        int | None,
        typer.Option(help="How many (kept within the rules' review_sample minimum and maximum)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="The same seed draws the same sample.")] = 0,
    history: HistoryOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Draw a random sample of a provider's requests approved as exempt, for a rescission
    review (Texas: 5 to 20). Prints the case ids (store) or request ids (batch)."""
    from priorauth.batch.goldcard import review_sample

    when = _date(since, "--since")
    assert when is not None
    program = _rules(rules)
    chosen, available = review_sample(
        _decisions(history, database_url), npi, service, when, program, size, seed
    )
    out.print(
        f"{len(chosen)} of {available} request(s) approved as exempt for NPI {npi}, "
        f"{escape(service)}, since {when.isoformat()}:"
    )
    for reference in chosen:
        out.print(f"  {escape(reference)}")
    if available < program.review_sample.minimum:
        err.print(
            f"fewer than the rules' minimum sample ({program.review_sample.minimum}): all are "
            "listed",
            markup=False,
        )


report_app = typer.Typer(help="Reports for the public and regulators.", no_args_is_help=True)


@report_app.command("yearly")
def report_yearly(
    year: Annotated[int, typer.Option(min=2000, max=2199, help="The calendar year reported.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="The folder the CSV and HTML files go to.")
    ] = Path(),
    database_url: DatabaseOption = None,
) -> None:
    """The CMS-0057-F yearly report from the store: the drugs that need prior
    authorization and the eight figures, as CSV and HTML.

    Writes prior-authorization-YEAR-items.csv (one drug a row, with its policy),
    prior-authorization-YEAR-figures.csv (each figure with its numerator and denominator) and
    prior-authorization-YEAR.html. Requests count in the year of their first decision.
    """
    from dataclasses import replace

    from priorauth.batch.yearly import YearlyReport, figures_csv, items_csv, yearly_html
    from priorauth.service.config import Settings
    from priorauth.service.people import Actor
    from priorauth.service.runtime import running_service

    try:
        settings = replace(Settings.from_env(), database_url=_database_url(database_url))
    except ValueError as exc:
        fail(str(exc))
    start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    from priorauth.adapters.store import DatabaseNotReady

    try:
        with running_service(settings, upgrade=False) as service:
            metrics = service.metrics(Actor(0, "cli", "admin", None, None, None), start, end)
            policies = [c.policy for c in service.policies.policies]
    except DatabaseNotReady as exc:
        fail(str(exc))
    report = YearlyReport.build(year, policies, metrics)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        out_dir / f"prior-authorization-{year}-items.csv": items_csv(report),
        out_dir / f"prior-authorization-{year}-figures.csv": figures_csv(report),
        out_dir / f"prior-authorization-{year}.html": yearly_html(report),
    }
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    for figure in report.figures:
        value = "-" if figure.value is None else f"{figure.value:g} {figure.unit}"
        out.print(f"{figure.number}. {escape(figure.name)}: {value}")
    out.print(f"{len(report.items)} item(s) need prior authorization")
    for path in files:
        out.print(f"wrote {escape(str(path))}")


def register(app: typer.Typer) -> None:
    """Add the batch commands to the `priorauth` command."""
    app.add_typer(batch_app, name="batch")
    app.command()(impact)
    app.add_typer(goldcard_app, name="goldcard")
    app.add_typer(report_app, name="report")
