"""The graph does not depend on arrival order or on duplicate deliveries:
the same scenario ingested in order, reversed, shuffled with duplicates gives
the same canonical dump (receipt times aside, which record delivery, not lineage)."""

from __future__ import annotations

import random

import pytest
from pyoxigraph import CanonicalizationAlgorithm, Dataset, RdfFormat, parse

from conftest import EVENTS, SPEC, load_events
from provkg.ingest import Ingestor
from provkg.iris import IriMinter
from provkg.store import LineageStore
from provkg.validation import EventValidator
from provkg.vocab import PROVKG

SCENARIOS = ["compat-consumer-airflow", "compat-consumer-spark_dataproc_simple_producer_test_complete",
             "marquez-seed"]


def _events(scenario: str) -> list[dict]:
    files = sorted((EVENTS / scenario).glob("*.json"))
    if scenario == "marquez-seed":
        files = [EVENTS / scenario / "metadata.filled.json"]
    return [e for f in files for e in load_events(f)]


def _canonical_dump(store: LineageStore) -> str:
    dataset = Dataset(q for q in parse(store.dump(RdfFormat.N_QUADS), format=RdfFormat.N_QUADS)
                      if q.predicate != PROVKG.receivedAt)
    dataset.canonicalize(CanonicalizationAlgorithm.RDFC_1_0)
    return "\n".join(sorted(str(q) for q in dataset))


def _ingest(tmp_path, name: str, events: list[dict]) -> str:
    store = LineageStore(tmp_path / name)
    ingestor = Ingestor(store, EventValidator(SPEC), IriMinter())
    statuses = {ingestor.ingest(e).status for e in events}
    assert "rejected" not in statuses
    return _canonical_dump(store)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_order_and_duplicates_do_not_change_the_graph(tmp_path, scenario):
    events = _events(scenario)
    in_order = _ingest(tmp_path, "in-order", events)
    assert in_order.count("\n") > 100
    assert _ingest(tmp_path, "reversed", list(reversed(events))) == in_order
    shuffled = events + events[: len(events) // 2]
    random.Random(7).shuffle(shuffled)
    assert _ingest(tmp_path, "shuffled-with-duplicates", shuffled) == in_order


def test_complete_before_start_gives_the_same_run(tmp_path):
    events = [e for e in _events("compat-consumer-airflow") if e["job"]["name"] == "BQ.copy"]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    forward = _ingest(tmp_path, "forward", events)
    backward = _ingest(tmp_path, "backward", events[::-1])
    assert forward == backward
    assert "endedAtTime" in forward and "startedAtTime" in forward
