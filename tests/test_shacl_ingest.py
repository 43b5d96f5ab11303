"""SHACL at ingest, end to end through a real ``provkg serve`` in each mode.

The events are valid OpenLineage 2-0-2 (the JSON Schema accepts them) but break
SHACL Violations once the store's neighbourhood is taken into account:

- a COMPLETE whose eventTime is before the START of the same run, sent earlier
  (the run ends before it starts: PROV-CONSTRAINTS 51; its output is generated
  before the run started: PROV-CONSTRAINTS 50);
- a second START of a run with another time (two start times);
- an output dataset version (version facet) that an earlier run already
  generated (one generation per entity version: PROV-CONSTRAINTS 35).

flag stores them with their SHACL validation report (201), reject answers 422
and stores nothing, quarantine keeps them aside (202) until released. Nothing
is dropped silently: events sent = stored + rejected + quarantined.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from typing import ClassVar

import httpx
import pytest
from conftest import SPEC, start_server, stop_server

PRODUCER = "https://github.com/provkg/provkg/tests/shacl-ingest"
PREFIXES = ("PREFIX prov: <http://www.w3.org/ns/prov#> PREFIX provkg: <https://w3id.org/provkg/ns#> "
            "PREFIX sh: <http://www.w3.org/ns/shacl#> ")
ENV = {**os.environ, "PROVKG_OPENLINEAGE_SPEC": str(SPEC)}


def run_event(event_type: str, run_id: str, when: str, job: str = "orders_daily.load_orders",
              outputs: list[dict] | None = None) -> dict:
    return {
        "eventType": event_type, "eventTime": when,
        "run": {"runId": run_id},
        "job": {"namespace": "airflow-prod", "name": job},
        "inputs": [{"namespace": "s3://raw", "name": "orders"}],
        "outputs": outputs or [],
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def versioned_output(version: str) -> dict:
    return {"namespace": "postgres://warehouse:5432", "name": "analytics.orders", "facets": {"version": {
        "_producer": PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json"
                      "#/$defs/DatasetVersionDatasetFacet",
        "datasetVersion": version}}}


def run_iri(run_id: str) -> str:
    return f"urn:provkg:run/{run_id}"


def ends_before_start() -> tuple[dict, dict]:
    """A START at 02:00 and a COMPLETE of the same run at 01:55 (clock skew on
    the emitting worker), each valid on its own."""
    run_id = str(uuid.uuid4())
    return (run_event("START", run_id, "2024-05-01T02:00:00Z"),
            run_event("COMPLETE", run_id, "2024-05-01T01:55:00Z", outputs=[versioned_output(run_id[:8])]))


class Tally:
    """What was sent to one server and what it last answered, per distinct event."""

    STATUS: ClassVar[dict[str, int]] = {"accepted": 201, "duplicate": 200, "quarantined": 202, "rejected": 422}

    def __init__(self, server):
        self.server = server
        self.last: dict[str, int] = {}

    def post(self, event: dict) -> httpx.Response:
        r = httpx.post(self.server.url + "/api/v1/lineage", json=event, timeout=60)
        self.last[json.dumps(event, sort_keys=True)] = r.status_code
        return r

    def post_batch(self, events: list[dict]) -> httpx.Response:
        r = httpx.post(self.server.url + "/api/v1/lineage/batch", json=events, timeout=60)
        assert r.status_code == 200, r.text
        for event, result in zip(events, r.json()["results"], strict=True):
            self.last[json.dumps(event, sort_keys=True)] = self.STATUS[result["status"]]
        return r

    def stored(self) -> int:
        return self.server.stats()["graphs"]

    def quarantined(self) -> int:
        return len(httpx.get(self.server.url + "/api/v1/quarantine", timeout=30).json()["entries"])

    def assert_nothing_dropped(self) -> None:
        """Every distinct event sent is stored, rejected (its last answer 422)
        or in the quarantine."""
        rejected = sum(1 for code in self.last.values() if code == 422)
        assert len(self.last) == self.stored() + rejected + self.quarantined(), (
            len(self.last), self.stored(), rejected, self.quarantined(), sorted(self.last.values()))


def report_of(server, graph: str) -> list[dict]:
    """The SHACL results stored for an event graph: <graph> provkg:validationReport ?r."""
    return server.sparql_select(PREFIXES + f"""
        SELECT ?report ?g ?conforms ?result ?severity ?focus ?message WHERE {{
          GRAPH ?g {{ <{graph}> provkg:validationReport ?report .
                      ?report a sh:ValidationReport ; sh:conforms ?conforms ; sh:result ?result .
                      ?result a sh:ValidationResult ; sh:resultSeverity ?severity ;
                              sh:focusNode ?focus ; sh:resultMessage ?message }} }}""")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provkg", *args], check=False, capture_output=True, text=True, env=ENV,
                          timeout=120)


def _server(tmp_path_factory, mode: str):
    srv = start_server(tmp_path_factory.mktemp(mode) / "data", "--shacl-mode", mode)
    yield srv, Tally(srv)
    stop_server(srv)


# -- flag ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flag(tmp_path_factory):
    yield from _server(tmp_path_factory, "flag")


def test_flag_stores_a_conforming_event_without_a_report(flag):
    server, tally = flag
    start, _ = ends_before_start()
    r = tally.post(start)
    assert r.status_code == 201, r.text
    assert "validation" not in r.json()
    assert report_of(server, r.json()["graph"]) == []


def test_flag_stores_the_violating_event_with_its_report(flag):
    server, tally = flag
    start, complete = ends_before_start()
    before = server.stats()
    assert tally.post(start).status_code == 201
    r = tally.post(complete)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "accepted"
    validation = body["validation"]
    assert validation["conforms"] is False and validation["violations"] >= 1
    messages = [x["message"] for x in validation["results"] if x["severity"] == "Violation"]
    assert any("PROV-CONSTRAINTS 51" in m for m in messages), messages
    assert any(x["focus"] == run_iri(start["run"]["runId"]) for x in validation["results"])

    graph = body["graph"]
    after = server.stats()
    assert after["graphs"] == before["graphs"] + 2
    assert after["validationReports"] >= before["validationReports"] + 1
    # the event's own graph is stored ...
    assert server.sparql_select(PREFIXES + f"SELECT ?end WHERE {{ GRAPH <{graph}> {{ "
                                f"<{run_iri(start['run']['runId'])}> prov:endedAtTime ?end }} }}")
    # ... and beside it its SHACL validation report, linked from the event graph
    rows = report_of(server, graph)
    assert rows, "no <graph> provkg:validationReport ?r with sh:ValidationResult nodes"
    assert {row["g"] for row in rows} == {graph + "/shacl-report"}
    assert {row["conforms"] for row in rows} == {"false"}
    assert "http://www.w3.org/ns/shacl#Violation" in {row["severity"] for row in rows}
    assert len({row["result"] for row in rows}) == len(validation["results"])
    tally.assert_nothing_dropped()


def test_flag_reports_two_start_times_and_a_version_generated_twice(flag):
    server, tally = flag
    run_id = str(uuid.uuid4())
    assert tally.post(run_event("START", run_id, "2024-05-02T02:00:00Z")).status_code == 201
    r = tally.post(run_event("START", run_id, "2024-05-02T02:00:42Z"))
    assert r.status_code == 201
    assert any("at most one start time" in x["message"] for x in r.json()["validation"]["results"])

    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    for run_id, day in ((first, "03"), (second, "04")):
        assert tally.post(run_event("START", run_id, f"2024-05-{day}T02:00:00Z")).status_code == 201
        r = tally.post(run_event("COMPLETE", run_id, f"2024-05-{day}T02:10:00Z", outputs=[versioned_output("v7")]))
        assert r.status_code == 201
    results = r.json()["validation"]["results"]
    assert any("PROV-CONSTRAINTS 35" in x["message"] for x in results), results
    # the whole store says the same
    whole = httpx.get(server.url + "/api/v1/validation?stage=ingest", timeout=120).json()
    assert whole["conforms"] is False
    assert any("PROV-CONSTRAINTS 35" in x["message"] for x in whole["results"])
    tally.assert_nothing_dropped()


def test_flag_reads_the_start_of_a_generating_run_the_event_does_not_name(flag):
    """PROV-CONSTRAINTS 50 across events: run A generated v8 (stored); a later
    event says run B generated v8 earlier than A started. B's event does not
    name A, yet its check must read A's start time from the store, as a
    validation of the whole store does."""
    server, tally = flag
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    version = "v8-" + a[:8]
    assert tally.post(run_event("START", a, "2024-05-05T02:00:00Z")).status_code == 201
    assert tally.post(run_event("COMPLETE", a, "2024-05-05T02:10:00Z",
                                outputs=[versioned_output(version)])).status_code == 201
    assert tally.post(run_event("START", b, "2024-05-04T01:00:00Z")).status_code == 201
    r = tally.post(run_event("COMPLETE", b, "2024-05-04T01:10:00Z", outputs=[versioned_output(version)]))
    assert r.status_code == 201
    mine = [x["message"] for x in r.json()["validation"]["results"] if "PROV-CONSTRAINTS 50" in x["message"]]
    assert any(run_iri(a) in m for m in mine), r.json()["validation"]["results"]
    whole = httpx.get(server.url + "/api/v1/validation?stage=ingest", timeout=120).json()
    assert any("PROV-CONSTRAINTS 50" in x["message"] and run_iri(a) in x["message"] for x in whole["results"])
    tally.assert_nothing_dropped()


def test_flag_checks_what_a_run_generated_again_when_its_start_arrives_late(flag):
    """Events arrive out of order: the COMPLETE (generating v9 at 02:10) before
    the START (02:30). The START's check must reach the version the run
    generated: generated before the run started (PROV-CONSTRAINTS 50), as a
    validation of the whole store says."""
    server, tally = flag
    run_id = str(uuid.uuid4())
    version = "v9-" + run_id[:8]
    assert tally.post(run_event("COMPLETE", run_id, "2024-05-06T02:10:00Z",
                                outputs=[versioned_output(version)])).status_code == 201
    r = tally.post(run_event("START", run_id, "2024-05-06T02:30:00Z"))
    assert r.status_code == 201
    messages = [x["message"] for x in r.json()["validation"]["results"]]
    assert any("PROV-CONSTRAINTS 50" in m and run_iri(run_id) in m for m in messages), messages
    assert any("PROV-CONSTRAINTS 51" in m for m in messages), messages
    whole = httpx.get(server.url + "/api/v1/validation?stage=ingest", timeout=120).json()
    assert any("PROV-CONSTRAINTS 50" in x["message"] and run_iri(run_id) in x["message"] for x in whole["results"])
    tally.assert_nothing_dropped()


# -- reject -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reject(tmp_path_factory):
    yield from _server(tmp_path_factory, "reject")


def test_reject_answers_422_with_the_results_and_stores_nothing(reject):
    server, tally = reject
    start, complete = ends_before_start()
    assert tally.post(start).status_code == 201
    before = server.stats()
    r = tally.post(complete)
    assert r.status_code == 422, r.text
    body = r.json()
    assert "SHACL" in body["error"]
    assert body["validation"]["conforms"] is False and body["validation"]["violations"] >= 1
    assert any("PROV-CONSTRAINTS 51" in x["message"] for x in body["validation"]["results"])
    assert body["errors"] and all(e["message"].startswith("SHACL: ") for e in body["errors"])
    assert server.stats() == before
    assert server.sparql_select(PREFIXES + f"SELECT ?end WHERE {{ <{run_iri(start['run']['runId'])}> "
                                "prov:endedAtTime ?end }") == []
    # sent again, it is judged again: still 422, still nothing stored
    assert tally.post(complete).status_code == 422
    assert server.stats() == before
    tally.assert_nothing_dropped()


def test_reject_in_a_batch_fails_only_the_violating_event(reject):
    server, tally = reject
    start, complete = ends_before_start()
    before = server.stats()
    body = tally.post_batch([start, complete]).json()
    assert body["status"] == "partial_success"
    assert body["summary"]["received"] == 2 and body["summary"]["failed"] == 1
    assert [f["index"] for f in body["failed_events"]] == [1]
    assert "SHACL" in body["failed_events"][0]["reason"]
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected"]
    assert server.stats()["graphs"] == before["graphs"] + 1
    tally.assert_nothing_dropped()


def test_reject_still_accepts_conforming_events_and_warnings(reject):
    _server, tally = reject
    run_id = str(uuid.uuid4())
    running = run_event("RUNNING", run_id, "2024-05-01T03:00:00Z")  # before any START: a Warning only
    r = tally.post(running)
    assert r.status_code == 201, r.text
    assert r.json()["validation"]["conforms"] is True and r.json()["validation"]["warnings"] >= 1
    assert tally.post(run_event("START", run_id, "2024-05-01T02:59:00Z")).status_code == 201
    tally.assert_nothing_dropped()


# -- quarantine ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def quarantine(tmp_path_factory):
    yield from _server(tmp_path_factory, "quarantine")


@pytest.fixture(scope="module")
def held(quarantine):
    """A START stored and its too-early COMPLETE quarantined: (start, complete, id)."""
    server, tally = quarantine
    start, complete = ends_before_start()
    assert tally.post(start).status_code == 201
    before = server.stats()
    r = tally.post(complete)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "quarantined"
    assert body["validation"]["violations"] >= 1
    assert server.stats() == before, "a quarantined event must not touch the store"
    return start, complete, body["quarantineId"]


def test_quarantined_event_is_listed_and_shown_over_http(quarantine, held):
    server, _ = quarantine
    _start, complete, entry_id = held
    entries = httpx.get(server.url + "/api/v1/quarantine", timeout=30).json()["entries"]
    assert [e["id"] for e in entries] == [entry_id]
    assert entries[0]["eventType"] == "COMPLETE" and entries[0]["violations"] >= 1
    assert entries[0]["job"] == "airflow-prod/orders_daily.load_orders"
    shown = httpx.get(f"{server.url}/api/v1/quarantine/{entry_id}", timeout=30).json()
    assert shown["event"] == complete
    assert any("PROV-CONSTRAINTS 51" in x["message"] for x in shown["results"])
    assert httpx.get(f"{server.url}/api/v1/quarantine/{'0' * 64}", timeout=30).status_code == 404
    assert httpx.get(f"{server.url}/api/v1/quarantine/not-an-id", timeout=30).status_code == 404


def test_quarantine_is_readable_by_the_cli_while_the_server_runs(quarantine, held):
    server, _ = quarantine
    _start, complete, entry_id = held
    listed = cli("quarantine", "list", "--data", str(server.data))
    assert listed.returncode == 0, listed.stderr
    assert [e["id"] for e in json.loads(listed.stdout)] == [entry_id]
    shown = cli("quarantine", "show", entry_id, "--data", str(server.data))
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["event"] == complete and doc["results"]
    assert cli("quarantine", "show", "f" * 64, "--data", str(server.data)).returncode == 2


def test_release_once_the_conflicting_fact_is_gone(quarantine, held, tmp_path):
    """The violation depends on the neighbourhood (the START's time in the
    store): against a store without that START, releasing the same entry
    without force succeeds. provkg has no way to delete a stored fact, so the
    "fix" here is a store rebuilt without the conflicting event, with the
    quarantine folder carried over."""
    server, _ = quarantine
    _start, _complete, entry_id = held
    rebuilt = tmp_path / "rebuilt"
    (rebuilt / "quarantine").mkdir(parents=True)
    shutil.copy(server.data / "quarantine" / f"{entry_id}.json", rebuilt / "quarantine")
    released = cli("quarantine", "release", entry_id, "--data", str(rebuilt))
    assert released.returncode == 0, released.stdout + released.stderr
    assert json.loads(released.stdout)["status"] == "accepted"
    assert json.loads(cli("quarantine", "list", "--data", str(rebuilt)).stdout) == []


def test_release_without_force_keeps_it_quarantined_with_force_stores_it_flagged(quarantine, held):
    server, tally = quarantine
    start, _complete, entry_id = held
    before = server.stats()
    r = httpx.post(f"{server.url}/api/v1/quarantine/{entry_id}/release", timeout=60)
    assert r.status_code == 409, r.text
    assert r.json()["status"] == "quarantined"
    assert server.stats() == before
    assert [e["id"] for e in httpx.get(server.url + "/api/v1/quarantine", timeout=30).json()["entries"]] == [entry_id]

    r = httpx.post(f"{server.url}/api/v1/quarantine/{entry_id}/release", params={"force": "true"}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "accepted" and body["validation"]["violations"] >= 1
    assert server.stats()["graphs"] == before["graphs"] + 1
    rows = report_of(server, body["graph"])
    assert rows and any(row["focus"] == run_iri(start["run"]["runId"]) for row in rows)
    assert httpx.get(server.url + "/api/v1/quarantine", timeout=30).json()["entries"] == []
    assert httpx.get(f"{server.url}/api/v1/quarantine/{entry_id}", timeout=30).status_code == 404
    assert httpx.post(f"{server.url}/api/v1/quarantine/{entry_id}/release", timeout=30).status_code == 404
    tally.assert_nothing_dropped()


def test_quarantine_accepts_what_conforms_and_accounts_for_every_event(quarantine):
    _server, tally = quarantine
    # the same violating event twice: held back twice, kept once
    start, complete = ends_before_start()
    assert tally.post(start).status_code == 201
    assert [tally.post(complete).status_code for _ in range(2)] == [202, 202]
    assert tally.quarantined() == 1
    # in a batch, the violating event is held back, the others stored
    start, complete = ends_before_start()
    body = tally.post_batch([start, complete]).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "quarantined"]
    assert body["results"][1]["quarantineId"]
    assert tally.quarantined() == 2
    run_id = str(uuid.uuid4())
    assert tally.post(run_event("START", run_id, "2024-05-05T02:00:00Z")).status_code == 201
    assert tally.post(run_event("COMPLETE", run_id, "2024-05-05T02:10:00Z",
                                outputs=[versioned_output("v9")])).status_code == 201
    # a second START with another time is held back too
    r = tally.post(run_event("START", run_id, "2024-05-05T02:00:05Z"))
    assert r.status_code == 202
    assert tally.quarantined() == 3
    tally.assert_nothing_dropped()
