"""The command line and the named queries, on a real on-disk store loaded
from the Airflow scenario."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from conftest import EVENTS, SPEC, invalid_files, load_events
from provkg.iris import IriMinter

AIRFLOW = EVENTS / "compat-consumer-airflow"
RESULT_CSV = IriMinter().dataset("gs://mock-bucket", "result.csv").value
COPIED_CSV = IriMinter().dataset("gs://mock-bucket", "copied.csv").value


def provkg(*args: str, data=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROVKG_OPENLINEAGE_SPEC": str(SPEC), "COLUMNS": "200"}
    if data is not None:
        env["PROVKG_DATA"] = str(data)
    return subprocess.run([sys.executable, "-m", "provkg", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    data = tmp_path_factory.mktemp("cli") / "data"
    done = provkg("ingest", str(AIRFLOW), data=data)
    assert done.returncode == 0, done.stderr
    assert "32 events accepted" in done.stdout
    return data


def test_help_lists_every_command():
    done = provkg("--help")
    assert done.returncode == 0
    for command in ("serve", "ingest", "query", "sparql", "export", "stats"):
        assert command in done.stdout


def test_ingest_again_counts_duplicates(store_dir):
    done = provkg("ingest", str(AIRFLOW / "line_05.json"), data=store_dir)
    assert done.returncode == 0
    assert "0 events accepted" in done.stdout and "1 duplicates" in done.stdout


def test_ingest_reports_rejections_with_pointer_and_exit_1(tmp_path):
    bad = [p for p in invalid_files() if p.parent.name == "ol-proxy-fluentd"]
    done = provkg("ingest", *map(str, bad), data=tmp_path / "data")
    assert done.returncode == 1
    assert f"{len(bad)} rejected" in done.stdout
    assert "/run/facets/parent/run" in done.stderr  # the pointer of event_invalid_run_facet.json


def test_ingest_of_a_missing_path_is_an_error(tmp_path):
    done = provkg("ingest", str(tmp_path / "nope.json"), data=tmp_path / "data")
    assert done.returncode == 2 and "no such file" in done.stderr


def test_backward_provenance_cli_json(store_dir):
    done = provkg("query", "backward-provenance", "--param", f"node={RESULT_CSV}", "--json", data=store_dir)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    nodes = {r["node"]: r for r in answer["rows"]}
    # result.csv <- upload_cp <- upload <- copied.csv, with the jobs that ran
    assert COPIED_CSV in nodes
    assert {r["label"] for r in answer["rows"] if r["kind"] == "Job"} >= {"BQ.download", "BQ.copy", "BQ.upload"}
    depth_of = {}
    for r in answer["rows"]:
        depth_of.setdefault(r["node"], r["depth"])
    assert depth_of[IriMinter().dataset("bigquery", "mock-project.test.upload_cp").value] == 1
    assert depth_of[COPIED_CSV] == 3


def test_depth_limits_the_answer(store_dir):
    done = provkg("query", "backward-provenance", "-P", f"node={RESULT_CSV}", "-P", "depth=1", "--json",
                  data=store_dir)
    rows = json.loads(done.stdout)["rows"]
    assert rows and {r["depth"] for r in rows} == {1}


def test_forward_impact_table(store_dir):
    done = provkg("query", "forward-impact", "--param", f"node={COPIED_CSV}", data=store_dir)
    assert done.returncode == 0, done.stderr
    assert "result.csv" in done.stdout and "forward-impact" in done.stdout


@pytest.mark.parametrize("params,message", [
    ([], "required"),
    (["--param", "node=not an iri"], "absolute IRI"),
    (["--param", f"node={RESULT_CSV}", "--param", "depth=-1"], ">= 0"),
    (["--param", f"node={RESULT_CSV}", "--param", "colour=red"], "unknown parameter"),
    (["--param", "node=urn:x> } ; DROP ALL ; SELECT * { <urn:y"], "absolute IRI"),
])
def test_bad_parameters_are_refused(store_dir, params, message):
    done = provkg("query", "backward-provenance", *params, data=store_dir)
    assert done.returncode == 2
    assert message in done.stderr


def test_injection_attempt_is_bound_as_a_term_not_pasted(store_dir):
    # a syntactically valid IRI that carries SPARQL text is just an unknown node
    node = "urn:x?q=%7D%20UNION%20%7B%20?from%20?relation%20?to%20%7D"
    done = provkg("query", "forward-impact", "--param", f"node={node}", "--json", data=store_dir)
    assert done.returncode == 2
    assert f"holds nothing about {node}" in done.stderr


def test_sparql_cli_csv(store_dir):
    done = provkg("sparql", "SELECT (COUNT(*) AS ?n) WHERE { ?r a <http://www.w3.org/ns/prov#Activity> }",
                  data=store_dir)
    assert done.returncode == 0
    runs = {e["run"]["runId"] for p in AIRFLOW.glob("line_*.json") for e in load_events(p)}
    assert done.stdout.split() == ["n", str(len(runs))]


def test_named_queries_over_http(server):
    deadline = time.monotonic() + 60  # the step index is built in the background; then each post updates it
    while httpx.get(server.url + "/healthz").json()["stepIndex"] != "ready" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(server.url + "/healthz").json()["stepIndex"] == "ready"
    for path in sorted(AIRFLOW.glob("line_*.json")):
        assert httpx.post(server.url + "/api/v1/lineage", json=load_events(path)[0]).status_code == 201
    listing = httpx.get(server.url + "/api/v1/queries").json()
    assert {q["name"] for q in listing["queries"]} >= {"backward-provenance", "forward-impact"}
    r = httpx.get(server.url + "/api/v1/queries/forward-impact", params={"node": COPIED_CSV})
    assert r.status_code == 200
    assert RESULT_CSV in {row["node"] for row in r.json()["rows"]}
    # one row a page: the second page (from the server's whole answer) continues the first
    pages = [httpx.get(server.url + "/api/v1/queries/forward-impact",
                       params={"node": COPIED_CSV, "limit": "1", "offset": str(i)}).json() for i in (0, 1)]
    assert [p["rows"] for p in pages] == [r.json()["rows"][:1], r.json()["rows"][1:2]]
    assert pages[0]["next"] == 1 and pages[1]["total"] == r.json()["total"] > 1
    walked = httpx.get(server.url + "/api/v1/queries/forward-impact", params={"node": COPIED_CSV, "offset": "1"},
                       headers={"Cache-Control": "no-cache"})  # answered by a new walk, the same page
    assert walked.json()["rows"] == pages[1]["rows"] + r.json()["rows"][2:]
    # the server answered from its step index, kept up to date post by post; a reader beside it walks the store
    cli = provkg("query", "forward-impact", "--json", "-P", f"node={COPIED_CSV}", data=server.data)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["rows"] == r.json()["rows"] and len(r.json()["rows"]) > 1
    assert httpx.get(server.url + "/api/v1/queries/forward-impact").status_code == 400
    assert httpx.get(server.url + "/api/v1/queries/no-such-query").status_code == 404
    # an IRI sent without percent-encoding its own % signs names no node: 404, not an empty answer
    unknown = httpx.get(server.url + "/api/v1/queries/forward-impact", params={"node": "urn:provkg:dataset/gs://x/y"})
    assert unknown.status_code == 404 and "holds nothing" in unknown.json()["error"]
    bad = httpx.get(server.url + "/api/v1/queries/forward-impact", params={"node": "<urn:a> } DROP ALL"})
    assert bad.status_code == 400


def test_a_second_writer_is_refused_while_the_server_runs_and_readers_work(server):
    event = load_events(AIRFLOW / "line_03.json")[0]
    assert httpx.post(server.url + "/api/v1/lineage", json=event).status_code in (200, 201)
    before = server.stats()
    done = provkg("ingest", str(AIRFLOW / "line_05.json"), data=server.data)
    assert done.returncode == 2
    assert "open in another process" in done.stderr
    assert server.stats() == before
    # read-only commands work beside the running server
    stats = provkg("stats", data=server.data)
    assert stats.returncode == 0 and json.loads(stats.stdout)["graphs"] == before["graphs"]
