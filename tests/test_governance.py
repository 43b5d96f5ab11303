"""Known-answer tests of the five governance questions (docs/demo.md), each
through the three interfaces: SPARQL (POST /sparql, small queries written here
that read the facts directly), the HTTP named queries (GET /api/v1/queries/...)
and the command line (``provkg query ... --json`` on the running server's store,
read-only; ``provkg erasure-request`` on a store of its own).

The demo estate is loaded into a real ``provkg serve`` by emitting every event of
``provkg.demo.demo_events()`` through openlineage-python's ``HttpTransport``.
Every expectation comes from ``provkg.demo.KNOWN_ANSWERS`` or from reading the
demo events themselves (lineage recomputed from their inputs and outputs).

A second estate (tests/pipelines.py: standard facets only, built with the
client's event_v2 / facet_v2 classes and emitted through ``OpenLineageClient``)
goes into a second server, and schema-breaking custom facets are checked to be
refused with 422 and a pointer, leaving the store unchanged.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import unquote

import httpx
import pipelines
import pytest
import requests
from conftest import SPEC, start_server, stop_server
from openlineage.client import OpenLineageClient
from openlineage.client.transport.http import HttpCompression, HttpConfig, HttpTransport
from pyoxigraph import Literal, NamedNode, Variable

from provkg.demo import KNOWN_ANSWERS, demo_events
from provkg.iris import IriMinter
from provkg.named_queries import bind_values, load_named_queries

K = KNOWN_ANSWERS
EVENTS = demo_events()
IRI = IriMinter()
SUBJECT = K["withdrawn_subject"]
V1, V2 = K["model_versions"]["1"], K["model_versions"]["2"]
REQUESTER = "dpo@bank.example"
A17 = "https://w3id.org/dpv/legal/eu/gdpr#A17"
PII_MARKERS = {"pii", "personal_data", "personal"}  # docs/ai-lineage.md §1, tags

PREFIXES = """
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
PREFIX dqv: <http://www.w3.org/ns/dqv#>
PREFIX mls: <http://www.w3.org/ns/mls#>
PREFIX dpv: <https://w3id.org/dpv#>
PREFIX fair4ml: <https://w3id.org/fair4ml#>
PREFIX provkg: <https://w3id.org/provkg/ns#>
"""


# -- reading the events ---------------------------------------------------------------------


def _ds_iri(ds: dict) -> str:
    return IRI.dataset(ds["namespace"], ds["name"]).value


def _entity(ds: dict) -> str:
    """The entity a dataset in an event names: its stated version, else the dataset."""
    facets = ds.get("facets") or {}
    version = (facets.get("version") or {}).get("datasetVersion") or \
        (facets.get("provkg_modelVersion") or {}).get("version")
    dataset = IRI.dataset(ds["namespace"], ds["name"])
    return IRI.dataset_version(dataset, version).value if version else dataset.value


def _is_model(ds: dict) -> bool:
    facets = ds.get("facets") or {}
    return (facets.get("datasetType") or {}).get("datasetType", "").upper() == "MODEL" \
        or "provkg_modelVersion" in facets


def _job_type(event: dict) -> str:
    return ((event["job"].get("facets") or {}).get("jobType") or {}).get("jobType", "")


class Estate:
    """Runs, entities and lineage as the events state them (no provkg involved)."""

    def __init__(self, events: list[dict]):
        self.events = events
        self.runs: dict[str, dict] = {}
        for e in events:
            run = self.runs.setdefault(e["run"]["runId"], {"events": [], "job": e["job"]["name"],
                                                           "jobType": _job_type(e), "start": None, "complete": None})
            run["events"].append(e)
            if e["eventType"] == "START":
                run["start"] = e["eventTime"]
            elif e["eventType"] == "COMPLETE":
                run["complete"] = e
        self.generated_by = {_entity(o): rid for rid, r in self.runs.items() if r["complete"]
                             for o in r["complete"]["outputs"]}

    def complete(self, job_suffix: str, date: str) -> dict:
        found = [r["complete"] for r in self.runs.values() if r["job"].endswith(job_suffix) and r["complete"]
                 and r["complete"]["eventTime"].startswith(date)]
        assert len(found) == 1, (job_suffix, date)
        return found[0]

    def inputs(self, rid: str) -> list[str]:
        return [_entity(i) for i in self.runs[rid]["complete"]["inputs"]]

    def upstream_runs(self, entity: str) -> set[str]:
        """Every run upstream of an entity, following the versions each run read."""
        seen: set[str] = set()
        todo = [entity]
        while todo:
            rid = self.generated_by.get(todo.pop())
            if rid is not None and rid not in seen:
                seen.add(rid)
                todo.extend(self.inputs(rid))
        return seen

    def upstream_entities(self, entity: str) -> set[str]:
        return {i for rid in self.upstream_runs(entity) for i in self.inputs(rid)}

    def forward(self, dataset: str, as_of: str | None = None) -> dict[str, set[str]]:
        """Forward impact at dataset level (any version of a dataset read counts, as
        forward-impact does): model versions written, deployments, predictions, of
        runs started no later than ``as_of``."""
        def started_in_time(r: dict) -> bool:
            return as_of is None or _ts(r["start"]) <= _ts(as_of)

        reached, changed = {dataset}, True
        while changed:
            changed = False
            for r in self.runs.values():
                c = r["complete"]
                if c and started_in_time(r) and {_ds_iri(i) for i in c["inputs"]} & reached:
                    new = {_ds_iri(o) for o in c["outputs"]} - reached
                    reached |= new
                    changed |= bool(new)
        out: dict[str, set[str]] = {"ModelVersion": set(), "Deployment": set(), "Prediction": set()}
        for r in self.runs.values():
            c = r["complete"]
            if not c or not started_in_time(r) or not {_ds_iri(i) for i in c["inputs"]} & reached:
                continue
            out["ModelVersion"] |= {_entity(o) for o in c["outputs"] if _is_model(o)}
            facets = c["run"]["facets"]
            if "provkg_deployment" in facets:
                out["Deployment"].add(IRI.mint("deployment", facets["provkg_deployment"]["deploymentId"]).value)
            for p in (facets.get("provkg_inference") or {}).get("predictions", []):
                if as_of is None or _ts(p["timestamp"]) <= _ts(as_of):
                    out["Prediction"].add(IRI.mint("prediction", p["predictionId"]).value)
        return out

    def column_closure(self, column: tuple[str, str, str]) -> set[str]:
        """Columns derived from a column, by the events' columnLineage facets."""
        edges = defaultdict(set)
        for e in self.events:
            for o in e.get("outputs", []):
                facet = (o.get("facets") or {}).get("columnLineage") or {}
                for field, spec in (facet.get("fields") or {}).items():
                    for src in spec.get("inputFields", []):
                        edges[(src["namespace"], src["name"], src["field"])].add((o["namespace"], o["name"], field))
                for src in facet.get("dataset") or []:  # dataset-level influence: record it, too
                    edges[(src["namespace"], src["name"], src["field"])].add((o["namespace"], o["name"], None))
        seen, todo = set(), [column]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return {IRI.column(IRI.dataset(ns, n), f).value if f else IRI.dataset(ns, n).value for ns, n, f in seen}

    def predictions(self) -> dict[str, dict]:
        return {IRI.mint("prediction", p["predictionId"]).value: {**p, "deploymentId": f["deploymentId"]}
                for r in self.runs.values() if r["complete"]
                for f in [r["complete"]["run"]["facets"].get("provkg_inference")] if f
                for p in f["predictions"]}

    def hyperparameters(self, training: dict) -> dict:
        """provkg_training hyperparameters and executionParameters of a training event."""
        facets = training["run"]["facets"]
        values = dict((facets.get("provkg_training") or {}).get("hyperparameters") or {})
        for p in (facets.get("executionParameters") or {}).get("parameters", []):
            values[p["key"]] = p.get("value")
        return values


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _same(a, b) -> bool:
    """Equal as numbers when both read as numbers, else as text."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


DEMO = Estate(EVENTS)


# -- the interfaces ---------------------------------------------------------------------------


def provkg(*args: str, data=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROVKG_OPENLINEAGE_SPEC": str(SPEC), "COLUMNS": "200"}
    if data is not None:
        env["PROVKG_DATA"] = str(data)
    return subprocess.run([sys.executable, "-m", "provkg", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def select(server, body: str) -> list[dict]:
    return server.sparql_select(PREFIXES + body)


def column(server, body: str, var: str) -> set[str]:
    return {row[var] for row in select(server, body) if var in row}


def named(server, name: str, **params) -> dict:
    r = httpx.get(f"{server.url}/api/v1/queries/{name}", params=params, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def cli_query(server, name: str, **params) -> dict:
    args = [a for k, v in params.items() for a in ("--param", f"{k}={v}")]
    done = provkg("query", name, *args, "--json", data=server.data)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def both(server, name: str, **params) -> dict:
    """The HTTP answer of a named query, checked equal to the CLI's on the same store."""
    http = named(server, name, **params)
    cli = cli_query(server, name, **params)
    assert cli == http
    return http


def nodes(answer: dict, kind: str | None = None) -> set[str]:
    return {r["node"] for r in answer["rows"] if kind is None or r["kind"] == kind}


@pytest.fixture(scope="module")
def demo(server):
    """The conftest server, loaded with the demo through openlineage-python's HttpTransport."""
    transport = HttpTransport(HttpConfig(url=server.url, timeout=30))
    statuses = [transport.emit(event).status_code for event in EVENTS]
    transport.close()
    assert statuses == [201] * K["events"]
    assert server.stats()["graphs"] == K["events"]
    return server


@pytest.fixture(scope="module")
def subject_iri(demo) -> str:
    """The withdrawn subject's IRI on the demo server: subjects are stored under
    random pseudonyms, so it is looked up (an auditor's request)."""
    r = httpx.post(demo.url + "/api/v1/subjects/resolve", json={"subject": SUBJECT}, timeout=30)
    assert r.status_code == 200, r.text
    assert SUBJECT not in r.text and r.json()["subject"].startswith(K["base"] + "subject/ps-")
    return r.json()["subject"]


# -- 1. prediction provenance ---------------------------------------------------------------


Q1 = K["q1_prediction_provenance"]
TRAIN_DAY2 = DEMO.complete("train_credit_model", "2026-11-02")
TRAIN_DAY1 = DEMO.complete("train_credit_model", "2026-11-01")


def test_q1_the_events_tell_the_known_story():
    prediction = DEMO.predictions()[Q1["prediction"]]
    assert prediction["captureTier"] == Q1["captureTier"] == "FULL_SNAPSHOT"
    assert prediction["featureSnapshot"]["uri"] == Q1["featureSnapshot"]
    assert IRI.mint("deployment", prediction["deploymentId"]).value == Q1["deployment"]
    assert IRI.run(TRAIN_DAY2["run"]["runId"]).value == Q1["training_run"]
    assert {k: v for k, v in DEMO.hyperparameters(TRAIN_DAY2).items() if k in Q1["hyperparameters"]} \
        == Q1["hyperparameters"]
    assert set(DEMO.inputs(TRAIN_DAY2["run"]["runId"])) == set(Q1["training_data"])
    assert set(Q1["source_versions"]) <= DEMO.upstream_entities(Q1["model_version"])


def test_q1_sparql_reads_the_chain(demo):
    rows = select(demo, f"""
        SELECT ?deployment ?model ?deployed ?run WHERE {{
          <{Q1['prediction']}> provkg:servedBy ?deployment ; provkg:madeBy ?model ; prov:generatedAtTime ?t .
          ?deployment provkg:deploys ?deployed .
          ?model provkg:trainedBy ?run }}""")
    assert rows == [{"deployment": Q1["deployment"], "model": Q1["model_version"], "deployed": Q1["model_version"],
                     "run": Q1["training_run"]}]
    settings = select(demo, f"""
        SELECT ?key ?value WHERE {{
          <{Q1['training_run']}> mls:hasInput ?s . ?s mls:specifiedBy/rdfs:label ?key ; mls:hasValue ?value }}""")
    values = {r["key"]: r["value"] for r in settings}
    assert len(values) == len(settings) == len(DEMO.hyperparameters(TRAIN_DAY2))
    for key, expected in Q1["hyperparameters"].items():
        assert _same(values[key], expected), key
    assert column(demo, f"SELECT ?d WHERE {{ <{Q1['model_version']}> fair4ml:trainedOn ?d }}", "d") \
        == set(Q1["training_data"])
    upstream = column(demo, f"SELECT ?e WHERE {{ <{Q1['model_version']}> prov:wasDerivedFrom+ ?e }}", "e")
    assert set(Q1["source_versions"]) | set(Q1["intermediate_versions"]) <= upstream
    for t in Q1["transformations"]:
        assert column(demo, f"SELECT ?j WHERE {{ <{t['run']}> provkg:job ?j }}", "j") == {t["job"]}


def test_q1_prediction_provenance_named_query_http_and_cli(demo):
    answer = both(demo, "prediction-provenance", node=Q1["prediction"])
    reached = nodes(answer)
    assert nodes(answer, "Deployment") == {Q1["deployment"]}
    assert nodes(answer, "ModelVersion") == {Q1["model_version"]}
    assert nodes(answer, "TrainingRun") == {Q1["training_run"]}
    assert Q1["inference_run"] in nodes(answer, "InferenceRun")
    # the day-2 versions only: training data, the applicant profile and the three sources
    assert nodes(answer, "DatasetVersion") == set(Q1["training_data"]) | set(Q1["intermediate_versions"]) \
        | set(Q1["source_versions"])
    assert not reached & (set(K["q3_erasure"]["holding"]) - set(Q1["source_versions"]))
    # the training run's hyperparameter settings, as SPARQL names them
    settings = column(demo, f"SELECT ?s WHERE {{ <{Q1['training_run']}> mls:hasInput ?s }}", "s")
    assert nodes(answer, "HyperParameterSetting") == settings and settings
    kinds = {r["node"]: r["kind"] for r in answer["rows"]}
    for t in Q1["transformations"]:
        assert t["run"] in reached and t["job"] in reached
    runs = {t["job"].rsplit(".", 1)[-1]: t["run"] for t in Q1["transformations"]}
    assert kinds[runs["build_credit_features"]] == "FeatureEngineeringRun"
    assert kinds[runs["label_defaults"]] == "LabellingRun"


def _report_sections(markdown: str) -> dict[str, dict[str, str]]:
    """``### heading`` -> {fact label: value} of a provenance report."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in markdown.splitlines():
        if line.startswith("### "):
            current = sections.setdefault(line[4:].strip(), {})
        elif current is not None and line.startswith("- ") and ": " in line:
            label, value = line[2:].split(": ", 1)
            current[label] = value
    return sections


def _check_report(markdown: str) -> None:
    model_out = next(o for o in TRAIN_DAY2["outputs"] if _is_model(o))
    digest = model_out["facets"]["provkg_modelVersion"]["artifactDigest"]
    version = model_out["facets"]["version"]["datasetVersion"]
    prediction = DEMO.predictions()[Q1["prediction"]]
    assert Q1["prediction"] in markdown and prediction["predictionId"] in markdown
    assert prediction["deploymentId"] == K["deployment"] and K["deployment"] in markdown
    assert f"{model_out['name']} version {version}" in markdown  # the model version's label
    assert digest in markdown
    sources = {_entity(i): i["name"] for rid in DEMO.upstream_runs(Q1["model_version"])
               for i in DEMO.runs[rid]["complete"]["inputs"]}
    for source in Q1["source_versions"]:
        assert sources[source] in markdown
    settings = {facts["hyperparameter"]: facts.get("value") for facts in _report_sections(markdown).values()
                if "hyperparameter" in facts}
    for key, expected in Q1["hyperparameters"].items():
        assert _same(settings.get(key), expected), (key, settings.get(key))


class _Headings(HTMLParser):
    def __init__(self):
        super().__init__()
        self.headings: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2", "h3"):
            self._open = tag
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag == self._open:
            self._open = None

    def handle_data(self, data):
        if self._open:
            self.headings[-1] += data


def test_q1_report_over_http_markdown_and_html(demo):
    r = httpx.get(demo.url + "/api/v1/reports/prediction-provenance",
                  params={"node": Q1["prediction"], "format": "markdown"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/markdown")
    _check_report(r.text)
    h = httpx.get(demo.url + "/api/v1/reports/prediction-provenance",
                  params={"node": Q1["prediction"], "format": "html"}, timeout=60)
    assert h.status_code == 200, h.text
    assert h.headers["content-type"].startswith("text/html")
    parser = _Headings()
    parser.feed(h.text)
    parser.close()
    md_headings = [line.lstrip("#").strip() for line in r.text.splitlines() if line.startswith("#")]
    assert parser.headings == md_headings and "Provenance report" in md_headings


def test_q1_report_over_the_cli(demo):
    done = provkg("report", Q1["prediction"], data=demo.data)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    _check_report(done.stdout)
    http = httpx.get(demo.url + "/api/v1/reports/prediction-provenance", params={"node": Q1["prediction"]},
                     timeout=60)
    if http.status_code == 200:  # the same report, but for the time it was generated

        def body(text: str) -> list[str]:
            return [line for line in text.splitlines() if not line.startswith("- generated:")]

        assert body(done.stdout) == body(http.text)


# -- 2. forward impact ---------------------------------------------------------------------


Q2 = K["q2_forward_impact"]


def test_q2_event_lineage_agrees_with_the_known_answers():
    full = DEMO.forward(Q2["from_dataset"])
    assert full["ModelVersion"] == set(Q2["model_versions"]) and len(full["ModelVersion"]) == 3
    assert full["Deployment"] == set(Q2["deployments"]) and len(full["Deployment"]) == 2
    assert len(full["Prediction"]) == Q2["predictions"] == len(DEMO.predictions()) == 12
    early = DEMO.forward(Q2["from_dataset"], Q2["as_of"])
    assert early["ModelVersion"] == set(Q2["model_versions_as_of"]) and len(early["ModelVersion"]) == 1
    assert early["Deployment"] == set(Q2["deployments_as_of"])
    assert len(early["Prediction"]) == Q2["predictions_as_of"] == 6


def test_q2_forward_impact_of_the_biased_source_http_and_cli(demo):
    expected = DEMO.forward(Q2["from_dataset"])
    answer = both(demo, "forward-impact", node=Q2["from_dataset"])
    for kind in ("ModelVersion", "Deployment", "Prediction"):
        assert nodes(answer, kind) == expected[kind], kind
        assert answer["summary"][kind] == len(expected[kind])
    assert answer["summary"]["Prediction"] == 12 and answer["summary"]["ModelVersion"] == 3
    assert set(Q2["datasets"]) <= nodes(answer)
    assert not set(Q2["not_reached"]) & nodes(answer)


def test_q2_forward_impact_as_of_the_end_of_day_1_http_and_cli(demo):
    expected = DEMO.forward(Q2["from_dataset"], Q2["as_of"])
    answer = both(demo, "forward-impact", node=Q2["from_dataset"], asOf="2026-11-01T23:59:59Z")
    for kind in ("ModelVersion", "Deployment", "Prediction"):
        assert nodes(answer, kind) == expected[kind], kind
    assert answer["summary"]["Prediction"] == 6 and answer["summary"]["ModelVersion"] == 1


def test_q2_sparql_counts_what_the_source_reached(demo):
    body = """
        SELECT (COUNT(DISTINCT ?p) AS ?predictions) (COUNT(DISTINCT ?mv) AS ?models) WHERE {{
          ?p a provkg:Prediction ; provkg:madeBy ?mv ; prov:generatedAtTime ?pt .
          ?mv prov:wasDerivedFrom+ ?v ; prov:generatedAtTime ?mt .
          ?v prov:specializationOf <{source}> .
          {filter} }}"""
    # the model versions that made predictions: the inference runs' model inputs (not the fraud model)
    serving = {_entity(i) for r in DEMO.runs.values() if r["jobType"] == "INFERENCE"
               for i in r["complete"]["inputs"] if _is_model(i)}
    everything = select(demo, body.format(source=Q2["from_dataset"], filter=""))
    assert everything == [{"predictions": str(Q2["predictions"]), "models": str(len(serving))}]
    cutoff = f'FILTER(?pt <= "{Q2["as_of"]}"^^xsd:dateTime && ?mt <= "{Q2["as_of"]}"^^xsd:dateTime)'
    early = select(demo, body.format(source=Q2["from_dataset"], filter=cutoff))
    assert early == [{"predictions": str(Q2["predictions_as_of"]), "models": str(len(Q2["model_versions_as_of"]))}]
    assert column(demo, f"SELECT ?mv WHERE {{ ?mv a provkg:ModelVersion ; prov:wasDerivedFrom+ ?v . "
                        f"?v prov:specializationOf <{Q2['from_dataset']}> }}", "mv") == set(Q2["model_versions"])


def test_q2_forward_impact_of_a_new_column_stops_at_the_profile(demo):
    start = Q2["dead_end_column"]
    expected = DEMO.column_closure(_column_key(start))
    assert expected == set(Q2["dead_end_columns"])
    answer = both(demo, "forward-impact", node=start)
    assert nodes(answer) == expected
    assert not {r["kind"] for r in answer["rows"]} & {"ModelVersion", "Prediction", "Deployment", "Feature"}
    assert column(demo, f"SELECT ?c WHERE {{ ?c prov:wasDerivedFrom+ <{start}> }}", "c") == expected


def test_q2_forward_impact_of_the_skewed_income_column(demo):
    start = Q2["from_column"]
    expected = DEMO.column_closure(_column_key(start))
    assert expected == set(Q2["columns"])
    answer = named(demo, "forward-impact", node=start)
    assert nodes(answer) == expected
    features = column(demo, "SELECT ?f WHERE { ?f a provkg:Feature }", "f")
    assert nodes(answer, "Feature") == expected & features and nodes(answer, "Feature")


def _column_key(column_iri: str) -> tuple[str, str, str]:
    """(namespace, name, field) of a demo column IRI, found among the events' datasets."""
    for e in EVENTS:
        for ds in e.get("inputs", []) + e.get("outputs", []):
            prefix = _ds_iri(ds) + "/column/"
            if column_iri.startswith(prefix):
                return ds["namespace"], ds["name"], unquote(column_iri[len(prefix):])
    raise AssertionError(column_iri)


# -- 3. erasure impact and consent violations ---------------------------------------------


Q3 = K["q3_erasure"]


def _holding_in_events() -> set[str]:
    return {_entity(ds) for e in EVENTS for ds in e.get("inputs", []) + e.get("outputs", [])
            if SUBJECT in ((ds.get("facets") or {}).get("provkg_dataSubjects") or {}).get("subjects", [])}


def _violations_in_events() -> set[str]:
    """Model versions whose training started after the subject's last withdrawal (not given
    again) and whose training data derive from a version holding the subject's data."""
    records = [r for e in EVENTS for r in (e["run"]["facets"].get("provkg_consent") or {}).get("records", [])
               if r["subject"] == SUBJECT]
    withdrawn = max(_ts(r["at"]) for r in records if r["status"] == "WITHDRAWN")
    assert not [r for r in records if r["status"] == "GIVEN" and _ts(r["at"]) > withdrawn]
    holding = _holding_in_events()
    out = set()
    for run in DEMO.runs.values():
        if run["jobType"] == "TRAINING" and _ts(run["start"]) > withdrawn:
            model = {_entity(o) for o in run["complete"]["outputs"] if _is_model(o)}
            if holding & DEMO.upstream_entities(next(iter(model))):
                out |= model
    return out


def test_q3_events_agree_with_the_known_answers():
    assert _holding_in_events() == set(Q3["holding"])
    about = {p for p, spec in DEMO.predictions().items() if spec.get("dataSubject") == SUBJECT}
    assert about == set(Q3["predictions"])
    assert _violations_in_events() == set(Q3["violations"])
    assert not set(Q3["not_violations"]) & _violations_in_events()


def test_q3_sparql_holding_predictions_and_the_violation_pattern(demo, subject_iri):
    assert column(demo, f"SELECT ?v WHERE {{ ?v provkg:holdsDataOf <{subject_iri}> }}", "v") == _holding_in_events()
    assert column(demo, f"SELECT ?p WHERE {{ ?p provkg:aboutSubject <{subject_iri}> }}", "p") == set(Q3["predictions"])
    violations = column(demo, f"""
        SELECT DISTINCT ?mv WHERE {{
          ?c dpv:hasDataSubject <{subject_iri}> ; dpv:hasConsentStatus dpv:ConsentWithdrawn ; provkg:statusAt ?w .
          FILTER NOT EXISTS {{ ?g dpv:hasDataSubject <{subject_iri}> ; dpv:hasConsentStatus dpv:ConsentGiven ;
                                  provkg:statusAt ?gt . FILTER(?gt > ?w) }}
          ?mv a provkg:ModelVersion ; provkg:trainedBy ?run ; prov:wasDerivedFrom+ ?held .
          ?held provkg:holdsDataOf <{subject_iri}> .
          ?run prov:startedAtTime ?t . FILTER(?t > ?w) }}""", "mv")
    assert violations == _violations_in_events() == set(Q3["violations"])
    assert V1 not in violations


def test_q3_erasure_impact_http_and_cli(demo, subject_iri):
    answer = both(demo, "erasure-impact", subject=subject_iri)
    held = {r["node"] for r in answer["rows"] if r["relation"].endswith("#heldIn")}
    about = {r["node"] for r in answer["rows"] if r["relation"].endswith("#subjectOf")}
    assert held == _holding_in_events()
    assert about == {p for p, s in DEMO.predictions().items() if s.get("dataSubject") == SUBJECT}
    assert nodes(answer, "ModelVersion") == set(Q3["model_versions"])
    assert nodes(answer, "Deployment") == set(Q3["deployments"])
    assert len(nodes(answer, "Prediction")) == Q3["predictions_by_affected_models"] == answer["summary"]["Prediction"]
    derived_versions = {d for d in Q3["derived"] if d not in Q3["model_versions"]}
    assert nodes(answer, "DatasetVersion") == set(Q3["holding"]) | derived_versions


def test_q3_consent_violations_http_and_cli(demo, subject_iri):
    answer = both(demo, "consent-violations", subject=subject_iri)
    assert {r["modelVersion"] for r in answer["rows"]} == set(Q3["violations"]) == _violations_in_events()
    assert V1 not in {r["modelVersion"] for r in answer["rows"]}
    assert {_ts(r["withdrawnAt"]) for r in answer["rows"]} == {_ts(K["consent_withdrawn_at"])}
    assert {r["heldBy"] for r in answer["rows"]} <= _holding_in_events()
    # without a subject every subject is checked: only subj-0042 ever withdrew
    everyone = named(demo, "consent-violations")
    assert {r["subject"] for r in everyone["rows"]} == {subject_iri}


def _recorded_request(rows: list[dict], run_id: str) -> dict:
    found = [r for r in rows if r["run"] == IRI.run(run_id).value]
    assert len(found) == 1, rows
    return found[0]


def request_query(subject_iri: str) -> str:
    return f"""
    SELECT ?run ?requester ?article ?findings ?types WHERE {{
      ?run a provkg:ErasureRequest , prov:Activity ; provkg:erasureSubject <{subject_iri}> ;
           prov:wasAssociatedWith ?agent ; provkg:gdprArticle ?article ; provkg:findings ?findings .
      ?agent a prov:Agent ; rdfs:label ?requester .
      FILTER(?requester = "{REQUESTER}") }}"""


def test_q3_erasure_request_over_http_is_recorded_as_provenance(demo, subject_iri):
    impact = named(demo, "erasure-impact", subject=subject_iri)
    r = httpx.post(demo.url + "/api/v1/erasure-requests", json={"subject": SUBJECT, "requestedBy": REQUESTER},
                   timeout=60)
    assert r.status_code == 201, r.text
    outcome = r.json()
    assert outcome["recorded"]["status"] == "accepted"
    assert {row["modelVersion"] for row in outcome["violations"]["rows"]} == set(Q3["violations"])
    expected = {**impact["summary"], "consentViolations": len(Q3["violations"])}
    assert outcome["findings"] == expected
    recorded = _recorded_request(select(demo, request_query(subject_iri)), outcome["runId"])
    assert recorded["article"] == A17
    assert json.loads(recorded["findings"]) == expected


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory):
    """The demo in a store of its own, for the CLI commands that write."""
    folder = tmp_path_factory.mktemp("cli-demo")
    events = folder / "demo.jsonl"
    assert provkg("demo-events", str(events)).returncode == 0
    done = provkg("ingest", str(events), data=folder / "data")
    assert done.returncode == 0 and f"{K['events']} events accepted" in done.stdout, done.stdout + done.stderr
    return folder / "data"


def test_q3_erasure_request_over_the_cli_is_recorded_as_provenance(demo, cli_store, subject_iri):
    done = provkg("erasure-request", SUBJECT, "--requested-by", REQUESTER, "--json", data=cli_store)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    impact = named(demo, "erasure-impact", subject=subject_iri)  # the same events on the server
    expected = {**impact["summary"], "consentViolations": len(Q3["violations"])}
    assert outcome["findings"] == expected
    assert {row["modelVersion"] for row in outcome["violations"]["rows"]} == set(Q3["violations"])
    # the CLI's store has pseudonyms of its own
    resolved = provkg("subjects", "resolve", SUBJECT, data=cli_store)
    assert resolved.returncode == 0, resolved.stderr
    found = provkg("sparql", PREFIXES + request_query(resolved.stdout.strip()), "--format", "json", data=cli_store)
    assert found.returncode == 0, found.stderr
    rows = [{k: v["value"] for k, v in b.items()} for b in json.loads(found.stdout)["results"]["bindings"]]
    recorded = _recorded_request(rows, outcome["runId"])
    assert recorded["article"] == A17
    assert json.loads(recorded["findings"]) == expected


# -- 4. bias attribution -----------------------------------------------------------------


Q4 = K["q4_bias"]


def _fairness_in_events() -> dict[str, set[float]]:
    """Entity -> values measured for the finding's attribute and group, as the events report them."""
    found = defaultdict(set)
    for e in EVENTS:
        for ds in e.get("inputs", []) + e.get("outputs", []):
            facet = (ds.get("facets") or {}).get("provkg_fairness")
            for m in (facet or {}).get("metrics", []):
                if (m["metric"], m["protectedAttribute"], m["group"]) == (Q4["metric"], Q4["protectedAttribute"],
                                                                           Q4["group"]):
                    found[_entity(ds)].add(m["value"])
    return found


def _stages() -> list[dict]:
    return [s for stage in Q4["stages"].values() for s in stage] + [Q4["model_stage"]]


def test_q4_events_measure_what_the_known_answers_say():
    measured = _fairness_in_events()
    for s in _stages():
        assert measured[s["entity"]] == {s["value"]}, s["entity"]
    assert {s["entity"] for s in _stages()} - {Q4["model_version"]} <= DEMO.upstream_entities(Q4["model_version"])


def test_q4_sparql_reads_each_stage(demo):
    rows = select(demo, f"""
        SELECT ?entity ?value ?exceeds WHERE {{
          <{Q4['model_version']}> prov:wasDerivedFrom* ?entity .
          ?m dqv:computedOn ?entity ; a provkg:FairnessMeasurement ; dqv:isMeasurementOf/rdfs:label "{Q4['metric']}" ;
             provkg:protectedAttribute "{Q4['protectedAttribute']}" ; provkg:group "{Q4['group']}" ;
             dqv:value ?value ; provkg:exceedsThreshold ?exceeds }}""")
    got = {r["entity"]: (float(r["value"]), r["exceeds"] == "true") for r in rows}
    assert got == {s["entity"]: (s["value"], s["exceedsThreshold"]) for s in _stages()}


def test_q4_bias_attribution_http_and_cli(demo):
    answer = both(demo, "bias-attribution", node=Q4["model_version"])
    rows = [r for r in answer["rows"] if r["attribute"] == Q4["protectedAttribute"] and r["group"] == Q4["group"]]
    by_entity = {r["entity"]: r for r in rows}
    assert set(by_entity) == {s["entity"] for s in _stages()}
    for s in _stages():
        row = by_entity[s["entity"]]
        assert row["value"] == s["value"] and row["exceeds"] is s["exceedsThreshold"]
    first = [r for r in answer["rows"] if r["firstStage"] is True]
    assert [r["entity"] for r in first] == [Q4["cause"]] == [K["biased_source_version"]]
    assert first[0]["biasConcept"] == Q4["bias"] == K["first_biased_stage_bias"]
    assert first[0]["stage"] == "source data"
    (features,) = [by_entity[s["entity"]] for s in Q4["stages"]["feature_engineering"]]
    assert features["stage"] == "feature engineering" and features["exceeds"] is True
    assert features["firstStage"] is False
    for s in Q4["stages"]["labelling"]:
        assert by_entity[s["entity"]]["stage"] == "labelling" and by_entity[s["entity"]]["exceeds"] is False
    for s in Q4["stages"]["source"] + Q4["stages"]["feature_engineering"] + Q4["stages"]["labelling"]:
        assert set(Q4["other_models"]) <= set((by_entity[s["entity"]]["alsoConsumedBy"] or "").split())


def test_q4_bias_attribution_lateral_answers_as_the_plain_join(demo):
    """bias-attribution looks the upstream measurements up with LATERAL (for
    Oxigraph's planner); for a group without OPTIONAL or FILTER that is the
    SPARQL 1.1 join, so the same text without the keyword must give the same rows."""
    text = load_named_queries()["bias-attribution"].text
    assert text.count("LATERAL {") == 1
    terms = {Variable("node"): NamedNode(Q4["model_version"])}

    def rows(query: str) -> list[tuple]:
        out = []
        for row in demo.sparql_select(bind_values(query, terms)):  # alsoConsumedBy is provkg's (@reach)
            out.append(tuple(sorted(row.items())))
        return sorted(out)
    lateral = rows(text)
    assert lateral == rows(text.replace("LATERAL {", "{"))
    # the rows hold every stage's measurement on the finding's attribute
    assert {dict(r)["entity"] for r in lateral} >= {s["entity"] for s in _stages()}


def test_q4_a_model_version_without_a_finding_has_no_attribution(demo):
    assert both(demo, "bias-attribution", node=V1)["rows"] == []
    assert not select(demo, f"""SELECT ?m WHERE {{ ?m dqv:computedOn <{V1}> ; a provkg:FairnessMeasurement ;
                                   provkg:exceedsThreshold true }}""")


# -- 5. version diff -------------------------------------------------------------------------


Q5 = K["q5_version_diff"]


def _diff_rows(answer: dict, aspect: str) -> dict[str, dict]:
    return {r["key"]: r for r in answer["rows"] if r["aspect"] == aspect}


def _schema_in_events(model_version: str) -> set[str]:
    """``dataset.field`` of every dataset the events of runs upstream of a model version record."""
    out = set()
    for rid in DEMO.upstream_runs(model_version):
        for e in DEMO.runs[rid]["events"]:
            for ds in e.get("inputs", []) + e.get("outputs", []):
                for f in ((ds.get("facets") or {}).get("schema") or {}).get("fields", []):
                    out.add(f"{ds['name']}.{f['name']}")
    return out


def _code_versions_in_events(model_version: str) -> dict[str, str]:
    out = {}
    for rid in DEMO.upstream_runs(model_version):
        run = DEMO.runs[rid]
        location = (run["complete"]["job"].get("facets") or {}).get("sourceCodeLocation")
        if location:
            out[run["job"]] = location["version"]
    return out


def test_q5_sparql_hyperparameters_that_differ(demo):
    rows = select(demo, f"""
        SELECT ?key ?a ?b WHERE {{
          <{K['training_runs']['1']}> mls:hasInput [ mls:specifiedBy ?p ; mls:hasValue ?a ] .
          <{K['training_runs']['2']}> mls:hasInput [ mls:specifiedBy ?p ; mls:hasValue ?b ] .
          ?p rdfs:label ?key . FILTER(STR(?a) != STR(?b)) }}""")
    h1, h2 = DEMO.hyperparameters(TRAIN_DAY1), DEMO.hyperparameters(TRAIN_DAY2)
    assert {r["key"] for r in rows} == {k for k in h1 if not _same(h1[k], h2.get(k))} == set(Q5["hyperparameters"])
    for r in rows:
        assert _same(r["a"], h1[r["key"]]) and _same(r["b"], h2[r["key"]])


def test_q5_version_diff_http_and_cli(demo):
    answer = both(demo, "version-diff", a=Q5["from"], b=Q5["to"])
    # hyperparameters: changed exactly where the events differ, with their values
    h1, h2 = DEMO.hyperparameters(TRAIN_DAY1), DEMO.hyperparameters(TRAIN_DAY2)
    hyper = _diff_rows(answer, "hyperparameter")
    assert set(hyper) == set(h1) | set(h2)
    assert {k for k, r in hyper.items() if r["change"] == "changed"} == {k for k in h1 if not _same(h1[k], h2[k])}
    assert {k for k, r in hyper.items() if r["change"] != "changed"} == {k for k in h1 if _same(h1[k], h2[k])}
    for key, row in hyper.items():
        assert _same(row["a"], h1[key]) and _same(row["b"], h2[key]), key
    assert set(Q5["hyperparameters"]) == {k for k, r in hyper.items() if r["change"] == "changed"}
    # training data: each input dataset, day-1 version -> day-2 version
    data = _diff_rows(answer, "training data")
    label = {_entity(i): f"{i['name']} version {i['facets']['version']['datasetVersion']}"
             for t in (TRAIN_DAY1, TRAIN_DAY2) for i in t["inputs"]}
    assert {(label[a], label[b]) for a, b in Q5["training_data"].items()} == {(r["a"], r["b"]) for r in data.values()}
    assert {r["change"] for r in data.values()} == {"changed"}
    # upstream schema: employment_status added where the events add it, nothing removed
    schema = _diff_rows(answer, "upstream schema")
    added = _schema_in_events(Q5["to"]) - _schema_in_events(Q5["from"])
    assert {k for k, r in schema.items() if r["change"] == "added"} == added
    assert added == {f"{name}.employment_status" for name in ("lending/applications", "analytics.applicant_profile")}
    assert {IRI.dataset(*next((d["namespace"], d["name"]) for e in EVENTS for d in e.get("inputs", []) + e.get(
        "outputs", []) if d["name"] == key.rsplit(".", 1)[0])).value for key in added} == set(Q5["schema_changes"])
    assert not [k for k, r in schema.items() if r["change"] == "removed"]
    # code versions: the training run's and the upstream jobs', changed where the events change them
    code = _diff_rows(answer, "code version")
    c1, c2 = _code_versions_in_events(Q5["from"]), _code_versions_in_events(Q5["to"])
    for job in c1:
        assert (code[job]["a"], code[job]["b"]) == (c1[job], c2[job])
    assert {k for k, r in code.items() if r["change"] == "changed"} == \
        {"training run"} | {j for j in c1 if c1[j] != c2[j]}
    for job_iri, (a, b) in Q5["code_versions"].items():
        job = job_iri.rsplit("/", 1)[-1]
        assert (code[job]["a"], code[job]["b"]) == (a, b)
    assert (code["training run"]["a"], code["training run"]["b"]) == \
        (TRAIN_DAY1["run"]["facets"]["provkg_training"]["codeVersion"],
         TRAIN_DAY2["run"]["facets"]["provkg_training"]["codeVersion"])
    # metrics: AUC changed, from and to the evaluated values
    metrics = _diff_rows(answer, "metric")
    assert metrics["auc"]["change"] == "changed"
    assert (float(metrics["auc"]["a"]), float(metrics["auc"]["b"])) == tuple(Q5["metrics"]["auc"])
    # environment: changed, and each side is the training run's environment
    env = _diff_rows(answer, "environment")["training run"]
    assert env["change"] == "changed"
    assert json.loads(env["a"]) == TRAIN_DAY1["run"]["facets"]["provkg_training"]["environment"]
    assert json.loads(env["b"]) == TRAIN_DAY2["run"]["facets"]["provkg_training"]["environment"]
    for lib, (a, b) in Q5["libraries"].items():
        assert (json.loads(env["a"])["libraries"][lib], json.loads(env["b"])["libraries"][lib]) == (a, b)


# -- schema-breaking custom facets ---------------------------------------------------------


def _break_inference(event: dict) -> str:
    predictions = event["run"]["facets"]["provkg_inference"]["predictions"]
    i = next(i for i, p in enumerate(predictions) if p["captureTier"] == "FULL_SNAPSHOT")
    del predictions[i]["featureSnapshot"]
    return f"/run/facets/provkg_inference/predictions/{i}"


def _break_model_version(event: dict) -> str:
    j = next(j for j, o in enumerate(event["outputs"]) if "provkg_modelVersion" in o["facets"])
    event["outputs"][j]["facets"]["provkg_modelVersion"]["artifactDigest"] = "md5:d41d8cd98f00b204e9800998ecf8427e"
    return f"/outputs/{j}/facets/provkg_modelVersion/artifactDigest"


def _break_consent(event: dict) -> str:
    event["run"]["facets"]["provkg_consent"]["records"][0]["status"] = "REVOKED"
    return "/run/facets/provkg_consent/records/0/status"


@pytest.mark.parametrize("facet,pick,breaker", [
    ("provkg_inference", lambda e: "provkg_inference" in e["run"]["facets"], _break_inference),
    ("provkg_modelVersion", lambda e: any("provkg_modelVersion" in o["facets"] for o in e["outputs"]),
     _break_model_version),
    ("provkg_consent", lambda e: "provkg_consent" in e["run"]["facets"], _break_consent),
])
def test_a_custom_facet_that_breaks_its_schema_is_refused_with_a_pointer(demo, facet, pick, breaker):
    event = copy.deepcopy(next(e for e in EVENTS if e["eventType"] == "COMPLETE" and pick(e)))
    pointer = breaker(event)
    before = demo.stats()
    transport = HttpTransport(HttpConfig(url=demo.url, timeout=30))
    with pytest.raises(requests.HTTPError) as refused:
        transport.emit(event)
    response = refused.value.response
    assert response.status_code == 422
    faults = response.json()["errors"]
    assert faults and all(f["pointer"].startswith("/") for f in faults)
    assert pointer in {f["pointer"] for f in faults}, faults
    assert any(facet in f["pointer"] for f in faults)
    assert demo.stats() == before


# -- a second estate: standard facets only -------------------------------------------------


RETAIL = Estate(pipelines.event_dicts())


def _retail_version(ds: tuple[str, str], version: str) -> str:
    return IRI.dataset_version(IRI.dataset(*ds), version).value


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    """A second provkg serve, loaded with tests/pipelines.py through OpenLineageClient (gzip)."""
    server = start_server(tmp_path_factory.mktemp("retail") / "data")
    try:
        client = OpenLineageClient(transport=HttpTransport(
            HttpConfig(url=server.url, timeout=30, compression=HttpCompression.GZIP)))
        for event in pipelines.run_events():
            client.emit(event)
        assert server.stats()["graphs"] == len(RETAIL.events)
        yield server
    finally:
        stop_server(server)


def test_retail_runs_and_models_are_typed_from_standard_facets(retail):
    kinds = {"TRAINING": "TrainingRun", "FEATURE_ENGINEERING": "FeatureEngineeringRun", "INFERENCE": "InferenceRun"}
    for job_type, cls in kinds.items():
        expected = {IRI.run(rid).value for rid, r in RETAIL.runs.items() if r["jobType"] == job_type}
        assert expected
        assert column(retail, f"SELECT ?r WHERE {{ ?r a provkg:{cls} }}", "r") == expected, cls
        # entailed: every such run is a prov:Activity
        assert column(retail, f"SELECT ?r WHERE {{ ?r a provkg:{cls} , prov:Activity }}", "r") == expected
    models = {_entity(o) for r in RETAIL.runs.values() for o in r["complete"]["outputs"] if _is_model(o)}
    assert models == {_retail_version(pipelines.CHURN_MODEL, "1"), _retail_version(pipelines.CHURN_MODEL, "2"),
                      _retail_version(pipelines.LTV_MODEL, "1")}
    assert column(retail, "SELECT ?v WHERE { ?v a provkg:ModelVersion }", "v") == models
    assert column(retail, "SELECT ?v WHERE { ?v a provkg:ModelVersion , prov:Entity }", "v") == models
    assert column(retail, "SELECT ?m WHERE { ?m a provkg:Model }", "m") == \
        {IRI.dataset(*pipelines.CHURN_MODEL).value, IRI.dataset(*pipelines.LTV_MODEL).value}
    trained = select(retail, "SELECT ?v ?r WHERE { ?v a provkg:ModelVersion ; provkg:trainedBy ?r }")
    assert {(row["v"], row["r"]) for row in trained} == {
        (_entity(o), IRI.run(rid).value) for rid, r in RETAIL.runs.items() if r["jobType"] == "TRAINING"
        for o in r["complete"]["outputs"]}
    assert column(retail, "SELECT ?d WHERE { ?d a provkg:FeatureSet }", "d") == {IRI.dataset(*pipelines.FEATURES).value}


def test_retail_version_diff_shows_execution_parameter_changes(retail):
    v1, v2 = _retail_version(pipelines.CHURN_MODEL, "1"), _retail_version(pipelines.CHURN_MODEL, "2")
    t1 = RETAIL.runs[RETAIL.generated_by[v1]]["complete"]
    t2 = RETAIL.runs[RETAIL.generated_by[v2]]["complete"]
    h1, h2 = RETAIL.hyperparameters(t1), RETAIL.hyperparameters(t2)
    answer = named(retail, "version-diff", a=v1, b=v2)
    hyper = _diff_rows(answer, "hyperparameter")
    assert {k: (r["a"], r["b"]) for k, r in hyper.items()} == {k: (h1[k], h2[k]) for k in h1}
    assert {k for k, r in hyper.items() if r["change"] == "changed"} == {k for k in h1 if h1[k] != h2[k]} \
        == {"learning_rate", "max_depth"}
    # the same feature set version trained both
    assert {r["change"] for r in _diff_rows(answer, "training data").values()} == {"unchanged"}


def test_retail_forward_impact_of_the_shared_feature_set_reaches_both_models(retail):
    feature_set = IRI.dataset(*pipelines.FEATURES).value
    expected = RETAIL.forward(feature_set)["ModelVersion"]
    assert {v.rsplit("/version/", 1)[0] for v in expected} == \
        {IRI.dataset(*pipelines.CHURN_MODEL).value, IRI.dataset(*pipelines.LTV_MODEL).value}
    answer = named(retail, "forward-impact", node=feature_set)
    assert nodes(answer, "ModelVersion") == expected and len(expected) == 3
    # the two training jobs that read the feature set
    readers = {IRI.run(rid).value for rid, r in RETAIL.runs.items() if r["jobType"] == "TRAINING"}
    assert readers <= nodes(answer, "TrainingRun")


def test_retail_backward_provenance_of_a_model_version_reaches_the_sources(retail):
    v2 = _retail_version(pipelines.CHURN_MODEL, "2")
    sources = {_retail_version(pipelines.CUSTOMERS, pipelines.SOURCE_VERSION),
               _retail_version(pipelines.ORDERS, pipelines.SOURCE_VERSION)}
    assert sources <= RETAIL.upstream_entities(v2)
    answer = named(retail, "backward-provenance", node=v2)
    assert sources <= nodes(answer, "DatasetVersion")
    assert nodes(answer, "FeatureEngineeringRun") == {
        IRI.run(rid).value for rid, r in RETAIL.runs.items() if r["jobType"] == "FEATURE_ENGINEERING"}
    assert _retail_version(pipelines.FEATURES, pipelines.FEATURE_VERSION) in nodes(answer)
    # and no other model's version: the lifetime-value model is a sibling, not an ancestor
    assert not nodes(answer, "ModelVersion") - {v2}


def test_retail_pii_tags_mark_columns_and_dataset_as_personal_data(retail):
    customers = IRI.dataset(*pipelines.CUSTOMERS)
    tags = [t for e in RETAIL.events for ds in e.get("inputs", []) if (ds["namespace"], ds["name"]) ==
            pipelines.CUSTOMERS for t in ((ds.get("facets") or {}).get("tags") or {}).get("tags", [])]
    personal = {IRI.column(customers, t["field"]).value for t in tags
                if {t["key"].lower(), t["value"].lower()} & PII_MARKERS}
    other = {IRI.column(customers, t["field"]).value for t in tags} - personal
    assert len(personal) == 2 and other
    marked = column(retail, "SELECT ?n WHERE { ?n provkg:containsPersonalData true }", "n")
    assert marked == personal | {customers.value}
    assert not other & marked
    # each tag kept, on its column
    for t in tags:
        assert column(retail, f"""SELECT ?tag WHERE {{ <{IRI.column(customers, t['field']).value}> provkg:tag ?tag .
            ?tag provkg:tagKey "{t['key']}" ; provkg:tagValue "{t['value']}" }}""", "tag"), t


def test_retail_version_diff_bound_in_every_branch_answers_as_bound_outside(retail):
    """`# @bind` places the sides' VALUES inside each branch of the union (for
    Oxigraph's planner); the facts must equal those of the same text bound once,
    outside the union, as SPARQL defines it."""
    query = load_named_queries()["version-diff"]
    marks = [line for line in query.text.splitlines() if line.strip() == "# @bind"]
    assert len(marks) > 1
    v1, v2 = _retail_version(pipelines.CHURN_MODEL, "1"), _retail_version(pipelines.CHURN_MODEL, "2")
    terms = {Variable("a"): NamedNode(v1), Variable("b"): NamedNode(v2)}
    sides = [{Variable("side"): Literal(s), Variable("version"): NamedNode(v)} for s, v in (("a", v1), ("b", v2))]
    marked = bind_values(query.text, terms, sides)
    assert all(line.strip() != "# @bind" for line in marked.splitlines())
    assert marked.count("VALUES (?a ?b ?side ?version)") == len(marks)
    unmarked = "\n".join("#" if line.strip() == "# @bind" else line for line in query.text.splitlines())
    outside = bind_values(unmarked, terms, sides)
    assert outside.count("VALUES (?a ?b ?side ?version)") == 1

    def facts(text: str) -> list[tuple]:
        return sorted(tuple(sorted(row.items())) for row in retail.sparql_select(text))
    inside = facts(marked)
    assert inside == facts(outside)
    # both sides, and facts from several branches (the retail estate records no code versions)
    assert {dict(f)["side"] for f in inside} == {"a", "b"}
    assert {"hyperparameter", "training data", "upstream schema"} <= {dict(f)["aspect"] for f in inside}
