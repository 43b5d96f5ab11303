"""The HTTP service (FastAPI): OpenLineage ingestion, SPARQL, named queries, export.

Routes:
- ``POST /api/v1/lineage``: one OpenLineage event (Marquez-compatible; 201).
- ``POST /api/v1/lineage/batch``: an array of events (OpenLineage.yml ``postEventBatch``).
- ``GET|POST /sparql``: SPARQL 1.1 Protocol, queries only.
- ``GET /api/v1/queries`` and ``GET /api/v1/queries/{name}?param=...``: named queries.
- ``GET /api/v1/export?format=trig|nquads|turtle|jsonld[&graph=IRI]``: the graph as a file.
- ``GET /api/v1/stats``, ``GET /healthz``.
- ``GET /api/v1/audit``, ``GET|POST /api/v1/keys``, ``DELETE /api/v1/keys/{id}``: admin.

Every request passes :class:`Guard` first (ASGI middleware): API key and role
(:mod:`provkg.auth`), rate limit and body size (:mod:`provkg.limits`), and the
audit log (:mod:`provkg.audit`), written before an audited answer leaves.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import zlib
from functools import lru_cache
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__
from .audit import AuditLog, now_iso, parse_since
from .auth import ANONYMOUS, LEAST_ROLE, ROLES, Denied, KeyError_, KeyStore, Principal, permission_for
from .limits import (BodyTooLarge, LimitExceeded, Limits, QueryGate, TokenBuckets, body_too_large,
                     gunzip_bounded)
from .exporting import EXPORT_FORMATS, ExportError, export_graph
from .ingest import Ingestor, IngestResult, MalformedJSON, decode_json
from .quarantine import UnknownEntry
from .shacl import Shapes
from .answer_cache import AnswerCache
from .collector import freeze_long_lived
from .named_queries import QueryParameterError, UnknownNode, load_named_queries, run_named_query
from .sparql_protocol import ProtocolError, request_from
from .step_index import StepIndex
from .validation import Fault


def _problem(status: int, message: str, errors: list[Fault] | None = None, headers: dict[str, str] | None = None,
             **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if errors:
        body["errors"] = [f.as_dict() for f in errors]
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers)


def _limit_problem(exc: LimitExceeded) -> JSONResponse:
    return _problem(exc.status, exc.message,
                    headers={"Retry-After": str(exc.retry_after)} if exc.retry_after else None)


def _note(request: Request, **fields: Any) -> None:
    """Add fields to this request's audit entry (see :class:`Guard`)."""
    request.scope.setdefault("state", {}).setdefault("audit", {}).update(fields)


async def _json_body(request: Request, max_body: int = 0) -> tuple[Any, str]:
    """The request body as JSON and as text, gunzipped when ``Content-Encoding:
    gzip`` (to at most ``max_body`` bytes). Raises :class:`MalformedJSON`
    (answered 400), ``ValueError`` for 415 or :class:`BodyTooLarge` (413)."""
    ctype = (request.headers.get("content-type") or "application/json").split(";", 1)[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise ValueError(f"send events as application/json, not {ctype}")
    body = await request.body()
    encoding = (request.headers.get("content-encoding") or "identity").strip().lower()
    if encoding == "gzip":
        try:
            body = gunzip_bounded(body, max_body)
        except (OSError, EOFError, zlib.error) as exc:
            raise MalformedJSON(f"body is not valid gzip: {exc}") from exc
    elif encoding != "identity":
        raise ValueError(f"unsupported Content-Encoding {encoding!r} (use gzip or none)")
    if not body.strip():
        raise MalformedJSON("empty body: expected an OpenLineage event as JSON")
    doc = decode_json(body)
    return doc, body.decode("utf-8")


async def _read_json(request: Request, max_body: int = 0) -> tuple[Any, JSONResponse | None]:
    """((decoded body, text), None), or (None, the 400/413/415 answer saying why not)."""
    try:
        return await _json_body(request, max_body), None
    except BodyTooLarge as exc:
        return None, _limit_problem(exc)
    except MalformedJSON as exc:
        return None, _problem(400, str(exc), [Fault("", str(exc))])
    except ValueError as exc:
        return None, _problem(415, str(exc))


def _params(scope: Scope) -> dict[str, Any]:
    """Query-string parameters; a repeated one as a list."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if key in out:
            out[key] = (out[key] if isinstance(out[key], list) else [out[key]]) + [value]
        else:
            out[key] = value
    return out


# an audited answer is held until its audit entry is written; one longer than this
# (an export) is held only this far, and streams once its entry is written
HOLD_AT_MOST = 1 << 20


class Guard:
    """ASGI middleware in front of every route: authentication and role,
    rate limit, body size, and the audit log.

    In order: a route that needs a permission (:func:`provkg.auth.permission_for`)
    needs a valid key when authentication is on (401 with ``WWW-Authenticate:
    Bearer`` if missing, unknown or revoked) whose role holds the permission
    (403); each key (and each address sending no valid key) is rate limited
    (429, Retry-After); a body longer than ``max_body`` is refused with 413, by
    its Content-Length before it is read, or as it streams in. Queries,
    exports, admin actions and refusals (401, 403) are audited: the answer is
    held until its entry is in the audit log (503 if the log cannot be written);
    an answer longer than ``HOLD_AT_MOST`` bytes, until then, when its entry
    (``"streamed": true``, its announced length, the time to its first bytes)
    is written and the rest streams.
    """

    def __init__(self, app: ASGIApp, keys: KeyStore, audit: AuditLog, limits: Limits, open_access: bool):
        self.app = app
        self.keys = keys
        self.audit = audit
        self.limits = limits
        self.open_access = open_access
        self.buckets = TokenBuckets(limits.rate, limits.burst)

    def auth_on(self) -> bool:
        return not self.open_access and self.keys.enabled()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        method, path = scope["method"], scope["path"]
        permission = permission_for(method, path)
        headers = Headers(scope=scope)
        client = (scope.get("client") or ("unknown", 0))[0]
        state = scope.setdefault("state", {})
        note: dict[str, Any] = {}
        state["audit"] = note
        entry: dict[str, Any] = {"time": now_iso(), "key": "anonymous", "name": None, "role": None,
                                 "method": method, "path": path, "params": _params(scope)}
        audited = permission in ("query", "inspect", "admin")
        principal: Principal = ANONYMOUS
        held: list[Message] = []
        outcome: dict[str, Any] = {"status": None, "bytes": 0, "sent": False, "streaming": False, "withheld": False}

        async def finish(streaming: bool = False) -> None:
            """Write the audit entry, then let the held answer go (or a 503).
            ``streaming``: the answer is still coming; its size is the one its
            Content-Length announced, its time the time to its first bytes."""
            entry.update({k: v for k, v in note.items() if v is not None})
            if path == "/sparql" and "sparql" in entry:
                entry["params"].pop("query", None)
            entry["status"] = outcome["status"]
            entry["bytes"] = outcome["bytes"]
            if streaming:  # the response start is the first message held
                entry["streamed"] = True
                length = Headers(raw=held[0].get("headers", [])).get("content-length", "")
                entry["bytes"] = int(length) if length.isdigit() else outcome["bytes"]
            entry["ms"] = round((time.monotonic() - started) * 1000, 1)
            entry["client"] = client
            if outcome["status"] and outcome["status"] >= 400:
                entry.setdefault("error", _error_of(held))
            try:
                await anyio.to_thread.run_sync(self.audit.append, entry)
            except OSError as exc:
                held.clear()
                outcome["sent"] = outcome["withheld"] = True
                await _raw_problem(send, 503, f"the audit log cannot be written ({exc.strerror or exc}); "
                                              "the answer is withheld")
                return
            outcome["sent"] = True
            outcome["streaming"] = streaming
            for message in held:
                await send(message)
            held.clear()

        async def capture(message: Message) -> None:
            if outcome["withheld"]:  # a 503 went instead: the rest of the answer is dropped
                return
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
            elif message["type"] == "http.response.body":
                outcome["bytes"] += len(message.get("body", b""))
            if not (audited or outcome["status"] in (401, 403)) or outcome["streaming"]:
                outcome["sent"] = outcome["sent"] or message["type"] == "http.response.start"
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await finish()
                elif outcome["bytes"] >= HOLD_AT_MOST:
                    # a long answer (an export) is not held whole: its entry is
                    # written now, before any of it is sent, and the rest streams
                    await finish(streaming=True)

        async def refuse(status: int, message: str, extra_headers: dict[str, str] | None = None) -> None:
            response = _problem(status, message, headers=extra_headers)
            await response(scope, receive, capture)

        if permission is not None and self.auth_on():
            try:
                principal = self.keys.authenticate(headers.get("authorization"))
            except Denied as denied:
                limited = self.buckets.refuse(f"addr:{client}", f"requests without a valid key from {client}")
                if limited:
                    await _raw_problem(send, 429, limited.message, {"Retry-After": str(limited.retry_after)})
                    return
                entry["key"] = denied.key
                challenge = 'Bearer realm="provkg"' + (', error="invalid_token"' if denied.key else "")
                await refuse(401, denied.reason, {"WWW-Authenticate": challenge})
                return
            entry.update(key=principal.key, name=principal.name, role=principal.role)
            limited = self.buckets.refuse(principal.key, f"key {principal.key} ({principal.name})")
            if limited:
                await _raw_problem(send, 429, limited.message, {"Retry-After": str(limited.retry_after)})
                return
            if not principal.may(permission):
                await refuse(403, f"key {principal.key} ({principal.name}) has role {principal.role}; "
                                  f"{method} {path} needs role {LEAST_ROLE[permission]}")
                return
        state["principal"] = principal
        state["auth"] = self.auth_on()

        limit = self.limits.max_body
        if limit:
            length = headers.get("content-length")
            if length is not None and length.strip().isdigit() and int(length) > limit:
                await refuse(413, body_too_large(limit).message)
                return
            seen = 0
            inner = receive

            async def receive() -> Message:  # counts the body as it streams in
                nonlocal seen
                message = await inner()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > limit:
                        raise body_too_large(limit)
                return message

        try:
            await self.app(scope, receive, capture)
        except BodyTooLarge as exc:
            if outcome["sent"] or held:
                raise
            await refuse(413, exc.message)
        except Exception:
            if (audited or outcome["status"] in (401, 403)) and not outcome["sent"]:
                held.clear()
                outcome["status"] = 500
                entry["error"] = "internal error"
                try:
                    entry.update({k: v for k, v in note.items() if v is not None})
                    entry.update(status=500, bytes=0, client=client,
                                 ms=round((time.monotonic() - started) * 1000, 1))
                    await anyio.to_thread.run_sync(self.audit.append, entry)
                except OSError:
                    pass
            raise


def _error_of(messages: list[Message]) -> str | None:
    """The ``error`` of a held JSON answer, for the audit entry."""
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    try:
        error = json.loads(body).get("error") if body[:1] == b"{" else None
    except (ValueError, AttributeError):
        return None
    return str(error)[:1000] if error is not None else None


async def _raw_problem(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": message}).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def create_app(ingestor: Ingestor, limits: Limits | None = None, open_access: bool = False,
               keys: KeyStore | None = None, audit: AuditLog | None = None) -> FastAPI:
    """Build the service around an ingestion pipeline and its open store.

    ``limits``: the service's limits (defaults: :class:`provkg.limits.Limits`).
    ``open_access``: serve without authentication even when keys exist.
    ``keys`` / ``audit``: the key file and audit log (default: under the store's data directory)."""
    app = FastAPI(title="provkg", version=__version__,
                  description="OpenLineage events in, a W3C PROV-O knowledge graph out over SPARQL. "
                              "Send an API key as `Authorization: Bearer <key>` once keys exist "
                              "(`provkg keys create`); see docs/security.md.")
    store = ingestor.store
    named = load_named_queries()
    answers = AnswerCache()  # whole paged answers until the next write: the other pages cost no walk
    # the impact walks' edges in memory, kept up to date by every write; built in the background,
    # the walk of the store answers until it is ready (provkg/step_index.py)
    steps = StepIndex(named.values())
    store.listeners.append(steps.add)

    def build_steps() -> None:
        steps.build(store)
        freeze_long_lived()  # the index lives as long as the server (provkg/collector.py)

    threading.Thread(target=build_steps, name="provkg-step-index", daemon=True).start()

    @lru_cache(maxsize=1)
    def shapes() -> Shapes:  # parsed on first use, not per request
        return Shapes()
    limits = limits or Limits()
    keys = keys or KeyStore(store.path)
    audit = audit or AuditLog(store.path)
    gate = QueryGate(limits.query_timeout, limits.max_queries)
    # user SPARQL runs in worker processes: a query that crashes the engine (or overruns) takes only its worker
    from .sparql_worker import SparqlWorkers

    sparql_workers = SparqlWorkers(store, min(limits.sparql_workers, limits.max_queries))
    app.state.sparql_workers = sparql_workers
    app.router.add_event_handler("startup", sparql_workers.start)
    app.router.add_event_handler("shutdown", sparql_workers.close)
    if ingestor.shapes is not None and ingestor.shapes.pool is not None:
        app.router.add_event_handler("shutdown", ingestor.shapes.pool.close)
    app.add_middleware(Guard, keys=keys, audit=audit, limits=limits, open_access=open_access)
    app.state.limits = limits
    app.state.gate = gate

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
        body, problem = await _read_json(request, limits.max_body)
        if problem is not None:
            return problem
        event, raw = body
        # store writes and queries block: keep them off the event loop
        return answer(await run_in_threadpool(ingestor.ingest, event, received_at=received, source="http", raw=raw))

    @app.post("/api/v1/lineage/batch", summary="Post an array of OpenLineage events")
    async def post_batch(request: Request) -> JSONResponse:
        received = datetime.now(timezone.utc)
        body, problem = await _read_json(request, limits.max_body)
        if problem is not None:
            return problem
        events = body[0]
        if not isinstance(events, list):
            return _problem(400, "a batch is a JSON array of OpenLineage events", [Fault("", "expected an array")])
        if limits.max_batch and len(events) > limits.max_batch:
            return _problem(413, f"a batch of {len(events)} events exceeds the limit of {limits.max_batch} "
                                 "(PROVKG_MAX_BATCH / --max-batch); split it into smaller batches")
        # one fsync and one store transaction for the batch; acknowledged once durable
        results = await run_in_threadpool(lambda: list(ingestor.ingest_batch(((e, "batch") for e in events),
                                                                             received_at=received)))
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
        except ProtocolError as exc:
            return _problem(exc.status, exc.message)
        except UnicodeDecodeError:
            return _problem(400, "the query is not UTF-8")
        _note(request, sparql=req.query)
        accept = request.headers.get("accept")

        def work(deadline: float | None) -> tuple[bytes, str, int]:
            # evaluated, serialised (stopping at the deadline or the size limit) and counted in a worker process
            return sparql_workers.run(req, accept, deadline, limits.query_timeout, limits.max_result_bytes)

        try:
            payload, media, rows = await gate.run(work, bounded=True)
        except ProtocolError as exc:
            return _problem(exc.status, exc.message)
        except LimitExceeded as exc:
            return _limit_problem(exc)
        _note(request, rows=rows)
        if limits.max_rows and rows > limits.max_rows:
            return _problem(413, _too_many_rows(rows, limits.max_rows))
        return Response(payload, media_type=media)

    # one route per method, so each has its own OpenAPI operation id
    app.add_api_route("/sparql", sparql, methods=["GET"], operation_id="sparql_query_get",
                      summary="SPARQL 1.1 Protocol query endpoint (query via GET)")
    app.add_api_route("/sparql", sparql, methods=["POST"], operation_id="sparql_query_post",
                      summary="SPARQL 1.1 Protocol query endpoint (query via POST)")

    @app.get("/api/v1/queries", summary="List the named queries and their parameters")
    def list_queries() -> dict[str, Any]:
        return {"queries": [q.describe() for q in named.values()]}

    @app.get("/api/v1/queries/{name}", summary="Run a named query; parameters as query-string arguments")
    async def named_query(name: str, request: Request) -> JSONResponse:
        query = named.get(name)
        if query is None:
            return _problem(404, f"no named query {name!r}; known: {', '.join(sorted(named))}")
        params = dict(request.query_params)
        # Cache-Control: no-cache (RFC 9111 §5.2.1.4): the client wants an answer not taken from the cache
        cache = None if "no-cache" in request.headers.get("cache-control", "").lower() else answers
        try:
            answer = await gate.run(lambda deadline: run_named_query(store, query, params, cache, steps))
        except UnknownNode as exc:
            return _problem(404, str(exc))
        except QueryParameterError as exc:
            return _problem(400, str(exc))
        except LimitExceeded as exc:
            return _limit_problem(exc)
        _note(request, rows=len(answer.rows))
        if limits.max_rows and len(answer.rows) > limits.max_rows:
            return _problem(413, _too_many_rows(len(answer.rows), limits.max_rows))
        return JSONResponse(answer.as_dict())

    @app.get("/api/v1/export", summary="Export the whole graph or one named graph")
    def export(format: str = "trig", graph: str | None = None) -> Response:
        # serialised into a temporary file, then sent from it and removed: a large
        # store's export (~9 GB of N-Quads at 100,000 benchmark events) is never in memory
        fd, name = tempfile.mkstemp(prefix="provkg-export-")
        try:
            with os.fdopen(fd, "wb") as fh:
                _payload, media = export_graph(store, format, graph, output=fh)
        except ExportError as exc:
            os.unlink(name)
            return _problem(exc.status, str(exc))
        except BaseException:
            os.unlink(name)
            raise
        return FileResponse(name, media_type=media, background=BackgroundTask(os.unlink, name))

    @app.get("/api/v1/reports/prediction-provenance", summary="Provenance report of a prediction or model version")
    async def report(node: str, format: str = "markdown") -> Response:
        from .report import prediction_report

        try:
            text = await gate.run(lambda deadline: prediction_report(store, node, format))
        except LimitExceeded as exc:
            return _limit_problem(exc)
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

        parsed, problem = await _read_json(request, limits.max_body)
        if problem is not None:
            return problem
        body = parsed[0]
        if not isinstance(body, dict) or not isinstance(body.get("subject"), str) \
                or not isinstance(body.get("requestedBy"), str):
            return _problem(422, "send {\"subject\": str, \"requestedBy\": str, \"article\": \"A17\" | \"A7-3\"}",
                            [Fault("", "subject and requestedBy are required strings")])
        try:
            outcome = await run_in_threadpool(handle_erasure_request, ingestor, body["subject"], body["requestedBy"],
                                              body.get("article", "A17"), index=steps)
        except (QueryParameterError, ValueError) as exc:
            return _problem(422, str(exc))
        # the audit log names the subject by pseudonym IRI only, never by identifier
        _note(request, body={"subject": outcome.subject_iri, "requestedBy": body["requestedBy"],
                             "article": body.get("article", "A17")})
        return JSONResponse(outcome.as_dict(), status_code=201)

    async def _subject_body(request: Request) -> tuple[dict | None, JSONResponse | None]:
        parsed, problem = await _read_json(request, limits.max_body)
        if problem is not None:
            return None, problem
        body = parsed[0]
        if not isinstance(body, dict) or not isinstance(body.get("subject"), str) or not body["subject"]:
            return None, _problem(422, "send {\"subject\": \"<the data subject's identifier>\", ...}",
                                  [Fault("/subject", "a non-empty string is required")])
        return body, None

    @app.post("/api/v1/erasures", summary="Execute a GDPR Art. 17 erasure (admin): destroy the subject's key "
              "material and record it as provenance", status_code=201)
    async def erasure_execute(request: Request) -> JSONResponse:
        from .erasure import execute_erasure
        from .subjects import UnknownSubject

        body, problem = await _subject_body(request)
        if problem is not None:
            return problem
        assert body is not None
        if not isinstance(body.get("requestedBy"), str) or not body["requestedBy"]:
            return _problem(422, "requestedBy is required", [Fault("/requestedBy", "a non-empty string is required")])
        try:
            outcome = await run_in_threadpool(execute_erasure, ingestor, body["subject"], body["requestedBy"],
                                              index=steps)
        except UnknownSubject as exc:
            return _problem(404, str(exc))
        except ValueError as exc:
            return _problem(409, str(exc))
        _note(request, body={"subject": outcome.subject_iri, "requestedBy": body["requestedBy"]})
        return JSONResponse(outcome.as_dict(), status_code=201)

    @app.post("/api/v1/subjects/resolve", summary="The pseudonymous IRI of a data subject given by identifier "
              "(auditor or admin)")
    async def subject_resolve(request: Request) -> JSONResponse:
        from .erasure import subject_iri

        body, problem = await _subject_body(request)
        if problem is not None:
            return problem
        assert body is not None
        iri = subject_iri(ingestor, body["subject"])
        _note(request, body={"subject": iri})
        if iri is None:
            return _problem(404, "no such data subject in this store (never seen, or erased)")
        return JSONResponse({"subject": iri, "pseudonym": iri.rsplit("/", 1)[-1]})

    @app.get("/api/v1/snapshots", summary="A prediction's feature snapshot, unsealed (auditor or admin)")
    def snapshot(prediction: str, request: Request) -> JSONResponse:
        from .snapshots import NoSnapshot, open_snapshot
        from .subjects import SnapshotUnavailable

        if ingestor.vault is None:
            return _problem(404, "this store has no subject key store")
        try:
            opened = open_snapshot(ingestor.store, ingestor.vault, prediction)
            _note(request, subject=opened["subject"])  # who was read about, by pseudonym
            return JSONResponse(opened)
        except NoSnapshot as exc:
            return _problem(404, str(exc))
        except SnapshotUnavailable as exc:
            if exc.erased is not None:
                return _problem(410, str(exc), erased=exc.erased.as_dict())
            return _problem(409, str(exc))

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
        outcome = await run_in_threadpool(validate_lineage_store, store, shapes(),
                                          ("ingest", "store") if stage == "all" else (stage,))
        return JSONResponse(outcome.as_dict())

    @app.get("/api/v1/completeness", summary="Lineage completeness per model version (target >= 95 %)")
    async def completeness_route() -> JSONResponse:
        from .conformance import COMPLETENESS_TARGET, completeness, validate_lineage_store

        def run() -> list[dict]:
            return [c.as_dict() for c in completeness(store, validate_lineage_store(store, shapes()))]

        return JSONResponse({"target": COMPLETENESS_TARGET, "modelVersions": await run_in_threadpool(run)})

    @app.get("/api/v1/stats", summary="Counts of quads, distinct triples and event graphs")
    def stats() -> dict[str, int]:
        return store.stats()

    @app.get("/api/v1/audit", summary="The audit log (admin): who queried or exported what, when, with what answer")
    async def audit_log(request: Request, since: str | None = None, key: str | None = None,
                        limit: int = 100) -> JSONResponse:
        try:
            cutoff = parse_since(since) if since else None
        except ValueError:
            return _problem(400, f"since must be an ISO 8601 date or date-time, got {since!r}")
        if not 1 <= limit <= 10_000:
            return _problem(400, "limit must be between 1 and 10000")
        entries = await run_in_threadpool(audit.search, cutoff, key, limit)
        _note(request, rows=len(entries))
        return JSONResponse({"count": len(entries), "entries": entries})

    def _key_admin(request: Request) -> JSONResponse | None:
        """Keys are managed by an admin key, never anonymously (not even when open)."""
        principal = request.scope.get("state", {}).get("principal", ANONYMOUS)
        if principal.role != "admin":
            return _problem(403, "managing keys over HTTP needs an admin key; on the server's host use "
                                 "`provkg keys create|list|revoke`")
        return None

    @app.get("/api/v1/keys", summary="The API keys (admin; never their secrets)")
    def keys_list(request: Request) -> JSONResponse:
        refused = _key_admin(request)
        if refused is not None:
            return refused
        listed = [k.public() for k in keys.keys()]
        _note(request, rows=len(listed))
        return JSONResponse({"keys": listed})

    @app.post("/api/v1/keys", summary="Create an API key (admin); the token is in this answer only", status_code=201)
    async def keys_create(request: Request) -> JSONResponse:
        refused = _key_admin(request)
        if refused is not None:
            return refused
        parsed, problem = await _read_json(request, limits.max_body)
        if problem is not None:
            return problem
        body = parsed[0]
        if not isinstance(body, dict) or not isinstance(body.get("role"), str) \
                or not isinstance(body.get("name"), str):
            return _problem(422, f"send {{\"role\": {' | '.join(ROLES)}, \"name\": str}}")
        _note(request, body={"role": body["role"], "name": body["name"]})
        try:
            key, token = await run_in_threadpool(keys.create, body["role"], body["name"])
        except KeyError_ as exc:
            return _problem(422, str(exc))
        _note(request, created=key.id)
        return JSONResponse({"key": key.public(), "token": token,
                             "note": "the token is shown once; provkg keeps only its hash"}, status_code=201)

    @app.delete("/api/v1/keys/{key_id}", summary="Revoke an API key (admin)")
    async def keys_revoke(key_id: str, request: Request) -> JSONResponse:
        refused = _key_admin(request)
        if refused is not None:
            return refused
        try:
            key = await run_in_threadpool(keys.revoke, key_id)
        except KeyError_ as exc:
            return _problem(404, str(exc))
        return JSONResponse({"key": key.public()})

    @app.get("/healthz", summary="Liveness, and whether the impact queries' in-memory index is ready")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__, "stepIndex": steps.state()}

    @app.get("/", summary="What this service offers")
    def index() -> dict[str, Any]:
        return {
            "service": "provkg", "version": __version__,
            "lineage": "/api/v1/lineage", "batch": "/api/v1/lineage/batch", "sparql": "/sparql",
            "queries": "/api/v1/queries", "export": "/api/v1/export?format=" + "|".join(EXPORT_FORMATS),
            "docs": "/docs", "authentication": "API key (Authorization: Bearer)" if keys.enabled() and not open_access
            else "none (open)",
        }

    return app


def _too_many_rows(rows: int, limit: int) -> str:
    return (f"the answer has {rows} rows, more than the limit of {limit} (PROVKG_MAX_ROWS / --max-rows): "
            "add LIMIT (and OFFSET to page through it) or narrow the query")
