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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import rfc8785

from .iris import IriMinter
from .entailment import default_entailer
from .mapping import EventMapper
from .store import LineageStore
from .validation import EventValidator, Fault


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
    written) or ``"rejected"`` (``faults`` says why; nothing written).
    ``graph``: the event's named graph IRI (None when rejected).
    ``triples``: quads written (0 unless accepted). ``source``: where the event
    came from (file and position) when loaded from files.
    """

    status: str
    graph: str | None = None
    content_hash: str | None = None
    triples: int = 0
    faults: list[Fault] = field(default_factory=list)
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
        if self.source:
            out["source"] = self.source
        return out


def canonical_hash(event: Any) -> str:
    """``sha256:<hex>`` of the RFC 8785 (JCS) canonical form of the event.

    Raises ``rfc8785.CanonicalizationError`` for values outside I-JSON
    (integers beyond ±2^53, for example)."""
    return "sha256:" + hashlib.sha256(rfc8785.dumps(event)).hexdigest()


class Ingestor:
    """Validates, maps and stores OpenLineage events.

    Inputs: the store, the validator and the IRI minter (the base IRI).
    Thread-safe: the store serialises writes.
    """

    def __init__(self, store: LineageStore, validator: EventValidator, minter: IriMinter):
        self.store = store
        self.validator = validator
        self.mapper = EventMapper(minter, default_entailer())

    def ingest(self, event: Any, received_at: datetime | None = None, source: str | None = None) -> IngestResult:
        """Ingest one decoded event (OpenLineage 2-0-2 RunEvent, DatasetEvent or JobEvent)."""
        faults = self.validator.validate(event)
        if faults:
            return IngestResult("rejected", faults=faults, source=source)
        try:
            digest = canonical_hash(event)
        except rfc8785.CanonicalizationError as exc:
            return IngestResult("rejected", faults=[Fault("", f"not I-JSON (RFC 7493), cannot be canonicalised: {exc}")],
                                source=source)
        mapped = self.mapper.map(event, digest, received_at or datetime.now(timezone.utc))
        written = self.store.add_graph(mapped.graph, mapped.quads)
        return IngestResult("accepted" if written else "duplicate", mapped.graph.value, digest,
                            len(mapped.quads) if written else 0, source=source)

    def ingest_many(self, events: Iterable[tuple[Any, str | None]]) -> Iterator[IngestResult]:
        """Ingest (event, source) pairs one by one; a bad one does not stop the rest."""
        for event, source in events:
            yield self.ingest(event, source=source)


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
