"""Export of the lineage graph: ``GET /api/v1/export`` on a live ``provkg serve``
and ``provkg export`` on the same store directory (opened read-only beside the
running server). The store holds the real Airflow scenario of the OpenLineage
compatibility tests, posted over HTTP. Every export is parsed back with rdflib
and checked against what the SPARQL endpoint says about the store."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from rdflib import Dataset, Graph
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID

from conftest import EVENTS, REPO, load_events

# rdflib 7 warns about its own internal use of deprecated names while parsing
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib")

AIRFLOW = EVENTS / "compat-consumer-airflow"
DATASET_FORMATS = {"trig": "trig", "nquads": "nquads"}
GRAPH_FORMATS = {"turtle": "turtle", "jsonld": "json-ld"}
ALL_FORMATS = {**DATASET_FORMATS, **GRAPH_FORMATS}
MEDIA = {"trig": "application/trig", "nquads": "application/n-quads",
         "turtle": "text/turtle", "jsonld": "application/ld+json"}


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def loaded(server):
    """Post the Airflow scenario one event per request; returns the event graph
    IRIs of the accepted events and a map file name -> graph IRI."""
    graphs, by_file = [], {}
    with httpx.Client(timeout=60) as client:
        for path in sorted(AIRFLOW.glob("line_*.json")):
            for event in load_events(path):
                r = client.post(server.url + "/api/v1/lineage", json=event)
                assert r.status_code == 201, (path.name, r.status_code, r.text)
                assert r.json()["status"] == "accepted"
                graphs.append(r.json()["graph"])
                by_file[path.name] = r.json()["graph"]
    assert len(graphs) > 1
    return {"graphs": set(graphs), "accepted": len(graphs), "by_file": by_file}


@pytest.fixture(scope="module")
def facts(server, loaded):
    """What the SPARQL endpoint says about the loaded store."""
    distinct = _count(server, "SELECT (COUNT(*) AS ?n) WHERE { SELECT DISTINCT ?s ?p ?o { ?s ?p ?o } }")
    union = Graph()
    r = httpx.post(server.url + "/sparql", data={"query": "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"},
                   headers={"Accept": "application/n-triples"}, timeout=60)
    assert r.status_code == 200
    union.parse(data=r.content, format="nt")
    per_graph = {}
    for g in loaded["graphs"]:
        per_graph[g] = _graph_triples(server, g)
    return {"distinct": distinct, "union": set(union), "per_graph": per_graph, "stats": server.stats()}


@pytest.fixture(scope="module")
def one_graph(loaded):
    """An event graph with inputs and outputs (scenario step 1, line_03.json)."""
    return loaded["by_file"]["line_03.json"]


# --------------------------------------------------------------------------- helpers

def _count(server, query: str) -> int:
    (row,) = server.sparql_select(query)
    return int(next(iter(row.values())))


def _graph_triples(server, graph: str) -> set:
    r = httpx.post(server.url + "/sparql",
                   data={"query": f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"},
                   headers={"Accept": "application/n-triples"}, timeout=60)
    assert r.status_code == 200
    g = Graph()
    g.parse(data=r.content, format="nt")
    return set(g)


def _export(server, fmt: str, graph: str | None = None) -> httpx.Response:
    params = {"format": fmt}
    if graph is not None:
        params["graph"] = graph
    return httpx.get(server.url + "/api/v1/export", params=params, timeout=60)


def _parse_dataset(data: bytes, fmt: str) -> Dataset:
    ds = Dataset()
    ds.parse(data=data, format=DATASET_FORMATS[fmt])
    return ds


def _named(ds: Dataset) -> dict[str, set]:
    """Named graph IRI -> its triples (the default graph left out)."""
    return {str(g.identifier): set(g) for g in ds.graphs() if g.identifier != DATASET_DEFAULT_GRAPH_ID}


def _default(ds: Dataset) -> set:
    return set(ds.graph(DATASET_DEFAULT_GRAPH_ID))


def _parse_graph(data: bytes, fmt: str) -> Graph:
    g = Graph()
    g.parse(data=data, format=GRAPH_FORMATS[fmt])
    return g


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provkg", "export", *args], cwd=REPO,
                          capture_output=True, timeout=120)


def _check_dataset(data: bytes, fmt: str, loaded, facts) -> None:
    ds = _parse_dataset(data, fmt)
    named = _named(ds)
    # one named graph per accepted event, each holding exactly that event's triples
    assert len(named) == loaded["accepted"]
    assert set(named) == loaded["graphs"]
    for g, triples in named.items():
        assert triples == facts["per_graph"][g], g
    assert sum(len(t) for t in named.values()) == facts["stats"]["quads"]
    # the derived default graph (the merge) is not exported
    assert _default(ds) == set()


def _check_union(data: bytes, fmt: str, facts) -> None:
    g = _parse_graph(data, fmt)
    assert len(g) == facts["distinct"] == facts["stats"]["triples"]
    assert set(g) == facts["union"]


# --------------------------------------------------------------------------- HTTP

@pytest.mark.parametrize("fmt", list(DATASET_FORMATS))
def test_http_dataset_export_keeps_one_named_graph_per_event(server, loaded, facts, fmt):
    r = _export(server, fmt)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == MEDIA[fmt]
    _check_dataset(r.content, fmt, loaded, facts)


@pytest.mark.parametrize("fmt", list(GRAPH_FORMATS))
def test_http_graph_export_is_the_union_of_the_event_graphs(server, facts, fmt):
    r = _export(server, fmt)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == MEDIA[fmt]
    _check_union(r.content, fmt, facts)


def test_default_format_is_trig(server, loaded, facts):
    r = httpx.get(server.url + "/api/v1/export", timeout=60)
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == "application/trig"
    _check_dataset(r.content, "trig", loaded, facts)


@pytest.mark.parametrize("fmt", list(ALL_FORMATS))
def test_http_one_graph_export_holds_only_that_graph(server, facts, one_graph, fmt):
    expected = facts["per_graph"][one_graph]
    assert 0 < len(expected) < facts["distinct"]
    r = _export(server, fmt, one_graph)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == MEDIA[fmt]
    if fmt in DATASET_FORMATS:
        ds = _parse_dataset(r.content, fmt)
        everything = {(s, p, o) for s, p, o, _ in ds.quads((None, None, None, None))}
        assert everything == expected
    else:
        assert set(_parse_graph(r.content, fmt)) == expected


@pytest.mark.parametrize("fmt", list(DATASET_FORMATS))
def test_http_one_graph_dataset_export_keeps_the_graph_name(server, facts, one_graph, fmt):
    r = _export(server, fmt, one_graph)
    assert r.status_code == 200
    ds = _parse_dataset(r.content, fmt)
    # TriG / N-Quads keep the event's named graph: the one graph under its own name
    assert _named(ds) == {one_graph: facts["per_graph"][one_graph]}
    assert _default(ds) == set()


def test_http_unknown_format_is_400(server, loaded):
    r = _export(server, "rdfxml")
    assert r.status_code == 400
    message = r.json()["error"]
    assert "rdfxml" in message and all(f in message for f in ALL_FORMATS)


def test_http_unknown_graph_is_404(server, loaded):
    missing = "urn:provkg:event/sha256%3A" + "0" * 64
    assert missing not in loaded["graphs"]
    r = _export(server, "turtle", missing)
    assert r.status_code == 404
    assert missing in r.json()["error"]


def test_http_bad_graph_iri_is_400(server, loaded):
    r = _export(server, "turtle", "not an iri")
    assert r.status_code == 400
    assert "IRI" in r.json()["error"]


# --------------------------------------------------------------------------- CLI, beside the running server

@pytest.fixture(scope="module")
def cli_exports(server, loaded, tmp_path_factory):
    """Run ``provkg export`` for every format (concurrently, into files) and
    one-graph exports; returns {key: (CompletedProcess, output path)}."""
    out = tmp_path_factory.mktemp("exports")
    jobs = {}
    for fmt in ALL_FORMATS:
        path = out / f"all.{fmt}"
        jobs[fmt] = ([sys.executable, "-m", "provkg", "export", "--data", str(server.data),
                      "--format", fmt, "-o", str(path)], path)
    path = out / "one.ttl"
    jobs["graph"] = ([sys.executable, "-m", "provkg", "export", "--data", str(server.data), "--format", "turtle",
                      "--graph", loaded["by_file"]["line_03.json"], "--output", str(path)], path)
    running = {k: (subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE), p)
               for k, (cmd, p) in jobs.items()}
    done = {}
    for k, (proc, p) in running.items():
        stdout, stderr = proc.communicate(timeout=120)
        done[k] = (subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), p)
    return done


@pytest.mark.parametrize("fmt", list(DATASET_FORMATS))
def test_cli_dataset_export_keeps_one_named_graph_per_event(cli_exports, loaded, facts, fmt):
    proc, path = cli_exports[fmt]
    assert proc.returncode == 0, proc.stderr.decode()
    assert str(path) in "".join(proc.stderr.decode().split())  # "wrote N bytes to PATH"
    _check_dataset(path.read_bytes(), fmt, loaded, facts)


@pytest.mark.parametrize("fmt", list(GRAPH_FORMATS))
def test_cli_graph_export_is_the_union_of_the_event_graphs(cli_exports, facts, fmt):
    proc, path = cli_exports[fmt]
    assert proc.returncode == 0, proc.stderr.decode()
    _check_union(path.read_bytes(), fmt, facts)


def test_cli_one_graph_export(cli_exports, facts, one_graph):
    proc, path = cli_exports["graph"]
    assert proc.returncode == 0, proc.stderr.decode()
    assert set(_parse_graph(path.read_bytes(), "turtle")) == facts["per_graph"][one_graph]


def test_cli_export_to_stdout_matches_http(server, facts):
    proc = _cli("--data", str(server.data), "--format", "nquads")
    assert proc.returncode == 0, proc.stderr.decode()
    from_cli = _parse_dataset(proc.stdout, "nquads")
    from_http = _parse_dataset(_export(server, "nquads").content, "nquads")
    assert _named(from_cli) == _named(from_http)
    assert len(_named(from_cli)) == facts["stats"]["graphs"]


def test_cli_unknown_format_exits_2_with_message(server, loaded):
    proc = _cli("--data", str(server.data), "--format", "rdfxml")
    assert proc.returncode == 2
    err = " ".join(proc.stderr.decode().split())
    assert "unknown export format" in err and "rdfxml" in err
    assert proc.stdout == b""


def test_cli_unknown_graph_exits_2_with_message(server, loaded, tmp_path):
    missing = "urn:provkg:event/sha256%3A" + "f" * 64
    target = tmp_path / "never.ttl"
    proc = _cli("--data", str(server.data), "--format", "turtle", "--graph", missing, "-o", str(target))
    assert proc.returncode == 2
    assert "no named graph" in " ".join(proc.stderr.decode().split())
    assert not target.exists()


def test_exports_leave_the_store_unchanged(server, facts, cli_exports):
    assert server.stats() == facts["stats"]
