"""provkg: OpenLineage events in, a W3C PROV-O knowledge graph on disk, SPARQL out."""

__version__ = "0.1.0"
