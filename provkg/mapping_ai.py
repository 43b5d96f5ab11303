"""AI lineage: what an event says about features, training, models, deployments,
predictions, data subjects, consent and policy (``docs/ai-lineage.md``).

A second pass over an event already mapped by :mod:`provkg.mapping`: it reads
the standard facets that carry AI semantics (``jobType``, ``datasetType``,
``executionParameters``, ``tags``) and provkg's custom facets (``provkg_*``,
schemas in ``facets/``), and adds ML-Schema, DPV, FAIR4ML, DQV and provkg terms
to the same named graph, using the run, job and dataset nodes the first pass
recorded in the :class:`GraphBuilder`.
"""

from __future__ import annotations

from typing import Any

from pyoxigraph import Literal, NamedNode

from .graph_builder import GraphBuilder, Measured, json_literal, time_literal, typed_literal
from .vocab import DCAT, DPV, DQV, FAIR4ML, MLS, PREFIXES, PROV, PROVKG, RDFS, XSD, A

# facets this pass maps; the first pass leaves them alone
AI_FACETS = frozenset({
    "executionParameters", "tags",
    "provkg_training", "provkg_modelVersion", "provkg_deployment", "provkg_inference", "provkg_dataSubjects",
    "provkg_consent", "provkg_policy", "provkg_fairness", "provkg_evaluation", "provkg_erasureRequest",
})

RUN_KINDS = {
    "FEATURE_ENGINEERING": PROVKG.FeatureEngineeringRun,
    "LABELLING": PROVKG.LabellingRun,
    "LABELING": PROVKG.LabellingRun,
    "TRAINING": PROVKG.TrainingRun,
    "EVALUATION": PROVKG.EvaluationRun,
    "DEPLOYMENT": PROVKG.DeploymentRun,
    "INFERENCE": PROVKG.InferenceRun,
    "PREDICTION": PROVKG.InferenceRun,
}
# a custom facet names the kind of run it is on even without a jobType facet
_RUN_KIND_BY_FACET = {
    "provkg_training": PROVKG.TrainingRun,
    "provkg_deployment": PROVKG.DeploymentRun,
    "provkg_inference": PROVKG.InferenceRun,
    "provkg_erasureRequest": PROVKG.ErasureRequest,
}
_FEATURE_SET_TYPES = {"FEATURE_SET", "FEATURE_VIEW", "FEATURE_GROUP"}
_PII_MARKERS = {"pii", "personal_data", "personal"}
_CAPTURE_TIERS = {"FULL_SNAPSHOT": PROVKG.FullSnapshot, "SAMPLED": PROVKG.Sampled,
                  "MODEL_VERSION_ONLY": PROVKG.ModelVersionOnly}
_CONSENT = {"GIVEN": DPV.ConsentGiven, "WITHDRAWN": DPV.ConsentWithdrawn}
_ARTICLES = {"A17": "eu-gdpr:A17", "A7-3": "eu-gdpr:A7-3"}


def _facets(obj: Any) -> dict:
    facets = obj.get("facets") if isinstance(obj, dict) else None
    return {k: v for k, v in (facets or {}).items() if isinstance(v, dict) and not v.get("_deleted")}


def curie(value: str) -> NamedNode | Literal:
    """A DPV/GDPR CURIE (``eu-gdpr:A6-1-a``) or absolute IRI as a node; other text as a literal."""
    prefix, _, local = value.partition(":")
    if prefix in PREFIXES and local:
        return NamedNode(PREFIXES[prefix] + local)
    if value.startswith(("http://", "https://", "urn:")):
        try:
            return NamedNode(value)
        except ValueError:
            pass
    return Literal(value)


def map_ai_lineage(b: GraphBuilder, event: dict) -> None:
    """Add the AI-lineage statements of one event to its graph (docs/ai-lineage.md §3)."""
    job_facets, run_facets = _facets(event.get("job")), _facets(event.get("run"))
    if b.job is not None and "tags" in job_facets:
        _tags(b, b.job, None, job_facets["tags"])
    models_in = [t for side, t, ds in b.touched if side == "input" and _is_model(ds)]
    for side, target, ds in b.touched:
        _dataset(b, side, target, ds)
    if b.run is None:
        return
    run = b.run
    kind = RUN_KINDS.get(str(job_facets.get("jobType", {}).get("jobType", "")).upper())
    for key, facet_kind in _RUN_KIND_BY_FACET.items():
        if key in run_facets:
            kind = kind or facet_kind
            b.add(run, A, facet_kind)
    if kind is not None:
        b.add(run, A, kind)
    if "tags" in run_facets:
        _tags(b, run, None, run_facets["tags"])
    if "executionParameters" in run_facets:
        params = run_facets["executionParameters"].get("parameters") or []
        for p in params:
            if isinstance(p, dict) and isinstance(p.get("key"), str):
                _hyperparameter(b, run, p["key"], p.get("value"))
    if "provkg_training" in run_facets:
        _training(b, run, run_facets["provkg_training"])
    if "provkg_deployment" in run_facets:
        _deployment(b, run, run_facets["provkg_deployment"], models_in)
    if "provkg_inference" in run_facets:
        _inference(b, run, run_facets["provkg_inference"], models_in)
    if "provkg_consent" in run_facets:
        _consent(b, run, run_facets["provkg_consent"])
    if "provkg_erasureRequest" in run_facets:
        _erasure_request(b, run, run_facets["provkg_erasureRequest"])
    if kind == PROVKG.TrainingRun or "provkg_training" in run_facets:
        inputs = [t.entity for side, t, _ in b.touched if side == "input"]
        for side, target, ds in b.touched:
            if side == "output" and _is_model(ds):
                b.add(target.entity, PROVKG.trainedBy, run)
                for entity in inputs:
                    b.add(target.entity, FAIR4ML.trainedOn, entity)


def _is_model(ds: dict) -> bool:
    facets = _facets(ds)
    return str(facets.get("datasetType", {}).get("datasetType", "")).upper() == "MODEL" \
        or "provkg_modelVersion" in facets


# -- datasets -------------------------------------------------------------------

def _dataset(b: GraphBuilder, side: str, t: Measured, ds: dict) -> None:
    facets = _facets(ds)
    dataset_type = str(facets.get("datasetType", {}).get("datasetType", "")).upper()
    is_version = t.entity != t.dataset
    if _is_model(ds):
        b.add(t.dataset, A, PROVKG.Model)
        if is_version:
            b.add(t.entity, A, PROVKG.ModelVersion)
    elif dataset_type in _FEATURE_SET_TYPES:
        b.add(t.dataset, A, PROVKG.FeatureSet)
        for field in (facets.get("schema", {}).get("fields") or []):
            if isinstance(field, dict) and isinstance(field.get("name"), str):
                b.add(b.column(t.dataset, field["name"]), A, PROVKG.Feature)
    if "tags" in facets:
        _tags(b, t.dataset, t, facets["tags"])
    if "provkg_modelVersion" in facets:
        _model_version(b, t, facets["provkg_modelVersion"])
    if "provkg_dataSubjects" in facets:
        for subject in facets["provkg_dataSubjects"].get("subjects") or []:
            b.add(t.entity, PROVKG.holdsDataOf, _subject(b, subject))
    if "provkg_policy" in facets:
        _policy(b, t.dataset, facets["provkg_policy"])
    if "provkg_fairness" in facets:
        _fairness(b, t, facets["provkg_fairness"])
    if "provkg_evaluation" in facets:
        for m in facets["provkg_evaluation"].get("metrics") or []:
            node = _measurement(b, t, "provkg_evaluation", m, m.get("split") or "")
            if node is not None:
                b.text(node, PROVKG.split, m.get("split"))


def _tags(b: GraphBuilder, subject: NamedNode, t: Measured | None, facet: dict) -> None:
    for tag in facet.get("tags") or []:
        if not isinstance(tag, dict) or not isinstance(tag.get("key"), str):
            continue
        target = subject
        if t is not None and isinstance(tag.get("field"), str):
            target = b.column(t.dataset, tag["field"])
        node = b.iri.child(target, "tag", tag["key"], str(tag.get("value", "")), str(tag.get("source", "")))
        b.add(target, PROVKG.tag, node)
        b.text(node, PROVKG.tagKey, tag["key"])
        b.text(node, PROVKG.tagValue, tag.get("value"))
        b.text(node, PROVKG.tagSource, tag.get("source"))
        if {str(tag["key"]).lower(), str(tag.get("value", "")).lower()} & _PII_MARKERS:
            b.value(target, PROVKG.containsPersonalData, True)
            if target != subject:
                b.value(subject, PROVKG.containsPersonalData, True)


def _model_version(b: GraphBuilder, t: Measured, facet: dict) -> None:
    v = t.entity
    b.text(v, PROVKG.artifactDigest, facet.get("artifactDigest"))
    b.text(v, PROVKG.framework, facet.get("framework"))
    b.text(v, FAIR4ML.intendedUse, facet.get("intendedPurpose"))
    b.text(v, PROVKG.provider, facet.get("provider"))
    b.value(v, PROVKG.highRisk, facet.get("highRisk"))
    b.text(v, PROVKG.trainingDataDescription, facet.get("trainingDataDescription"))
    if isinstance(facet.get("version"), str):
        b.add(v, DCAT.version, Literal(facet["version"]))


def _policy(b: GraphBuilder, dataset: NamedNode, facet: dict) -> None:
    b.value(dataset, PROVKG.containsPersonalData, facet.get("personalData"))
    b.value(dataset, PROVKG.containsSpecialCategoryData, facet.get("specialCategory"))
    b.text(dataset, DPV.hasSensitivityLevel, facet.get("sensitivity"))
    if isinstance(facet.get("legalBasis"), str):
        b.add(dataset, DPV.hasLegalBasis, curie(facet["legalBasis"]))
    for purpose in facet.get("purposes") or []:
        b.add(dataset, DPV.hasPurpose, _purpose(b, purpose))
    if isinstance(facet.get("retention"), str):
        b.add(dataset, PROVKG.retentionPeriod, Literal(facet["retention"], datatype=XSD.duration))
    b.text(dataset, DPV.hasJustification, facet.get("justification"))


def _purpose(b: GraphBuilder, purpose: str) -> NamedNode:
    node = b.iri.mint("purpose", purpose)
    b.add(node, A, DPV.Purpose)
    b.add(node, RDFS.label, Literal(purpose))
    return node


# -- measurements (W3C DQV) ---------------------------------------------------------

def _measurement(b: GraphBuilder, t: Measured, source: str, m: Any, *keys: str) -> NamedNode | None:
    if not isinstance(m, dict) or not isinstance(m.get("metric"), str):
        return None
    value = typed_literal(m.get("value"))
    if value is None:
        return None
    metric = b.iri.mint("metric", m["metric"])
    b.add(metric, A, DQV.Metric)
    b.add(metric, RDFS.label, Literal(m["metric"]))
    return b.measurement(t, source, metric, value, *keys)


def _fairness(b: GraphBuilder, t: Measured, facet: dict) -> None:
    for m in facet.get("metrics") or []:
        if not isinstance(m, dict):
            continue
        keys = (str(m.get("protectedAttribute", "")), str(m.get("group", "")), str(m.get("referenceGroup", "")))
        node = _measurement(b, t, "provkg_fairness", m, *keys)
        if node is None:
            continue
        b.add(node, A, PROVKG.FairnessMeasurement)
        b.text(node, PROVKG.protectedAttribute, m.get("protectedAttribute"))
        b.text(node, PROVKG.group, m.get("group"))
        b.text(node, PROVKG.referenceGroup, m.get("referenceGroup"))
        threshold, value = m.get("threshold"), m.get("value")
        if isinstance(threshold, (int, float)) and isinstance(value, (int, float)):
            b.value(node, PROVKG.threshold, float(threshold))
            b.value(node, PROVKG.exceedsThreshold, abs(value) > threshold)


# -- runs ---------------------------------------------------------------------------

def _hyperparameter(b: GraphBuilder, run: NamedNode, name: str, value: Any) -> None:
    parameter = b.iri.mint("hyperparameter", name)
    b.add(parameter, A, MLS.HyperParameter)
    b.add(parameter, RDFS.label, Literal(name))
    setting = b.iri.child(run, "hyperparameter", name)
    b.add(setting, A, MLS.HyperParameterSetting)
    b.add(setting, MLS.specifiedBy, parameter)
    b.add(setting, MLS.hasValue, typed_literal(value))
    b.add(run, MLS.hasInput, setting)


def _training(b: GraphBuilder, run: NamedNode, facet: dict) -> None:
    for key, prop in (("algorithm", PROVKG.algorithm), ("task", PROVKG.task), ("codeVersion", PROVKG.codeVersion)):
        b.text(run, prop, facet.get(key))
    b.value(run, PROVKG.randomSeed, facet.get("randomSeed"))
    if isinstance(facet.get("environment"), dict):
        b.add(run, PROVKG.environment, json_literal(facet["environment"]))
    for name, value in (facet.get("hyperparameters") or {}).items():
        _hyperparameter(b, run, name, value)


def _deployment(b: GraphBuilder, run: NamedNode, facet: dict, models_in: list[Measured]) -> NamedNode:
    deployment = b.iri.mint("deployment", facet["deploymentId"])
    b.add(deployment, A, PROVKG.Deployment)
    b.add(deployment, A, PROV.Entity)
    b.add(deployment, RDFS.label, Literal(facet["deploymentId"]))
    b.add(deployment, PROV.wasGeneratedBy, run)
    b.add(deployment, PROVKG.activeFrom, time_literal(facet.get("activeFrom")))
    b.add(deployment, PROVKG.activeUntil, time_literal(facet.get("activeUntil")))
    b.text(deployment, PROVKG.endpoint, facet.get("endpoint"))
    b.text(deployment, PROVKG.deploymentEnvironment, facet.get("environment"))
    if isinstance(facet.get("servingConfig"), dict):
        b.add(deployment, PROVKG.servingConfig, json_literal(facet["servingConfig"]))
    for model in models_in:
        b.add(deployment, PROVKG.deploys, model.entity)
    return deployment


def _inference(b: GraphBuilder, run: NamedNode, facet: dict, models_in: list[Measured]) -> None:
    deployment = b.iri.mint("deployment", facet["deploymentId"])
    b.add(deployment, A, PROVKG.Deployment)
    b.add(run, PROVKG.servedBy, deployment)
    for p in facet.get("predictions") or []:
        if not isinstance(p, dict) or not isinstance(p.get("predictionId"), str):
            continue
        prediction = b.iri.mint("prediction", p["predictionId"])
        b.add(prediction, A, PROVKG.Prediction)
        b.add(prediction, A, PROV.Entity)
        b.add(prediction, RDFS.label, Literal(p["predictionId"]))
        b.add(prediction, PROV.wasGeneratedBy, run)
        b.add(prediction, PROV.generatedAtTime, time_literal(p.get("timestamp")))
        b.add(prediction, PROVKG.servedBy, deployment)
        for model in models_in:
            b.add(prediction, PROVKG.madeBy, model.entity)
        if isinstance(p.get("dataSubject"), str):
            b.add(prediction, PROVKG.aboutSubject, _subject(b, p["dataSubject"]))
        b.add(prediction, PROVKG.captureTier, _CAPTURE_TIERS.get(p.get("captureTier")))
        b.value(prediction, PROVKG.consequential, p.get("consequential"))
        if "output" in p:
            b.value(prediction, PROVKG.predictionOutput, p["output"])
        snapshot = p.get("featureSnapshot")
        if isinstance(snapshot, dict) and isinstance(snapshot.get("sealed"), str):
            # sealed with the subject's key at ingest (provkg.pseudonymise); auditors open it
            b.add(prediction, PROVKG.sealedFeatureSnapshot, Literal(snapshot["sealed"]))
        elif isinstance(snapshot, dict) and isinstance(snapshot.get("uri"), str):
            b.add(prediction, PROVKG.featureSnapshot, Literal(snapshot["uri"], datatype=XSD.anyURI))
            b.text(prediction, PROVKG.featureSnapshotDigest, snapshot.get("digest"))


def _subject(b: GraphBuilder, subject: str) -> NamedNode:
    node = b.iri.mint("subject", subject)
    b.add(node, A, DPV.DataSubject)
    b.add(node, A, PROV.Agent)
    b.add(node, RDFS.label, Literal(subject))
    return node


def _consent(b: GraphBuilder, run: NamedNode, facet: dict) -> None:
    for r in facet.get("records") or []:
        if not isinstance(r, dict) or not isinstance(r.get("subject"), str) or r.get("status") not in _CONSENT:
            continue
        record = b.iri.mint("consent", r["subject"], str(r.get("at", "")))
        b.add(record, A, DPV.ConsentRecord)
        b.add(record, A, PROV.Entity)
        b.add(record, DPV.hasDataSubject, _subject(b, r["subject"]))
        b.add(record, DPV.hasConsentStatus, _CONSENT[r["status"]])
        b.add(record, PROVKG.statusAt, time_literal(r.get("at")))
        b.add(record, PROV.wasGeneratedBy, run)
        for purpose in r.get("purposes") or []:
            b.add(record, DPV.hasPurpose, _purpose(b, purpose))
        if isinstance(r.get("legalBasis"), str):
            b.add(record, DPV.hasLegalBasis, curie(r["legalBasis"]))


def _erasure_request(b: GraphBuilder, run: NamedNode, facet: dict) -> None:
    b.add(run, A, PROVKG.ErasureRequest)
    b.add(run, PROVKG.erasureSubject, _subject(b, facet["subject"]))
    requester = b.iri.mint("agent", "requester", facet["requestedBy"])
    b.add(requester, A, PROV.Agent)
    b.add(requester, RDFS.label, Literal(facet["requestedBy"]))
    b.add(run, PROV.wasAssociatedWith, requester)
    b.add(run, PROVKG.gdprArticle, curie(_ARTICLES[facet["article"]]))
    b.add(run, PROVKG.requestReceivedAt, time_literal(facet.get("receivedAt")))
    if isinstance(facet.get("findings"), dict):
        b.add(run, PROVKG.findings, json_literal(facet["findings"]))
    b.text(run, PROVKG.erasureAction, facet.get("action"))
    if facet.get("executedAt"):
        b.add(run, PROVKG.erasureExecutedAt, time_literal(facet["executedAt"]))
