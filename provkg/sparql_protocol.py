"""The SPARQL 1.1 Protocol, query operation (W3C Recommendation 2013, §2.1).

Accepted requests: ``GET ?query=...``; ``POST`` with
``application/x-www-form-urlencoded`` (``query=...``); ``POST`` with
``application/sparql-query`` (the body is the query). ``default-graph-uri``
and ``named-graph-uri`` may be repeated. Without ``default-graph-uri`` the
default graph is the union of all event graphs.

Results by ``Accept``: SELECT / ASK as SPARQL JSON (default), SPARQL XML, CSV
or TSV; CONSTRUCT / DESCRIBE as Turtle (default), N-Triples, JSON-LD or
RDF/XML. The update operation is refused: this endpoint is read-only.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

import mimeparse
from pyoxigraph import NamedNode, Quad, QueryBoolean, QueryResultsFormat, QuerySolutions, RdfFormat, Store

from .store import LineageStore

RESULT_FORMATS = {
    "application/sparql-results+json": QueryResultsFormat.JSON,
    "application/json": QueryResultsFormat.JSON,
    "application/sparql-results+xml": QueryResultsFormat.XML,
    "application/xml": QueryResultsFormat.XML,
    "text/xml": QueryResultsFormat.XML,
    "text/csv": QueryResultsFormat.CSV,
    "text/tab-separated-values": QueryResultsFormat.TSV,
}
GRAPH_FORMATS = {
    "text/turtle": RdfFormat.TURTLE,
    "application/x-turtle": RdfFormat.TURTLE,
    "application/n-triples": RdfFormat.N_TRIPLES,
    "text/plain": RdfFormat.N_TRIPLES,
    "application/ld+json": RdfFormat.JSON_LD,
    "application/rdf+xml": RdfFormat.RDF_XML,
}
# the first entry of each list is the default answer to "Accept: */*"
_RESULT_ORDER = list(RESULT_FORMATS)
_GRAPH_ORDER = list(GRAPH_FORMATS)

_UPDATE_REFUSED = "SPARQL Update is not accepted: /sparql is a read-only query endpoint"


def _is_update(text: str) -> bool:
    """Whether text that is not a valid query is a valid SPARQL 1.1 Update
    (parsed, never executed, by rdflib's SPARQL grammar)."""
    from rdflib.plugins.sparql.parser import parseUpdate

    try:
        parseUpdate(text)
    except Exception:  # pyparsing raises its own error types
        return False
    return True


class ProtocolError(Exception):
    """A request the protocol refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class SparqlRequest:
    query: str
    default_graphs: list[str]
    named_graphs: list[str]


def _choose(accept: str | None, order: list[str], kind: str) -> str:
    if not accept or accept.strip() in ("*/*", ""):
        return order[0]
    try:
        best = mimeparse.best_match(list(reversed(order)), accept)
    except (ValueError, mimeparse.MimeTypeParseException):
        raise ProtocolError(400, f"unreadable Accept header: {accept!r}") from None
    if not best:
        raise ProtocolError(406, f"no {kind} format matches Accept: {accept!r}; offered: {', '.join(order)}")
    return best


def request_from(method: str, content_type: str | None, query_params: list[tuple[str, str]],
                 form: list[tuple[str, str]] | None, body: bytes | None) -> SparqlRequest:
    """Build a SPARQL request from the HTTP request's parts (§2.1.1–2.1.3).

    Raises :class:`ProtocolError` (400 for a missing or doubled query or an
    update, 415 for an unsupported POST content type)."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    params = list(query_params)
    if method == "POST":
        if mime == "application/x-www-form-urlencoded":
            params += form or []
        elif mime == "application/sparql-query":
            params.append(("query", (body or b"").decode("utf-8", errors="strict")))
        elif mime == "application/sparql-update" or any(k == "update" for k, _ in params + (form or [])):
            raise ProtocolError(400, _UPDATE_REFUSED)
        else:
            raise ProtocolError(415, "POST a query as application/x-www-form-urlencoded (query=...) "
                                     "or as application/sparql-query")
    if any(k == "update" for k, _ in params):
        raise ProtocolError(400, _UPDATE_REFUSED)
    queries = [v for k, v in params if k == "query"]
    if len(queries) != 1:
        raise ProtocolError(400, "exactly one 'query' parameter is required" if not queries
                            else "more than one 'query' parameter")
    return SparqlRequest(
        queries[0],
        [v for k, v in params if k == "default-graph-uri"],
        [v for k, v in params if k == "named-graph-uri"],
    )


def _merged(store: LineageStore, defaults: list[NamedNode], named: list[NamedNode] | None) -> Store:
    """An in-memory store whose default graph is the merge of ``defaults`` and
    whose named graphs are ``named`` (all event graphs when None)."""
    merged = Store()
    merged.extend(Quad(q.subject, q.predicate, q.object)  # no graph: the default graph
                  for g in defaults for q in store.store.quads_for_pattern(None, None, None, g))
    for g in named if named is not None else store.event_graphs():
        merged.extend(store.store.quads_for_pattern(None, None, None, g))
    return merged


def execute(store: LineageStore, req: SparqlRequest, accept: str | None, output=None) -> tuple[bytes, str]:
    """Evaluate the query and serialise the answer for ``accept``.

    Output: (body bytes, media type). Raises :class:`ProtocolError`: 400 for
    a syntax error or a bad graph IRI, 406 when no offered format matches.
    ``output``: a binary sink with ``getvalue()`` to serialise into (the
    server's, which enforces the time and size limits by raising from ``write``)."""
    kwargs = {}
    try:
        defaults = [NamedNode(g) for g in req.default_graphs]
        if req.named_graphs:
            kwargs["named_graphs"] = [NamedNode(g) for g in req.named_graphs]
    except ValueError as exc:
        raise ProtocolError(400, f"bad graph IRI: {exc}") from None
    target = store
    if len(defaults) == 1:
        kwargs["default_graph"] = defaults
    elif len(defaults) > 1:
        # pyoxigraph joins several default graphs as a multiset; the protocol
        # (SPARQL 1.1 Query §13.2.1) asks for their RDF merge, so build it
        target = _merged(store, defaults, kwargs.pop("named_graphs", None))
    try:
        result = target.query(req.query, **kwargs)
    except SyntaxError as exc:
        if _is_update(req.query):
            raise ProtocolError(400, _UPDATE_REFUSED) from None
        raise ProtocolError(400, f"SPARQL syntax error: {exc}") from None
    # pyoxigraph results may only be freed on the thread that made them: drop
    # ours here, even when negotiation or the size/time limits raise (an
    # exception's traceback would otherwise carry it to another thread)
    try:
        return _serialize(result, accept, output)
    except BaseException as exc:
        traceback.clear_frames(exc.__traceback__)  # the frames below hold the result too
        raise
    finally:
        del result


def _serialize(result: Any, accept: str | None, output: Any) -> tuple[bytes, str]:
    if isinstance(result, (QuerySolutions, QueryBoolean)):
        media = _choose(accept, _RESULT_ORDER, "SPARQL results")
        fmt = RESULT_FORMATS[media]
    else:
        media = _choose(accept, _GRAPH_ORDER, "RDF")
        fmt = GRAPH_FORMATS[media]
    if output is not None:
        result.serialize(output, format=fmt)
        return output.getvalue(), fmt.media_type
    return result.serialize(format=fmt), fmt.media_type
