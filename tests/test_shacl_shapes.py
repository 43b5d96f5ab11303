"""The SHACL shapes (shapes/*.ttl), one by one and on real data.

- Every node shape has a conforming and a violating fixture in
  tests/shacl_fixtures/ (small PROV-O fragments shaped like provkg's mapping):
  the conforming one draws no result from that shape (and no Violation from
  any shape), the violating one at least one result from it, with the severity
  the shape declares. A node shape without a fixture pair fails the suite.
- Every valid event of the shared OpenLineage corpora, mapped and validated
  one by one as ingest does (neighbourhood from a store that accumulates the
  events), breaks no PROV-O or lineage shape.
- The demo estate conforms as a whole; its only Warnings are the derived
  personal-data datasets that carry no policy.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import rdflib
from conftest import SPEC, load_events, valid_files
from pyoxigraph import DefaultGraph, Quad, RdfFormat, Store, parse

from provkg.conformance import validate_lineage_store
from provkg.demo import demo_events
from provkg.entailment import default_entailer
from provkg.ingest import Ingestor, canonical_hash
from provkg.iris import IriMinter
from provkg.mapping import EventMapper
from provkg.shacl import EventShapesValidator, ShapeResult, Shapes, validate_store
from provkg.store import LineageStore
from provkg.validation import EventValidator

FIXTURES = Path(__file__).resolve().parent / "shacl_fixtures"
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
PK = "https://w3id.org/provkg/ns#"
_EXPECT = re.compile(r"^#\s*expect-focus:\s*(\S+)\s*$", re.MULTILINE)


# -- the shapes graph, read once ------------------------------------------------

SHAPES = Shapes()
GRAPH = SHAPES.for_stages(["ingest", "store"])


def _node_shapes(graph: rdflib.Graph) -> dict[str, rdflib.URIRef]:
    """Every sh:NodeShape IRI of the shapes graph, by local name."""
    out = {}
    for shape in graph.subjects(rdflib.RDF.type, SH.NodeShape):
        assert isinstance(shape, rdflib.URIRef), f"a node shape must be named by an IRI: {shape!r}"
        out[re.split(r"[#/]", str(shape))[-1]] = shape
    return out


NODE_SHAPES = _node_shapes(GRAPH)


def _owners(graph: rdflib.Graph) -> dict[str, str]:
    """sh:sourceShape (as text) -> the node shape it belongs to: the node shape
    itself (node-level and SPARQL constraints) and each of its property shapes
    (blank nodes, whose labels are the ones pyshacl reports for this graph)."""
    owners = {}
    for shape in NODE_SHAPES.values():
        owners[str(shape)] = str(shape)
        for prop in graph.objects(shape, SH.property):
            owners[str(prop)] = str(shape)
    return owners


OWNERS = _owners(GRAPH)


def _messages(shape: rdflib.URIRef) -> list[re.Pattern]:
    """The shape's messages as patterns ({?var} / {$this} matching anything), a
    fallback for telling a result's shape when its sourceShape is not reported."""
    texts = [GRAPH.value(shape, SH.message)]
    for link in (SH.property, SH.sparql):
        texts += [GRAPH.value(node, SH.message) for node in GRAPH.objects(shape, link)]
    return [re.compile("^" + re.sub(r"\\\{[?$]\w+\\\}", ".*", re.escape(str(t))) + "$", re.DOTALL)
            for t in texts if t is not None]


def _declared_severity(shape: rdflib.URIRef) -> str:
    severity = GRAPH.value(shape, SH.severity)
    return str(severity).rsplit("#", 1)[-1] if severity is not None else "Violation"


def from_shape(results: list[ShapeResult], shape: rdflib.URIRef) -> list[ShapeResult]:
    """The results that the node shape (or one of its property shapes) produced."""
    patterns = _messages(shape)
    out = []
    for r in results:
        owner = OWNERS.get(r.shape or "")
        if owner == str(shape) or (owner is None and any(p.match(r.message) for p in patterns)):
            out.append(r)
    return out


# -- fixtures -------------------------------------------------------------------

def load_fixture(path: Path) -> Store:
    store = Store()
    default = DefaultGraph()
    store.extend(Quad(q.subject, q.predicate, q.object, default)
                 for q in parse(path=str(path), format=RdfFormat.TURTLE))
    return store


def validate_fixture(path: Path) -> list[ShapeResult]:
    return validate_store(load_fixture(path), GRAPH).results


def fixture_shape_name(path: Path) -> str:
    return path.name.split(".", 1)[0]


OK_FIXTURES = sorted(FIXTURES.glob("*.ok.ttl"))
BAD_FIXTURES = sorted(FIXTURES.glob("*.bad.ttl")) + sorted(FIXTURES.glob("*.bad.*.ttl"))


def test_the_shapes_graph_has_node_shapes_from_every_file():
    assert len(NODE_SHAPES) >= 25
    per_file = {}
    for path in sorted((Path(__file__).resolve().parents[1] / "shapes").glob("*.ttl")):
        graph = rdflib.Graph().parse(path, format="turtle")
        per_file[path.name] = set(graph.subjects(rdflib.RDF.type, SH.NodeShape))
    assert all(per_file.values()), f"a shapes file declares no node shape: {per_file}"
    assert set().union(*per_file.values()) == set(NODE_SHAPES.values())


def test_every_node_shape_has_a_conforming_and_a_violating_fixture():
    missing = [f"{name}.{kind}.ttl" for name in sorted(NODE_SHAPES) for kind in ("ok", "bad")
               if not (FIXTURES / f"{name}.{kind}.ttl").is_file()]
    assert not missing, f"write these fixtures for the shapes they name: {missing}"
    stale = sorted({p.name for p in OK_FIXTURES + BAD_FIXTURES if fixture_shape_name(p) not in NODE_SHAPES})
    assert not stale, f"fixtures for shapes that no longer exist: {stale}"


@pytest.mark.parametrize("name", sorted(NODE_SHAPES))
def test_conforming_fixture_draws_nothing_from_its_shape(name):
    path = FIXTURES / f"{name}.ok.ttl"
    if not path.is_file():
        pytest.fail(f"no conforming fixture {path.name}")
    results = validate_fixture(path)
    own = from_shape(results, NODE_SHAPES[name])
    assert own == [], f"{path.name} breaks {name}: {[r.message for r in own]}"
    # a conforming fragment is conforming as a whole: no Violation from any shape
    violations = [r for r in results if r.severity == "Violation"]
    assert violations == [], f"{path.name}: {[(OWNERS.get(r.shape or ''), r.message) for r in violations]}"


@pytest.mark.parametrize("path", BAD_FIXTURES, ids=lambda p: p.name)
def test_violating_fixture_breaks_its_shape_with_the_declared_severity(path):
    name = fixture_shape_name(path)
    assert name in NODE_SHAPES, f"{path.name} names no node shape"
    shape = NODE_SHAPES[name]
    own = from_shape(validate_fixture(path), shape)
    assert own, f"{path.name} draws no result from {name}"
    severity = _declared_severity(shape)
    assert {r.severity for r in own} == {severity}, (
        f"{name} declares sh:{severity}, its results say {[(r.severity, r.message) for r in own]}")
    expected = set(_EXPECT.findall(path.read_text("utf-8")))
    if expected:
        assert {r.focus for r in own} == expected, [(r.focus, r.message) for r in own]


def test_each_shape_declares_a_severity_and_the_stage_of_its_file():
    for name, shape in NODE_SHAPES.items():
        assert GRAPH.value(shape, SH.severity) in (SH.Violation, SH.Warning, SH.Info), name
    stages = {str(o) for o in GRAPH.objects(None, rdflib.URIRef(PK + "validationStage"))}
    assert stages == {"ingest", "store"}


# -- the shared OpenLineage corpora, event by event as at ingest -------------------

@pytest.fixture(scope="module")
def mapper() -> EventMapper:
    return EventMapper(IriMinter(), default_entailer())


@pytest.fixture(scope="module")
def corpus_store(mapper):
    """Every distinct valid corpus event, validated against the ingest shapes
    with its neighbourhood in a store holding the events before it, then added
    to that store (what Ingestor does). Returns (store, [(file, outcome)])."""
    validator = EventValidator(SPEC)
    shapes = EventShapesValidator(SHAPES)
    store = Store()
    default = DefaultGraph()
    seen: set[str] = set()
    outcomes = []
    for path in valid_files():
        for event in load_events(path):
            assert validator.validate(event) == [], path
            digest = canonical_hash(event)
            if digest in seen:
                continue
            seen.add(digest)
            mapped = mapper.map(event, digest, datetime.now(UTC))
            outcomes.append((path, shapes.validate(mapped.quads, store)))
            store.extend(Quad(q.subject, q.predicate, q.object, default) for q in mapped.quads)
    return store, outcomes


def test_every_valid_corpus_event_conforms_to_the_prov_and_lineage_shapes(corpus_store):
    _store, outcomes = corpus_store
    assert len(outcomes) > 70
    broken = [(p.relative_to(p.parents[1]).as_posix(), r.focus, r.message)
              for p, outcome in outcomes for r in outcome.violations]
    assert broken == []
    # Warnings are allowed (a RUNNING-only run has no time yet) and come from the lineage shapes only
    for _path, outcome in outcomes:
        assert all(r.shape == PK + "RunTimeShape" for r in outcome.warnings), outcome.warnings


def test_the_corpus_merged_conforms_to_the_ingest_shapes_as_well(corpus_store):
    """What passed event by event also passes over the merged graph."""
    store, _ = corpus_store
    assert validate_store(store, SHAPES.for_stages(["ingest"])).violations == []


# -- the demo estate ----------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    store = LineageStore(tmp_path_factory.mktemp("demo") / "data")
    ingestor = Ingestor(store, EventValidator(SPEC), IriMinter(), EventShapesValidator(SHAPES), "flag")
    results = [ingestor.ingest(event) for event in demo_events()]
    return store, results


def test_no_demo_event_is_flagged_at_ingest(demo_store):
    _store, results = demo_store
    assert {r.status for r in results} == {"accepted"}
    assert [r.shacl.violations for r in results if r.shacl is not None and r.shacl.violations] == []


def test_the_demo_store_conforms_and_warns_of_personal_data_without_policy(demo_store):
    store, _ = demo_store
    outcome = validate_lineage_store(store, SHAPES)
    assert outcome.violations == [], [(r.focus, r.message) for r in outcome.violations]
    assert outcome.conforms
    # the expected Warnings: the derived datasets tagged as personal data carry no provkg_policy
    unpolicied = {s["d"].value for s in store.query(
        "PREFIX provkg: <https://w3id.org/provkg/ns#> PREFIX dpv: <https://w3id.org/dpv#> "
        "SELECT DISTINCT ?d WHERE { ?d a provkg:Dataset ; provkg:containsPersonalData true . "
        "FILTER NOT EXISTS { ?d dpv:hasLegalBasis ?b ; dpv:hasPurpose ?p ; provkg:retentionPeriod ?r } }")}
    assert any(d.endswith("analytics.applicant_profile") for d in unpolicied), unpolicied
    warned = {r.focus for r in outcome.warnings if r.shape == PK + "PersonalDataPolicyShape"}
    assert warned == unpolicied
    # the raw sources, which carry their policy, are not among them
    assert not any("bank-raw" in d for d in warned)
    assert {r.shape for r in outcome.warnings} == {PK + "PersonalDataPolicyShape"}


# -- the neighbourhood at ingest -------------------------------------------------------

PRODUCER = "https://github.com/provkg/provkg/tests/shacl"


def _event(event_type: str, run_id: str, job: str, when: str, inputs=(), outputs=()) -> dict:
    return {"eventType": event_type, "eventTime": when, "run": {"runId": run_id},
            "job": {"namespace": "airflow-prod", "name": job}, "inputs": list(inputs), "outputs": list(outputs),
            "producer": PRODUCER, "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}


def _versioned(name: str, version: str) -> dict:
    return {"namespace": "postgres://warehouse:5432", "name": name, "facets": {"version": {
        "_producer": PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json"
                      "#/$defs/DatasetVersionDatasetFacet",
        "datasetVersion": version}}}


def _ingest_one_by_one(events: list[dict], mapper: EventMapper) -> tuple[list[list[ShapeResult]], Store]:
    validator = EventValidator(SPEC)
    shapes = EventShapesValidator(SHAPES)
    store = Store()
    per_event = []
    for event in events:
        assert validator.validate(event) == []
        mapped = mapper.map(event, canonical_hash(event), datetime.now(UTC))
        per_event.append(shapes.validate(mapped.quads, store).violations)
        store.extend(Quad(q.subject, q.predicate, q.object, DefaultGraph()) for q in mapped.quads)
    return per_event, store


def test_ingest_sees_conflicts_with_earlier_events_in_the_neighbourhood(mapper):
    """A COMPLETE whose time is before the START's, and a second START with
    another time: both are only wrong given what the store already holds."""
    run = str(uuid.uuid4())
    events = [_event("START", run, "orders_daily.load", "2024-05-01T02:00:00Z"),
              _event("START", run, "orders_daily.load", "2024-05-01T02:00:30Z"),
              _event("COMPLETE", run, "orders_daily.load", "2024-05-01T01:55:00Z",
                     outputs=[_versioned("analytics.orders", "41")])]
    per_event, _ = _ingest_one_by_one(events, mapper)
    assert per_event[0] == []
    assert any("at most one start time" in r.message for r in per_event[1]), per_event[1]
    messages = [r.message for r in per_event[2]]
    assert any("PROV-CONSTRAINTS 51" in m for m in messages), messages
    assert any("PROV-CONSTRAINTS 50" in m for m in messages), messages


def test_ingest_sees_a_dataset_version_generated_twice(mapper):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    events = [_event("START", first, "orders_daily.load", "2024-05-01T02:00:00Z"),
              _event("COMPLETE", first, "orders_daily.load", "2024-05-01T02:10:00Z",
                     outputs=[_versioned("analytics.orders", "42")]),
              _event("START", second, "orders_daily.load", "2024-05-02T02:00:00Z"),
              _event("COMPLETE", second, "orders_daily.load", "2024-05-02T02:10:00Z",
                     outputs=[_versioned("analytics.orders", "42")])]
    per_event, _ = _ingest_one_by_one(events, mapper)
    assert per_event[:3] == [[], [], []]
    assert any("PROV-CONSTRAINTS 35" in r.message for r in per_event[3]), per_event[3]


@pytest.mark.parametrize("order", ["writer-first", "reader-first"])
def test_ingest_sees_a_usage_before_the_generation_whatever_the_arrival_order(mapper, order):
    """PROV-CONSTRAINTS 53 (UsedEntityShape, an ingest shape): a report run
    says it read version 42 and ended at 02:05; the load run generated version
    42 only at 02:10. Whole-store validation finds it; ingest must flag (or
    reject, or quarantine) one of these events in either arrival order.

    BUG (provkg/shacl.py, EventShapesValidator.validate): it is flagged in
    neither order. Writer first: the reader's events add no triple *about*
    version 42 that the store lacks, so since "skip nodes whose facts are all
    known" (dc17b2e) version 42 is no focus node, although the constraint on
    it reads the reader's new prov:endedAtTime. Reader first: version 42 is a
    focus node of the writer's COMPLETE, but the neighbourhood has only facts
    *from* the event's nodes, not the incoming `?run prov:used <version>` and
    that run's prov:endedAtTime the constraint joins on."""
    writer, reader = str(uuid.uuid4()), str(uuid.uuid4())
    version = _versioned("analytics.orders", "42")
    writes = [_event("START", writer, "orders_daily.load", "2024-05-01T02:00:00Z"),
              _event("COMPLETE", writer, "orders_daily.load", "2024-05-01T02:10:00Z", outputs=[version])]
    reads = [_event("START", reader, "orders_daily.report", "2024-05-01T02:01:00Z", inputs=[version]),
             _event("COMPLETE", reader, "orders_daily.report", "2024-05-01T02:05:00Z", inputs=[version])]
    per_event, store = _ingest_one_by_one(writes + reads if order == "writer-first" else reads + writes, mapper)
    whole = validate_store(store, SHAPES.for_stages(["ingest"])).violations
    assert any("PROV-CONSTRAINTS 53" in r.message for r in whole), whole
    flagged = [r.message for violations in per_event for r in violations]
    assert any("PROV-CONSTRAINTS 53" in m for m in flagged), (
        f"ingest ({order}) let every event through; the store then breaks PROV-CONSTRAINTS 53: "
        f"{[r.message for r in whole]}")
