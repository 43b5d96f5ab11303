"""Named SPARQL queries: ``queries/*.rq`` files with a parameter header.

A named query file starts with comment lines that declare it::

    # @summary  one paragraph on what it answers
    # @param    node  iri  required       description
    # @param    depth int  default=25     description
    # @traversal from node

Parameters are bound with SPARQL substitutions (pyoxigraph's implementation of
SEP-0007: a variable is replaced by an RDF term before evaluation), never
pasted into the query text, so no parameter value can change the query.
A substituted variable must be in the query's projection (SEP-0007); parameters
the query text does not use (``depth``) steer the post-processing only.

A ``@traversal from <param>`` query returns lineage edges
(``?from ?relation ?to`` plus ``?toLabel ?toKind ?toTime``); provkg computes
each reached node's depth (fewest steps from the start node, breadth-first)
and drops nodes beyond ``depth``.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyoxigraph import Literal, NamedNode, QuerySolutions, Variable

from .resources import queries_dir
from .store import LineageStore
from .vocab import XSD

_PARAM = re.compile(r"^#\s*@param\s+(\w+)\s+(iri|int|string)\s+(required|default=\S*)\s*(.*)$")
_IRI_FORBIDDEN = re.compile(r'[\x00-\x20<>"{}|^`\\]')


class QueryParameterError(ValueError):
    """A named-query parameter is missing, unknown or of the wrong type."""


class UnknownQuery(KeyError):
    """No named query of that name."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # iri | int | string
    required: bool
    default: str | None
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required,
                "default": self.default, "description": self.description}


@dataclass
class NamedQuery:
    """One ``.rq`` file: its name (file stem), summary, parameters and text."""

    name: str
    summary: str
    parameters: list[Parameter]
    text: str
    traversal_from: str | None = None
    path: Path | None = None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "summary": self.summary,
                "parameters": [p.as_dict() for p in self.parameters], "traversal": self.traversal_from is not None}

    def bind(self, raw: dict[str, str]) -> tuple[dict[Variable, Any], dict[str, Any]]:
        """Check and convert raw string parameters.

        Output: (SPARQL substitutions, all parameter values as Python values).
        Raises :class:`QueryParameterError` naming the parameter at fault.
        """
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise QueryParameterError(f"unknown parameter(s) {', '.join(unknown)} for query {self.name!r}; "
                                      f"it takes: {', '.join(known) or 'none'}")
        values: dict[str, Any] = {}
        subs: dict[Variable, Any] = {}
        for p in self.parameters:
            value = raw.get(p.name, p.default)
            if value is None:
                raise QueryParameterError(f"parameter {p.name!r} ({p.type}) is required: {p.description}")
            if p.type == "iri":
                if not value or _IRI_FORBIDDEN.search(value) or ":" not in value:
                    raise QueryParameterError(f"parameter {p.name!r} must be an absolute IRI, got {value!r}")
                term: Any = NamedNode(value)
                values[p.name] = value
            elif p.type == "int":
                try:
                    number = int(value)
                except ValueError:
                    raise QueryParameterError(f"parameter {p.name!r} must be an integer, got {value!r}") from None
                if number < 0:
                    raise QueryParameterError(f"parameter {p.name!r} must be >= 0, got {number}")
                term = Literal(str(number), datatype=XSD.integer)
                values[p.name] = number
            else:
                term = Literal(value)
                values[p.name] = value
            # SEP-0007 substitution needs the variable projected; a parameter
            # the query text does not mention only steers post-processing
            if re.search(rf"[?$]{p.name}\b", query_body(self.text)):
                subs[Variable(p.name)] = term
        return subs, values


def query_body(text: str) -> str:
    """The query text without its comment header."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def parse_query_file(path: Path) -> NamedQuery:
    """Read one ``.rq`` file and its ``@`` header; ``ValueError`` on a bad header."""
    text = path.read_text("utf-8")
    summary_lines: list[str] = []
    params: list[Parameter] = []
    traversal = None
    in_summary = False
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line.lstrip("#").strip()
        if body.startswith("@summary"):
            in_summary = True
            summary_lines.append(body[len("@summary"):].strip())
        elif body.startswith("@param"):
            in_summary = False
            m = _PARAM.match(line)
            if not m:
                raise ValueError(f"{path}: bad @param line: {line!r}")
            name, typ, req, desc = m.groups()
            default = None if req == "required" else req.split("=", 1)[1]
            params.append(Parameter(name, typ, req == "required", default, desc.strip()))
        elif body.startswith("@traversal"):
            in_summary = False
            traversal = body.split()[-1]
        elif in_summary and body:
            summary_lines.append(body)
        else:
            in_summary = False
    return NamedQuery(path.stem, " ".join(summary_lines), params, text, traversal, path)


def load_named_queries(folder: Path | None = None) -> dict[str, NamedQuery]:
    """All named queries in ``queries/``, by name (the file stem)."""
    folder = folder or queries_dir()
    return {q.name: q for q in (parse_query_file(p) for p in sorted(folder.glob("*.rq")))}


@dataclass
class QueryAnswer:
    """A named query's answer: ``columns`` and ``rows`` (lists of plain values,
    IRIs and literals as strings, numbers as numbers), with the parameters used."""

    query: str
    parameters: dict[str, Any]
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "parameters": self.parameters, "columns": self.columns,
                "count": len(self.rows), "rows": [dict(zip(self.columns, r)) for r in self.rows]}


def _plain(term: Any) -> Any:
    if term is None:
        return None
    if isinstance(term, Literal) and term.datatype == XSD.integer:
        return int(term.value)
    return term.value


def run_named_query(store: LineageStore, query: NamedQuery, raw_params: dict[str, str]) -> QueryAnswer:
    """Run a named query with raw string parameters (validated and bound).

    Raises :class:`QueryParameterError` for bad parameters."""
    subs, values = query.bind(raw_params)
    solutions = store.query(query.text, substitutions=subs)
    assert isinstance(solutions, QuerySolutions)
    names = [v.value for v in solutions.variables]
    raw_rows = [[_plain(s[n]) for n in names] for s in solutions]
    if query.traversal_from is None:
        return QueryAnswer(query.name, values, names, raw_rows)
    return _traverse(query.name, values, values[query.traversal_from], names, raw_rows, values.get("depth"))


def _traverse(name: str, values: dict[str, Any], start: str, names: list[str], raw_rows: list[list[Any]],
              max_depth: int | None) -> QueryAnswer:
    """Breadth-first depth of every node reached from ``start`` over the edges."""
    idx = {n: i for i, n in enumerate(names)}
    out_edges: dict[str, list[list[Any]]] = {}
    for row in raw_rows:
        out_edges.setdefault(row[idx["from"]], []).append(row)
    depth = {start: 0}
    ordered: list[list[Any]] = []
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if max_depth is not None and depth[node] >= max_depth:
            continue
        for row in sorted(out_edges.get(node, []), key=lambda r: (str(r[idx["relation"]]), str(r[idx["to"]]))):
            target = row[idx["to"]]
            ordered.append([depth[node] + 1, node, row[idx["relation"]], target,
                            row[idx["toKind"]], row[idx["toLabel"]], row[idx["toTime"]]])
            if target not in depth:
                depth[target] = depth[node] + 1
                queue.append(target)
    columns = ["depth", "from", "relation", "node", "kind", "label", "time"]
    return QueryAnswer(name, values, columns, ordered)
