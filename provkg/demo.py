"""A demo estate: the OpenLineage events of a daily credit-risk ML platform.

One Airflow DAG, ``credit_risk_daily`` (namespace ``airflow-prod``), runs once a
day and reports, for itself and each of its five tasks, an OpenLineage 2-0-2
RunEvent at START and at COMPLETE:

- ``build_loan_history``  (SQL)   crm customers + loans  -> warehouse ``analytics.loan_history``
- ``label_defaults``      (SQL)   crm loans              -> warehouse ``analytics.default_labels``
- ``build_credit_features`` (Spark) loan_history + bureau credit reports -> feature store ``credit_features``
- ``train_credit_model``  credit_features + default_labels -> ``mlflow://registry.prod`` ``models/credit_default``
- ``score_applications``  the model + credit_features + ``analytics.loan_applications`` -> ``analytics.credit_scores``

The events are built with the openlineage-python client's own event model
(``openlineage.client.event_v2`` and ``facet_v2``) and serialised with its
``Serde``, so they are what a client emitter would send. Everything is derived
from the arguments: no clock, no randomness, so the same call gives the same
bytes (run IDs are UUIDv5 of job name and day).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset as cl,
    data_quality_metrics_input_dataset as dq,
    dataset_type_dataset,
    dataset_version_dataset,
    datasource_dataset,
    documentation_dataset,
    documentation_job,
    execution_parameters_run as params,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    ownership_dataset,
    ownership_job,
    parent_run,
    processing_engine_run,
    schema_dataset,
    source_code_location_job,
    sql_job,
    storage_dataset,
    tags_dataset,
)
from openlineage.client.serde import Serde

DEMO_PRODUCER = "https://github.com/provkg/provkg/tree/0.1.0/demo"
DEFAULT_START = datetime(2026, 11, 1, 2, 0, tzinfo=timezone.utc)

JOB_NAMESPACE = "airflow-prod"
DAG_NAME = "credit_risk_daily"
FIRST_MODEL_VERSION = 6  # the registry already holds versions 1-5 when the demo starts

# Run IDs are UUIDv5 in a namespace of the demo's own, so they cannot collide
# with IDs derived the same way by anything else.
_RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, DEMO_PRODUCER)

CRM = "postgres://crm-db.prod:5432"
WAREHOUSE = "postgres://warehouse.prod:5432"
RAW = "s3://bank-raw"
FEATURE_STORE = "s3://feature-store"
REGISTRY = "mlflow://registry.prod"

# The pipeline code lives in one (fictional) repository, pinned to one commit.
_REPO = "https://git.bank.example/credit-risk/pipelines"
_COMMIT = "4e1b9c07d2a85f3e6b0c19d7a4f28e53c6d90b1a"

_AIRFLOW = ("Airflow", "2.10.3", "1.14.0")  # engine, version, OpenLineage provider version
_SPARK = ("spark", "3.5.1", "1.26.0")


def _p(cls: type, **kwargs: Any) -> Any:
    """A client facet stamped with the demo as its producer (not the client default)."""
    return cls(producer=DEMO_PRODUCER, **kwargs)


# -- the datasets ---------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """One dataset of the estate and the numbers its daily runs report.

    ``profile``: column -> (null fraction, distinct values), where distinct
    values are a count (int) or a fraction of the rows (float).
    Rows on day d are ``rows + daily_rows * d``.
    """

    namespace: str
    name: str
    description: str
    owner: str
    kind: str  # datasetType: TABLE, FILE, MODEL
    columns: tuple[tuple[str, str, str], ...] = ()  # (name, type, description)
    pii: tuple[str, ...] = ()
    profile: dict[str, tuple[float, int | float]] = field(default_factory=dict)
    rows: int = 0
    daily_rows: int = 0
    row_bytes: int = 0
    fixed_bytes: int = 0  # for artefacts whose size is not per row (a model)
    storage: tuple[str, str] | None = None  # (storageLayer, fileFormat)

    def row_count(self, day: int) -> int:
        return self.rows + self.daily_rows * day

    def size(self, day: int) -> int:
        return self.row_count(day) * self.row_bytes + self.fixed_bytes


CUSTOMERS = _Table(
    CRM, "crm.public.customers", "Retail customers of the bank, one row per customer (system of record).",
    "team:crm", "TABLE",
    columns=(
        ("customer_id", "bigint", "Customer key"),
        ("full_name", "varchar", "Legal name"),
        ("email", "varchar", "Contact email"),
        ("date_of_birth", "date", "Date of birth"),
        ("postcode", "varchar", "Postal code of the home address"),
        ("income", "numeric(12,2)", "Declared gross yearly income, EUR"),
    ),
    pii=("full_name", "email", "date_of_birth", "postcode"),
    profile={"customer_id": (0.0, 1.0), "email": (0.002, 0.997), "income": (0.031, 0.42)},
    rows=1_284_310, daily_rows=412,
)
LOANS = _Table(
    CRM, "crm.public.loans", "Loan contracts, one row per loan.", "team:crm", "TABLE",
    columns=(
        ("loan_id", "bigint", "Loan key"),
        ("customer_id", "bigint", "Borrower (crm.public.customers)"),
        ("amount", "numeric(12,2)", "Principal, EUR"),
        ("status", "varchar", "OPEN, REPAID, DEFAULTED or WRITTEN_OFF"),
        ("opened_at", "timestamptz", "When the loan was opened"),
    ),
    profile={"customer_id": (0.0, 0.61), "status": (0.0, 4)},
    rows=2_071_905, daily_rows=655,
)
CREDIT_REPORTS = _Table(
    RAW, "bureau/credit_reports", "Credit bureau reports delivered nightly as Parquet files.",
    "team:data-platform", "FILE",
    columns=(
        ("customer_id", "bigint", "Customer key"),
        ("bureau_score", "int", "Bureau credit score, 300-850"),
        ("delinquencies", "int", "Delinquencies in the last 24 months"),
    ),
    profile={"customer_id": (0.0, 1.0), "bureau_score": (0.008, 551)},
    rows=1_190_442, daily_rows=380,
)
LOAN_APPLICATIONS = _Table(
    WAREHOUSE, "analytics.loan_applications", "Loan applications awaiting a credit decision.",
    "team:lending", "TABLE",
    columns=(
        ("application_id", "bigint", "Application key"),
        ("customer_id", "bigint", "Applicant"),
        ("requested_amount", "numeric(12,2)", "Requested principal, EUR"),
        ("term_months", "int", "Requested term"),
        ("submitted_at", "timestamptz", "When the application was submitted"),
    ),
    profile={"application_id": (0.0, 1.0), "requested_amount": (0.0, 0.37)},
    rows=3_412, daily_rows=57,
)
LOAN_HISTORY = _Table(
    WAREHOUSE, "analytics.loan_history", "Loans joined with their borrower's attributes.",
    "team:data-platform", "TABLE",
    columns=(
        ("loan_id", "bigint", "Loan key"),
        ("customer_id", "bigint", "Borrower"),
        ("amount", "numeric(12,2)", "Principal, EUR"),
        ("status", "varchar", "Loan status"),
        ("opened_at", "timestamptz", "When the loan was opened"),
        ("income", "numeric(12,2)", "Borrower's declared income, EUR"),
        ("age_at_opening", "int", "Borrower's age in years when the loan was opened"),
        ("postcode_district", "varchar", "Outward part of the borrower's postcode"),
        ("customer_loan_count", "int", "Loans the borrower holds in total"),
    ),
    profile={"loan_id": (0.0, 1.0), "income": (0.029, 0.40)},
    rows=2_071_905, daily_rows=655, row_bytes=118,
)
DEFAULT_LABELS = _Table(
    WAREHOUSE, "analytics.default_labels", "Training label: has the customer ever defaulted.",
    "team:credit-risk-ml", "TABLE",
    columns=(("customer_id", "bigint", "Customer key"), ("defaulted", "boolean", "Any loan DEFAULTED or WRITTEN_OFF")),
    profile={"customer_id": (0.0, 1.0), "defaulted": (0.0, 2)},
    rows=1_263_862, daily_rows=401, row_bytes=24,
)
CREDIT_FEATURES = _Table(
    FEATURE_STORE, "credit_features", "Per-customer credit features for training and scoring.",
    "team:credit-risk-ml", "TABLE",
    columns=(
        ("customer_id", "bigint", "Customer key"),
        ("debt_to_income", "double", "Open principal / yearly income"),
        ("n_delinquencies", "int", "Bureau delinquencies, 24 months"),
        ("avg_loan_amount", "double", "Mean principal of the customer's loans, EUR"),
        ("bureau_score", "int", "Latest bureau score"),
    ),
    profile={"customer_id": (0.0, 1.0), "debt_to_income": (0.031, 0.93)},
    rows=1_186_027, daily_rows=377, row_bytes=41, storage=("delta", "parquet"),
)
CREDIT_MODEL = _Table(
    REGISTRY, "models/credit_default", "Probability-of-default classifier (gradient-boosted trees).",
    "team:credit-risk-ml", "MODEL", fixed_bytes=48_213_504,
)
CREDIT_SCORES = _Table(
    WAREHOUSE, "analytics.credit_scores", "Probability of default for each pending application.",
    "team:credit-risk-ml", "TABLE",
    columns=(
        ("application_id", "bigint", "Application key"),
        ("customer_id", "bigint", "Applicant"),
        ("score", "double", "Predicted probability of default"),
        ("model_version", "varchar", "Registry version of the model that scored it"),
    ),
    rows=3_412, daily_rows=57, row_bytes=52,
)


def _model_version(day: int) -> str:
    """The registry version the training run of day ``day`` (0-based) registers."""
    return str(FIRST_MODEL_VERSION + day)


def _dataset_facets(table: _Table, day: int, with_version: bool) -> dict[str, Any]:
    """What the dataset is: the facets reported wherever it is read or written."""
    facets: dict[str, Any] = {
        "dataSource": _p(datasource_dataset.DatasourceDatasetFacet, name=table.namespace, uri=table.namespace),
        "datasetType": _p(dataset_type_dataset.DatasetTypeDatasetFacet, datasetType=table.kind),
        "documentation": _p(documentation_dataset.DocumentationDatasetFacet, description=table.description),
        "ownership": _p(ownership_dataset.OwnershipDatasetFacet,
                        owners=[ownership_dataset.Owner(name=table.owner, type="MAINTAINER")]),
    }
    if table.columns:
        facets["schema"] = _p(schema_dataset.SchemaDatasetFacet, fields=[
            schema_dataset.SchemaDatasetFacetFields(name=n, type=t, description=d, ordinal_position=i)
            for i, (n, t, d) in enumerate(table.columns, start=1)
        ])
    if table.pii:
        facets["tags"] = _p(tags_dataset.TagsDatasetFacet, tags=[
            tags_dataset.TagsDatasetFacetFields(key="pii", value="true", source="USER", field=c) for c in table.pii
        ])
    if table.storage:
        facets["storage"] = _p(storage_dataset.StorageDatasetFacet,
                               storageLayer=table.storage[0], fileFormat=table.storage[1])
    # only models are versioned here: each training run registers a new one
    if with_version and table.kind == "MODEL":
        facets["version"] = _p(dataset_version_dataset.DatasetVersionDatasetFacet,
                               datasetVersion=_model_version(day))
    return facets


def _quality_metrics(table: _Table, day: int) -> dq.DataQualityMetricsInputDatasetFacet:
    """The profile of an input as the run measured it while reading."""
    rows = table.row_count(day)
    columns = {
        column: dq.ColumnMetrics(
            nullCount=round(rows * nulls),
            distinctCount=distinct if isinstance(distinct, int) else round(rows * distinct),
        )
        for column, (nulls, distinct) in table.profile.items()
    }
    return _p(dq.DataQualityMetricsInputDatasetFacet, rowCount=rows, columnMetrics=columns)


# -- column lineage -------------------------------------------------------------


def _direct(table: _Table, column: str, subtype: str = "IDENTITY", description: str | None = None) -> cl.InputField:
    """An input column whose values flow into the output column."""
    return cl.InputField(namespace=table.namespace, name=table.name, field=column, transformations=[
        cl.Transformation(type="DIRECT", subtype=subtype, description=description, masking=False)
    ])


def _indirect(table: _Table, column: str, *subtypes: str) -> cl.InputField:
    """An input column that shapes the output without flowing into it (join keys, group keys)."""
    return cl.InputField(namespace=table.namespace, name=table.name, field=column, transformations=[
        cl.Transformation(type="INDIRECT", subtype=s) for s in subtypes
    ])


def _column_lineage(fields: dict[str, list[cl.InputField]],
                    dataset: list[cl.InputField]) -> cl.ColumnLineageDatasetFacet:
    return _p(cl.ColumnLineageDatasetFacet,
              fields={out: cl.Fields(inputFields=inputs) for out, inputs in fields.items()},
              dataset=dataset)


def _loan_history_lineage() -> cl.ColumnLineageDatasetFacet:
    return _column_lineage({
        "loan_id": [_direct(LOANS, "loan_id")],
        "customer_id": [_direct(LOANS, "customer_id")],
        "amount": [_direct(LOANS, "amount")],
        "status": [_direct(LOANS, "status")],
        "opened_at": [_direct(LOANS, "opened_at")],
        "income": [_direct(CUSTOMERS, "income")],
        "age_at_opening": [
            _direct(CUSTOMERS, "date_of_birth", "TRANSFORMATION", "DATE_PART('year', AGE(opened_at, date_of_birth))"),
            _direct(LOANS, "opened_at", "TRANSFORMATION", "DATE_PART('year', AGE(opened_at, date_of_birth))"),
        ],
        "postcode_district": [_direct(CUSTOMERS, "postcode", "TRANSFORMATION", "SPLIT_PART(postcode, ' ', 1)")],
        "customer_loan_count": [_direct(LOANS, "loan_id", "AGGREGATION", "COUNT(*) OVER (PARTITION BY customer_id)")],
    }, [_indirect(LOANS, "customer_id", "JOIN", "WINDOW"), _indirect(CUSTOMERS, "customer_id", "JOIN")])


def _default_labels_lineage() -> cl.ColumnLineageDatasetFacet:
    return _column_lineage({
        "customer_id": [_direct(LOANS, "customer_id")],
        "defaulted": [_direct(LOANS, "status", "AGGREGATION", "BOOL_OR(status IN ('DEFAULTED', 'WRITTEN_OFF'))")],
    }, [_indirect(LOANS, "customer_id", "GROUP_BY")])


def _credit_features_lineage() -> cl.ColumnLineageDatasetFacet:
    dti = "SUM(amount) FILTER (status = 'OPEN') / FIRST(income)"
    return _column_lineage({
        "customer_id": [_direct(LOAN_HISTORY, "customer_id")],
        "debt_to_income": [_direct(LOAN_HISTORY, "amount", "AGGREGATION", dti),
                           _direct(LOAN_HISTORY, "income", "AGGREGATION", dti)],
        "n_delinquencies": [_direct(CREDIT_REPORTS, "delinquencies")],
        "avg_loan_amount": [_direct(LOAN_HISTORY, "amount", "AGGREGATION", "AVG(amount)")],
        "bureau_score": [_direct(CREDIT_REPORTS, "bureau_score")],
    }, [_indirect(LOAN_HISTORY, "customer_id", "GROUP_BY", "JOIN"),
        _indirect(LOAN_HISTORY, "status", "CONDITIONAL"),
        _indirect(CREDIT_REPORTS, "customer_id", "JOIN")])


def _credit_scores_lineage() -> cl.ColumnLineageDatasetFacet:
    # model_version comes from the registry, not from any column, so it has no entry
    predict = "model.predict_proba(features)[:, 1]"
    return _column_lineage({
        "application_id": [_direct(LOAN_APPLICATIONS, "application_id")],
        "customer_id": [_direct(LOAN_APPLICATIONS, "customer_id")],
        "score": [_direct(CREDIT_FEATURES, c, "TRANSFORMATION", predict)
                  for c in ("debt_to_income", "n_delinquencies", "avg_loan_amount", "bureau_score")]
                 + [_direct(LOAN_APPLICATIONS, "requested_amount", "TRANSFORMATION", predict)],
    }, [_indirect(LOAN_APPLICATIONS, "customer_id", "JOIN"), _indirect(CREDIT_FEATURES, "customer_id", "JOIN")])


# -- the jobs -------------------------------------------------------------------

_LOAN_HISTORY_SQL = """\
INSERT INTO analytics.loan_history (
    loan_id, customer_id, amount, status, opened_at,
    income, age_at_opening, postcode_district, customer_loan_count
)
SELECT
    l.loan_id,
    l.customer_id,
    l.amount,
    l.status,
    l.opened_at,
    c.income,
    DATE_PART('year', AGE(l.opened_at, c.date_of_birth))::int AS age_at_opening,
    SPLIT_PART(c.postcode, ' ', 1) AS postcode_district,
    COUNT(*) OVER (PARTITION BY l.customer_id) AS customer_loan_count
FROM crm.public.loans AS l
JOIN crm.public.customers AS c ON c.customer_id = l.customer_id
ON CONFLICT (loan_id) DO UPDATE SET
    status = EXCLUDED.status,
    customer_loan_count = EXCLUDED.customer_loan_count"""

_DEFAULT_LABELS_SQL = """\
INSERT INTO analytics.default_labels (customer_id, defaulted)
SELECT
    l.customer_id,
    BOOL_OR(l.status IN ('DEFAULTED', 'WRITTEN_OFF')) AS defaulted
FROM crm.public.loans AS l
GROUP BY l.customer_id
ON CONFLICT (customer_id) DO UPDATE SET defaulted = EXCLUDED.defaulted"""

_HYPERPARAMETERS = (
    ("estimator", "sklearn.ensemble.HistGradientBoostingClassifier"),
    ("learning_rate", "0.05"),
    ("max_depth", "6"),
    ("max_iter", "400"),
    ("class_weight", "balanced"),
    ("random_state", "42"),
)


@dataclass(frozen=True)
class _Task:
    """One task of the DAG: what it runs, when (seconds after the DAG run
    starts), what it reads and writes, and its output's column lineage."""

    name: str
    description: str
    owner: str
    job_type: tuple[str, str]  # (integration, jobType); processingType is always BATCH
    engine: tuple[str, str, str]
    start: int
    end: int
    reads: tuple[_Table, ...]
    writes: _Table
    lineage: Callable[[], cl.ColumnLineageDatasetFacet] | None = None
    sql: str | None = None
    code_path: str | None = None
    hyperparameters: tuple[tuple[str, str], ...] = ()


_TASKS = (
    _Task(f"{DAG_NAME}.build_loan_history", "Join loans with borrower attributes into the warehouse.",
          "team:data-platform", ("AIRFLOW", "TASK"), _AIRFLOW, 62, 404,
          (CUSTOMERS, LOANS), LOAN_HISTORY, _loan_history_lineage, sql=_LOAN_HISTORY_SQL),
    _Task(f"{DAG_NAME}.label_defaults", "Label each customer by whether any of their loans defaulted.",
          "team:data-platform", ("AIRFLOW", "TASK"), _AIRFLOW, 65, 188,
          (LOANS,), DEFAULT_LABELS, _default_labels_lineage, sql=_DEFAULT_LABELS_SQL),
    _Task(f"{DAG_NAME}.build_credit_features", "Spark job computing per-customer credit features.",
          "team:credit-risk-ml", ("SPARK", "JOB"), _SPARK, 431, 1127,
          (LOAN_HISTORY, CREDIT_REPORTS), CREDIT_FEATURES, _credit_features_lineage,
          code_path="spark/build_credit_features.py"),
    _Task(f"{DAG_NAME}.train_credit_model", "Train the probability-of-default model and register it.",
          "team:credit-risk-ml", ("SKLEARN", "TRAINING"), _AIRFLOW, 1160, 2493,
          (CREDIT_FEATURES, DEFAULT_LABELS), CREDIT_MODEL, code_path="ml/train_credit_model.py",
          hyperparameters=_HYPERPARAMETERS),
    _Task(f"{DAG_NAME}.score_applications", "Score pending loan applications with the day's model.",
          "team:credit-risk-ml", ("SKLEARN", "INFERENCE"), _AIRFLOW, 2521, 2904,
          (CREDIT_MODEL, CREDIT_FEATURES, LOAN_APPLICATIONS), CREDIT_SCORES, _credit_scores_lineage,
          code_path="ml/score_applications.py"),
)
_DAG_END = 2950  # seconds after the DAG run starts, once the last task is done


def _job_facets(description: str, owner: str, job_type: tuple[str, str], sql: str | None,
                code_path: str | None) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "documentation": _p(documentation_job.DocumentationJobFacet, description=description),
        "jobType": _p(job_type_job.JobTypeJobFacet, processingType="BATCH",
                      integration=job_type[0], jobType=job_type[1]),
        "ownership": _p(ownership_job.OwnershipJobFacet, owners=[ownership_job.Owner(name=owner, type="MAINTAINER")]),
    }
    if sql:
        facets["sql"] = _p(sql_job.SQLJobFacet, query=sql, dialect="postgres")
    if code_path:
        facets["sourceCodeLocation"] = _p(
            source_code_location_job.SourceCodeLocationJobFacet, type="git",
            url=f"{_REPO}/blob/{_COMMIT}/{code_path}", repoUrl=f"{_REPO}.git",
            path=code_path, version=_COMMIT, branch="main",
        )
    return facets


# -- runs and events -------------------------------------------------------------


@dataclass(frozen=True)
class _Day:
    """One daily run of the DAG: its index (0-based) and scheduled start."""

    index: int
    start: datetime

    def at(self, seconds: int) -> datetime:
        return self.start + timedelta(seconds=seconds)

    def run_id(self, job_name: str) -> str:
        return str(uuid.uuid5(_RUN_ID_NAMESPACE, f"{job_name}/{self.start.date().isoformat()}"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _common_run_facets(day: _Day, engine: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "nominalTime": _p(nominal_time_run.NominalTimeRunFacet, nominalStartTime=_iso(day.start),
                          nominalEndTime=_iso(day.start + timedelta(days=1))),
        "processing_engine": _p(processing_engine_run.ProcessingEngineRunFacet, name=engine[0],
                                version=engine[1], openlineageAdapterVersion=engine[2]),
    }


def _parent_facet(day: _Day) -> parent_run.ParentRunFacet:
    """Every task run is part of the day's DAG run, which is also the root."""
    dag_run_id = day.run_id(DAG_NAME)
    return _p(parent_run.ParentRunFacet,
              run=parent_run.Run(runId=dag_run_id),
              job=parent_run.Job(namespace=JOB_NAMESPACE, name=DAG_NAME),
              root=parent_run.Root(run=parent_run.RootRun(runId=dag_run_id),
                                   job=parent_run.RootJob(namespace=JOB_NAMESPACE, name=DAG_NAME)))


def _inputs(task: _Task, day: _Day, done: bool) -> list[InputDataset]:
    # the read profile is known only once the run has read the data
    return [
        InputDataset(namespace=t.namespace, name=t.name, facets=_dataset_facets(t, day.index, with_version=True),
                     inputFacets={"dataQualityMetrics": _quality_metrics(t, day.index)} if done and t.profile else {})
        for t in task.reads
    ]


def _output(task: _Task, day: _Day, done: bool) -> OutputDataset:
    table = task.writes
    # a model version, column lineage and write statistics exist once the run has written
    facets = _dataset_facets(table, day.index, with_version=done)
    output_facets: dict[str, Any] = {}
    if done:
        if task.lineage is not None:
            facets["columnLineage"] = task.lineage()
        output_facets["outputStatistics"] = _p(
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet,
            rowCount=table.row_count(day.index) or None,  # a model has no rows
            size=table.size(day.index),
        )
    return OutputDataset(namespace=table.namespace, name=table.name, facets=facets, outputFacets=output_facets)


def _task_events(task: _Task, day: _Day) -> list[tuple[datetime, RunEvent]]:
    job = Job(namespace=JOB_NAMESPACE, name=task.name,
              facets=_job_facets(task.description, task.owner, task.job_type, task.sql, task.code_path))
    run_facets = {**_common_run_facets(day, task.engine), "parent": _parent_facet(day)}
    if task.hyperparameters:
        run_facets["executionParameters"] = _p(params.ExecutionParametersRunFacet, parameters=[
            params.ExecutionParameter(key=k, value=v) for k, v in task.hyperparameters
        ])
    events = []
    for state, seconds, done in ((RunState.START, task.start, False), (RunState.COMPLETE, task.end, True)):
        event = RunEvent(eventType=state, eventTime=_iso(day.at(seconds)), producer=DEMO_PRODUCER,
                         run=Run(runId=day.run_id(task.name), facets=run_facets), job=job,
                         inputs=_inputs(task, day, done), outputs=[_output(task, day, done)])
        events.append((day.at(seconds), event))
    return events


def _dag_events(day: _Day) -> list[tuple[datetime, RunEvent]]:
    job = Job(namespace=JOB_NAMESPACE, name=DAG_NAME, facets=_job_facets(
        "Daily credit-risk pipeline: loan history, features, labels, model training and batch scoring.",
        "team:data-platform", ("AIRFLOW", "DAG"), None, "dags/credit_risk_daily.py"))
    run = Run(runId=day.run_id(DAG_NAME), facets=_common_run_facets(day, _AIRFLOW))
    return [
        (day.at(seconds), RunEvent(eventType=state, eventTime=_iso(day.at(seconds)), producer=DEMO_PRODUCER,
                                   run=run, job=job))
        for state, seconds in ((RunState.START, 0), (RunState.COMPLETE, _DAG_END))
    ]


def demo_events(days: int = 2, start: datetime | None = None) -> list[dict]:
    """The demo estate's lineage as OpenLineage 2-0-2 RunEvents.

    Inputs: ``days``, how many daily runs of the ``credit_risk_daily`` DAG to
    report (an int >= 0); ``start``, when the first one is scheduled (default
    2026-11-01T02:00:00Z; a naive datetime is read as UTC), the next ones
    following at 24-hour intervals.

    Output: a list of events as plain JSON-ready dicts (``Serde.to_dict`` of
    openlineage-python ``event_v2.RunEvent``), ordered by ``eventTime``: per
    day a START and a COMPLETE for the DAG run and for each of its 5 task runs
    (12 events a day). Times are UTC ISO 8601 with milliseconds; row counts
    are rows, sizes are bytes. Training on day ``d`` (0-based) registers model
    version ``str(6 + d)``, which that day's scoring run reads.

    Deterministic: the same arguments give identical events. Raises
    ``ValueError`` for a negative ``days``.
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"days must be an int >= 0, got {days!r}")
    first = start or DEFAULT_START
    if first.tzinfo is None:
        first = first.replace(tzinfo=timezone.utc)
    timed: list[tuple[datetime, RunEvent]] = []
    for index in range(days):
        day = _Day(index, first + timedelta(days=index))
        timed.extend(_dag_events(day))
        for task in _TASKS:
            timed.extend(_task_events(task, day))
    timed.sort(key=lambda pair: pair[0])  # stable: a DAG START stays before its tasks
    return [Serde.to_dict(event) for _, event in timed]


__all__ = ["DEMO_PRODUCER", "demo_events"]
