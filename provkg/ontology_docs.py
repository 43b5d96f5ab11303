"""Human-readable documentation of the provkg ontology, generated from its Turtle.

``docs/ontology.md`` is the output of :func:`render_markdown` for
``ontologies/provkg.ttl``. After editing the ontology, regenerate it with::

    python -m provkg.ontology_docs > docs/ontology.md

(``tests/test_ontology_ai.py`` fails while the committed file is out of date.)

The page lists, each group sorted by local name: the classes (label,
definition, stated and transitive super-classes, sub-classes, equivalent class
expressions, the DPV AI bias a pipeline stage maps to, see-also links), the
object, datatype and annotation properties (domain, range, stated and
transitive super-properties, inverse, property chain), the named individuals
grouped by class, every alignment of a provkg term to an external vocabulary,
and the external terms the ontology declares. It reads the graph with rdflib's
graph API only; no reasoner is run, transitive super-classes and
super-properties are the reflexive-free transitive closure of the stated
``rdfs:subClassOf`` / ``rdfs:subPropertyOf`` links in the file.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import rdflib
from rdflib.collection import Collection
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS
from rdflib.term import BNode, Literal, Node, URIRef
from rdflib.util import guess_format

from .resources import ontologies_dir

PROVKG_NS = "https://w3id.org/provkg/ns#"
ONTOLOGY_FILE = "provkg.ttl"
REGENERATE = "python -m provkg.ontology_docs > docs/ontology.md"

# Prefixes used to abbreviate IRIs, in the order they are listed on the page.
PREFIXES: tuple[tuple[str, str], ...] = (
    ("provkg", PROVKG_NS),
    ("prov", "http://www.w3.org/ns/prov#"),
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("dqv", "http://www.w3.org/ns/dqv#"),
    ("mls", "http://www.w3.org/ns/mls#"),
    ("fair4ml", "https://w3id.org/fair4ml#"),
    ("dpv", "https://w3id.org/dpv#"),
    ("ai", "https://w3id.org/dpv/ai#"),
    ("eu-gdpr", "https://w3id.org/dpv/legal/eu/gdpr#"),
    ("eu-aiact", "https://w3id.org/dpv/legal/eu/aiact#"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("owl", "http://www.w3.org/2002/07/owl#"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
)

PROVKG = rdflib.Namespace(PROVKG_NS)
DQV_EXPECTED_DATATYPE = URIRef("http://www.w3.org/ns/dqv#expectedDataType")

_KIND_ANCHOR = {"class": "c", "property": "p", "individual": "i"}
_PROPERTY_KINDS = (
    (OWL.ObjectProperty, "Object properties", "object"),
    (OWL.DatatypeProperty, "Datatype properties", "datatype"),
    (OWL.AnnotationProperty, "Annotation properties", "annotation"),
)
# Relations that align a provkg term to a term of another vocabulary.
_ALIGNMENT_RELATIONS = (
    RDFS.subClassOf,
    OWL.equivalentClass,
    RDFS.subPropertyOf,
    OWL.equivalentProperty,
    PROVKG.stageBias,
    SKOS.exactMatch,
    SKOS.closeMatch,
    RDFS.seeAlso,
)


def load_ontology(graph_or_path: rdflib.Graph | str | os.PathLike | None = None) -> rdflib.Graph:
    """Return the ontology as an rdflib graph.

    Input: ``None`` for the packaged ``ontologies/provkg.ttl``; an
    ``rdflib.Graph`` (returned as is); or the path (``str`` or path-like) of an
    RDF file, parsed in the format its extension implies (Turtle if unknown).
    Output: the graph. Errors: :class:`FileNotFoundError` if the path does not
    exist (``provkg.resources.ResourceNotFound`` if the packaged ontology folder
    is missing), rdflib's parser exception if the file is not valid RDF,
    :class:`TypeError` for any other kind of argument.
    """
    if isinstance(graph_or_path, rdflib.Graph):
        return graph_or_path
    if graph_or_path is None:
        path = ontologies_dir() / ONTOLOGY_FILE
    elif isinstance(graph_or_path, (str, os.PathLike)):
        path = Path(graph_or_path)
    else:
        raise TypeError(f"expected an rdflib.Graph, a path or None, not {type(graph_or_path).__name__}")
    if not path.is_file():
        raise FileNotFoundError(f"ontology file not found: {path}")
    fmt = guess_format(str(path)) or "turtle"
    return rdflib.Graph().parse(path, format=fmt)


def render_markdown(graph_or_path: rdflib.Graph | str | os.PathLike | None = None) -> str:
    """Render the ontology as a Markdown page (the content of ``docs/ontology.md``).

    Input: as for :func:`load_ontology` (``None``: the packaged provkg ontology).
    Output: the page as a string ending in one newline; the same graph always
    gives the same text (everything is sorted, nothing depends on parse order
    or time). Terms of the provkg namespace are documented; other IRIs are
    shown abbreviated with the prefixes in :data:`PREFIXES` and linked to
    their IRI. Errors: those of :func:`load_ontology`.
    """
    return _Renderer(load_ontology(graph_or_path)).render()


def main(argv: Iterable[str] | None = None) -> int:
    """Command-line entry: write the page for the packaged ontology, or for the
    RDF file given as the only argument, to standard output as UTF-8.

    Output: exit status 0. Errors: as for :func:`render_markdown`; a usage
    message and status 2 for more than one argument.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1:
        sys.stderr.write("usage: python -m provkg.ontology_docs [ONTOLOGY.ttl] > docs/ontology.md\n")
        return 2
    text = render_markdown(args[0] if args else None)
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.buffer.flush()
    return 0


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def _sort_key(node: Node) -> tuple[str, str]:
    text = str(node)
    local = text[len(PROVKG_NS):] if text.startswith(PROVKG_NS) else text
    return (local.lower(), local)


def _escape(text: str) -> str:
    """Escape Markdown/HTML-significant characters in running text."""
    text = text.replace("\\", "\\\\")
    for ch in "`*[]$":
        text = text.replace(ch, "\\" + ch)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    # An underscore is emphasis only at a word boundary; escape those.
    return re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", text)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Renderer:
    def __init__(self, graph: rdflib.Graph):
        self.g = graph
        self.used_prefixes: set[str] = set()
        self.kinds: dict[URIRef, str] = {}
        self.classes = self._provkg_subjects(OWL.Class)
        self.properties: dict[URIRef, list[URIRef]] = {
            kind: self._provkg_subjects(kind) for kind, _, _ in _PROPERTY_KINDS
        }
        self.individuals = self._provkg_subjects(OWL.NamedIndividual)
        for c in self.classes:
            self.kinds[c] = "class"
        for props in self.properties.values():
            for p in props:
                self.kinds[p] = "property"
        for i in self.individuals:
            self.kinds.setdefault(i, "individual")

    # -- term helpers ------------------------------------------------------

    def _provkg_subjects(self, rdf_type: URIRef) -> list[URIRef]:
        found = {
            s
            for s in self.g.subjects(RDF.type, rdf_type)
            if isinstance(s, URIRef) and str(s).startswith(PROVKG_NS) and str(s) != PROVKG_NS
        }
        return sorted(found, key=_sort_key)

    def _curie(self, iri: URIRef) -> str:
        text = str(iri)
        best = None
        for prefix, ns in PREFIXES:
            if text.startswith(ns) and (best is None or len(ns) > len(best[1])):
                best = (prefix, ns)
        if best is None or not re.fullmatch(r"[A-Za-z_][\w.-]*", text[len(best[1]):]):
            return f"<{text}>"
        self.used_prefixes.add(best[0])
        return f"{best[0]}:{text[len(best[1]):]}"

    def _anchor(self, term: URIRef) -> str:
        return f"{_KIND_ANCHOR[self.kinds[term]]}-{str(term)[len(PROVKG_NS):]}"

    def _ref(self, node: Node) -> str:
        """Markdown for a term: provkg terms link into the page, others to their IRI."""
        if isinstance(node, URIRef):
            if node in self.kinds:
                return f"[`{self._curie(node)}`](#{self._anchor(node)})"
            curie = self._curie(node)
            if curie.startswith("<"):
                return f"<{node}>"
            return f"[`{curie}`]({node})"
        if isinstance(node, BNode):
            return self._expression(node)
        if isinstance(node, Literal):
            return f"`{node}`"
        return _escape(str(node))

    def _refs(self, nodes: Iterable[Node]) -> str:
        return ", ".join(self._ref(n) for n in nodes)

    def _expression(self, node: BNode) -> str:
        """An anonymous class or datatype expression (union, one-of)."""
        for pred, word in ((OWL.unionOf, " or "), (OWL.oneOf, ", ")):
            lst = self.g.value(node, pred)
            if lst is not None:
                inner = word.join(self._ref(m) for m in Collection(self.g, lst))
                return f"one of {{{inner}}}" if pred == OWL.oneOf else f"({inner})"
        return "(anonymous class expression)"

    def _text(self, subject: Node, predicate: URIRef) -> str | None:
        """The English (else untagged, else first) literal value, on one line."""
        values = [o for o in self.g.objects(subject, predicate) if isinstance(o, Literal)]
        if not values:
            return None
        for want in ("en", None):
            chosen = sorted(str(v) for v in values if v.language == want)
            if chosen:
                return _one_line(chosen[0])
        return _one_line(sorted(str(v) for v in values)[0])

    def _term_key(self, node: Node) -> tuple[int, str, str]:
        """Sort order for listed terms: provkg terms by local name, then others by CURIE."""
        if isinstance(node, URIRef) and str(node).startswith(PROVKG_NS):
            return (0, *_sort_key(node))
        if isinstance(node, URIRef):
            curie = self._curie(node)
            return (1, curie.lower(), curie)
        return (2, self._ref(node), "")

    def _objects(self, subject: Node, predicate: URIRef) -> list[Node]:
        return sorted(self.g.objects(subject, predicate), key=self._term_key)

    def _transitive(self, start: URIRef, predicate: URIRef, inverse: bool = False) -> list[URIRef]:
        seen: set[URIRef] = set()
        todo = [start]
        while todo:
            node = todo.pop()
            nexts = self.g.subjects(predicate, node) if inverse else self.g.objects(predicate=predicate, subject=node)
            for nxt in nexts:
                if isinstance(nxt, URIRef) and nxt != start and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return sorted(seen, key=self._term_key)

    # -- page ----------------------------------------------------------------

    def render(self) -> str:
        body: list[str] = []
        body += self._classes_section()
        for kind, title, noun in _PROPERTY_KINDS:
            body += self._properties_section(kind, title, noun)
        body += self._individuals_section()
        body += self._alignment_section()
        body += self._external_section()
        head = self._header()
        text = "\n".join(head + body)
        text = re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"
        return text

    def _header(self) -> list[str]:
        onto = next(
            (s for s in self.g.subjects(RDF.type, OWL.Ontology) if isinstance(s, URIRef)), None
        )
        title = (self._text(onto, DCTERMS.title) if onto is not None else None) or "provkg ontology"
        n_props = sum(len(v) for v in self.properties.values())
        lines = [
            "<!-- Generated from ontologies/provkg.ttl by provkg/ontology_docs.py. Do not edit by hand. -->",
            f"<!-- Regenerate: {REGENERATE} -->",
            "",
            f"# {_escape(title)}",
            "",
            "> **Generated file.** This page is generated from `ontologies/provkg.ttl` by",
            "> `provkg/ontology_docs.py`; do not edit it by hand. After changing the ontology,",
            f"> regenerate it with `{REGENERATE}`.",
            "",
        ]
        if onto is not None:
            lines.append(f"- **Ontology IRI:** `{onto}`")
            version = self._text(onto, OWL.versionInfo)
            if version:
                lines.append(f"- **Version:** {_escape(version)}")
            see = self._objects(onto, RDFS.seeAlso)
            if see:
                lines.append(f"- **See also:** {self._refs(see)}")
            lines.append(
                f"- **Terms:** {len(self.classes)} classes, {n_props} properties "
                + "("
                + ", ".join(f"{len(self.properties[k])} {noun}" for k, _, noun in _PROPERTY_KINDS)
                + f"), {len(self.individuals)} named individuals"
            )
            lines.append("")
            desc = self._text(onto, DCTERMS.description)
            if desc:
                lines += [_escape(desc), ""]
        lines += [
            "Mapping rules (which OpenLineage field or provkg facet produces each term) are in",
            "[mapping.md](mapping.md) and [ai-lineage.md](ai-lineage.md).",
            "",
            "## Prefixes",
            "",
            "| prefix | namespace |",
            "|---|---|",
        ]
        for prefix, ns in PREFIXES:
            if prefix in self.used_prefixes:
                lines.append(f"| `{prefix}:` | `{ns}` |")
        lines += ["", "## Contents", ""]
        lines.append("- [Classes](#classes)")
        for kind, title, _ in _PROPERTY_KINDS:
            if self.properties[kind]:
                lines.append(f"- [{title}](#{title.lower().replace(' ', '-')})")
        lines += [
            "- [Named individuals](#named-individuals)",
            "- [Alignments](#alignments)",
            "- [External terms declared](#external-terms-declared)",
            "",
        ]
        return lines

    def _summary_table(self, terms: list[URIRef]) -> list[str]:
        lines = ["| term | label |", "|---|---|"]
        for t in terms:
            label = self._text(t, RDFS.label) or ""
            lines.append(f"| {self._ref(t)} | {_escape(label).replace('|', '&#124;')} |")
        return lines + [""]

    def _entry_head(self, term: URIRef) -> list[str]:
        lines = [f'### <a id="{self._anchor(term)}"></a>`{self._curie(term)}`', ""]
        label = self._text(term, RDFS.label)
        definition = self._text(term, SKOS.definition)
        para = []
        if label:
            para.append(f"**{_escape(label)}**")
        if definition:
            para.append(_escape(definition))
        if para:
            lines += [" — ".join(para) if len(para) == 2 else para[0], ""]
        lines.append(f"- IRI: `{term}`")
        return lines

    def _facts(self, items: list[tuple[str, list[Node]]]) -> list[str]:
        return [f"- {name}: {self._refs(nodes)}" for name, nodes in items if nodes]

    def _classes_section(self) -> list[str]:
        lines = ["## Classes", ""] + self._summary_table(self.classes)
        for c in self.classes:
            lines += self._entry_head(c)
            members = [m for m in self.individuals if (m, RDF.type, c) in self.g]
            lines += self._facts(
                [
                    ("Super-classes", self._objects(c, RDFS.subClassOf)),
                    ("All super-classes (transitive)", self._transitive(c, RDFS.subClassOf)),
                    ("Sub-classes", sorted(
                        (s for s in self.g.subjects(RDFS.subClassOf, c) if isinstance(s, URIRef)), key=self._term_key)),
                    ("Equivalent to", self._objects(c, OWL.equivalentClass)),
                    ("Disjoint with", self._objects(c, OWL.disjointWith)),
                    ("Stage bias (DPV AI)", self._objects(c, PROVKG.stageBias)),
                    ("Individuals", members),
                    ("See also", self._objects(c, RDFS.seeAlso)),
                ]
            )
            lines.append("")
        return lines

    def _properties_section(self, kind: URIRef, title: str, noun: str) -> list[str]:
        props = self.properties[kind]
        if not props:
            return []
        lines = [f"## {title}", ""] + self._summary_table(props)
        for p in props:
            lines += self._entry_head(p)
            facts = [
                ("Domain", self._objects(p, RDFS.domain)),
                ("Range", self._objects(p, RDFS.range)),
                ("Super-properties", self._objects(p, RDFS.subPropertyOf)),
                ("All super-properties (transitive)", self._transitive(p, RDFS.subPropertyOf)),
                ("Sub-properties", sorted(
                    (s for s in self.g.subjects(RDFS.subPropertyOf, p) if isinstance(s, URIRef)), key=self._term_key)),
                ("Inverse of", self._objects(p, OWL.inverseOf)),
                ("Equivalent to", self._objects(p, OWL.equivalentProperty)),
                ("See also", self._objects(p, RDFS.seeAlso)),
            ]
            lines += self._facts(facts[:6])
            for chain in self._objects(p, OWL.propertyChainAxiom):
                steps = " / ".join(self._ref(s) for s in Collection(self.g, chain))
                lines.append(f"- Property chain: {steps}")
            lines += self._facts(facts[6:])
            extra = [
                str(t) for t in self.g.objects(p, RDF.type)
                if t in (OWL.FunctionalProperty, OWL.InverseFunctionalProperty, OWL.TransitiveProperty,
                         OWL.SymmetricProperty)
            ]
            if extra:
                lines.append(f"- Characteristics: {self._refs(sorted(URIRef(e) for e in extra))}")
            lines.append("")
        return lines

    def _individuals_section(self) -> list[str]:
        lines = ["## Named individuals", ""]
        groups: dict[URIRef, list[URIRef]] = {}
        for i in self.individuals:
            types = [t for t in self.g.objects(i, RDF.type) if isinstance(t, URIRef) and t != OWL.NamedIndividual]
            for t in types or [OWL.Thing]:
                groups.setdefault(t, []).append(i)
        ordered = sorted(groups, key=self._term_key)
        for cls in ordered:
            label = self._text(cls, RDFS.label)
            heading = f"Individuals of `{self._curie(cls)}`" + (f" ({_escape(label)})" if label else "")
            lines += [f"### {heading}", ""]
            members = sorted(groups[cls], key=self._term_key)
            if len(members) > 1:
                lines += self._summary_table(members)
            for i in members:
                head = self._entry_head(i)
                head[0] = "#" + head[0]
                lines += head
                lines += self._facts(
                    [
                        ("Types", self._objects(i, RDF.type)),
                        ("Expected datatype", self._objects(i, DQV_EXPECTED_DATATYPE)),
                        ("See also", self._objects(i, RDFS.seeAlso)),
                    ]
                )
                lines.append("")
        return lines

    def _alignment_section(self) -> list[str]:
        rows: list[tuple[tuple, str]] = []
        for term in sorted(self.kinds, key=self._term_key):
            for rel in _ALIGNMENT_RELATIONS:
                for obj in self._objects(term, rel):
                    if isinstance(obj, URIRef) and str(obj).startswith(PROVKG_NS):
                        continue
                    if isinstance(obj, BNode):
                        continue
                    rows.append(
                        ((self._term_key(term), _ALIGNMENT_RELATIONS.index(rel), self._term_key(obj)),
                         f"| {self._ref(term)} | {self._ref(rel)} | {self._ref(obj)} |")
                    )
        lines = [
            "## Alignments",
            "",
            "How provkg terms relate to terms of other vocabularies (PROV-O, DCAT, DQV, ML-Schema,",
            "FAIR4ML, DPV): stated super-classes and super-properties, equivalences, the DPV AI bias",
            "concept a pipeline stage maps to (`provkg:stageBias`) and see-also links.",
            "",
            "| provkg term | relation | external term |",
            "|---|---|---|",
        ]
        lines += [row for _, row in sorted(rows)]
        lines.append("")
        external_axioms = []
        for s in sorted({s for s in self.g.subjects() if isinstance(s, URIRef)}, key=self._term_key):
            if str(s).startswith(PROVKG_NS) or s in self.kinds:
                continue
            for rel in (RDFS.subClassOf, RDFS.subPropertyOf, OWL.equivalentClass, OWL.equivalentProperty):
                for obj in self._objects(s, rel):
                    external_axioms.append(f"| {self._ref(s)} | {self._ref(rel)} | {self._ref(obj)} |")
        if external_axioms:
            lines += [
                "Axioms the ontology states about external terms:",
                "",
                "| external term | relation | term |",
                "|---|---|---|",
            ] + external_axioms + [""]
        return lines

    def _external_section(self) -> list[str]:
        kinds = (
            (OWL.Class, "Classes"),
            (OWL.ObjectProperty, "Object properties"),
            (OWL.DatatypeProperty, "Datatype properties"),
            (OWL.AnnotationProperty, "Annotation properties"),
            (RDFS.Datatype, "Datatypes"),
        )
        lines = [
            "## External terms declared",
            "",
            "Terms of other vocabularies the ontology types (without importing those vocabularies)",
            "so that OWL tools can read its axioms.",
            "",
        ]
        for rdf_type, title in kinds:
            terms = sorted(
                (
                    s
                    for s in self.g.subjects(RDF.type, rdf_type)
                    if isinstance(s, URIRef) and not str(s).startswith(PROVKG_NS)
                ),
                key=self._term_key,
            )
            if terms:
                lines.append(f"- {title}: {self._refs(terms)}")
        lines.append("")
        return lines


if __name__ == "__main__":
    raise SystemExit(main())
