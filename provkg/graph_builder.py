"""Building one event's named graph: the builder that collects quads, and
RDF literals for OpenLineage JSON values (times, scalars, JSON)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyoxigraph import Literal, NamedNode, Quad

from .iris import IriMinter
from .vocab import RDF, XSD

_XSD_DATE_TIME = re.compile(r"^-?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_XSD_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

def time_literal(value: Any) -> Literal | None:
    """An ``xsd:dateTime`` (or ``xsd:date``) literal for an OpenLineage time string.

    Keeps the lexical form when it is already valid XSD (nanoseconds included);
    normalises other ISO 8601 forms (``+1000`` offsets); returns a plain string
    literal for text that is not a time, and None for a non-string.
    """
    if not isinstance(value, str):
        return None
    if _XSD_DATE_TIME.match(value):
        return Literal(value, datatype=XSD.dateTime)
    if _XSD_DATE.match(value):
        return Literal(value, datatype=XSD.date)
    try:
        return Literal(datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat(), datatype=XSD.dateTime)
    except ValueError:
        return Literal(value)


def typed_literal(value: Any) -> Literal | None:
    """A literal for a JSON scalar (bool before int: bool is an int in Python)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return Literal("true" if value else "false", datatype=XSD.boolean)
    if isinstance(value, int):
        return Literal(str(value), datatype=XSD.integer)
    if isinstance(value, float):
        return Literal(repr(value), datatype=XSD.double)
    if isinstance(value, str):
        return Literal(value)
    return json_literal(value)


def json_literal(value: Any) -> Literal:
    """An ``rdf:JSON`` literal (RDF 1.1 JSON datatype) with sorted keys."""
    return Literal(json.dumps(value, sort_keys=True, ensure_ascii=False), datatype=RDF.JSON)


@dataclass(frozen=True)
class Measured:
    """A dataset as one event touched it: ``entity`` is the version read or
    written (or the dataset itself), ``name`` its OpenLineage name, ``run``
    the run that touched it (None for JobEvents and DatasetEvents)."""

    entity: NamedNode
    dataset: NamedNode
    name: str
    run: NamedNode | None


class GraphBuilder:
    """Collects the quads of one event into its graph."""

    def __init__(self, graph: NamedNode, minter: IriMinter):
        self.graph = graph
        self.iri = minter
        self.quads: list[Quad] = []
        # what the event touched, for passes that need the whole event
        self.run: NamedNode | None = None
        self.job: NamedNode | None = None
        self.touched: list[tuple[str, "Measured", dict]] = []  # (input|output|declared, target, dataset JSON)

    def add(self, s: NamedNode, p: NamedNode, o: NamedNode | Literal | None) -> None:
        if o is not None:
            self.quads.append(Quad(s, p, o, self.graph))

    def value(self, s: NamedNode, p: NamedNode, value: Any) -> None:
        self.add(s, p, typed_literal(value))

    def text(self, s: NamedNode, p: NamedNode, value: Any) -> None:
        if isinstance(value, str) and value != "":
            self.add(s, p, Literal(value))


