"""Services for benchmarks and tests, stopped by PID when their block ends: a private PostgreSQL
(the team stack's script, `scripts/team.sh`, with TEAM_SERVICES=postgres in a folder of its own)
and `tenure serve` on a free port."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEAM_SCRIPT = ROOT / "scripts" / "team.sh"


def postgres_binaries() -> bool:
    """True when PostgreSQL's server binaries are on PATH or in Debian's place."""
    import shutil

    return bool(shutil.which("pg_ctl") or list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")))


@contextlib.contextmanager
def private_postgres(state: Path) -> Iterator[str]:
    """`postgresql://tenure@127.0.0.1:PORT` (no database part) of a server kept under `state`."""
    env = {**os.environ, "TENURE_TEAM_DIR": str(Path(state) / "team"), "TEAM_SERVICES": "postgres",
           "VENV_BIN": str(Path(sys.executable).parent)}
    env.pop("TEAM_PG_PORT", None)
    proc = subprocess.run(["bash", str(TEAM_SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"starting PostgreSQL failed: {proc.stderr[-2000:]}")
    url = next(line.split("=", 1)[1] for line in proc.stdout.splitlines()
               if line.startswith("export TENURE_PREDICTION_LOG="))
    try:
        yield url.rsplit("/", 1)[0]
    finally:
        subprocess.run(["bash", str(TEAM_SCRIPT), "down"], env=env, capture_output=True, timeout=120)


def create_database(server: str, name: str) -> str:
    """Create database `name` on `server` (if missing); its URL."""
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as con:
        if not con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            con.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def tenure_service(args: list[str], env: dict[str, str], log_path: Path, *, cwd: Path | None = None,
                   ready_seconds: float = 180) -> Iterator[str]:
    """`tenure serve ARGS` on 127.0.0.1 and a free port, ready (`/readyz`); its URL. Stopped (its
    process group, by PID) when the block ends."""
    import signal
    import time

    import httpx

    port = free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "tenure"), "serve", "--port", str(port), *args],
                                env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + ready_seconds
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited with {proc.returncode}: {log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service was not ready within {ready_seconds} s: {log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
