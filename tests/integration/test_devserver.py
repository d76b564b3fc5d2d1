"""The child-process server used by the end-to-end tests and the benchmarks."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from priorauth import devserver


def test_a_free_port_can_be_bound() -> None:
    port = devserver.free_port()
    with socket.socket() as sock:
        sock.bind((devserver.LOOPBACK, port))


def test_a_server_that_cannot_start_is_reported_not_waited_for(tmp_path: Path) -> None:
    # A database URL no driver knows: `priorauth serve` exits at once.
    with pytest.raises(
        devserver.ServerDidNotStart,
        match="exited with status 2: error: unknown database URL scheme 'nosuchdb'",
    ):
        devserver.start("nosuchdb://nowhere", devserver.free_port(), timeout=60)


def test_a_started_server_answers_and_stops(tmp_path: Path) -> None:
    port = devserver.free_port()
    server = devserver.start(f"sqlite:///{tmp_path}/dev.db", port)
    try:
        assert httpx.get(f"http://{devserver.LOOPBACK}:{port}/ready").status_code == 200
    finally:
        devserver.stop(server)
    assert server.returncode is not None


def test_a_server_that_exits_says_why_in_its_own_words(tmp_path: Path) -> None:
    # The database is made, then `serve` stops on a policy folder with nothing in it: the
    # error carries the server's own last lines.
    empty = tmp_path / "policies"
    empty.mkdir()
    with pytest.raises(devserver.ServerDidNotStart) as failed:
        devserver.start(
            f"sqlite:///{tmp_path}/dev.db",
            devserver.free_port(),
            env={"PRIORAUTH_POLICY_DIR": str(empty)},
            timeout=60,
        )
    message = str(failed.value)
    assert "priorauth serve exited with status 2" in message
    assert "error: policy file" in message
