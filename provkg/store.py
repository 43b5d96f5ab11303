"""The embedded on-disk RDF store (pyoxigraph / RocksDB) holding the lineage graph.

One data directory per deployment (``--data DIR``, default ``./provkg-data``);
the RDF store is its ``graph/`` folder, beside provkg's other folders
(``quarantine/``).
Every event is one named graph. The store's default graph is kept equal to the
RDF merge of all event graphs: each triple is written to its event graph and
to the default graph in the same transaction. So SPARQL queries see the union
as a *set* of triples (SPARQL 1.1 Query §13.1, RDF merge) — pyoxigraph's own
union-default-graph mode repeats a solution once per graph holding the triple,
which would make COUNTs and joins wrong.

Large writes (a chunk of a batch, a file load, a replay) go through Oxigraph's
bulk loader, which writes sorted files and adds them to the database in one
step instead of updating the indexes quad by quad (about 4x faster), but
without a transaction: a crash in the middle can leave some of the quads.
So before such a write the names of its graphs are written to
``<data>/graph.bulk-pending`` (fsync'ed), and the file is removed once the
write has returned. Opening a store with that file left behind removes those
graphs again; the events are in the log (always written first), so catch-up
(:meth:`provkg.ingest.Ingestor.catch_up`) writes them anew, and the triples
they share with the default graph are added again (adding a triple the graph
holds changes nothing).
Each bulk write leaves its own files; :meth:`LineageStore.optimize` compacts
them, once after a load (``provkg ingest``, ``rebuild``, start-up catch-up).

Concurrency: RocksDB allows one writer process per directory. A second process
that opens the directory for writing gets :class:`StoreLocked`; read-only
opens (``provkg query``, ``provkg export``) succeed alongside a running
``provkg serve`` and see the graph as it was when they opened it.
"""

from __future__ import annotations

import json
import os
import threading
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from pyoxigraph import DefaultGraph, NamedNode, Quad, RdfFormat, Store, serialize

from .vocab import A, PROVKG

DEFAULT_DATA_DIR = "provkg-data"


def merged_quads(quads: Iterable[Quad]) -> list[Quad]:
    """The triples of ``quads`` as quads of the default graph (where the store keeps the merge)."""
    # no graph argument means the default graph; passing DefaultGraph() costs
    # pyoxigraph a slow argument conversion (1.9 ms against 0.7 ms for ~368 quads)
    return [Quad(q.subject, q.predicate, q.object) for q in quads]


class StoreLocked(RuntimeError):
    """The store directory is open for writing in another process."""


# quads written between two flushes of the store's memtables (~250 MB of memory)
FLUSH_EVERY_QUADS = 250_000
# writes of at least this many quads use the bulk loader (fewer would leave many small files)
BULK_MIN_QUADS = 50_000


class LineageStore:
    """The lineage graph on disk.

    Input: the store directory (created if missing); ``read_only=True`` opens
    an existing store for reading only; writes of ``bulk_min_quads`` quads or
    more use the bulk loader. Raises :class:`StoreLocked` when
    another process holds the write lock, ``FileNotFoundError`` when a
    read-only open finds no store, and ``OSError`` for other storage errors.
    """

    def __init__(self, path: str | Path = DEFAULT_DATA_DIR, read_only: bool = False,
                 bulk_min_quads: int = BULK_MIN_QUADS):
        self.path = Path(path)
        self.read_only = read_only
        self.graph_dir = self.path / "graph"  # the RocksDB files; beside it live other provkg folders
        try:
            if read_only:
                if not (self.graph_dir / "CURRENT").exists():
                    raise FileNotFoundError(f"no provkg store at {self.path} (run `provkg ingest` or `provkg serve` first)")
                self.store = Store.read_only(str(self.graph_dir))
            else:
                self.graph_dir.mkdir(parents=True, exist_ok=True)
                self.store = Store(str(self.graph_dir))
        except OSError as exc:
            if "LOCK" in str(exc):
                raise StoreLocked(
                    f"the store at {self.path} is open in another process (a running `provkg serve`?). "
                    "Post events to its HTTP API, or stop it first."
                ) from exc
            raise
        # one writer at a time inside this process, so the duplicate check and
        # the insert of an event graph are atomic together
        self._write_lock = threading.Lock()
        # commits made through this object: readers holding a snapshot of the
        # store (the SPARQL worker processes) compare it to know they are stale
        self.generation = 0
        self._unflushed = 0
        self.bulk_min_quads = bulk_min_quads
        self.bulk_writes = 0  # writes through the bulk loader since this object opened the store
        self.pending_path = self.path / "graph.bulk-pending"
        # called with each write's default-graph quads once it is made (under the write lock, so in
        # commit order): what keeps provkg.step_index up to date; a listener must not raise
        self.listeners: list[Callable[[list[Quad]], None]] = []
        if not read_only:
            self._undo_torn_bulk_write()

    def _undo_torn_bulk_write(self) -> None:
        """Remove the graphs of a bulk write that a crash interrupted (see the module text)."""
        if not self.pending_path.exists():
            return
        try:
            names = json.loads(self.pending_path.read_text("utf-8"))
        except ValueError:  # torn while being written: the bulk write had not started
            names = []
        for name in names:
            self.store.remove_graph(NamedNode(name))
        self.store.flush()
        self.pending_path.unlink()

    def add_graph(self, graph: NamedNode, quads: Iterable[Quad]) -> bool:
        """Insert one event's named graph in a single transaction.

        Output: True if written, False if a graph of that name already exists
        (the same event was delivered before; nothing is changed).
        """
        return self.add_graphs([(graph, list(quads))])[0]

    def add_graphs(self, graphs: list[tuple[NamedNode, list[Quad]]],
                   merged: list[list[Quad] | None] | None = None) -> list[bool]:
        """Insert several events' named graphs, each also merged into the
        default graph: in one transaction, or, from ``bulk_min_quads`` quads
        on, with the bulk loader (see the module text). ``merged``: per graph,
        its triples already as default-graph quads, or None (made here).
        Once the write is made, each of :attr:`listeners` is called with its
        default-graph quads. Output: per graph, True if written, False if it
        already existed. Raises ``OSError`` on a storage error."""
        with self._write_lock:
            written = [not self.store.contains_named_graph(g) for g, _ in graphs]
            batch: list[Quad] = []
            triples: list[Quad] = []
            named: list[Quad] = []
            for i, ((_g, quads), new) in enumerate(zip(graphs, written)):
                if new:
                    ready = merged[i] if merged is not None else None
                    default = ready if ready is not None else merged_quads(quads)
                    batch += quads + default
                    named += quads
                    triples += default
            if not batch:
                return written
            if len(batch) >= self.bulk_min_quads:
                # the graph names come from the named quads only: the other half are their default-graph copies
                # (and a set of the names themselves is made at C speed, ~4x cheaper than reading each one's text)
                self._bulk_write(batch, {g.value for g in set(map(attrgetter("graph_name"), named))
                                         if isinstance(g, NamedNode)})
            else:
                self.store.extend(batch)
                self._written(len(batch))
            for listener in self.listeners:
                listener(triples)
            self.generation += 1
            return written

    def _bulk_write(self, quads: list[Quad], graph_names: set[str]) -> None:
        names = sorted(graph_names)
        tmp = self.pending_path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(names, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.pending_path)
        _sync_dir(self.path)  # the file's name must be on disk before the write starts
        self.store.bulk_extend(quads)
        self.pending_path.unlink()
        self.bulk_writes += 1

    def optimize(self) -> None:
        """Compact the store's files (pyoxigraph ``Store.optimize``, "useful to
        call after a batch upload"; a RocksDB compaction).

        Each bulk write adds its own sorted files, and a look-up reads every
        file whose key range it falls in. On the benchmark's stores made by
        ``provkg ingest`` (13,000 and 100,000 events), one compaction took
        12 s and 134 s and made every named query 10-35 % faster at p50
        (docs/benchmark.md). Compaction writes new files and switches to them
        atomically: a crash during it leaves the store as it was.

        Output: None. Raises ``OSError`` on a storage error."""
        self.store.optimize()


    def _written(self, quads: int) -> None:
        # RocksDB keeps written quads in memory (memtables, ~1 KB a quad over
        # Oxigraph's indexes) until they are flushed to disk: without a flush
        # now and then a long ingest grows the process by gigabytes
        self._unflushed += quads
        if self._unflushed >= FLUSH_EVERY_QUADS:
            self.store.flush()
            self._unflushed = 0

    def has_graph(self, graph: NamedNode) -> bool:
        return self.store.contains_named_graph(graph)

    def query(self, sparql: str, **kwargs):
        """Run a SPARQL 1.1 query; the default graph is the union (merge) of all
        event graphs unless ``default_graph`` is given. Raises ``SyntaxError``
        on a bad query."""
        return self.store.query(sparql, **kwargs)

    def event_graphs(self) -> list[NamedNode]:
        """Names of the event graphs (those typed provkg:LineageEvent)."""
        return [q.subject for q in self.store.quads_for_pattern(None, A, PROVKG.LineageEvent, DefaultGraph())
                if isinstance(q.subject, NamedNode)]

    def event_count(self) -> int:
        """How many event graphs the store holds (typed provkg:LineageEvent; provkg
        names each by an IRI), counted inside the engine without decoding a
        term: 0.03 s at 100,000 events, against ~1 s for ``len(event_graphs())``."""
        found = self.store.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ ?g a <{PROVKG.LineageEvent.value}> }}")
        return int(next(iter(found))["n"].value)

    def stats(self) -> dict[str, int]:
        """Counts: ``quads`` (in named graphs), ``triples`` (distinct, the default graph),
        ``graphs`` (event graphs), ``validationReports`` (SHACL report graphs)."""
        named = sum(1 for _ in self.store.named_graphs())
        events = self.event_count()
        triples = int(next(iter(self.query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")))["n"].value)
        return {"quads": len(self.store) - triples, "triples": triples, "graphs": events,
                "validationReports": named - events}

    def dump(self, fmt: RdfFormat, graph: NamedNode | None = None, prefixes: dict[str, str] | None = None,
             output: "Path | BinaryIO | None" = None) -> bytes | None:
        """Serialise one graph, or the event graphs (dataset formats: TriG,
        N-Quads; the derived default graph is left out), or the union of all
        graphs (triple formats: Turtle, N-Triples, JSON-LD, RDF/XML).
        Output: the bytes, or None when written to ``output`` (a path or a
        binary file object) as they are made. Raises ``OSError``."""
        # pyoxigraph counts JSON-LD as a dataset format; provkg exports it as one graph
        keeps_graphs = fmt in (RdfFormat.TRIG, RdfFormat.N_QUADS)
        if graph is not None:
            if keeps_graphs:  # keep the graph's name on its quads
                return serialize(self.store.quads_for_pattern(None, None, None, graph), output, format=fmt,
                                 prefixes=prefixes)
            return self.store.dump(output, format=fmt, from_graph=graph, prefixes=prefixes)
        if keeps_graphs:
            named = (q for q in self.store.quads_for_pattern(None, None, None, None)
                     if not isinstance(q.graph_name, DefaultGraph))
            return serialize(named, output, format=fmt, prefixes=prefixes)
        return self.store.dump(output, format=fmt, from_graph=DefaultGraph(), prefixes=prefixes)

    def flush(self) -> None:
        if not self.read_only:
            self.store.flush()

    def is_empty(self) -> bool:
        return next(iter(self.store), None) is None  # len() would count every quad


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["LineageStore", "StoreLocked", "DEFAULT_DATA_DIR", "DefaultGraph", "merged_quads"]
