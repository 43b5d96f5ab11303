"""Property-based tests (hypothesis) of the ingestion pipeline, in process, on
an on-disk store.

Generated OpenLineage 2-0-2 RunEvents (random namespaces and names from
unrestricted text, random standard facets of valid shape, random custom
facets, random event types, inputs and outputs) must be accepted once, then
answered ``duplicate``; their datasets, job and run must be findable in the
event's own graph by namespace and name (SPARQL with the values bound by
substitution, never pasted into the query); mapping must never raise and must
be deterministic. Invalid mutations of such events (a required field deleted,
a type changed) must be rejected, write nothing, and carry JSON pointers that
exist in the event: the changed value's, or, for a deleted field, its parent's.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyoxigraph import Literal, NamedNode, Variable

from conftest import SPEC
from provkg.ingest import Ingestor, canonical_hash
from provkg.iris import IriMinter
from provkg.store import LineageStore
from provkg.validation import EventValidator

PK = "https://w3id.org/provkg/ns#"
CORE = "https://openlineage.io/spec/2-0-2/OpenLineage.json"

# PROVKG_HYPOTHESIS_EXAMPLES=2000 for a longer hunt; 100 keeps the file under a minute
SETTINGS = settings(max_examples=int(os.environ.get("PROVKG_HYPOTHESIS_EXAMPLES", "100")), deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


VALIDATOR = EventValidator(SPEC)


@pytest.fixture(scope="module")
def ingestor(tmp_path_factory) -> Ingestor:
    store = LineageStore(tmp_path_factory.mktemp("properties") / "data")
    yield Ingestor(store, VALIDATOR, IriMinter())
    store.flush()


# -- strategies --------------------------------------------------------------------

# any Unicode text (hypothesis leaves out lone surrogates, which are not
# characters): NUL, controls, RTL, emoji, combining marks, "/", "%", quotes...
names = st.text(max_size=24)
short = st.text(min_size=1, max_size=12)
small_ints = st.integers(min_value=0, max_value=2**40)
uris = st.sampled_from(["https://github.com/OpenLineage/OpenLineage/tree/1.20.0/integration/spark",
                        "https://example.com/producer?x=1#frag", "urn:example:producer", "s3://bucket/path"])


def _format_time(dt: datetime, style: str) -> str:
    if style == "naive":  # openlineage-python: no offset
        return dt.replace(tzinfo=None).isoformat()
    if style == "nanos":  # Java emitters: nanoseconds and Z
        return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
    if style == "z":
        return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    return dt.isoformat()


times = st.builds(
    _format_time,
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1),
                 timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                                            timezone(timedelta(hours=-8))])),
    st.sampled_from(["iso", "naive", "nanos", "z"]),
)

json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def _facet(schema_file: str, definition: str, body: st.SearchStrategy) -> st.SearchStrategy:
    url = f"https://openlineage.io/spec/facets/{schema_file}#/$defs/{definition}"
    return body.map(lambda b: {"_producer": "https://example.com/facet-producer", "_schemaURL": url, **b})


def _obj(required: dict, optional: dict | None = None) -> st.SearchStrategy:
    return st.fixed_dictionaries(required, optional=optional or {})


RUN_FACETS = {
    "nominalTime": _facet("1-0-1/NominalTimeRunFacet.json", "NominalTimeRunFacet",
                          _obj({"nominalStartTime": times}, {"nominalEndTime": times})),
    "parent": _facet("1-1-0/ParentRunFacet.json", "ParentRunFacet",
                     _obj({"run": _obj({"runId": st.uuids().map(str)}),
                           "job": _obj({"namespace": names, "name": names})})),
    "processing_engine": _facet("1-1-1/ProcessingEngineRunFacet.json", "ProcessingEngineRunFacet",
                                _obj({"version": short}, {"name": st.sampled_from(["Airflow", "spark", "dbt"]),
                                                          "openlineageAdapterVersion": short})),
    "errorMessage": _facet("1-0-1/ErrorMessageRunFacet.json", "ErrorMessageRunFacet",
                           _obj({"message": names, "programmingLanguage": st.sampled_from(["JAVA", "python"])},
                                {"stackTrace": names})),
}
JOB_FACETS = {
    "documentation": _facet("1-1-0/DocumentationJobFacet.json", "DocumentationJobFacet",
                            _obj({"description": names}, {"contentType": st.just("text/markdown")})),
    "sql": _facet("1-1-0/SQLJobFacet.json", "SQLJobFacet", _obj({"query": names}, {"dialect": short})),
    "sourceCodeLocation": _facet("1-1-0/SourceCodeLocationJobFacet.json", "SourceCodeLocationJobFacet",
                                 _obj({"type": st.sampled_from(["git", "svn"]), "url": uris})),
    "jobType": _facet("2-0-3/JobTypeJobFacet.json", "JobTypeJobFacet",
                      _obj({"processingType": st.sampled_from(["BATCH", "STREAMING"]),
                            "integration": st.sampled_from(["SPARK", "DBT", "AIRFLOW"])},
                           {"jobType": st.sampled_from(["QUERY", "TASK", "DAG", "JOB", "MODEL"])})),
    "ownership": _facet("1-0-1/OwnershipJobFacet.json", "OwnershipJobFacet",
                        _obj({"owners": st.lists(_obj({"name": names}, {"type": short}), max_size=2)})),
    "tags": _facet("1-0-0/TagsJobFacet.json", "TagsJobFacet",
                   _obj({"tags": st.lists(_obj({"key": short, "value": names}, {"source": short}), max_size=2)})),
}
DATASET_FACETS = {
    "schema": _facet("1-1-1/SchemaDatasetFacet.json", "SchemaDatasetFacet",
                     _obj({"fields": st.lists(_obj({"name": names}, {"type": st.sampled_from(["INT", "VARCHAR"]),
                                                                      "description": names}), max_size=3)})),
    "dataSource": _facet("1-0-1/DatasourceDatasetFacet.json", "DatasourceDatasetFacet",
                         _obj({}, {"name": names, "uri": uris})),
    "documentation": _facet("1-1-0/DocumentationDatasetFacet.json", "DocumentationDatasetFacet",
                            _obj({"description": names})),
    "version": _facet("1-0-1/DatasetVersionDatasetFacet.json", "DatasetVersionDatasetFacet",
                      _obj({"datasetVersion": names})),
    "symlinks": _facet("1-0-1/SymlinksDatasetFacet.json", "SymlinksDatasetFacet",
                       _obj({"identifiers": st.lists(_obj({"namespace": names, "name": names,
                                                            "type": st.just("TABLE")}), max_size=2)})),
    "lifecycleStateChange": _facet("1-0-1/LifecycleStateChangeDatasetFacet.json", "LifecycleStateChangeDatasetFacet",
                                   _obj({"lifecycleStateChange": st.sampled_from(
                                       ["ALTER", "CREATE", "DROP", "OVERWRITE", "RENAME", "TRUNCATE"])})),
    "storage": _facet("1-0-1/StorageDatasetFacet.json", "StorageDatasetFacet",
                      _obj({"storageLayer": st.sampled_from(["iceberg", "delta"])},
                           {"fileFormat": st.sampled_from(["parquet", "csv"])})),
    "datasetType": _facet("1-0-1/DatasetTypeDatasetFacet.json", "DatasetTypeDatasetFacet",
                          _obj({"datasetType": st.sampled_from(["TABLE", "VIEW", "FILE", "MODEL"])})),
}
INPUT_FACETS = {
    "dataQualityMetrics": _facet("1-0-3/DataQualityMetricsInputDatasetFacet.json",
                                 "DataQualityMetricsInputDatasetFacet",
                                 _obj({"columnMetrics": st.dictionaries(
                                     short, _obj({}, {"nullCount": small_ints, "distinctCount": small_ints}),
                                     max_size=2)}, {"rowCount": small_ints, "bytes": small_ints})),
}
OUTPUT_FACETS = {
    "outputStatistics": _facet("1-0-2/OutputStatisticsOutputDatasetFacet.json",
                               "OutputStatisticsOutputDatasetFacet",
                               _obj({}, {"rowCount": small_ints, "size": small_ints, "fileCount": small_ints})),
}

# Fields each generated standard facet requires (deleting one must be a fault).
REQUIRED = {
    "nominalTime": ["nominalStartTime"], "parent": ["run", "job"], "processing_engine": ["version"],
    "errorMessage": ["message", "programmingLanguage"], "documentation": ["description"], "sql": ["query"],
    "sourceCodeLocation": ["type", "url"], "jobType": ["processingType", "integration"],
    "version": ["datasetVersion"], "lifecycleStateChange": ["lifecycleStateChange"], "storage": ["storageLayer"],
    "datasetType": ["datasetType"], "dataQualityMetrics": ["columnMetrics"],
}
# A value of the wrong type (or outside the enum) for one field of each facet.
WRONG = {
    "nominalTime": ("nominalStartTime", 1), "parent": ("run", "run-1"), "processing_engine": ("version", 2),
    "errorMessage": ("message", None), "documentation": ("description", 3), "sql": ("query", ["SELECT"]),
    "sourceCodeLocation": ("type", False), "jobType": ("integration", 4), "ownership": ("owners", "me"),
    "tags": ("tags", {"k": "v"}), "schema": ("fields", "a,b"), "dataSource": ("name", 5),
    "version": ("datasetVersion", 6), "symlinks": ("identifiers", {}),
    "lifecycleStateChange": ("lifecycleStateChange", "EXPLODE"), "storage": ("storageLayer", 7),
    "datasetType": ("datasetType", []), "dataQualityMetrics": ("columnMetrics", []),
    "outputStatistics": ("rowCount", "many"),
}
STANDARD_KEYS = set(RUN_FACETS) | set(JOB_FACETS) | set(DATASET_FACETS) | set(INPUT_FACETS) | set(OUTPUT_FACETS)


_HELD_KEYS = {key for (_kind, key) in VALIDATOR.standard_facets}

# a custom facet: any key no standard facet uses (including "/" and "~", which
# JSON pointers must escape), a BaseFacet with arbitrary content
custom_keys = st.text(min_size=1, max_size=10).filter(lambda k: k not in _HELD_KEYS and not k.startswith("provkg_"))
custom_facet = st.dictionaries(st.text(max_size=6).filter(lambda k: not k.startswith("_")), json_values,
                               max_size=3).map(lambda b: {"_producer": "https://example.com/custom",
                                                          "_schemaURL": "https://example.com/custom.json#/$defs/C",
                                                          **b})


def facets(standard: dict[str, st.SearchStrategy], custom: bool = True) -> st.SearchStrategy:
    chosen = st.lists(st.sampled_from(sorted(standard)), unique=True, max_size=3)
    std = chosen.flatmap(lambda keys: st.fixed_dictionaries({k: standard[k] for k in keys}))
    if not custom:
        return std
    extra = st.dictionaries(custom_keys, custom_facet, max_size=1)
    return st.tuples(std, extra).map(lambda t: {**t[1], **t[0]})


def dataset(side_facets: dict[str, st.SearchStrategy], side_key: str) -> st.SearchStrategy:
    return _obj({"namespace": names, "name": names},
                {"facets": facets(DATASET_FACETS), side_key: facets(side_facets, custom=False)})


@st.composite
def run_events(draw) -> dict:
    event = draw(_obj(
        {"eventTime": times, "producer": uris,
         "run": _obj({"runId": st.uuids().map(str)}, {"facets": facets(RUN_FACETS)}),
         "job": _obj({"namespace": names, "name": names}, {"facets": facets(JOB_FACETS)})},
        {"eventType": st.sampled_from(["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]),
         "schemaURL": st.just(CORE + "#/$defs/RunEvent"),
         "inputs": st.lists(dataset(INPUT_FACETS, "inputFacets"), max_size=3),
         "outputs": st.lists(dataset(OUTPUT_FACETS, "outputFacets"), max_size=3)},
    ))
    return event


# -- helpers ------------------------------------------------------------------------


def pointer(path: tuple) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def resolve(doc: Any, ptr: str) -> Any:
    if ptr == "":
        return doc
    for token in ptr[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


def facet_containers(event: dict):
    """(path to the container, facets dict) for every facet container in the event."""
    for key in ("run", "job"):
        if isinstance(event[key].get("facets"), dict):
            yield (key, "facets"), event[key]["facets"]
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for i, ds in enumerate(event.get(side, [])):
            for name in ("facets", extra):
                if isinstance(ds.get(name), dict):
                    yield (side, i, name), ds[name]


def mutations(event: dict) -> list[tuple[str, tuple, Any]]:
    """Every invalid mutation of a valid event: ("delete", path, None) for a
    required field, ("set", path, value) for a value of the wrong type."""
    out: list[tuple[str, tuple, Any]] = [
        ("delete", ("eventTime",), None), ("delete", ("producer",), None), ("delete", ("job",), None),
        ("delete", ("job", "name"), None), ("delete", ("job", "namespace"), None),
        ("delete", ("run", "runId"), None),
        ("set", ("eventTime",), 1732626337), ("set", ("eventTime",), "not a time"),
        ("set", ("producer",), 7), ("set", ("eventType",), "EXPLODED"), ("set", ("run", "runId"), 42),
        ("set", ("job", "name"), 1), ("set", ("job", "namespace"), None), ("set", ("job",), ["a", "b"]),
        ("set", ("inputs",), {"namespace": "n", "name": "x"}), ("set", ("outputs",), "x"),
        ("set", ("run", "facets"), "none"), ("set", ("job", "facets"), []),
    ]
    for side in ("inputs", "outputs"):
        for i, _ in enumerate(event.get(side, [])):
            out += [("delete", (side, i, "name"), None), ("delete", (side, i, "namespace"), None),
                    ("set", (side, i, "name"), 3), ("set", (side, i, "facets"), "f")]
    for path, container in facet_containers(event):
        for key, facet in container.items():
            out += [("delete", (*path, key, "_producer"), None), ("set", (*path, key, "_producer"), 5)]
            if key not in STANDARD_KEYS:
                out.append(("set", (*path, key), "not an object"))
                continue
            out += [("delete", (*path, key, field), None) for field in REQUIRED.get(key, []) if field in facet]
            if key in WRONG:
                field, value = WRONG[key]
                out.append(("set", (*path, key, field), value))
    return out


def apply(event: dict, kind: str, path: tuple, value: Any) -> dict:
    mutated = copy.deepcopy(event)
    target: Any = mutated
    for part in path[:-1]:
        target = target[part]
    if kind == "delete":
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return mutated


IN_GRAPH = f"""PREFIX provkg: <{PK}>
SELECT ?node ?g ?type ?ns ?name WHERE {{ GRAPH ?g {{ ?node a ?type ; provkg:namespace ?ns ; provkg:name ?name }} }}"""


def find_in_graph(ingestor: Ingestor, graph: str, rdf_type: str, namespace: str, name: str) -> list[str]:
    """Nodes of ``rdf_type`` named (namespace, name) in one event graph; the
    values are bound by substitution (SEP-0007), never pasted into the query."""
    rows = ingestor.store.query(IN_GRAPH, substitutions={
        Variable("g"): NamedNode(graph), Variable("type"): NamedNode(PK + rdf_type),
        Variable("ns"): Literal(namespace), Variable("name"): Literal(name)})
    return sorted({row["node"].value for row in rows})


# -- properties ------------------------------------------------------------------------


@SETTINGS
@given(event=run_events())
def test_valid_events_are_accepted_once_and_findable(ingestor, event):
    assert ingestor.validator.validate(event) == [], json.dumps(event)[:2000]
    digest = canonical_hash(event)
    held = ingestor.store.has_graph(ingestor.mapper.iri.event_graph(digest))
    original = copy.deepcopy(event)

    first = ingestor.ingest(event)
    assert first.status == ("duplicate" if held else "accepted"), first.faults
    assert event == original  # ingest does not touch the event
    assert first.content_hash == digest
    if not held:
        assert first.triples > 0

    second = ingestor.ingest(copy.deepcopy(event))
    assert second.status == "duplicate"
    assert (second.graph, second.content_hash, second.triples) == (first.graph, digest, 0)

    minter = ingestor.mapper.iri
    for side in ("inputs", "outputs"):
        for ds in event.get(side, []):
            found = find_in_graph(ingestor, first.graph, "Dataset", ds["namespace"], ds["name"])
            assert found == [minter.dataset(ds["namespace"], ds["name"]).value], (side, ds["namespace"], ds["name"])
    job = event["job"]
    assert find_in_graph(ingestor, first.graph, "Job", job["namespace"], job["name"]) \
        == [minter.job(job["namespace"], job["name"]).value]
    run = minter.run(event["run"]["runId"])
    assert list(ingestor.store.query("SELECT ?g ?run WHERE { GRAPH ?g { ?run ?p ?o } } LIMIT 1",
                                     substitutions={Variable("g"): NamedNode(first.graph), Variable("run"): run}))


@SETTINGS
@given(event=run_events())
def test_mapping_never_raises_and_is_deterministic(ingestor, event):
    digest = canonical_hash(event)
    when = datetime(2025, 1, 1, tzinfo=timezone.utc)
    one = ingestor.mapper.map(copy.deepcopy(event), digest, when)
    two = ingestor.mapper.map(copy.deepcopy(event), digest, when)
    assert set(one.quads) == set(two.quads)
    assert one.graph == two.graph == ingestor.mapper.iri.event_graph(digest)
    # every quad is in the event's own graph
    assert {q.graph_name for q in one.quads} == {one.graph}


@SETTINGS
@given(data=st.data())
def test_invalid_mutations_are_rejected_with_pointers_into_the_event(ingestor, data):
    event = data.draw(run_events(), label="event")
    kind, path, value = data.draw(st.sampled_from(mutations(event)), label="mutation")
    mutated = apply(event, kind, path, value)
    before = len(ingestor.store.store)

    result = ingestor.ingest(mutated)
    assert result.status == "rejected", (kind, path, value)
    assert len(ingestor.store.store) == before
    assert result.faults
    pointers = [f.pointer for f in result.faults]
    for ptr in pointers:  # every pointer names something that is in the event
        try:
            resolve(mutated, ptr)
        except (KeyError, IndexError, ValueError, TypeError):
            pytest.fail(f"pointer {ptr!r} is not in the event ({kind} {path}); faults: {result.faults}")
    if kind == "delete":
        parent, field = pointer(path[:-1]), path[-1]
        assert any(f.pointer == parent and repr(field) in f.message for f in result.faults), \
            (kind, path, result.faults)
    else:
        assert pointer(path) in pointers, (kind, path, value, result.faults)


@SETTINGS
@given(event=run_events(), key=custom_keys)
def test_custom_facet_faults_point_through_escaped_keys(ingestor, event, key):
    """A custom facet key with "/" or "~" is escaped in the fault's pointer (RFC 6901)."""
    event["run"].setdefault("facets", {})[key] = {"_schemaURL": "https://example.com/c.json#/$defs/C"}
    result = ingestor.ingest(event)
    assert result.status == "rejected"
    expected = pointer(("run", "facets", key))
    assert any(f.pointer == expected and "'_producer'" in f.message for f in result.faults), \
        (expected, result.faults)
