"""A second ML estate for the governance tests, built unlike the demo.

provkg.demo describes a credit-scoring platform with provkg's custom facets
(``provkg_*``). This one is a retail churn / lifetime-value platform that an
ordinary OpenLineage integration could emit: **standard facets only**, built
with openlineage-python's ``event_v2`` / ``facet_v2`` classes.

- ``jobType`` says what a job is (FEATURE_ENGINEERING, TRAINING, INFERENCE);
- ``datasetType`` MODEL with a ``version`` facet names a model version,
  FEATURE_SET names the feature set;
- ``executionParameters`` carries the hyperparameters;
- ``tags`` marks personal data: a tag keyed ``PII`` on one column, a tag
  whose *value* is ``pii`` on another, and a harmless tag on a third;
- one feature set (``customer_features`` version ``2027-03-01``) is read by
  two training jobs (churn and lifetime value), so two models share it;
- the churn model is trained twice (versions 1 and 2) with different
  hyperparameters, and version 2 is served by an inference job.

Everything is deterministic (fixed times, UUIDv5 run IDs).
:func:`run_events` gives the client objects (to emit through
``OpenLineageClient``), :func:`event_dicts` the same as plain dicts
(``Serde.to_dict``), from which the tests derive what the graph must hold.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.facet_v2 import (
    column_lineage_dataset as cl,
)
from openlineage.client.facet_v2 import (
    dataset_type_dataset,
    dataset_version_dataset,
    job_type_job,
    schema_dataset,
    tags_dataset,
)
from openlineage.client.facet_v2 import (
    execution_parameters_run as params,
)
from openlineage.client.serde import Serde

PRODUCER = "https://github.com/provkg/provkg/tree/main/tests/pipelines"
START = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)

JOB_NAMESPACE = "dagster-retail"
LAKE = "s3://retail-lake"
FEATURE_STORE = "feast://retail-online"
REGISTRY = "sagemaker://model-registry"
WAREHOUSE = "snowflake://retail.eu-west-1"

CUSTOMERS = (LAKE, "raw/customers")
ORDERS = (LAKE, "raw/orders")
FEATURES = (FEATURE_STORE, "customer_features")
CHURN_MODEL = (REGISTRY, "retail/churn")
LTV_MODEL = (REGISTRY, "retail/lifetime_value")
CHURN_SCORES = (WAREHOUSE, "marketing.churn_scores")

SOURCE_VERSION = "2027-03-01"
FEATURE_VERSION = "2027-03-01"

FEATURE_JOB = "retail.build_customer_features"
CHURN_TRAINING_JOB = "retail.train_churn"
LTV_TRAINING_JOB = "retail.train_lifetime_value"
SCORING_JOB = "retail.score_churn"

SCHEMAS = {
    CUSTOMERS: [("customer_id", "string"), ("email", "string"), ("birth_date", "date"), ("country", "string"),
                ("signup_date", "date")],
    ORDERS: [("order_id", "string"), ("customer_id", "string"), ("amount", "decimal(10,2)"),
             ("ordered_at", "timestamp")],
    FEATURES: [("customer_id", "string"), ("order_count_90d", "int"), ("avg_order_value", "double"),
               ("tenure_days", "int"), ("country", "string")],
    CHURN_SCORES: [("customer_id", "string"), ("churn_probability", "double")],
}

# tags on raw/customers: (key, value, field)
CUSTOMER_TAGS = [("PII", "true", "email"), ("classification", "pii", "birth_date"), ("owner_team", "growth", "country")]

# hyperparameters (executionParameters), by (job, model version)
HYPERPARAMETERS = {
    (CHURN_TRAINING_JOB, "1"): {"algorithm": "xgboost", "learning_rate": "0.05", "max_depth": "6",
                               "n_estimators": "300", "subsample": "0.8"},
    (CHURN_TRAINING_JOB, "2"): {"algorithm": "xgboost", "learning_rate": "0.1", "max_depth": "8",
                               "n_estimators": "300", "subsample": "0.8"},
    (LTV_TRAINING_JOB, "1"): {"algorithm": "gamma_regression", "alpha": "0.5", "max_iter": "200"},
}

_RUN_IDS = uuid.uuid5(uuid.NAMESPACE_URL, PRODUCER)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_id(job: str, start: datetime) -> str:
    return str(uuid.uuid5(_RUN_IDS, f"{job}|{_iso(start)}"))


def _job(name: str, job_type: str, integration: str) -> Job:
    return Job(namespace=JOB_NAMESPACE, name=name, facets={
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration=integration, jobType=job_type,
                                                producer=PRODUCER)})


def _schema(ds: tuple[str, str]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in SCHEMAS[ds]], producer=PRODUCER)


def _version(version: str) -> dataset_version_dataset.DatasetVersionDatasetFacet:
    return dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version, producer=PRODUCER)


def _type(dataset_type: str) -> dataset_type_dataset.DatasetTypeDatasetFacet:
    return dataset_type_dataset.DatasetTypeDatasetFacet(datasetType=dataset_type, producer=PRODUCER)


def _customers() -> InputDataset:
    tags = tags_dataset.TagsDatasetFacet(tags=[
        tags_dataset.TagsDatasetFacetFields(key=k, value=v, source="USER", field=f) for k, v, f in CUSTOMER_TAGS
    ], producer=PRODUCER)
    return InputDataset(namespace=CUSTOMERS[0], name=CUSTOMERS[1], facets={
        "schema": _schema(CUSTOMERS), "version": _version(SOURCE_VERSION), "datasetType": _type("FILE"),
        "tags": tags})


def _orders() -> InputDataset:
    return InputDataset(namespace=ORDERS[0], name=ORDERS[1], facets={
        "schema": _schema(ORDERS), "version": _version(SOURCE_VERSION), "datasetType": _type("FILE")})


def _features_in() -> InputDataset:
    return InputDataset(namespace=FEATURES[0], name=FEATURES[1], facets={
        "schema": _schema(FEATURES), "version": _version(FEATURE_VERSION), "datasetType": _type("FEATURE_SET")})


def _feature_lineage() -> cl.ColumnLineageDatasetFacet:
    def src(ds: tuple[str, str], field: str, kind: str, subtype: str) -> cl.InputField:
        return cl.InputField(namespace=ds[0], name=ds[1], field=field,
                             transformations=[cl.Transformation(type=kind, subtype=subtype)])

    return cl.ColumnLineageDatasetFacet(fields={
        "customer_id": cl.Fields(inputFields=[src(CUSTOMERS, "customer_id", "DIRECT", "IDENTITY")]),
        "order_count_90d": cl.Fields(inputFields=[src(ORDERS, "order_id", "DIRECT", "AGGREGATION")]),
        "avg_order_value": cl.Fields(inputFields=[src(ORDERS, "amount", "DIRECT", "AGGREGATION")]),
        "tenure_days": cl.Fields(inputFields=[src(CUSTOMERS, "signup_date", "DIRECT", "TRANSFORMATION")]),
        "country": cl.Fields(inputFields=[src(CUSTOMERS, "country", "DIRECT", "IDENTITY")]),
    }, producer=PRODUCER)


def _parameters(values: dict[str, str]) -> params.ExecutionParametersRunFacet:
    return params.ExecutionParametersRunFacet(
        parameters=[params.ExecutionParameter(key=k, value=v) for k, v in values.items()], producer=PRODUCER)


def _model_out(ds: tuple[str, str], version: str) -> OutputDataset:
    return OutputDataset(namespace=ds[0], name=ds[1], facets={"datasetType": _type("MODEL"), "version": _version(version)})


def _run(job: Job, start: datetime, minutes: int, inputs: list[InputDataset], outputs: list[OutputDataset],
         run_facets: dict | None = None) -> list[RunEvent]:
    """START (declared outputs, no version) and COMPLETE (outputs with their version) of one run."""
    rid = run_id(job.name, start)
    declared = [OutputDataset(namespace=o.namespace, name=o.name,
                              facets={k: v for k, v in (o.facets or {}).items() if k != "version"}) for o in outputs]
    return [
        RunEvent(eventType=RunState.START, eventTime=_iso(start), producer=PRODUCER,
                 run=Run(runId=rid, facets=dict(run_facets or {})), job=job, inputs=inputs, outputs=declared),
        RunEvent(eventType=RunState.COMPLETE, eventTime=_iso(start + timedelta(minutes=minutes)), producer=PRODUCER,
                 run=Run(runId=rid, facets=dict(run_facets or {})), job=job, inputs=inputs, outputs=outputs),
    ]


def run_events() -> list[RunEvent]:
    """The estate's RunEvents, in time order."""
    features_job = _job(FEATURE_JOB, "FEATURE_ENGINEERING", "SPARK")
    churn_job = _job(CHURN_TRAINING_JOB, "TRAINING", "SAGEMAKER")
    ltv_job = _job(LTV_TRAINING_JOB, "TRAINING", "SAGEMAKER")
    scoring_job = _job(SCORING_JOB, "INFERENCE", "SAGEMAKER")
    features_out = OutputDataset(namespace=FEATURES[0], name=FEATURES[1], facets={
        "schema": _schema(FEATURES), "version": _version(FEATURE_VERSION), "datasetType": _type("FEATURE_SET"),
        "columnLineage": _feature_lineage()})
    scores_out = OutputDataset(namespace=CHURN_SCORES[0], name=CHURN_SCORES[1], facets={
        "schema": _schema(CHURN_SCORES), "version": _version("2027-03-02"), "datasetType": _type("TABLE")})
    churn_v2_in = InputDataset(namespace=CHURN_MODEL[0], name=CHURN_MODEL[1],
                               facets={"datasetType": _type("MODEL"), "version": _version("2")})
    events: list[RunEvent] = []
    events += _run(features_job, START, 20, [_customers(), _orders()], [features_out])
    events += _run(churn_job, START + timedelta(minutes=30), 25, [_features_in()], [_model_out(CHURN_MODEL, "1")],
                   {"executionParameters": _parameters(HYPERPARAMETERS[(CHURN_TRAINING_JOB, "1")])})
    events += _run(ltv_job, START + timedelta(minutes=31), 15, [_features_in()], [_model_out(LTV_MODEL, "1")],
                   {"executionParameters": _parameters(HYPERPARAMETERS[(LTV_TRAINING_JOB, "1")])})
    events += _run(churn_job, START + timedelta(hours=12), 25, [_features_in()], [_model_out(CHURN_MODEL, "2")],
                   {"executionParameters": _parameters(HYPERPARAMETERS[(CHURN_TRAINING_JOB, "2")])})
    events += _run(scoring_job, START + timedelta(days=1), 10, [churn_v2_in, _features_in()], [scores_out])
    return sorted(events, key=lambda e: e.eventTime)


def event_dicts() -> list[dict]:
    """The same events as JSON-ready dicts."""
    return [Serde.to_dict(e) for e in run_events()]
