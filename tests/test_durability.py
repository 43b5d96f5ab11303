"""Nothing acknowledged is lost: a real server under concurrent load is killed
with SIGKILL, restarted, and must hold every event it acknowledged, with an
intact log (issue: a record you can defend)."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import httpx

from conftest import EVENTS, SPEC, load_events, start_server, stop_server

TEMPLATE = load_events(EVENTS / "compat-consumer-airflow" / "line_05.json")[0]


def _event(i: int) -> dict:
    """A distinct, valid RunEvent (the Airflow copy task with a fresh run)."""
    event = copy.deepcopy(TEMPLATE)
    event["run"]["runId"] = str(uuid.uuid4())
    event["eventTime"] = f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z"
    return event


def provkg(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROVKG_OPENLINEAGE_SPEC": str(SPEC)}
    return subprocess.run([sys.executable, "-m", "provkg", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_sigkill_under_concurrent_load_loses_no_acknowledged_event(tmp_path):
    data = tmp_path / "data"
    server = start_server(data)
    acknowledged: dict[str, str] = {}  # graph IRI -> runId
    sent = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(timeout=10) as http:
            i = 0
            while not stop.is_set():
                event = _event(worker * 100000 + i)
                i += 1
                with lock:
                    sent[0] += 1
                try:
                    r = http.post(server.url + "/api/v1/lineage", json=event)
                except httpx.HTTPError:
                    continue  # the server died mid-request: not acknowledged
                if r.status_code in (200, 201):
                    with lock:
                        acknowledged[r.json()["graph"]] = event["run"]["runId"]

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=20)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acknowledged) >= 150, f"only {len(acknowledged)} acknowledged before the kill"

    restarted = start_server(data)
    try:
        stored = {row["g"] for row in restarted.sparql_select(
            "SELECT ?g WHERE { ?g a <https://w3id.org/provkg/ns#LineageEvent> }")}
        missing = set(acknowledged) - stored
        assert not missing, f"{len(missing)} acknowledged events lost of {len(acknowledged)}"
        print(f"\nsent {sent[0]}, acknowledged {len(acknowledged)}, found after restart "
              f"{len(set(acknowledged) & stored)}, stored in all {len(stored)}")
    finally:
        stop_server(restarted)
    report = provkg("verify", "--data", str(data), "--json")
    assert report.returncode == 0, report.stdout + report.stderr
    verified = json.loads(report.stdout)
    assert verified["ok"] and verified["entries"] == verified["graphs"] >= len(acknowledged)


def test_duplicate_delivery_is_stored_once_and_said(tmp_path):
    server = start_server(tmp_path / "data")
    try:
        event = _event(1)
        first = httpx.post(server.url + "/api/v1/lineage", json=event)
        again = httpx.post(server.url + "/api/v1/lineage", json=event)
        assert (first.status_code, first.json()["status"]) == (201, "accepted")
        assert (again.status_code, again.json()["status"]) == (200, "duplicate")
        assert again.json()["graph"] == first.json()["graph"]
        assert server.stats()["graphs"] == 1
    finally:
        stop_server(server)
    log = (tmp_path / "data" / "log" / "events.jsonl").read_text().splitlines()
    assert len(log) == 1


def test_the_log_keeps_the_exact_json_received(tmp_path):
    server = start_server(tmp_path / "data")
    body = json.dumps(_event(2), indent=3, ensure_ascii=False).replace("COMPLETE", "COMPLETE")
    try:
        r = httpx.post(server.url + "/api/v1/lineage", content=body.encode(),
                       headers={"Content-Type": "application/json"})
        assert r.status_code == 201
    finally:
        stop_server(server)
    (line,) = (tmp_path / "data" / "log" / "events.jsonl").read_text().splitlines()
    entry = json.loads(line)
    assert entry["raw"] == body  # byte for byte, whitespace included
    assert entry["contentHash"] == r.json()["contentHash"]
    assert entry["source"] == "http" and entry["seq"] == 1
