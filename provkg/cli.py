"""The ``provkg`` command line (Typer).

Every command that opens a store takes ``--data DIR`` (env ``PROVKG_DATA``,
default ``./provkg-data``) and means the same store by it.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .config import (ENV_AUTH, ENV_BASE_IRI, ENV_DATA, ENV_HOST, ENV_MAX_BATCH, ENV_MAX_BODY, ENV_MAX_QUERIES,
                     ENV_MAX_RESULT_BYTES, ENV_MAX_ROWS, ENV_PORT, ENV_QUERY_TIMEOUT, ENV_RATE_BURST, ENV_RATE_LIMIT,
                     ENV_SHACL_MODE, ENV_SHACL_WORKERS)
from .collector import freeze_long_lived
from .exporting import EXPORT_FORMATS, ExportError, export_graph
from .ingest import SHACL_MODES, Ingestor, IngestResult, event_files, read_events
from .iris import DEFAULT_BASE, IriMinter
from .named_queries import QueryParameterError, load_named_queries, run_named_query
from .eventlog import EventLog
from .quarantine import Quarantine, UnknownEntry
from .resources import SPEC_ENV, ResourceNotFound
from .shacl import EventShapesValidator, Shapes, ShapesError
from .store import DEFAULT_DATA_DIR, LineageStore, StoreLocked
from .subjects import SubjectVault
from .validation import EventValidator, Fault

app = typer.Typer(
    help="provkg: OpenLineage events in, a W3C PROV-O knowledge graph on disk, SPARQL out.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

DataOpt = typer.Option(DEFAULT_DATA_DIR, "--data", "-d", envvar=ENV_DATA, help="Store directory.")
BaseOpt = typer.Option(DEFAULT_BASE, "--base-iri", envvar=ENV_BASE_IRI, help="Prefix of every IRI provkg mints.")
SpecOpt = typer.Option(None, "--spec", envvar=SPEC_ENV,
                       help="OpenLineage spec/ folder (default: ../shared/openlineage/spec).")
ShaclModeOpt = typer.Option("flag", "--shacl-mode", envvar=ENV_SHACL_MODE,
                            help="What to do with an event that breaks a SHACL Violation: flag (store it with its "
                                 "validation report), reject (422), quarantine (keep it aside), off.")


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _open_store(data: Path, read_only: bool = False) -> LineageStore:
    try:
        return LineageStore(data, read_only=read_only)
    except (StoreLocked, FileNotFoundError, OSError) as exc:
        raise _fail(str(exc))


def _validator(spec: Optional[Path]) -> EventValidator:
    try:
        return EventValidator(spec)
    except ResourceNotFound as exc:
        raise _fail(str(exc))


def _ingestor(store: LineageStore, spec: Optional[Path], base_iri: str, shacl_mode: str) -> Ingestor:
    """The ingestion pipeline for a store: OpenLineage validation, PROV-O
    mapping, per-event SHACL in ``shacl_mode``, quarantine under the data dir."""
    if shacl_mode not in SHACL_MODES:
        raise _fail(f"--shacl-mode must be one of {', '.join(SHACL_MODES)}, not {shacl_mode!r}")
    shapes = None
    if shacl_mode != "off":
        try:
            shapes = EventShapesValidator(Shapes(), workers=_shacl_workers())
        except ShapesError as exc:
            raise _fail(str(exc))
    try:
        log = EventLog(store.path / "log")
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot open the event log in {store.path / 'log'}: {exc}")
    try:
        vault = SubjectVault(store.path / "subjects")
    except (OSError, sqlite3.Error) as exc:
        raise _fail(f"cannot open the subject key store in {store.path / 'subjects'}: {exc}")
    ingestor = Ingestor(store, _validator(spec), _minter(base_iri), shapes, shacl_mode,
                        Quarantine(store.path / "quarantine"), log, vault)
    freeze_long_lived()  # the validators and shapes live as long as the process: see provkg.collector
    return ingestor


def _compact_after_bulk(store: LineageStore) -> None:
    # each bulk write adds its own files; one compaction after the load makes every later look-up cheaper
    if store.bulk_writes:
        with err.status(f"compacting the store after {store.bulk_writes} bulk writes"):
            store.optimize()


def _shacl_workers() -> int:
    """Worker processes for per-event SHACL (PROVKG_SHACL_WORKERS; default: one
    fewer than the cores, at least 1 and at most 4: pyshacl holds one core per
    process, and the main process maps and writes on another)."""
    text = os.environ.get(ENV_SHACL_WORKERS, "")
    if not text:
        return max(1, min(4, (os.cpu_count() or 1) - 1))
    if not text.isdigit():
        raise _fail(f"{ENV_SHACL_WORKERS} must be a number of processes (0: validate in-process), not {text!r}")
    return int(text)


def _minter(base: str) -> IriMinter:
    try:
        return IriMinter(base)
    except ValueError as exc:
        raise _fail(str(exc))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", envvar=ENV_HOST, help="Interface to listen on."),
    port: int = typer.Option(5000, "--port", "-p", envvar=ENV_PORT, help="TCP port."),
    data: Path = DataOpt,
    base_iri: str = BaseOpt,
    spec: Optional[Path] = SpecOpt,
    demo: bool = typer.Option(False, "--demo", help="Load the demo ML-platform lineage first (idempotent)."),
    shacl_mode: str = ShaclModeOpt,
    open_access: bool = typer.Option(False, "--open", help=f"Serve without authentication even when API keys exist "
                                                           f"(local use; same as {ENV_AUTH}=off)."),
    max_body: str = typer.Option("2MiB", "--max-body", envvar=ENV_MAX_BODY,
                                 help="Largest request body, also once gunzipped (413 beyond): bytes or 2MiB, 512KB..."),
    max_batch: int = typer.Option(1000, "--max-batch", envvar=ENV_MAX_BATCH, help="Most events in one batch (413)."),
    query_timeout: float = typer.Option(30.0, "--query-timeout", envvar=ENV_QUERY_TIMEOUT,
                                        help="Seconds a SPARQL or named query may run before the client gets 503."),
    max_queries: int = typer.Option(4, "--max-queries", envvar=ENV_MAX_QUERIES,
                                    help="Queries running at once; more wait for a slot up to the query timeout."),
    max_rows: int = typer.Option(100_000, "--max-rows", envvar=ENV_MAX_ROWS,
                                 help="Most rows in a SPARQL or named-query answer (413: use LIMIT)."),
    max_result_bytes: str = typer.Option("50MB", "--max-result-bytes", envvar=ENV_MAX_RESULT_BYTES,
                                         help="Largest SPARQL answer (413: use LIMIT)."),
    rate_limit: float = typer.Option(100.0, "--rate-limit", envvar=ENV_RATE_LIMIT,
                                     help="Requests per second per API key (429 with Retry-After beyond); 0: none."),
    rate_burst: int = typer.Option(200, "--rate-burst", envvar=ENV_RATE_BURST,
                                   help="Requests a key may send at once before --rate-limit applies."),
) -> None:
    """Run the HTTP service: OpenLineage ingestion, SPARQL endpoint, named queries, export.

    Once an API key exists (`provkg keys create`) every route but /, /healthz
    and /docs needs one (Authorization: Bearer); --open serves without. Queries,
    exports and admin actions are recorded in DATA/audit.jsonl (`provkg audit`).
    Every limit is 0 for none (except --max-queries); see docs/security.md."""
    import os

    import uvicorn

    from .auth import KeyStore
    from .limits import Limits, parse_size
    from .server import create_app

    auth_env = os.environ.get(ENV_AUTH, "").strip().lower()
    if auth_env not in ("", "on", "auto", "off"):
        raise _fail(f"{ENV_AUTH} must be on or off, not {auth_env!r}")
    open_access = open_access or auth_env == "off"
    try:
        limits = Limits(max_body=parse_size(max_body), max_batch=max_batch, query_timeout=query_timeout,
                        max_queries=max_queries, max_rows=max_rows, max_result_bytes=parse_size(max_result_bytes),
                        rate=rate_limit, burst=rate_burst)
    except ValueError as exc:
        raise _fail(str(exc))
    store = _open_store(data)
    ingestor = _ingestor(store, spec, base_iri, shacl_mode)
    caught_up = ingestor.catch_up()
    _compact_after_bulk(store)
    if caught_up:
        out.print(f"projected {caught_up} logged events the store lacked (after an interrupted run)")
    if demo:
        from .demo import demo_events

        counts = Counter(r.status for r in ingestor.ingest_batch((e, None) for e in demo_events()))
        out.print(f"demo lineage loaded: {counts.get('accepted', 0)} events added, "
                  f"{counts.get('duplicate', 0)} already present, {counts.get('rejected', 0)} rejected")
    events = store.event_count()  # counting every quad (store.stats) takes ~12 s at 100k events
    url = f"http://{host}:{port}"
    keys = KeyStore(data)
    auth_on = keys.enabled() and not open_access
    out.print(f"[bold]provkg[/bold] serving store [cyan]{data}[/cyan] "
              f"({events} events) on [cyan]{url}[/cyan]")
    if auth_on:
        active = sum(1 for k in keys.keys() if k.active)
        out.print(f"authentication: on ({active} active API keys; send Authorization: Bearer <key>)")
    elif keys.enabled():
        out.print("[yellow]authentication: off (--open): anyone who can reach the port can query and post[/yellow]")
    else:
        out.print("authentication: off (no API key yet; `provkg keys create --role admin --name NAME` turns it on)")
    out.print(_try_this(url, store, demo, auth_on, ingestor), markup=False, highlight=False, soft_wrap=True)
    application = create_app(ingestor, limits=limits, open_access=open_access, keys=keys)
    freeze_long_lived()
    uvicorn.run(application, host=host, port=port, log_level="warning")


def _try_this(url: str, store: LineageStore, demo: bool, auth_on: bool = False,
              ingestor: Ingestor | None = None) -> str:
    """What a newcomer can paste next: real IRIs from this store."""
    lines = _try_lines(url, store, demo, ingestor)
    if auth_on:  # every example needs the key
        lines = [line.replace("  curl -s ", '  curl -s -H "Authorization: Bearer $PROVKG_KEY" ', 1) for line in lines]
        lines.insert(1, "  (export PROVKG_KEY=<a reader key from `provkg keys create --role reader --name NAME`>)")
    return "\n".join(lines)


def _try_lines(url: str, store: LineageStore, demo: bool, ingestor: Ingestor | None = None) -> list[str]:
    lines = [
        "Try:",
        f"  curl -s {url}/sparql -H 'Accept: text/csv' --data-urlencode "
        "'query=SELECT ?job (COUNT(?run) AS ?runs) WHERE { ?run <https://w3id.org/provkg/ns#job> ?job } GROUP BY ?job'",
    ]
    if demo:
        from .demo import KNOWN_ANSWERS as known
        from .erasure import subject_iri

        # subjects are stored under pseudonyms: look the demo's one up in this store's key store
        withdrawn = subject_iri(ingestor, known["withdrawn_subject"]) if ingestor else None
        lines += [
            f"  curl -s -G {url}/api/v1/reports/prediction-provenance "
            f"--data-urlencode node={known['full_snapshot_prediction_iri']}",
            f"  curl -s -G {url}/api/v1/queries/erasure-impact --data-urlencode subject={withdrawn}",
            f"  curl -s -G {url}/api/v1/queries/consent-violations",
            f"  curl -s -G {url}/api/v1/queries/bias-attribution --data-urlencode node={known['model_versions']['2']}",
            f"  curl -s -G {url}/api/v1/queries/version-diff --data-urlencode a={known['model_versions']['1']} "
            f"--data-urlencode b={known['model_versions']['2']}",
        ]
    else:
        example = next(iter(store.query(
            "PREFIX provkg: <https://w3id.org/provkg/ns#> PREFIX prov: <http://www.w3.org/ns/prov#> "
            "SELECT ?d WHERE { ?d a provkg:Dataset ; prov:wasDerivedFrom ?x . "
            "FILTER NOT EXISTS { ?y prov:wasDerivedFrom ?d } } ORDER BY ?d LIMIT 1")), None)
        if example is not None:
            lines.append(f"  curl -s -G {url}/api/v1/queries/backward-provenance "
                         f"--data-urlencode node={example['d'].value} --data-urlencode depth=3")
    lines.append(f"  API docs: {url}/docs    Post OpenLineage events to {url}/api/v1/lineage    Stop: Ctrl-C")
    return lines


def _print_rejection(result: IngestResult) -> None:
    where = result.source or "event"
    for fault in result.faults[:5]:
        err.print(f"  [red]rejected[/red] {where}: {fault.pointer or '/'}: {fault.message}")
    if len(result.faults) > 5:
        err.print(f"  ... and {len(result.faults) - 5} more faults")


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Event files (.json: one event or an array; .jsonl) or folders."),
    data: Path = DataOpt,
    base_iri: str = BaseOpt,
    spec: Optional[Path] = SpecOpt,
    shacl_mode: str = ShaclModeOpt,
) -> None:
    """Load OpenLineage events from files into the store.

    Large files are written with the store's bulk loader, and the store is
    compacted once at the end (docs/record.md).

    Exit code 0 when every event was accepted (or already held), 1 when any
    was rejected (each rejection is printed with its JSON pointer), 2 on error."""
    try:
        files = event_files(paths)
    except FileNotFoundError as exc:
        raise _fail(str(exc))
    store = _open_store(data)
    ingestor = _ingestor(store, spec, base_iri, shacl_mode)
    counts: Counter[str] = Counter()
    triples = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task("ingesting files", total=len(files))
        for path in files:
            # the file's events go in chunks: one fsync and one store transaction per chunk
            malformed: list[IngestResult] = []

            def decoded(path: Path = path, malformed: list[IngestResult] = malformed):
                for event, source, problem in read_events(path):
                    if problem is None:
                        yield event, source
                    else:
                        malformed.append(IngestResult("rejected", faults=[Fault("", str(problem))], source=source))

            for result in itertools.chain(ingestor.ingest_batch(decoded()), malformed):
                counts[result.status] += 1
                if result.status == "accepted" and result.shacl is not None and not result.shacl.conforms:
                    counts["flagged"] += 1
                triples += result.triples
                if result.status == "rejected":
                    progress.console.print(f"[red]rejected[/red] {result.source}")
                    _print_rejection(result)
            progress.advance(task)
    store.flush()
    _compact_after_bulk(store)
    quarantined = f", {counts['quarantined']} quarantined" if counts["quarantined"] else ""
    flagged = f" ({counts['flagged']} flagged by SHACL)" if counts["flagged"] else ""
    out.print(f"{len(files)} files: {counts['accepted']} events accepted ({triples} quads){flagged}, "
              f"{counts['duplicate']} duplicates, {counts['rejected']} rejected{quarantined}")
    if counts["rejected"]:
        raise typer.Exit(1)


@app.command()
def query(
    name: Optional[str] = typer.Argument(None, help="Named query (see --list)."),
    param: list[str] = typer.Option([], "--param", "-P", help="Parameter as key=value; repeatable."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    list_queries: bool = typer.Option(False, "--list", help="List the named queries and their parameters."),
    data: Path = DataOpt,
) -> None:
    """Run a named query from queries/ against the store (read-only)."""
    named = load_named_queries()
    if list_queries or name is None:
        for q in named.values():
            out.print(f"[bold]{q.name}[/bold]: {q.summary}")
            for p in q.parameters:
                req = "required" if p.required else "optional" if p.default is None else f"default {p.default}"
                out.print(f"    --param {p.name}=<{p.type}>  ({req}) {p.description}")
        return
    if name not in named:
        raise _fail(f"no named query {name!r}; known: {', '.join(sorted(named))}")
    raw = {}
    for item in param:
        if "=" not in item:
            raise _fail(f"--param takes key=value, got {item!r}")
        key, value = item.split("=", 1)
        raw[key] = value
    store = _open_store(data, read_only=True)
    try:
        answer = run_named_query(store, named[name], raw)
    except QueryParameterError as exc:
        raise _fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(answer.as_dict(), indent=2) + "\n")
        return
    table = Table(*answer.columns, title=f"{name} ({len(answer.rows)} rows)")
    for row in answer.rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)


@app.command()
def sparql(
    text: str = typer.Argument(..., help="A SPARQL 1.1 query (SELECT, ASK, CONSTRUCT, DESCRIBE); '-' reads stdin."),
    fmt: str = typer.Option("csv", "--format", "-f", help="Results: json, xml, csv, tsv; graphs: turtle, ntriples."),
    data: Path = DataOpt,
) -> None:
    """Run an ad-hoc SPARQL query against the store (read-only; default graph = union)."""
    from .sparql_protocol import ProtocolError, SparqlRequest, execute

    media = {"json": "application/sparql-results+json", "xml": "application/sparql-results+xml",
             "csv": "text/csv", "tsv": "text/tab-separated-values", "turtle": "text/turtle",
             "ntriples": "application/n-triples"}.get(fmt)
    if media is None:
        raise _fail(f"unknown --format {fmt!r}")
    query_text = sys.stdin.read() if text == "-" else text
    store = _open_store(data, read_only=True)
    try:
        body, _ = execute(store, SparqlRequest(query_text, [], []), media)
    except ProtocolError as exc:
        if exc.status == 406:  # asked a table of a graph query or vice versa: use the default
            body, _ = execute(store, SparqlRequest(query_text, [], []), None)
        else:
            raise _fail(exc.message)
    sys.stdout.buffer.write(body)


@app.command()
def export(
    fmt: str = typer.Option("trig", "--format", "-f", help=f"One of: {', '.join(EXPORT_FORMATS)}."),
    graph: Optional[str] = typer.Option(None, "--graph", "-g", help="Only this named graph (an event graph IRI)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: stdout)."),
    data: Path = DataOpt,
) -> None:
    """Export the whole graph (TriG/N-Quads keep every event's named graph) or one named graph."""
    store = _open_store(data, read_only=True)
    try:  # written as it is serialised: a large store's export does not fit in memory
        export_graph(store, fmt, graph, output=output or sys.stdout.buffer)
    except ExportError as exc:
        raise _fail(str(exc))
    except OSError as exc:
        raise _fail(f"could not write the export: {exc}")
    if output:
        err.print(f"wrote {output.stat().st_size} bytes to {output}")
    else:
        sys.stdout.buffer.flush()


@app.command()
def stats(data: Path = DataOpt) -> None:
    """Counts of quads, distinct triples and event graphs in the store."""
    store = _open_store(data, read_only=True)
    sys.stdout.write(json.dumps(store.stats()) + "\n")


@app.command()
def report(
    node: str = typer.Argument(..., help="IRI of a prediction or model version."),
    fmt: str = typer.Option("markdown", "--format", "-f", help="markdown or html."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: stdout)."),
    data: Path = DataOpt,
) -> None:
    """Write the provenance report of a prediction or model version (Markdown or HTML) for an auditor."""
    from .report import prediction_report

    store = _open_store(data, read_only=True)
    try:
        text = prediction_report(store, node, fmt)
    except (QueryParameterError, ValueError) as exc:
        raise _fail(str(exc))
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


@app.command("erasure-request")
def erasure_request(
    subject: str = typer.Argument(..., help="Identifier of the data subject (as emitters send it)."),
    requested_by: str = typer.Option(..., "--requested-by", help="Who made the request (recorded as a prov:Agent)."),
    article: str = typer.Option("A17", "--article", help="A17 (erasure) or A7-3 (consent withdrawal)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole answer as JSON."),
    data: Path = DataOpt,
    base_iri: str = BaseOpt,
    spec: Optional[Path] = SpecOpt,
) -> None:
    """Answer a GDPR erasure / consent-withdrawal request and record it as provenance.

    Lists every dataset version, model version, deployment and prediction the
    subject's data reached, flags models trained after consent was withdrawn,
    and stores the request itself as an OpenLineage run in the graph."""
    from .erasure import handle_erasure_request

    store = _open_store(data)
    ingestor = _ingestor(store, spec, base_iri, "flag")
    try:
        outcome = handle_erasure_request(ingestor, subject, requested_by, article)
    except (QueryParameterError, ValueError) as exc:
        raise _fail(str(exc))
    store.flush()
    if as_json:
        sys.stdout.write(json.dumps(outcome.as_dict(), indent=2) + "\n")
        return
    table = Table("kind", "node", "label", "reached by", title=f"erasure impact of {subject}")
    for depth, _frm, rel, node, kind, label, _time in outcome.impact.rows:
        table.add_row(kind, node, label or "", rel.rsplit("#", 1)[-1])
    out.print(table)
    for row in outcome.violations.rows:
        out.print(f"[red]violation[/red]: {row[3] or row[2]} was trained at {row[5]} on data of {row[1] or row[0]}, "
                  f"whose consent was withdrawn at {row[6]} (held in {row[8] or row[7]})")
    out.print(f"findings: {json.dumps(outcome.findings)}; request recorded as run {outcome.event['run']['runId']} "
              f"({outcome.recorded.status})")


@app.command("erasure-execute")
def erasure_execute(
    subject: str = typer.Argument(..., help="Identifier of the data subject (as emitters send it)."),
    requested_by: str = typer.Option(..., "--requested-by", help="Who made the request (recorded as a prov:Agent)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole answer as JSON."),
    data: Path = DataOpt,
    base_iri: str = BaseOpt,
    spec: Optional[Path] = SpecOpt,
) -> None:
    """Execute a GDPR Art. 17 erasure: destroy the subject's key material, record it as provenance.

    Afterwards nothing links the subject's pseudonym to them and their sealed
    feature snapshots cannot be opened; the log and the store are untouched,
    so `provkg verify` still passes (docs/record.md). Exit 1 when the store
    holds no key material for the subject (never seen, or already erased)."""
    from .erasure import execute_erasure
    from .subjects import UnknownSubject

    store = _open_store(data)
    ingestor = _ingestor(store, spec, base_iri, "flag")
    try:
        outcome = execute_erasure(ingestor, subject, requested_by)
    except UnknownSubject as exc:
        raise _fail(str(exc), 1)
    store.flush()
    if as_json:
        sys.stdout.write(json.dumps(outcome.as_dict(), indent=2) + "\n")
        return
    assert outcome.erased is not None
    out.print(f"erased: pseudonym {outcome.erased.pseudonym} is no longer linked to the subject and its snapshot "
              f"key is destroyed ({outcome.erased.erased_at}); findings {json.dumps(outcome.findings)}; recorded as "
              f"run {outcome.event['run']['runId']} ({outcome.recorded.status})")


subjects_app = typer.Typer(help="Data subjects: pseudonyms and sealed feature snapshots (auditors; docs/record.md).",
                           no_args_is_help=True)
app.add_typer(subjects_app, name="subjects")


@subjects_app.command("resolve")
def subjects_resolve(
    subject: str = typer.Argument(..., help="Identifier of the data subject (as emitters send it)."),
    data: Path = DataOpt,
    base_iri: str = BaseOpt,
) -> None:
    """Print the pseudonymous IRI under which the store holds a data subject (exit 1: unknown or erased)."""
    try:
        vault = SubjectVault(data / "subjects", read_only=True)
    except (FileNotFoundError, sqlite3.Error) as exc:
        raise _fail(str(exc), 1)
    pseudonym = vault.find(subject)
    if pseudonym is None:
        raise _fail("no such data subject in this store (never seen, or erased)", 1)
    sys.stdout.write(_minter(base_iri).mint("subject", pseudonym).value + "\n")


@subjects_app.command("snapshot")
def subjects_snapshot(
    prediction: str = typer.Argument(..., help="IRI of the prediction."),
    data: Path = DataOpt,
) -> None:
    """Print a prediction's feature snapshot, unsealed with its subject's key, as JSON.

    Exit 1 when the node has no sealed snapshot, or when it cannot be opened
    (for example because the subject was erased)."""
    from .snapshots import NoSnapshot, open_snapshot
    from .subjects import SnapshotUnavailable

    store = _open_store(data, read_only=True)
    try:
        answer = open_snapshot(store, SubjectVault(data / "subjects", read_only=True), prediction)
    except (NoSnapshot, SnapshotUnavailable, FileNotFoundError) as exc:
        raise _fail(str(exc), 1)
    sys.stdout.write(json.dumps(answer, indent=2) + "\n")


@app.command("validate")
def validate_cmd(
    paths: list[Path] = typer.Argument(None, help="RDF files (.ttl .nt .nq .trig .jsonld .rdf) and OpenLineage "
                                                  "event files (.json .jsonl); without any, the store (--data)."),
    data: Path = DataOpt,
    shapes_files: list[Path] = typer.Option([], "--shapes", help="Extra SHACL shapes (Turtle), added to provkg's."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, turtle (SHACL validation report), json or junit."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: stdout)."),
    fail_on_warning: bool = typer.Option(False, "--fail-on-warning", help="Exit 1 on Warnings too."),
    stage: str = typer.Option("all", "--stage", help="Shapes to run: ingest, store or all."),
    base_iri: str = BaseOpt,
    spec: Optional[Path] = SpecOpt,
) -> None:
    """Validate a store, RDF files or OpenLineage event files against provkg's SHACL shapes (a CI gate).

    Exit code 0 when it conforms, 1 when there are Violations (or Warnings with
    --fail-on-warning), 2 on error."""
    from .conformance import InputError, load_files, validate

    if fmt not in ("text", "turtle", "json", "junit"):
        raise _fail(f"--format must be text, turtle, json or junit, not {fmt!r}")
    if stage not in ("ingest", "store", "all"):
        raise _fail(f"--stage must be ingest, store or all, not {stage!r}")
    try:
        shapes = Shapes(extra=shapes_files)
    except (ShapesError, FileNotFoundError) as exc:
        raise _fail(str(exc))
    try:
        if paths:
            missing = [p for p in paths if not p.exists()]
            if missing:
                raise _fail(f"no such file: {missing[0]}")
            source = load_files(paths, _validator(spec), _minter(base_iri))
        else:
            source = _open_store(data, read_only=True).store
        outcome = validate(source, shapes, ("ingest", "store") if stage == "all" else (stage,))
    except (InputError, ShapesError) as exc:
        raise _fail(str(exc))
    text = {"text": outcome.to_text, "turtle": outcome.to_turtle, "junit": outcome.to_junit,
            "json": lambda: json.dumps(outcome.as_dict(), indent=2) + "\n"}[fmt]()
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(outcome.to_text().splitlines()[0])
    else:
        sys.stdout.write(text)
    if outcome.violations or (fail_on_warning and outcome.warnings):
        raise typer.Exit(1)


@app.command()
def completeness(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    data: Path = DataOpt,
) -> None:
    """Lineage completeness per model version: the share of its lineage that conforms to the SHACL shapes."""
    from .conformance import COMPLETENESS_TARGET, completeness as completeness_of, validate_lineage_store

    store = _open_store(data, read_only=True)
    rows = completeness_of(store, validate_lineage_store(store, Shapes()))
    if as_json:
        sys.stdout.write(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
        return
    table = Table("model version", "nodes", "conforming", "share", f"≥ {COMPLETENESS_TARGET:.0%}",
                  title="lineage completeness")
    for r in rows:
        table.add_row(r.label or r.model_version, str(r.nodes), str(r.conforming), f"{r.share:.1%}",
                      "yes" if r.share >= COMPLETENESS_TARGET else "NO")
    out.print(table)


quarantine_app = typer.Typer(help="Events kept aside because they broke a SHACL Violation.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("list")
def quarantine_list(data: Path = DataOpt) -> None:
    """List quarantined events."""
    entries = Quarantine(Path(data) / "quarantine").entries()
    sys.stdout.write(json.dumps([e.summary() for e in entries], indent=2) + "\n")


@quarantine_app.command("show")
def quarantine_show(entry_id: str = typer.Argument(..., help="The id `list` gives."), data: Path = DataOpt) -> None:
    """Show one quarantined event and the SHACL results that hold it."""
    try:
        entry = Quarantine(Path(data) / "quarantine").get(entry_id)
    except UnknownEntry:
        raise _fail(f"no quarantined event {entry_id}")
    sys.stdout.write(json.dumps({"id": entry.id, "receivedAt": entry.received_at, "results": entry.results,
                                 "event": entry.event}, indent=2) + "\n")


@quarantine_app.command("release")
def quarantine_release(
    entry_id: str = typer.Argument(..., help="The id `list` gives."),
    force: bool = typer.Option(False, "--force", help="Store it even if it still breaks a Violation (flagged)."),
    data: Path = DataOpt,
    base_iri: str = BaseOpt,
    spec: Optional[Path] = SpecOpt,
) -> None:
    """Release a quarantined event into the store once it conforms (or with --force, flagged)."""
    store = _open_store(data)
    ingestor = _ingestor(store, spec, base_iri, "quarantine")
    try:
        result = ingestor.release(entry_id, force=force)
    except UnknownEntry:
        raise _fail(f"no quarantined event {entry_id}")
    store.flush()
    sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
    if result.status == "quarantined":
        raise typer.Exit(1)


@app.command()
def rebuild(
    data: Path = DataOpt,
    base_iri: str = BaseOpt,
    spec: Optional[Path] = SpecOpt,
    shacl_mode: str = ShaclModeOpt,
) -> None:
    """Rebuild the store from the event log: replay every logged event into a fresh store.

    The old store is kept beside it as graph.replaced-<time> until you delete it."""
    from datetime import datetime as _dt

    graph_dir = data / "graph"
    if not (data / "log" / "events.jsonl").exists():
        raise _fail(f"no event log in {data / 'log'}")
    if graph_dir.exists():
        # fail now, not after the move, if a server holds the store
        _open_store(data).store.flush()
        aside = data / f"graph.replaced-{_dt.now().strftime('%Y%m%dT%H%M%S')}"
        graph_dir.rename(aside)
        err.print(f"old store moved to {aside}")
    store = _open_store(data)
    ingestor = _ingestor(store, spec, base_iri, shacl_mode)
    try:
        count = ingestor.catch_up()
    except ValueError as exc:
        raise _fail(str(exc))
    store.flush()
    _compact_after_bulk(store)
    stats = store.stats()
    out.print(f"rebuilt from {count} log entries: {stats['graphs']} event graphs, {stats['triples']} triples")


@app.command()
def verify(
    data: Path = DataOpt,
    public_key: Optional[Path] = typer.Option(None, "--public-key", help="Ed25519 public key (PEM) of the checkpoints."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    base_iri: str = BaseOpt,
) -> None:
    """Verify the record: the log's hash chain, its signed checkpoints, and that the store matches the log.

    Names every entry that was modified, removed or reordered. Exit 0 when
    intact, 1 when anything was found, 2 on error."""
    from .integrity import verify as verify_record

    if not (data / "log").exists():
        raise _fail(f"no event log in {data / 'log'}")
    try:
        report = verify_record(data, _minter(base_iri), public_key)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc))
    sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n" if as_json else report.to_text())
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def checkpoint(
    key: Path = typer.Option(..., "--key", help="Ed25519 private key (PEM), e.g. from `provkg signing-key`."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the checkpoint to this file."),
    data: Path = DataOpt,
) -> None:
    """Sign the event log's current head (Ed25519) and append the checkpoint to the log folder."""
    from .integrity import sign_checkpoint

    try:
        signed = sign_checkpoint(EventLog(data / "log", read_only=True), key)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc))
    text = json.dumps(signed, indent=2) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    sys.stdout.write(text)


@app.command("signing-key")
def signing_key(
    private: Path = typer.Argument(..., help="Where to write the private key (PEM, mode 0600)."),
    public: Path = typer.Argument(..., help="Where to write the public key (PEM)."),
) -> None:
    """Generate an Ed25519 key pair for signing checkpoints."""
    from .integrity import generate_signing_key

    if private.exists():
        raise _fail(f"{private} exists; not overwriting a key")
    generate_signing_key(private, public)
    err.print(f"wrote {private} and {public}")


@app.command("demo-events")
def demo_events_cmd(
    output: Path = typer.Argument(..., help="File to write the demo events to (.jsonl)."),
    days: int = typer.Option(2, "--days", help="How many daily pipeline runs to generate."),
) -> None:
    """Write the demo ML-platform OpenLineage events to a .jsonl file (for `provkg ingest` or any emitter test)."""
    from .demo import demo_events

    events = demo_events(days=days)
    with output.open("w", encoding="utf-8") as fh:
        for event in events:
            fh.write(json.dumps(event) + "\n")
    err.print(f"wrote {len(events)} events to {output}")


keys_app = typer.Typer(help="API keys of the HTTP service: roles emitter, reader, auditor, admin (see docs/security.md).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., "--role", "-r", help="emitter (post events only), reader (queries), auditor "
                                                       "(queries, exports, reports, quarantine), admin (everything)."),
    name: str = typer.Option(..., "--name", "-n", help="Who or what holds the key (shown in the audit log)."),
    data: Path = DataOpt,
) -> None:
    """Create an API key and print it once (provkg stores only its SHA-256).

    The first key turns authentication on for `provkg serve` on this data
    directory, at once if it is running."""
    from .auth import KeyError_, KeyStore

    try:
        key, token = KeyStore(data).create(role, name)
    except KeyError_ as exc:
        raise _fail(str(exc))
    except OSError as exc:
        raise _fail(f"cannot write the key file: {exc}")
    sys.stdout.write(token + "\n")
    err.print(f"created key {key.id} ({key.name}, role {key.role}); the key above is shown once: store it now. "
              "Clients send it as Authorization: Bearer <key>.")


@keys_app.command("list")
def keys_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    data: Path = DataOpt,
) -> None:
    """List the API keys: id, name, role, created, revoked (never the secrets)."""
    from .auth import KeyStore

    store = KeyStore(data)
    keys = store.keys()
    if store.problem:
        raise _fail(store.problem)
    if as_json:
        sys.stdout.write(json.dumps([k.public() for k in keys], indent=2) + "\n")
        return
    table = Table("id", "name", "role", "created", "revoked", title=f"API keys ({store.path})")
    for k in keys:
        table.add_row(k.id, k.name, k.role, k.created, k.revoked or "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="The key's id (8 hex digits, from `provkg keys list`)."),
    data: Path = DataOpt,
) -> None:
    """Revoke an API key; a running server refuses it at once (401)."""
    from .auth import KeyError_, KeyStore

    try:
        key = KeyStore(data).revoke(key_id)
    except KeyError_ as exc:
        raise _fail(str(exc))
    err.print(f"revoked key {key.id} ({key.name}, role {key.role}) at {key.revoked}")


@app.command("audit")
def audit_cmd(
    since: Optional[str] = typer.Option(None, "--since", help="Only entries at or after this ISO 8601 date(-time)."),
    key: Optional[str] = typer.Option(None, "--key", help="Only this key id (or 'anonymous')."),
    limit: int = typer.Option(100, "--limit", "-n", help="The newest N entries."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
    data: Path = DataOpt,
) -> None:
    """Show the audit log: who queried or exported what, when, and with what answer."""
    from .audit import AuditLog, parse_since

    try:
        cutoff = parse_since(since) if since else None
    except ValueError:
        raise _fail(f"--since must be an ISO 8601 date or date-time, got {since!r}")
    entries = AuditLog(data).search(cutoff, key, limit)
    if as_json:
        for entry in entries:
            sys.stdout.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return
    table = Table("time", "key", "role", "request", "status", "rows", "bytes", title=f"audit log ({len(entries)})")
    table.columns[0].no_wrap = True
    for e in entries:
        what = f"{e.get('method', '')} {e.get('path', '')}"
        if e.get("sparql"):
            what += " " + " ".join(str(e["sparql"]).split())[:80]
        elif e.get("params"):
            what += " " + " ".join(f"{k}={v}" for k, v in e["params"].items())[:80]
        who = e.get("key") or "-"
        if e.get("name"):
            who += f" ({e['name']})"
        table.add_row(str(e.get("time", "")), who, e.get("role") or "", what, str(e.get("status", "")),
                      "" if e.get("rows") is None else str(e["rows"]), str(e.get("bytes", "")))
    out.print(table)


def main() -> None:  # pragma: no cover - console entry
    app()


__all__ = ["app"]
