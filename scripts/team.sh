#!/usr/bin/env bash
# Team mode on one machine: PostgreSQL, an MLflow tracking server (PostgreSQL backend store,
# proxied artefacts) and a Dask scheduler with workers, all on 127.0.0.1, on free ports.
#
#   scripts/team.sh up      start everything (idempotent) and print the variables to export
#   scripts/team.sh env     print them again (source-able: `eval "$(scripts/team.sh env)"`)
#   scripts/team.sh status  say what runs
#   scripts/team.sh down    stop everything by PID and delete the stack's data
#
# State lives in $TENURE_TEAM_DIR (default ./workspace/team): team.env, the PID files, the logs
# and the artefact store; PostgreSQL's data folder is a temporary folder owned by an unprivileged
# user (initdb refuses root; as root the script creates the user `tenurepg`). The PostgreSQL
# server binaries come from PATH or Debian's postgresql package (installed with apt-get when
# missing and run as root). Knobs: TEAM_PG_PORT, TEAM_MLFLOW_PORT, TEAM_DASK_PORT (default: free
# ports), TEAM_DASK_WORKERS (2), TEAM_DASK_MEMORY (per worker, 3GiB), TEAM_MLFLOW_WORKERS (2),
# TEAM_SERVICES (what to start: "postgres mlflow dask"; the tests start "postgres" alone),
# TEAM_WAIT (seconds to wait for the MLflow server and for the Dask cluster: 120; more on a loaded machine).
# Against real shared services nothing here is needed: export the same variables with their URLs.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${TENURE_TEAM_DIR:-$ROOT/workspace/team}"
VENV_BIN="${VENV_BIN:-$ROOT/.venv/bin}"
PY="$VENV_BIN/python"
PG_USER_OS="${TEAM_PG_OS_USER:-tenurepg}"   # the unprivileged system user that owns the cluster (as root)
PG_ROLE=tenure                               # the database superuser the URLs name
DATABASES=(mlflow optuna predictions)
SERVICES="${TEAM_SERVICES:-postgres mlflow dask}"
wants() { [[ " $SERVICES " == *" $1 "* ]]; }

say() { printf 'team: %s\n' "$*" >&2; }
die() { printf 'team: error: %s\n' "$*" >&2; exit 2; }

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

alive() {  # alive NAME: the process group in $STATE/NAME.pid is running
  local f="$STATE/$1.pid"
  [[ -s "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

pg_bindir() {
  local d
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"; return
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && { echo "$d"; return; }
  done
  return 1
}

ensure_postgres() {
  local d
  if d="$(pg_bindir)"; then echo "$d"; return; fi
  [[ "$(id -u)" == 0 ]] || die "PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's postgresql package"
  say "installing Debian's postgresql package (server binaries not found)"
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  pg_bindir || die "postgresql installed but initdb/pg_ctl not found under /usr/lib/postgresql/*/bin"
}

as_pg() {  # run a command as the cluster's owner
  if [[ "$(id -u)" == 0 ]]; then runuser -u "$PG_USER_OS" -- "$@"; else "$@"; fi
}

write_env() {
  {
    if wants mlflow; then echo "export MLFLOW_TRACKING_URI=http://127.0.0.1:$MLFLOW_PORT"; fi
    echo "export TENURE_OPTUNA_STORAGE=postgresql://$PG_ROLE@127.0.0.1:$PG_PORT/optuna"
    echo "export TENURE_PREDICTION_LOG=postgresql://$PG_ROLE@127.0.0.1:$PG_PORT/predictions"
    if wants dask; then echo "export TENURE_DASK_SCHEDULER=tcp://127.0.0.1:$DASK_PORT"; fi
  } >"$STATE/team.env"
}

running() {  # every wanted service is up
  local name
  alive postgres || return 1
  if wants mlflow; then alive mlflow || return 1; fi
  if wants dask; then for name in dask-scheduler dask-worker; do alive "$name" || return 1; done; fi
  [[ -s "$STATE/team.env" ]]
}

wait_for() {  # wait_for WHAT SECONDS COMMAND...: poll until COMMAND succeeds
  local what="$1" limit="$2"; shift 2
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    (( SECONDS - start < limit )) || return 1
    sleep 0.5
  done
  say "$what ready in $((SECONDS - start)) s"
}

start_postgres() {
  local bindir pgdata
  bindir="$(ensure_postgres)"
  if [[ "$(id -u)" == 0 ]] && ! id "$PG_USER_OS" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER_OS"
  fi
  pgdata="$(mktemp -d "${TMPDIR:-/tmp}/tenure-pg.XXXXXX")"
  echo "$pgdata" >"$STATE/pgdata.path"
  [[ "$(id -u)" == 0 ]] && chown "$PG_USER_OS" "$pgdata"
  chmod 700 "$pgdata"
  as_pg "$bindir/initdb" -D "$pgdata/data" -U "$PG_ROLE" --auth=trust -E UTF8 --locale=C.UTF-8 >"$STATE/initdb.log" 2>&1 \
    || die "initdb failed; see $STATE/initdb.log"
  # only TCP on 127.0.0.1 (trust authentication: never expose this stand-in beyond the machine)
  as_pg "$bindir/pg_ctl" -D "$pgdata/data" -l "$pgdata/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='$pgdata' -c max_connections=200" start >&2 \
    || die "PostgreSQL did not start; see $pgdata/postgres.log"
  head -1 "$pgdata/data/postmaster.pid" >"$STATE/postgres.pid"
  echo "$bindir" >"$STATE/pgbin.path"
  "$PY" - "$PG_PORT" "$PG_ROLE" "${DATABASES[@]}" <<'EOF'
import sys

import psycopg

port, role, *names = sys.argv[1:]
with psycopg.connect(f"postgresql://{role}@127.0.0.1:{port}/postgres", autocommit=True) as con:
    for name in names:
        if not con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            con.execute(f'CREATE DATABASE "{name}"')
EOF
  say "PostgreSQL on 127.0.0.1:$PG_PORT (databases ${DATABASES[*]}; data in $pgdata)"
}

start_mlflow() {
  mkdir -p "$STATE/mlartifacts"
  # no job runner (it adds 8 s and 2 GB at start); artefacts proxied through the server
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false PATH="$VENV_BIN:$PATH" setsid "$VENV_BIN/mlflow" server \
    --backend-store-uri "postgresql://$PG_ROLE@127.0.0.1:$PG_PORT/mlflow" \
    --serve-artifacts --artifacts-destination "$STATE/mlartifacts" --default-artifact-root mlflow-artifacts:/ \
    --host 127.0.0.1 --port "$MLFLOW_PORT" --workers "${TEAM_MLFLOW_WORKERS:-2}" \
    >"$STATE/mlflow.log" 2>&1 </dev/null &
  echo $! >"$STATE/mlflow.pid"
  wait_for "MLflow server on http://127.0.0.1:$MLFLOW_PORT" "${TEAM_WAIT:-120}" \
    "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$MLFLOW_PORT/health', timeout=2)" \
    || die "the MLflow server did not answer /health within ${TEAM_WAIT:-120} s; see $STATE/mlflow.log (TEAM_WAIT)"
}

start_dask() {
  setsid "$VENV_BIN/dask" scheduler --host 127.0.0.1 --port "$DASK_PORT" --dashboard-address 127.0.0.1:0 \
    >"$STATE/dask-scheduler.log" 2>&1 </dev/null &
  echo $! >"$STATE/dask-scheduler.pid"
  setsid "$VENV_BIN/dask" worker "tcp://127.0.0.1:$DASK_PORT" --host 127.0.0.1 \
    --nworkers "${TEAM_DASK_WORKERS:-2}" --nthreads 1 --memory-limit "${TEAM_DASK_MEMORY:-3GiB}" \
    --local-directory "$STATE/dask-worker-space" >"$STATE/dask-worker.log" 2>&1 </dev/null &
  echo $! >"$STATE/dask-worker.pid"
  wait_for "Dask scheduler on tcp://127.0.0.1:$DASK_PORT with ${TEAM_DASK_WORKERS:-2} workers" "${TEAM_WAIT:-120}" \
    "$PY" -c "
from distributed import Client
with Client('tcp://127.0.0.1:$DASK_PORT', timeout=2) as c:
    assert len(c.scheduler_info(n_workers=-1)['workers']) >= ${TEAM_DASK_WORKERS:-2}" \
    || die "the Dask cluster did not come up within ${TEAM_WAIT:-120} s; see $STATE/dask-*.log (TEAM_WAIT)"
}

up() {
  [[ -x "$PY" ]] || die "$PY not found; run \`make venv\` first"
  mkdir -p "$STATE"
  wants postgres || die "TEAM_SERVICES must include postgres (got: $SERVICES)"
  if running; then
    say "already running (scripts/team.sh down stops it)"
    cat "$STATE/team.env"; return
  fi
  if [[ -e "$STATE/postgres.pid" || -e "$STATE/mlflow.pid" ]]; then
    say "a previous stack is partly running; stopping it first"
    down
    mkdir -p "$STATE"
  fi
  local started=$SECONDS
  PG_PORT="${TEAM_PG_PORT:-$(free_port)}"
  MLFLOW_PORT="${TEAM_MLFLOW_PORT:-$(free_port)}"
  DASK_PORT="${TEAM_DASK_PORT:-$(free_port)}"
  trap 'say "start failed; stopping what started"; down' ERR
  start_postgres
  if wants mlflow; then start_mlflow; fi
  if wants dask; then start_dask; fi
  trap - ERR
  write_env
  say "team stack up in $((SECONDS - started)) s; export these (or: source $STATE/team.env):"
  cat "$STATE/team.env"
}

stop_group() {  # stop_group NAME: TERM the process group, then KILL after 15 s
  local f="$STATE/$1.pid" pid
  [[ -s "$f" ]] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  [[ -d "$STATE" ]] || { say "nothing to stop ($STATE does not exist)"; return; }
  stop_group dask-worker
  stop_group dask-scheduler
  stop_group mlflow
  if [[ -s "$STATE/pgdata.path" ]]; then
    local pgdata bindir
    pgdata="$(cat "$STATE/pgdata.path")"
    bindir="$(cat "$STATE/pgbin.path" 2>/dev/null || pg_bindir || true)"
    if [[ -f "$pgdata/data/postmaster.pid" && -n "$bindir" ]]; then
      as_pg "$bindir/pg_ctl" -D "$pgdata/data" -m fast -w -t 30 stop >&2 || stop_group postgres
    fi
    rm -rf "$pgdata"
  fi
  rm -rf "$STATE"
  say "team stack stopped; its data is deleted"
}

status() {
  local name
  for name in postgres mlflow dask-scheduler dask-worker; do
    if alive "$name"; then echo "$name: running (pid $(cat "$STATE/$name.pid"))"; else echo "$name: stopped"; fi
  done
  [[ -s "$STATE/team.env" ]] && cat "$STATE/team.env"
  return 0
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) [[ -s "$STATE/team.env" ]] && cat "$STATE/team.env" || die "the team stack is not up (make team-up)" ;;
  status) status ;;
  *) echo "usage: $0 up|down|env|status" >&2; exit 2 ;;
esac
