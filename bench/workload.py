"""Benchmark workload: a seedable, realistic ML-platform estate as OpenLineage events.

The estate grows with the number of events asked for (not only its history):
``P`` pipelines (one Airflow DAG each, in one of several business domains),
``S`` shared raw sources, one model or two per pipeline, and a pool of data
subjects, over ``D`` days of daily runs; ``P`` and ``D`` both grow like the
square root of the event count (10k events: ~16 pipelines over ~33 days; 1M:
~160 pipelines over ~330 days). Per pipeline and day:

- ETL (``build_profile``): reads 2-4 raw sources (a source feeds several
  pipelines: fan-out) and writes the pipeline's profile table, with column
  lineage (DIRECT per column, INDIRECT join keys);
- labelling: reads 1-2 sources, writes the labels table (column lineage,
  fairness);
- feature engineering: reads the profile and, for about a third of the
  pipelines, another pipeline's profile as last published (yesterday's
  version: fan-in); writes the feature set with
  column lineage and fairness;
- training of the pipeline's model (daily) and, in half the pipelines, of a
  second model (weekly): ``provkg_training``, ``executionParameters`` and a new
  ``provkg_modelVersion``; hyperparameters, libraries and code versions drift;
- evaluation of each new model version (``provkg_evaluation``,
  ``provkg_fairness``), deployment of the daily model (``provkg_deployment``);
- the serving endpoint's INFERENCE run (``provkg_inference``): 3-8 predictions
  about data subjects in the three capture tiers, with ``featureSnapshot`` for
  FULL_SNAPSHOT and SAMPLED, writing the decisions table (column lineage).

Raw sources carry ``provkg_dataSubjects`` (who the day's delivery holds) and
``provkg_policy``; a consent service reports consents given and, now and then,
withdrawn (``provkg_consent``). Sources change schema now and then (a new
column), and deliveries are sometimes skewed against a group (the skew
propagates into features and the model's fairness measurement, so
bias-attribution has findings). About 2 % of task runs FAIL
(``errorMessage``) and are rerun under a new runId inside the same window.
Every run reports START and COMPLETE (or FAIL); the event stream is cut at
exactly ``n_events`` (the last run may have only its START).

Events are built with the openlineage-python client's event model
(``event_v2``/``facet_v2``) and provkg's custom facet classes from
:mod:`provkg.demo`, and serialised with the client's ``Serde``, as an emitter
would send them. Deterministic: the same ``(n_events, seed)`` gives identical
events.

    python bench/workload.py --events 10000 --seed 1 --out /tmp/w.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset as cl,
    data_quality_metrics_input_dataset as dq,
    dataset_type_dataset,
    dataset_version_dataset,
    datasource_dataset,
    documentation_dataset,
    documentation_job,
    error_message_run,
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

try:  # run as a script (python bench/workload.py) or imported with the repo on sys.path
    from provkg.demo import (
        ConsentRecord,
        ConsentRunFacet,
        DataSubjectsDatasetFacet,
        DeploymentRunFacet,
        EvaluationDatasetFacet,
        EvaluationMetric,
        FairnessDatasetFacet,
        FairnessMetric,
        FeatureSnapshot,
        InferenceRunFacet,
        ModelVersionDatasetFacet,
        PolicyDatasetFacet,
        Prediction,
        TrainingEnvironment,
        TrainingRunFacet,
    )
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from provkg.demo import (  # noqa: F401
        ConsentRecord, ConsentRunFacet, DataSubjectsDatasetFacet, DeploymentRunFacet, EvaluationDatasetFacet,
        EvaluationMetric, FairnessDatasetFacet, FairnessMetric, FeatureSnapshot, InferenceRunFacet,
        ModelVersionDatasetFacet, PolicyDatasetFacet, Prediction, TrainingEnvironment, TrainingRunFacet,
    )

PRODUCER = "https://github.com/provkg/provkg/tree/0.1.0/bench"
START = datetime(2025, 1, 6, 2, 0, tzinfo=timezone.utc)
_RUN_NS = uuid.uuid5(uuid.NAMESPACE_URL, PRODUCER)

RAW = "s3://lake-raw"
WAREHOUSE = "postgres://warehouse.prod:5432"
FEATURE_STORE = "s3://feature-store"
REGISTRY = "mlflow://registry.prod"
JOB_NS = "airflow-prod"
SERVING_NS = "kserve-prod"
CONSENT_NS = "consent-service"
CONSENT_JOB = "consent_changes.publish"
REPO = "https://git.example.com/ml-platform/pipelines"

DOMAINS = ("credit_risk", "fraud", "churn", "pricing", "marketing", "collections", "aml", "claims",
           "underwriting", "recommendation", "forecasting", "support_routing")
SOURCE_KINDS = (
    # (prefix, columns, pii, protected)
    ("applications", ("application_id", "amount", "term_months", "channel", "submitted_at"), (), ()),
    ("bureau", ("bureau_score", "delinquencies_24m", "open_lines", "report_date"), (), ()),
    ("demographics", ("age_band", "sex", "region", "income_estimate"), ("age_band", "sex"), ("age_band", "sex")),
    ("transactions", ("txn_count_30d", "txn_amount_30d", "merchant_category", "last_txn_at"), (), ()),
    ("crm", ("tenure_months", "segment", "complaints_12m", "contact_channel"), (), ()),
    ("web_events", ("sessions_30d", "pages_per_session", "device", "last_seen_at"), (), ()),
)
NEW_COLUMNS = ("employment_status", "housing_status", "marital_status", "education_level", "employer_sector")
ENGINES = {"airflow": ("Airflow", "2.10.3", "1.14.0"), "spark": ("spark", "3.5.1", "1.26.0"),
           "kserve": ("kserve", "0.13.1", "1.26.0"), "consent": ("consent-hub", "3.2.0", "1.26.0")}
GROUPS = (("age_band", "18-25", "26-64"), ("age_band", "65+", "26-64"), ("sex", "F", "M"))
FAIRNESS_METRIC = "demographic_parity_difference"
THRESHOLD = 0.1
TRAINING_PURPOSE = "model-training"


# -- sizing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EstateSize:
    """How big an estate ``n_events`` gets: pipelines, raw sources, days, subjects per day."""

    pipelines: int
    sources: int
    days: int
    subjects_per_day: int

    @staticmethod
    def for_events(n_events: int) -> "EstateSize":
        """Input: the number of events. Output: an estate that emits at least that many
        (about 17.5 events per pipeline-day), growing in pipelines and in days alike."""
        pipeline_days = max(1, math.ceil(n_events / 17.0))
        pipelines = max(2, round(math.sqrt(pipeline_days / 2)))
        days = math.ceil(pipeline_days / pipelines) + 2  # slack; the stream is cut at n_events
        return EstateSize(pipelines, max(3, 2 * pipelines), days, max(4, pipelines * 3))


# -- helpers --------------------------------------------------------------------------------


def _rng(seed: int, *key: Any) -> random.Random:
    """A random source keyed by (seed, key): the same delivery looks the same to every reader."""
    return random.Random(f"{seed}:" + "/".join(map(str, key)))


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _commit(*key: Any) -> str:
    return hashlib.sha1("/".join(map(str, key)).encode()).hexdigest()


def _p(cls: type, **kwargs: Any) -> Any:
    return cls(producer=PRODUCER, **kwargs)


def _m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


# -- the estate --------------------------------------------------------------------------------


@dataclass
class Table:
    """A dataset: where, what, whose columns; sources also hold data subjects."""

    namespace: str
    name: str
    kind: str  # FILE, TABLE, FEATURE_SET, MODEL
    owner: str
    description: str
    columns: tuple[str, ...] = ()
    pii: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    source: bool = False
    added_column: str | None = None  # a column that appears from change_day on
    change_day: int | None = None
    row_bytes: int = 64
    storage: tuple[str, str] | None = None

    def columns_on(self, day: int) -> tuple[str, ...]:
        extra = (self.added_column,) if self.added_column and self.change_day is not None and day >= self.change_day else ()
        return self.columns + extra


@dataclass
class Model:
    table: Table
    algorithm: str
    framework: str
    weekly: bool
    trained: int = 0  # versions trained so far


@dataclass
class Pipeline:
    """One DAG: its sources, tables, models and its time offset within the day."""

    index: int
    name: str
    domain: str
    team: str
    sources: list[Table]
    label_sources: list[Table]
    profile: Table
    labels: Table
    features: Table
    decisions: Table
    models: list[Model]
    offset: timedelta
    extra_profile: Table | None = None  # fan-in: another pipeline's profile
    deployed: str | None = None  # model version serving now
    high_risk: bool = False


def _source(i: int, rng: random.Random, days: int) -> Table:
    prefix, cols, pii, protected = SOURCE_KINDS[i % len(SOURCE_KINDS)]
    region = ("eu", "us", "uk", "apac")[(i // len(SOURCE_KINDS)) % 4]
    changes = rng.random() < 0.5
    return Table(RAW, f"{prefix}/{region}_{i:03d}", "FILE", "team:data-platform",
                 f"Raw {prefix} delivered nightly ({region}, feed {i}).",
                 columns=("subject_id",) + cols, pii=("subject_id",) + pii, protected=protected, source=True,
                 added_column=rng.choice(NEW_COLUMNS) if changes else None,
                 change_day=rng.randrange(1, max(2, days)) if changes else None,
                 row_bytes=rng.randrange(32, 160), storage=("s3", rng.choice(("parquet", "csv"))))


def build_estate(size: EstateSize, seed: int) -> tuple[list[Table], list[Pipeline]]:
    """Input: the estate size and seed. Output: (raw sources, pipelines), deterministic."""
    rng = _rng(seed, "estate")
    sources = [_source(i, rng, size.days) for i in range(size.sources)]
    demographic = [s for s in sources if s.protected]
    pipelines: list[Pipeline] = []
    for p in range(size.pipelines):
        domain = DOMAINS[p % len(DOMAINS)]
        name = f"{domain}_{p:03d}"
        team = f"team:{domain.replace('_', '-')}"
        picked = rng.sample(sources, k=min(len(sources), rng.randint(2, 4)))
        if demographic and not any(s.protected for s in picked):  # fairness needs the protected attributes
            picked.append(rng.choice(demographic))
        prof_cols = ("subject_id",) + tuple(sorted({c for s in picked for c in s.columns[1:3]}
                                                   | {c for s in picked for c in s.protected}))
        profile = Table(WAREHOUSE, f"analytics.{name}_profile", "TABLE", "team:data-platform",
                        f"One row per subject for {name}: joined raw attributes.", prof_cols,
                        pii=("subject_id",) + tuple(c for c in prof_cols if c in ("age_band", "sex")),
                        protected=tuple(c for c in prof_cols if c in ("age_band", "sex")), row_bytes=180)
        labels = Table(WAREHOUSE, f"analytics.{name}_labels", "TABLE", team,
                       f"Training labels for {name}.", ("subject_id", "label", "label_date"), pii=("subject_id",),
                       row_bytes=28)
        feat_cols = ("subject_id", "age_band") + tuple(f"f_{k:02d}" for k in range(rng.randint(4, 9)))
        features = Table(FEATURE_STORE, f"{name}_features", "FEATURE_SET", team,
                         f"Per-subject features for {name}.", feat_cols, pii=("subject_id", "age_band"),
                         protected=("age_band",), row_bytes=64, storage=("delta", "parquet"))
        decisions = Table(WAREHOUSE, f"analytics.{name}_decisions", "TABLE", "team:mlops",
                          f"Decisions made by the {name} endpoint.",
                          ("prediction_id", "subject_id", "score", "decision"), pii=("subject_id",), row_bytes=72)
        models = [Model(Table(REGISTRY, f"models/{name}", "MODEL", team, f"The {domain} model of {name}."),
                        "gradient_boosting", rng.choice(("lightgbm 4.3.0", "xgboost 2.1.1")), weekly=False)]
        if rng.random() < 0.5:
            models.append(Model(Table(REGISTRY, f"models/{name}_challenger", "MODEL", team,
                                      f"Weekly challenger model of {name}."),
                                rng.choice(("random_forest", "logistic_regression")), "scikit-learn 1.5.2",
                                weekly=True))
        pipelines.append(Pipeline(
            p, name, domain, team, picked, rng.sample(picked, k=min(2, len(picked))), profile, labels, features,
            decisions, models, offset=_m((p * 17) % 300), high_risk=domain in ("credit_risk", "underwriting", "claims"),
        ))
    for pl in pipelines:  # fan-in: a third of the pipelines also read another pipeline's profile
        if len(pipelines) > 1 and rng.random() < 0.33:
            pl.extra_profile = rng.choice([o for o in pipelines if o is not pl]).profile
    return sources, pipelines


# -- per-day content ---------------------------------------------------------------------------------


class _Day:
    """Everything one day knows: its index, start, and the deliveries' subjects."""

    def __init__(self, index: int, size: EstateSize, seed: int):
        self.index = index
        self.start = START + timedelta(days=index)
        self.date = self.start.date().isoformat()
        self.size = size
        self.seed = seed

    def at(self, offset: timedelta) -> datetime:
        return self.start + offset

    def new_subjects(self) -> list[str]:
        n = self.size.subjects_per_day
        return [f"subj-{k:07d}" for k in range(self.index * n, (self.index + 1) * n)]

    def delivery(self, source: Table) -> list[str]:
        """The subjects a source's delivery of this day holds: a sample of those on file (last 30 days)."""
        rng = _rng(self.seed, "delivery", source.name, self.index)
        n = self.size.subjects_per_day
        lo = max(0, (self.index - 30) * n)
        hi = (self.index + 1) * n
        k = min(hi - lo, rng.randint(6, 14))
        return sorted(f"subj-{x:07d}" for x in rng.sample(range(lo, hi), k))

    def skewed(self, source: Table) -> bool:
        return bool(source.protected) and _rng(self.seed, "skew", source.name, self.index).random() < 0.15


def _fairness_values(day: _Day, key: str, skewed: bool) -> list[tuple[tuple[str, str, str], float]]:
    rng = _rng(day.seed, "fair", key, day.index)
    out = []
    for g in GROUPS:
        v = round(rng.uniform(0.005, 0.07), 3)
        if skewed and g[1] == "18-25":
            v = round(rng.uniform(0.12, 0.2), 3)
        out.append((g, v))
    return out


def _fairness(day: _Day, key: str, skewed: bool) -> FairnessDatasetFacet:
    return _p(FairnessDatasetFacet, metrics=[
        FairnessMetric(metric=FAIRNESS_METRIC, protectedAttribute=a, group=g, referenceGroup=r, value=v,
                       threshold=THRESHOLD)
        for (a, g, r), v in _fairness_values(day, key, skewed)])


_POLICY = dict(personalData=True, specialCategory=False, legalBasis="eu-gdpr:A6-1-b",
               purposes=["service-delivery", TRAINING_PURPOSE], retention="P5Y", sensitivity="confidential",
               justification="Processed for the contract the subject entered; training relies on consent.")


def _dataset_facets(t: Table, day: _Day) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "dataSource": _p(datasource_dataset.DatasourceDatasetFacet, name=t.namespace, uri=t.namespace),
        "datasetType": _p(dataset_type_dataset.DatasetTypeDatasetFacet, datasetType=t.kind),
        "documentation": _p(documentation_dataset.DocumentationDatasetFacet, description=t.description),
        "ownership": _p(ownership_dataset.OwnershipDatasetFacet,
                        owners=[ownership_dataset.Owner(name=t.owner, type="MAINTAINER")]),
    }
    cols = t.columns_on(day.index)
    if cols:
        facets["schema"] = _p(schema_dataset.SchemaDatasetFacet, fields=[
            schema_dataset.SchemaDatasetFacetFields(name=c, type="string" if c in ("subject_id", "age_band", "sex")
                                                    else "double", ordinal_position=i)
            for i, c in enumerate(cols, start=1)])
    tags = [tags_dataset.TagsDatasetFacetFields(key="pii", value="true", source="USER", field=c) for c in t.pii]
    tags += [tags_dataset.TagsDatasetFacetFields(key="protected_attribute", value="true", source="USER", field=c)
             for c in t.protected]
    if tags:
        facets["tags"] = _p(tags_dataset.TagsDatasetFacet, tags=tags)
    if t.storage:
        facets["storage"] = _p(storage_dataset.StorageDatasetFacet, storageLayer=t.storage[0],
                               fileFormat=t.storage[1])
    if t.source:
        facets["provkg_policy"] = _p(PolicyDatasetFacet, **_POLICY)
        facets["provkg_dataSubjects"] = _p(DataSubjectsDatasetFacet, subjects=day.delivery(t))
    return facets


def _version(v: str) -> Any:
    return _p(dataset_version_dataset.DatasetVersionDatasetFacet, datasetVersion=v)


def _direct(t: Table, col: str, subtype: str = "IDENTITY", description: str | None = None) -> cl.InputField:
    return cl.InputField(namespace=t.namespace, name=t.name, field=col, transformations=[
        cl.Transformation(type="DIRECT", subtype=subtype, description=description, masking=False)])


def _indirect(t: Table, col: str, subtype: str) -> cl.InputField:
    return cl.InputField(namespace=t.namespace, name=t.name, field=col,
                         transformations=[cl.Transformation(type="INDIRECT", subtype=subtype)])


def _lineage(fields: dict[str, list[cl.InputField]], dataset: list[cl.InputField]) -> Any:
    return _p(cl.ColumnLineageDatasetFacet,
              fields={o: cl.Fields(inputFields=i) for o, i in fields.items() if i}, dataset=dataset)


# -- runs ------------------------------------------------------------------------------------------


@dataclass
class Io:
    table: Table
    version: str | None  # None: the dataset without a version
    done: dict[str, Any] = field(default_factory=dict)
    done_io: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSpec:
    namespace: str
    job: str
    job_facets: dict[str, Any]
    start: datetime
    end: datetime
    engine: str
    inputs: list[Io] = field(default_factory=list)
    outputs: list[Io] = field(default_factory=list)
    run_facets: dict[str, Any] = field(default_factory=dict)
    done_facets: dict[str, Any] = field(default_factory=dict)
    fails: bool = False


def _run_id(job: str, start: datetime) -> str:
    return str(uuid.uuid5(_RUN_NS, f"{job}/{_iso(start)}"))


def _engine(key: str) -> Any:
    name, version, adapter = ENGINES[key]
    return _p(processing_engine_run.ProcessingEngineRunFacet, name=name, version=version,
              openlineageAdapterVersion=adapter)


def _job_facets(description: str, owner: str, job_type: tuple[str, str, str], path: str | None = None,
                commit: str | None = None, sql: str | None = None) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "documentation": _p(documentation_job.DocumentationJobFacet, description=description),
        "jobType": _p(job_type_job.JobTypeJobFacet, processingType=job_type[0], integration=job_type[1],
                      jobType=job_type[2]),
        "ownership": _p(ownership_job.OwnershipJobFacet, owners=[ownership_job.Owner(name=owner, type="MAINTAINER")]),
    }
    if sql:
        facets["sql"] = _p(sql_job.SQLJobFacet, query=sql, dialect="postgres")
    if path and commit:
        facets["sourceCodeLocation"] = _p(source_code_location_job.SourceCodeLocationJobFacet, type="git",
                                          url=f"{REPO}/blob/{commit}/{path}", repoUrl=f"{REPO}.git", path=path,
                                          version=commit, branch="main")
    return facets


def _events_of(spec: RunSpec, day: _Day, seq: list[int]) -> list[tuple[datetime, int, RunEvent]]:
    """START and COMPLETE of one run; a failing run gives START and FAIL, then a rerun (new runId)."""
    out: list[tuple[datetime, int, RunEvent]] = []
    attempts: list[tuple[datetime, datetime, bool]]
    if spec.fails:
        cut = spec.start + (spec.end - spec.start) / 3
        attempts = [(spec.start, cut, False), (cut + timedelta(seconds=30), spec.end, True)]
    else:
        attempts = [(spec.start, spec.end, True)]
    job = Job(namespace=spec.namespace, name=spec.job, facets=spec.job_facets)
    for start, end, succeeds in attempts:
        run_id = _run_id(spec.job, start)
        for state, moment in ((RunState.START, start), (RunState.COMPLETE if succeeds else RunState.FAIL, end)):
            done = state == RunState.COMPLETE
            facets = {"processing_engine": _engine(spec.engine), **spec.run_facets,
                      **(spec.done_facets if done else {})}
            if state == RunState.FAIL:
                facets["errorMessage"] = _p(error_message_run.ErrorMessageRunFacet,
                                            message="Task exited with return code 1 (executor lost)",
                                            programmingLanguage="python")
            inputs = [InputDataset(namespace=io.table.namespace, name=io.table.name,
                                   facets={**_dataset_facets(io.table, day),
                                           **({"version": _version(io.version)} if io.version else {}),
                                           **(io.done if done else {})},
                                   inputFacets=io.done_io if done else {})
                      for io in spec.inputs]
            outputs = [OutputDataset(namespace=io.table.namespace, name=io.table.name,
                                     facets={**_dataset_facets(io.table, day),
                                             **({"version": _version(io.version), **io.done}
                                                if done and io.version else {})},
                                     outputFacets=io.done_io if done else {})
                       for io in spec.outputs]
            event = RunEvent(eventType=state, eventTime=_iso(moment), producer=PRODUCER,
                             run=Run(runId=run_id, facets=facets), job=job, inputs=inputs, outputs=outputs)
            seq[0] += 1
            out.append((moment, seq[0], event))
    return out


class Workload:
    """The estate and its day-by-day runs. ``events()`` yields event dicts in emission order."""

    def __init__(self, n_events: int, seed: int = 1):
        if n_events < 0:
            raise ValueError("n_events must be >= 0")
        self.n_events = n_events
        self.seed = seed
        self.size = EstateSize.for_events(n_events)
        self.sources, self.pipelines = build_estate(self.size, seed)
        self._seq = [0]

    def _fails(self, *key: Any) -> bool:
        return _rng(self.seed, "fail", *key).random() < 0.02

    def _parent(self, pl: Pipeline, day: _Day) -> Any:
        dag_id = _run_id(pl.name, day.at(pl.offset))
        return _p(parent_run.ParentRunFacet, run=parent_run.Run(runId=dag_id),
                  job=parent_run.Job(namespace=JOB_NS, name=pl.name),
                  root=parent_run.Root(run=parent_run.RootRun(runId=dag_id),
                                       job=parent_run.RootJob(namespace=JOB_NS, name=pl.name)))

    def _task(self, pl: Pipeline, day: _Day, task: str, window: tuple[float, float], job_type: str,
              engine: str, inputs: list[Io], outputs: list[Io], description: str, owner: str | None = None,
              code_every: int = 10, sql: str | None = None, run_facets: dict | None = None,
              done_facets: dict | None = None) -> RunSpec:
        job = f"{pl.name}.{task}"
        epoch = (day.index + _rng(self.seed, "code", job).randrange(code_every)) // code_every
        commit = _commit(job, epoch)
        nominal = _p(nominal_time_run.NominalTimeRunFacet, nominalStartTime=_iso(day.at(pl.offset)),
                     nominalEndTime=_iso(day.at(pl.offset) + timedelta(days=1)))
        return RunSpec(JOB_NS, job,
                       _job_facets(description, owner or pl.team, ("BATCH", engine.upper(), job_type),
                                   f"dags/{pl.name}/{task}.py", commit, sql),
                       day.at(pl.offset + _m(window[0])), day.at(pl.offset + _m(window[1])),
                       "spark" if engine == "spark" else "airflow", inputs, outputs,
                       {"nominalTime": nominal, "parent": self._parent(pl, day), **(run_facets or {})},
                       done_facets or {}, fails=self._fails(job, day.index))

    def _read(self, t: Table, day: _Day, **done: Any) -> Io:
        rows = len(day.delivery(t)) if t.source else 50 + len(t.name)
        io = {"dataQualityMetrics": _p(dq.DataQualityMetricsInputDatasetFacet, rowCount=rows,
                                       columnMetrics={"subject_id": dq.ColumnMetrics(nullCount=0, distinctCount=rows)})}
        return Io(t, day.date, done=done, done_io=io)

    def _write(self, t: Table, day: _Day, version: str | None = None, rows: int = 100, **done: Any) -> Io:
        size = rows * t.row_bytes if t.kind != "MODEL" else 20_000_000 + rows
        return Io(t, version or day.date, done=done, done_io={"outputStatistics": _p(
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet,
            rowCount=rows if t.kind != "MODEL" else None, size=size)})

    def _pipeline_day(self, pl: Pipeline, day: _Day) -> list[RunSpec]:
        skewed = any(day.skewed(s) for s in pl.sources)
        rng = _rng(self.seed, "day", pl.name, day.index)
        # ETL: sources -> profile
        fields: dict[str, list[cl.InputField]] = {"subject_id": [_direct(pl.sources[0], "subject_id")]}
        for col in pl.profile.columns[1:]:
            fields[col] = [_direct(s, col) for s in pl.sources if col in s.columns][:1]
        etl = self._task(
            pl, day, "build_profile", (1, 9), "ETL", "airflow",
            [self._read(s, day, provkg_fairness=_fairness(day, s.name, day.skewed(s))) if s.protected
             else self._read(s, day) for s in pl.sources],
            [self._write(pl.profile, day, rows=len({x for s in pl.sources for x in day.delivery(s)}),
                         columnLineage=_lineage(fields, [_indirect(s, "subject_id", "JOIN") for s in pl.sources]))],
            f"Join the raw sources of {pl.name} into one row per subject.", owner="team:data-platform",
            sql=f"INSERT INTO {pl.profile.name} SELECT {', '.join(pl.profile.columns)} FROM "
                + " JOIN ".join(f"raw.{s.name.replace('/', '_')}" for s in pl.sources) + " USING (subject_id)")
        labels = self._task(
            pl, day, "label", (1.5, 7), "LABELLING", "airflow", [self._read(s, day) for s in pl.label_sources],
            [self._write(pl.labels, day, columnLineage=_lineage(
                {"subject_id": [_direct(pl.label_sources[0], "subject_id")],
                 "label": [_direct(s, s.columns[1], "AGGREGATION", "BOOL_OR(...)") for s in pl.label_sources]},
                [_indirect(s, "subject_id", "JOIN") for s in pl.label_sources]),
                provkg_fairness=_fairness(day, pl.labels.name, False))],
            f"Label the subjects of {pl.name} from later outcomes.")
        prof_inputs = [pl.profile] + ([pl.extra_profile] if pl.extra_profile else [])
        feat_fields: dict[str, list[cl.InputField]] = {
            "subject_id": [_direct(pl.profile, "subject_id")],
            "age_band": [_direct(pl.profile, "age_band")] if "age_band" in pl.profile.columns else []}
        for col in pl.features.columns[2:]:
            src = rng.sample(prof_inputs[0].columns[1:], k=min(2, len(prof_inputs[0].columns) - 1))
            feat_fields[col] = [_direct(pl.profile, c, "TRANSFORMATION", f"{col} = g({', '.join(src)})") for c in src]
            if pl.extra_profile is not None and rng.random() < 0.3:
                feat_fields[col].append(_direct(pl.extra_profile, pl.extra_profile.columns[1], "TRANSFORMATION"))
        # the other pipeline's profile as last published: yesterday's version (today's may not exist yet)
        feat_inputs = [self._read(pl.profile, day)]
        if pl.extra_profile is not None:
            feat_inputs.append(Io(pl.extra_profile, (day.start - timedelta(days=1)).date().isoformat()
                                  if day.index else None))
        features = self._task(
            pl, day, "build_features", (10, 25), "FEATURE_ENGINEERING", "spark", feat_inputs,
            [self._write(pl.features, day, columnLineage=_lineage(feat_fields, []),
                         provkg_fairness=_fairness(day, pl.features.name, skewed))],
            f"Spark job computing the features of {pl.name}.", code_every=6)
        runs = [etl, labels, features]
        trained: list[tuple[Model, str]] = []
        for k, model in enumerate(pl.models):
            if model.weekly and (day.index + pl.index) % 7 != 0:
                continue
            model.trained += 1
            version = str(model.trained)
            trained.append((model, version))
            hp_rng = _rng(self.seed, "hp", model.table.name, version)
            hyper = {"learning_rate": hp_rng.choice((0.03, 0.05, 0.1)), "n_estimators": hp_rng.choice((200, 400, 600)),
                     "max_depth": hp_rng.randint(3, 8)}
            lib_version = ("4.3.0", "4.5.0")[model.trained // 20 % 2]
            commit = _commit(model.table.name, model.trained // 8)
            training = _p(TrainingRunFacet, hyperparameters=hyper, algorithm=model.algorithm,
                          task="binary_classification", codeVersion=commit,
                          environment=TrainingEnvironment(python="3.11.9", image=f"registry.example.com/{pl.name}/train:{lib_version}",
                                                          libraries={model.framework.split()[0]: lib_version,
                                                                     "pandas": "2.2.3"}),
                          randomSeed=hp_rng.randrange(1000))
            exec_params = _p(params.ExecutionParametersRunFacet, parameters=[
                params.ExecutionParameter(key="target_column", value="label"),
                params.ExecutionParameter(key="feature_columns", value=",".join(pl.features.columns[2:]))])
            mv = _p(ModelVersionDatasetFacet, version=version, artifactDigest=_sha256(f"{model.table.name}@{version}"),
                    framework=model.framework, intendedPurpose=f"{pl.domain} decisions", provider="Example plc",
                    highRisk=pl.high_risk, trainingDataDescription=f"{pl.features.name} {day.date}")
            w0 = 26 + 3 * k
            runs.append(self._task(pl, day, f"train_{k}", (w0, w0 + 35), "TRAINING", "airflow",
                                   [self._read(pl.features, day), self._read(pl.labels, day)],
                                   [self._write(model.table, day, version, provkg_modelVersion=mv)],
                                   f"Train {model.table.name} and register the version.",
                                   run_facets={"executionParameters": exec_params, "provkg_training": training}))
            ev_rng = _rng(self.seed, "eval", model.table.name, version)
            evaluation = _p(EvaluationDatasetFacet, metrics=[
                EvaluationMetric(metric="auc", value=round(ev_rng.uniform(0.7, 0.9), 3), split="holdout"),
                EvaluationMetric(metric="accuracy", value=round(ev_rng.uniform(0.8, 0.95), 3), split="holdout")])
            runs.append(self._task(pl, day, f"evaluate_{k}", (w0 + 36, w0 + 41), "EVALUATION", "airflow",
                                   [Io(model.table, version, done={
                                       "provkg_evaluation": evaluation,
                                       "provkg_fairness": _fairness(day, model.table.name + version, skewed)})],
                                   [], f"Evaluate {model.table.name}: performance and fairness."))
        champion = next(((m, v) for m, v in trained if not m.weekly), None)
        if champion is not None:
            m, v = champion
            dep_id = f"{pl.name.replace('_', '-')}-{int(v):05d}"
            active = day.at(pl.offset + _m(74))
            runs.append(self._task(pl, day, "deploy", (72, 74), "DEPLOYMENT", "airflow", [Io(m.table, v)], [],
                                   f"Roll {m.table.name} out to the endpoint.", owner="team:mlops",
                                   done_facets={"provkg_deployment": _p(
                                       DeploymentRunFacet, deploymentId=dep_id, activeFrom=_iso(active),
                                       endpoint=f"https://{pl.name.replace('_', '-')}.models.example.com/v1:predict",
                                       environment="prod", servingConfig={"minReplicas": 2, "trafficPercent": 100})}))
            pl.deployed = v
        if pl.deployed is not None:
            runs.append(self._inference(pl, day, rng))
        return runs

    def _inference(self, pl: Pipeline, day: _Day, rng: random.Random) -> RunSpec:
        model = pl.models[0]
        version = pl.deployed
        assert version is not None
        dep_id = f"{pl.name.replace('_', '-')}-{int(version):05d}"
        start, end = day.at(pl.offset + _m(240)), day.at(pl.offset + _m(960))
        pool = sorted({x for s in pl.sources for x in day.delivery(s)})
        predictions = []
        for n in range(1, rng.randint(3, 8) + 1):
            pid = f"pred-{pl.name}-{day.date}-{n:03d}"
            tier = rng.choices(("FULL_SNAPSHOT", "SAMPLED", "MODEL_VERSION_ONLY"), (5, 3, 2))[0]
            snap = (FeatureSnapshot(uri=f"s3://prediction-store/{pl.name}/{day.date}/{pid}.json",
                                    digest=_sha256(f"features of {pid}"))
                    if tier != "MODEL_VERSION_ONLY" else None)
            predictions.append(Prediction(
                predictionId=pid, timestamp=_iso(start + _m(n * 60 + rng.randrange(50))), captureTier=tier,
                dataSubject=rng.choice(pool), output=round(rng.random(), 3) if tier != "MODEL_VERSION_ONLY" else None,
                consequential=tier == "FULL_SNAPSHOT", featureSnapshot=snap))
        score_inputs = [_direct(pl.features, c, "TRANSFORMATION", "model.predict_proba(x)[:, 1]")
                        for c in pl.features.columns[2:]]
        lineage = _lineage({"subject_id": [_direct(pl.features, "subject_id")], "score": score_inputs,
                            "decision": score_inputs}, [_indirect(pl.features, "subject_id", "JOIN")])
        return RunSpec(
            SERVING_NS, pl.name.replace("_", "-") + "-prod",
            _job_facets(f"Online scoring for {pl.name}.", "team:mlops", ("SERVICE", "KSERVE", "INFERENCE")),
            start, end, "kserve", [Io(model.table, version), self._read(pl.features, day)],
            [self._write(pl.decisions, day, rows=len(predictions), columnLineage=lineage)],
            done_facets={"provkg_inference": _p(InferenceRunFacet, deploymentId=dep_id, predictions=predictions)})

    def _dag(self, pl: Pipeline, day: _Day) -> RunSpec:
        return RunSpec(JOB_NS, pl.name, _job_facets(f"Daily DAG of {pl.name}.", pl.team, ("BATCH", "AIRFLOW", "DAG"),
                                                    f"dags/{pl.name}.py", _commit(pl.name, 0)),
                       day.at(pl.offset), day.at(pl.offset + _m(75)), "airflow",
                       run_facets={"nominalTime": _p(nominal_time_run.NominalTimeRunFacet,
                                                     nominalStartTime=_iso(day.at(pl.offset)))})

    def _consent(self, day: _Day) -> RunSpec:
        rng = _rng(self.seed, "consent", day.index)
        base = day.start - timedelta(days=1)
        records = [ConsentRecord(subject=s, status="GIVEN", at=_iso(base + _m(rng.randrange(60, 1400))),
                                 purposes=[TRAINING_PURPOSE], legalBasis="eu-gdpr:A6-1-a")
                   for s in day.new_subjects()]
        if day.index > 2:  # now and then someone withdraws
            n = self.size.subjects_per_day
            for _ in range(rng.choice((0, 0, 1, 2))):
                who = f"subj-{rng.randrange(0, (day.index - 1) * n):07d}"
                records.append(ConsentRecord(subject=who, status="WITHDRAWN",
                                             at=_iso(base + _m(rng.randrange(60, 1400))),
                                             purposes=[TRAINING_PURPOSE], legalBasis="eu-gdpr:A6-1-a"))
        return RunSpec(CONSENT_NS, CONSENT_JOB,
                       _job_facets("Publishes consent changes from the consent platform.", "team:privacy",
                                   ("BATCH", "CONSENT_HUB", "CONSENT_EXPORT")),
                       day.at(-_m(30)), day.at(-_m(29)), "consent",
                       done_facets={"provkg_consent": _p(ConsentRunFacet, records=records)})

    def _day_events(self, day: _Day) -> list[tuple[datetime, int, RunEvent]]:
        timed = _events_of(self._consent(day), day, self._seq)
        for pl in self.pipelines:
            timed += _events_of(self._dag(pl, day), day, self._seq)
            for spec in self._pipeline_day(pl, day):
                timed += _events_of(spec, day, self._seq)
        timed.sort(key=lambda x: (x[0], x[1]))
        return timed

    def events(self) -> Iterator[dict]:
        """Yield exactly ``n_events`` OpenLineage RunEvents as JSON-ready dicts, ordered by eventTime."""
        emitted = 0
        day_index = 0
        while emitted < self.n_events:
            for _, _, event in self._day_events(_Day(day_index, self.size, self.seed)):
                if emitted >= self.n_events:
                    return
                yield Serde.to_dict(event)
                emitted += 1
            day_index += 1


def generate(n_events: int, seed: int = 1) -> Iterator[dict]:
    """Inputs: ``n_events`` (exact count, >= 0), ``seed`` (int). Output: an iterator of
    OpenLineage 2-0-2 RunEvent dicts in emission (eventTime) order; deterministic."""
    return Workload(n_events, seed).events()


def write_jsonl(n_events: int, seed: int, out: Path) -> int:
    """Write the workload as JSON Lines to ``out``; returns the number of bytes written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with out.open("w", encoding="utf-8") as fh:
        for event in generate(n_events, seed):
            line = json.dumps(event, separators=(",", ":")) + "\n"
            fh.write(line)
            written += len(line.encode())
    return written


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, required=True, help="number of events")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True, help="output .jsonl file")
    args = ap.parse_args(argv)
    size = EstateSize.for_events(args.events)
    nbytes = write_jsonl(args.events, args.seed, args.out)
    print(f"{args.events} events ({nbytes / 1e6:.1f} MB) -> {args.out}; estate: {size.pipelines} pipelines, "
          f"{size.sources} sources, up to {size.days} days, {size.subjects_per_day} new subjects/day")


if __name__ == "__main__":
    main()
