"""The demo estate (provkg.demo): valid OpenLineage 2-0-2 with provkg's custom
facets, deterministic, telling the story docs/demo.md tells, and connected end
to end once ingested into a real on-disk store, where the graph holds the
known answers (provkg.demo.KNOWN_ANSWERS) of the governance questions."""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pyoxigraph import NamedNode

from conftest import SPEC
from provkg.answer_cache import AnswerCache
from provkg.demo import DEMO_PRODUCER, KNOWN_ANSWERS, demo_events
from provkg.ingest import Ingestor
from provkg.iris import IriMinter
from provkg import named_queries
from provkg.named_queries import load_named_queries, parse_query_file, run_named_query
from provkg.resources import facets_dir
from provkg.store import LineageStore
from provkg.subjects import SubjectVault
from provkg.validation import EventValidator

K = KNOWN_ANSWERS
DAG = "credit_risk_daily"
ETL, LABEL, FEATURES = f"{DAG}.build_applicant_profile", f"{DAG}.label_defaults", f"{DAG}.build_credit_features"
TRAIN, TRAIN_FRAUD = f"{DAG}.train_credit_model", f"{DAG}.train_fraud_model"
EVALUATE, EVALUATE_FRAUD = f"{DAG}.evaluate_credit_model", f"{DAG}.evaluate_fraud_model"
DEPLOY = f"{DAG}.deploy_credit_model"
SERVE, CONSENT = "credit-scoring-prod", "consent_changes.publish"
RAW, WAREHOUSE = "s3://bank-raw", "postgres://warehouse.prod:5432"
SOURCES = ("lending/applications", "bureau/credit_reports", "vendor/demographics")
DAY1, DAY2 = "2026-11-01", "2026-11-02"

# the provkg custom facets (docs/ai-lineage.md §2): key -> schema name
CUSTOM = {
    "provkg_training": "TrainingRunFacet", "provkg_modelVersion": "ModelVersionDatasetFacet",
    "provkg_deployment": "DeploymentRunFacet", "provkg_inference": "InferenceRunFacet",
    "provkg_dataSubjects": "DataSubjectsDatasetFacet", "provkg_consent": "ConsentRunFacet",
    "provkg_policy": "PolicyDatasetFacet", "provkg_fairness": "FairnessDatasetFacet",
    "provkg_evaluation": "EvaluationDatasetFacet", "provkg_erasureRequest": "ErasureRequestRunFacet",
}


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return EventValidator(SPEC)


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return demo_events()


def _complete(events: list[dict], job: str, date: str | None = None) -> list[dict]:
    return [e for e in events if e["job"]["name"] == job and e["eventType"] == "COMPLETE"
            and (date is None or e["eventTime"].startswith(date))]


def _one(events: list[dict], job: str, date: str) -> dict:
    found = _complete(events, job, date)
    assert len(found) == 1, (job, date, len(found))
    return found[0]


def _dataset(event: dict, side: str, name: str) -> dict:
    found = [d for d in event[side] if d["name"] == name]
    assert len(found) == 1, (event["job"]["name"], side, name)
    return found[0]


def _facets_anywhere(value, key: str, found: list) -> list:
    """Every facet stored under ``key`` anywhere in an event."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                found.append(v)
            _facets_anywhere(v, key, found)
    elif isinstance(value, list):
        for v in value:
            _facets_anywhere(v, key, found)
    return found


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


def _fairness(facet: dict, attribute: str = "age_band", group: str = "18-25") -> dict:
    found = [m for m in facet["metrics"] if m["protectedAttribute"] == attribute and m["group"] == group]
    assert len(found) == 1
    return found[0]


# -- validity -------------------------------------------------------------------------


def test_every_event_validates_against_the_openlineage_and_provkg_schemas(events, validator):
    assert events
    for event in events:
        assert validator.validate(event) == [], (event["job"]["name"], event["eventType"])


def test_validator_is_not_vacuous_on_demo_events(events, validator):
    # a broken standard facet in a demo event must be caught, so the test above means something
    etl = _one(events, ETL, DAY1)
    broken = copy.deepcopy(etl)
    broken["inputs"][0]["facets"]["tags"]["tags"][0]["value"] = 5
    assert validator.validate(broken)
    # and so must a broken provkg facet: the custom facet schemas are applied
    serve = copy.deepcopy(_one(events, SERVE, DAY1))
    full = next(p for p in serve["run"]["facets"]["provkg_inference"]["predictions"]
                if p["captureTier"] == "FULL_SNAPSHOT")
    del full["featureSnapshot"]
    assert validator.validate(serve)
    train = copy.deepcopy(_one(events, TRAIN, DAY1))
    train["outputs"][0]["facets"]["provkg_modelVersion"]["artifactDigest"] = "md5:abc"
    assert validator.validate(train)


def test_custom_facets_are_client_facets_with_provkg_schema_urls(events):
    schemas = {json.loads(p.read_text("utf-8"))["$id"] for p in facets_dir().glob("*.json")}
    seen = set()
    for event in events:
        for key, name in CUSTOM.items():
            for facet in _facets_anywhere(event, key, []):
                seen.add(key)
                url = f"https://w3id.org/provkg/spec/facets/1-0-0/{name}.json"
                assert facet["_schemaURL"] == url
                assert facet["_producer"] == DEMO_PRODUCER
                assert url in schemas, f"no schema in facets/ with $id {url}"
    # every custom facet but the erasure request (a governance action, not pipeline lineage)
    assert seen == set(CUSTOM) - {"provkg_erasureRequest"}


# -- shape and determinism ----------------------------------------------------------------


def test_estate_shape(events):
    assert len(events) == K["events"] == 42
    assert {(e["job"]["namespace"], e["job"]["name"]) for e in events} == {
        ("airflow-prod", j) for j in (DAG, ETL, LABEL, FEATURES, TRAIN, TRAIN_FRAUD, EVALUATE, EVALUATE_FRAUD, DEPLOY)
    } | {("kserve-prod", SERVE), ("consent-service", CONSENT)}
    assert all(e["producer"] == DEMO_PRODUCER for e in events)
    assert set(_producers(events, [])) == {DEMO_PRODUCER}
    assert [e["eventTime"] for e in events] == sorted(e["eventTime"] for e in events)
    # the consent export runs half an hour before the first DAG run, scheduled at the start
    assert events[0]["eventTime"] == "2026-11-01T01:30:00.000Z"
    assert [e["eventTime"] for e in events if e["job"]["name"] == DAG][0] == "2026-11-01T02:00:00.000Z"
    assert K["start"] == "2026-11-01T02:00:00.000Z"


def test_job_types_name_every_ml_stage(events):
    job_types = {e["job"]["name"]: e["job"]["facets"]["jobType"]["jobType"] for e in events}
    assert job_types[FEATURES] == "FEATURE_ENGINEERING"
    assert job_types[LABEL] == "LABELLING"
    assert job_types[TRAIN] == job_types[TRAIN_FRAUD] == "TRAINING"
    assert job_types[EVALUATE] == job_types[EVALUATE_FRAUD] == "EVALUATION"
    assert job_types[DEPLOY] == "DEPLOYMENT"
    assert job_types[SERVE] == "INFERENCE"


def test_each_run_starts_then_completes_and_tasks_run_inside_their_dag_run(events):
    by_run: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        by_run[e["run"]["runId"]].append(e)
    assert len(by_run) == 21
    dag_runs = {rid for rid, evs in by_run.items() if evs[0]["job"]["name"] == DAG}
    assert len(dag_runs) == 2
    for run_id, evs in by_run.items():
        assert [e["eventType"] for e in evs] == ["START", "COMPLETE"]
        assert evs[0]["eventTime"] < evs[1]["eventTime"]
        if evs[0]["job"]["namespace"] != "airflow-prod" or run_id in dag_runs:
            assert "parent" not in evs[0]["run"]["facets"]
            continue
        parent = evs[0]["run"]["facets"]["parent"]
        assert parent["run"]["runId"] in dag_runs
        assert parent["job"] == {"namespace": "airflow-prod", "name": DAG, "facets": {}}
        dag_start, dag_end = (e["eventTime"] for e in by_run[parent["run"]["runId"]])
        assert dag_start < evs[0]["eventTime"] and evs[1]["eventTime"] < dag_end


def test_deterministic():
    assert json.dumps(demo_events()) == json.dumps(demo_events())
    start = datetime(2027, 1, 5, 3, 30, tzinfo=timezone.utc)
    assert demo_events(days=3, start=start) == demo_events(days=3, start=start)
    assert demo_events(days=1, start=datetime(2027, 1, 5, 3, 30)) == demo_events(days=1, start=start)  # naive = UTC
    # another start gives other runs
    other = {e["run"]["runId"] for e in demo_events(days=1, start=start)}
    assert other.isdisjoint(e["run"]["runId"] for e in demo_events(days=1))


def test_days_argument(validator):
    assert demo_events(days=0) == []
    assert len(demo_events(days=1)) == 20
    three = demo_events(days=3)
    assert len(three) == 42 + 18  # day 3: as day 1 without the withdrawal (20 - 2)
    assert all(validator.validate(e) == [] for e in three[42:])
    trained = sorted(d["facets"]["version"]["datasetVersion"] for e in _complete(three, TRAIN) for d in e["outputs"])
    assert trained == ["1", "2", "3"]
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError):
            demo_events(days=bad)


# -- the story, as the events tell it ---------------------------------------------------------


def test_sources_are_versioned_personal_data_listing_their_subjects(events):
    for date in (DAY1, DAY2):
        etl = _one(events, ETL, date)
        for name in SOURCES:
            facets = _dataset(etl, "inputs", name)["facets"]
            assert facets["version"]["datasetVersion"] == date
            assert K["withdrawn_subject"] in facets["provkg_dataSubjects"]["subjects"]
            policy = facets["provkg_policy"]
            assert (policy["personalData"], policy["legalBasis"], policy["retention"]) == (
                True, "eu-gdpr:A6-1-b", "P5Y")
            assert "credit-model-training" in policy["purposes"]
            assert {t["field"] for t in facets["tags"]["tags"] if t["key"] == "pii"} >= {"subject_id"}
        assert set(_dataset(etl, "inputs", SOURCES[0])["facets"]["provkg_dataSubjects"]["subjects"]) \
            <= set(K["subjects"])
    # the newcomers of day 1 are in the day-2 deliveries only
    day1 = _dataset(_one(events, ETL, DAY1), "inputs", SOURCES[0])["facets"]["provkg_dataSubjects"]["subjects"]
    day2 = _dataset(_one(events, ETL, DAY2), "inputs", SOURCES[0])["facets"]["provkg_dataSubjects"]["subjects"]
    assert set(day2) - set(day1) == {"subj-0055", "subj-0089"} and sorted(day2) == K["subjects"]


def test_consent_is_withdrawn_before_the_day_2_training_runs_start(events):
    records = [(e["eventTime"], r) for e in _complete(events, CONSENT)
               for r in e["run"]["facets"]["provkg_consent"]["records"]]
    mine = [r for _, r in records if r["subject"] == K["withdrawn_subject"]]
    assert [(r["status"], r["at"]) for r in mine] == [("GIVEN", K["consent_given_at"]),
                                                      ("WITHDRAWN", K["consent_withdrawn_at"])]
    published = next(t for t, r in records if r["status"] == "WITHDRAWN")
    assert published.startswith(DAY1) and K["consent_withdrawn_at"] < published  # day 1, evening
    assert "T19:" in K["consent_withdrawn_at"]
    for job in (TRAIN, TRAIN_FRAUD):
        start = next(e for e in events if e["job"]["name"] == job and e["eventType"] == "START"
                     and e["eventTime"].startswith(DAY2))
        assert published < start["eventTime"]
    # ... yet they train on data derived from source versions that still hold the subject
    train = _one(events, TRAIN, DAY2)
    assert {(d["name"], d["facets"]["version"]["datasetVersion"]) for d in train["inputs"]} == {
        ("credit_features", DAY2), ("analytics.default_labels", DAY2)}
    assert _dataset(_one(events, FEATURES, DAY2), "inputs", "analytics.applicant_profile")["facets"]["version"][
        "datasetVersion"] == DAY2
    for job, sources in ((ETL, SOURCES), (LABEL, SOURCES[:2])):
        for name in sources:
            read = _dataset(_one(events, job, DAY2), "inputs", name)["facets"]
            assert K["withdrawn_subject"] in read["provkg_dataSubjects"]["subjects"]
    # the day-1 training started before the withdrawal
    assert K["training_started"]["1"] < K["consent_withdrawn_at"] < K["training_started"]["2"]


def test_two_training_runs_give_two_model_versions_that_differ(events):
    facets = {}
    for date, version in ((DAY1, "1"), (DAY2, "2")):
        train = _one(events, TRAIN, date)
        model = _dataset(train, "outputs", "models/credit_default")["facets"]
        assert model["datasetType"]["datasetType"] == "MODEL"
        assert model["version"]["datasetVersion"] == model["provkg_modelVersion"]["version"] == version
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", model["provkg_modelVersion"]["artifactDigest"])
        assert model["provkg_modelVersion"]["highRisk"] is True
        assert train["run"]["facets"]["executionParameters"]["parameters"]
        facets[version] = (train["run"]["facets"]["provkg_training"], model["provkg_modelVersion"])
    (t1, m1), (t2, m2) = facets["1"], facets["2"]
    assert t1["hyperparameters"] != t2["hyperparameters"] and t1["codeVersion"] != t2["codeVersion"]
    assert t1["environment"]["libraries"]["lightgbm"] != t2["environment"]["libraries"]["lightgbm"]
    assert m1["artifactDigest"] != m2["artifactDigest"]
    assert t2["hyperparameters"] == K["q1_prediction_provenance"]["hyperparameters"]
    assert {k: [t1["hyperparameters"][k], t2["hyperparameters"][k]] for k in t1["hyperparameters"]
            if t1["hyperparameters"][k] != t2["hyperparameters"][k]} == K["q5_version_diff"]["hyperparameters"]
    fraud = _dataset(_one(events, TRAIN_FRAUD, DAY2), "outputs", "models/fraud_score")["facets"]
    assert fraud["provkg_modelVersion"]["version"] == "1"
    assert {d["name"] for d in _one(events, TRAIN_FRAUD, DAY2)["inputs"]} == {
        "credit_features", "analytics.default_labels"}


def test_upstream_schema_change_between_the_days(events):
    def columns(date: str, job: str, side: str, name: str) -> set[str]:
        return {f["name"] for f in _dataset(_one(events, job, date), side, name)["facets"]["schema"]["fields"]}

    for job, side, name in ((ETL, "inputs", "lending/applications"), (ETL, "outputs", "analytics.applicant_profile")):
        assert columns(DAY2, job, side, name) - columns(DAY1, job, side, name) == {"employment_status"}
        assert columns(DAY1, job, side, name) <= columns(DAY2, job, side, name)
    features = ("outputs", "credit_features")
    assert columns(DAY1, FEATURES, *features) == columns(DAY2, FEATURES, *features)
    etl1, etl2 = (_one(events, ETL, d)["job"]["facets"] for d in (DAY1, DAY2))
    assert "employment_status" in etl2["sql"]["query"] and "employment_status" not in etl1["sql"]["query"]
    assert etl1["sourceCodeLocation"]["version"] != etl2["sourceCodeLocation"]["version"]


def test_evaluation_and_fairness_per_stage(events):
    def evaluated(date: str) -> dict:
        return _dataset(_one(events, EVALUATE, date), "inputs", "models/credit_default")["facets"]

    v1, v2 = evaluated(DAY1), evaluated(DAY2)
    assert (v1["version"]["datasetVersion"], v2["version"]["datasetVersion"]) == ("1", "2")
    assert {m["metric"] for m in v2["provkg_evaluation"]["metrics"]} == {"auc", "accuracy"}
    finding = _fairness(v2["provkg_fairness"])
    assert finding["metric"] == K["q4_bias"]["metric"] == "demographic_parity_difference"
    assert finding["threshold"] == 0.1 and abs(finding["value"]) > finding["threshold"]
    assert finding["value"] == K["q4_bias"]["value"]
    assert abs(_fairness(v1["provkg_fairness"])["value"]) <= 0.1
    # nothing else on the model is beyond threshold
    assert [m for m in v2["provkg_fairness"]["metrics"] if abs(m["value"]) > m["threshold"]] == [finding]

    def stage(job: str, side: str, name: str, date: str) -> float:
        return _fairness(_dataset(_one(events, job, date), side, name)["facets"]["provkg_fairness"])["value"]

    day2 = {name: stage(ETL, "inputs", name, DAY2) for name in SOURCES}
    assert [n for n, v in day2.items() if v > 0.1] == ["vendor/demographics"]  # the skewed source
    assert stage(FEATURES, "outputs", "credit_features", DAY2) > 0.1  # propagated
    assert stage(LABEL, "outputs", "analytics.default_labels", DAY2) <= 0.1  # clean
    for name in SOURCES:
        assert stage(ETL, "inputs", name, DAY1) <= 0.1
    assert stage(FEATURES, "outputs", "credit_features", DAY1) <= 0.1
    # the fraud team measures no fairness
    fraud = _dataset(_one(events, EVALUATE_FRAUD, DAY2), "inputs", "models/fraud_score")["facets"]
    assert "provkg_evaluation" in fraud and "provkg_fairness" not in fraud


def test_column_lineage_follows_the_protected_attribute_and_the_skewed_column(events):
    def inputs(job: str, name: str, column: str) -> set[tuple[str, str]]:
        lineage = _dataset(_one(events, job, DAY2), "outputs", name)["facets"]["columnLineage"]["fields"]
        return {(f["name"], f["field"]) for f in lineage[column]["inputFields"]}

    assert inputs(ETL, "analytics.applicant_profile", "age_band") == {("vendor/demographics", "age_band")}
    assert inputs(FEATURES, "credit_features", "age_band") == {("analytics.applicant_profile", "age_band")}
    assert ("analytics.applicant_profile", "household_income_estimate") in inputs(
        FEATURES, "credit_features", "debt_to_income")
    assert inputs(ETL, "analytics.applicant_profile", "household_income_estimate") == {
        ("vendor/demographics", "household_income_estimate")}
    decisions = _dataset(_one(events, SERVE, DAY2), "outputs", "analytics.credit_decisions")["facets"]["columnLineage"]
    assert "age_band" not in {f["field"] for c in decisions["fields"].values() for f in c["inputFields"]}


def test_deployments_and_predictions_in_all_three_capture_tiers(events):
    for date, version in ((DAY1, "1"), (DAY2, "2")):
        deploy = _one(events, DEPLOY, date)
        facet = deploy["run"]["facets"]["provkg_deployment"]
        assert facet["deploymentId"] == K["deployments"][version]
        assert [d["facets"]["version"]["datasetVersion"] for d in deploy["inputs"]] == [version]
        serve = _one(events, SERVE, date)
        inference = serve["run"]["facets"]["provkg_inference"]
        assert inference["deploymentId"] == facet["deploymentId"]
        assert facet["activeFrom"] < min(p["timestamp"] for p in inference["predictions"])
        assert _dataset(serve, "inputs", "models/credit_default")["facets"]["version"]["datasetVersion"] == version
        tiers = {p["captureTier"] for p in inference["predictions"]}
        assert tiers == {"FULL_SNAPSHOT", "SAMPLED", "MODEL_VERSION_ONLY"}
        for p in inference["predictions"]:
            assert p["timestamp"].startswith(date) and p["dataSubject"] in K["subjects"]
            if p["captureTier"] == "FULL_SNAPSHOT":
                assert p["consequential"] is True
                assert p["featureSnapshot"]["uri"].startswith("s3://")
                assert re.fullmatch(r"sha256:[0-9a-f]{64}", p["featureSnapshot"]["digest"])
            if p["captureTier"] == "MODEL_VERSION_ONLY":
                assert "output" not in p and "featureSnapshot" not in p
    predictions = {p["predictionId"]: p for e in _complete(events, SERVE)
                   for p in e["run"]["facets"]["provkg_inference"]["predictions"]}
    assert len(predictions) == K["q2_forward_impact"]["predictions"] == 12
    full = predictions[K["full_snapshot_prediction"]]
    q1 = K["q1_prediction_provenance"]
    assert (full["captureTier"], full["dataSubject"], full["timestamp"]) == ("FULL_SNAPSHOT", q1["dataSubject"],
                                                                             q1["timestamp"])
    about = sorted(pid for pid, p in predictions.items() if p["dataSubject"] == K["withdrawn_subject"])
    assert [IriMinter().mint("prediction", pid).value for pid in about] == K["q3_erasure"]["predictions"]


# -- ingested: the graph holds the known answers ----------------------------------------------------

PREFIXES = """PREFIX prov: <http://www.w3.org/ns/prov#> PREFIX provkg: <https://w3id.org/provkg/ns#>
PREFIX dpv: <https://w3id.org/dpv#> PREFIX dqv: <http://www.w3.org/ns/dqv#>
"""


@pytest.fixture(scope="module")
def store(events, validator, tmp_path_factory):
    store = LineageStore(tmp_path_factory.mktemp("demo") / "store")
    ingestor = Ingestor(store, validator, IriMinter(), vault=SubjectVault(store.path / "subjects"))
    results = [ingestor.ingest(e) for e in events]
    assert [r.status for r in results] == ["accepted"] * len(events), [r.as_dict() for r in results if not r.ok]
    return store


@pytest.fixture(scope="module")
def subject_iri(store) -> str:
    """The withdrawn subject's IRI: stored under a pseudonym, looked up in the store's key store."""
    pseudonym = SubjectVault(store.path / "subjects", read_only=True).find(K["q3_erasure"]["subject"])
    assert pseudonym is not None and pseudonym != K["q3_erasure"]["subject"]
    return IriMinter().mint("subject", pseudonym).value


def _select(store: LineageStore, query: str) -> list[tuple]:
    answer = store.query(PREFIXES + query)
    return [tuple(None if row[v] is None else row[v].value for v in answer.variables) for row in answer]


def _set(store: LineageStore, query: str) -> set[str]:
    return {row[0] for row in _select(store, query)}


def test_ingested_lineage_connects_decisions_back_to_the_sources(events, store):
    minter = IriMinter()
    query = load_named_queries()["backward-provenance"]
    decisions = minter.dataset(WAREHOUSE, "analytics.credit_decisions").value
    answer = run_named_query(store, query, {"node": decisions})
    reached = {row[answer.columns.index("node")] for row in answer.rows}
    assert {minter.dataset(RAW, name).value for name in SOURCES} <= reached
    train_runs = {minter.run(e["run"]["runId"]).value for e in events if e["job"]["name"] == TRAIN}
    assert train_runs <= reached


def test_q1_prediction_provenance_is_in_the_graph(store):
    q1 = K["q1_prediction_provenance"]
    chain = _select(store, f"""SELECT ?run ?dep ?mv ?train WHERE {{
        <{q1['prediction']}> prov:wasGeneratedBy ?run ; provkg:servedBy ?dep ; provkg:madeBy ?mv .
        ?dep provkg:deploys ?mv . ?mv provkg:trainedBy ?train }}""")
    assert chain == [(q1["inference_run"], q1["deployment"], q1["model_version"], q1["training_run"])]
    trained_on = _set(store, f"SELECT ?x WHERE {{ <{q1['model_version']}> prov:wasDerivedFrom ?x }}")
    assert trained_on == set(q1["training_data"])
    upstream = _set(store, f"SELECT ?x WHERE {{ <{q1['model_version']}> prov:wasDerivedFrom+ ?x }}")
    assert upstream == set(q1["training_data"] + q1["intermediate_versions"] + q1["source_versions"])
    runs = _set(store, f"""SELECT ?r WHERE {{ <{q1['model_version']}> prov:wasDerivedFrom+ ?x .
        ?x prov:wasGeneratedBy ?r }}""")
    assert runs == {t["run"] for t in q1["transformations"]}


def test_q3_erasure_impact_is_in_the_graph(store, subject_iri):
    q3 = K["q3_erasure"]
    subject = subject_iri
    assert _set(store, f"SELECT ?e WHERE {{ ?e provkg:holdsDataOf <{subject}> }}") == set(q3["holding"])
    derived = _set(store, f"""SELECT ?x WHERE {{ ?e provkg:holdsDataOf <{subject}> .
        ?x prov:wasDerivedFrom+ ?e ; a provkg:DatasetVersion }}""")
    assert derived == set(q3["derived"])
    models = _set(store, f"""SELECT ?m WHERE {{ ?e provkg:holdsDataOf <{subject}> .
        ?m prov:wasDerivedFrom+ ?e ; a provkg:ModelVersion }}""")
    assert models == set(q3["model_versions"])
    deployments = _set(store, f"""SELECT ?d WHERE {{ ?e provkg:holdsDataOf <{subject}> .
        ?m prov:wasDerivedFrom+ ?e ; a provkg:ModelVersion . ?d provkg:deploys ?m }}""")
    assert deployments == set(q3["deployments"])
    assert _set(store, f"SELECT ?p WHERE {{ ?p provkg:aboutSubject <{subject}> }}") == set(q3["predictions"])
    violations = _set(store, f"""SELECT ?m WHERE {{
        ?c dpv:hasDataSubject <{subject}> ; dpv:hasConsentStatus dpv:ConsentWithdrawn ; provkg:statusAt ?w .
        ?m a provkg:ModelVersion ; provkg:trainedBy ?r ; prov:wasDerivedFrom+ ?e .
        ?e provkg:holdsDataOf <{subject}> . ?r prov:startedAtTime ?t . FILTER(?t > ?w) }}""")
    assert violations == set(q3["violations"])
    assert _set(store, "SELECT ?s WHERE { ?c dpv:hasConsentStatus dpv:ConsentWithdrawn ; dpv:hasDataSubject ?s }") \
        == {subject}


def test_q4_bias_attribution_is_in_the_graph(store):
    q4 = K["q4_bias"]

    def measured(entity: str) -> list[tuple]:
        return _select(store, f"""SELECT ?v ?x WHERE {{ ?m dqv:computedOn <{entity}> ;
            provkg:protectedAttribute "{q4['protectedAttribute']}" ; provkg:group "{q4['group']}" ;
            dqv:value ?v ; provkg:exceedsThreshold ?x }}""")

    assert measured(q4["model_version"]) == [(str(q4["value"]), "true")]
    assert q4["model_stage"] == {"entity": q4["model_version"], "value": q4["value"], "exceedsThreshold": True}
    for stage in ("source", "feature_engineering", "labelling"):
        for m in q4["stages"][stage]:
            assert measured(m["entity"]) == [(str(m["value"]), str(m["exceedsThreshold"]).lower())], stage
    upstream = _set(store, f"SELECT ?x WHERE {{ <{q4['model_version']}> prov:wasDerivedFrom+ ?x }}")
    assert q4["cause"] in upstream
    kinds = {stage: _set(store, f"SELECT ?k WHERE {{ <{q4['stages'][stage][0]['entity']}> prov:wasGeneratedBy/a ?k }}")
             for stage in ("feature_engineering", "labelling")}
    assert "https://w3id.org/provkg/ns#FeatureEngineeringRun" in kinds["feature_engineering"]
    assert "https://w3id.org/provkg/ns#LabellingRun" in kinds["labelling"]
    # the source stage: no run of the estate wrote the cause
    assert not _set(store, f"SELECT ?r WHERE {{ <{q4['cause']}> prov:wasGeneratedBy ?r }}")
    consumers = _set(store, f"SELECT ?m WHERE {{ ?m a provkg:ModelVersion ; prov:wasDerivedFrom+ <{q4['cause']}> }}")
    assert consumers == {q4["model_version"], *q4["other_models"]}


def test_q2_forward_impact_is_in_the_graph(store):
    q2 = K["q2_forward_impact"]
    source_versions = f"?v prov:specializationOf <{q2['from_dataset']}>"
    models = _set(store, f"""SELECT ?m WHERE {{ {source_versions} .
        ?m prov:wasDerivedFrom+ ?v ; a provkg:ModelVersion }}""")
    assert models == set(q2["model_versions"])
    predictions = _select(store, f"""SELECT ?p ?t WHERE {{ {{ SELECT DISTINCT ?p WHERE {{ {source_versions} .
        ?p prov:wasDerivedFrom+ ?v ; a provkg:Prediction }} }} ?p prov:generatedAtTime ?t }}""")
    assert len(predictions) == q2["predictions"]
    assert sum(t <= q2["as_of"].replace(".000Z", "Z") for _, t in predictions) == q2["predictions_as_of"]
    from_version = _set(store, f"""SELECT ?p WHERE {{ ?p prov:wasDerivedFrom+ <{q2['from_version']}> ;
        a provkg:Prediction }}""")
    assert len(from_version) == q2["predictions_from_version"]
    assert _set(store, f"""SELECT ?m WHERE {{ ?m prov:wasDerivedFrom+ <{q2['from_version']}> ;
        a provkg:ModelVersion }}""") == set(q2["model_versions_from_version"])
    before = _set(store, f"""SELECT ?m WHERE {{ {source_versions} . ?m prov:wasDerivedFrom+ ?v ; a provkg:ModelVersion ;
        prov:generatedAtTime ?t FILTER(?t <= "{q2['as_of']}"^^<http://www.w3.org/2001/XMLSchema#dateTime>) }}""")
    assert before == set(q2["model_versions_as_of"])
    deployed = _set(store, f"""SELECT ?d WHERE {{ ?d provkg:deploys ?m ; provkg:activeFrom ?t .
        FILTER(?t <= "{q2['as_of']}"^^<http://www.w3.org/2001/XMLSchema#dateTime>) }}""")
    assert deployed == set(q2["deployments_as_of"])
    columns = _set(store, f"SELECT ?c WHERE {{ ?c prov:wasDerivedFrom+ <{q2['from_column']}> }}")
    assert columns == set(q2["columns"])
    assert _set(store, f"SELECT ?c WHERE {{ ?c prov:wasDerivedFrom+ <{q2['dead_end_column']}> }}") == set(
        q2["dead_end_columns"])


def test_q5_version_diff_is_in_the_graph(store):
    q5 = K["q5_version_diff"]
    for side, index in (("from", 0), ("to", 1)):
        inputs = _set(store, f"SELECT ?x WHERE {{ <{q5[side]}> prov:wasDerivedFrom ?x }}")
        assert inputs == (set(q5["training_data"]) if index == 0 else set(q5["training_data"].values()))
    runs = {side: _select(store, f"SELECT ?r WHERE {{ <{q5[side]}> provkg:trainedBy ?r }}")[0][0]
            for side in ("from", "to")}
    codes = [_select(store, f"SELECT ?c WHERE {{ <{runs[s]}> provkg:codeVersion ?c }}")[0][0] for s in ("from", "to")]
    assert codes == q5["code_versions"][IriMinter().job("airflow-prod", TRAIN).value]


def test_impact_answers_are_paged_with_counts_of_everything(store):
    query = load_named_queries()["forward-impact"]
    source = K["biased_source"]
    whole = run_named_query(store, query, {"node": source, "limit": "100000"})
    assert whole.total == len(whole.rows) > 20
    pages, offset = [], 0
    while True:
        page = run_named_query(store, query, {"node": source, "limit": "7", "offset": str(offset)})
        assert page.summary == whole.summary and page.total == whole.total and len(page.rows) <= 7
        pages.extend(page.rows)
        if page.as_dict()["next"] is None:
            break
        offset = page.as_dict()["next"]
    assert pages == whole.rows
    # the default page is 1000 rows
    assert run_named_query(store, query, {"node": source}).parameters["limit"] == 1000


def test_cached_pages_are_the_whole_walk_until_the_next_write(events, validator, tmp_path):
    """With an :class:`AnswerCache` (as the server runs named queries), the
    pages after the first come from one walk, and a write is never answered
    from before it: the last demo event adds lineage downstream of the source."""
    store = LineageStore(tmp_path / "store")
    ingestor = Ingestor(store, validator, IriMinter())
    for event in events[:-1]:
        assert ingestor.ingest(event).status == "accepted"
    query, cache = load_named_queries()["forward-impact"], AnswerCache()
    params = {"node": K["biased_source"], "limit": "10"}
    first = run_named_query(store, query, params, cache)
    key = cache.key(query.name, query.bind(params)[1], store.generation)
    whole = cache.get(key)
    assert whole is not None and len(whole.rows) == first.total > 20
    second = run_named_query(store, query, {**params, "offset": "10"}, cache)
    assert cache.get(key) is whole and len(cache) == 1  # the second page did not walk again
    assert first.rows + second.rows == whole.rows[:20] and second.total == first.total
    assert second.rows == run_named_query(store, query, {**params, "offset": "10"}).rows
    assert ingestor.ingest(events[-1]).status == "accepted"
    after = run_named_query(store, query, params, cache)
    fresh = run_named_query(store, query, params)
    assert (after.rows, after.total, after.summary) == (fresh.rows, fresh.total, fresh.summary)
    assert after.total > first.total and len(cache) == 2


ONESHOT = Path(__file__).parent / "oneshot_queries"  # what provkg now walks step by step, as one query with a path


def test_impact_walked_step_by_step_answers_as_the_one_query_with_a_path(store, subject_iri):
    """forward-impact and erasure-impact are ``@step`` queries, walked breadth-first
    one step at a time; tests/oneshot_queries holds them as they were, one query
    whose ``*`` property path reaches every node first. Same answer for every
    kind of start node, with ``depth`` and ``asOf``."""
    minter, q2 = IriMinter(), K["q2_forward_impact"]
    cases = {"forward-impact": [{"node": n} for n in (
        K["biased_source"], q2["from_dataset"], q2["from_version"], q2["from_column"],
        minter.job("airflow-prod", TRAIN).value)]
        + [{"node": q2["from_dataset"], "depth": "3"}, {"node": q2["from_dataset"], "asOf": q2["as_of"]},
           {"node": q2["from_version"], "depth": "0"}],
             "erasure-impact": [{"subject": subject_iri}, {"subject": subject_iri, "depth": "4"}]}
    for name, params in cases.items():
        stepped, oneshot = load_named_queries()[name], parse_query_file(ONESHOT / f"{name}.rq")
        assert stepped.step and not oneshot.step
        for p in params:
            a = run_named_query(store, stepped, {**p, "limit": "100000"})
            b = run_named_query(store, oneshot, {**p, "limit": "100000"})
            assert (a.rows, a.summary, a.total) == (b.rows, b.summary, b.total), (name, p)
            assert a.rows or p.get("depth") == "0", (name, p)


def test_impact_walk_never_expands_a_quality_measurement(store):
    """The reason for ``@step``: the one query's path walked into every quality
    measurement a run generated; step by step, none is ever bound as ?from."""
    query = load_named_queries()["forward-impact"]
    bound: list[str] = []

    def select(text: str):
        bound.extend(re.findall(r"^\s*VALUES \(\?from\) \{ (.*) \}$", text, re.MULTILINE)[:1])
        return named_queries.select_terms(store, text)

    subs, values = query.bind({"node": K["biased_source"]})
    names, rows = named_queries.walk_steps(select, query.text, subs, NamedNode(values["node"]), 25, None)
    expanded = {iri for block in bound for iri in re.findall(r"<([^>]+)>", block)}
    measurements = _set(store, "SELECT ?m WHERE { ?m a dqv:QualityMeasurement ; prov:wasGeneratedBy ?r }")
    generators = _set(store, "SELECT ?r WHERE { ?m a dqv:QualityMeasurement ; prov:wasGeneratedBy ?r }")
    assert expanded & generators, "the walk reaches runs that generated measurements"
    assert not expanded & measurements
    assert len(rows) == len(run_named_query(store, query, {"node": K["biased_source"], "limit": "100000"}).rows)


def test_bias_attribution_reach_answers_as_the_one_query(store):
    """bias-attribution's alsoConsumedBy is walked by provkg (``@reach``, a step
    at a time, quality measurements left out); tests/oneshot_queries holds the
    query that walked a ``+`` path per row. The same rows, alsoConsumedBy as a
    set (the one query's GROUP_CONCAT order is the engine's; provkg sorts)."""
    q4 = K["q4_bias"]
    # the step query does not walk on from quality measurements: in provkg's mapping they are leaves
    assert not _select(store, """SELECT ?x WHERE { ?m a dqv:QualityMeasurement .
        { ?x prov:used|prov:wasDerivedFrom|prov:wasGeneratedBy ?m } UNION { ?m prov:specializationOf ?x } } LIMIT 1""")
    assert _select(store, "SELECT ?m WHERE { ?m a dqv:QualityMeasurement } LIMIT 1")
    stepped = load_named_queries()["bias-attribution"]
    oneshot = parse_query_file(ONESHOT / "bias-attribution.rq")
    assert stepped.reach is not None and oneshot.reach is None

    def rows(answer) -> list[tuple]:
        col = answer.columns.index("alsoConsumedBy")
        return sorted(tuple(r[:col]) + (frozenset((r[col] or "").split()),) + tuple(r[col + 1:]) for r in answer.rows)
    for node in (q4["model_version"], *q4["other_models"]):
        a, b = run_named_query(store, stepped, {"node": node}), run_named_query(store, oneshot, {"node": node})
        assert a.columns == b.columns and rows(a) == rows(b), node
    a = run_named_query(store, stepped, {"node": q4["model_version"]})
    col = a.columns.index("alsoConsumedBy")
    consumed = [r[col] for r in a.rows if r[col]]
    assert consumed and all(c.split() == sorted(c.split()) for c in consumed)
    assert set(q4["other_models"]) <= {m for c in consumed for m in c.split()}
