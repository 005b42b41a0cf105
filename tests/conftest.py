"""Shared fixtures: a private PostgreSQL server for the tests that need one; the team stack.

`postgres_server` starts PostgreSQL alone with the team stack's script (`scripts/team.sh`,
TEAM_SERVICES=postgres, via `benchmarks.stack`) in a temporary folder, once per test process, and stops it by PID at the
end; `postgres_db` gives each test a fresh database on it. Without PostgreSQL server binaries the
tests that need them are skipped with that reason, unless TENURE_REQUIRE_POSTGRES=1 (set by
`.ci/run`), which turns the missing server into a failure.

`team_stack` gives the variables of the stack `make team-up` started, read from
`$TENURE_TEAM_DIR/team.env` (default `workspace/team/team.env`), never from the shell, so the
rest of the suite keeps the embedded default; skipped when the stack is not up, a failure then
when TENURE_REQUIRE_TEAM=1 (`.ci/run`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEAM_VARIABLES = ("MLFLOW_TRACKING_URI", "TENURE_OPTUNA_STORAGE", "TENURE_PREDICTION_LOG", "TENURE_DASK_SCHEDULER")


def require_or_skip(reason: str, variable: str = "TENURE_REQUIRE_POSTGRES") -> None:
    """Skip with `reason`, or fail when `variable` is 1 (CI must run these tests)."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{reason} ({variable}=1: this must run here)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`postgresql://tenure@127.0.0.1:PORT` of a private server (no database part)."""
    from benchmarks.stack import postgres_binaries, private_postgres

    if not postgres_binaries():
        require_or_skip("PostgreSQL server binaries (pg_ctl) not found; `make team-up` installs them")
    with private_postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture
def postgres_db(postgres_server: str) -> Iterator[str]:
    """A fresh database on the private server, dropped after the test."""
    import psycopg

    from benchmarks.stack import create_database

    name = f"t_{uuid.uuid4().hex[:12]}"
    yield create_database(postgres_server, name)
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def team_stack() -> dict[str, str]:
    """The team stack's variables (MLflow server, PostgreSQL URLs, Dask scheduler)."""
    path = Path(os.environ.get("TENURE_TEAM_DIR") or ROOT / "workspace" / "team") / "team.env"
    if not path.exists():
        require_or_skip(f"the team stack is not up ({path} not found): run `make team-up` first",
                        "TENURE_REQUIRE_TEAM")
    found = {}
    for line in path.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        if key in TEAM_VARIABLES:
            found[key] = value
    missing = [v for v in TEAM_VARIABLES if v not in found]
    if missing:
        pytest.fail(f"{path} lacks {missing}: restart the stack (`make team-down team-up`)")
    return found
