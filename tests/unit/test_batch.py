"""`priorauth batch decide` in this process and in a process pool: the rows, the errors, the
output files, and the two paths giving the same determinations."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from priorauth import Determination, PolicySet
from priorauth.batch.generate import example_requests, generate_lines, make_npi
from priorauth.batch.policies import PolicySource
from priorauth.batch.rows import SCHEMA
from priorauth.batch.runner import decide_batch, partial_name
from priorauth.batch.sources import InputError, Item, RequestFile, read_items, read_part
from priorauth.clinical.codes import npi_is_valid
from priorauth.entrypoints.cli import app
from tests.batch_helpers import EXAMPLES, by_line, write_requests

runner = CliRunner()


def test_each_row_carries_the_determination_and_its_columns(
    tmp_path: Path, policies: PolicySet
) -> None:
    request = json.loads((EXAMPLES / "04-pended-criteria-not-met-age.json").read_text())
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps(request) + "\n")
    result = decide_batch(
        read_items(source), tmp_path / "out.parquet", tmp_path / "err.jsonl", PolicySource()
    )
    assert (result.decided, result.failed) == (1, 0)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.equals(SCHEMA)
    row = table.to_pylist()[0]
    expected = policies.evaluate(request)
    assert row["determination_json"] == expected.model_dump_json()
    assert Determination.model_validate(orjson.loads(row["determination_json"])) == expected
    assert row["outcome"] == "pended"
    assert row["reasons"] == ["criteria-not-met"]
    assert row["reasons_text"] == "criteria-not-met"
    assert expected.policy is not None
    assert (row["policy_id"], row["policy_version"], row["policy_hash"]) == (
        expected.policy.id,
        expected.policy.version,
        expected.policy.content_hash,
    )
    assert row["request_hash"] == expected.request_hash
    assert row["line"] == 1
    assert row["prescriber_npi"] == request["practitioners"][0]["npi"]
    # Every node of the tree, the root first, with its status.
    assert expected.criteria is not None
    assert row["criteria"][0] == {"id": expected.criteria.id, "status": expected.criteria.status}
    assert {c["status"] for c in row["criteria"]} <= {"met", "not-met", "unknown"}
    assert "not-met" in {c["status"] for c in row["criteria"]}
    assert expected.dosing is not None
    assert row["dose_status"] == expected.dosing.status
    assert row["exemption"] is None
    # The request kept as submitted, so it can be decided again.
    assert orjson.loads(row["request_json"]) == request


def test_bad_lines_are_reported_by_number_and_the_rest_decided(tmp_path: Path) -> None:
    good = (EXAMPLES / "01-approved-every-3-weeks.json").read_text().replace("\n", " ")
    source = tmp_path / "mixed.jsonl"
    source.write_text(
        "\n".join(
            [
                good,
                "{not json",
                "",
                '["a list"]',
                '{"request_id": "X", "service": {"code": "J9999", "dose": {"value": 0, '
                '"unit": "mg"}}}',
                good,
            ]
        )
        + "\n"
    )
    result = decide_batch(
        read_items(source), tmp_path / "out.parquet", tmp_path / "err.jsonl", PolicySource()
    )
    assert (result.decided, result.failed) == (2, 3)
    errors = [json.loads(line) for line in (tmp_path / "err.jsonl").read_text().splitlines()]
    assert [e["line"] for e in errors] == [2, 4, 5]
    assert errors[0]["error"].startswith("not valid JSON")
    assert errors[1]["error"] == "invalid request: a request is a JSON object"
    assert "service.dose.value" in errors[2]["error"]
    assert all("\n" not in e["error"] and "Traceback" not in e["error"] for e in errors)
    # The blank line 3 is skipped but counted.
    assert sorted(by_line(tmp_path / "out.parquet")) == [1, 6]


def test_nothing_is_left_under_the_output_name_when_a_batch_fails(tmp_path: Path) -> None:
    def items() -> object:
        yield Item(1, (EXAMPLES / "01-approved-every-3-weeks.json").read_text())
        raise RuntimeError("the input went away")

    output = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        decide_batch(items(), output, tmp_path / "err.jsonl", PolicySource(), chunk_size=1)  # type: ignore[arg-type]
    assert not output.exists()
    assert not partial_name(output).exists()
    assert not (tmp_path / "err.jsonl").exists()


def test_a_pool_that_fails_leaves_no_output_and_no_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_requests(tmp_path / "r.jsonl", 30)
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))

    def failing() -> object:
        yield from read_items(source)
        raise RuntimeError("the input went away")

    output = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError, match="went away"):
        decide_batch(failing(), output, tmp_path / "e.jsonl", PolicySource(), 2, chunk_size=4)  # type: ignore[arg-type]
    assert not output.exists()
    assert not partial_name(output).exists()
    assert list(spool.iterdir()) == []
    decide_batch(RequestFile.open(source), output, tmp_path / "e.jsonl", PolicySource(), 2)
    assert pq.read_metadata(output).num_rows == 30
    assert list(spool.iterdir()) == []


def test_an_earlier_output_is_replaced_only_when_the_new_one_is_complete(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "r.jsonl", 30)
    output = tmp_path / "out.parquet"
    decide_batch(read_items(source), output, tmp_path / "e.jsonl", PolicySource())
    before = output.read_bytes()

    def failing() -> object:
        yield from read_items(source)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        decide_batch(failing(), output, tmp_path / "e.jsonl", PolicySource(), chunk_size=7)  # type: ignore[arg-type]
    assert output.read_bytes() == before


def test_row_groups_follow_the_chunks(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "r.jsonl", 25)
    output = tmp_path / "out.parquet"
    decide_batch(read_items(source), output, tmp_path / "e.jsonl", PolicySource(), chunk_size=10)
    assert pq.ParquetFile(output).metadata.num_row_groups == 3


def test_the_pool_gives_the_same_determinations_in_the_same_order(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "r.jsonl", 400, seed=3, bad=0.02)
    one = decide_batch(
        read_items(source), tmp_path / "one.parquet", tmp_path / "one.err", PolicySource()
    )
    two = decide_batch(
        read_items(source),
        tmp_path / "two.parquet",
        tmp_path / "two.err",
        PolicySource(),
        workers=2,
        chunk_size=50,
    )
    assert one.decided == two.decided > 350
    assert one.failed == two.failed > 0
    assert pq.read_table(tmp_path / "one.parquet").equals(pq.read_table(tmp_path / "two.parquet"))
    assert (tmp_path / "one.err").read_bytes() == (tmp_path / "two.err").read_bytes()
    outcomes = {row["outcome"] for row in by_line(tmp_path / "one.parquet").values()}
    assert outcomes == {"approved", "pended"}


def test_the_pool_reading_its_own_parts_of_a_file_gives_what_this_process_gives(
    tmp_path: Path,
) -> None:
    # Blank lines (their numbers counted), a CRLF line and a last line without its newline:
    # the workers read byte ranges of the file, and must number its lines as a reader of the
    # whole file does.
    lines = write_requests(tmp_path / "r.jsonl", 60, seed=4, bad=0.05).read_text().splitlines()
    text = "\n".join(lines[:10]) + "\n\n  \n" + lines[10] + "\r\n" + "\n".join(lines[11:])
    source = tmp_path / "mixed.jsonl"
    source.write_text(text, encoding="utf-8")
    reference = decide_batch(
        read_items(source), tmp_path / "ref.parquet", tmp_path / "ref.err", PolicySource()
    )
    pooled = decide_batch(
        RequestFile.open(source),
        tmp_path / "pool.parquet",
        tmp_path / "pool.err",
        PolicySource(),
        workers=2,
        chunk_size=7,
    )
    assert (pooled.decided, pooled.failed) == (reference.decided, reference.failed)
    assert pooled.outcomes == reference.outcomes
    assert pq.read_table(tmp_path / "ref.parquet").equals(pq.read_table(tmp_path / "pool.parquet"))
    assert (tmp_path / "ref.err").read_bytes() == (tmp_path / "pool.err").read_bytes()
    assert max(by_line(tmp_path / "pool.parquet")) == len(lines) + 2
    # One row group a part: 7 requests each, the last the rest.
    assert pq.ParquetFile(tmp_path / "pool.parquet").metadata.num_row_groups == 9


def test_a_parquet_file_is_split_into_parts_within_its_row_groups(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "r.jsonl", 30, seed=8)
    history = tmp_path / "history.parquet"
    decide_batch(read_items(source), history, tmp_path / "h.err", PolicySource(), chunk_size=11)
    # The batch's own output, read again as of each row's date: row groups of 11, 11 and 8,
    # in parts of at most 4 that never span two groups.
    requests = RequestFile.open(history, keep_as_of=True)
    parts = list(requests.parts(4))
    assert [len(read_part(p)) for p in parts] == [4, 4, 3, 4, 4, 3, 4, 4]
    assert [i for p in parts for i in read_part(p)] == list(requests.items())
    one = decide_batch(requests, tmp_path / "one.parquet", tmp_path / "1.err", PolicySource())
    two = decide_batch(
        requests,
        tmp_path / "two.parquet",
        tmp_path / "2.err",
        PolicySource(),
        workers=2,
        chunk_size=4,
    )
    assert one.decided == two.decided == 30
    assert pq.read_table(tmp_path / "one.parquet").equals(pq.read_table(tmp_path / "two.parquet"))
    assert by_line(tmp_path / "one.parquet") == by_line(history)


_line_text = st.sampled_from(["", " ", "\t", "{}", "x", "\u00e9\u2265", '{"a": 1}', "\x0c"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.tuples(_line_text, st.sampled_from(["\n", "\r\n"])), min_size=0, max_size=25),
    last_newline=st.booleans(),
    size=st.integers(min_value=1, max_value=6),
)
def test_the_parts_of_a_json_lines_file_hold_its_requests_once_in_order(
    lines: list[tuple[str, str]], last_newline: bool, size: int
) -> None:
    text = "".join(line + end for line, end in lines)
    if lines and not last_newline:
        text = text.removesuffix(lines[-1][1])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.jsonl"
        path.write_bytes(text.encode())
        requests = RequestFile.open(path)
        parts = list(requests.parts(size))
        items = [item for part in parts for item in read_part(part)]
        assert items == list(read_items(path))
        assert all(0 < len(read_part(part)) <= size for part in parts)


def test_generated_requests_cover_every_policy_and_are_reproducible(
    policies: PolicySet,
) -> None:
    examples = example_requests(EXAMPLES)
    first = list(generate_lines(examples, 200, seed=5))
    assert first == list(generate_lines(examples, 200, seed=5))
    assert first != list(generate_lines(examples, 200, seed=6))
    governed = set()
    for line in first:
        found = policies.find(policies_request(line).service)
        governed.add(found.policy.id if found else None)
    assert governed == {p.policy.id for p in policies.policies} | {None}


def policies_request(line: str) -> object:
    from priorauth import parse_request

    return parse_request(orjson.loads(line))


def test_generated_prescribers_have_valid_npis() -> None:
    assert all(npi_is_valid(make_npi(n)) for n in range(100_000_000, 100_000_500))


def test_parquet_input_by_text_column_by_fields_and_the_batch_output_itself(
    tmp_path: Path,
) -> None:
    source = write_requests(tmp_path / "r.jsonl", 20)
    lines = source.read_text().splitlines()
    by_text = tmp_path / "text.parquet"
    pq.write_table(pa.table({"request": lines}), by_text)
    # Requests of one shape (the first example's, with other ids and doses) as nested columns.
    base = orjson.loads(lines[0])
    shaped = []
    for number in range(1, 6):
        request = orjson.loads(lines[0])
        request["request_id"] = f"SHAPED-{number}"
        request["service"]["dose"]["value"] = base["service"]["dose"]["value"] * number / 2
        shaped.append(request)
    by_fields = tmp_path / "fields.parquet"
    pq.write_table(pa.Table.from_pylist(shaped), by_fields)
    shaped_lines = tmp_path / "shaped.jsonl"
    shaped_lines.write_text("".join(orjson.dumps(r).decode() + "\n" for r in shaped))
    reference = decide_batch(
        read_items(source), tmp_path / "a.parquet", tmp_path / "a.err", PolicySource()
    )
    decide_batch(
        read_items(shaped_lines), tmp_path / "s.parquet", tmp_path / "s.err", PolicySource()
    )
    cases = (("a", by_text, "b"), ("s", by_fields, "c"), ("a", tmp_path / "a.parquet", "d"))
    for expected, input_file, name in cases:
        decide_batch(
            read_items(input_file),
            tmp_path / f"{name}.parquet",
            tmp_path / f"{name}.err",
            PolicySource(),
        )
        got = by_line(tmp_path / f"{name}.parquet")
        want = by_line(tmp_path / f"{expected}.parquet")
        assert got
        assert {k: v["determination_json"] for k, v in got.items()} == {
            k: v["determination_json"] for k, v in want.items()
        }, name
    assert reference.decided == 20


def test_a_file_that_is_not_parquet_is_one_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.parquet"
    bogus.write_text("hello")
    with pytest.raises(InputError, match="not a Parquet file"):
        list(read_items(bogus))
    with pytest.raises(InputError, match="no such file"):
        list(read_items(tmp_path / "absent.jsonl"))
    with pytest.raises(InputError, match="not a Parquet file"):
        RequestFile.open(bogus)
    with pytest.raises(InputError, match="no such file"):
        RequestFile.open(tmp_path / "absent.jsonl")


def test_cli_decides_reports_bad_lines_and_exits_2(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "r.jsonl", 60, seed=11, bad=0.1)
    output = tmp_path / "out.parquet"
    result = runner.invoke(
        app, ["batch", "decide", str(source), "-o", str(output), "--workers", "1"]
    )
    assert result.exit_code == 2, result.output
    assert "decided" in result.stdout
    assert "could not be decided" in result.stderr
    assert "Traceback" not in result.output
    errors = (tmp_path / "out.parquet.errors.jsonl").read_text().splitlines()
    assert errors
    first = json.loads(errors[0])
    assert f"line {first['line']}: " in result.stderr
    assert pq.read_metadata(output).num_rows + len(errors) == 60


def test_cli_without_bad_lines_exits_0(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "r.jsonl", 10)
    result = runner.invoke(
        app, ["batch", "decide", str(source), "-o", str(tmp_path / "o.parquet"), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "decided 10 request(s)" in result.stdout


def test_cli_input_problems_are_one_line(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["batch", "decide", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2
    assert "no such file" in missing.stderr
    neither = runner.invoke(app, ["batch", "decide"])
    assert neither.exit_code == 2
    assert "give an input file, or --from-store" in neither.stderr
    bad_date = runner.invoke(
        app, ["batch", "decide", str(tmp_path / "x.jsonl"), "--as-of", "2026-13-01"]
    )
    assert bad_date.exit_code == 2
    assert "not a date" in bad_date.stderr


def test_cli_generate_writes_the_lines(tmp_path: Path) -> None:
    output = tmp_path / "gen.jsonl"
    result = runner.invoke(
        app,
        ["batch", "generate", "-o", str(output), "--count", "12", "--examples", str(EXAMPLES)],
    )
    assert result.exit_code == 0, result.output
    lines = output.read_text().splitlines()
    assert len(lines) == 12
    assert orjson.loads(lines[0])["request_id"] == "GEN-0000001"
