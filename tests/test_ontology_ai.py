"""The provkg ontology with its AI-lineage terms (docs/ai-lineage.md): it loads,
its OWL 2 RL closure computes and entails what the queries and the ingest-time
materialisation rely on, every provkg term is labelled and defined, and the
generated docs/ontology.md is up to date."""

from __future__ import annotations

from pathlib import Path

import owlrl
import pytest
import rdflib
from rdflib.collection import Collection
from rdflib.namespace import OWL, RDF, RDFS, SKOS

from provkg.ontology_docs import REGENERATE, render_markdown
from provkg.resources import ontologies_dir

NS = "https://w3id.org/provkg/ns#"
PROVKG = rdflib.Namespace(NS)
PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
MLS = rdflib.Namespace("http://www.w3.org/ns/mls#")
FAIR4ML = rdflib.Namespace("https://w3id.org/fair4ml#")
DPV = rdflib.Namespace("https://w3id.org/dpv#")
DQV = rdflib.Namespace("http://www.w3.org/ns/dqv#")
AI = rdflib.Namespace("https://w3id.org/dpv/ai#")
ONTOLOGY_IRI = rdflib.URIRef("https://w3id.org/provkg/ns")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "ontology.md"

# The provkg terms docs/ai-lineage.md §1 and §3 name, by kind.
AI_CLASSES = [
    "FeatureEngineeringRun", "LabellingRun", "TrainingRun", "EvaluationRun", "DeploymentRun",
    "InferenceRun", "ErasureRequest", "Model", "ModelVersion", "FeatureSet", "Feature",
    "Deployment", "Prediction", "CaptureTier",
]
AI_INDIVIDUALS = ["FullSnapshot", "Sampled", "ModelVersionOnly"]
AI_OBJECT_PROPERTIES = [
    "tag", "trainedBy", "deploys", "madeBy", "servedBy", "aboutSubject", "captureTier",
    "holdsDataOf", "erasureSubject", "gdprArticle",
]
AI_DATATYPE_PROPERTIES = [
    "tagKey", "tagValue", "tagSource", "containsPersonalData", "containsSpecialCategoryData",
    "retentionPeriod", "artifactDigest", "framework", "provider", "highRisk",
    "trainingDataDescription", "codeVersion", "algorithm", "task", "randomSeed", "environment",
    "protectedAttribute", "group", "referenceGroup", "threshold", "exceedsThreshold",
    "activeFrom", "activeUntil", "endpoint", "servingConfig", "consequential", "featureSnapshot",
    "featureSnapshotDigest", "statusAt", "findings", "erasureAction",
]
# Terms the AI mapping (provkg/mapping_ai.py) and the named queries use beyond
# those docs/ai-lineage.md names.
IMPLEMENTATION_TERMS = [
    ("FairnessMeasurement", OWL.Class), ("heldIn", OWL.ObjectProperty),
    ("subjectOf", OWL.ObjectProperty), ("split", OWL.DatatypeProperty),
    ("deploymentEnvironment", OWL.DatatypeProperty), ("predictionOutput", OWL.DatatypeProperty),
    ("requestReceivedAt", OWL.DatatypeProperty), ("stageBias", OWL.AnnotationProperty),
]


@pytest.fixture(scope="module")
def ontology() -> rdflib.Graph:
    return rdflib.Graph().parse(ontologies_dir() / "provkg.ttl", format="turtle")


@pytest.fixture(scope="module")
def closure(ontology) -> rdflib.Graph:
    graph = rdflib.Graph()
    for triple in ontology:
        graph.add(triple)
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics).expand(graph)
    return graph


def test_ontology_parses_and_declares_itself(ontology):
    assert (ONTOLOGY_IRI, RDF.type, OWL.Ontology) in ontology
    assert len(ontology) > 900


def test_owl_rl_closure_has_no_errors_or_inconsistency(closure, ontology):
    assert len(closure) > len(ontology)
    # owlrl reports rule violations as nodes typed with this class.
    errors = rdflib.URIRef("http://www.daml.org/2002/03/agents/agent-ont#ErrorMessage")
    assert not list(closure.subjects(RDF.type, errors))
    assert not list(closure.subjects(RDF.type, OWL.Nothing))


@pytest.mark.parametrize(
    "sub, relation, sup",
    [
        # docs/ai-lineage.md §4: the facts the queries and ingest materialisation rely on.
        (PROVKG.TrainingRun, RDFS.subClassOf, PROV.Activity),
        (PROVKG.ModelVersion, RDFS.subClassOf, PROV.Entity),
        (PROVKG.madeBy, RDFS.subPropertyOf, PROV.wasDerivedFrom),
        (PROVKG.aboutSubject, RDFS.subPropertyOf, DPV.hasDataSubject),
        # The other stage runs and the AI-lineage entities.
        (PROVKG.FeatureEngineeringRun, RDFS.subClassOf, PROV.Activity),
        (PROVKG.LabellingRun, RDFS.subClassOf, PROV.Activity),
        (PROVKG.EvaluationRun, RDFS.subClassOf, PROV.Activity),
        (PROVKG.DeploymentRun, RDFS.subClassOf, PROV.Activity),
        (PROVKG.InferenceRun, RDFS.subClassOf, PROV.Activity),
        (PROVKG.ErasureRequest, RDFS.subClassOf, PROV.Activity),
        (PROVKG.TrainingRun, RDFS.subClassOf, MLS.Run),
        (PROVKG.ModelVersion, RDFS.subClassOf, DCAT.Dataset),
        (PROVKG.Model, RDFS.subClassOf, PROV.Entity),
        (PROVKG.Model, RDFS.subClassOf, MLS.Model),
        (PROVKG.Model, RDFS.subClassOf, FAIR4ML.MLModel),
        (PROVKG.FeatureSet, RDFS.subClassOf, PROV.Entity),
        (PROVKG.Feature, RDFS.subClassOf, PROV.Entity),
        (PROVKG.Feature, RDFS.subClassOf, MLS.Feature),
        (PROVKG.Deployment, RDFS.subClassOf, PROV.Entity),
        (PROVKG.Prediction, RDFS.subClassOf, PROV.Entity),
        (PROVKG.trainedBy, RDFS.subPropertyOf, PROV.wasGeneratedBy),
        (PROVKG.deploys, RDFS.subPropertyOf, PROV.wasDerivedFrom),
        (PROVKG.servedBy, RDFS.subPropertyOf, PROV.wasInfluencedBy),
        (PROVKG.holdsDataOf, RDFS.subPropertyOf, DPV.hasDataSubject),
        (FAIR4ML.trainedOn, RDFS.subPropertyOf, PROV.wasDerivedFrom),
        (PROVKG.FairnessMeasurement, RDFS.subClassOf, DQV.QualityMeasurement),
    ],
)
def test_closure_entails(closure, sub, relation, sup):
    assert (sub, relation, sup) in closure


def test_stage_bias_maps_each_stage_to_its_dpv_bias(ontology):
    assert (PROVKG.stageBias, RDF.type, OWL.AnnotationProperty) in ontology
    assert (PROVKG.Dataset, PROVKG.stageBias, AI.DataBias) in ontology
    assert (PROVKG.FeatureEngineeringRun, PROVKG.stageBias, AI.FeatureEngineeringBias) in ontology
    assert (PROVKG.LabellingRun, PROVKG.stageBias, AI.DataLabellingProcessBias) in ontology
    # the model stage of queries/bias-attribution.rq
    assert (PROVKG.ModelVersion, PROVKG.stageBias, AI.ModelBias) in ontology


def test_capture_tiers_are_the_closed_set(ontology):
    for local in AI_INDIVIDUALS:
        assert (PROVKG[local], RDF.type, PROVKG.CaptureTier) in ontology
        assert (PROVKG[local], RDF.type, OWL.NamedIndividual) in ontology
    one_of = [
        list(Collection(ontology, lst))
        for eq in ontology.objects(PROVKG.CaptureTier, OWL.equivalentClass)
        for lst in ontology.objects(eq, OWL.oneOf)
    ]
    assert one_of == [[PROVKG.FullSnapshot, PROVKG.Sampled, PROVKG.ModelVersionOnly]]


def test_every_ai_lineage_term_is_declared(ontology):
    expected = (
        [(c, OWL.Class) for c in AI_CLASSES]
        + [(p, OWL.ObjectProperty) for p in AI_OBJECT_PROPERTIES]
        + [(p, OWL.DatatypeProperty) for p in AI_DATATYPE_PROPERTIES]
        + IMPLEMENTATION_TERMS
    )
    missing = [f"provkg:{local} a {kind.n3()}" for local, kind in expected
               if (PROVKG[local], RDF.type, kind) not in ontology]
    assert not missing


def test_every_provkg_term_is_labelled_defined_and_attributed(ontology):
    kinds = (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty,
             OWL.NamedIndividual)
    terms = {
        s for kind in kinds for s in ontology.subjects(RDF.type, kind)
        if isinstance(s, rdflib.URIRef) and str(s).startswith(NS)
    }
    assert len(terms) > 130
    problems = []
    for term in sorted(terms):
        labels = [o for o in ontology.objects(term, RDFS.label) if getattr(o, "language", None) == "en"]
        definitions = [o for o in ontology.objects(term, SKOS.definition)
                       if getattr(o, "language", None) == "en"]
        if not labels:
            problems.append(f"{term} has no rdfs:label@en")
        if not definitions:
            problems.append(f"{term} has no skos:definition@en")
        if (term, RDFS.isDefinedBy, ONTOLOGY_IRI) not in ontology:
            problems.append(f"{term} has no rdfs:isDefinedBy")
    assert not problems


def test_every_term_used_in_an_axiom_is_typed(ontology):
    """OWL tools need a declaration for every IRI the axioms name (no imports)."""
    def members(node):
        if isinstance(node, rdflib.BNode):
            return [m for p in (OWL.unionOf, OWL.oneOf) for lst in ontology.objects(node, p)
                    for m in Collection(ontology, lst)]
        return [node]

    builtin = (str(RDF), str(RDFS), str(OWL), "http://www.w3.org/2001/XMLSchema#")
    named = set()
    for pred in (RDFS.subClassOf, RDFS.subPropertyOf, RDFS.domain, RDFS.range,
                 OWL.equivalentClass, OWL.inverseOf):
        for s, o in ontology.subject_objects(pred):
            named.update([s, *members(o)])
    named.update(p for _, p, _ in ontology)
    untyped = sorted(
        str(n) for n in named
        if isinstance(n, rdflib.URIRef) and not str(n).startswith(builtin)
        and (n, RDF.type, None) not in ontology
    )
    assert not untyped


def test_docs_ontology_md_is_up_to_date():
    rendered = render_markdown()
    assert DOCS.read_text(encoding="utf-8") == rendered, (
        f"docs/ontology.md is out of date; regenerate with: {REGENERATE}"
    )


def test_docs_render_every_provkg_term(ontology):
    rendered = render_markdown(ontology)
    for local in AI_CLASSES + AI_INDIVIDUALS + AI_OBJECT_PROPERTIES + AI_DATATYPE_PROPERTIES:
        assert f"`provkg:{local}`" in rendered
    assert "python -m provkg.ontology_docs > docs/ontology.md" in rendered
    assert render_markdown(ontologies_dir() / "provkg.ttl") == rendered


def test_render_markdown_rejects_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError):
        render_markdown(tmp_path / "missing.ttl")
    with pytest.raises(TypeError):
        render_markdown(42)
