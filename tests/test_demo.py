"""The demo estate (provkg.demo): valid OpenLineage 2-0-2, deterministic, and
connected end to end once ingested into a real on-disk store."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone

import pytest

from conftest import SPEC
from provkg.demo import DEMO_PRODUCER, demo_events
from provkg.ingest import Ingestor
from provkg.iris import IriMinter
from provkg.named_queries import load_named_queries, run_named_query
from provkg.store import LineageStore
from provkg.validation import EventValidator

WAREHOUSE = "postgres://warehouse.prod:5432"
CRM = "postgres://crm-db.prod:5432"
TRAIN = "credit_risk_daily.train_credit_model"
SCORE = "credit_risk_daily.score_applications"


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return EventValidator(SPEC)


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return demo_events()


def _producers(value, found: list[str]) -> list[str]:
    """Every facet ``_producer`` anywhere in an event."""
    if isinstance(value, dict):
        if "_producer" in value:
            found.append(value["_producer"])
        for v in value.values():
            _producers(v, found)
    elif isinstance(value, list):
        for v in value:
            _producers(v, found)
    return found


def test_every_event_validates_against_the_openlineage_schemas(events, validator):
    assert events
    for event in events:
        assert validator.validate(event) == [], (event["job"]["name"], event["eventType"])


def test_validator_is_not_vacuous_on_demo_events(events, validator):
    # a broken standard facet in a demo event must be caught, so the test above means something
    broken = json.loads(json.dumps(events[1]))
    broken["inputs"][0]["facets"]["tags"]["tags"][0]["value"] = 5
    assert validator.validate(broken)


def test_estate_shape(events):
    # 6 runs (the DAG and 5 tasks) x START/COMPLETE x 2 days
    assert len(events) == 24
    assert {e["job"]["namespace"] for e in events} == {"airflow-prod"}
    assert {e["job"]["name"] for e in events} == {
        "credit_risk_daily", "credit_risk_daily.build_loan_history", "credit_risk_daily.label_defaults",
        "credit_risk_daily.build_credit_features", TRAIN, SCORE,
    }
    assert all(e["producer"] == DEMO_PRODUCER for e in events)
    assert set(_producers(events, [])) == {DEMO_PRODUCER}
    assert [e["eventTime"] for e in events] == sorted(e["eventTime"] for e in events)
    assert events[0]["eventTime"] == "2026-11-01T02:00:00.000Z"


def test_each_run_starts_then_completes_inside_its_dag_run(events):
    by_run: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        by_run[e["run"]["runId"]].append(e)
    assert len(by_run) == 12
    dag_runs = {rid for rid, evs in by_run.items() if evs[0]["job"]["name"] == "credit_risk_daily"}
    assert len(dag_runs) == 2
    for run_id, evs in by_run.items():
        assert [e["eventType"] for e in evs] == ["START", "COMPLETE"]
        assert evs[0]["eventTime"] < evs[1]["eventTime"]
        if run_id in dag_runs:
            assert "parent" not in evs[0]["run"]["facets"]
            continue
        parent = evs[0]["run"]["facets"]["parent"]
        assert parent["run"]["runId"] in dag_runs
        assert parent["job"] == {"namespace": "airflow-prod", "name": "credit_risk_daily", "facets": {}}
        dag_start, dag_end = (e["eventTime"] for e in by_run[parent["run"]["runId"]])
        assert dag_start < evs[0]["eventTime"] and evs[1]["eventTime"] < dag_end


def test_deterministic():
    assert json.dumps(demo_events(), sort_keys=False) == json.dumps(demo_events(), sort_keys=False)
    start = datetime(2027, 1, 5, 3, 30, tzinfo=timezone.utc)
    assert demo_events(days=3, start=start) == demo_events(days=3, start=start)
    # another day gives other runs
    other = {e["run"]["runId"] for e in demo_events(days=1, start=start)}
    assert other.isdisjoint(e["run"]["runId"] for e in demo_events(days=1))


def test_days_argument():
    assert demo_events(days=0) == []
    assert len(demo_events(days=1)) == 12
    with pytest.raises(ValueError):
        demo_events(days=-1)


def _model_versions(events: list[dict], job: str, side: str) -> dict[str, str]:
    """runId -> the model version the job's COMPLETE event writes or reads."""
    out = {}
    for e in events:
        if e["job"]["name"] == job and e["eventType"] == "COMPLETE":
            for ds in e[side]:
                if ds["name"] == "models/credit_default":
                    out[e["run"]["runId"]] = ds["facets"]["version"]["datasetVersion"]
    return out


def test_three_days_give_three_model_versions_each_scored_the_same_day():
    events = demo_events(days=3)
    trained = _model_versions(events, TRAIN, "outputs")
    assert sorted(trained.values()) == ["6", "7", "8"]
    scored = _model_versions(events, SCORE, "inputs")
    assert sorted(scored.values()) == ["6", "7", "8"]
    model_types = {ds["facets"]["datasetType"]["datasetType"] for e in events for ds in e.get("outputs", [])
                   if ds["name"] == "models/credit_default"}
    assert model_types == {"MODEL"}


def test_ingested_lineage_connects_scores_back_to_customers(events, validator, tmp_path):
    store = LineageStore(tmp_path / "store")
    minter = IriMinter()
    ingestor = Ingestor(store, validator, minter)
    results = [ingestor.ingest(e) for e in events]
    assert [r.status for r in results] == ["accepted"] * len(events), [r.as_dict() for r in results if not r.ok]

    query = load_named_queries()["backward-provenance"]
    scores = minter.dataset(WAREHOUSE, "analytics.credit_scores").value
    answer = run_named_query(store, query, {"node": scores})
    reached = {row[answer.columns.index("node")] for row in answer.rows}

    assert minter.dataset(CRM, "crm.public.customers").value in reached
    train_runs = {minter.run(e["run"]["runId"]).value for e in events if e["job"]["name"] == TRAIN}
    assert train_runs & reached
    # the model versions the scoring runs read are on the way
    model = minter.dataset("mlflow://registry.prod", "models/credit_default")
    assert {minter.dataset_version(model, v).value for v in ("6", "7")} <= reached
