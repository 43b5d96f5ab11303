"""Ontology entailments materialised per event at ingest.

owlrl computes the OWL 2 RL closure (W3C OWL 2 Profiles §4.3) of the provkg
ontology once; from that closure provkg keeps two tables — every class's
super-classes (rules cax-sco, scm-sco) and every property's super-properties
(prp-spo1, scm-spo) — and applies them to each event's own quads before they
are stored, in the same named graph. So a query may ask for ``prov:Activity``
and find a ``provkg:TrainingRun``, or follow ``prov:wasDerivedFrom`` through a
``provkg:madeBy``, without a closure over the whole store.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import owlrl
import rdflib
from pyoxigraph import NamedNode, Quad

from .resources import ontologies_dir
from .vocab import A

_IGNORED = {
    str(rdflib.OWL.Thing), str(rdflib.RDFS.Resource), str(rdflib.OWL.Nothing), str(rdflib.RDFS.Class),
    str(rdflib.OWL.Class), str(rdflib.OWL.topObjectProperty), str(rdflib.OWL.topDataProperty),
}


class Entailer:
    """Super-class and super-property tables from the ontology's OWL 2 RL closure.

    Input: Turtle files (default: every ``*.ttl`` in ``ontologies/``). Raises
    ``rdflib`` parse errors for a broken ontology file.
    """

    def __init__(self, files: list[Path] | None = None):
        graph = rdflib.Graph()
        for path in files or sorted(ontologies_dir().glob("*.ttl")):
            graph.parse(path, format="turtle")
        owlrl.DeductiveClosure(owlrl.OWLRL_Semantics).expand(graph)
        self.super_classes = self._table(graph, rdflib.RDFS.subClassOf)
        self.super_properties = self._table(graph, rdflib.RDFS.subPropertyOf)

    @staticmethod
    def _table(graph: rdflib.Graph, relation: rdflib.URIRef) -> dict[str, list[NamedNode]]:
        table: dict[str, set[str]] = {}
        for sub, sup in graph.subject_objects(relation):
            if isinstance(sub, rdflib.URIRef) and isinstance(sup, rdflib.URIRef) and sub != sup and str(sub) not in _IGNORED \
                    and str(sup) not in _IGNORED:
                table.setdefault(str(sub), set()).add(str(sup))
        return {k: [NamedNode(v) for v in sorted(vs)] for k, vs in table.items()}

    def materialise(self, quads: list[Quad]) -> list[Quad]:
        """The quads plus what the ontology entails from them, deduplicated,
        each entailed quad in the graph of the quad it follows from."""
        out = dict.fromkeys(quads)
        for q in quads:
            if q.predicate == A:
                for sup in self.super_classes.get(q.object.value, ()):
                    out.setdefault(Quad(q.subject, A, sup, q.graph_name))
            for sup in self.super_properties.get(q.predicate.value, ()):
                out.setdefault(Quad(q.subject, sup, q.object, q.graph_name))
        return list(out)


@lru_cache(maxsize=1)
def default_entailer() -> Entailer:
    """The entailer for the installed ontology, computed once per process."""
    return Entailer()
