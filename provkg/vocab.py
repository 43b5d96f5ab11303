"""RDF vocabularies provkg writes, as pyoxigraph terms.

PROV-O (W3C Recommendation 2013), DCAT 3, Dublin Core Terms, W3C DQV, RDF/RDFS/
XSD, ML-Schema, DPV 2.x (with its AI and EU GDPR / AI Act extensions), FAIR4ML,
and the provkg ontology (``ontologies/provkg.ttl``) for what those do not name.
"""

from __future__ import annotations

from pyoxigraph import NamedNode


class Namespace:
    """An IRI prefix; ``NS.term`` and ``NS["term"]`` give the NamedNode."""

    def __init__(self, iri: str):
        self.iri = iri

    def __getattr__(self, name: str) -> NamedNode:
        if name.startswith("__"):
            raise AttributeError(name)
        node = NamedNode(self.iri + name)
        setattr(self, name, node)  # kept: the mapping asks for the same terms for every event
        return node

    def __getitem__(self, name: str) -> NamedNode:
        return NamedNode(self.iri + name)


PROV = Namespace("http://www.w3.org/ns/prov#")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCT = Namespace("http://purl.org/dc/terms/")
DQV = Namespace("http://www.w3.org/ns/dqv#")
RDF = Namespace("http://www.w3.org/1999/02/22-rdf-syntax-ns#")
RDFS = Namespace("http://www.w3.org/2000/01/rdf-schema#")
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")
OWL = Namespace("http://www.w3.org/2002/07/owl#")
PROVKG = Namespace("https://w3id.org/provkg/ns#")
MLS = Namespace("http://www.w3.org/ns/mls#")
DPV = Namespace("https://w3id.org/dpv#")
DPV_AI = Namespace("https://w3id.org/dpv/ai#")
EU_GDPR = Namespace("https://w3id.org/dpv/legal/eu/gdpr#")
EU_AIACT = Namespace("https://w3id.org/dpv/legal/eu/aiact#")
FAIR4ML = Namespace("https://w3id.org/fair4ml#")

A = RDF.type

PREFIXES = {
    "prov": PROV.iri,
    "dcat": DCAT.iri,
    "dct": DCT.iri,
    "dqv": DQV.iri,
    "rdf": RDF.iri,
    "rdfs": RDFS.iri,
    "xsd": XSD.iri,
    "owl": OWL.iri,
    "provkg": PROVKG.iri,
    "mls": MLS.iri,
    "dpv": DPV.iri,
    "ai": DPV_AI.iri,
    "eu-gdpr": EU_GDPR.iri,
    "eu-aiact": EU_AIACT.iri,
    "fair4ml": FAIR4ML.iri,
}
