"""The ontology declares, labels and defines every provkg term the mapping
writes for the real corpora and the demo, and the queries name."""

from __future__ import annotations

import re

import rdflib
from rdflib.namespace import RDFS, SKOS

from conftest import SPEC, load_events, valid_files
from provkg.demo import demo_events
from provkg.ingest import canonical_hash
from provkg.iris import IriMinter
from provkg.mapping import EventMapper
from provkg.resources import ontologies_dir, queries_dir
from provkg.validation import EventValidator
from provkg.vocab import PROVKG

NS = PROVKG.iri


def _ontology() -> rdflib.Graph:
    return rdflib.Graph().parse(ontologies_dir() / "provkg.ttl")


def test_every_term_written_is_declared_labelled_and_defined():
    from datetime import datetime, timezone

    mapper, validator = EventMapper(IriMinter()), EventValidator(SPEC)
    events = [e for p in valid_files() for e in load_events(p)] + demo_events()
    used = set()
    for event in events:
        if validator.validate(event):
            continue
        for q in mapper.map(event, canonical_hash(event), datetime.now(timezone.utc)).quads:
            for term in (q.predicate, q.object):
                if getattr(term, "value", "").startswith(NS) and type(term).__name__ == "NamedNode":
                    used.add(term.value)
    for path in queries_dir().glob("*.rq"):
        used |= {NS + local for local in re.findall(r"provkg:(\w+)", path.read_text())}
    graph = _ontology()
    assert len(used) > 40
    for iri in sorted(used):
        node = rdflib.URIRef(iri)
        assert (node, RDFS.label, None) in graph, f"{iri} has no rdfs:label"
        assert (node, SKOS.definition, None) in graph, f"{iri} has no skos:definition"
