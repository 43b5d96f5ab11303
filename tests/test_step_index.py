"""provkg.step_index: the impact walks' edges kept in memory give the walk's
answers, whether the index was built from the store, took writes made while
it was building, or was kept up to date write by write."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pyoxigraph import NamedNode, Quad

from conftest import SPEC
from provkg.demo import KNOWN_ANSWERS as K, demo_events
from provkg.ingest import Ingestor
from provkg.iris import IriMinter
from provkg.named_queries import load_named_queries, run_named_query
from provkg.resources import queries_dir
from provkg.step_index import _UNSORTED, StepIndex, step_form
from provkg.store import LineageStore
from provkg.subjects import SubjectVault
from provkg.validation import EventValidator

KINDS = ("provkg:Dataset", "provkg:DatasetVersion", "provkg:Column", "prov:Plan", "provkg:Model",
         "provkg:ModelVersion", "provkg:FeatureSet")
PREFIXES = "PREFIX prov: <http://www.w3.org/ns/prov#>\nPREFIX provkg: <https://w3id.org/provkg/ns#>\n" \
           "PREFIX dpv: <https://w3id.org/dpv#>\n"


def _nodes(store: LineageStore, kind: str) -> list[str]:
    return sorted(s["n"].value for s in store.query(f"{PREFIXES}SELECT DISTINCT ?n WHERE {{ ?n a {kind} }}")
                  if isinstance(s["n"], NamedNode))


def _cases(store: LineageStore) -> list[tuple[str, dict[str, str]]]:
    """Every start node of the demo's lineage kinds, and every data subject;
    some with a depth bound and as of a date, for forward-impact."""
    starts = [n for kind in KINDS for n in _nodes(store, kind)]
    cases = [("forward-impact", {"node": n}) for n in starts]
    cases += [("forward-impact", {"node": n, "depth": "2"}) for n in starts[::3]]
    cases += [("forward-impact", {"node": n, "asOf": K["q2_forward_impact"]["as_of"]}) for n in starts]
    cases += [("erasure-impact", {"subject": n}) for n in _nodes(store, "dpv:DataSubject")]
    cases += [("erasure-impact", {"subject": n, "depth": "3"}) for n in _nodes(store, "dpv:DataSubject")]
    return cases


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """The demo's events into a store: 20 before the index exists (it is
    built from the store), 5 while it waits to be built (writes it takes
    after the scan), the rest one write at a time after it is ready."""
    events = demo_events()
    store = LineageStore(tmp_path_factory.mktemp("steps") / "store")
    ingestor = Ingestor(store, EventValidator(SPEC), IriMinter(), vault=SubjectVault(store.path / "subjects"))
    index = StepIndex(load_named_queries().values())
    assert index.state() == "building" and sorted(index.forms) == ["erasure-impact", "forward-impact"]
    for i, event in enumerate(events):
        if i == 20:
            store.listeners.append(index.add)
        if i == 25:
            index.build(store)
            assert index.state() == "ready"
        assert ingestor.ingest(event).status == "accepted"
    return store, index


def test_the_index_answers_as_the_walk(indexed):
    """Both indexes (kept up to date write by write, and built afresh by a
    child process) give the walk's rows, summary and total for every case."""
    store, index = indexed
    fresh = StepIndex(load_named_queries().values())
    fresh.build(store, apart=True)  # as the server builds it from a large store: scanned by a child process
    assert fresh.stats["apart"] and not index.stats["apart"]  # the demo's store is small: scanned in-process
    assert fresh.stats["nodes"] == len(index._values) and fresh.stats["edges"] > 100
    named = load_named_queries()
    cases = _cases(store)
    assert len(cases) > 100
    reached = 0
    for name, params in cases:
        params = {**params, "limit": "100000"}
        walked = run_named_query(store, named[name], params)
        for kept in (index, fresh):
            answer = run_named_query(store, named[name], params, index=kept)
            assert (answer.rows, answer.summary, answer.total) == (walked.rows, walked.summary, walked.total), \
                (name, params)
        reached += bool(walked.rows)
    assert reached > len(cases) // 2  # most start nodes have a downstream: the comparison is not of empty answers


def test_an_unknown_start_node_is_refused_as_by_the_walk(indexed):
    from provkg.named_queries import UnknownNode

    store, index = indexed
    with pytest.raises(UnknownNode):
        run_named_query(store, load_named_queries()["forward-impact"], {"node": "urn:provkg:dataset/nowhere"},
                        index=index)


def test_a_node_typed_as_a_measurement_in_an_earlier_write_is_left_out(tmp_path):
    """FILTER NOT EXISTS { ?to a dqv:QualityMeasurement } holds across writes:
    of each of 12 demo events, the quality measurements' rdf:type in one
    write and everything else in another, before or after it."""
    demo = LineageStore(tmp_path / "demo")
    ingestor = Ingestor(demo, EventValidator(SPEC), IriMinter())
    for event in demo_events()[:12]:
        assert ingestor.ingest(event).status == "accepted"
    store = LineageStore(tmp_path / "split")
    index = StepIndex(load_named_queries().values())
    store.listeners.append(index.add)
    index.build(store)
    measurement = NamedNode("http://www.w3.org/ns/dqv#QualityMeasurement")
    for i, graph in enumerate(demo.event_graphs()):
        quads = list(demo.store.quads_for_pattern(None, None, None, graph))
        types = NamedNode(graph.value + "#types")
        typing = [Quad(q.subject, q.predicate, q.object, types) for q in quads if q.object == measurement]
        writes = [[(types, typing)], [(graph, [q for q in quads if q.object != measurement])]]
        for write in writes if i % 2 else writes[::-1]:  # the types first, or the edges first
            store.add_graphs(write)
    assert any(True for _ in store.store.quads_for_pattern(None, None, measurement, None))
    query = load_named_queries()["forward-impact"]
    sources = _nodes(store, "provkg:Dataset")
    assert sources
    for node in sources:
        params = {"node": node, "limit": "100000"}
        walked = run_named_query(store, query, params)
        assert run_named_query(store, query, params, index=index).rows == walked.rows


def test_only_queries_of_the_indexed_form_are_indexed():
    named = load_named_queries()
    assert step_form(named["forward-impact"].text).excluded == "http://www.w3.org/ns/dqv#QualityMeasurement"
    # bias-attribution's reach step answers ?from ?to ?target: not the form
    assert step_form((queries_dir() / "steps" / "downstream-model-versions.rq").read_text("utf-8")) is None
    # one more condition in the step query: the index would not know it
    text = named["forward-impact"].text.replace("GROUP BY", "FILTER(?to != ?from)\n}\nGROUP BY", 1)
    text = text.replace("OPTIONAL { ?to a ?type }\n}", "OPTIONAL { ?to a ?type }", 1)
    assert step_form(text) is None


def test_the_collector_pause_nests_and_restores_what_it_found():
    """provkg.collector: overlapping pauses keep the cyclic collector off
    until the last ends, an exception ends a pause, and a collector that was
    already off stays off."""
    import gc

    from provkg.collector import collector_paused

    was = gc.isenabled()
    try:
        gc.enable()
        with collector_paused():
            with collector_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()
        assert gc.isenabled()
        with pytest.raises(RuntimeError), collector_paused():
            raise RuntimeError("ends the pause")
        assert gc.isenabled()
        gc.disable()
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_an_erasure_request_answered_from_the_index_finds_what_the_walk_finds(indexed):
    """provkg.erasure with the server's index: the same impact rows, summary
    and findings as the walk of the store (each request is recorded, and a
    recorded request is not part of any subject's erasure impact)."""
    from provkg.erasure import handle_erasure_request

    store, index = indexed
    ingestor = Ingestor(store, EventValidator(SPEC), IriMinter(), vault=SubjectVault(store.path / "subjects"))
    walked = handle_erasure_request(ingestor, K["withdrawn_subject"], "dpo@example.com")
    from_index = handle_erasure_request(ingestor, K["withdrawn_subject"], "dpo@example.com", index=index)
    assert index.serves("erasure-impact") and walked.recorded.status == from_index.recorded.status == "accepted"
    assert len(walked.impact.rows) > 10 and walked.findings["consentViolations"] > 0
    assert (from_index.impact.rows, from_index.impact.summary, from_index.findings) == \
        (walked.impact.rows, walked.impact.summary, walked.findings)


def test_nodes_with_many_edges_answer_as_the_walk(tmp_path):
    """Past 16 edges (a data subject in many records, a source read run after
    run) a node's edges are kept in order, with no duplicates, whether the
    index took them write by write or scanned them; both answer as the walk
    from every such node. The benchmark's workload, which has such nodes."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import workload

    store = LineageStore(tmp_path / "store")
    live = StepIndex(load_named_queries().values())
    live.build(store)
    store.listeners.append(live.add)
    ingestor = Ingestor(store, EventValidator(SPEC), IriMinter())
    for event in workload.generate(500, 3):
        assert ingestor.ingest(event).status == "accepted"
    built = StepIndex(load_named_queries().values())
    built.build(store)
    named = load_named_queries()
    hubs = 0
    for index in (live, built):
        for name, table in index._edges.items():
            for origin, edges in table.items():
                if len(edges) <= _UNSORTED:
                    continue
                hubs += 1
                assert list(edges) == sorted(set(edges))
                params = {named[name].traversal_from: index._values[origin], "limit": "100000"}
                walked = run_named_query(store, named[name], params)
                for kept in (live, built):
                    answer = run_named_query(store, named[name], params, index=kept)
                    assert (answer.rows, answer.summary, answer.total) == (walked.rows, walked.summary, walked.total)
    assert hubs >= 10


def test_edges_arriving_out_of_order_and_again_are_kept_in_order_once(tmp_path):
    """A node past 16 edges that gains edges to older nodes (lower ids, so
    inserted before the others) and edges it already has: one entry each, in
    order, and the walk's answer."""
    used = NamedNode("http://www.w3.org/ns/prov#used")
    store = LineageStore(tmp_path / "store")
    index = StepIndex(load_named_queries().values())
    index.build(store)
    store.listeners.append(index.add)
    hub, runs = NamedNode("urn:test:source"), [NamedNode(f"urn:test:run/{i}") for i in range(25)]
    graphs = iter(NamedNode(f"urn:test:write/{i}") for i in range(100))

    def write(triples: list[tuple[NamedNode, NamedNode, NamedNode]]) -> None:
        graph = next(graphs)
        store.add_graphs([(graph, [Quad(*t, graph) for t in triples])])

    write([(NamedNode(f"urn:test:next/{i}"), used, run) for i, run in enumerate(runs)])  # the runs get ids in order
    for run in reversed(runs):  # then each uses the source, the newest first
        write([(run, used, hub)])
    write([(run, used, hub) for run in runs[::4]])  # and some again
    edges = index._edges["forward-impact"][index._ids[hub.value]]
    assert len(edges) == len(runs) and list(edges) == sorted(edges)
    query = load_named_queries()["forward-impact"]
    walked = run_named_query(store, query, {"node": hub.value})
    assert run_named_query(store, query, {"node": hub.value}, index=index).rows == walked.rows
    assert {r for row in walked.rows for r in row if str(r).startswith("urn:test:run/")} == {r.value for r in runs}
