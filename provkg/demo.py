"""A demo estate: the OpenLineage events of a bank's credit-scoring system.

A loan applicant's data flows from three raw sources to credit decisions, and
every step reports OpenLineage 2-0-2 RunEvents (START and COMPLETE):

- raw sources in ``s3://bank-raw``, one version a day (the delivery date):
  ``lending/applications``, ``bureau/credit_reports`` and the vendor's
  ``vendor/demographics``; each lists the data subjects it holds
  (``provkg_dataSubjects``) and its data-protection policy (``provkg_policy``);
- the Airflow DAG ``credit_risk_daily`` (namespace ``airflow-prod``): ETL into
  ``analytics.applicant_profile``, labelling into ``analytics.default_labels``,
  feature engineering into the feature set ``credit_features``, training of
  ``models/credit_default`` (one model version a day: ``"1"``, ``"2"``, ...),
  weekly training of ``models/fraud_score`` on the same features, an
  evaluation per model version (``provkg_evaluation``, ``provkg_fairness``) and
  the deployment of the day's credit model version as a serving revision;
- the serving endpoint (namespace ``kserve-prod``), whose daily INFERENCE run
  reports its predictions (``provkg_inference``) in all three capture tiers;
- the consent service (namespace ``consent-service``), which reports consent
  records (``provkg_consent``).

The story (with the default two days from 2026-11-01): subject ``subj-0042``
applies, is scored on day 1 and withdraws consent to model training on the
evening of day 1, yet the day-2 training runs still read source versions
holding their data. The day-2 delivery of ``vendor/demographics`` is skewed
against applicants aged 18-25; the skew propagates through feature
engineering (labels stay clean) into credit model version 2, whose evaluation
finds a demographic parity difference beyond threshold. ``KNOWN_ANSWERS``
holds what the governance questions should answer on this estate; see
``docs/demo.md``.

The events are built with the openlineage-python client's own event model
(``openlineage.client.event_v2`` and ``facet_v2``), provkg's custom facets are
attrs subclasses of the client's ``RunFacet``/``DatasetFacet`` (below), and all
are serialised with the client's ``Serde``, so they are what a client emitter
would send. Everything is derived from the arguments: no clock, no randomness,
so the same call gives the same bytes (run IDs are UUIDv5 of job name and start
time).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    RunFacet,
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
from openlineage.client.utils import RedactMixin

from .iris import IriMinter

DEMO_PRODUCER = "https://github.com/provkg/provkg/tree/0.1.0/demo"
DEFAULT_START = datetime(2026, 11, 1, 2, 0, tzinfo=timezone.utc)

# provkg's custom facet schemas (facets/*.json); their $id is the _schemaURL sent
PROVKG_FACET_SCHEMAS = "https://w3id.org/provkg/spec/facets/1-0-0/"

JOB_NAMESPACE = "airflow-prod"
DAG_NAME = "credit_risk_daily"
SERVING_NAMESPACE = "kserve-prod"
CONSENT_NAMESPACE = "consent-service"

RAW = "s3://bank-raw"
WAREHOUSE = "postgres://warehouse.prod:5432"
FEATURE_STORE = "s3://feature-store"
REGISTRY = "mlflow://registry.prod"

# Run IDs are UUIDv5 in a namespace of the demo's own, so they cannot collide
# with IDs derived the same way by anything else.
_RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, DEMO_PRODUCER)

# The pipeline code lives in one (fictional) repository. Each job reports the
# commit of its own code: most stay at the first; on day 2 the ETL (new column
# employment_status) and the training code have moved on.
_REPO = "https://git.bank.example/credit-risk/pipelines"
_COMMIT_BASE = "4e1b9c07d2a85f3e6b0c19d7a4f28e53c6d90b1a"
_COMMIT_ETL_EMPLOYMENT = "cd22d001e3b28f5740d0c0967d8d0a7cbc14d53d"
_COMMIT_TRAINING_TUNED = "94efdd6f628eda9c1ae893467c9652808443ef3e"

_AIRFLOW = ("Airflow", "2.10.3", "1.14.0")  # engine, version, OpenLineage provider version
_SPARK = ("spark", "3.5.1", "1.26.0")
_KSERVE = ("kserve", "0.13.1", "1.26.0")
_CONSENT_HUB = ("consent-hub", "3.2.0", "1.26.0")

# From the day with this index (0-based) on: applications carry employment_status,
# the demographics vendor delivers skewed income estimates, training uses the tuned
# configuration and code.
CHANGE_DAY = 1
# models/fraud_score is retrained weekly, on the days with index % 7 == FRAUD_DAY
FRAUD_DAY = 1


# -- provkg custom facets, as client facet classes ---------------------------------
#
# The client stamps ``_schemaURL`` from each class's ``_get_schema()`` in
# ``BaseFacet.__attrs_post_init__``, so overriding it names provkg's schema;
# ``_producer`` comes from the ``producer=`` argument. Field names are the
# facet's JSON names (docs/ai-lineage.md §2); ``Serde`` drops fields left None.


def _schema_url(name: str) -> str:
    return f"{PROVKG_FACET_SCHEMAS}{name}.json"


@attr.define
class TrainingEnvironment(RedactMixin):
    python: str | None = None
    image: str | None = None
    libraries: dict[str, str] | None = None


@attr.define
class TrainingRunFacet(RunFacet):
    """``provkg_training``: how a model version was trained."""

    hyperparameters: dict[str, Any] = attr.field(factory=dict)
    algorithm: str | None = None
    task: str | None = None
    codeVersion: str | None = None  # noqa: N815
    environment: TrainingEnvironment | None = None
    randomSeed: int | None = None  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("TrainingRunFacet")


@attr.define
class ModelVersionDatasetFacet(DatasetFacet):
    """``provkg_modelVersion``: one version of a MODEL dataset."""

    version: str
    artifactDigest: str  # noqa: N815
    framework: str | None = None
    intendedPurpose: str | None = None  # noqa: N815
    provider: str | None = None
    highRisk: bool | None = None  # noqa: N815
    trainingDataDescription: str | None = None  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("ModelVersionDatasetFacet")


@attr.define
class DeploymentRunFacet(RunFacet):
    """``provkg_deployment``: what a DEPLOYMENT run put into service."""

    deploymentId: str  # noqa: N815
    activeFrom: str  # noqa: N815
    endpoint: str | None = None
    environment: str | None = None
    servingConfig: dict[str, Any] | None = None  # noqa: N815
    activeUntil: str | None = None  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("DeploymentRunFacet")


@attr.define
class FeatureSnapshot(RedactMixin):
    uri: str
    digest: str | None = None
    features: dict | None = None


@attr.define
class Prediction(RedactMixin):
    predictionId: str  # noqa: N815
    timestamp: str
    captureTier: str  # noqa: N815
    dataSubject: str | None = None  # noqa: N815
    output: float | str | bool | None = None
    consequential: bool | None = None
    featureSnapshot: FeatureSnapshot | None = None  # noqa: N815


@attr.define
class InferenceRunFacet(RunFacet):
    """``provkg_inference``: the predictions an INFERENCE run made."""

    deploymentId: str  # noqa: N815
    predictions: list[Prediction] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("InferenceRunFacet")


@attr.define
class DataSubjectsDatasetFacet(DatasetFacet):
    """``provkg_dataSubjects``: whose records the dataset (as read or written) holds."""

    subjects: list[str] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("DataSubjectsDatasetFacet")


@attr.define
class ConsentRecord(RedactMixin):
    subject: str
    status: str  # GIVEN or WITHDRAWN
    at: str
    purposes: list[str] | None = None
    legalBasis: str | None = None  # noqa: N815


@attr.define
class ConsentRunFacet(RunFacet):
    """``provkg_consent``: consent records a consent-management run reports."""

    records: list[ConsentRecord] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("ConsentRunFacet")


@attr.define
class PolicyDatasetFacet(DatasetFacet):
    """``provkg_policy``: data-protection policy of a dataset."""

    personalData: bool | None = None  # noqa: N815
    specialCategory: bool | None = None  # noqa: N815
    sensitivity: str | None = None
    legalBasis: str | None = None  # noqa: N815
    purposes: list[str] | None = None
    retention: str | None = None
    justification: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("PolicyDatasetFacet")


@attr.define
class FairnessMetric(RedactMixin):
    metric: str
    protectedAttribute: str  # noqa: N815
    group: str
    value: float
    referenceGroup: str | None = None  # noqa: N815
    threshold: float | None = None


@attr.define
class FairnessDatasetFacet(DatasetFacet):
    """``provkg_fairness``: per-group fairness measurements of a dataset or model version."""

    metrics: list[FairnessMetric] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("FairnessDatasetFacet")


@attr.define
class EvaluationMetric(RedactMixin):
    metric: str
    value: float
    split: str | None = None


@attr.define
class EvaluationDatasetFacet(DatasetFacet):
    """``provkg_evaluation``: metrics of a model version, on an EVALUATION run's MODEL input."""

    metrics: list[EvaluationMetric] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("EvaluationDatasetFacet")


def _p(cls: type, **kwargs: Any) -> Any:
    """A client facet stamped with the demo as its producer (not the client default)."""
    return cls(producer=DEMO_PRODUCER, **kwargs)


def _sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the days ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Day:
    """One day of the estate: its index (0-based) and when its DAG run is scheduled.

    Every time of the day is an offset from ``start`` (02:00 UTC by default),
    so any ``start`` keeps the same order of events."""

    index: int
    start: datetime

    @property
    def date(self) -> str:
        """The day's date: the version of every dataset written or delivered that day."""
        return self.start.date().isoformat()

    @property
    def changed(self) -> bool:
        return self.index >= CHANGE_DAY

    @property
    def trains_fraud(self) -> bool:
        return self.index % 7 == FRAUD_DAY

    def at(self, offset: timedelta) -> datetime:
        return self.start + offset


def _hms(hours: int, minutes: int = 0, seconds: int = 0) -> timedelta:
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _run_id(job_name: str, start: datetime) -> str:
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, f"{job_name}/{_iso(start)}"))


def credit_model_version(day_index: int) -> str:
    """The version of ``models/credit_default`` trained on day ``day_index`` (0-based)."""
    return str(day_index + 1)


def fraud_model_version(day_index: int) -> str:
    """The version of ``models/fraud_score`` trained on day ``day_index`` (a fraud day)."""
    return str(day_index // 7 + 1)


def deployment_id(model_version: str) -> str:
    """The serving revision that deploys a credit model version (Knative/KServe revision names)."""
    return f"credit-scoring-prod-{int(model_version):05d}"


# -- data subjects and consent ---------------------------------------------------------

WITHDRAWN_SUBJECT = "subj-0042"
_TRAINING_PURPOSE = "credit-model-training"
_CONSENT_BASIS = "eu-gdpr:A6-1-a"

# The applicants already on file on day 1, each with when (offset from day 1's
# start) they consented to the use of their data for model training.
_COHORT: tuple[tuple[str, timedelta], ...] = (
    ("subj-0001", -timedelta(days=48) + _hms(6, 12)),
    ("subj-0002", -timedelta(days=41) + _hms(9, 3)),
    ("subj-0003", -timedelta(days=33) + _hms(12, 40)),
    ("subj-0005", -timedelta(days=29) + _hms(7, 55)),
    ("subj-0008", -timedelta(days=22) + _hms(14, 21)),
    ("subj-0013", -timedelta(days=17) + _hms(5, 48)),
    ("subj-0021", -timedelta(days=15) + _hms(11, 9)),
    (WITHDRAWN_SUBJECT, -timedelta(days=12) + _hms(8, 15)),  # 2026-10-20T10:15Z
)
# Applicants who apply (and consent) during the day before the given day index.
_NEWCOMERS: dict[int, tuple[tuple[str, timedelta], ...]] = {
    1: (("subj-0055", _hms(12, 30)), ("subj-0089", _hms(14, 5))),
}
WITHDRAWAL_OFFSET = _hms(17, 42, 17)  # day 1, 19:42:17Z by default


def _newcomers(index: int) -> tuple[tuple[str, timedelta], ...]:
    """(subject, consent offset from the previous day's start) of the applicants new on day ``index``."""
    if index == 0:
        return _COHORT
    if index in _NEWCOMERS:
        return _NEWCOMERS[index]
    return ((f"subj-{100 + index:04d}", _hms(13)),)


def _subjects(index: int) -> list[str]:
    """Every applicant on file on day ``index``: the sources hold all of them (nobody is ever removed)."""
    return sorted(s for i in range(index + 1) for s, _ in _newcomers(i))


def _consent_given(day: _Day) -> list[tuple[str, datetime]]:
    """The consents the day's consent export reports: those given since the previous export."""
    base = day.start if day.index == 0 else day.start - timedelta(days=1)
    return [(subject, base + offset) for subject, offset in _newcomers(day.index)]


# -- the datasets ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """One dataset of the estate.

    ``columns`` are (name, type, description); ``added`` are columns that exist
    only from ``CHANGE_DAY`` on. ``pii`` columns get a ``pii`` tag,
    ``protected`` columns a ``protected_attribute`` tag. A ``source`` holds the
    data subjects on file and states its policy."""

    namespace: str
    name: str
    description: str
    owner: str
    kind: str  # datasetType: FILE, TABLE, FEATURE_SET, MODEL
    columns: tuple[tuple[str, str, str], ...] = ()
    added: tuple[tuple[str, str, str], ...] = ()
    pii: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    source: bool = False
    policy: dict[str, Any] | None = None
    row_bytes: int = 0
    fixed_bytes: int = 0  # for artefacts whose size is not per row (a model)
    storage: tuple[str, str] | None = None  # (storageLayer, fileFormat)

    def columns_on(self, day: _Day) -> tuple[tuple[str, str, str], ...]:
        return self.columns + (self.added if day.changed else ())


_PERSONAL = dict(personalData=True, specialCategory=False, legalBasis="eu-gdpr:A6-1-b",
                 purposes=["credit-decisioning", _TRAINING_PURPOSE], retention="P5Y")

APPLICATIONS = _Table(
    RAW, "lending/applications", "Loan applications exported nightly from the loan-origination system.",
    "team:lending", "FILE",
    columns=(
        ("application_id", "string", "Application key"),
        ("subject_id", "string", "Pseudonymous applicant identifier"),
        ("date_of_birth", "date", "Applicant's date of birth"),
        ("postcode", "string", "Postal code of the home address"),
        ("declared_income", "decimal(12,2)", "Declared gross yearly income, EUR (optional)"),
        ("requested_amount", "decimal(12,2)", "Requested principal, EUR"),
        ("term_months", "int", "Requested term"),
        ("submitted_at", "timestamp", "When the application was submitted"),
    ),
    added=(("employment_status", "string", "EMPLOYED, SELF_EMPLOYED, RETIRED, STUDENT or UNEMPLOYED"),),
    pii=("subject_id", "date_of_birth", "postcode"),
    source=True, row_bytes=96, storage=("s3", "parquet"),
    policy=dict(_PERSONAL, sensitivity="confidential",
                justification="Applications are processed to decide on the loan contract the applicant asked "
                              "for; their use for model training relies on the applicant's consent, recorded "
                              "by the consent service."),
)
CREDIT_REPORTS = _Table(
    RAW, "bureau/credit_reports", "Credit bureau reports on the applicants, delivered nightly.",
    "team:data-platform", "FILE",
    columns=(
        ("subject_id", "string", "Pseudonymous applicant identifier"),
        ("report_date", "date", "Date of the report"),
        ("bureau_score", "int", "Bureau credit score, 300-850"),
        ("delinquencies_24m", "int", "Delinquencies in the last 24 months"),
        ("open_credit_lines", "int", "Open credit lines"),
        ("max_days_past_due", "int", "Worst days past due on any line since the previous report"),
    ),
    pii=("subject_id",),
    source=True, row_bytes=40, storage=("s3", "parquet"),
    policy=dict(_PERSONAL, sensitivity="confidential",
                justification="Creditworthiness check before entering into the loan contract."),
)
DEMOGRAPHICS = _Table(
    RAW, "vendor/demographics", "Demographic enrichment of the applicants, delivered nightly by a data vendor.",
    "team:data-platform", "FILE",
    columns=(
        ("subject_id", "string", "Pseudonymous applicant identifier"),
        ("age_band", "string", "18-25, 26-64 or 65+"),
        ("sex", "string", "F or M"),
        ("region", "string", "NUTS-2 region of residence"),
        ("household_income_estimate", "decimal(12,2)", "Vendor's modelled household income, EUR"),
    ),
    pii=("subject_id", "age_band", "sex"),
    protected=("age_band", "sex"),
    source=True, row_bytes=44, storage=("s3", "csv"),
    policy=dict(_PERSONAL, sensitivity="restricted",
                justification="Income estimate where none is declared; age band and sex are kept only to "
                              "monitor fairness."),
)
APPLICANT_PROFILE = _Table(
    WAREHOUSE, "analytics.applicant_profile", "One row per application: applicant, bureau and vendor attributes.",
    "team:data-platform", "TABLE",
    columns=(
        ("application_id", "varchar", "Application key"),
        ("subject_id", "varchar", "Pseudonymous applicant identifier"),
        ("age_band", "varchar", "Age band (vendor)"),
        ("sex", "varchar", "Sex (vendor)"),
        ("region", "varchar", "Region (vendor)"),
        ("declared_income", "numeric(12,2)", "Declared income, EUR"),
        ("household_income_estimate", "numeric(12,2)", "Vendor's income estimate, EUR"),
        ("requested_amount", "numeric(12,2)", "Requested principal, EUR"),
        ("term_months", "int", "Requested term"),
        ("bureau_score", "int", "Latest bureau score"),
        ("delinquencies_24m", "int", "Bureau delinquencies, 24 months"),
        ("open_credit_lines", "int", "Open credit lines"),
    ),
    added=(("employment_status", "varchar", "Employment status (application)"),),
    pii=("subject_id", "age_band", "sex"),
    protected=("age_band", "sex"),
    row_bytes=180,
)
CREDIT_FEATURES = _Table(
    FEATURE_STORE, "credit_features", "Per-application credit features for training and scoring.",
    "team:credit-risk-ml", "FEATURE_SET",
    columns=(
        ("application_id", "string", "Entity key"),
        ("subject_id", "string", "Pseudonymous applicant identifier"),
        ("age_band", "string", "Protected attribute, kept to slice fairness metrics; not a model input"),
        ("debt_to_income", "double", "Requested principal / income (declared, else the vendor's estimate)"),
        ("payment_to_income", "double", "Monthly instalment / monthly income"),
        ("bureau_score", "int", "Latest bureau score"),
        ("delinquencies_24m", "int", "Bureau delinquencies, 24 months"),
        ("open_credit_lines", "int", "Open credit lines"),
    ),
    pii=("subject_id", "age_band"),
    protected=("age_band",),
    row_bytes=64, storage=("delta", "parquet"),
)
MODEL_INPUTS = ("debt_to_income", "payment_to_income", "bureau_score", "delinquencies_24m", "open_credit_lines")
DEFAULT_LABELS = _Table(
    WAREHOUSE, "analytics.default_labels", "Training labels per application, from later bureau reports.",
    "team:credit-risk-ml", "TABLE",
    columns=(
        ("application_id", "varchar", "Application key"),
        ("subject_id", "varchar", "Pseudonymous applicant identifier"),
        ("defaulted_12m", "boolean", "90+ days past due within 12 months of the application"),
        ("first_payment_default", "boolean", "30+ days past due within 2 months (fraud proxy)"),
    ),
    pii=("subject_id",),
    row_bytes=28,
)
CREDIT_MODEL = _Table(
    REGISTRY, "models/credit_default", "Probability-of-default classifier for loan applications.",
    "team:credit-risk-ml", "MODEL", fixed_bytes=48_213_504,
)
FRAUD_MODEL = _Table(
    REGISTRY, "models/fraud_score", "First-payment-default (application fraud) classifier.",
    "team:fraud-analytics", "MODEL", fixed_bytes=21_774_336,
)
CREDIT_DECISIONS = _Table(
    WAREHOUSE, "analytics.credit_decisions", "Consequential credit decisions made by the scoring endpoint.",
    "team:mlops", "TABLE",
    columns=(
        ("prediction_id", "varchar", "Prediction key (scoring endpoint)"),
        ("application_id", "varchar", "Application key"),
        ("subject_id", "varchar", "Pseudonymous applicant identifier"),
        ("probability_of_default", "double", "Model output"),
        ("decision", "varchar", "APPROVE or DECLINE"),
    ),
    pii=("subject_id",),
    row_bytes=72,
)


def _dataset_facets(table: _Table, day: _Day) -> dict[str, Any]:
    """What the dataset is: the facets reported wherever it is read or written."""
    facets: dict[str, Any] = {
        "dataSource": _p(datasource_dataset.DatasourceDatasetFacet, name=table.namespace, uri=table.namespace),
        "datasetType": _p(dataset_type_dataset.DatasetTypeDatasetFacet, datasetType=table.kind),
        "documentation": _p(documentation_dataset.DocumentationDatasetFacet, description=table.description),
        "ownership": _p(ownership_dataset.OwnershipDatasetFacet,
                        owners=[ownership_dataset.Owner(name=table.owner, type="MAINTAINER")]),
    }
    columns = table.columns_on(day)
    if columns:
        facets["schema"] = _p(schema_dataset.SchemaDatasetFacet, fields=[
            schema_dataset.SchemaDatasetFacetFields(name=n, type=t, description=d, ordinal_position=i)
            for i, (n, t, d) in enumerate(columns, start=1)
        ])
    tags = [tags_dataset.TagsDatasetFacetFields(key="pii", value="true", source="USER", field=c) for c in table.pii]
    tags += [tags_dataset.TagsDatasetFacetFields(key="protected_attribute", value="true", source="USER", field=c)
             for c in table.protected]
    if tags:
        facets["tags"] = _p(tags_dataset.TagsDatasetFacet, tags=tags)
    if table.storage:
        facets["storage"] = _p(storage_dataset.StorageDatasetFacet,
                               storageLayer=table.storage[0], fileFormat=table.storage[1])
    if table.policy:
        facets["provkg_policy"] = _p(PolicyDatasetFacet, **table.policy)
    if table.source:
        facets["provkg_dataSubjects"] = _p(DataSubjectsDatasetFacet, subjects=_subjects(day.index))
    return facets


def _version(version: str) -> dataset_version_dataset.DatasetVersionDatasetFacet:
    return _p(dataset_version_dataset.DatasetVersionDatasetFacet, datasetVersion=version)


def _rows(table: _Table, day: _Day) -> int:
    if table is CREDIT_DECISIONS:
        return sum(1 for p in _predictions(day) if p.tier == "FULL_SNAPSHOT")
    return len(_subjects(day.index))


def _quality_metrics(table: _Table, day: _Day) -> dq.DataQualityMetricsInputDatasetFacet:
    """The profile of an input as the run measured it while reading."""
    rows = _rows(table, day)
    columns = {"subject_id": dq.ColumnMetrics(nullCount=0, distinctCount=rows)}
    if table is APPLICATIONS:  # not every applicant declares an income
        columns["declared_income"] = dq.ColumnMetrics(nullCount=rows // 4)
    return _p(dq.DataQualityMetricsInputDatasetFacet, rowCount=rows, columnMetrics=columns)


def _output_statistics(table: _Table, day: _Day) -> output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet:
    rows = 0 if table.kind == "MODEL" else _rows(table, day)
    return _p(output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet,
              rowCount=rows or None, size=rows * table.row_bytes + table.fixed_bytes)


# -- fairness measurements ------------------------------------------------------------
#
# Every stage measures the same metric, the demographic parity difference: the
# reference group's rate of the stage's favourable outcome minus the group's.
# Favourable outcome: income at or above the median (applications: declared;
# demographics: the vendor's estimate), bureau score >= 650 (credit reports),
# debt_to_income <= 0.35 (features), no default (labels), approval (model).

FAIRNESS_METRIC = "demographic_parity_difference"
FAIRNESS_THRESHOLD = 0.1
_GROUPS = (("age_band", "18-25", "26-64"), ("age_band", "65+", "26-64"), ("sex", "F", "M"))
# stage -> (values before CHANGE_DAY, values from it), in _GROUPS order
_FAIRNESS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    APPLICATIONS.name: ((0.03, 0.02, 0.02), (0.03, 0.02, 0.02)),
    CREDIT_REPORTS.name: ((0.04, 0.03, 0.01), (0.04, 0.03, 0.01)),
    DEMOGRAPHICS.name: ((0.03, 0.02, 0.02), (0.17, 0.04, 0.02)),  # the vendor's skewed delivery
    CREDIT_FEATURES.name: ((0.04, 0.03, 0.02), (0.16, 0.04, 0.02)),  # propagated
    DEFAULT_LABELS.name: ((0.03, 0.02, 0.01), (0.03, 0.02, 0.01)),  # clean
    CREDIT_MODEL.name: ((0.05, 0.04, 0.02), (0.14, 0.05, 0.03)),
}


def fairness_values(stage: str, changed: bool) -> dict[tuple[str, str, str], float]:
    """(protectedAttribute, group, referenceGroup) -> value measured at a stage."""
    return dict(zip(_GROUPS, _FAIRNESS[stage][1 if changed else 0]))


def _fairness(table: _Table, day: _Day) -> FairnessDatasetFacet:
    return _p(FairnessDatasetFacet, metrics=[
        FairnessMetric(metric=FAIRNESS_METRIC, protectedAttribute=a, group=g, referenceGroup=r, value=v,
                       threshold=FAIRNESS_THRESHOLD)
        for (a, g, r), v in fairness_values(table.name, day.changed).items()
    ])


# -- column lineage -------------------------------------------------------------------


def _direct(table: _Table, column: str, subtype: str = "IDENTITY", description: str | None = None) -> cl.InputField:
    """An input column whose values flow into the output column."""
    return cl.InputField(namespace=table.namespace, name=table.name, field=column, transformations=[
        cl.Transformation(type="DIRECT", subtype=subtype, description=description, masking=False)
    ])


def _indirect(table: _Table, column: str, *subtypes: str) -> cl.InputField:
    """An input column that shapes the output without flowing into it (join keys, filters)."""
    return cl.InputField(namespace=table.namespace, name=table.name, field=column, transformations=[
        cl.Transformation(type="INDIRECT", subtype=s) for s in subtypes
    ])


def _column_lineage(fields: dict[str, list[cl.InputField]],
                    dataset: list[cl.InputField]) -> cl.ColumnLineageDatasetFacet:
    return _p(cl.ColumnLineageDatasetFacet,
              fields={out: cl.Fields(inputFields=inputs) for out, inputs in fields.items()},
              dataset=dataset)


def _applicant_profile_lineage(day: _Day) -> cl.ColumnLineageDatasetFacet:
    fields = {
        "application_id": [_direct(APPLICATIONS, "application_id")],
        "subject_id": [_direct(APPLICATIONS, "subject_id")],
        "age_band": [_direct(DEMOGRAPHICS, "age_band")],
        "sex": [_direct(DEMOGRAPHICS, "sex")],
        "region": [_direct(DEMOGRAPHICS, "region")],
        "declared_income": [_direct(APPLICATIONS, "declared_income")],
        "household_income_estimate": [_direct(DEMOGRAPHICS, "household_income_estimate")],
        "requested_amount": [_direct(APPLICATIONS, "requested_amount")],
        "term_months": [_direct(APPLICATIONS, "term_months")],
        "bureau_score": [_direct(CREDIT_REPORTS, "bureau_score")],
        "delinquencies_24m": [_direct(CREDIT_REPORTS, "delinquencies_24m")],
        "open_credit_lines": [_direct(CREDIT_REPORTS, "open_credit_lines")],
    }
    if day.changed:
        fields["employment_status"] = [_direct(APPLICATIONS, "employment_status")]
    return _column_lineage(fields, [
        _indirect(APPLICATIONS, "subject_id", "JOIN"),
        _indirect(CREDIT_REPORTS, "subject_id", "JOIN"),
        _indirect(CREDIT_REPORTS, "report_date", "FILTER"),
        _indirect(DEMOGRAPHICS, "subject_id", "JOIN"),
    ])


_DTI = "requested_amount / COALESCE(declared_income, household_income_estimate)"
_PTI = "instalment(requested_amount, term_months) / (COALESCE(declared_income, household_income_estimate) / 12)"


def _credit_features_lineage(_day: _Day) -> cl.ColumnLineageDatasetFacet:
    ap = APPLICANT_PROFILE
    return _column_lineage({
        "application_id": [_direct(ap, "application_id")],
        "subject_id": [_direct(ap, "subject_id")],
        "age_band": [_direct(ap, "age_band")],
        "debt_to_income": [_direct(ap, c, "TRANSFORMATION", _DTI)
                           for c in ("requested_amount", "declared_income", "household_income_estimate")],
        "payment_to_income": [_direct(ap, c, "TRANSFORMATION", _PTI)
                              for c in ("requested_amount", "term_months", "declared_income",
                                        "household_income_estimate")],
        "bureau_score": [_direct(ap, "bureau_score")],
        "delinquencies_24m": [_direct(ap, "delinquencies_24m")],
        "open_credit_lines": [_direct(ap, "open_credit_lines")],
    }, [])


def _default_labels_lineage(_day: _Day) -> cl.ColumnLineageDatasetFacet:
    d12 = "BOOL_OR(max_days_past_due >= 90 AND report_date <= submitted_at + INTERVAL '12 months')"
    fpd = "BOOL_OR(max_days_past_due >= 30 AND report_date <= submitted_at + INTERVAL '2 months')"
    return _column_lineage({
        "application_id": [_direct(APPLICATIONS, "application_id")],
        "subject_id": [_direct(APPLICATIONS, "subject_id")],
        "defaulted_12m": [_direct(CREDIT_REPORTS, "max_days_past_due", "AGGREGATION", d12)],
        "first_payment_default": [_direct(CREDIT_REPORTS, "max_days_past_due", "AGGREGATION", fpd)],
    }, [
        _indirect(APPLICATIONS, "subject_id", "JOIN"),
        _indirect(CREDIT_REPORTS, "subject_id", "JOIN"),
        _indirect(APPLICATIONS, "submitted_at", "FILTER"),
        _indirect(CREDIT_REPORTS, "report_date", "FILTER"),
        _indirect(APPLICATIONS, "application_id", "GROUP_BY"),
    ])


def _credit_decisions_lineage(_day: _Day) -> cl.ColumnLineageDatasetFacet:
    # prediction_id is minted by the endpoint, and age_band is no model input: neither has an entry
    predict = "model.predict_proba(features)[:, 1]"
    score = [_direct(CREDIT_FEATURES, c, "TRANSFORMATION", predict) for c in MODEL_INPUTS]
    return _column_lineage({
        "application_id": [_direct(CREDIT_FEATURES, "application_id")],
        "subject_id": [_direct(CREDIT_FEATURES, "subject_id")],
        "probability_of_default": score,
        "decision": [_direct(CREDIT_FEATURES, c, "TRANSFORMATION", f"{predict} < decisionThreshold")
                     for c in MODEL_INPUTS],
    }, [_indirect(CREDIT_FEATURES, "application_id", "JOIN")])


# -- code -------------------------------------------------------------------------------

_PROFILE_COLUMNS = """\
    a.application_id, a.subject_id,
    d.age_band, d.sex, d.region,
    a.declared_income, d.household_income_estimate,
    a.requested_amount, a.term_months,
    r.bureau_score, r.delinquencies_24m, r.open_credit_lines"""

_PROFILE_FROM = """
FROM raw.applications AS a
JOIN raw.credit_reports AS r
  ON r.subject_id = a.subject_id
 AND r.report_date = (SELECT MAX(report_date) FROM raw.credit_reports WHERE subject_id = a.subject_id)
JOIN raw.demographics AS d ON d.subject_id = a.subject_id"""


def _applicant_profile_sql(day: _Day) -> str:
    if not day.changed:
        return f"INSERT INTO analytics.applicant_profile\nSELECT\n{_PROFILE_COLUMNS}{_PROFILE_FROM}"
    return (f"INSERT INTO analytics.applicant_profile\nSELECT\n{_PROFILE_COLUMNS},\n"
            f"    a.employment_status{_PROFILE_FROM}")


_DEFAULT_LABELS_SQL = """\
INSERT INTO analytics.default_labels (application_id, subject_id, defaulted_12m, first_payment_default)
SELECT
    a.application_id,
    a.subject_id,
    BOOL_OR(r.max_days_past_due >= 90 AND r.report_date <= a.submitted_at + INTERVAL '12 months') AS defaulted_12m,
    BOOL_OR(r.max_days_past_due >= 30 AND r.report_date <= a.submitted_at + INTERVAL '2 months')
        AS first_payment_default
FROM raw.applications AS a
JOIN raw.credit_reports AS r ON r.subject_id = a.subject_id AND r.report_date > a.submitted_at
GROUP BY a.application_id, a.subject_id"""


@dataclass(frozen=True)
class TrainingConfig:
    """What a training run of a model is configured with."""

    algorithm: str
    framework: str
    hyperparameters: dict[str, Any]
    code_version: str
    image: str
    libraries: dict[str, str]
    random_seed: int
    target: str
    python: str = "3.11.9"


_CREDIT_TRAINING = (
    TrainingConfig(
        "gradient_boosting", "lightgbm 4.3.0",
        {"learning_rate": 0.05, "num_leaves": 31, "n_estimators": 400, "min_child_samples": 50, "reg_lambda": 1.0},
        _COMMIT_BASE, "registry.bank.example/credit-risk/train:2026.10.2",
        {"lightgbm": "4.3.0", "scikit-learn": "1.5.2", "pandas": "2.2.3"}, 42, "defaulted_12m",
    ),
    TrainingConfig(
        "gradient_boosting", "lightgbm 4.5.0",
        {"learning_rate": 0.1, "num_leaves": 63, "n_estimators": 600, "min_child_samples": 20, "reg_lambda": 1.0},
        _COMMIT_TRAINING_TUNED, "registry.bank.example/credit-risk/train:2026.11.0",
        {"lightgbm": "4.5.0", "scikit-learn": "1.5.2", "pandas": "2.2.3"}, 42, "defaulted_12m",
    ),
)
_FRAUD_TRAINING = TrainingConfig(
    "gradient_boosting", "xgboost 2.1.1",
    {"eta": 0.1, "max_depth": 5, "n_estimators": 300, "scale_pos_weight": 25.0},
    _COMMIT_BASE, "registry.bank.example/fraud/train:2026.09.1",
    {"xgboost": "2.1.1", "scikit-learn": "1.5.2", "pandas": "2.2.3"}, 7, "first_payment_default",
)


def credit_training_config(day_index: int) -> TrainingConfig:
    return _CREDIT_TRAINING[1 if day_index >= CHANGE_DAY else 0]


def fraud_training_config(_day_index: int) -> TrainingConfig:
    return _FRAUD_TRAINING


def _execution_parameters(config: TrainingConfig) -> params.ExecutionParametersRunFacet:
    """The task's runtime parameters (the model's hyperparameters are in provkg_training)."""
    return _p(params.ExecutionParametersRunFacet, parameters=[
        params.ExecutionParameter(key="target_column", value=config.target),
        params.ExecutionParameter(key="feature_columns", value=",".join(MODEL_INPUTS)),
        params.ExecutionParameter(key="training_window_days", value="730"),
        params.ExecutionParameter(key="validation_fraction", value="0.2"),
    ])


def _training_facet(config: TrainingConfig) -> TrainingRunFacet:
    return _p(TrainingRunFacet, hyperparameters=dict(config.hyperparameters), algorithm=config.algorithm,
              task="binary_classification", codeVersion=config.code_version,
              environment=TrainingEnvironment(python=config.python, image=config.image,
                                              libraries=dict(config.libraries)),
              randomSeed=config.random_seed)


_EVALUATION: dict[str, tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]]] = {
    CREDIT_MODEL.name: ((("auc", 0.781), ("accuracy", 0.842)), (("auc", 0.803), ("accuracy", 0.851))),
    FRAUD_MODEL.name: ((("auc", 0.912), ("precision_at_1pct", 0.47)),) * 2,
}


def evaluation_values(model: str, changed: bool) -> dict[str, float]:
    """metric -> value on the holdout split for a model version."""
    return dict(_EVALUATION[model][1 if changed else 0])


def _artifact_digest(model: _Table, version: str) -> str:
    return _sha256(f"{model.name}@{version}")


_INTENDED_PURPOSE = {
    CREDIT_MODEL.name: "Creditworthiness assessment of natural persons applying for consumer loans "
                       "(EU AI Act Annex III 5(b)).",
    FRAUD_MODEL.name: "Detection of application fraud (first-payment default) in consumer loan applications.",
}


def _model_version_facet(model: _Table, version: str, config: TrainingConfig, day: _Day) -> ModelVersionDatasetFacet:
    return _p(ModelVersionDatasetFacet, version=version, artifactDigest=_artifact_digest(model, version),
              framework=config.framework, intendedPurpose=_INTENDED_PURPOSE[model.name],
              provider="Example Bank plc", highRisk=model is CREDIT_MODEL,
              trainingDataDescription=f"{CREDIT_FEATURES.name} {day.date} with {DEFAULT_LABELS.name} "
                                      f"{day.date} ({config.target}), applications on file up to {day.date}.")


# -- predictions -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Pred:
    """One prediction of the scoring endpoint: when (offset from the day's start), about whom, tier, output."""

    offset: timedelta
    subject: str
    tier: str
    output: float | None = None

    @property
    def consequential(self) -> bool:
        # credit decisions are consequential and captured in full; pre-qualification
        # quotes are sampled; marketing pre-screens keep only the model version
        return self.tier == "FULL_SNAPSHOT"


_PREDICTIONS: dict[int, tuple[_Pred, ...]] = {
    0: (
        _Pred(_hms(7, 14, 5), WITHDRAWN_SUBJECT, "FULL_SNAPSHOT", 0.31),
        _Pred(_hms(7, 31, 40), "subj-0003", "FULL_SNAPSHOT", 0.08),
        _Pred(_hms(8, 2, 11), "subj-0013", "SAMPLED", 0.12),
        _Pred(_hms(9, 47, 53), "subj-0021", "MODEL_VERSION_ONLY"),
        _Pred(_hms(11, 5, 29), "subj-0008", "FULL_SNAPSHOT", 0.05),
        _Pred(_hms(13, 22, 48), "subj-0005", "MODEL_VERSION_ONLY"),
    ),
    1: (
        _Pred(_hms(6, 41, 2), "subj-0055", "FULL_SNAPSHOT", 0.29),
        _Pred(_hms(7, 58, 37), "subj-0089", "FULL_SNAPSHOT", 0.07),
        _Pred(_hms(9, 13, 44), WITHDRAWN_SUBJECT, "MODEL_VERSION_ONLY"),
        _Pred(_hms(10, 36, 20), "subj-0002", "SAMPLED", 0.18),
        _Pred(_hms(12, 9, 15), "subj-0001", "FULL_SNAPSHOT", 0.11),
        _Pred(_hms(14, 50, 58), "subj-0013", "MODEL_VERSION_ONLY"),
    ),
}
DECISION_THRESHOLD = 0.25
_INFERENCE_WINDOW = (_hms(4), _hms(16))  # 06:00-18:00 by default


def _predictions(day: _Day) -> tuple[_Pred, ...]:
    if day.index in _PREDICTIONS:
        return _PREDICTIONS[day.index]
    newcomer = _newcomers(day.index)[0][0]
    return (_Pred(_hms(7, 5), newcomer, "FULL_SNAPSHOT", 0.21),
            _Pred(_hms(9, 30), "subj-0003", "SAMPLED", 0.09),
            _Pred(_hms(12, 15), "subj-0008", "MODEL_VERSION_ONLY"))


def prediction_id(day: _Day | datetime, n: int) -> str:
    date = day.date if isinstance(day, _Day) else day.date().isoformat()
    return f"pred-{date}-{n:03d}"


def _snapshot_uri(day: _Day, pid: str) -> str:
    return f"s3://prediction-store/{SERVING_JOB}/{day.date}/{pid}.json"


def _features(pid: str) -> dict:
    """The feature vector a full-snapshot prediction was made from (personal
    data: provkg seals it with the subject's key on ingest)."""
    h = hashlib.sha256(pid.encode()).digest()
    return {"debt_to_income": round(0.1 + h[0] / 512, 3), "payment_to_income": round(0.05 + h[1] / 1024, 3),
            "bureau_score": 450 + (h[2] * 3) // 2, "delinquencies_24m": h[3] % 4, "open_credit_lines": 1 + h[4] % 9}


def _inference_facet(day: _Day) -> InferenceRunFacet:
    predictions = []
    for n, p in enumerate(_predictions(day), start=1):
        pid = prediction_id(day, n)
        snapshot = (FeatureSnapshot(uri=_snapshot_uri(day, pid), digest=_sha256(f"features of {pid}"),
                                    features=_features(pid) if p.tier == "FULL_SNAPSHOT" else None)
                    if p.tier in ("FULL_SNAPSHOT", "SAMPLED") else None)
        predictions.append(Prediction(predictionId=pid, timestamp=_iso(day.at(p.offset)), captureTier=p.tier,
                                      dataSubject=p.subject, output=p.output, consequential=p.consequential,
                                      featureSnapshot=snapshot))
    return _p(InferenceRunFacet, deploymentId=deployment_id(credit_model_version(day.index)),
              predictions=predictions)


# -- the jobs -----------------------------------------------------------------------


SERVING_JOB = "credit-scoring-prod"
_ENDPOINT = "https://credit-scoring-prod.models.bank.example/v1/models/credit-default:predict"
CONSENT_JOB = "consent_changes.publish"


def _task(name: str) -> str:
    return f"{DAG_NAME}.{name}"


def _job_facets(description: str, owner: str, job_type: tuple[str, str, str], sql: str | None = None,
                code: tuple[str, str] | None = None) -> dict[str, Any]:
    """``job_type``: (processingType, integration, jobType); ``code``: (path, commit)."""
    facets: dict[str, Any] = {
        "documentation": _p(documentation_job.DocumentationJobFacet, description=description),
        "jobType": _p(job_type_job.JobTypeJobFacet, processingType=job_type[0], integration=job_type[1],
                      jobType=job_type[2]),
        "ownership": _p(ownership_job.OwnershipJobFacet, owners=[ownership_job.Owner(name=owner, type="MAINTAINER")]),
    }
    if sql:
        facets["sql"] = _p(sql_job.SQLJobFacet, query=sql, dialect="postgres")
    if code:
        path, commit = code
        facets["sourceCodeLocation"] = _p(
            source_code_location_job.SourceCodeLocationJobFacet, type="git",
            url=f"{_REPO}/blob/{commit}/{path}", repoUrl=f"{_REPO}.git", path=path, version=commit, branch="main",
        )
    return facets


def etl_code_version(day_index: int) -> str:
    return _COMMIT_ETL_EMPLOYMENT if day_index >= CHANGE_DAY else _COMMIT_BASE


# -- runs and events ------------------------------------------------------------------


@dataclass(frozen=True)
class _Io:
    """A dataset a run reads or writes: which version, and the facets known once the run is done."""

    table: _Table
    version: str
    done: dict[str, Any] = field(default_factory=dict)  # dataset facets
    done_io: dict[str, Any] = field(default_factory=dict)  # inputFacets / outputFacets


@dataclass(frozen=True)
class _RunSpec:
    """One run: its job, when it starts and ends, what it reads and writes and its facets."""

    namespace: str
    job: str
    job_facets: dict[str, Any]
    start: datetime
    end: datetime
    engine: tuple[str, str, str]
    inputs: tuple[_Io, ...] = ()
    outputs: tuple[_Io, ...] = ()
    run_facets: dict[str, Any] = field(default_factory=dict)  # on START and COMPLETE
    done_facets: dict[str, Any] = field(default_factory=dict)  # on COMPLETE only

    @property
    def run_id(self) -> str:
        return _run_id(self.job, self.start)


def _nominal_time(day: _Day) -> nominal_time_run.NominalTimeRunFacet:
    return _p(nominal_time_run.NominalTimeRunFacet, nominalStartTime=_iso(day.start),
              nominalEndTime=_iso(day.start + timedelta(days=1)))


def _engine(engine: tuple[str, str, str]) -> processing_engine_run.ProcessingEngineRunFacet:
    return _p(processing_engine_run.ProcessingEngineRunFacet, name=engine[0], version=engine[1],
              openlineageAdapterVersion=engine[2])


def _dag_parent(day: _Day) -> parent_run.ParentRunFacet:
    """Every task run is part of the day's DAG run, which is also the root."""
    dag_run_id = _run_id(DAG_NAME, day.start)
    return _p(parent_run.ParentRunFacet,
              run=parent_run.Run(runId=dag_run_id),
              job=parent_run.Job(namespace=JOB_NAMESPACE, name=DAG_NAME),
              root=parent_run.Root(run=parent_run.RootRun(runId=dag_run_id),
                                   job=parent_run.RootJob(namespace=JOB_NAMESPACE, name=DAG_NAME)))


def _events_of(spec: _RunSpec, day: _Day) -> list[tuple[datetime, RunEvent]]:
    job = Job(namespace=spec.namespace, name=spec.job, facets=spec.job_facets)
    events = []
    for state, moment, done in ((RunState.START, spec.start, False), (RunState.COMPLETE, spec.end, True)):
        run_facets = {"processing_engine": _engine(spec.engine), **spec.run_facets,
                      **(spec.done_facets if done else {})}
        inputs = [
            InputDataset(namespace=io.table.namespace, name=io.table.name,
                         facets={**_dataset_facets(io.table, day), "version": _version(io.version),
                                 **(io.done if done else {})},
                         inputFacets=io.done_io if done else {})
            for io in spec.inputs
        ]
        # an output's version, lineage and statistics exist once the run has written it
        outputs = [
            OutputDataset(namespace=io.table.namespace, name=io.table.name,
                          facets={**_dataset_facets(io.table, day),
                                  **({"version": _version(io.version), **io.done} if done else {})},
                          outputFacets=io.done_io if done else {})
            for io in spec.outputs
        ]
        event = RunEvent(eventType=state, eventTime=_iso(moment), producer=DEMO_PRODUCER,
                         run=Run(runId=spec.run_id, facets=run_facets), job=job, inputs=inputs, outputs=outputs)
        events.append((moment, event))
    return events


def _read(table: _Table, day: _Day, version: str | None = None, **done: Any) -> _Io:
    io = {"dataQualityMetrics": _quality_metrics(table, day)} if table.kind not in ("MODEL",) else {}
    return _Io(table, version or day.date, done=done, done_io=io)


def _write(table: _Table, day: _Day, version: str | None = None, **done: Any) -> _Io:
    return _Io(table, version or day.date, done=done, done_io={"outputStatistics": _output_statistics(table, day)})


def _dag_task(day: _Day, name: str, description: str, owner: str, job_type: tuple[str, str, str],
              window: tuple[timedelta, timedelta], engine: tuple[str, str, str], inputs: tuple[_Io, ...],
              outputs: tuple[_Io, ...], sql: str | None = None, code: tuple[str, str] | None = None,
              run_facets: dict[str, Any] | None = None, done_facets: dict[str, Any] | None = None) -> _RunSpec:
    return _RunSpec(
        JOB_NAMESPACE, _task(name), _job_facets(description, owner, job_type, sql, code),
        day.at(window[0]), day.at(window[1]), engine, inputs, outputs,
        {"nominalTime": _nominal_time(day), "parent": _dag_parent(day), **(run_facets or {})},
        done_facets or {},
    )


# Offsets of each task from the DAG run's start.
_WINDOWS = {
    "build_applicant_profile": (_hms(0, 1), _hms(0, 9)),
    "label_defaults": (_hms(0, 1, 30), _hms(0, 7)),
    "build_credit_features": (_hms(0, 10), _hms(0, 25)),
    "train_credit_model": (_hms(0, 26), _hms(1, 5)),
    "train_fraud_model": (_hms(0, 27), _hms(0, 50)),
    "evaluate_fraud_model": (_hms(0, 51), _hms(0, 55)),
    "evaluate_credit_model": (_hms(1, 6), _hms(1, 11)),
    "deploy_credit_model": (_hms(1, 12), _hms(1, 14)),
}
_DAG_WINDOW = (_hms(0), _hms(1, 15))
_CONSENT_EXPORT_WINDOW = (-_hms(0, 30), -_hms(0, 29, 55))  # 01:30 by default, before the DAG
_WITHDRAWAL_PUBLISHED = (WITHDRAWAL_OFFSET + _hms(0, 0, 13), WITHDRAWAL_OFFSET + _hms(0, 0, 14))


def _pipeline_runs(day: _Day) -> list[_RunSpec]:
    """The DAG's task runs of one day."""
    credit_version = credit_model_version(day.index)
    credit_config = credit_training_config(day.index)
    runs = [
        _dag_task(day, "build_applicant_profile",
                  "Join each application with the applicant's bureau report and the vendor's demographics.",
                  "team:data-platform", ("BATCH", "AIRFLOW", "TASK"), _WINDOWS["build_applicant_profile"],
                  _AIRFLOW,
                  # the reading run profiles each source, incl. its fairness by age band and sex
                  tuple(_read(t, day, provkg_fairness=_fairness(t, day))
                        for t in (APPLICATIONS, CREDIT_REPORTS, DEMOGRAPHICS)),
                  (_write(APPLICANT_PROFILE, day, columnLineage=_applicant_profile_lineage(day)),),
                  sql=_applicant_profile_sql(day),
                  code=("dags/sql/applicant_profile.sql", etl_code_version(day.index))),
        _dag_task(day, "label_defaults",
                  "Label each application by the applicant's repayment in later bureau reports.",
                  "team:credit-risk-ml", ("BATCH", "AIRFLOW", "LABELLING"), _WINDOWS["label_defaults"], _AIRFLOW,
                  (_read(APPLICATIONS, day), _read(CREDIT_REPORTS, day)),
                  (_write(DEFAULT_LABELS, day, columnLineage=_default_labels_lineage(day),
                          provkg_fairness=_fairness(DEFAULT_LABELS, day)),),
                  sql=_DEFAULT_LABELS_SQL, code=("dags/sql/default_labels.sql", _COMMIT_BASE)),
        _dag_task(day, "build_credit_features", "Spark job computing the per-application credit features.",
                  "team:credit-risk-ml", ("BATCH", "SPARK", "FEATURE_ENGINEERING"),
                  _WINDOWS["build_credit_features"], _SPARK,
                  (_read(APPLICANT_PROFILE, day),),
                  (_write(CREDIT_FEATURES, day, columnLineage=_credit_features_lineage(day),
                          provkg_fairness=_fairness(CREDIT_FEATURES, day)),),
                  code=("spark/build_credit_features.py", _COMMIT_BASE)),
        _dag_task(day, "train_credit_model", "Train the probability-of-default model and register the version.",
                  "team:credit-risk-ml", ("BATCH", "AIRFLOW", "TRAINING"), _WINDOWS["train_credit_model"],
                  _AIRFLOW,
                  (_read(CREDIT_FEATURES, day), _read(DEFAULT_LABELS, day)),
                  (_write(CREDIT_MODEL, day, credit_version,
                          provkg_modelVersion=_model_version_facet(CREDIT_MODEL, credit_version, credit_config,
                                                                   day)),),
                  code=("ml/train_credit_model.py", credit_config.code_version),
                  run_facets={"executionParameters": _execution_parameters(credit_config),
                              "provkg_training": _training_facet(credit_config)}),
    ]
    if day.trains_fraud:
        fraud_version = fraud_model_version(day.index)
        fraud_config = fraud_training_config(day.index)
        runs += [
            _dag_task(day, "train_fraud_model", "Weekly: train the application-fraud model on the credit features.",
                      "team:fraud-analytics", ("BATCH", "AIRFLOW", "TRAINING"), _WINDOWS["train_fraud_model"],
                      _AIRFLOW,
                      (_read(CREDIT_FEATURES, day), _read(DEFAULT_LABELS, day)),
                      (_write(FRAUD_MODEL, day, fraud_version,
                              provkg_modelVersion=_model_version_facet(FRAUD_MODEL, fraud_version, fraud_config,
                                                                       day)),),
                      code=("ml/train_fraud_model.py", fraud_config.code_version),
                      run_facets={"executionParameters": _execution_parameters(fraud_config),
                                  "provkg_training": _training_facet(fraud_config)}),
            # the fraud team measures no fairness: only the model's performance
            _dag_task(day, "evaluate_fraud_model", "Evaluate the new fraud model version on the holdout split.",
                      "team:fraud-analytics", ("BATCH", "AIRFLOW", "EVALUATION"), _WINDOWS["evaluate_fraud_model"],
                      _AIRFLOW,
                      (_Io(FRAUD_MODEL, fraud_version, done={"provkg_evaluation": _evaluation(FRAUD_MODEL, day)}),),
                      (), code=("ml/evaluate.py", _COMMIT_BASE)),
        ]
    runs += [
        _dag_task(day, "evaluate_credit_model",
                  "Evaluate the new credit model version: performance and fairness on the holdout split.",
                  "team:credit-risk-ml", ("BATCH", "AIRFLOW", "EVALUATION"), _WINDOWS["evaluate_credit_model"],
                  _AIRFLOW,
                  (_Io(CREDIT_MODEL, credit_version, done={"provkg_evaluation": _evaluation(CREDIT_MODEL, day),
                                                           "provkg_fairness": _fairness(CREDIT_MODEL, day)}),),
                  (), code=("ml/evaluate.py", _COMMIT_BASE)),
        _dag_task(day, "deploy_credit_model", "Roll the new credit model version out to the scoring endpoint.",
                  "team:mlops", ("BATCH", "AIRFLOW", "DEPLOYMENT"), _WINDOWS["deploy_credit_model"], _AIRFLOW,
                  (_Io(CREDIT_MODEL, credit_version),), (), code=("dags/deploy_model.py", _COMMIT_BASE),
                  done_facets={"provkg_deployment": _deployment_facet(day)}),
    ]
    return runs


def _evaluation(model: _Table, day: _Day) -> EvaluationDatasetFacet:
    return _p(EvaluationDatasetFacet, metrics=[
        EvaluationMetric(metric=m, value=v, split="holdout")
        for m, v in evaluation_values(model.name, day.changed).items()
    ])


def deployed_at(day: _Day) -> datetime:
    return day.at(_WINDOWS["deploy_credit_model"][1])


def _deployment_facet(day: _Day) -> DeploymentRunFacet:
    return _p(DeploymentRunFacet, deploymentId=deployment_id(credit_model_version(day.index)),
              activeFrom=_iso(deployed_at(day)), endpoint=_ENDPOINT, environment="prod",
              servingConfig={"runtime": "kserve-lgbserver", "minReplicas": 2, "maxReplicas": 6,
                             "trafficPercent": 100, "decisionThreshold": DECISION_THRESHOLD})


def _inference_run(day: _Day) -> _RunSpec:
    version = credit_model_version(day.index)
    return _RunSpec(
        SERVING_NAMESPACE, SERVING_JOB,
        _job_facets("Online credit scoring: one run per business day, reporting the day's predictions.",
                    "team:mlops", ("SERVICE", "KSERVE", "INFERENCE")),
        day.at(_INFERENCE_WINDOW[0]), day.at(_INFERENCE_WINDOW[1]), _KSERVE,
        inputs=(_Io(CREDIT_MODEL, version), _read(CREDIT_FEATURES, day)),
        outputs=(_write(CREDIT_DECISIONS, day, columnLineage=_credit_decisions_lineage(day)),),
        done_facets={"provkg_inference": _inference_facet(day)},
    )


def _consent_job() -> dict[str, Any]:
    return _job_facets("Publishes consent changes from the bank's consent-management platform.", "team:privacy",
                       ("BATCH", "CONSENT_HUB", "CONSENT_EXPORT"))


def _consent_record(subject: str, status: str, at: datetime) -> ConsentRecord:
    return ConsentRecord(subject=subject, status=status, at=_iso(at), purposes=[_TRAINING_PURPOSE],
                         legalBasis=_CONSENT_BASIS)


def _consent_runs(day: _Day) -> list[_RunSpec]:
    """The nightly export of the consents given since the previous one; on day 1 also the
    withdrawal, which the service publishes as soon as it is made."""
    runs = [_RunSpec(
        CONSENT_NAMESPACE, CONSENT_JOB, _consent_job(),
        day.at(_CONSENT_EXPORT_WINDOW[0]), day.at(_CONSENT_EXPORT_WINDOW[1]), _CONSENT_HUB,
        run_facets={"nominalTime": _nominal_time(day)},
        done_facets={"provkg_consent": _p(ConsentRunFacet, records=[
            _consent_record(s, "GIVEN", at) for s, at in _consent_given(day)])},
    )]
    if day.index == 0:
        runs.append(_RunSpec(
            CONSENT_NAMESPACE, CONSENT_JOB, _consent_job(),
            day.at(_WITHDRAWAL_PUBLISHED[0]), day.at(_WITHDRAWAL_PUBLISHED[1]), _CONSENT_HUB,
            done_facets={"provkg_consent": _p(ConsentRunFacet, records=[
                _consent_record(WITHDRAWN_SUBJECT, "WITHDRAWN", day.at(WITHDRAWAL_OFFSET))])},
        ))
    return runs


def _dag_events(day: _Day) -> list[tuple[datetime, RunEvent]]:
    job = Job(namespace=JOB_NAMESPACE, name=DAG_NAME, facets=_job_facets(
        "Daily credit-risk pipeline: applicant profile, labels, features, training, evaluation and deployment.",
        "team:data-platform", ("BATCH", "AIRFLOW", "DAG"), code=("dags/credit_risk_daily.py", _COMMIT_BASE)))
    run = Run(runId=_run_id(DAG_NAME, day.start), facets={"nominalTime": _nominal_time(day),
                                                           "processing_engine": _engine(_AIRFLOW)})
    return [
        (day.at(offset), RunEvent(eventType=state, eventTime=_iso(day.at(offset)), producer=DEMO_PRODUCER,
                                  run=run, job=job))
        for state, offset in ((RunState.START, _DAG_WINDOW[0]), (RunState.COMPLETE, _DAG_WINDOW[1]))
    ]


def _days(days: int, start: datetime | None) -> list[_Day]:
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"days must be an int >= 0, got {days!r}")
    first = start or DEFAULT_START
    if first.tzinfo is None:
        first = first.replace(tzinfo=timezone.utc)
    return [_Day(i, first + timedelta(days=i)) for i in range(days)]


def demo_events(days: int = 2, start: datetime | None = None) -> list[dict]:
    """The demo estate's lineage as OpenLineage 2-0-2 RunEvents.

    Inputs: ``days``, how many days of the estate to report (an int >= 0);
    ``start``, when the first day's DAG run is scheduled (default
    2026-11-01T02:00:00Z; a naive datetime is read as UTC), the next days
    following at 24-hour intervals. Every other time of a day is an offset
    from its start (the consent export runs 30 minutes before it).

    Output: a list of events as plain JSON-ready dicts (``Serde.to_dict`` of
    openlineage-python ``event_v2.RunEvent``), ordered by ``eventTime``, a
    START and a COMPLETE per run. Per day: the consent export, the DAG run and
    its tasks (ETL, labelling, feature engineering, credit-model training,
    evaluation, deployment; on fraud days also fraud-model training and
    evaluation) and the endpoint's inference run; on day 1 also the
    publication of ``subj-0042``'s consent withdrawal. That is 20 events on
    day 1, 22 on day 2 (42 for the default two days), then 18 a day (22 on
    fraud days: every 7th day from day 2). Day ``d`` (0-based)
    trains credit model version ``str(d + 1)``. Times are UTC ISO 8601 with
    milliseconds; row counts are rows, sizes are bytes.

    Deterministic: the same arguments give identical events. Raises
    ``ValueError`` for a negative ``days``.
    """
    timed: list[tuple[datetime, RunEvent]] = []
    for day in _days(days, start):
        timed.extend(_dag_events(day))
        for spec in _consent_runs(day) + _pipeline_runs(day) + [_inference_run(day)]:
            timed.extend(_events_of(spec, day))
    timed.sort(key=lambda pair: pair[0])  # stable: a DAG START stays before its tasks
    return [Serde.to_dict(event) for _, event in timed]


# -- known answers ------------------------------------------------------------------------


def _known_answers() -> dict[str, Any]:
    """What the governance questions answer on ``demo_events()`` (two days from the default
    start), in provkg's IRIs under the default base. Derived from the same tables as the events."""
    iri = IriMinter()
    day1, day2 = _days(2, None)

    def ds(t: _Table) -> str:
        return iri.dataset(t.namespace, t.name).value

    def ver(t: _Table, version: str) -> str:
        return iri.dataset_version(iri.dataset(t.namespace, t.name), version).value

    def col(t: _Table, column: str) -> str:
        return iri.column(iri.dataset(t.namespace, t.name), column).value

    def run_of(job: str, day: _Day, window: tuple[timedelta, timedelta]) -> str:
        return iri.run(_run_id(job, day.at(window[0]))).value

    def job(name: str, namespace: str = JOB_NAMESPACE) -> str:
        return iri.job(namespace, name).value

    def train_run(day: _Day) -> str:
        return run_of(_task("train_credit_model"), day, _WINDOWS["train_credit_model"])

    def mint(kind: str, *keys: str) -> str:
        return iri.mint(kind, *keys).value

    sources = (APPLICATIONS, CREDIT_REPORTS, DEMOGRAPHICS)
    days = (day1, day2)
    v1, v2 = credit_model_version(0), credit_model_version(1)
    fraud_v = fraud_model_version(FRAUD_DAY)
    dep1, dep2 = deployment_id(v1), deployment_id(v2)
    preds = {d.index: [(prediction_id(d, n), p, d) for n, p in enumerate(_predictions(d), start=1)] for d in days}
    all_preds = preds[0] + preds[1]
    full2 = next((pid, p, d) for pid, p, d in preds[1] if p.tier == "FULL_SNAPSHOT")
    withdrawn_at = day1.at(WITHDRAWAL_OFFSET)
    consent_given_at = next(day1.at(o) for s, o in _COHORT if s == WITHDRAWN_SUBJECT)
    fairness_key = ("age_band", "18-25", "26-64")
    config1, config2 = credit_training_config(0), credit_training_config(1)

    def transformations(day: _Day) -> list[dict[str, str]]:
        out = []
        for name, code in (("build_applicant_profile", etl_code_version(day.index)),
                           ("label_defaults", _COMMIT_BASE), ("build_credit_features", _COMMIT_BASE)):
            out.append({"job": job(_task(name)), "run": run_of(_task(name), day, _WINDOWS[name]),
                        "codeVersion": code})
        return out

    def stage(t: _Table, day: _Day, version: str | None = None) -> dict[str, Any]:
        value = fairness_values(t.name, day.changed)[fairness_key]
        return {"entity": ver(t, version or day.date), "value": value, "exceedsThreshold": value > FAIRNESS_THRESHOLD}

    models_on_subject = [ver(CREDIT_MODEL, v1), ver(CREDIT_MODEL, v2), ver(FRAUD_MODEL, fraud_v)]
    return {
        "days": 2,
        "start": _iso(DEFAULT_START),
        "events": 42,
        "base": iri.base,
        "subjects": _subjects(1),
        "withdrawn_subject": WITHDRAWN_SUBJECT,
        "consent_given_at": _iso(consent_given_at),
        "consent_withdrawn_at": _iso(withdrawn_at),
        "model": ds(CREDIT_MODEL),
        "model_versions": {v1: ver(CREDIT_MODEL, v1), v2: ver(CREDIT_MODEL, v2)},
        "fraud_model_version": ver(FRAUD_MODEL, fraud_v),
        "training_runs": {v1: train_run(day1), v2: train_run(day2)},
        "training_started": {v1: _iso(day1.at(_WINDOWS["train_credit_model"][0])),
                             v2: _iso(day2.at(_WINDOWS["train_credit_model"][0]))},
        "deployments": {v1: dep1, v2: dep2},
        "deployment": dep2,
        "deployment_iri": mint("deployment", dep2),
        "full_snapshot_prediction": full2[0],
        "full_snapshot_prediction_iri": mint("prediction", full2[0]),
        "biased_source": ds(DEMOGRAPHICS),
        "biased_source_version": ver(DEMOGRAPHICS, day2.date),
        "first_biased_stage": "source",
        "first_biased_stage_bias": "https://w3id.org/dpv/ai#DataBias",
        "q1_prediction_provenance": {
            "prediction": mint("prediction", full2[0]),
            "timestamp": _iso(full2[2].at(full2[1].offset)),
            "dataSubject": full2[1].subject,
            "captureTier": full2[1].tier,
            "featureSnapshot": _snapshot_uri(day2, full2[0]),
            "inference_run": iri.run(_inference_run(day2).run_id).value,
            "deployment": mint("deployment", dep2),
            "deployment_active_from": _iso(deployed_at(day2)),
            "model_version": ver(CREDIT_MODEL, v2),
            "training_run": train_run(day2),
            "hyperparameters": dict(config2.hyperparameters),
            "environment": {"python": config2.python, "image": config2.image, "libraries": dict(config2.libraries)},
            "training_code_version": config2.code_version,
            "training_data": [ver(CREDIT_FEATURES, day2.date), ver(DEFAULT_LABELS, day2.date)],
            "features": [col(CREDIT_FEATURES, c) for c in MODEL_INPUTS],
            "transformations": transformations(day2),
            "intermediate_versions": [ver(APPLICANT_PROFILE, day2.date)],
            "source_versions": [ver(t, day2.date) for t in sources],
        },
        "q2_forward_impact": {
            "from_dataset": ds(DEMOGRAPHICS),
            "datasets": [ds(APPLICANT_PROFILE), ds(CREDIT_FEATURES), ds(CREDIT_MODEL), ds(FRAUD_MODEL),
                         ds(CREDIT_DECISIONS)],
            "not_reached": [ds(DEFAULT_LABELS)],
            "model_versions": models_on_subject,
            "deployments": [mint("deployment", dep1), mint("deployment", dep2)],
            "predictions": len(all_preds),
            "as_of": _iso(day1.start.replace(hour=23, minute=59, second=59)),
            "predictions_as_of": len(preds[0]),
            "model_versions_as_of": [ver(CREDIT_MODEL, v1)],
            "deployments_as_of": [mint("deployment", dep1)],
            "from_version": ver(DEMOGRAPHICS, day2.date),
            "predictions_from_version": len(preds[1]),
            "model_versions_from_version": [ver(CREDIT_MODEL, v2), ver(FRAUD_MODEL, fraud_v)],
            "from_column": col(DEMOGRAPHICS, "household_income_estimate"),
            "columns": [col(APPLICANT_PROFILE, "household_income_estimate"), col(CREDIT_FEATURES, "debt_to_income"),
                        col(CREDIT_FEATURES, "payment_to_income"),
                        col(CREDIT_DECISIONS, "probability_of_default"), col(CREDIT_DECISIONS, "decision")],
            "dead_end_column": col(APPLICATIONS, "employment_status"),
            "dead_end_columns": [col(APPLICANT_PROFILE, "employment_status")],
            "from_job": job(_task("build_credit_features")),
            "predictions_from_job": len(all_preds),
        },
        "q3_erasure": {
            "subject": WITHDRAWN_SUBJECT,  # stored under a pseudonym: look it up in the store's key store
            "holding": [ver(t, d.date) for t in sources for d in days],
            "derived": [ver(t, d.date) for t in (APPLICANT_PROFILE, DEFAULT_LABELS, CREDIT_FEATURES,
                                                  CREDIT_DECISIONS) for d in days] + models_on_subject,
            "model_versions": models_on_subject,
            "deployments": [mint("deployment", dep1), mint("deployment", dep2)],
            "predictions": [mint("prediction", pid) for pid, p, _ in all_preds if p.subject == WITHDRAWN_SUBJECT],
            # every prediction was made by a model version trained on the subject's data
            "predictions_by_affected_models": len(all_preds),
            "violations": [ver(CREDIT_MODEL, v2), ver(FRAUD_MODEL, fraud_v)],
            "not_violations": [ver(CREDIT_MODEL, v1)],
        },
        "q4_bias": {
            "model_version": ver(CREDIT_MODEL, v2),
            "metric": FAIRNESS_METRIC,
            "protectedAttribute": fairness_key[0],
            "group": fairness_key[1],
            "referenceGroup": fairness_key[2],
            "threshold": FAIRNESS_THRESHOLD,
            "value": fairness_values(CREDIT_MODEL.name, True)[fairness_key],
            "stages": {
                "source": [stage(t, day2) for t in sources],
                "feature_engineering": [stage(CREDIT_FEATURES, day2)],
                "labelling": [stage(DEFAULT_LABELS, day2)],
            },
            "model_stage": stage(CREDIT_MODEL, day2, v2),
            "first_biased_stage": "source",
            "bias": "https://w3id.org/dpv/ai#DataBias",
            "cause": ver(DEMOGRAPHICS, day2.date),
            "cause_columns": [col(DEMOGRAPHICS, "household_income_estimate"), col(DEMOGRAPHICS, "age_band")],
            "other_models": [ver(FRAUD_MODEL, fraud_v)],
        },
        "q5_version_diff": {
            "from": ver(CREDIT_MODEL, v1),
            "to": ver(CREDIT_MODEL, v2),
            "training_data": {ver(t, day1.date): ver(t, day2.date) for t in (CREDIT_FEATURES, DEFAULT_LABELS)},
            "schema_changes": {ds(APPLICATIONS): ["+employment_status"],
                               ds(APPLICANT_PROFILE): ["+employment_status"]},
            "code_versions": {
                job(_task("train_credit_model")): [config1.code_version, config2.code_version],
                job(_task("build_applicant_profile")): [etl_code_version(0), etl_code_version(1)],
            },
            "hyperparameters": {k: [config1.hyperparameters.get(k), config2.hyperparameters.get(k)]
                                for k in config1.hyperparameters
                                if config1.hyperparameters.get(k) != config2.hyperparameters.get(k)},
            "libraries": {k: [config1.libraries.get(k), config2.libraries.get(k)] for k in config1.libraries
                          if config1.libraries.get(k) != config2.libraries.get(k)},
            "metrics": {**{m: [evaluation_values(CREDIT_MODEL.name, False)[m],
                               evaluation_values(CREDIT_MODEL.name, True)[m]]
                           for m in evaluation_values(CREDIT_MODEL.name, False)},
                        f"{FAIRNESS_METRIC}/age_band=18-25": [
                            fairness_values(CREDIT_MODEL.name, False)[fairness_key],
                            fairness_values(CREDIT_MODEL.name, True)[fairness_key]]},
        },
    }


KNOWN_ANSWERS: dict[str, Any] = _known_answers()


__all__ = [
    "DEMO_PRODUCER",
    "KNOWN_ANSWERS",
    "demo_events",
    "ConsentRunFacet",
    "DataSubjectsDatasetFacet",
    "DeploymentRunFacet",
    "EvaluationDatasetFacet",
    "FairnessDatasetFacet",
    "InferenceRunFacet",
    "ModelVersionDatasetFacet",
    "PolicyDatasetFacet",
    "TrainingRunFacet",
]
