"""Run `priorauth serve` in a child process on a free loopback port and wait until it is ready.

For end-to-end tests, benchmarks and local trials, which need a real server with a real socket:

    port = free_port()
    server = start("sqlite:///var/trial.db", port, "--demo")
    try:
        httpx.get(f"http://127.0.0.1:{port}/ready")
    finally:
        stop(server)

Only the loopback interface is used.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx

__all__ = ["LOOPBACK", "ServerDidNotStart", "free_port", "kill", "start", "stop"]

LOOPBACK = "127.0.0.1"


class ServerDidNotStart(RuntimeError):
    """The child server exited, or did not answer /ready in time."""


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


def start(
    database_url: str,
    port: int,
    *options: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.Popen[bytes]:
    """`priorauth db upgrade`, then `priorauth serve --host 127.0.0.1 --port PORT [options]` on
    the given database, returned
    once GET /ready answers 200. `env` adds to this process's environment. Raises
    ServerDidNotStart, after stopping the child, when it exits or is not ready within `timeout`."""
    program = str(Path(sys.executable).parent / "priorauth")
    environment = {**os.environ, **(env or {}), "PRIORAUTH_DATABASE_URL": database_url}
    # As an operator would: create or migrate the database, then serve it.
    upgraded = subprocess.run(
        [program, "db", "upgrade"], env=environment, capture_output=True, check=False
    )
    if upgraded.returncode != 0:
        message = upgraded.stderr.decode(errors="replace").strip()
        raise ServerDidNotStart(
            f"priorauth db upgrade exited with status {upgraded.returncode}: {message}"
        )
    command = [program, "serve", "--host", LOOPBACK, "--port", str(port), *options]
    # Its log goes to a file of its own (no request content is ever logged), read back to say
    # why, should it not start.
    with tempfile.TemporaryFile() as log:
        # In a process group of its own: with --workers, the server is several processes,
        # and stop and kill reach them all.
        server = subprocess.Popen(
            command,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{LOOPBACK}:{port}/ready", timeout=1).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise ServerDidNotStart(
                    f"priorauth serve exited with status {server.returncode}{_tail(log)}"
                )
            time.sleep(0.1)
        stop(server)
        raise ServerDidNotStart(
            f"priorauth serve did not answer /ready within {timeout:g} s{_tail(log)}"
        )


def _tail(log: IO[bytes], lines: int = 8) -> str:
    """The last lines the server wrote, for a message saying why it did not start."""
    log.seek(0)
    last = log.read().decode(errors="replace").strip().splitlines()[-lines:]
    return (":\n" + "\n".join(last)) if last else ""


def stop(server: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Ask the server to stop (SIGTERM), and kill it if it has not within `grace` seconds;
    returns once every process of its group has gone."""
    if server.poll() is None:
        _signal_group(server, signal.SIGTERM)
        try:
            server.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    kill(server)


def kill(server: subprocess.Popen[bytes]) -> None:
    """SIGKILL the server and every process it started (a crash, as tests need one); returns
    once they have all gone (the group's last members, reparented, may take a moment)."""
    _signal_group(server, signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _signal_group(server, 0):
        time.sleep(0.02)


def _signal_group(server: subprocess.Popen[bytes], signum: int) -> bool:
    """Send `signum` to the server's process group; False when the group has gone."""
    try:
        os.killpg(server.pid, signum)
    except ProcessLookupError:
        return False
    return True
