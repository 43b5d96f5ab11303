"""The HTTP service (FastAPI): OpenLineage ingestion, SPARQL, named queries, export.

Routes:
- ``POST /api/v1/lineage``: one OpenLineage event (Marquez-compatible; 201).
- ``POST /api/v1/lineage/batch``: an array of events (OpenLineage.yml ``postEventBatch``).
- ``GET|POST /sparql``: SPARQL 1.1 Protocol, queries only.
- ``GET /api/v1/queries`` and ``GET /api/v1/queries/{name}?param=...``: named queries.
- ``GET /api/v1/export?format=trig|nquads|turtle|jsonld[&graph=IRI]``: the graph as a file.
- ``GET /api/v1/stats``, ``GET /healthz``.
"""

from __future__ import annotations

import gzip
import zlib
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from . import __version__
from .exporting import EXPORT_FORMATS, ExportError, export_graph
from .ingest import Ingestor, IngestResult, MalformedJSON, decode_json
from .quarantine import UnknownEntry
from .shacl import Shapes
from .named_queries import QueryParameterError, UnknownNode, load_named_queries, run_named_query
from .sparql_protocol import ProtocolError, execute, request_from
from .validation import Fault


def _problem(status: int, message: str, errors: list[Fault] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if errors:
        body["errors"] = [f.as_dict() for f in errors]
    body.update(extra)
    return JSONResponse(body, status_code=status)


async def _json_body(request: Request) -> tuple[Any, str]:
    """The request body as JSON and as text, gunzipped when ``Content-Encoding:
    gzip``. Raises :class:`MalformedJSON` (answered 400) or ``ValueError`` for 415."""
    ctype = (request.headers.get("content-type") or "application/json").split(";", 1)[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise ValueError(f"send events as application/json, not {ctype}")
    body = await request.body()
    encoding = (request.headers.get("content-encoding") or "identity").strip().lower()
    if encoding == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise MalformedJSON(f"body is not valid gzip: {exc}") from exc
    elif encoding != "identity":
        raise ValueError(f"unsupported Content-Encoding {encoding!r} (use gzip or none)")
    if not body.strip():
        raise MalformedJSON("empty body: expected an OpenLineage event as JSON")
    doc = decode_json(body)
    return doc, body.decode("utf-8")


async def _read_json(request: Request) -> tuple[Any, JSONResponse | None]:
    """((decoded body, text), None), or (None, the 400/415 answer saying why not)."""
    try:
        return await _json_body(request), None
    except MalformedJSON as exc:
        return None, _problem(400, str(exc), [Fault("", str(exc))])
    except ValueError as exc:
        return None, _problem(415, str(exc))


def create_app(ingestor: Ingestor) -> FastAPI:
    """Build the service around an ingestion pipeline and its open store."""
    app = FastAPI(title="provkg", version=__version__,
                  description="OpenLineage events in, a W3C PROV-O knowledge graph out over SPARQL.")
    store = ingestor.store
    named = load_named_queries()

    def answer(result: IngestResult) -> JSONResponse:
        if result.status == "rejected":
            if result.shacl is not None:
                return _problem(422, "event breaks SHACL shapes (ingest mode: reject)", result.faults,
                                validation=result.shacl.as_dict())
            return _problem(422, "event does not conform to OpenLineage 2-0-2", result.faults)
        status = {"accepted": 201, "duplicate": 200, "quarantined": 202}[result.status]
        return JSONResponse(result.as_dict(), status_code=status)

    @app.post("/api/v1/lineage", summary="Post one OpenLineage event (RunEvent, DatasetEvent or JobEvent)")
    async def post_lineage(request: Request) -> JSONResponse:
        received = datetime.now(timezone.utc)
        body, problem = await _read_json(request)
        if problem is not None:
            return problem
        event, raw = body
        # store writes and queries block: keep them off the event loop
        return answer(await run_in_threadpool(ingestor.ingest, event, received_at=received, source="http", raw=raw))

    @app.post("/api/v1/lineage/batch", summary="Post an array of OpenLineage events")
    async def post_batch(request: Request) -> JSONResponse:
        received = datetime.now(timezone.utc)
        body, problem = await _read_json(request)
        if problem is not None:
            return problem
        events = body[0]
        if not isinstance(events, list):
            return _problem(400, "a batch is a JSON array of OpenLineage events", [Fault("", "expected an array")])
        results = await run_in_threadpool(lambda: [ingestor.ingest(e, received_at=received, source="batch")
                                                   for e in events])
        failed = [(i, r) for i, r in enumerate(results) if r.status == "rejected"]
        quarantined = sum(1 for r in results if r.status == "quarantined")
        return JSONResponse({
            "status": "partial_success" if failed else "success",
            "summary": {"received": len(results), "successful": len(results) - len(failed),
                        "failed": len(failed), "retriable": 0, "non_retriable": len(failed),
                        "quarantined": quarantined},
            "failed_events": [
                {"index": i, "reason": "; ".join(f"{f.pointer or '/'}: {f.message}" for f in r.faults),
                 "retriable": False, "errors": [f.as_dict() for f in r.faults]}
                for i, r in failed
            ],
            "results": [r.as_dict() for r in results],
        }, status_code=200)

    async def sparql(request: Request) -> Response:
        form = None
        body = None
        if request.method == "POST":
            body = await request.body()
            ctype = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
            if ctype == "application/x-www-form-urlencoded":
                form = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        try:
            req = request_from(request.method, request.headers.get("content-type"),
                               list(request.query_params.multi_items()), form, body)
            payload, media = await run_in_threadpool(execute, store, req, request.headers.get("accept"))
        except ProtocolError as exc:
            return _problem(exc.status, exc.message)
        except UnicodeDecodeError:
            return _problem(400, "the query is not UTF-8")
        return Response(payload, media_type=media)

    app.add_api_route("/sparql", sparql, methods=["GET", "POST"], summary="SPARQL 1.1 Protocol query endpoint")

    @app.get("/api/v1/queries", summary="List the named queries and their parameters")
    def list_queries() -> dict[str, Any]:
        return {"queries": [q.describe() for q in named.values()]}

    @app.get("/api/v1/queries/{name}", summary="Run a named query; parameters as query-string arguments")
    async def named_query(name: str, request: Request) -> JSONResponse:
        query = named.get(name)
        if query is None:
            return _problem(404, f"no named query {name!r}; known: {', '.join(sorted(named))}")
        try:
            answer = await run_in_threadpool(run_named_query, store, query, dict(request.query_params))
            return JSONResponse(answer.as_dict())
        except UnknownNode as exc:
            return _problem(404, str(exc))
        except QueryParameterError as exc:
            return _problem(400, str(exc))

    @app.get("/api/v1/export", summary="Export the whole graph or one named graph")
    def export(format: str = "trig", graph: str | None = None) -> Response:
        try:
            payload, media = export_graph(store, format, graph)
        except ExportError as exc:
            return _problem(exc.status, str(exc))
        return Response(payload, media_type=media)

    @app.get("/api/v1/reports/prediction-provenance", summary="Provenance report of a prediction or model version")
    def report(node: str, format: str = "markdown") -> Response:
        from .report import prediction_report

        try:
            text = prediction_report(store, node, format)
        except UnknownNode as exc:
            return _problem(404, str(exc))
        except QueryParameterError as exc:
            return _problem(400, str(exc))
        except ValueError as exc:
            return _problem(404 if "holds nothing" in str(exc) else 400, str(exc))
        return Response(text, media_type="text/html" if format == "html" else "text/markdown")

    @app.post("/api/v1/erasure-requests", summary="Answer and record a GDPR erasure / consent-withdrawal request",
              status_code=201)
    async def erasure_request(request: Request) -> JSONResponse:
        from .erasure import handle_erasure_request

        parsed, problem = await _read_json(request)
        if problem is not None:
            return problem
        body = parsed[0]
        if not isinstance(body, dict) or not isinstance(body.get("subject"), str) \
                or not isinstance(body.get("requestedBy"), str):
            return _problem(422, "send {\"subject\": str, \"requestedBy\": str, \"article\": \"A17\" | \"A7-3\"}",
                            [Fault("", "subject and requestedBy are required strings")])
        try:
            outcome = await run_in_threadpool(handle_erasure_request, ingestor, body["subject"], body["requestedBy"],
                                              body.get("article", "A17"))
        except (QueryParameterError, ValueError) as exc:
            return _problem(422, str(exc))
        return JSONResponse(outcome.as_dict(), status_code=201)

    @app.get("/api/v1/quarantine", summary="Events kept aside because they broke a SHACL Violation")
    def quarantine_list() -> JSONResponse:
        if ingestor.quarantine is None:
            return JSONResponse({"entries": []})
        return JSONResponse({"entries": [e.summary() for e in ingestor.quarantine.entries()]})

    @app.get("/api/v1/quarantine/{entry_id}", summary="One quarantined event and its SHACL results")
    def quarantine_get(entry_id: str) -> JSONResponse:
        try:
            entry = ingestor.quarantine.get(entry_id) if ingestor.quarantine else None
        except UnknownEntry:
            entry = None
        if entry is None:
            return _problem(404, f"no quarantined event {entry_id}")
        return JSONResponse({"id": entry.id, "receivedAt": entry.received_at, "results": entry.results,
                             "event": entry.event})

    @app.post("/api/v1/quarantine/{entry_id}/release",
              summary="Store a quarantined event once it conforms (force=true: store it flagged)")
    async def quarantine_release(entry_id: str, force: bool = False) -> JSONResponse:
        if ingestor.quarantine is None:
            return _problem(404, f"no quarantined event {entry_id}")
        try:
            result = await run_in_threadpool(ingestor.release, entry_id, force)
        except UnknownEntry:
            return _problem(404, f"no quarantined event {entry_id}")
        return JSONResponse(result.as_dict(), status_code=409 if result.status == "quarantined" else 200)

    @app.get("/api/v1/validation", summary="Validate the whole store against the SHACL shapes")
    async def validation(stage: str = "all") -> JSONResponse:
        from .conformance import validate_lineage_store

        if stage not in ("ingest", "store", "all"):
            return _problem(400, "stage must be ingest, store or all")
        outcome = await run_in_threadpool(validate_lineage_store, store, Shapes(),
                                          ("ingest", "store") if stage == "all" else (stage,))
        return JSONResponse(outcome.as_dict())

    @app.get("/api/v1/completeness", summary="Lineage completeness per model version (target >= 95 %)")
    async def completeness_route() -> JSONResponse:
        from .conformance import COMPLETENESS_TARGET, completeness, validate_lineage_store

        def run() -> list[dict]:
            return [c.as_dict() for c in completeness(store, validate_lineage_store(store, Shapes()))]

        return JSONResponse({"target": COMPLETENESS_TARGET, "modelVersions": await run_in_threadpool(run)})

    @app.get("/api/v1/stats", summary="Counts of quads, distinct triples and event graphs")
    def stats() -> dict[str, int]:
        return store.stats()

    @app.get("/healthz", summary="Liveness")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/", summary="What this service offers")
    def index() -> dict[str, Any]:
        return {
            "service": "provkg", "version": __version__,
            "lineage": "/api/v1/lineage", "batch": "/api/v1/lineage/batch", "sparql": "/sparql",
            "queries": "/api/v1/queries", "export": "/api/v1/export?format=" + "|".join(EXPORT_FORMATS),
            "docs": "/docs",
        }

    return app
