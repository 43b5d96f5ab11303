"""The edges of the impact walks, kept in memory and up to date with every write.

forward-impact and erasure-impact are ``@step`` queries: provkg walks a
node's whole downstream one SPARQL step at a time, and every edge costs the
store several index look-ups (~8 µs each inside the engine, docs/benchmark.md).
A source's first page took 0.4 s on a 10,000-event store and 1.7 s at
100,000, growing with its downstream. The server therefore keeps each such
query's edges in memory: read from the store once when it starts
(:meth:`StepIndex.build`, in the background; until it is ready the walk
answers), then updated from the triples of every write
(:attr:`provkg.store.LineageStore.listeners`), and walked in Python
(:func:`provkg.named_queries.breadth_first`, the walk's own code).

What is indexed is read from the query file, not written again here. A step
query qualifies when its algebra (rdflib's SPARQL 1.1 parser) has the form
both impact queries have:

- a UNION of branches, each one triple pattern between ``?from`` and ``?to``
  with a constant predicate, and ``BIND(<relation> AS ?relation)``;
- ``FILTER NOT EXISTS { ?to a <C> }``: nodes of class C reach nothing;
- ``OPTIONAL { ?to <label> ?label }``, ``OPTIONAL { ?to <time>|... ?time }``
  and ``OPTIONAL { ?to a ?type }`` (the node's kind is read from its types).

Any other query is walked as before. The answers are the walk's (tests
compare both, row for row, on real stores); one difference is allowed by
SPARQL: where a node has several labels (or times) the walk shows any one of
them (``SAMPLE``, SPARQL 1.1 §18.5.1.8) and the index the least.

Memory: an entry per node that is an edge's end (its IRI, kind, label and
time; quality measurements get none) and 8 bytes per edge per query (an
``array``, kept in order for a node with more than 16, so that a duplicate
is found by bisection). A large store is scanned by a child process, whose
reads of the whole store then do not stay in the server. At 100,000
benchmark events: 166k nodes, 891k edges, 136 MB (docs/benchmark.md).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import time
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from pyoxigraph import DefaultGraph, Literal, NamedNode, Quad
from rdflib.paths import AlternativePath
from rdflib.plugins.sparql import prepareQuery
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.term import URIRef, Variable

from .named_queries import _KINDS, Edge, NamedQuery, _kept, _plain, breadth_first
from .store import LineageStore
from .vocab import A

log = logging.getLogger(__name__)

_FROM, _TO, _RELATION = Variable("from"), Variable("to"), Variable("relation")


@dataclass(frozen=True)
class StepForm:
    """What a step query of the indexed form reads (see the module text)."""

    branches: tuple[tuple[str, bool, str], ...]  # (predicate, True if ?to is its subject, relation)
    excluded: str  # nodes of this class reach nothing
    label: str
    times: tuple[str, ...]

    def node_facts(self) -> tuple[str, str, tuple[str, ...]]:
        return self.excluded, self.label, self.times


def _nodes(value: Any) -> Iterable[CompValue]:
    """Every algebra node under ``value`` (itself included)."""
    if isinstance(value, CompValue):
        yield value
        for child in value.values():
            yield from _nodes(child)
    elif isinstance(value, (list, tuple)):
        for child in value:
            yield from _nodes(child)


def _union_leaves(node: CompValue) -> list[CompValue]:
    if node.name == "Union":
        return _union_leaves(node["p1"]) + _union_leaves(node["p2"])
    return [node]


def step_form(text: str) -> StepForm | None:
    """The indexed form of a ``@step`` query's text, or None when it has another form.

    Input: SPARQL 1.1 query text (``# @bind`` lines are comments). Output: a
    :class:`StepForm`. Raises what rdflib raises on text it cannot parse."""
    nodes = list(_nodes(prepareQuery(text).algebra))
    unions = [n for n in nodes if n.name == "Union"]
    if not unions:
        return None
    branches = []
    for leaf in _union_leaves(unions[0]):  # the first Union met is the outermost
        bgp = leaf.get("p") if leaf.name == "Extend" else None
        if (bgp is None or bgp.name != "BGP" or len(bgp["triples"]) != 1 or leaf["var"] != _RELATION
                or not isinstance(leaf["expr"], URIRef)):
            return None
        s, p, o = bgp["triples"][0]
        if not isinstance(p, URIRef) or {s, o} != {_FROM, _TO}:
            return None
        branches.append((str(p), s == _TO, str(leaf["expr"])))
    if len(unions) != len(branches) - 1 or len({r for _, _, r in branches}) != len(branches):
        return None  # a nested UNION elsewhere, or two branches of one relation (the walk groups them)
    optional = {}
    for join in (n for n in nodes if n.name == "LeftJoin"):
        bgp = join["p2"]
        if bgp.name != "BGP" or len(bgp["triples"]) != 1 or bgp["triples"][0][0] != _TO:
            return None
        _, p, o = bgp["triples"][0]
        optional[o] = p
    filters = [n for n in nodes if n.name == "Filter"]
    excluded = None
    if len(filters) == 1 and filters[0]["expr"].name == "Builtin_NOTEXISTS":
        inner = [t for n in _nodes(filters[0]["expr"]["graph"]) if n.name == "TriplesBlock" for t in n["triples"]]
        if len(inner) == 1 and inner[0][0] == _TO and str(inner[0][1]) == A.value and isinstance(inner[0][2], URIRef):
            excluded = str(inner[0][2])
    label, times, types = optional.get(Variable("label")), optional.get(Variable("time")), optional.get(Variable("type"))
    # the time: one predicate, or alternatives (a|b)
    time_predicates = [times] if isinstance(times, URIRef) else times.args if isinstance(times, AlternativePath) else []
    if (excluded is None or set(optional) != {Variable("label"), Variable("time"), Variable("type")}
            or not isinstance(label, URIRef) or not time_predicates
            or not all(isinstance(t, URIRef) for t in time_predicates) or str(types) != A.value
            or len([n for n in nodes if n.name == "BGP"]) != len(branches) + 3):
        return None
    return StepForm(tuple(branches), excluded, str(label), tuple(dict.fromkeys(str(t) for t in time_predicates)))


def _key(term: Any) -> str:
    """A node's key in the index: an IRI as itself, any other term in N-Triples form."""
    return term.value if isinstance(term, NamedNode) else str(term)


_KIND_RANK = {}
for _rank, (_iri, _name) in enumerate(_KINDS):
    _KIND_RANK.setdefault(_iri, _rank + 1)  # 0: no kind type (an "Entity")
_KIND_NAME = ["Entity"] + [name for _, name in _KINDS]


# a node's edges beyond this many are kept in order (a set of Python ints would take ~80 bytes an edge)
_UNSORTED = 16
# a store whose files hold this much or more is scanned by a child process (StepIndex.build)
APART_FROM_BYTES = 64 * 2 ** 20
# what a scan finds, as a child process sends it back
_STATE = ("_ids", "_values", "_walkable", "_kind", "_out", "_labels", "_node_times", "_edges")


def _scan_apart(queries: list[NamedQuery], path: Path) -> tuple[Any, ...]:
    """:meth:`StepIndex._scan` of the store at ``path`` in a child process
    (spawned; daemonic, so it ends with the server). Output: the scanned
    state (``_STATE``). Raises ``RuntimeError`` when the child fails."""
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_scan_child, args=(queries, str(path), send), daemon=True,
                        name="provkg-step-index-scan")
    child.start()
    send.close()
    try:
        state = receive.recv()
    except EOFError:
        raise RuntimeError(f"the step index's scan process ended with code {child.exitcode}") from None
    finally:
        child.join()
    if isinstance(state, str):
        raise RuntimeError(state)
    return state


def _scan_child(queries: list[NamedQuery], path: str, send: Any) -> None:
    try:
        index = StepIndex(queries)
        index._scan(LineageStore(path, read_only=True))
        send.send(tuple(getattr(index, name) for name in _STATE))
    except Exception as exc:  # sent back to be logged by the server
        send.send(f"the step index's scan failed: {type(exc).__name__}: {exc}")
    finally:
        send.close()


class StepIndex:
    """The edges of the indexed ``@step`` queries, in memory.

    Input: the named queries; those of the indexed form (:func:`step_form`)
    whose node facts (excluded class, label, times) agree with the first are
    served. Thread-safe: :meth:`add` (a write's triples) and :meth:`walk`
    take one lock; :meth:`build` reads the store without it."""

    def __init__(self, queries: Iterable[NamedQuery]):
        queries = list(queries)
        self.forms: dict[str, StepForm] = {}
        for q in queries:
            form = step_form(q.text) if q.step else None
            if form is not None and all(f.node_facts() == form.node_facts() for f in self.forms.values()):
                self.forms[q.name] = form
        first = next(iter(self.forms.values()), None)
        self._excluded, self._label, self._times = first.node_facts() if first else ("", "", ())
        self._relations = {name: [r for _, _, r in f.branches] for name, f in self.forms.items()}
        self._queries = [q for q in queries if q.name in self.forms]
        self._by_predicate: dict[str, list[tuple[dict[int, Any], bool, int]]] = {}
        self._edges: dict[str, dict[int, Any]] = {name: {} for name in self.forms}
        self._wire()
        self._codes = max((len(f.branches) for f in self.forms.values()), default=1)
        self._ids: dict[str, int] = {}
        self._values: list[Any] = []  # a node's plain value (as the walk's rows show it)
        self._walkable = bytearray()  # 1 for IRIs: the walk goes on only from IRIs
        self._kind = bytearray()  # rank in named_queries._KINDS + 1, 0 for none
        self._out = bytearray()  # 1 for nodes of the excluded class
        self._labels: list[Any] = []
        self._node_times: list[Any] = []
        self._lock = threading.Lock()
        self._pending: list[list[Quad]] | None = []  # writes while building
        self._broken = False
        self._ready = threading.Event()
        self._store: LineageStore | None = None  # for the facts of nodes new to the index
        self.stats: dict[str, Any] = {}  # once built: nodes, edges, buildSeconds

    def serves(self, query: str) -> bool:
        """Whether ``query`` is answered from the index now (built, of the indexed form)."""
        return query in self.forms and self._ready.is_set()

    def state(self) -> str:
        """"ready", "building", or "off" (no query of the indexed form, or given up after an error)."""
        if self._ready.is_set():
            return "ready"
        return "off" if self._broken or not self.forms else "building"

    def build(self, store: LineageStore, apart: bool | None = None) -> None:
        """Read the edges the indexed queries follow from the store's default
        graph (one scan per branch predicate; none into a node of the
        excluded class) and the kind, label and time of their ends, then
        take in the writes made meanwhile. Errors are logged and leave the
        index unused.

        ``apart``: scan in a child process of its own, which opens the store
        read-only and sends back what it found. Scanning the whole store
        leaves its reads in the scanning process's memory (164 MB at
        100,000 benchmark events with nothing kept; docs/benchmark.md), so
        the server should not scan it itself. None (the default): apart
        when the store's files hold ``APART_FROM_BYTES`` or more, where
        starting a process (~1.5 s) is worth it. At 100,000 benchmark
        events the build takes ~22 s, and ~120 MB of Python objects stay."""
        started = time.monotonic()
        self._store = store
        try:
            if apart is None:
                apart = sum(f.stat().st_size for f in store.graph_dir.iterdir() if f.is_file()) >= APART_FROM_BYTES
            if apart:
                self._set_state(_scan_apart(self._queries, store.path))
            else:
                self._scan(store)
            with self._lock:
                for quads in self._pending or ():
                    self._take(quads)
                self._pending = None
                edges = sum(len(out) for table in self._edges.values() for out in table.values())
                self.stats = {"queries": sorted(self.forms), "nodes": len(self._values), "edges": edges,
                              "buildSeconds": round(time.monotonic() - started, 3), "apart": apart}
                self._ready.set()
            log.info("step index ready: %s", self.stats)
        except Exception:  # the walk still answers; the store is not touched
            log.exception("the step index could not be built; impact queries walk the store")
            self._give_up()

    def _scan(self, store: LineageStore) -> None:
        default = DefaultGraph()
        scan = store.store.quads_for_pattern
        excluded = {_key(q.subject) for q in scan(None, A, NamedNode(self._excluded), default)}
        for predicate in self._by_predicate:
            self._add_edges(scan(None, NamedNode(predicate), None, default), excluded, scanning=True)
        self._sort_edges()
        for key in excluded:  # ends of edges the store has from them, say (never walked into)
            if key in self._ids:
                self._out[self._ids[key]] = 1
        del excluded
        facts = [(A, NamedNode(c)) for c in _KIND_RANK] + [(NamedNode(p), None) for p in (self._label, *self._times)]
        for predicate, obj in facts:
            self._add_facts(scan(None, predicate, obj, default), known_only=True)

    def _set_state(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(_STATE, state):
            setattr(self, name, value)
        self._wire()

    def _wire(self) -> None:
        """Which edge tables each predicate's triples go to (the tables are ``_edges``')."""
        self._by_predicate = {}
        for name, form in self.forms.items():
            for code, (predicate, subject_is_to, _) in enumerate(form.branches):
                self._by_predicate.setdefault(predicate, []).append((self._edges[name], subject_is_to, code))

    def _give_up(self) -> None:
        with self._lock:
            self._broken, self._pending = True, None
            self._ready.clear()

    def add(self, quads: list[Quad]) -> None:
        """Take in the triples of one write (default-graph quads, as
        :meth:`provkg.store.LineageStore.add_graphs` calls its listeners,
        after the write is made)."""
        try:
            with self._lock:
                if self._broken:
                    return
                if self._pending is not None:
                    self._pending.append(quads)
                else:
                    self._take(quads)
        except Exception:  # the write has been made: the index, not the write, is given up
            log.exception("the step index could not take in a write; impact queries walk the store from now on")
            self._give_up()

    def _take(self, quads: list[Quad]) -> None:
        """One write: the facts of nodes already indexed, then its edges; a
        node new to the index gets its facts from the store, which holds the
        write already (and any fact an earlier write made)."""
        a, valued = A.value, {self._label, *self._times}
        excluded = {_key(q.subject) for q in quads if q.predicate.value == a and q.object.value == self._excluded}
        self._add_facts((q for q in quads if q.predicate.value == a), known_only=True)
        # labels and times as the store gives them back: it keeps a date-time's value, not its text
        # ("...00.000Z" is read as "...00Z"), and the walk shows what it reads
        for subject, predicate in {(q.subject, q.predicate) for q in quads
                                   if q.predicate.value in valued and _key(q.subject) in self._ids}:
            self._read_facts(subject, (predicate,))
        self._add_edges(quads, excluded, read_new=True)

    def _read_facts(self, subject: Any, predicates: Iterable[NamedNode]) -> None:
        """Take in a node's facts of these predicates as the store holds them."""
        scan, default = self._store.store.quads_for_pattern, DefaultGraph()
        for predicate in predicates:
            self._add_facts(scan(subject, predicate, None, default), known_only=False)

    def _node(self, term: Any, read_new: bool = False) -> int:
        key = _key(term)
        node = self._ids.get(key)
        if node is None:
            node = self._ids[key] = len(self._values)
            self._values.append(key if isinstance(term, NamedNode) else _plain(term))
            self._walkable.append(isinstance(term, NamedNode))
            self._kind.append(0)
            self._out.append(0)
            self._labels.append(None)
            self._node_times.append(None)
            if read_new and not isinstance(term, Literal):
                self._read_facts(term, (A, *(NamedNode(p) for p in (self._label, *self._times))))
        return node

    def _add_edges(self, quads: Iterable[Quad], excluded: set[str], read_new: bool = False,
                   scanning: bool = False) -> None:
        """The quads' edges, each once. ``scanning``: the quads are a scan of
        the store, which gives each triple once, so nothing is looked up
        (:meth:`_sort_edges` puts long lists in order afterwards)."""
        for q in quads:
            for table, subject_is_to, code in self._by_predicate.get(q.predicate.value, ()):
                origin, target = (q.object, q.subject) if subject_is_to else (q.subject, q.object)
                if not isinstance(origin, NamedNode) or _key(target) in excluded:
                    continue  # the walk binds only IRIs as ?from; FILTER NOT EXISTS leaves excluded nodes out
                edge = self._node(target, read_new) * self._codes + code
                origin_id = self._node(origin, read_new)
                out = table.get(origin_id)
                if out is None:
                    table[origin_id] = array("q", (edge,))  # 8 bytes an edge, not a Python int's 32
                elif scanning:
                    out.append(edge)
                elif len(out) <= _UNSORTED:
                    if edge not in out:
                        out.append(edge)
                        if len(out) > _UNSORTED:
                            table[origin_id] = array("q", sorted(out))
                else:  # a source used by thousands of runs: in order, a duplicate is found by bisection
                    i = bisect_left(out, edge)
                    if i == len(out) or out[i] != edge:
                        out.insert(i, edge)

    def _sort_edges(self) -> None:
        """Put each list of more than ``_UNSORTED`` edges in order (after a scan)."""
        for table in self._edges.values():
            for origin, out in table.items():
                if len(out) > _UNSORTED:
                    table[origin] = array("q", sorted(set(out)))

    def _add_facts(self, quads: Iterable[Quad], known_only: bool) -> None:
        """Kinds (rdf:type), the excluded class, labels and times of the
        quads' subjects; with ``known_only``, of nodes already indexed only."""
        a, label, times, excluded, ids = A.value, self._label, self._times, self._excluded, self._ids
        for q in quads:
            node = ids.get(_key(q.subject))
            if node is None:
                if known_only:
                    continue
                node = self._node(q.subject)
            p = q.predicate.value
            if p == a:
                c = q.object.value
                if c == excluded:
                    self._out[node] = 1
                elif c in _KIND_RANK and (not self._kind[node] or _KIND_RANK[c] < self._kind[node]):
                    self._kind[node] = _KIND_RANK[c]
            elif p == label or p in times:
                column, value = (self._labels if p == label else self._node_times), _plain(q.object)
                if column[node] is None or str(value) < str(column[node]):
                    column[node] = value

    def walk(self, query: str, start: str, max_depth: int | None, as_of: datetime | None) -> list[tuple[Any, ...]]:
        """The rows of ``query``'s traversal from IRI ``start``
        (:func:`provkg.named_queries.breadth_first`): the edges the step query
        would give, those :func:`provkg.named_queries._kept` drops as of
        ``as_of`` left out. Raises ``KeyError`` for a query not served."""
        relations, codes = self._relations[query], self._codes
        table = self._edges[query]
        values, kinds, labels, times, out, walkable = (self._values, self._kind, self._labels, self._node_times,
                                                       self._out, self._walkable)

        def edges_of(node: int) -> list[Edge]:
            found = []
            for edge in table.get(node, ()):
                target, code = divmod(edge, codes)
                if out[target]:
                    continue
                relation, kind, when = relations[code], _KIND_NAME[kinds[target]], times[target]
                if as_of is None or _kept(relation, kind, when, as_of):
                    found.append((relation, values[target], target, kind, labels[target], when,
                                  bool(walkable[target])))
            return found

        with self._lock:
            start_id = self._ids.get(start)
            if start_id is None:
                return []
            return breadth_first(start_id, start, edges_of, max_depth)
