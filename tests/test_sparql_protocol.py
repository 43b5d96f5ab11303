"""SPARQL 1.1 Protocol conformance of ``/sparql`` on a live ``provkg serve``.

The store holds the real Airflow scenario of the OpenLineage compatibility
tests (``compat-consumer-airflow/line_*.json``), posted over HTTP. Requests are
made with plain httpx (the protocol's three query operations, content
negotiation, dataset parameters, refusals), with SPARQLWrapper 2.0 and with
rdflib's SPARQLStore, all unchanged."""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
import warnings
import xml.etree.ElementTree as ET

import httpx
import pytest
import rdflib
from rdflib import Graph, URIRef
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import CSV, GET, JSON, JSONLD, N3, POST, RDFXML, TSV, TURTLE, XML, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import QueryBadFormed

from conftest import EVENTS, load_events

# rdflib 7 warns about its own use of ConjunctiveGraph (JSON-LD parser, SPARQLWrapper results)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib")

AIRFLOW = EVENTS / "compat-consumer-airflow"
PROV = "http://www.w3.org/ns/prov#"
PK = "https://w3id.org/provkg/ns#"
PREFIXES = f"PREFIX prov: <{PROV}> PREFIX provkg: <{PK}> "
SRX = "{http://www.w3.org/2005/sparql-results#}"

# gs://mock-bucket/copied.csv is loaded into BigQuery mock-project.test.upload
# (scenario step 1, line_03.json); the fixture checks this against the event.
SOURCE = "urn:provkg:dataset/gs%3A%2F%2Fmock-bucket/copied.csv"
UPLOAD = "urn:provkg:dataset/bigquery/mock-project.test.upload"

DERIVED_QUERY = PREFIXES + (
    f"SELECT ?d ?name WHERE {{ ?d prov:wasDerivedFrom <{SOURCE}> . OPTIONAL {{ ?d provkg:name ?name }} }}"
)
DATASETS_QUERY = PREFIXES + (
    "SELECT ?d ?ns ?name WHERE { ?d a provkg:Dataset ; provkg:namespace ?ns ; provkg:name ?name } ORDER BY ?d"
)
EVENT_GRAPH_QUERY = f"SELECT ?g WHERE {{ GRAPH ?g {{ ?g a <{PK}LineageEvent> }} }} LIMIT 1"

RESULT_TYPES = {
    "application/sparql-results+json": "json",
    "application/sparql-results+xml": "xml",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
}
GRAPH_TYPES = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
}


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def loaded(server):
    """Post the Airflow scenario one event per request; returns
    {"graphs": [event graph IRI per accepted event, in posting order],
    "events": [the events], "by_file": {file name: graph IRI}}."""
    graphs, events, by_file = [], [], {}
    with httpx.Client(timeout=60) as client:
        for path in sorted(AIRFLOW.glob("line_*.json")):
            for event in load_events(path):
                r = client.post(server.url + "/api/v1/lineage", json=event)
                assert r.status_code == 201, (path.name, r.status_code, r.text)
                body = r.json()
                assert body["status"] == "accepted"
                graphs.append(body["graph"])
                events.append(event)
                by_file[path.name] = body["graph"]
    assert len(set(graphs)) == len(graphs) > 0
    return {"graphs": graphs, "events": events, "by_file": by_file}


@pytest.fixture(scope="module")
def derived_expected(loaded):
    """The rows DERIVED_QUERY must give, as far as the events say: the datasets
    written by the run that read gs://mock-bucket/copied.csv, with their names."""
    expected = set()
    for event in loaded["events"]:
        if any((i["namespace"], i["name"]) == ("gs://mock-bucket", "copied.csv") for i in event.get("inputs", [])):
            for out in event.get("outputs", []):
                expected.add((f"urn:provkg:dataset/{_seg(out['namespace'])}/{_seg(out['name'])}", out["name"]))
    assert (UPLOAD, "mock-project.test.upload") in expected  # the scenario's step 1
    return expected


@pytest.fixture(scope="module")
def event_graph(server, loaded):
    rows = server.sparql_select(EVENT_GRAPH_QUERY)
    assert len(rows) == 1
    assert rows[0]["g"] in loaded["graphs"]
    return rows[0]["g"]


def _seg(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


# --------------------------------------------------------------------------- helpers

def _get(server, query: str, accept: str | None = None, params: list[tuple[str, str]] = ()) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    return httpx.get(server.url + "/sparql", params=[("query", query), *params], headers=headers, timeout=60)


def _post_form(server, data: dict, accept: str | None = None) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    return httpx.post(server.url + "/sparql", data=data, headers=headers, timeout=60)


def _post_query(server, query: str, accept: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/sparql-query"}
    if accept:
        headers["Accept"] = accept
    return httpx.post(server.url + "/sparql", content=query.encode("utf-8"), headers=headers, timeout=60)


def _media(r: httpx.Response) -> str:
    return r.headers["content-type"].split(";", 1)[0].strip()


def _rows_json(text: str) -> tuple[list[str], set[tuple]]:
    doc = json.loads(text)
    head = doc["head"]["vars"]
    return head, {tuple(b[v]["value"] if v in b else None for v in head) for b in doc["results"]["bindings"]}


def _rows_xml(text: str) -> tuple[list[str], set[tuple]]:
    root = ET.fromstring(text)
    head = [v.get("name") for v in root.find(f"{SRX}head").findall(f"{SRX}variable")]
    rows = set()
    for result in root.find(f"{SRX}results").findall(f"{SRX}result"):
        values = {}
        for binding in result.findall(f"{SRX}binding"):
            (term,) = list(binding)
            values[binding.get("name")] = term.text or ""
        rows.add(tuple(values.get(v) for v in head))
    return head, rows


def _rows_csv(text: str) -> tuple[list[str], set[tuple]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    head, *body = list(reader)
    # SPARQL 1.1 CSV: an unbound variable is an empty field
    return head, {tuple(v if v != "" else None for v in row) for row in body}


def _tsv_term(field: str) -> str | None:
    """The value of one SPARQL 1.1 TSV field (IRIs and plain or typed literals)."""
    if field == "":
        return None
    if field.startswith("<") and field.endswith(">"):
        return field[1:-1]
    if field.startswith('"'):
        end = field.rindex('"')
        return field[1:end].encode("utf-8").decode("unicode_escape") if "\\" in field else field[1:end]
    return field


def _rows_tsv(text: str) -> tuple[list[str], set[tuple]]:
    lines = [line for line in text.split("\n") if line != ""]
    head = [v.lstrip("?") for v in lines[0].split("\t")]
    return head, {tuple(_tsv_term(f) for f in line.split("\t")) for line in lines[1:]}


PARSERS = {"json": _rows_json, "xml": _rows_xml, "csv": _rows_csv, "tsv": _rows_tsv}


def _triples(r: httpx.Response, rdf_format: str) -> Graph:
    g = Graph()
    g.parse(data=r.content, format=rdf_format)
    return g


def _count(server, query: str, params: list[tuple[str, str]] = ()) -> int:
    r = _get(server, query, "application/sparql-results+json", params)
    assert r.status_code == 200, r.text
    (row,) = r.json()["results"]["bindings"]
    return int(next(iter(row.values()))["value"])


# --------------------------------------------------------------------------- the three query operations

def test_get_post_form_and_post_query_give_the_same_select_answer(server, loaded):
    expected = {(f"urn:provkg:dataset/{_seg(d['namespace'])}/{_seg(d['name'])}", d["namespace"], d["name"])
                for e in loaded["events"] for d in e.get("inputs", []) + e.get("outputs", [])}
    answers = []
    for r in (_get(server, DATASETS_QUERY),
              _post_form(server, {"query": DATASETS_QUERY}),
              _post_query(server, DATASETS_QUERY)):
        assert r.status_code == 200, r.text
        assert _media(r) == "application/sparql-results+json"
        answers.append(r.json())
    assert answers[0] == answers[1] == answers[2]
    rows = [tuple(b[v]["value"] for v in ("d", "ns", "name")) for b in answers[0]["results"]["bindings"]]
    assert set(rows) == expected  # every dataset the events name, and no other
    assert len(rows) == len(expected)  # no duplicates from the union of event graphs


def test_post_form_with_charset_and_get_with_url_encoded_query(server, derived_expected):
    r = httpx.post(server.url + "/sparql", content=f"query={_seg(DERIVED_QUERY)}".encode(),
                   headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}, timeout=60)
    assert r.status_code == 200, r.text
    assert derived_expected <= _rows_json(r.text)[1]


# --------------------------------------------------------------------------- SELECT / ASK result formats

def test_select_formats_by_accept_hold_the_same_rows(server, derived_expected):
    answers = {}
    for media, kind in RESULT_TYPES.items():
        r = _get(server, DERIVED_QUERY, media)
        assert r.status_code == 200, (media, r.text)
        assert _media(r) == media
        head, rows = PARSERS[kind](r.text)
        assert head == ["d", "name"], (media, head)
        answers[kind] = rows
    assert answers["json"] == answers["xml"] == answers["csv"] == answers["tsv"]
    assert derived_expected <= answers["json"]
    # every other row is a version of one of those datasets
    bases = {d for d, _ in derived_expected}
    assert all(d in bases or any(d.startswith(b + "/") for b in bases) for d, _ in answers["json"])


def test_default_result_format_is_json_and_accept_quality_is_honoured(server, derived_expected):
    for accept in (None, "*/*"):
        r = _get(server, DERIVED_QUERY, accept)
        assert r.status_code == 200
        assert _media(r) == "application/sparql-results+json"
    r = _get(server, DERIVED_QUERY, "application/sparql-results+json;q=0.2, text/csv;q=0.9")
    assert _media(r) == "text/csv"
    assert derived_expected <= _rows_csv(r.text)[1]


@pytest.mark.parametrize("media", ["application/sparql-results+json", "application/sparql-results+xml"])
def test_ask_true_and_false(server, media, derived_expected):
    target = sorted(derived_expected)[0][0]
    true_q = PREFIXES + f"ASK {{ <{target}> prov:wasDerivedFrom <{SOURCE}> }}"
    false_q = PREFIXES + f"ASK {{ <{SOURCE}> prov:wasDerivedFrom <{target}> }}"
    answers = []
    for q in (true_q, false_q):
        r = _get(server, q, media)
        assert r.status_code == 200, r.text
        assert _media(r) == media
        if media.endswith("json"):
            value = json.loads(r.text)["boolean"]
            assert isinstance(value, bool)
        else:
            text = ET.fromstring(r.text).find(f"{SRX}boolean").text
            assert text in ("true", "false")
            value = text == "true"
        answers.append(value)
    assert answers == [True, False]


# --------------------------------------------------------------------------- CONSTRUCT / DESCRIBE formats

CONSTRUCT_QUERY = PREFIXES + (
    "CONSTRUCT { ?d prov:wasDerivedFrom ?src ; provkg:name ?name } "
    "WHERE { ?d prov:wasDerivedFrom ?src . OPTIONAL { ?d provkg:name ?name } }"
)


@pytest.mark.parametrize("query", [CONSTRUCT_QUERY, f"DESCRIBE <{UPLOAD}>"], ids=["construct", "describe"])
def test_graph_formats_by_accept_parse_back_to_the_same_triples(server, query):
    graphs = {}
    for media, rdf_format in GRAPH_TYPES.items():
        r = _get(server, query, media)
        assert r.status_code == 200, (media, r.text)
        assert _media(r) == media
        graphs[media] = _triples(r, rdf_format)
    sets = {media: set(g) for media, g in graphs.items()}
    first = sets["text/turtle"]
    assert len(first) > 0
    for media, triples in sets.items():
        assert triples == first, media
    if query is CONSTRUCT_QUERY:
        derivations = _count(server, PREFIXES + "SELECT (COUNT(*) AS ?n) WHERE "
                             "{ SELECT DISTINCT ?d ?s { ?d prov:wasDerivedFrom ?s } }")
        names = _count(server, PREFIXES + "SELECT (COUNT(*) AS ?n) WHERE "
                       "{ SELECT DISTINCT ?d ?n { ?d prov:wasDerivedFrom ?s ; provkg:name ?n } }")
        assert len(first) == derivations + names
        assert (URIRef(UPLOAD), URIRef(PROV + "wasDerivedFrom"), URIRef(SOURCE)) in first
    else:
        assert {s for s, _, _ in first} == {URIRef(UPLOAD)}
        described = _count(server, f"SELECT (COUNT(*) AS ?n) WHERE {{ <{UPLOAD}> ?p ?o }}")
        assert len(first) == described
    # a serialisation that repeats triples would still parse; N-Triples shows it
    lines = [line for line in _get(server, query, "application/n-triples").text.splitlines() if line.strip()]
    assert len(lines) == len(set(lines)) == len(first)


def test_default_graph_format_is_turtle(server):
    r = _get(server, f"DESCRIBE <{UPLOAD}>", "*/*")
    assert r.status_code == 200
    assert _media(r) == "text/turtle"
    assert len(_triples(r, "turtle")) > 0


# --------------------------------------------------------------------------- the RDF dataset

def test_union_default_graph_is_a_set_of_triples(server):
    stats = server.stats()
    total = _count(server, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    distinct = _count(server, "SELECT (COUNT(*) AS ?n) WHERE { SELECT DISTINCT ?s ?p ?o { ?s ?p ?o } }")
    in_graphs = _count(server, "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert total == distinct == stats["triples"]
    assert in_graphs == stats["quads"] > distinct  # events repeat triples (jobs, runs) across graphs


def test_default_graph_uri_restricts_the_default_graph(server, event_graph):
    in_graph = _count(server, f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{event_graph}> {{ ?s ?p ?o }} }}")
    restricted = _count(server, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", [("default-graph-uri", event_graph)])
    assert 0 < restricted == in_graph < server.stats()["triples"]
    # the very triples of that graph, by CONSTRUCT
    r = _get(server, "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "application/n-triples",
             [("default-graph-uri", event_graph)])
    assert r.status_code == 200
    r2 = _get(server, f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{event_graph}> {{ ?s ?p ?o }} }}",
              "application/n-triples")
    assert set(_triples(r, "nt")) == set(_triples(r2, "nt"))
    # the event graph describes itself: it is the one LineageEvent of that default graph
    r = _get(server, f"SELECT ?e WHERE {{ ?e a <{PK}LineageEvent> }}", "application/sparql-results+json",
             [("default-graph-uri", event_graph)])
    assert [b["e"]["value"] for b in r.json()["results"]["bindings"]] == [event_graph]


def test_repeated_default_graph_uri_is_the_merge_of_the_graphs(server, loaded):
    # START and COMPLETE of the same run share the run's and job's triples
    g1, g2 = loaded["by_file"]["line_02.json"], loaded["by_file"]["line_03.json"]
    union_distinct = _count(server, "SELECT (COUNT(*) AS ?n) WHERE { SELECT DISTINCT ?s ?p ?o { "
                            f"{{ GRAPH <{g1}> {{ ?s ?p ?o }} }} UNION {{ GRAPH <{g2}> {{ ?s ?p ?o }} }} }} }}")
    both = _count(server, f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{g1}> {{ ?s ?p ?o }} GRAPH <{g2}> {{ ?s ?p ?o }} }}")
    assert both > 0  # the two graphs do overlap, so a multiset union would show
    merged = _count(server, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
                    [("default-graph-uri", g1), ("default-graph-uri", g2)])
    # SPARQL 1.1 Protocol §2.1.4 / Query §13.2.1: the default graph is the RDF merge
    assert merged == union_distinct


def test_named_graph_uri_restricts_graph_variable(server, loaded, event_graph):
    q = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"

    def graphs(params):
        r = _get(server, q, "application/sparql-results+json", params)
        assert r.status_code == 200, r.text
        return {b["g"]["value"] for b in r.json()["results"]["bindings"]}

    assert graphs([]) == set(loaded["graphs"])
    assert graphs([("named-graph-uri", event_graph)]) == {event_graph}
    other = next(g for g in loaded["graphs"] if g != event_graph)
    assert graphs([("named-graph-uri", event_graph), ("named-graph-uri", other)]) == {event_graph, other}


def test_dataset_parameters_work_with_post_form(server, event_graph):
    r = _post_form(server, {"query": "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }",
                            "named-graph-uri": [event_graph]})
    assert r.status_code == 200
    assert [b["g"]["value"] for b in r.json()["results"]["bindings"]] == [event_graph]
    in_graph = _count(server, f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{event_graph}> {{ ?s ?p ?o }} }}")
    r = _post_form(server, {"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
                            "default-graph-uri": [event_graph]})
    assert int(r.json()["results"]["bindings"][0]["n"]["value"]) == in_graph
    # §2.1.3: with the query as the POST body, dataset parameters ride in the URL
    r = httpx.post(server.url + "/sparql", params={"default-graph-uri": event_graph},
                   content=b"SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
                   headers={"Content-Type": "application/sparql-query"}, timeout=60)
    assert r.status_code == 200, r.text
    assert int(r.json()["results"]["bindings"][0]["n"]["value"]) == in_graph


def test_from_clause_in_the_query_is_honoured(server, event_graph):
    in_graph = _count(server, f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{event_graph}> {{ ?s ?p ?o }} }}")
    assert _count(server, f"SELECT (COUNT(*) AS ?n) FROM <{event_graph}> WHERE {{ ?s ?p ?o }}") == in_graph
    assert _count(server, f"SELECT (COUNT(DISTINCT ?g) AS ?n) FROM NAMED <{event_graph}> "
                          "WHERE { GRAPH ?g { ?s ?p ?o } }") == 1


def test_bad_graph_iri_is_400(server):
    r = _get(server, "SELECT * WHERE { ?s ?p ?o } LIMIT 1", None, [("default-graph-uri", "not an iri")])
    assert r.status_code == 400
    assert "graph" in r.json()["error"].lower()


# --------------------------------------------------------------------------- updates are refused

INSERT = "INSERT DATA { <urn:provkg:test/s> <urn:provkg:test/p> <urn:provkg:test/o> }"
INSERTED = "ASK { <urn:provkg:test/s> <urn:provkg:test/p> <urn:provkg:test/o> }"


def _update_requests(server):
    url = server.url + "/sparql"
    yield "update= form parameter", lambda: httpx.post(url, data={"update": INSERT}, timeout=60)
    yield "update= URL parameter", lambda: httpx.get(url, params={"update": INSERT}, timeout=60)
    yield "application/sparql-update body", lambda: httpx.post(
        url, content=INSERT.encode(), headers={"Content-Type": "application/sparql-update"}, timeout=60)
    yield "INSERT DATA as query (GET)", lambda: httpx.get(url, params={"query": INSERT}, timeout=60)
    yield "INSERT DATA as query (form)", lambda: httpx.post(url, data={"query": INSERT}, timeout=60)
    yield "INSERT DATA as query (sparql-query body)", lambda: httpx.post(
        url, content=INSERT.encode(), headers={"Content-Type": "application/sparql-query"}, timeout=60)
    yield "lower-case update with a prologue", lambda: httpx.post(
        url, data={"query": "PREFIX ex: <urn:provkg:test/>\nBASE <urn:provkg:>\n" + INSERT.lower()}, timeout=60)
    yield "DELETE WHERE as query", lambda: httpx.post(url, data={"query": "DELETE WHERE { ?s ?p ?o }"}, timeout=60)
    yield "DROP ALL as query", lambda: httpx.post(url, data={"query": "DROP ALL"}, timeout=60)
    yield "update after a comment line", lambda: httpx.post(
        url, data={"query": "# add one test triple\n" + INSERT}, timeout=60)


def test_updates_are_refused_with_4xx_and_a_message_and_change_nothing(server, loaded):
    before = server.stats()
    failures = []
    for label, send in _update_requests(server):
        r = send()
        if not (400 <= r.status_code < 500):
            failures.append(f"{label}: HTTP {r.status_code}")
            continue
        message = r.json().get("error", "")
        if "update" not in message.lower():
            failures.append(f"{label}: unclear message {message!r}")
    assert server.stats() == before
    assert _get(server, INSERTED, "application/sparql-results+json").json()["boolean"] is False
    assert not failures, failures


# --------------------------------------------------------------------------- protocol errors

def test_syntax_error_is_400_with_message(server):
    for r in (_get(server, "SELEC ?x WHERE { ?x ?p ?o }"),
              _post_form(server, {"query": "SELECT ?x WHERE { ?x ?p "}),
              _post_query(server, "ASK {")):
        assert r.status_code == 400
        message = r.json()["error"]
        assert "syntax" in message.lower(), message


def test_missing_query_is_400(server):
    for r in (httpx.get(server.url + "/sparql", timeout=30),
              httpx.post(server.url + "/sparql", data={"default-graph-uri": "urn:provkg:x"}, timeout=30),
              httpx.get(server.url + "/sparql", params={"named-graph-uri": "urn:provkg:x"}, timeout=30)):
        assert r.status_code == 400
        assert "query" in r.json()["error"]


def test_two_queries_are_400(server):
    r = httpx.get(server.url + "/sparql", params=[("query", "ASK {}"), ("query", "ASK {}")], timeout=30)
    assert r.status_code == 400
    assert "query" in r.json()["error"]


@pytest.mark.parametrize("query", ["SELECT * WHERE { ?s ?p ?o } LIMIT 1", "ASK { ?s ?p ?o }",
                                   "CONSTRUCT WHERE { ?s ?p ?o } LIMIT 1"])
def test_accept_that_matches_nothing_is_406(server, query):
    r = _get(server, query, "image/png")
    assert r.status_code == 406
    assert "image/png" in r.json()["error"]


def test_select_asked_as_rdf_graph_is_406(server):
    assert _get(server, "SELECT * WHERE { ?s ?p ?o } LIMIT 1", "text/turtle").status_code == 406
    assert _get(server, "CONSTRUCT WHERE { ?s ?p ?o } LIMIT 1", "text/csv").status_code == 406


@pytest.mark.parametrize("ctype", ["text/plain", "application/json", "application/sparql-results+json"])
def test_unsupported_post_content_type_is_415(server, ctype):
    r = httpx.post(server.url + "/sparql", content=b"SELECT * WHERE { ?s ?p ?o } LIMIT 1",
                   headers={"Content-Type": ctype}, timeout=30)
    assert r.status_code == 415
    assert "application/sparql-query" in r.json()["error"]


# --------------------------------------------------------------------------- SPARQLWrapper 2.0, unchanged

def _wrapper(server, query: str, fmt: str, method: str) -> SPARQLWrapper:
    s = SPARQLWrapper(server.url + "/sparql")
    s.setQuery(query)
    s.setReturnFormat(fmt)
    s.setMethod(method)
    return s


@pytest.mark.parametrize("method", [GET, POST])
def test_sparqlwrapper_select(server, method, derived_expected):
    answers = {}
    res = _wrapper(server, DERIVED_QUERY, JSON, method).query().convert()
    answers["json"] = _rows_json(json.dumps(res))[1]
    res = _wrapper(server, DERIVED_QUERY, XML, method).query().convert()
    answers["xml"] = _rows_xml(res.toxml())[1]
    res = _wrapper(server, DERIVED_QUERY, CSV, method).query().convert()
    answers["csv"] = _rows_csv(res.decode("utf-8"))[1]
    res = _wrapper(server, DERIVED_QUERY, TSV, method).query().convert()
    answers["tsv"] = _rows_tsv(res.decode("utf-8"))[1]
    assert answers["json"] == answers["xml"] == answers["csv"] == answers["tsv"]
    assert derived_expected <= answers["json"]


@pytest.mark.parametrize("method", [GET, POST])
def test_sparqlwrapper_ask(server, method):
    yes = PREFIXES + f"ASK {{ <{UPLOAD}> prov:wasDerivedFrom <{SOURCE}> }}"
    no = PREFIXES + f"ASK {{ <{SOURCE}> prov:wasDerivedFrom <{UPLOAD}> }}"
    assert _wrapper(server, yes, JSON, method).query().convert()["boolean"] is True
    assert _wrapper(server, no, JSON, method).query().convert()["boolean"] is False
    doc = _wrapper(server, yes, XML, method).query().convert()
    assert doc.getElementsByTagName("boolean")[0].firstChild.data == "true"
    doc = _wrapper(server, no, XML, method).query().convert()
    assert doc.getElementsByTagName("boolean")[0].firstChild.data == "false"


@pytest.mark.parametrize("method", [GET, POST])
def test_sparqlwrapper_construct(server, method):
    expected = set(_triples(_get(server, CONSTRUCT_QUERY, "application/n-triples"), "nt"))
    assert expected
    for fmt in (TURTLE, N3):
        data = _wrapper(server, CONSTRUCT_QUERY, fmt, method).query().convert()
        assert isinstance(data, bytes)
        g = Graph()
        g.parse(data=data, format="turtle")
        assert set(g) == expected, fmt
    for fmt in (RDFXML, JSONLD):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # SPARQLWrapper builds a ConjunctiveGraph
            g = _wrapper(server, CONSTRUCT_QUERY, fmt, method).query().convert()
        assert isinstance(g, rdflib.Graph)
        assert set(g.triples((None, None, None))) == expected, fmt


def test_sparqlwrapper_update_is_refused(server):
    before = server.stats()
    s = SPARQLWrapper(server.url + "/sparql")
    s.setMethod(POST)
    s.setQuery(INSERT)
    with pytest.raises(QueryBadFormed):
        s.query()
    assert server.stats() == before


# --------------------------------------------------------------------------- rdflib SPARQLStore, unchanged

def test_rdflib_sparqlstore_graph_query_and_triples(server, derived_expected):
    g = Graph(store=SPARQLStore(query_endpoint=server.url + "/sparql"))
    rows = {(str(r.d), None if r.name is None else str(r.name)) for r in g.query(DERIVED_QUERY)}
    assert derived_expected <= rows
    found = {str(s) for s, _, _ in g.triples((None, URIRef(PROV + "wasDerivedFrom"), URIRef(SOURCE)))}
    assert found == {d for d, _ in rows}
    assert g.query(PREFIXES + f"ASK {{ <{UPLOAD}> prov:wasDerivedFrom <{SOURCE}> }}").askAnswer is True
    assert len(g) == server.stats()["triples"]
    constructed = g.query(CONSTRUCT_QUERY).graph
    assert (URIRef(UPLOAD), URIRef(PROV + "wasDerivedFrom"), URIRef(SOURCE)) in constructed


def test_rdflib_sparqlstore_contexts(server, loaded, event_graph):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ConjunctiveGraph, deprecated in rdflib 7
        cg = rdflib.ConjunctiveGraph(store=SPARQLStore(query_endpoint=server.url + "/sparql"))
        contexts = {str(c.identifier if isinstance(c, Graph) else c) for c in cg.contexts()}
        assert contexts == set(loaded["graphs"])
        in_graph = _count(server, f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{event_graph}> {{ ?s ?p ?o }} }}")
        # a context is queried through default-graph-uri
        assert len(cg.get_context(URIRef(event_graph))) == in_graph
        step1 = URIRef(loaded["by_file"]["line_03.json"])
        found = set(cg.get_context(step1).triples((URIRef(UPLOAD), URIRef(PROV + "wasDerivedFrom"), None)))
        assert (URIRef(UPLOAD), URIRef(PROV + "wasDerivedFrom"), URIRef(SOURCE)) in found
        other = URIRef(loaded["by_file"]["line_16.json"])
        assert set(cg.get_context(other).triples((URIRef(UPLOAD), None, None))) == set()


# --------------------------------------------------------------------------- a query that crashes the engine

def _mixed_timezone_times(n: int = 60) -> str:
    """``n`` xsd:dateTime literals, some with a timezone and some without."""
    rng = random.Random(1)
    return " ".join(f'"2024-01-01T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00'
                    f'{rng.choice(["", "Z", "+14:00", "-14:00"])}"^^<http://www.w3.org/2001/XMLSchema#dateTime>'
                    for _ in range(n))


@pytest.mark.parametrize("order", ["?t", "DESC(?t)"])
def test_a_query_that_crashes_the_engine_gets_500_and_the_server_lives_on(server, loaded, order):
    """Oxigraph aborts its process (a Rust panic, SIGABRT) when ORDER BY
    compares xsd:dateTime values with and without a timezone; no data is
    needed, the query alone does it. /sparql runs queries in worker processes:
    the request gets a 500 saying what happened, the worker is replaced, the
    server stays up and the next query is answered."""
    query = f"SELECT ?t WHERE {{ VALUES ?t {{ {_mixed_timezone_times()} }} }} ORDER BY {order}"
    r = _post_form(server, {"query": query}, "application/sparql-results+json")
    assert r.status_code == 500, r.text[:300]
    error = r.json()["error"]
    assert "query engine crashed on this query" in error and "restarted" in error and "SIGABRT" in error
    assert server.process.poll() is None
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
    assert _count(server, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }") == server.stats()["triples"]
    # the suggested rewrite answers
    rows = _post_form(server, {"query": query.replace(f"ORDER BY {order}", "ORDER BY STR(?t)")})
    assert rows.status_code == 200 and len(rows.json()["results"]["bindings"]) == 60
    assert "panicked" in server.tail(200)  # the engine's own words are in the server's log


def test_every_answer_sees_the_writes_answered_before_it(server, loaded):
    """Queries read a snapshot of the store; a new one is taken when the
    store changed, so a query sent after an event was accepted finds it."""
    for i in range(3):
        event = json.loads(json.dumps(load_events(sorted(AIRFLOW.glob("line_*.json"))[0])[0]))
        event["run"]["runId"] = str(uuid.uuid4())
        posted = httpx.post(server.url + "/api/v1/lineage", json=event, timeout=60)
        assert posted.status_code == 201, posted.text
        graph = posted.json()["graph"]
        r = _get(server, f"ASK {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}", "application/sparql-results+json")
        assert r.status_code == 200 and r.json()["boolean"] is True, (i, r.text)
