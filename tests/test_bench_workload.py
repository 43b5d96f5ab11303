"""The benchmark workload (bench/workload.py) is valid provkg input: every event
passes OpenLineage validation, ingests into a real store, and breaks no SHACL
Violation at ingest (flag mode); the generator is deterministic and ordered."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

from provkg.ingest import Ingestor
from provkg.iris import IriMinter
from provkg.shacl import EventShapesValidator, Shapes
from provkg.store import LineageStore
from provkg.validation import EventValidator

from conftest import SPEC

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import workload  # noqa: E402

N, SEED = 300, 7


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return list(workload.generate(N, SEED))


def test_deterministic_sized_and_ordered(events):
    assert len(events) == N
    assert events == list(workload.generate(N, SEED))
    assert events != list(workload.generate(N, SEED + 1))
    times = [e["eventTime"] for e in events]
    assert times == sorted(times)
    types = Counter(e["eventType"] for e in events)
    assert types["START"] and types["COMPLETE"]
    facets = {k for e in events for k in e["run"]["facets"]}
    facets |= {k for e in events for d in e["inputs"] + e["outputs"] for k in d["facets"]}
    assert {"provkg_training", "provkg_deployment", "provkg_inference", "provkg_consent", "provkg_modelVersion",
            "provkg_dataSubjects", "provkg_policy", "provkg_fairness", "provkg_evaluation",
            "columnLineage"} <= facets


def test_estate_grows_with_events():
    small, big = workload.EstateSize.for_events(10_000), workload.EstateSize.for_events(100_000)
    assert big.pipelines > 2 * small.pipelines and big.sources > 2 * small.sources and big.days > 2 * small.days


def test_every_event_validates(events):
    validator = EventValidator(SPEC)
    faults = {i: validator.validate(e) for i, e in enumerate(events)}
    assert {i: f for i, f in faults.items() if f} == {}


def test_ingests_without_shacl_violations(events, tmp_path):
    store = LineageStore(tmp_path / "data")
    ingestor = Ingestor(store, EventValidator(SPEC), IriMinter(), EventShapesValidator(Shapes()), "flag")
    statuses: Counter[str] = Counter()
    violations = []
    for event in events:
        result = ingestor.ingest(event)
        statuses[result.status] += 1
        if result.shacl is not None:
            violations += [(event["job"]["name"], v.message) for v in result.shacl.violations]
    assert statuses == {"accepted": N}
    assert violations == []
    assert store.stats()["graphs"] == N
