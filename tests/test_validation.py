"""Validation against the real OpenLineage 2-0-2 schemas, on real corpus events."""

from __future__ import annotations

import copy

import pytest

from conftest import EVENTS, SPEC, load_events, valid_files
from provkg.validation import EventValidator


@pytest.fixture(scope="module")
def validator():
    return EventValidator(SPEC)


def test_every_corpus_valid_event_conforms(validator):
    files = valid_files()
    assert len(files) > 70
    for path in files:
        for event in load_events(path):
            assert validator.validate(event) == [], path


def test_standard_facets_are_known_by_kind_and_key(validator):
    facets = validator.standard_facets
    # 'ownership' is both a job and a dataset facet, with different schemas
    assert ("JobFacet", "ownership") in facets and ("DatasetFacet", "ownership") in facets
    assert facets[("RunFacet", "parent")][0].endswith("/ParentRunFacet.json")


def test_custom_facets_are_kept_but_need_producer_and_schema_url(validator):
    event = load_events(EVENTS / "marquez-api-tests" / "open_lineage__event_simple.json")[0]
    event = copy.deepcopy(event)
    event["run"].setdefault("facets", {})["acme_costs"] = {
        "_producer": "https://acme.example/emitter", "_schemaURL": "https://acme.example/costs.json", "usd": 12.5}
    assert validator.validate(event) == []
    del event["run"]["facets"]["acme_costs"]["_producer"]
    faults = validator.validate(event)
    assert [f.pointer for f in faults] == ["/run/facets/acme_costs"]


def test_facet_version_named_in_schema_url_is_used(validator):
    event = copy.deepcopy(load_events(EVENTS / "compat-consumer-airflow" / "line_05.json")[0])
    facet = event["outputs"][0]["facets"]["schema"]
    facet["fields"][0]["name"] = 42  # wrong type in every version
    faults = validator.validate(event)
    assert faults and faults[0].pointer == "/outputs/0/facets/schema/fields/0/name"
    assert "SchemaDatasetFacet" in faults[0].message


@pytest.mark.parametrize("when,ok", [
    ("2021-11-03T10:53:52.427343", True),          # no offset: what the python client sends
    ("2024-11-26T13:05:37.621840123Z", True),      # nanoseconds: Java emitters
    ("2020-12-28T19:52:00.001+10:00", True),
    ("{{RUN_START_TIME}}", False),
    ("2024-13-45T00:00:00Z", False),
    ("yesterday", False),
])
def test_event_time_accepts_what_iso_8601_allows(validator, when, ok):
    event = copy.deepcopy(load_events(EVENTS / "marquez-api-tests" / "open_lineage__event_simple.json")[0])
    event["eventTime"] = when
    faults = validator.validate(event)
    assert (faults == []) is ok, faults
    if not ok:
        assert faults[0].pointer == "/eventTime"


def test_missing_schema_url_is_accepted_other_missing_fields_are_not(validator):
    event = copy.deepcopy(load_events(EVENTS / "marquez-api-tests" / "open_lineage__event_simple.json")[0])
    event.pop("schemaURL", None)
    assert validator.validate(event) == []
    del event["job"]["name"]
    assert [f.pointer for f in validator.validate(event)] == ["/job"]


@pytest.mark.parametrize("value", [None, [], "event", 3])
def test_non_objects_are_rejected(validator, value):
    faults = validator.validate(value)
    assert faults and faults[0].pointer == ""
