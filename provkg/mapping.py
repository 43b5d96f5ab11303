"""OpenLineage 2-0-2 events -> W3C PROV-O quads in the event's own named graph.

The mapping, facet by facet, is documented in ``docs/mapping.md``. In short:

- job -> ``prov:Plan``; run -> ``prov:Activity`` associated (``prov:qualifiedAssociation``)
  with the producer (a ``prov:SoftwareAgent``) and the job's plan;
- START -> ``prov:startedAtTime``; COMPLETE / FAIL / ABORT -> ``prov:endedAtTime``
  and ``provkg:runState``;
- dataset -> ``prov:Entity`` + ``dcat:Dataset``; an input -> ``prov:used`` (with
  ``prov:qualifiedUsage``); an output of a COMPLETE event -> a dataset version
  (``prov:specializationOf`` the dataset) ``prov:wasGeneratedBy`` the run and
  ``prov:wasDerivedFrom`` each input, with qualified generation and derivation;
- facets -> PROV / DCAT / DQV / Dublin Core terms; a facet with no mapping is
  kept whole as an ``rdf:JSON`` literal.

Every triple depends only on the event itself (except ``provkg:receivedAt``,
which records delivery), so the union of the event graphs does not depend on
arrival order, and the same event twice yields the same triples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from pyoxigraph import Literal, NamedNode, Quad

from .entailment import Entailer
from .graph_builder import GraphBuilder, Measured, json_literal, time_literal, typed_literal
from .iris import IriMinter
from .mapping_ai import AI_FACETS, map_ai_lineage
from .vocab import DCAT, DCT, DQV, PROV, PROVKG, RDFS, XSD, A

TERMINAL_STATES = {"COMPLETE": PROVKG.Completed, "FAIL": PROVKG.Failed, "ABORT": PROVKG.Aborted}


@dataclass
class MappedEvent:
    """The result of mapping one event.

    ``graph``: the event's named graph IRI; ``quads``: every quad, all in that
    graph; ``subject``: the run, job or dataset the event is about.
    """

    graph: NamedNode
    subject: NamedNode
    quads: list[Quad] = field(default_factory=list)


class EventMapper:
    """Maps OpenLineage events to PROV-O quads.

    Input: a decoded event that has passed :class:`provkg.validation.EventValidator`,
    its content hash (``sha256:<hex>`` of the RFC 8785 canonical JSON) and the
    time it was received. Output: a :class:`MappedEvent`. Mapping a valid event
    does not raise.
    """

    def __init__(self, minter: IriMinter, entailer: "Entailer | None" = None):
        self.iri = minter
        self.entailer = entailer

    # -- entry point ---------------------------------------------------------

    def map(self, event: dict, content_hash: str, received_at: datetime) -> MappedEvent:
        graph = self.iri.event_graph(content_hash)
        b = GraphBuilder(graph, self.iri)
        self._event_metadata(b, event, content_hash, received_at)
        if isinstance(event.get("run"), dict) and "runId" in event["run"]:
            subject = self._run_event(b, event)
        elif "dataset" in event:
            ds = event["dataset"]
            subject = self._dataset(b, ds["namespace"], ds["name"])
            target = Measured(subject, subject, ds["name"], None)
            b.touched.append(("declared", target, ds))
            self._dataset_facets(b, target, ds.get("facets") or {})
        else:
            subject = self._job_event(b, event)
        b.add(graph, PROVKG.about, subject)
        map_ai_lineage(b, event)
        quads = list(dict.fromkeys(b.quads))
        if self.entailer is not None:
            quads = self.entailer.materialise(quads)
        return MappedEvent(graph, subject, quads)

    # -- event metadata --------------------------------------------------------

    def _event_metadata(self, b: GraphBuilder, event: dict, content_hash: str, received_at: datetime) -> None:
        g = b.graph
        b.add(g, A, PROVKG.LineageEvent)
        b.add(g, A, PROV.Bundle)
        b.text(g, PROVKG.eventType, event.get("eventType"))
        b.add(g, PROVKG.eventTime, time_literal(event.get("eventTime")))
        b.add(g, PROVKG.producer, self._producer(b, event.get("producer")))
        if isinstance(event.get("schemaURL"), str):
            b.add(g, PROVKG.schemaURL, Literal(event["schemaURL"], datatype=XSD.anyURI))
        b.add(g, PROVKG.receivedAt, Literal(received_at.isoformat(), datatype=XSD.dateTime))
        b.add(g, PROVKG.contentHash, Literal(content_hash))

    def _producer(self, b: GraphBuilder, producer: Any) -> NamedNode | None:
        if not isinstance(producer, str):
            return None
        agent = self.iri.producer(producer)
        b.add(agent, A, PROV.SoftwareAgent)
        b.add(agent, PROVKG.producerURI, Literal(producer, datatype=XSD.anyURI))
        b.add(agent, RDFS.label, Literal(producer))
        return agent

    # -- runs ------------------------------------------------------------------

    def _run_event(self, b: GraphBuilder, event: dict) -> NamedNode:
        run_json, job_json = event["run"], event["job"]
        run_id = str(run_json["runId"])
        run = self.iri.run(run_id)
        job = self._job(b, job_json)
        b.run, b.job = run, job
        event_type = event.get("eventType")
        when = time_literal(event.get("eventTime"))

        b.add(run, A, PROV.Activity)
        b.add(run, A, PROVKG.Run)
        b.add(run, PROVKG.runId, Literal(run_id.lower()))
        b.add(run, RDFS.label, Literal(f"{job_json['name']} run {run_id}"))
        b.add(run, PROVKG.job, job)
        producer = self._producer(b, event.get("producer"))
        if producer is not None:
            self._associate(b, run, producer, job)
        if event_type == "START":
            b.add(run, PROV.startedAtTime, when)
        elif event_type in TERMINAL_STATES:
            b.add(run, PROV.endedAtTime, when)
            b.add(run, PROVKG.runState, TERMINAL_STATES[event_type])
        self._run_facets(b, run, job, run_json.get("facets") or {})

        used: dict[str, tuple[NamedNode, NamedNode, NamedNode]] = {}
        for ds_json in event.get("inputs") or []:
            dataset = self._dataset(b, ds_json["namespace"], ds_json["name"])
            entity = self._input_entity(b, dataset, ds_json)
            usage = self.iri.child(run, "usage", entity.value)
            b.add(run, PROV.used, entity)
            b.add(run, PROV.qualifiedUsage, usage)
            b.add(usage, A, PROV.Usage)
            b.add(usage, PROV.entity, entity)
            if event_type == "START":
                b.add(usage, PROV.atTime, when)
            used[entity.value] = (dataset, entity, usage)
            target = Measured(entity, dataset, ds_json["name"], run)
            b.touched.append(("input", target, ds_json))
            self._dataset_facets(b, target, ds_json.get("facets") or {}, complete=event_type == "COMPLETE")
            self._io_facets(b, target, ds_json.get("inputFacets") or {})

        for ds_json in event.get("outputs") or []:
            dataset = self._dataset(b, ds_json["namespace"], ds_json["name"])
            if event_type == "COMPLETE":
                version = self._output_version(b, dataset, ds_json, run_id)
                self._generation(b, version, dataset, run, when, used)
                target = version
            else:
                # Outputs reported before completion (or by a failed run) are
                # declared, not generated: PROV generation is evidence of a write.
                b.add(run, PROVKG.declaredOutput, dataset)
                version = dataset
            target = Measured(version, dataset, ds_json["name"], run)
            b.touched.append(("output" if event_type == "COMPLETE" else "declared", target, ds_json))
            self._dataset_facets(b, target, ds_json.get("facets") or {}, complete=event_type == "COMPLETE")
            self._io_facets(b, target, ds_json.get("outputFacets") or {})
        return run

    def _associate(self, b: GraphBuilder, run: NamedNode, agent: NamedNode, plan: NamedNode) -> None:
        assoc = self.iri.child(run, "association", agent.value)
        b.add(run, PROV.wasAssociatedWith, agent)
        b.add(run, PROV.qualifiedAssociation, assoc)
        b.add(assoc, A, PROV.Association)
        b.add(assoc, PROV.agent, agent)
        b.add(assoc, PROV.hadPlan, plan)

    def _generation(self, b: GraphBuilder, version: NamedNode, dataset: NamedNode, run: NamedNode,
                    when: Literal | None, used: dict[str, tuple[NamedNode, NamedNode, NamedNode]]) -> None:
        generation = self.iri.child(version, "generation", run.value)
        b.add(version, PROV.wasGeneratedBy, run)
        b.add(version, PROV.qualifiedGeneration, generation)
        b.add(generation, A, PROV.Generation)
        b.add(generation, PROV.activity, run)
        b.add(generation, PROV.atTime, when)
        b.add(version, PROV.generatedAtTime, when)
        for in_dataset, entity, usage in used.values():
            if entity == version:
                continue
            derivation = self.iri.child(version, "derivation", entity.value)
            b.add(version, PROV.wasDerivedFrom, entity)
            b.add(version, PROV.qualifiedDerivation, derivation)
            b.add(derivation, A, PROV.Derivation)
            b.add(derivation, PROV.entity, entity)
            b.add(derivation, PROV.hadActivity, run)
            b.add(derivation, PROV.hadGeneration, self.iri.child(version, "generation", run.value))
            b.add(derivation, PROV.hadUsage, usage)
            if in_dataset != dataset:
                # the same fact at the level of the (generic) datasets, so
                # dataset lineage is one property path
                b.add(dataset, PROV.wasDerivedFrom, in_dataset)

    # -- jobs ------------------------------------------------------------------

    def _job(self, b: GraphBuilder, job_json: dict) -> NamedNode:
        job = self.iri.job(job_json["namespace"], job_json["name"])
        b.add(job, A, PROV.Plan)
        b.add(job, A, PROVKG.Job)
        b.add(job, PROVKG.namespace, Literal(job_json["namespace"]))
        b.add(job, PROVKG.name, Literal(job_json["name"]))
        b.add(job, RDFS.label, Literal(job_json["name"]))
        self._job_facets(b, job, job_json.get("facets") or {})
        return job

    def _job_event(self, b: GraphBuilder, event: dict) -> NamedNode:
        job = self._job(b, event["job"])
        b.job = job
        for side, prop in (("inputs", PROVKG.declaredInput), ("outputs", PROVKG.declaredOutput)):
            for ds_json in event.get(side) or []:
                dataset = self._dataset(b, ds_json["namespace"], ds_json["name"])
                b.add(job, prop, dataset)
                target = Measured(dataset, dataset, ds_json["name"], None)
                b.touched.append(("declared", target, ds_json))
                self._dataset_facets(b, target, ds_json.get("facets") or {})
                self._io_facets(b, target, ds_json.get("inputFacets") or ds_json.get("outputFacets") or {})
        return job

    # -- datasets --------------------------------------------------------------

    def _dataset(self, b: GraphBuilder, namespace: str, name: str) -> NamedNode:
        ds = self.iri.dataset(namespace, name)
        b.add(ds, A, PROV.Entity)
        b.add(ds, A, DCAT.Dataset)
        b.add(ds, A, PROVKG.Dataset)
        b.add(ds, PROVKG.namespace, Literal(namespace))
        b.add(ds, PROVKG.name, Literal(name))
        b.add(ds, RDFS.label, Literal(name))
        return ds

    def _version_node(self, b: GraphBuilder, dataset: NamedNode, version: NamedNode, label: str) -> NamedNode:
        b.add(version, RDFS.label, Literal(label))
        b.add(version, A, PROV.Entity)
        b.add(version, A, PROVKG.DatasetVersion)
        b.add(version, PROV.specializationOf, dataset)
        b.add(version, DCAT.isVersionOf, dataset)
        b.add(dataset, DCAT.hasVersion, version)
        return version

    @staticmethod
    def _stated_version(ds_json: dict) -> str | None:
        facets = ds_json.get("facets") or {}
        facet = facets.get("version")
        if isinstance(facet, dict) and isinstance(facet.get("datasetVersion"), str) and not facet.get("_deleted"):
            return facet["datasetVersion"]
        model = facets.get("provkg_modelVersion")  # a model version names itself
        if isinstance(model, dict) and isinstance(model.get("version"), str):
            return model["version"]
        return None

    def _input_entity(self, b: GraphBuilder, dataset: NamedNode, ds_json: dict) -> NamedNode:
        """The entity a run used: the stated version, else the dataset itself."""
        stated = self._stated_version(ds_json)
        if stated is None:
            return dataset
        version = self._version_node(b, dataset, self.iri.dataset_version(dataset, stated),
                                     f"{ds_json['name']} version {stated}")
        b.add(version, DCAT.version, Literal(stated))
        return version

    def _output_version(self, b: GraphBuilder, dataset: NamedNode, ds_json: dict, run_id: str) -> NamedNode:
        stated = self._stated_version(ds_json)
        if stated is None:
            return self._version_node(b, dataset, self.iri.dataset_version_of_run(dataset, run_id),
                                      f"{ds_json['name']} as written by run {run_id}")
        version = self._version_node(b, dataset, self.iri.dataset_version(dataset, stated),
                                     f"{ds_json['name']} version {stated}")
        b.add(version, DCAT.version, Literal(stated))
        return version

    # -- facets ------------------------------------------------------------------

    def _keep_facet(self, b: GraphBuilder, subject: NamedNode, key: str, facet: Any) -> None:
        """A facet provkg does not map is kept whole, as JSON."""
        node = self.iri.child(subject, "facet", b.graph.value, key)
        b.add(subject, PROVKG.facet, node)
        b.add(node, A, PROVKG.Facet)
        b.add(node, PROVKG.facetName, Literal(key))
        if isinstance(facet, dict):
            b.text(node, PROVKG.facetProducer, facet.get("_producer"))
            if isinstance(facet.get("_schemaURL"), str):
                b.add(node, PROVKG.facetSchemaURL, Literal(facet["_schemaURL"], datatype=XSD.anyURI))
        b.add(node, PROVKG.facetJSON, json_literal(facet))

    def _apply(self, b: GraphBuilder, handlers: dict[str, Callable], subject: NamedNode,
               facets: dict, *args: Any, skip: frozenset[str] = AI_FACETS) -> None:
        for key, facet in facets.items():
            if (isinstance(facet, dict) and facet.get("_deleted")) or key in skip:
                continue  # deleted, or mapped by the AI-lineage pass
            handler = handlers.get(key)
            if handler is None or not isinstance(facet, dict):
                self._keep_facet(b, subject, key, facet)
            else:
                handler(b, subject, facet, *args)

    def _run_facets(self, b: GraphBuilder, run: NamedNode, job: NamedNode, facets: dict) -> None:
        self._apply(b, {
            "parent": self._parent,
            "nominalTime": self._nominal_time,
            "errorMessage": self._error_message,
            "processing_engine": self._processing_engine,
            "externalQuery": self._external_query,
        }, run, facets, job)

    def _job_facets(self, b: GraphBuilder, job: NamedNode, facets: dict) -> None:
        self._apply(b, {
            "sql": self._sql,
            "sourceCode": self._source_code,
            "sourceCodeLocation": self._source_code_location,
            "jobType": self._job_type,
            "documentation": self._documentation,
            "ownership": self._ownership,
        }, job, facets)

    def _dataset_facets(self, b: GraphBuilder, t: Measured, facets: dict, complete: bool = True) -> None:
        """Dataset facets: descriptive ones go on the dataset, measured ones on
        the entity (the version written or read). Column lineage is asserted by
        COMPLETE run events and by JobEvents/DatasetEvents (static lineage);
        in START/RUNNING/FAIL/ABORT events it is kept as JSON, like the
        dataset-level derivation it refines."""
        ds = t.dataset
        handlers: dict[str, Callable] = {
            "schema": lambda b_, _s, f: self._schema(b_, ds, f),
            "documentation": lambda b_, _s, f: self._documentation(b_, ds, f),
            "ownership": lambda b_, _s, f: self._ownership(b_, ds, f),
            "dataSource": lambda b_, _s, f: self._data_source(b_, ds, f),
            "symlinks": lambda b_, _s, f: self._symlinks(b_, ds, f),
            "datasetType": lambda b_, _s, f: self._dataset_type(b_, ds, f),
            "storage": lambda b_, _s, f: self._storage(b_, ds, f),
            "version": lambda b_, _s, f: self._version_facet(b_, t, f),
            "lifecycleStateChange": lambda b_, _s, f: b_.text(t.entity, PROVKG.lifecycleStateChange,
                                                              f.get("lifecycleStateChange")),
            "dataQualityMetrics": lambda b_, _s, f: self._quality_metrics(b_, t, f, "dataQualityMetrics"),
            "dataQualityAssertions": lambda b_, _s, f: self._quality_assertions(b_, t, f),
        }
        if complete:
            handlers["columnLineage"] = lambda b_, _s, f: self._column_lineage(b_, ds, f, t.run)
        self._apply(b, handlers, ds, facets)

    def _io_facets(self, b: GraphBuilder, t: Measured, facets: dict) -> None:
        handlers = {
            "dataQualityMetrics": lambda b_, _s, f: self._quality_metrics(b_, t, f, "dataQualityMetrics"),
            "dataQualityAssertions": lambda b_, _s, f: self._quality_assertions(b_, t, f),
            "outputStatistics": lambda b_, _s, f: self._statistics(b_, t, f, "outputStatistics"),
            "inputStatistics": lambda b_, _s, f: self._statistics(b_, t, f, "inputStatistics"),
        }
        # the AI pass reads dataset facets only; anything else here is kept
        self._apply(b, handlers, t.entity, facets, skip=frozenset())

    def _version_facet(self, b: GraphBuilder, t: Measured, facet: dict) -> None:
        """The version facet names the entity read or written (see
        ``_input_entity``/``_output_version``); where no version entity was
        made (declared outputs, static events) it still records the version."""
        stated = facet.get("datasetVersion")
        if isinstance(stated, str) and t.entity == t.dataset:
            version = self._version_node(b, t.dataset, self.iri.dataset_version(t.dataset, stated),
                                         f"{t.name} version {stated}")
            b.add(version, DCAT.version, Literal(stated))

    # run facets

    def _parent(self, b: GraphBuilder, run: NamedNode, facet: dict, job: NamedNode) -> None:
        # A parent run contains its child (an Airflow DAG run contains its task
        # runs): that is dct:isPartOf. prov:wasInformedBy would claim the child
        # used something the parent generated, which the facet does not say.
        for key, prop in (("run", DCT.isPartOf), ("root", PROVKG.rootRun)):
            part = facet.get(key) if key == "run" else (facet.get("root") or {}).get("run")
            job_part = facet.get("job") if key == "run" else (facet.get("root") or {}).get("job")
            if not isinstance(part, dict) or "runId" not in part:
                continue
            parent_run = self.iri.run(str(part["runId"]))
            b.add(run, prop, parent_run)
            b.add(parent_run, A, PROV.Activity)
            b.add(parent_run, A, PROVKG.Run)
            b.add(parent_run, PROVKG.runId, Literal(str(part["runId"]).lower()))
            if isinstance(job_part, dict) and "namespace" in job_part and "name" in job_part:
                parent_job = self.iri.job(job_part["namespace"], job_part["name"])
                b.add(parent_job, A, PROV.Plan)
                b.add(parent_job, A, PROVKG.Job)
                b.add(parent_job, PROVKG.namespace, Literal(job_part["namespace"]))
                b.add(parent_job, PROVKG.name, Literal(job_part["name"]))
                b.add(parent_run, PROVKG.job, parent_job)
                if key == "run" and parent_job != job:
                    b.add(job, DCT.isPartOf, parent_job)

    def _nominal_time(self, b: GraphBuilder, run: NamedNode, facet: dict, _job: NamedNode) -> None:
        b.add(run, PROVKG.nominalStartTime, time_literal(facet.get("nominalStartTime")))
        b.add(run, PROVKG.nominalEndTime, time_literal(facet.get("nominalEndTime")))

    def _error_message(self, b: GraphBuilder, run: NamedNode, facet: dict, _job: NamedNode) -> None:
        b.text(run, PROVKG.errorMessage, facet.get("message"))
        b.text(run, PROVKG.programmingLanguage, facet.get("programmingLanguage"))
        b.text(run, PROVKG.stackTrace, facet.get("stackTrace"))

    def _processing_engine(self, b: GraphBuilder, run: NamedNode, facet: dict, job: NamedNode) -> None:
        name, version = facet.get("name"), facet.get("version")
        name = name if isinstance(name, str) else ""
        version = version if isinstance(version, str) else ""
        engine = self.iri.engine(name, version)
        b.add(engine, A, PROV.SoftwareAgent)
        b.text(engine, RDFS.label, name)
        b.text(engine, PROVKG.softwareVersion, version)
        b.text(engine, PROVKG.openlineageAdapterVersion, facet.get("openlineageAdapterVersion"))
        self._associate(b, run, engine, job)

    def _external_query(self, b: GraphBuilder, run: NamedNode, facet: dict, _job: NamedNode) -> None:
        b.text(run, PROVKG.externalQueryId, facet.get("externalQueryId"))
        b.text(run, PROVKG.externalQuerySource, facet.get("source"))

    # job facets

    def _sql(self, b: GraphBuilder, job: NamedNode, facet: dict) -> None:
        b.text(job, PROVKG.sqlQuery, facet.get("query"))
        b.text(job, PROVKG.sqlDialect, facet.get("dialect"))

    def _source_code(self, b: GraphBuilder, job: NamedNode, facet: dict) -> None:
        b.text(job, PROVKG.sourceCode, facet.get("sourceCode"))
        b.text(job, PROVKG.programmingLanguage, facet.get("language"))

    def _source_code_location(self, b: GraphBuilder, job: NamedNode, facet: dict) -> None:
        for key, prop in (("type", PROVKG.vcsType), ("path", PROVKG.codePath), ("version", PROVKG.codeVersion),
                          ("tag", PROVKG.codeTag), ("branch", PROVKG.codeBranch)):
            b.text(job, prop, facet.get(key))
        for key, prop in (("url", PROVKG.codeURL), ("repoUrl", PROVKG.codeRepository)):
            if isinstance(facet.get(key), str):
                b.add(job, prop, Literal(facet[key], datatype=XSD.anyURI))

    def _job_type(self, b: GraphBuilder, job: NamedNode, facet: dict) -> None:
        b.text(job, PROVKG.jobType, facet.get("jobType"))
        b.text(job, PROVKG.integration, facet.get("integration"))
        b.text(job, PROVKG.processingType, facet.get("processingType"))

    def _documentation(self, b: GraphBuilder, subject: NamedNode, facet: dict) -> None:
        b.text(subject, DCT.description, facet.get("description"))

    def _ownership(self, b: GraphBuilder, subject: NamedNode, facet: dict) -> None:
        for owner in facet.get("owners") or []:
            if not isinstance(owner, dict) or not isinstance(owner.get("name"), str):
                continue
            agent = self.iri.owner(owner["name"])
            b.add(agent, A, PROV.Agent)
            b.add(agent, RDFS.label, Literal(owner["name"]))
            b.text(agent, PROVKG.ownerType, owner.get("type"))
            b.add(subject, PROV.wasAttributedTo, agent)

    # dataset facets

    def _schema(self, b: GraphBuilder, dataset: NamedNode, facet: dict) -> None:
        def fields(items: Any, prefix: str) -> None:
            for position, f in enumerate(items or [], start=1):
                if not isinstance(f, dict) or not isinstance(f.get("name"), str):
                    continue
                path = prefix + f["name"]
                column = b.column(dataset, path)
                b.text(column, PROVKG.fieldType, f.get("type"))
                b.text(column, DCT.description, f.get("description"))
                ordinal = f.get("ordinal_position", position if not prefix else None)
                if isinstance(ordinal, int):
                    b.value(column, PROVKG.ordinalPosition, ordinal)
                fields(f.get("fields"), path + ".")

        fields(facet.get("fields"), "")


    def _column_lineage(self, b: GraphBuilder, dataset: NamedNode, facet: dict, run: NamedNode | None) -> None:
        for out_name, spec in (facet.get("fields") or {}).items():
            if not isinstance(spec, dict):
                continue
            out_col = b.column(dataset, out_name)
            for inp in spec.get("inputFields") or []:
                in_col = self._input_column(b, inp)
                if in_col is None:
                    continue
                # one qualified derivation per run: two runs may transform differently
                derivation = self.iri.child(out_col, "derivation", in_col.value, run.value if run else "")
                b.add(out_col, PROV.wasDerivedFrom, in_col)
                b.add(out_col, PROV.qualifiedDerivation, derivation)
                b.add(derivation, A, PROV.Derivation)
                b.add(derivation, PROV.entity, in_col)
                if run is not None:
                    b.add(derivation, PROV.hadActivity, run)
                b.text(derivation, PROVKG.transformationType, spec.get("transformationType"))
                b.text(derivation, DCT.description, spec.get("transformationDescription"))
                for t in inp.get("transformations") or []:
                    self._transformation(b, derivation, t)
        for inp in facet.get("dataset") or []:
            # columns that influence the whole dataset (filters, joins, sorts)
            in_col = self._input_column(b, inp)
            if in_col is None:
                continue
            b.add(dataset, PROV.wasInfluencedBy, in_col)
            influence = self.iri.child(dataset, "influence", in_col.value)
            b.add(dataset, PROV.qualifiedInfluence, influence)
            b.add(influence, A, PROV.Influence)
            b.add(influence, PROV.influencer, in_col)
            for t in inp.get("transformations") or []:
                self._transformation(b, influence, t)

    def _input_column(self, b: GraphBuilder, inp: Any) -> NamedNode | None:
        if not isinstance(inp, dict) or not all(isinstance(inp.get(k), str) for k in ("namespace", "name", "field")):
            return None
        in_ds = self._dataset(b, inp["namespace"], inp["name"])
        return b.column(in_ds, inp["field"])

    def _transformation(self, b: GraphBuilder, influence: NamedNode, t: Any) -> None:
        if not isinstance(t, dict):
            return
        node = self.iri.child(influence, "transformation", json.dumps(t, sort_keys=True))
        b.add(influence, PROVKG.transformation, node)
        b.add(node, A, PROVKG.Transformation)
        b.text(node, PROVKG.transformationType, t.get("type"))
        b.text(node, PROVKG.transformationSubtype, t.get("subtype"))
        b.text(node, DCT.description, t.get("description"))
        b.value(node, PROVKG.masking, t.get("masking"))

    def _data_source(self, b: GraphBuilder, dataset: NamedNode, facet: dict) -> None:
        name = facet.get("name")
        if not isinstance(name, str):
            return
        service = self.iri.data_source(name)
        b.add(service, A, DCAT.DataService)
        b.add(service, DCT.title, Literal(name))
        if isinstance(facet.get("uri"), str):
            b.add(service, DCAT.endpointURL, Literal(facet["uri"], datatype=XSD.anyURI))
        b.add(dataset, DCAT.accessService, service)

    def _symlinks(self, b: GraphBuilder, dataset: NamedNode, facet: dict) -> None:
        for ident in facet.get("identifiers") or []:
            if isinstance(ident, dict) and isinstance(ident.get("namespace"), str) and isinstance(ident.get("name"), str):
                other = self._dataset(b, ident["namespace"], ident["name"])
                if other != dataset:
                    b.add(dataset, PROV.alternateOf, other)

    def _dataset_type(self, b: GraphBuilder, dataset: NamedNode, facet: dict) -> None:
        b.text(dataset, PROVKG.datasetType, facet.get("datasetType"))
        b.text(dataset, PROVKG.datasetSubType, facet.get("subType"))

    def _storage(self, b: GraphBuilder, dataset: NamedNode, facet: dict) -> None:
        b.text(dataset, PROVKG.storageLayer, facet.get("storageLayer"))
        b.text(dataset, DCT.format, facet.get("fileFormat"))

    # quality (W3C DQV)

    def _measurement(self, b: GraphBuilder, t: Measured, source: str, metric: NamedNode, value: Any,
                     column: str | None = None, level: str | None = None) -> NamedNode | None:
        """One dqv:QualityMeasurement, named per event graph and facet so two
        reports of the same metric (START and COMPLETE, two facets) stay apart."""
        literal = typed_literal(value)
        if literal is None:
            return None
        m = b.measurement(t, source, metric, literal, column or "", level or "")
        if column is not None:
            b.add(m, PROVKG.column, b.column(t.dataset, column))
        if level is not None:
            b.add(m, PROVKG.quantileLevel, Literal(level))
        return m

    def _quality_metrics(self, b: GraphBuilder, t: Measured, facet: dict, source: str) -> None:
        for key, metric in (("rowCount", PROVKG.rowCount), ("bytes", PROVKG.byteCount),
                            ("fileCount", PROVKG.fileCount)):
            self._measurement(b, t, source, metric, facet.get(key))
        b.add(t.entity, PROVKG.lastUpdated, time_literal(facet.get("lastUpdated")))
        for column, metrics in (facet.get("columnMetrics") or {}).items():
            if not isinstance(metrics, dict):
                continue
            for key in ("nullCount", "distinctCount", "sum", "count", "min", "max"):
                self._measurement(b, t, source, PROVKG[key], metrics.get(key), column=column)
            for level, value in (metrics.get("quantiles") or {}).items():
                self._measurement(b, t, source, PROVKG.quantile, value, column=column, level=str(level))

    def _quality_assertions(self, b: GraphBuilder, t: Measured, facet: dict) -> None:
        for i, a in enumerate(facet.get("assertions") or []):
            if not isinstance(a, dict) or not isinstance(a.get("assertion"), str):
                continue
            metric = self.iri.assertion(a["assertion"])
            b.add(metric, A, DQV.Metric)
            b.add(metric, RDFS.label, Literal(a["assertion"]))
            column = a.get("column") if isinstance(a.get("column"), str) else None
            # the position keeps two assertions of one kind on one column apart
            m = self._measurement(b, t, f"dataQualityAssertions/{i}", metric, a.get("success"), column=column)
            if m is not None:
                b.text(m, PROVKG.assertionSeverity, a.get("severity"))

    def _statistics(self, b: GraphBuilder, t: Measured, facet: dict, source: str) -> None:
        for key, metric in (("rowCount", PROVKG.rowCount), ("size", PROVKG.byteCount),
                            ("fileCount", PROVKG.fileCount)):
            self._measurement(b, t, source, metric, facet.get(key))


__all__ = ["EventMapper", "MappedEvent", "time_literal", "json_literal"]
