"""The ingestion pipeline: JSON bytes -> validated OpenLineage event -> PROV-O
named graph in the store.

One event at a time: decode (RFC 8259 JSON, no NaN/Infinity), validate
(:mod:`provkg.validation`), hash the RFC 8785 canonical form, map
(:mod:`provkg.mapping`), write the event's graph in one transaction. A rejected
event writes nothing. The same event delivered again is recognised by its
content hash and not written twice.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import rfc8785
from pyoxigraph import NamedNode, Quad, Store

from .iris import IriMinter
from .entailment import default_entailer
from .mapping import EventMapper
from .eventlog import EventLog, LogEntry
from .pseudonymise import pseudonymise
from .quarantine import Quarantine
from .shacl import EventShapesValidator, ValidationOutcome
from .store import LineageStore, merged_quads
from .subjects import SubjectVault
from .validation import EventValidator, Fault
from .vocab import PROVKG


class MalformedJSON(ValueError):
    """The request body or file is not valid JSON; ``args[0]`` says where."""


def decode_json(data: bytes | str) -> Any:
    """Decode JSON text (UTF-8 bytes or str); raises :class:`MalformedJSON`
    with line and column of the fault. NaN and Infinity are refused (not JSON)."""

    def refuse(name: str) -> Any:
        raise MalformedJSON(f"{name} is not a JSON number")

    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(text, parse_constant=refuse)
    except UnicodeDecodeError as exc:
        raise MalformedJSON(f"body is not UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise MalformedJSON(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise MalformedJSON("JSON nested too deeply") from exc


@dataclass
class IngestResult:
    """What happened to one event.

    ``status``: ``"accepted"`` (written), ``"duplicate"`` (already held; nothing
    written), ``"rejected"`` (``faults`` says why; nothing written) or
    ``"quarantined"`` (kept aside: it broke a SHACL Violation). ``shacl``: the
    per-event SHACL outcome when SHACL ran.
    ``graph``: the event's named graph IRI (None when rejected).
    ``triples``: quads written (0 unless accepted). ``source``: where the event
    came from (file and position) when loaded from files.
    """

    status: str
    graph: str | None = None
    content_hash: str | None = None
    triples: int = 0
    faults: list[Fault] = field(default_factory=list)
    shacl: ValidationOutcome | None = None
    source: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "rejected"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.graph:
            out["graph"] = self.graph
            out["contentHash"] = self.content_hash
            out["triples"] = self.triples
        if self.faults:
            out["errors"] = [f.as_dict() for f in self.faults]
        if self.shacl is not None and self.shacl.results:
            out["validation"] = self.shacl.as_dict()
        if self.status == "quarantined" and self.content_hash:
            out["quarantineId"] = self.content_hash.split(":", 1)[-1]
        if self.source:
            out["source"] = self.source
        return out


@dataclass
class _Prepared:
    """An event ready to commit: its graph and content hash, the quads to
    write (with its SHACL report), the event's own quads, its log text,
    receipt time, source, the pointers pseudonymised, the SHACL outcome."""

    graph: NamedNode
    digest: str
    quads: list[Quad]
    event_quads: list[Quad]
    merged: list[Quad]  # event_quads as default-graph quads (made once: SHACL, the batch, the store use them)
    text: str
    received_at: str
    source: str | None
    replaced: list[str]
    shacl: ValidationOutcome | None
    future: "Future[ValidationOutcome] | None" = None
    finished: bool = False

    def finish(self) -> None:
        """Take the SHACL outcome (waiting for it) and add its validation
        report to the quads, once: in ``<graph>/shacl-report``, linked by
        ``provkg:validationReport``."""
        if self.finished:
            return
        if self.future is not None:
            self.shacl, self.future = self.future.result(), None
        if self.shacl is not None and self.shacl.results:
            report = NamedNode(self.graph.value + "/shacl-report")
            extra = (self.shacl.report_quads(report, report)
                     + [Quad(self.graph, PROVKG.validationReport, report, report)])
            self.quads = self.quads + extra
            self.merged = self.merged + merged_quads(extra)
        self.finished = True


@dataclass
class _Queued:
    """One caller's events waiting for the group commit, and their results once committed."""

    prepared: list[_Prepared]
    log: bool
    results: list[IngestResult] | None = None


def canonical_hash(event: Any) -> str:
    """``sha256:<hex>`` of the RFC 8785 (JCS) canonical form of the event.

    Raises ``rfc8785.CanonicalizationError`` for values outside I-JSON
    (integers beyond ±2^53, for example)."""
    return _content_hash(rfc8785.dumps(event))


def _content_hash(canonical: bytes) -> str:
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


SHACL_MODES = ("off", "flag", "reject", "quarantine")


class Ingestor:
    """Validates, maps, checks and stores OpenLineage events.

    Inputs: the store, the OpenLineage validator, the IRI minter (the base IRI),
    and optionally the per-event SHACL validator with what to do with an event
    that breaks a Violation (``shacl_mode``): ``flag`` stores it with its SHACL
    validation report, ``reject`` refuses it, ``quarantine`` keeps it aside in
    ``quarantine``; ``off`` skips SHACL. Whatever the mode, an event with
    results (Warnings included) that is stored gets its report stored beside it
    in the named graph ``<event graph>/shacl-report``. With a subject key
    store (``vault``) personal data is pseudonymised and snapshots sealed
    before an event is hashed, logged, quarantined or stored
    (:mod:`provkg.pseudonymise`). Thread-safe: the store serialises writes.
    """

    def __init__(self, store: LineageStore, validator: EventValidator, minter: IriMinter,
                 shapes: EventShapesValidator | None = None, shacl_mode: str = "off",
                 quarantine: Quarantine | None = None, log: EventLog | None = None,
                 vault: SubjectVault | None = None):
        if shacl_mode not in SHACL_MODES:
            raise ValueError(f"shacl mode must be one of {', '.join(SHACL_MODES)}, not {shacl_mode!r}")
        if shacl_mode != "off" and shapes is None:
            raise ValueError(f"shacl mode {shacl_mode!r} needs the shapes")
        if shacl_mode == "quarantine" and quarantine is None:
            raise ValueError("shacl mode 'quarantine' needs a quarantine folder")
        self.store = store
        self.validator = validator
        self.mapper = EventMapper(minter, default_entailer())
        self.shapes = shapes
        self.shacl_mode = shacl_mode
        self.quarantine = quarantine
        self.log = log
        self.vault = vault
        # the log append and the store write of one event happen together, in
        # log order, so the store is always a prefix-projection of the log
        self._commit_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Queued] = []

    def ingest(self, event: Any, received_at: datetime | None = None, source: str | None = None,
               shacl_mode: str | None = None, raw: str | None = None, pseudonymous: bool = False,
               _replay: bool = False) -> IngestResult:
        """Ingest one decoded event (OpenLineage 2-0-2 RunEvent, DatasetEvent or JobEvent).

        ``raw``: the event's JSON text as received (logged as is unless it is
        pseudonymised; default: its RFC 8785 canonical form). ``shacl_mode``
        overrides the ingestor's mode for this event. ``pseudonymous``: the
        event is already in the pseudonymous form (from the log, the
        quarantine, or provkg itself). An accepted event is in the log
        (fsync'ed) before this returns."""
        prepared = self._prepare(event, received_at or datetime.now(timezone.utc), source,
                                 shacl_mode or self.shacl_mode, raw, pseudonymous or _replay, None, set())
        if isinstance(prepared, IngestResult):
            return prepared
        return self._commit([prepared], log=not _replay)[0]

    def ingest_batch(self, events: Iterable[tuple[Any, str | None]], received_at: datetime | None = None,
                     chunk: int = 500, _replay: bool = False) -> Iterator[IngestResult]:
        """Ingest (event, source) pairs, in order, committing ``chunk`` events at a time.

        Each event is validated, mapped and checked exactly as by
        :meth:`ingest` — SHACL sees the events before it in the chunk as if
        they were stored — but a chunk's accepted events are logged with one
        fsync and written to the store in one transaction. Results come in
        input order once their chunk is durable; a bad event does not stop
        the rest."""
        waiting: list[IngestResult | _Prepared] = []
        pending = Store()  # the chunk's accepted triples, as the store's default graph will hold them
        validating = self.shapes is not None and self.shacl_mode != "off"  # only SHACL reads ``pending``
        graphs: set[NamedNode] = set()
        for event, source in events:
            at = received_at or datetime.now(timezone.utc)
            if isinstance(event, LogEntry):  # a replay: logged time and source, already pseudonymous
                entry = event
                at, source, event = datetime.fromisoformat(entry.received_at), entry.source, entry.event()
            prepared = self._prepare(event, at, source, "flag" if _replay and self.shacl_mode != "off"
                                     else self.shacl_mode, None, _replay, pending, graphs)
            waiting.append(prepared)
            if isinstance(prepared, _Prepared):
                graphs.add(prepared.graph)
                if validating:
                    pending.extend(prepared.merged)
            if len(graphs) >= chunk:
                yield from self._flush(waiting, not _replay)
                waiting, pending, graphs = [], Store(), set()
        yield from self._flush(waiting, not _replay)

    def _flush(self, waiting: list["IngestResult | _Prepared"], log: bool) -> Iterator[IngestResult]:
        committed = iter(self._commit([w for w in waiting if isinstance(w, _Prepared)], log))
        for w in waiting:
            yield next(committed) if isinstance(w, _Prepared) else w

    def _prepare(self, event: Any, received_at: datetime, source: str | None, mode: str, raw: str | None,
                 pseudonymous: bool, pending: Store | None, batch: set[NamedNode]) -> "IngestResult | _Prepared":
        """Everything before the commit: validate, pseudonymise, hash, map, SHACL.
        Output: the final result (rejected, duplicate, quarantined) or what to commit."""
        faults = self.validator.validate(event)
        if faults:
            return IngestResult("rejected", faults=faults, source=source)
        replaced: list[str] = []
        if self.vault is not None and not pseudonymous:
            done = pseudonymise(event, self.vault)
            if done.replaced:
                event, raw, replaced = done.event, None, done.replaced
        try:
            canonical = rfc8785.dumps(event)
        except rfc8785.CanonicalizationError as exc:
            return IngestResult("rejected", faults=[Fault("", f"not I-JSON (RFC 7493), cannot be canonicalised: {exc}")],
                                source=source)
        digest = _content_hash(canonical)
        graph = self.mapper.iri.event_graph(digest)
        if graph in batch or self.store.has_graph(graph):
            return IngestResult("duplicate", graph.value, digest, source=source)
        mapped = self.mapper.map(event, digest, received_at)
        merged = merged_quads(mapped.quads)
        outcome, future = None, None
        if mode != "off" and self.shapes:
            future = self.shapes.submit(mapped.quads, self.store.store, pending, merged)
            # reject and quarantine decide now; one event at a time waits now; a
            # flagged batch collects its outcomes at commit, so workers run meanwhile
            if mode in ("reject", "quarantine") or pending is None:
                outcome, future = future.result(), None
        if outcome is not None and not outcome.conforms and mode in ("reject", "quarantine"):
            if mode == "reject":
                return IngestResult("rejected", faults=[Fault("", f"SHACL: {r.focus}: {r.message}")
                                                        for r in outcome.violations],
                                    shacl=outcome, source=source)
            assert self.quarantine is not None
            self.quarantine.put(event, digest, received_at.isoformat(), [r.as_dict() for r in outcome.results])
            return IngestResult("quarantined", graph.value, digest, shacl=outcome, source=source)
        text = raw if raw is not None else canonical.decode("utf-8")
        prepared = _Prepared(graph, digest, mapped.quads, mapped.quads, merged, text, received_at.isoformat(), source,
                             replaced, outcome, future)
        if future is None:
            prepared.finish()
        return prepared

    def _commit(self, prepared: list["_Prepared"], log: bool) -> list[IngestResult]:
        """Log and store the prepared events, in order, durable on return.

        Group commit: concurrent callers queue their events; whoever holds
        the commit lock writes everything queued with one fsync and one
        store transaction, so N clients posting at once share the cost.
        An event already stored (or earlier in the group) is a duplicate."""
        if not prepared:
            return []
        for p in prepared:  # SHACL outcomes still running in the workers
            p.finish()
        mine = _Queued(prepared, log)
        with self._queue_lock:
            self._queue.append(mine)
        with self._commit_lock:
            if mine.results is None:  # nobody committed it for us meanwhile: commit the whole queue
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._commit_now(group)
        assert mine.results is not None
        return mine.results

    def _commit_now(self, group: list["_Queued"]) -> None:
        seen: set[NamedNode] = set()
        fresh: list[tuple[_Queued, _Prepared]] = []
        for queued in group:
            for p in queued.prepared:
                if p.graph not in seen and not self.store.has_graph(p.graph):
                    seen.add(p.graph)
                    fresh.append((queued, p))
        logged = [p for q, p in fresh if q.log]
        if self.log is not None and logged:
            self.log.append_many([(p.text, p.digest, p.received_at, p.source or "api", p.replaced) for p in logged])
        self.store.add_graphs([(p.graph, p.quads) for _, p in fresh], [p.merged for _, p in fresh])
        written = {id(p) for _, p in fresh}
        for queued in group:
            queued.results = [
                IngestResult("accepted", p.graph.value, p.digest, len(p.event_quads), shacl=p.shacl, source=p.source)
                if id(p) in written else IngestResult("duplicate", p.graph.value, p.digest, source=p.source)
                for p in queued.prepared]

    def catch_up(self) -> int:
        """Apply the log entries the store lacks (after a crash between the log
        append and the store write, or into an empty store by ``provkg
        rebuild``), in log order, a chunk per transaction; returns how many.
        Raises ``ValueError`` when a logged event no longer passes validation.

        What the store lacks is normally the log's tail (:meth:`_commit_now`
        writes both in log order; an interrupted bulk write is undone when the
        store opens), so the log is read from its end, and only while its
        entries are missing: a start that costs the same at any size of log.
        If the store's event graphs and that tail do not add up to the log's
        entries (a store write that failed after its log append, for
        example), every entry is looked up instead; a store with as many event
        graphs as the log has entries lacks none. Entries are streamed."""
        if self.log is None:
            return 0
        stored = self.store.event_count()
        if stored == self.log.head_seq:
            return 0
        start = 0  # where to look from: the whole log unless only its tail is missing
        if stored:
            tail_start, tail = None, 0
            for offset, entry in self.log.entries_backwards():
                if self.store.has_graph(self.mapper.iri.event_graph(entry.content_hash)):
                    break
                tail_start, tail = offset, tail + 1
            if tail_start is not None and stored + tail == self.log.head_seq:
                start = tail_start
        replayed: deque[int] = deque()  # seq of each entry handed over, not yet answered

        def entries(log: EventLog) -> Iterator[tuple[LogEntry, None]]:
            for entry in log.entries(start):
                if not self.store.has_graph(self.mapper.iri.event_graph(entry.content_hash)):
                    replayed.append(entry.seq)
                    yield entry, None

        count = 0
        for result in self.ingest_batch(entries(self.log), _replay=True):
            seq = replayed.popleft()
            count += 1
            if result.status == "rejected":  # only if the shapes or schemas changed since
                raise ValueError(f"log entry seq {seq} no longer passes validation: "
                                 + "; ".join(f.message for f in result.faults))
        return count

    def release(self, entry_id: str, force: bool = False) -> IngestResult:
        """Move a quarantined event into the store once it conforms (after a fix
        to the shapes or to the facts it needs), or, with ``force``, as it is,
        flagged with its report. It stays quarantined if it still breaks a
        Violation and ``force`` is False. Raises ``UnknownEntry``."""
        if self.quarantine is None:
            raise ValueError("this ingestor has no quarantine")
        entry = self.quarantine.get(entry_id)
        result = self.ingest(entry.event, received_at=datetime.fromisoformat(entry.received_at),
                             shacl_mode="flag" if force else "quarantine", pseudonymous=True)
        if result.status in ("accepted", "duplicate"):
            self.quarantine.remove(entry_id)
        return result


def event_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (recursively) into ``.json`` / ``.jsonl`` files, sorted.
    Raises ``FileNotFoundError`` for a path that does not exist."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix in (".json", ".jsonl") and f.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return out


def read_events(path: Path) -> Iterator[tuple[Any, str, MalformedJSON | None]]:
    """Events in one file: ``.jsonl`` one per line; ``.json`` one event or an array.

    Yields (event or None, source label ``file[:line|#index]``, error or None);
    a malformed line or file yields its error and reading goes on.
    """
    if path.suffix == ".jsonl":
        with path.open("rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    yield decode_json(line), f"{path}:{lineno}", None
                except MalformedJSON as exc:
                    yield None, f"{path}:{lineno}", exc
        return
    try:
        doc = decode_json(path.read_bytes())
    except MalformedJSON as exc:
        yield None, str(path), exc
        return
    if isinstance(doc, list):
        for i, event in enumerate(doc):
            yield event, f"{path}#{i}", None
    else:
        yield doc, str(path), None
