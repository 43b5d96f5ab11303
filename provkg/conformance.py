"""Whole-graph SHACL conformance: ``provkg validate`` as a CI gate, and the
lineage completeness report per model version.

What can be validated: a provkg store (its default graph, the merge of every
event graph), RDF files (Turtle, N-Triples, N-Quads, TriG, JSON-LD, RDF/XML;
every graph of a dataset file is merged), and OpenLineage event files
(``.json`` / ``.jsonl``), which are validated against OpenLineage and mapped
to PROV-O first, exactly as at ingest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from pyoxigraph import DefaultGraph, Quad, RdfFormat, Store, parse

from .entailment import default_entailer
from .ingest import canonical_hash, read_events
from .iris import IriMinter
from .mapping import EventMapper
from .named_queries import UnknownNode, load_named_queries, run_named_query
from .shacl import STAGES, Shapes, ValidationOutcome, validate_store
from .store import LineageStore
from .validation import EventValidator

COMPLETENESS_TARGET = 0.95
_EVENT_SUFFIXES = {".json", ".jsonl"}


class InputError(ValueError):
    """A file to validate cannot be read (not RDF, not an OpenLineage event)."""


def load_files(paths: Iterable[Path], validator: EventValidator, minter: IriMinter) -> Store:
    """Read RDF and OpenLineage event files into the default graph of an
    in-memory store. Raises :class:`InputError` naming the file and the fault."""
    data = Store()
    default = DefaultGraph()
    mapper = EventMapper(minter, default_entailer())
    expanded: list[Path] = []
    for path in paths:  # a folder stands for the event and RDF files in it
        expanded += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for path in expanded:
        if path.suffix in _EVENT_SUFFIXES:
            for file in [path]:
                for event, source, problem in read_events(file):
                    if problem is not None:
                        raise InputError(f"{source}: {problem}")
                    faults = validator.validate(event)
                    if faults:
                        raise InputError(f"{source}: not an OpenLineage 2-0-2 event: "
                                         f"{faults[0].pointer or '/'}: {faults[0].message}")
                    mapped = mapper.map(event, canonical_hash(event), datetime.now(timezone.utc))
                    data.extend(Quad(q.subject, q.predicate, q.object, default) for q in mapped.quads)
            continue
        try:
            fmt = RdfFormat.from_extension(path.suffix.lstrip("."))
            if fmt is None:
                raise InputError(f"{path}: unknown RDF file type {path.suffix!r}")
            quads = parse(path=str(path), format=fmt)
            data.extend(Quad(q.subject, q.predicate, q.object, default) for q in quads)
        except (SyntaxError, OSError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{path}: {exc}") from exc
    return data


def validate(data: Store, shapes: Shapes, stages: Iterable[str] = STAGES) -> ValidationOutcome:
    """Validate the default graph of ``data`` against the shapes of ``stages``."""
    return validate_store(data, shapes.for_stages(stages))


def validate_lineage_store(store: LineageStore, shapes: Shapes, stages: Iterable[str] = STAGES) -> ValidationOutcome:
    return validate(store.store, shapes, stages)


@dataclass
class Completeness:
    """One model version's lineage completeness: of the ``nodes`` in its
    lineage (itself and everything upstream), how many are the focus of no
    SHACL Violation."""

    model_version: str
    label: str | None
    nodes: int
    conforming: int

    @property
    def share(self) -> float:
        return self.conforming / self.nodes if self.nodes else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"modelVersion": self.model_version, "label": self.label, "nodes": self.nodes,
                "conforming": self.conforming, "share": round(self.share, 4),
                "meetsTarget": self.share >= COMPLETENESS_TARGET}


def completeness(store: LineageStore, outcome: ValidationOutcome) -> list[Completeness]:
    """The completeness of every model version's lineage, given a whole-graph
    validation outcome. The target governance teams track is >= 95 %."""
    violating = {r.focus for r in outcome.violations}
    query = load_named_queries()["backward-provenance"]
    rows = []
    versions = store.query(
        "PREFIX provkg: <https://w3id.org/provkg/ns#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
        "SELECT ?v (SAMPLE(?l) AS ?label) WHERE { ?v a provkg:ModelVersion OPTIONAL { ?v rdfs:label ?l } } "
        "GROUP BY ?v ORDER BY ?v")
    for solution in versions:
        version = solution["v"].value
        try:
            answer = run_named_query(store, query, {"node": version})
            nodes = {version} | {row[3] for row in answer.rows}
        except UnknownNode:
            nodes = {version}
        label = solution["label"].value if solution["label"] is not None else None
        rows.append(Completeness(version, label, len(nodes), len(nodes - violating)))
    return rows
