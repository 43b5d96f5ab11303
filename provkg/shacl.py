"""SHACL validation of the lineage graph (W3C SHACL, incl. SHACL-SPARQL §5), with pyshacl.

The shapes in ``shapes/*.ttl`` declare a stage (``provkg:validationStage``):

- ``ingest`` shapes (PROV-O well-formedness, per-event lineage completeness)
  run on every event before it is acknowledged, on the event's own triples
  plus their neighbourhood in the store (the facts about the same nodes that
  the shapes read: types, times, generations, versions);
- ``store`` shapes (whole-graph lineage completeness, AI governance, policy)
  need facts from many events and run over the store by ``provkg validate``
  and the completeness report.

pyshacl validates directly over pyoxigraph stores (its Oxigraph data graph),
so SHACL-SPARQL constraints and targets run as Oxigraph SPARQL, not over an
rdflib copy of the graph.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any, Iterable, Iterator
from xml.etree import ElementTree

import pyshacl
import rdflib
from pyoxigraph import BlankNode, DefaultGraph, Literal, NamedNode, Quad, Store
from pyshacl import Validator
from pyshacl.errors import ConstraintLoadError, ReportableRuntimeError, ShapeLoadError
from pyshacl.graph_abstraction import DataGraph
from pyshacl.shapes_graph import ShapesGraph

from .resources import shapes_dir
from .store import merged_quads
from .vocab import DCAT, DCT, PROV, PROVKG, XSD, A, Namespace

SH = Namespace("http://www.w3.org/ns/shacl#")
# what the ingest shapes read about a node beyond the event itself
_NEIGHBOURHOOD = [A, PROV.wasGeneratedBy, PROV.generatedAtTime, PROV.startedAtTime, PROV.endedAtTime,
                  PROV.specializationOf, DCT.isPartOf, PROVKG.job, PROVKG.runId, PROVKG.namespace, PROVKG.name,
                  PROVKG.fieldName, DCAT.version]
_NEIGHBOURHOOD_SET = frozenset(_NEIGHBOURHOOD)
_SCAN_LIMIT = 32
_SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
_STAGE = rdflib.URIRef(PROVKG.validationStage.value)
STAGES = ("ingest", "store")


class ShapesError(ValueError):
    """A shapes file could not be read, or declares no known stage."""


@dataclass(frozen=True)
class ShapeResult:
    """One SHACL validation result (SHACL §3.6.2): focus node, path, severity
    (``Violation``, ``Warning`` or ``Info``), message, source shape, value and
    constraint component, each as text (None when absent)."""

    focus: str
    severity: str
    message: str
    path: str | None = None
    shape: str | None = None
    value: str | None = None
    component: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class ValidationOutcome:
    """The results of one validation, in the forms CI systems and people read."""

    results: list[ShapeResult] = field(default_factory=list)

    @property
    def violations(self) -> list[ShapeResult]:
        return [r for r in self.results if r.severity == "Violation"]

    @property
    def warnings(self) -> list[ShapeResult]:
        return [r for r in self.results if r.severity == "Warning"]

    @property
    def conforms(self) -> bool:
        """True when there is no Violation (Warnings and Infos do not break conformance here)."""
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {"conforms": self.conforms, "violations": len(self.violations), "warnings": len(self.warnings),
                "results": [r.as_dict() for r in self.results]}

    def to_text(self) -> str:
        lines = [f"{'conforms' if self.conforms else 'DOES NOT CONFORM'}: "
                 f"{len(self.violations)} violations, {len(self.warnings)} warnings"]
        for r in self.results:
            where = f" {r.path}" if r.path else ""
            lines.append(f"  {r.severity}: {r.focus}{where}: {r.message}")
        return "\n".join(lines) + "\n"

    def report_quads(self, report: NamedNode, graph: NamedNode | DefaultGraph) -> list[Quad]:
        """The SHACL validation report (SHACL §3.6) as quads under ``report``;
        results are named ``{report}/result/{i}``."""
        quads = [Quad(report, A, SH.ValidationReport, graph),
                 Quad(report, SH.conforms, Literal("true" if self.conforms else "false", datatype=XSD.boolean), graph)]
        for i, r in enumerate(self.results):
            node = NamedNode(f"{report.value}/result/{i}")
            quads += [Quad(report, SH.result, node, graph), Quad(node, A, SH.ValidationResult, graph),
                      Quad(node, SH.resultSeverity, SH[r.severity], graph),
                      Quad(node, SH.resultMessage, Literal(r.message), graph),
                      Quad(node, SH.focusNode, _term(r.focus), graph)]
            for prop, value in ((SH.resultPath, r.path), (SH.sourceShape, r.shape),
                                (SH.sourceConstraintComponent, r.component)):
                if value and value.startswith(("http://", "https://", "urn:")):
                    quads.append(Quad(node, prop, NamedNode(value), graph))
            if r.value is not None:
                quads.append(Quad(node, SH.value, _term(r.value), graph))
        return quads

    def to_turtle(self) -> str:
        from pyoxigraph import RdfFormat, serialize

        quads = self.report_quads(NamedNode("urn:provkg:validation-report"), DefaultGraph())
        return serialize([q.triple for q in quads], format=RdfFormat.TURTLE,
                         prefixes={"sh": SH.iri, "prov": PROV.iri, "provkg": PROVKG.iri}).decode("utf-8")

    def to_junit(self, suite: str = "provkg SHACL validation") -> str:
        """JUnit XML: one test case per focus node and shape; Violations are
        failures, Warnings are reported as system-out of a passing case."""
        cases: dict[tuple[str, str], list[ShapeResult]] = {}
        for r in self.results:
            cases.setdefault((r.shape or "shape", r.focus), []).append(r)
        root = ElementTree.Element("testsuites")
        ts = ElementTree.SubElement(root, "testsuite", name=suite, tests=str(max(len(cases), 1)),
                                    failures=str(sum(1 for rs in cases.values()
                                                     if any(r.severity == "Violation" for r in rs))),
                                    errors="0")
        if not cases:
            ElementTree.SubElement(ts, "testcase", classname="provkg.shacl", name="graph conforms")
        for (shape, focus), rs in sorted(cases.items()):
            case = ElementTree.SubElement(ts, "testcase", classname=shape, name=focus)
            violations = [r for r in rs if r.severity == "Violation"]
            if violations:
                failure = ElementTree.SubElement(case, "failure", message=violations[0].message, type="Violation")
                failure.text = "\n".join(f"{r.severity}: {r.path or ''} {r.message}".strip() for r in rs)
            else:
                out = ElementTree.SubElement(case, "system-out")
                out.text = "\n".join(f"{r.severity}: {r.message}" for r in rs)
        return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _term(text: str) -> NamedNode | Literal | BlankNode:
    if text.startswith(("http://", "https://", "urn:")):
        try:
            return NamedNode(text)
        except ValueError:
            pass
    return Literal(text)


def _text(term: Any) -> str | None:
    if term is None:
        return None
    return str(term)


def shapes_graph() -> rdflib.Graph:
    """An empty rdflib graph to hold shapes: rdflib's SimpleMemory store.

    pyshacl reads the shapes graph on every run (each shape's targets,
    constraints, severity, messages), and a shapes graph has no named graphs
    to keep apart: SimpleMemory, rdflib's triple store without contexts,
    answers those reads faster than the default Memory store (pyshacl's p50
    per ingest event −6 %, the same results: docs/benchmark.md, session 13)."""
    return rdflib.Graph(store="SimpleMemory")


class Shapes:
    """The shapes graphs by stage.

    Input: shapes files (default: ``shapes/*.ttl``) and extra files added to
    every stage (a CI's own rules). Raises :class:`ShapesError` for a file that
    does not parse or names an unknown stage."""

    def __init__(self, files: Iterable[Path] | None = None, extra: Iterable[Path] = ()):
        self.graphs: dict[str, rdflib.Graph] = {stage: shapes_graph() for stage in STAGES}
        for path in list(files) if files is not None else sorted(shapes_dir().glob("*.ttl")):
            graph = _parse(path)
            stages = {str(o) for o in graph.objects(None, _STAGE)} or {"store"}
            unknown = stages - set(STAGES)
            if unknown:
                raise ShapesError(f"{path}: unknown provkg:validationStage {sorted(unknown)}; use ingest or store")
            for stage in stages:
                self.graphs[stage] += graph
        for path in extra:
            graph = _parse(path)
            for stage in STAGES:
                self.graphs[stage] += graph

    def for_stages(self, stages: Iterable[str]) -> rdflib.Graph:
        out = shapes_graph()
        for stage in stages:
            out += self.graphs[stage]
        return out


def _parse(path: Path) -> rdflib.Graph:
    try:
        return rdflib.Graph().parse(path, format="turtle")
    except Exception as exc:  # rdflib raises many parser-specific types
        raise ShapesError(f"shapes file {path} does not parse: {exc}") from exc


def _shape_name(shape: Any, shapes: rdflib.Graph | None) -> str | None:
    """A stable name for a result's source shape: its IRI, or for a blank-node
    property shape the IRI of the node shape holding it (pyshacl labels blank
    nodes afresh on every run)."""
    if shape is None or isinstance(shape, rdflib.URIRef) or shapes is None:
        return _text(shape)
    for _ in range(4):  # property shapes nest in sh:property, sh:not, sh:or lists ...
        parent = shapes.value(predicate=_SH.property, object=shape)
        if parent is None:
            break
        if isinstance(parent, rdflib.URIRef):
            return str(parent)
        shape = parent
    return _text(shape)


def _results(report: rdflib.Graph, shapes: rdflib.Graph | None = None) -> list[ShapeResult]:
    out = []
    for node in report.subjects(rdflib.RDF.type, _SH.ValidationResult):
        severity = report.value(node, _SH.resultSeverity)
        out.append(ShapeResult(
            focus=_text(report.value(node, _SH.focusNode)) or "",
            severity=str(severity).rsplit("#", 1)[-1] if severity is not None else "Violation",
            message=_text(report.value(node, _SH.resultMessage)) or "",
            path=_text(report.value(node, _SH.resultPath)),
            shape=_shape_name(report.value(node, _SH.sourceShape), shapes),
            value=_text(report.value(node, _SH.value)),
            component=_text(report.value(node, _SH.sourceConstraintComponent)),
        ))
    # blank-node shapes get fresh labels per run: order by what is stable
    out.sort(key=lambda r: (r.severity != "Violation", r.focus, r.path or "", r.message))
    return out


def validate_store(data: Store, shapes: rdflib.Graph, focus: Iterable[NamedNode] | None = None) -> ValidationOutcome:
    """Validate the default graph of a pyoxigraph store against a shapes graph,
    optionally only the given focus nodes (pyshacl focus-node targeting).
    Raises :class:`ShapesError` when pyshacl cannot evaluate the shapes."""
    if len(shapes) == 0:
        return ValidationOutcome()
    data_graph = DataGraph.from_oxigraph_store(data)
    focus_nodes = [rdflib.URIRef(n.value) for n in focus] if focus is not None else None
    try:
        _conforms, report, text_report = pyshacl.validate(
            data_graph, shacl_graph=shapes, inference="none", advanced=True, inplace=True, allow_warnings=True,
            focus_nodes=focus_nodes)
    except (ReportableRuntimeError, ConstraintLoadError, ShapeLoadError, SyntaxError, ValueError) as exc:
        raise ShapesError(f"the shapes could not be evaluated: {exc}") from exc
    if not isinstance(report, rdflib.Graph):  # pyshacl's ValidationFailure: the shapes are at fault
        raise ShapesError(f"the shapes could not be evaluated: {text_report}")
    return ValidationOutcome(_results(report, shapes))


class _Union:
    """Two pyoxigraph stores read as one (the store and a batch's pending triples)."""

    def __init__(self, *stores: Store):
        self.stores = stores

    def __contains__(self, quad: Quad) -> bool:
        return any(quad in s for s in self.stores)

    def quads_for_pattern(self, *pattern: Any) -> Iterator[Quad]:
        for s in self.stores:
            yield from s.quads_for_pattern(*pattern)


class EventShapesValidator:
    """Validates each event at ingest against the ``ingest`` shapes.

    Input: the loaded :class:`Shapes` (or an ingest shapes graph) and how
    many worker processes run pyshacl (0: in this process). :meth:`validate`
    takes the event's quads and the store (for the neighbourhood; None to
    validate the event alone).

    Two things keep this fast without weakening it: the shapes graph is
    harvested once (pyshacl's ShapesGraph, reused across events), and a node
    whose every triple in the event is already in the store is not a focus
    node again — it was validated when those triples arrived, and provkg types
    every node an event mentions, so nothing it points to is new either.
    """

    def __init__(self, shapes: "Shapes | rdflib.Graph", workers: int = 0):
        self.shapes = shapes.graphs["ingest"] if isinstance(shapes, Shapes) else shapes
        self._logger = logging.getLogger("provkg.shacl")
        self._shapes_graph = ShapesGraph(self.shapes, False, self._logger)
        self._shapes_graph.shapes  # harvest the shapes now, once
        self._lock = threading.Lock()  # pyshacl's shapes objects are not re-entrant
        # pyshacl is pure Python: worker processes let it use more than one core
        self.pool = None
        if workers > 0:
            from .shacl_pool import ShaclPool

            self.pool = ShaclPool(self.shapes, workers, fallback=self.check)

    def validate(self, quads: list[Quad], store: "Store | None" = None,
                 pending: "Store | None" = None) -> ValidationOutcome:
        """Validate one event's quads. ``pending``: triples of the events
        before it in the same batch, not stored yet (default graph), seen as
        if they were in ``store``. Raises :class:`ShapesError`."""
        return self.submit(quads, store, pending).result()

    def submit(self, quads: list[Quad], store: "Store | None" = None, pending: "Store | None" = None,
               merged: list[Quad] | None = None) -> "Future[ValidationOutcome]":
        """As :meth:`validate`, but the pyshacl run goes to the worker
        processes when there are any (``workers``), so it can overlap with
        other work: the data graph (event + neighbourhood) and the focus nodes
        are taken from the store now; the outcome comes with the future.
        ``merged``: the event's quads already as default-graph quads, if made."""
        triples, focus = self.context(quads, store, pending, merged)
        if not focus or len(self.shapes) == 0:
            done: Future[ValidationOutcome] = Future()
            done.set_result(ValidationOutcome())
            return done
        if self.pool is not None:
            return self.pool.submit(triples, focus)
        done = Future()
        try:
            done.set_result(self.check(triples, focus))
        except ShapesError as exc:
            done.set_exception(exc)
        return done

    def context(self, quads: list[Quad], store: "Store | None" = None, pending: "Store | None" = None,
                merged: list[Quad] | None = None) -> tuple[list[Quad], set[NamedNode]]:
        """The data graph to validate (the event's triples and the neighbourhood
        the shapes read, as default-graph quads; may repeat a triple) and the
        focus nodes (the event's new nodes)."""
        default = DefaultGraph()
        # a list, not a set: hashing a pyoxigraph Quad costs more than the rest of this step
        triples = list(merged) if merged is not None else merged_quads(quads)
        nodes = {q.subject for q in triples if isinstance(q.subject, NamedNode)}
        if store is None:
            return triples, nodes
        if pending is not None and next(iter(pending), None) is not None:  # len() of a Store counts every quad
            store = _Union(store, pending)
        # a node is new to validation if any of its triples is new; a node
        # the store has no triple about (the event's own nodes, a new run or
        # version) needs no look-up per triple, nor a read of its neighbourhood
        absent = {s for s in {q.subject for q in triples}
                  if next(iter(store.quads_for_pattern(s, None, None, default)), None) is None}
        new = [q for q in triples if q.subject in absent or q not in store]
        focus = {q.subject for q in new if isinstance(q.subject, NamedNode)}
        # PROV-CONSTRAINTS 53 reads the user's end time: a new use or a
        # new end time puts the entities used back in focus
        used, ended = PROV.used, PROV.endedAtTime
        focus |= {q.object for q in new if q.predicate == used and isinstance(q.object, NamedNode)}
        for run in {q.subject for q in new if q.predicate == ended}:
            focus |= {q.object for q in store.quads_for_pattern(run, used, None, default)}
            focus |= {q.object for q in triples if q.subject == run and q.predicate == used}
        # and PROV-CONSTRAINTS 50 reads the generating run's start time: a START
        # that arrives after the COMPLETE puts what the run generated back in focus
        generation, started = PROV.wasGeneratedBy, PROV.startedAtTime
        for run in {q.subject for q in new if q.predicate == started}:
            focus |= {q.subject for q in store.quads_for_pattern(None, generation, run, default)}
            focus |= {q.subject for q in triples if q.object == run and q.predicate == generation}
        found: set[Quad] = set()
        for node in focus - absent:
            # one read of the node's triples, filtered here, is much cheaper than
            # one read per predicate; a node with very many (a dataset with years
            # of versions) is read per predicate instead
            head = list(islice(store.quads_for_pattern(node, None, None, default), _SCAN_LIMIT))
            if len(head) < _SCAN_LIMIT:
                found.update(q for q in head if q.predicate in _NEIGHBOURHOOD_SET)
                continue
            for predicate in _NEIGHBOURHOOD:
                found.update(store.quads_for_pattern(node, predicate, None, default))
        # who used it, and when they ended: read by PROV-CONSTRAINTS 53 only,
        # which needs the entity's generation time (a generic dataset used by
        # every run that read it has none, and thousands of users)
        generated = {q.subject for q in chain(triples, found) if q.predicate == PROV.generatedAtTime}
        for node in focus & generated:
            for use in store.quads_for_pattern(None, PROV.used, node, default):
                found.add(use)
                found.update(store.quads_for_pattern(use.subject, PROV.endedAtTime, None, default))
                found.update(store.quads_for_pattern(use.subject, A, None, default))
        # of the nodes the focus nodes point to, the shapes read only the types
        # (sh:class, disjointness) and a generating activity's start time
        # (PROV-CONSTRAINTS 50); the rest of their neighbourhood would only
        # slow pyshacl down (nodes no longer new are not validated again)
        about = [q for q in chain(triples, found) if q.subject in focus and q.predicate != A]
        for obj in {q.object for q in about if isinstance(q.object, NamedNode)} - focus:
            found.update(store.quads_for_pattern(obj, A, None, default))
        for activity in {q.object for q in about if q.predicate == PROV.wasGeneratedBy} - focus:
            found.update(store.quads_for_pattern(activity, PROV.startedAtTime, None, default))
        triples.extend(found)
        return triples, focus

    def check(self, triples: Iterable[Quad], focus: Iterable[NamedNode]) -> ValidationOutcome:
        """Run pyshacl over ``triples`` for the ``focus`` nodes, in this process."""
        data = Store()
        data.extend(triples)
        return self.check_store(data, focus)

    def check_store(self, data: Store, focus: Iterable[NamedNode]) -> ValidationOutcome:
        """As :meth:`check`, over the default graph of ``data`` (an in-memory store it may keep)."""
        validator = Validator(DataGraph.from_oxigraph_store(data), shacl_graph=self.shapes, options={
            "inference": "none", "advanced": True, "inplace": True, "allow_warnings": True,
            "focus_nodes": [rdflib.URIRef(n.value) for n in focus], "logger": self._logger})
        validator.shacl_graph = self._shapes_graph  # reuse the harvested shapes
        try:
            with self._lock:
                _conforms, report, text_report = validator.run()
        except (ReportableRuntimeError, ConstraintLoadError, ShapeLoadError, SyntaxError, ValueError) as exc:
            raise ShapesError(f"the shapes could not be evaluated: {exc}") from exc
        if not isinstance(report, rdflib.Graph):
            raise ShapesError(f"the shapes could not be evaluated: {text_report}")
        return ValidationOutcome(_results(report, self.shapes))


def report_json(outcome: ValidationOutcome) -> str:
    return json.dumps(outcome.as_dict(), indent=2)
