"""The service under attack, over HTTP: what an adversarial run found, pinned.

One server (1 worker, so one locked write would stop everything it serves; churn only), started
by `bentoml serve serving.service:Tenure` WITHOUT `--host`: it must bind 127.0.0.1. Checks a
locked prediction log does not freeze `/livez`, a log deleted under the running service, capped
error answers, the busy-port and non-loopback start-up messages, and runs Schemathesis on the
published OpenAPI document (bounded examples): no server error, no answer that differs from it.
"""

from __future__ import annotations

import concurrent.futures
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from serving.prediction_log import read_predictions

from helpers import serving as fx

pytestmark = pytest.mark.integration

AUTH = {"X-API-Key": fx.API_KEY}
SCHEMATHESIS_EXAMPLES = int(os.environ.get("TENURE_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict[str, Any]:
    return fx.register_champions(tmp_path_factory.mktemp("registry"), tasks=("churn",))


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory) -> Iterator[fx.Server]:
    tmp = tmp_path_factory.mktemp("hardening")
    env = fx.server_env(registry["tracking_uri"], tmp, tasks=["churn"], workers=1, max_batch_size=20,
                        max_explained_batch_size=5, prediction_log={"busy_timeout_ms": 20_000})
    with fx.running_server(env, tmp, host=None) as srv:
        yield srv


def test_started_without_host_it_binds_loopback_only(server):
    port = int(server.url.rsplit(":", 1)[1])
    procs = [psutil.Process(server.proc.pid), *psutil.Process(server.proc.pid).children(recursive=True)]
    listening = {c.laddr.ip for p in procs for c in p.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    assert listening == {"127.0.0.1"}


def test_a_locked_log_does_not_freeze_the_worker(server):
    """Another writer holds the log: the write waits in a thread, and the worker goes on answering /livez."""
    blocker = sqlite3.connect(server.prediction_log, isolation_level=None, timeout=30)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(lambda: httpx.post(f"{server.url}/predict_churn", json={"customer_id": "LOCK-1"},
                                                     headers=AUTH, timeout=60))
            time.sleep(1.0)  # the request has reached the worker and waits for the lock
            live = httpx.get(f"{server.url}/livez", timeout=10)  # before the fix: blocked until the lock went
            assert live.status_code == 200
            assert not pending.done()  # /livez answered while the write was still waiting
            blocker.execute("COMMIT")
            answer = pending.result(timeout=60)
    finally:
        if blocker.in_transaction:
            blocker.execute("COMMIT")
        blocker.close()
    assert answer.status_code == 200
    assert (read_predictions(server.prediction_log)["customer_ref"] == "LOCK-1").sum() == 1


def test_a_log_deleted_under_the_running_service_is_noticed(server):
    with server.client(headers=AUTH) as c:
        assert c.post("/predict_churn", json={"customer_id": "DEL-0"}).status_code == 200
        server.prediction_log.unlink()
        answers = [c.post("/predict_churn", json={"customer_id": f"DEL-{i}"}) for i in range(1, 8)]
    assert [a.status_code for a in answers] == [200] * 7
    assert server.prediction_log.exists()  # before the fix: 7 answers, and their rows in an unlinked file
    logged = read_predictions(server.prediction_log)
    assert sorted(logged["customer_ref"]) == [f"DEL-{i}" for i in range(1, 8)]


def test_error_answers_are_small_and_located(server):
    with server.client(headers=AUTH) as c:
        flood = c.post("/predict_churn", json={"customer_id": "C", **{f"k{i}": 1 for i in range(10_000)}})
        digits = c.post("/predict_churn", content=b'{"customer_id": "C", "complaints_6m": 1' + b"0" * 5000 + b"}",
                        headers={"Content-Type": "application/json"})
        newline = c.post("/predict_churn", json={"customer_id": "C-1\n"})
        explain = c.post("/score_batch", json={"customers": [{"customer_id": "C"}], "explain": "yes"})
    assert flood.status_code == 400 and len(flood.content) < 10_000  # was 1.4 MB
    assert len(flood.json()["detail"]) == 20 and "10000" in flood.json()["error"]
    assert digits.status_code == 400 and digits.json()["detail"][0]["loc"]  # was an empty loc
    assert newline.status_code == 400 and newline.json()["detail"][0]["loc"] == ["customer_id"]
    assert explain.status_code == 400 and explain.json()["detail"][0]["loc"] == ["explain"]


def test_the_openapi_document_says_what_the_service_does(server):
    doc = httpx.get(f"{server.url}/docs.json", timeout=10).json()
    assert "get" in doc["paths"]["/model_info"]
    assert doc["paths"]["/predict_churn"]["post"]["requestBody"]["required"] is True
    error = doc["paths"]["/predict_churn"]["post"]["responses"]["400"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorResponse"}
    assert doc["components"]["schemas"]["ErrorResponse"]["properties"]["detail"]["type"] == "array"
    assert doc["components"]["schemas"]["PredictResponse"]["properties"]["as_of"]["nullable"] is True


def test_schemathesis_finds_no_server_error_and_no_nonconforming_answer(server, tmp_path):
    """Schemathesis (its CLI: its pytest plugin fails under this pytest) on /docs.json, every
    operation but the admin one: examples, coverage (boundary and negative values) and fuzzing;
    no 5xx, every status, content type and body as documented, and every request the document
    calls invalid refused (it found an integer `customer_id` undocumented on the one-customer
    endpoints and a null categorical missing from an enum)."""
    httpx.get(f"{server.url}/docs.json", timeout=60).raise_for_status()  # built once; st gives it 10 s
    checks = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
              "negative_data_rejection")
    done = subprocess.run(
        [str(Path(sys.executable).with_name("st")), "--no-color", "run", f"{server.url}/docs.json", "--checks", checks,
         "--max-examples", str(SCHEMATHESIS_EXAMPLES), "--phases", "examples,coverage,fuzzing",
         "--generation-deterministic", "--exclude-path", "/admin/reload", "--header", f"X-API-Key: {fx.API_KEY}",
         "--request-timeout", "30", "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    assert "Test cases:" in report and "generated" in report  # it did run its cases
    print(report[-1500:])


def _start(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bentoml", "serve", "serving.service:Tenure", *args], env=env,
                          capture_output=True, text=True, timeout=fx.READY_TIMEOUT)


def test_a_busy_port_is_one_line_and_exit_2_with_a_warning_for_an_open_address(registry, tmp_path):
    env = fx.server_env(registry["tracking_uri"], tmp_path, tasks=["churn"], workers=1)
    env.pop("TENURE_API_KEY")
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _start(env, "--host", "0.0.0.0", "--port", str(port))
    err = done.stderr
    assert done.returncode == 2, err[-2000:]
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: Tenure cannot start: port {port} on 0.0.0.0 is already in use (another server?); stop it or "
        "choose another port with --port"]
    assert "warning: Tenure binds 0.0.0.0" in err and "TENURE_API_KEY is not set" in err
    assert len(err.strip().splitlines()) <= 3  # was a 61-line traceback
