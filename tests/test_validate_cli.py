"""``provkg validate`` as a CI gate and ``provkg completeness``, on a store
(the demo, loaded with ``provkg ingest``), on RDF files (tests/shacl_fixtures),
on OpenLineage event files and with extra shapes.

The commands CI runs are run as processes (``python -m provkg ...``); the many
small variations run the same Typer app in this process, which keeps exit
codes and output but saves a Python start-up per call.

Exit codes: 0 conforms (Warnings allowed unless --fail-on-warning), 1
Violations (or Warnings with --fail-on-warning), 2 error. Formats: text,
turtle (a SHACL validation report), json, junit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest
import rdflib
from conftest import EVENTS, REPO, SPEC, valid_files
from typer.testing import CliRunner

from provkg.cli import app
from provkg.demo import demo_events

FIXTURES = Path(__file__).resolve().parent / "shacl_fixtures"
ENV = {**os.environ, "PROVKG_OPENLINEAGE_SPEC": str(SPEC)}
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
PRODUCER = "https://github.com/provkg/provkg/tests/validate-cli"

# bad fixtures without a node in common: 2 ColumnShape and 2 DeploymentShape Violations, 3 policy Warnings
MIXED = [FIXTURES / "ColumnShape.bad.ttl", FIXTURES / "DeploymentShape.bad.ttl",
         FIXTURES / "PersonalDataPolicyShape.bad.ttl"]
CONFORMING = FIXTURES / "PredictionShape.ok.ttl"  # conforms, with Warnings (no evaluation, no code version)
WARNINGS_ONLY = FIXTURES / "PersonalDataPolicyShape.bad.ttl"

OWNER_SHAPE = """@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix prov: <http://www.w3.org/ns/prov#> .
@prefix provkg: <https://w3id.org/provkg/ns#> .
@prefix acme: <https://acme.example/shapes#> .
acme:JobOwnerShape a sh:NodeShape ;
    sh:targetClass provkg:Job ;
    sh:property [ sh:path prov:wasAttributedTo ; sh:minCount 1 ; sh:severity sh:{severity} ;
                  sh:message "acme: every job has an owner (OpenLineage ownership facet)" ] .
"""


def provkg(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provkg", *map(str, args)], check=False,
                          capture_output=True, text=True, env=ENV, cwd=cwd or REPO, timeout=180)


def provkg_all(*commands: tuple) -> list[subprocess.CompletedProcess]:
    """Several independent commands at once (each is a process of its own)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda args: provkg(*args), commands))


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


_RUNNER = CliRunner(env={"PROVKG_OPENLINEAGE_SPEC": str(SPEC)})


def provkg_here(*args: object) -> Run:
    """The same command run in this process (Typer's runner): the same code and
    exit codes without a Python start-up per call. A crash is exit 1 with its
    traceback on stderr, as in a process of its own."""
    result = _RUNNER.invoke(app, [str(a) for a in args])
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return Run(result.exit_code, result.stdout, stderr)


def one_line(text: str) -> str:
    """Rich wraps long error lines; compare them unwrapped."""
    return " ".join(text.split())


def text_counts(stdout: str) -> tuple[str, int, int]:
    m = re.match(r"^(conforms|DOES NOT CONFORM): (\d+) violations, (\d+) warnings$", stdout.splitlines()[0])
    assert m, stdout[:300]
    return m.group(1), int(m.group(2)), int(m.group(3))


def pairs(results: list[dict], severity: str | None = None) -> set[tuple[str, str]]:
    return {(r.get("shape") or "shape", r["focus"]) for r in results if severity in (None, r["severity"])}


# -- stores -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    """The demo estate, loaded with `provkg ingest`."""
    folder = tmp_path_factory.mktemp("demo")
    lines = folder / "demo.jsonl"
    events = demo_events()
    lines.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    data = folder / "data"
    done = provkg("ingest", lines, "--data", data)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(events)} events accepted" in done.stdout and "flagged" not in done.stdout, done.stdout
    return data


@pytest.fixture(scope="module")
def store_runs(demo_data, tmp_path_factory):
    """`provkg validate` of the demo store: text (default), and JSON written to
    a file with --fail-on-warning; `provkg completeness --json`."""
    out = tmp_path_factory.mktemp("store-runs") / "report.json"
    text, complete = provkg_all(("validate", "--data", demo_data), ("completeness", "--json", "--data", demo_data))
    strict = provkg_here("validate", "--data", demo_data, "--format", "json", "--fail-on-warning", "-o", out)
    return text, strict, json.loads(out.read_text("utf-8")) if out.exists() else None, complete


def test_store_with_warnings_only_passes_the_gate(store_runs):
    text, _, _, _ = store_runs
    assert text.returncode == 0, text.stdout + text.stderr
    verdict, violations, warnings = text_counts(text.stdout)
    assert (verdict, violations) == ("conforms", 0)
    assert warnings > 0
    assert "Warning: " in text.stdout and "personal data" in text.stdout


def test_store_warnings_fail_the_gate_with_fail_on_warning(store_runs):
    _, strict, report, _ = store_runs
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert strict.stdout == ""  # the report went to the file, its verdict to stderr
    assert strict.stderr.strip().startswith("conforms: 0 violations")
    assert report["conforms"] is True and report["violations"] == 0
    assert report["warnings"] == sum(1 for r in report["results"] if r["severity"] == "Warning") > 0


def test_completeness_lists_every_model_version_with_a_share(store_runs, demo_data):
    _, _, _, complete = store_runs
    assert complete.returncode == 0, complete.stderr
    rows = json.loads(complete.stdout)
    listed = provkg_here("sparql", "PREFIX provkg: <https://w3id.org/provkg/ns#> "
                              "SELECT DISTINCT ?v WHERE { ?v a provkg:ModelVersion }", "--data", demo_data)
    versions = set(listed.stdout.split()[1:])
    assert versions and {r["modelVersion"] for r in rows} == versions
    for r in rows:
        assert 0.0 <= r["share"] <= 1.0
        assert 0 <= r["conforming"] <= r["nodes"] and r["nodes"] >= 1
        assert r["meetsTarget"] == (r["share"] >= 0.95)


def test_a_model_version_without_training_run_lowers_completeness(demo_data, tmp_path):
    """A registry job copies a model file in as version 3 of the credit model:
    a MODEL output with a version, but no TRAINING run generated it (a
    Violation of ModelVersionTrainingShape). Its lineage is then incomplete."""
    broken = tmp_path / "data"
    shutil.copytree(demo_data, broken)
    model = "models/credit_default"
    event = {
        "eventType": "COMPLETE", "eventTime": "2026-11-03T09:00:00Z",
        "run": {"runId": "0196b6a0-7d1e-7c3a-9f00-00000000c0de"},
        "job": {"namespace": "airflow-prod", "name": "registry_sync.import_model"},
        "inputs": [], "producer": PRODUCER,
        "outputs": [{"namespace": "mlflow://registry.prod", "name": model, "facets": {
            "datasetType": {"_producer": PRODUCER, "datasetType": "MODEL",
                            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetTypeDatasetFacet.json"
                                          "#/$defs/DatasetTypeDatasetFacet"},
            "version": {"_producer": PRODUCER, "datasetVersion": "3",
                        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json"
                                      "#/$defs/DatasetVersionDatasetFacet"}}}],
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    (tmp_path / "import.json").write_text(json.dumps(event), encoding="utf-8")
    done = provkg_here("ingest", tmp_path / "import.json", "--data", broken)
    assert done.returncode == 0, done.stdout + done.stderr
    complete = provkg_here("completeness", "--json", "--data", broken)
    assert complete.returncode == 0, complete.stderr
    rows = {r["modelVersion"]: r for r in json.loads(complete.stdout)}
    imported = [v for v in rows if v.endswith("models%2Fcredit_default/version/3")]
    assert len(imported) == 1, sorted(rows)
    row = rows[imported[0]]
    assert row["share"] < 1.0 and row["conforming"] < row["nodes"]
    assert row["meetsTarget"] is False
    # the demo's own versions keep their share
    assert all(r["share"] == 1.0 for v, r in rows.items() if v != imported[0])


# -- RDF files, every format ------------------------------------------------------------

@pytest.fixture(scope="module")
def mixed_runs(tmp_path_factory):
    """The same bad fixtures in each format (JUnit as CI runs it: a process, to a file)."""
    runs = {fmt: provkg_here("validate", *MIXED, "--format", fmt) for fmt in ("text", "turtle", "json")}
    out = tmp_path_factory.mktemp("junit") / "shacl-report.xml"
    junit = provkg("validate", *MIXED, "--format", "junit", "--output", out)
    runs["junit"] = Run(junit.returncode, out.read_text("utf-8") if out.exists() else "", junit.stderr)
    return runs


def test_violations_exit_1_in_every_format(mixed_runs):
    for fmt, run in mixed_runs.items():
        assert run.returncode == 1, (fmt, run.stdout[-500:], run.stderr[-2000:])


def test_text_format(mixed_runs):
    report = json.loads(mixed_runs["json"].stdout)
    verdict, violations, warnings = text_counts(mixed_runs["text"].stdout)
    assert (verdict, violations, warnings) == ("DOES NOT CONFORM", report["violations"], report["warnings"])
    assert len(mixed_runs["text"].stdout.splitlines()) == 1 + len(report["results"])
    assert "a column derives from columns" in mixed_runs["text"].stdout


def test_json_format(mixed_runs):
    report = json.loads(mixed_runs["json"].stdout)
    severities = [r["severity"] for r in report["results"]]
    assert report["conforms"] is False
    assert report["violations"] == severities.count("Violation") == 4
    assert report["warnings"] == severities.count("Warning") == 3
    assert {r["focus"] for r in report["results"] if r["severity"] == "Warning"} == {
        "urn:provkg:dataset/postgres%3A%2F%2Fwarehouse%3A5432/analytics.applicant_profile"}
    assert all({"focus", "severity", "message"} <= r.keys() for r in report["results"])


def test_turtle_format_is_one_shacl_validation_report(mixed_runs):
    report = json.loads(mixed_runs["json"].stdout)
    graph = rdflib.Graph().parse(data=mixed_runs["turtle"].stdout, format="turtle")
    reports = list(graph.subjects(rdflib.RDF.type, SH.ValidationReport))
    assert len(reports) == 1
    assert graph.value(reports[0], SH.conforms).toPython() is False
    results = list(graph.objects(reports[0], SH.result))
    assert len(results) == len(report["results"])
    for result in results:
        assert (result, rdflib.RDF.type, SH.ValidationResult) in graph
        assert graph.value(result, SH.focusNode) is not None
        assert graph.value(result, SH.resultSeverity) in (SH.Violation, SH.Warning)
    assert sum(1 for r in results if graph.value(r, SH.resultSeverity) == SH.Violation) == report["violations"]


def test_junit_format(mixed_runs):
    report = json.loads(mixed_runs["json"].stdout)
    assert mixed_runs["junit"].stdout.startswith("<?xml")
    assert mixed_runs["junit"].stderr.startswith("DOES NOT CONFORM")
    root = ElementTree.fromstring(mixed_runs["junit"].stdout.encode("utf-8"))
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    assert len(suites) == 1
    suite = suites[0]
    cases = suite.findall("testcase")
    # one test case per (shape, focus); a failure per pair with a Violation
    assert int(suite.get("failures")) == len(pairs(report["results"], "Violation"))
    assert int(suite.get("tests")) == len(cases) == len(pairs(report["results"]))
    assert sum(1 for c in cases if c.find("failure") is not None) == int(suite.get("failures"))
    assert {c.get("name") for c in cases} == {r["focus"] for r in report["results"]}
    passing = [c for c in cases if c.find("failure") is None]
    assert passing and all("Warning" in (c.findtext("system-out") or "") for c in passing)


def test_conforming_files_exit_0_and_report_conforms(tmp_path):
    turtle = provkg_here("validate", CONFORMING, "--format", "turtle")
    junit = provkg_here("validate", CONFORMING, "--format", "junit", "-o", tmp_path / "r.xml")
    lenient = provkg_here("validate", WARNINGS_ONLY)
    strict = provkg_here("validate", WARNINGS_ONLY, "--fail-on-warning")
    assert lenient.returncode == 0 and text_counts(lenient.stdout) == ("conforms", 0, 3)
    assert turtle.returncode == 0, turtle.stderr
    graph = rdflib.Graph().parse(data=turtle.stdout, format="turtle")
    (report,) = graph.subjects(rdflib.RDF.type, SH.ValidationReport)
    assert graph.value(report, SH.conforms).toPython() is True
    assert junit.returncode == 0, junit.stderr
    suite = ElementTree.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite.get("failures") == "0" and int(suite.get("tests")) >= 1
    assert strict.returncode == 1  # Warnings only, but --fail-on-warning
    assert text_counts(strict.stdout)[:2] == ("conforms", 0)


# -- OpenLineage event files --------------------------------------------------------------

def test_openlineage_event_files(tmp_path):
    run_id = "0196b6a0-0000-7000-8000-0000000000e1"
    lines = [{"eventType": t, "eventTime": when, "run": {"runId": run_id},
              "job": {"namespace": "airflow-prod", "name": "orders_daily.load_orders"},
              "inputs": [], "outputs": [], "producer": PRODUCER}
             for t, when in (("START", "2024-05-01T02:00:00Z"), ("COMPLETE", "2024-05-01T01:55:00Z"))]
    skewed = tmp_path / "lineage" / "skewed.jsonl"
    skewed.parent.mkdir()
    skewed.write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")
    corpus = [EVENTS / "ol-spec-examples" / "example_full_event.json",
              EVENTS / "marquez-api-tests" / "open_lineage__event_simple.json"]
    assert set(corpus) <= set(valid_files())
    invalid = tmp_path / "templated.json"  # an emitter template sent as is
    invalid.write_text(json.dumps({**lines[0], "eventTime": "{{RUN_START_TIME}}"}), encoding="utf-8")
    bad = provkg("validate", skewed, *corpus)  # a process, as CI runs it on lineage/*.jsonl
    good = provkg_here("validate", *corpus, "--format", "json")
    broken = provkg_here("validate", invalid)
    assert good.returncode == 0, good.stdout + good.stderr
    assert json.loads(good.stdout)["violations"] == 0
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "PROV-CONSTRAINTS 51" in bad.stdout and f"urn:provkg:run/{run_id}" in bad.stdout
    assert broken.returncode == 2, broken.stdout + broken.stderr
    assert "not an OpenLineage 2-0-2 event: /eventTime" in one_line(broken.stderr)


# -- extra shapes ---------------------------------------------------------------------------

def test_extra_shapes_are_added_to_provkgs(tmp_path):
    violation, warning = tmp_path / "owner-violation.ttl", tmp_path / "owner-warning.ttl"
    violation.write_text(OWNER_SHAPE.replace("{severity}", "Violation"), encoding="utf-8")
    warning.write_text(OWNER_SHAPE.replace("{severity}", "Warning"), encoding="utf-8")
    job = FIXTURES / "JobShape.ok.ttl"
    plain = provkg_here("validate", job)
    strict = provkg_here("validate", job, "--shapes", violation, "--format", "json")
    lenient = provkg_here("validate", job, "--shapes", warning)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert text_counts(plain.stdout) == ("conforms", 0, 0)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    results = json.loads(strict.stdout)["results"]
    assert [(r["severity"], r["focus"]) for r in results] == [
        ("Violation", "urn:provkg:job/airflow-prod/orders_daily.load_orders")]
    assert results[0]["message"].startswith("acme: every job has an owner")
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    assert text_counts(lenient.stdout) == ("conforms", 0, 1)
    assert "Warning: urn:provkg:job/airflow-prod/orders_daily.load_orders" in lenient.stdout


# -- errors: exit 2 ------------------------------------------------------------------------------

def test_errors_exit_2(tmp_path):
    broken_syntax = tmp_path / "broken.ttl"
    broken_syntax.write_text("@prefix sh: <http://www.w3.org/ns/shacl#> .\n"
                             "<https://acme.example/shapes#S> a sh:NodeShape ; sh:property [ sh:minCount 1 .\n",
                             encoding="utf-8")
    unknown_type = tmp_path / "graph.csv"
    unknown_type.write_text("s,p,o\n", encoding="utf-8")
    job = FIXTURES / "JobShape.ok.ttl"
    runs = [provkg("validate", tmp_path / "missing.ttl")] + [provkg_here(*args) for args in (
        ("validate", job, "--shapes", broken_syntax),
        ("validate", job, "--shapes", tmp_path / "no-such-shapes.ttl"),
        ("validate", job, "--format", "yaml"),
        ("validate", unknown_type),
        ("validate", "--data", tmp_path / "no-store"))]
    for run, what in zip(runs, ("missing file", "shapes that do not parse", "missing shapes file",
                                "unknown format", "unknown file type", "no store")):
        assert run.returncode == 2, (what, run.returncode, run.stdout[-300:], run.stderr[-1500:])
        assert "error" in run.stderr.lower(), (what, run.stderr[-500:])
        assert "Traceback" not in run.stderr, (what, run.stderr[-1500:])


@pytest.mark.parametrize("shape", [
    'sh:sparql [ sh:message "x" ; sh:select "SELEC $this WHERE {" ]',
    "sh:property [ sh:path <https://acme.example/p> ; sh:minCount \"many\" ]",
], ids=["invalid-sparql", "non-integer-minCount"])
def test_shapes_that_cannot_be_evaluated_exit_2(tmp_path, shape):
    """A shapes file that parses as Turtle but is not valid SHACL is an error
    (2), not Violations (1): CI must not read a broken gate as a failed one.

    BUG (provkg/shacl.py validate_store, provkg/cli.py validate_cmd): pyshacl's
    ConstraintLoadError / ReportableRuntimeError and Oxigraph's SyntaxError
    escape uncaught: a traceback and exit 1."""
    extra = tmp_path / "extra.ttl"
    extra.write_text("@prefix sh: <http://www.w3.org/ns/shacl#> .\n"
                     "<https://acme.example/shapes#Broken> a sh:NodeShape ;\n"
                     "    sh:targetClass <https://w3id.org/provkg/ns#Job> ;\n"
                     f"    {shape} .\n", encoding="utf-8")
    command = provkg if shape.startswith("sh:sparql") else provkg_here
    run = command("validate", FIXTURES / "JobShape.ok.ttl", "--shapes", extra)
    assert run.returncode == 2, (run.returncode, run.stderr[-800:])
    assert "Traceback" not in run.stderr


def test_junit_test_cases_are_named_by_stable_shape_iris():
    """CI test reporters key a test case by classname and name; the classname
    must name the shape, the same on every run.

    BUG (provkg/shacl.py _results / ValidationOutcome.to_junit): a result of a
    property shape (sh:property [...]) carries pyshacl's blank-node label as
    its shape ("n3f2a...b9"), fresh on every run, so JUnit classnames (and the
    JSON "shape") change from run to run and name no shape. Fix: map a
    blank-node source shape to the node shape holding it via sh:property (and
    keep the path), e.g. classname "https://w3id.org/provkg/ns#JobShape"."""
    from pyoxigraph import DefaultGraph, Quad, RdfFormat, Store, parse

    from provkg.shacl import Shapes, validate_store

    store = Store()
    store.extend(Quad(q.subject, q.predicate, q.object, DefaultGraph())
                 for q in parse(path=str(FIXTURES / "JobShape.bad.ttl"), format=RdfFormat.TURTLE))
    classnames = []
    for _ in range(2):  # two runs, as two CI jobs would load the shapes afresh
        junit = validate_store(store, Shapes().for_stages(["ingest", "store"])).to_junit()
        root = ElementTree.fromstring(junit.split("\n", 1)[1])
        classnames.append(sorted(c.get("classname") for c in root.iter("testcase")))
    assert classnames[0] == classnames[1], classnames
    assert all(c.startswith(("http://", "https://", "urn:")) for c in classnames[0]), classnames[0]
