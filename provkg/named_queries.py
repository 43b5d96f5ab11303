"""Named SPARQL queries: ``queries/*.rq`` files with a parameter header.

A named query file starts with comment lines that declare it::

    # @summary  one paragraph on what it answers
    # @param    node  iri  required       description
    # @param    depth int  default=25     description
    # @traversal from node

Parameters are validated and converted to RDF terms by Oxigraph (an IRI
that does not parse, a non-integer ``int``, ... is refused), then bound as
inline data: one ``VALUES`` row (SPARQL 1.1 §10.2.2) opening the query's
WHERE clause, written from the terms' N-Triples form, in which no value can
end the term it is in (IRIs cannot hold ``>``, literals are escaped). User
text is never pasted into the query. This rather than pyoxigraph's
substitutions (SEP-0007): with a substituted start node Oxigraph plans the
query without it and walks the whole store — 3.2 s against 3.7 ms for one
prediction's provenance on a 500-event store, growing with the store.
Parameters the query text does not use (``depth``) steer the
post-processing only.

A query whose body is a UNION may hold ``# @bind`` comment lines, one at
the top of each group: the ``VALUES`` block is written there instead (see
:func:`bind_values` for why).

A ``@diff a b`` query is evaluated with ``?side`` and ``?version`` bound
twice ("a" with the node of parameter ``a``, "b" with that of ``b``); it
returns facts ``?aspect ?key ?side ?value``; provkg pivots them into one row per aspect and key with both
values and the change.

A ``@traversal from <param>`` query returns lineage edges
(``?from ?relation ?to`` plus ``?toLabel ?toKind ?toTime``); provkg computes
each reached node's depth (fewest steps from the start node, breadth-first)
and drops nodes beyond ``depth``. With ``@step`` as well, the query is one
step of the walk: provkg binds ``?from`` to the start node, then to the nodes
each step reached first, breadth-first, ``depth`` steps at most (see
:func:`walk_steps` for why).

``@reach OUT FROM STEP-FILE EXCEPT`` adds column ``OUT``: for each row, the
targets downstream of its ``FROM`` value other than parameter ``EXCEPT``'s
node, walked by provkg with the one-step query in ``STEP-FILE`` (relative to
the query file; see :func:`reach_targets`).
"""

from __future__ import annotations

import re
from collections import deque
from datetime import datetime, timezone
from functools import lru_cache, partial
from operator import itemgetter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from pyoxigraph import Literal, NamedNode, QuerySolutions, Variable

from .answer_cache import AnswerCache
from .collector import collector_paused
from .resources import queries_dir
from .graph_builder import time_literal
from .store import LineageStore
from .vocab import XSD

if TYPE_CHECKING:  # step_index reads the walk's own code from this module
    from .step_index import StepIndex

_PARAM = re.compile(r"^#\s*@param\s+(\w+)\s+(iri|int|string|datetime|number)\s+(required|optional|default=\S*)\s*(.*)$")
_IRI_FORBIDDEN = re.compile(r'[\x00-\x20<>"{}|^`\\]')


class QueryParameterError(ValueError):
    """A named-query parameter is missing, unknown or of the wrong type."""


class UnknownNode(QueryParameterError):
    """A traversal starts from a node the store holds nothing about."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # iri | int | number | datetime | string
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
    diff: tuple[str, str] | None = None
    as_of: str | None = None
    path: Path | None = None
    first: tuple[str, str, str, str] | None = None  # @first: (out, flag, rank, per)
    step: bool = False  # @step: one step of a @traversal, run breadth-first from the start node
    reach: tuple[str, str, str, str] | None = None  # @reach: (out, from, step query text, except)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "summary": self.summary,
                "parameters": [p.as_dict() for p in self.parameters], "traversal": self.traversal_from is not None,
                "diff": self.diff is not None}

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
                if not p.required:
                    continue  # an optional parameter left out stays unbound
                raise QueryParameterError(f"parameter {p.name!r} ({p.type}) is required: {p.description}")
            if p.type == "iri":
                if not value or _IRI_FORBIDDEN.search(value) or ":" not in value:
                    raise QueryParameterError(f"parameter {p.name!r} must be an absolute IRI, got {value!r} "
                                              f"({p.description})")
                try:
                    term: Any = NamedNode(value)  # RFC 3987 syntax, checked by Oxigraph
                except ValueError as exc:
                    raise QueryParameterError(f"parameter {p.name!r} must be an absolute IRI, got {value!r}: {exc}") \
                        from None
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
            elif p.type == "number":
                try:
                    number = float(value)
                except ValueError:
                    raise QueryParameterError(f"parameter {p.name!r} must be a number, got {value!r}") from None
                term = Literal(repr(number), datatype=XSD.double)
                values[p.name] = number
            elif p.type == "datetime":
                term = time_literal(value)
                if term is None or term.datatype != XSD.dateTime:
                    raise QueryParameterError(f"parameter {p.name!r} must be an ISO 8601 date-time, got {value!r}")
                values[p.name] = value
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
    diff = None
    first = None
    as_of = None
    step = False
    reach = None
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
            default = req.split("=", 1)[1] if req.startswith("default=") else None
            params.append(Parameter(name, typ, req == "required", default, desc.strip()))
        elif body.startswith("@traversal"):
            in_summary = False
            traversal = body.split()[-1]
        elif body.startswith("@step"):
            in_summary = False
            step = True
        elif body.startswith("@reach"):
            in_summary = False
            words = body.split()[1:]
            if len(words) != 4:
                raise ValueError(f"{path}: @reach takes OUT FROM STEP-FILE EXCEPT: {line!r}")
            reach = (words[0], words[1], (path.parent / words[2]).read_text("utf-8"), words[3])
        elif body.startswith("@asof"):
            in_summary = False
            as_of = body.split()[-1]
        elif body.startswith("@diff"):
            in_summary = False
            sides = body.split()[1:]
            if len(sides) != 2:
                raise ValueError(f"{path}: @diff names two parameters: {line!r}")
            diff = (sides[0], sides[1])
        elif body.startswith("@first"):
            in_summary = False
            words = body.split()[1:]
            if len(words) != 4:
                raise ValueError(f"{path}: @first takes OUT FLAG RANK PER: {line!r}")
            first = (words[0], words[1], words[2], words[3])
        elif in_summary and body:
            summary_lines.append(body)
        else:
            in_summary = False
    if step and traversal is None:
        raise ValueError(f"{path}: @step is one step of a @traversal, and the query declares none")
    return NamedQuery(path.stem, " ".join(summary_lines), params, text, traversal, diff, as_of, path, first, step,
                      reach)


def load_named_queries(folder: Path | None = None) -> dict[str, NamedQuery]:
    """All named queries in ``queries/``, by name (the file stem). The
    installed ones are read once per process; the returned dict is shared."""
    return _load(folder or queries_dir())


@lru_cache(maxsize=4)
def _load(folder: Path) -> dict[str, NamedQuery]:
    return {q.name: q for q in (parse_query_file(p) for p in sorted(folder.glob("*.rq")))}


@dataclass
class QueryAnswer:
    """A named query's answer: ``columns`` and ``rows`` (sequences of plain values,
    IRIs and literals as strings, numbers as numbers; a traversal's rows are
    tuples), with the parameters used."""

    query: str
    parameters: dict[str, Any]
    columns: list[str]
    rows: Sequence[Sequence[Any]] = field(default_factory=list)
    summary: dict[str, int] | None = None  # traversals: distinct nodes reached, by kind
    total: int | None = None  # paged answers: rows in all pages (``rows`` is one page)

    def as_dict(self) -> dict[str, Any]:
        out = {"query": self.query, "parameters": self.parameters, "columns": self.columns,
               "count": len(self.rows), "rows": [dict(zip(self.columns, r)) for r in self.rows]}
        if self.summary is not None:
            out["summary"] = self.summary
        if self.total is not None:
            offset = self.parameters.get("offset", 0)
            out["total"] = self.total
            out["next"] = offset + len(self.rows) if offset + len(self.rows) < self.total else None
        return out

    def page(self, parameters: dict[str, Any]) -> "QueryAnswer":
        """A new answer with only rows ``offset`` to ``offset + limit`` of
        ``parameters`` (the summary still counts every row; ``total`` says how
        many there are); this one is left whole."""
        offset = parameters.get("offset", 0)
        return replace(self, parameters=parameters, rows=self.rows[offset:offset + parameters["limit"]],
                       total=len(self.rows))


_NUMERIC = {XSD.decimal.value, XSD.double.value, XSD.float.value}


def _plain(term: Any) -> Any:
    """A result term as a plain JSON value: integers, decimals/doubles and
    booleans as such, everything else (IRIs, strings, times) as its text."""
    if term is None:
        return None
    if isinstance(term, Literal):
        datatype = term.datatype.value
        try:
            if datatype == XSD.integer.value:
                return int(term.value)
            if datatype in _NUMERIC:
                return float(term.value)
        except ValueError:
            return term.value
        if datatype == XSD.boolean.value:
            return term.value in ("true", "1")
    return term.value


_WHERE = re.compile(r"^(?!\s*#).*?\bWHERE\s*\{", re.MULTILINE)
# a line "# @bind" inside the query body: the VALUES block goes there (each such line)
_BIND_HERE = re.compile(r"^[ \t]*#[ \t]*@bind[ \t]*$", re.MULTILINE)


def bind_values(text: str, terms: dict[Variable, Any], rows: list[dict[Variable, Any]] | None = None) -> str:
    """The query with ``terms`` bound: a ``VALUES`` clause (SPARQL 1.1 §10.2.2)
    in place of each ``# @bind`` comment line of the query, or, when it has
    none, opening its first (outermost) WHERE clause; each term in N-Triples
    form; one row, or one per extra binding in ``rows`` (each added to ``terms``).

    Why ``# @bind``: Oxigraph plans each group of a UNION on its own and joins
    the union to a VALUES outside it by hashing, so every branch is evaluated
    for the whole store before the binding applies; a VALUES inside the branch
    is planned first and every pattern starts from the bound node
    (version-diff on a 10,000-event store: p50 2.7 s → 17 ms, docs/queries.md).

    Input: SPARQL query text and validated pyoxigraph terms by variable.
    Output: the query text. Raises ``ValueError`` when the query has no WHERE
    clause (named queries always have one)."""
    rows = [{**terms, **extra} for extra in rows] if rows else [terms]
    if not rows[0]:
        return text
    variables = list(rows[0])
    block = " ".join("(" + " ".join(str(row[v]) for v in variables) + ")" for row in rows)
    values = f"VALUES ({' '.join(str(v) for v in variables)}) {{ {block} }}"
    if _BIND_HERE.search(text):
        return _BIND_HERE.sub(lambda _: "  " + values, text)
    where = _WHERE.search(text)
    if where is None:
        raise ValueError("the query has no WHERE clause to bind parameters in")
    return f"{text[:where.end()]}\n  {values}{text[where.end():]}"


def run_named_query(store: LineageStore, query: NamedQuery, raw_params: dict[str, str],
                    cache: AnswerCache | None = None, index: StepIndex | None = None) -> QueryAnswer:
    """Run a named query with raw string parameters (validated and bound).

    A query that declares ``limit`` answers with one page and counts of
    everything; with a ``cache``, the whole answer is kept until the store's
    next write, so the other pages of it cost no walk (see
    :mod:`provkg.answer_cache`). With an ``index`` that serves the query
    (:mod:`provkg.step_index`), a ``@step`` traversal walks its edges in
    memory instead of the store, with the same answer. Raises
    :class:`QueryParameterError` for bad parameters and :class:`UnknownNode`
    when a traversal starts from a node the store does not hold."""
    subs, values = query.bind(raw_params)
    if "limit" not in values:
        return _answer(store, query, subs, values, index)
    if cache is None:
        return _answer(store, query, subs, values, index).page(values)
    key = cache.key(query.name, values, store.generation)
    whole = cache.get(key)
    if whole is None:
        whole = _answer(store, query, subs, values, index)
        cache.put(key, whole)
    return whole.page(values)


def _answer(store: LineageStore, query: NamedQuery, subs: dict[Variable, Any], values: dict[str, Any],
            index: StepIndex | None = None) -> QueryAnswer:
    """The whole answer (every row) of a query with bound parameters."""
    cutoff = values.get(query.as_of) if query.as_of else None
    as_of = datetime.fromisoformat(cutoff.replace("Z", "+00:00")) if cutoff else None
    select = partial(select_terms, store)
    if index is not None and index.serves(query.name):
        start = values[query.traversal_from]
        with collector_paused():  # up to ~10^5 rows at once: see provkg.collector
            rows = index.walk(query.name, start, values.get("depth"), as_of)
            answer = traversal_answer(query.name, values, rows)
        if not rows:
            _check_known(store, start)
        return answer
    if query.step:
        names, raw_rows = walk_steps(select, query.text, subs, NamedNode(values[query.traversal_from]),
                                     values.get("depth"), as_of)
    else:
        # a diff query sees one row per side: ?side "a" or "b" and ?version that side's node
        sides = ([{Variable("side"): Literal(side), Variable("version"): subs[Variable(name)]}
                  for side, name in zip(("a", "b"), query.diff)] if query.diff else None)
        names, raw_terms = select(bind_values(query.text, subs, sides))
        raw_rows = [[_plain(t) for t in row] for row in raw_terms]
    if query.diff is not None:
        return _diff(query.name, values, names, raw_rows)
    if query.reach is not None:
        out, origin, step, excluded = query.reach
        names, raw_rows = _add_reach(select, names, raw_rows, out, origin, step, values.get(excluded))
    if query.first is not None:
        names, raw_rows = _mark_first(names, raw_rows, *query.first)
    if query.traversal_from is None:
        return QueryAnswer(query.name, values, names, raw_rows)
    start = values[query.traversal_from]
    if not raw_rows:
        _check_known(store, start)
    return _traverse(query.name, values, start, names, raw_rows, values.get("depth"), as_of)


def _check_known(store: LineageStore, start: str) -> None:
    """Raise :class:`UnknownNode` when the store holds no triple with IRI ``start``."""
    if not store.query(bind_values("ASK WHERE { { ?n ?p ?o } UNION { ?s ?p ?n } }", {Variable("n"): NamedNode(start)})):
        raise UnknownNode(f"the store holds nothing about {start} (is the IRI percent-encoded as in the store?)")


def select_terms(store: LineageStore, text: str) -> tuple[list[str], list[list[Any]]]:
    """A SELECT query's variable names and its solutions as rows of pyoxigraph
    terms (None when unbound): the ``select`` that :func:`walk_steps` and
    :func:`reach_targets` take, bound to a store. Raises what the store's
    query raises (``SyntaxError`` for bad SPARQL)."""
    solutions = store.query(text)
    assert isinstance(solutions, QuerySolutions)
    names = [v.value for v in solutions.variables]
    rows = [[s[n] for n in names] for s in solutions]
    del solutions  # pyoxigraph results must be freed on this thread, not by a later traceback
    return names, rows


_FROM = Variable("from")
_STEP_ROWS = 1000  # start nodes per step query: bounds the query text (a VALUES row per node)


def walk_steps(select: Callable[[str], tuple[list[str], list[list[Any]]]], text: str, subs: dict[Variable, Any],
               start: NamedNode, max_depth: int | None, as_of: datetime | None) -> tuple[list[str], list[list[Any]]]:
    """Evaluate a ``@step`` traversal: its edges from ``start``, one step at a time.

    Each step runs the query with ``?from`` bound (a VALUES row per node, at
    each ``# @bind`` line) to the nodes the previous step reached first, up to
    ``max_depth`` steps; an edge :func:`_kept` drops (``as_of``) reaches no
    node. Why not one query with a ``*`` property path: the path walks every
    node it reaches, and a forward walk reaches, through ``prov:wasGeneratedBy``,
    every quality measurement a run recorded (72 % of a source's downstream on
    the 10,000-event benchmark store), which the query then leaves out of the
    answer; here a measurement costs the one look-up of the filter that leaves
    it out, and ``depth`` and ``as_of`` bound the work, not only the answer.

    Input: ``select`` (query text -> variable names and rows of terms), the
    step query text, the other bound parameters. Output: (names, rows of plain
    values), the rows :func:`_traverse` takes; every node it expands is
    expanded here, so the answer is the one query's. Raises what ``select``
    raises. Only IRIs are walked on: a blank node cannot be bound in VALUES
    (SPARQL 1.1 §10.2.2), and provkg mints an IRI for every lineage node."""
    seen, frontier = {start}, [start]
    names: list[str] = []
    rows: list[list[Any]] = []
    depth = 0
    while frontier and (max_depth is None or depth < max_depth):
        reached: list[Any] = []
        for i in range(0, len(frontier), _STEP_ROWS):
            names, terms = select(bind_values(text, subs, [{_FROM: n} for n in frontier[i:i + _STEP_ROWS]]))
            idx = {n: k for k, n in enumerate(names)}
            for term_row in terms:
                row = [_plain(t) for t in term_row]
                rows.append(row)
                to = term_row[idx["to"]]
                if isinstance(to, NamedNode) and to not in seen and _row_kept(row, idx, as_of):
                    seen.add(to)
                    reached.append(to)
        frontier, depth = reached, depth + 1
    return names, rows


def _add_reach(select: Callable[[str], tuple[list[str], list[list[Any]]]], names: list[str],
               rows: list[list[Any]], out: str, origin: str, step: str,
               excluded: str | None) -> tuple[list[str], list[list[Any]]]:
    """Add column ``out`` (``@reach``): for each row, the targets reached
    downstream of its ``origin`` value, other than ``excluded`` (IRIs, sorted,
    space-separated; None when there are none or the origin is ``excluded``)."""
    col = names.index(origin)
    origins = {row[col] for row in rows if isinstance(row[col], str) and row[col] != excluded}
    reached = reach_targets(select, step, origins)
    added = []
    for row in rows:
        found = reached.get(row[col], set()) - {excluded}
        added.append(row + [" ".join(sorted(found)) or None])
    return names + [out], added


def reach_targets(select: Callable[[str], tuple[list[str], list[list[Any]]]], step: str,
                  origins: set[str]) -> dict[str, set[str]]:
    """The targets reachable in one or more steps from each origin IRI.

    ``step`` answers ``?from ?to ?target`` for the nodes bound to ``?from`` (a
    VALUES row per node at each ``# @bind`` line, SPARQL 1.1 §10.2.2): the
    nodes one edge on, and whether each is a target (boolean). The walks from
    all origins go breadth-first together, so each node's edges are read
    once, in one query per step for every node new to that step, whatever the
    number of origins it lies downstream of. Output: origin -> target IRIs
    (an origin itself only if a cycle leads back to it). Raises what
    ``select`` raises."""
    succ: dict[str, list[str]] = {}
    targets: set[str] = set()
    seen = {o: {o} for o in origins}
    back: set[str] = set()  # origins a cycle leads back to
    frontier = {o: [o] for o in origins}
    while any(frontier.values()):
        missing = sorted({n for nodes in frontier.values() for n in nodes if n not in succ})
        for n in missing:
            succ[n] = []
        for i in range(0, len(missing), _STEP_ROWS):
            names, terms = select(bind_values(step, {}, [{_FROM: NamedNode(n)} for n in missing[i:i + _STEP_ROWS]]))
            idx = {n: k for k, n in enumerate(names)}
            for t in terms:
                to = t[idx["to"]]
                if isinstance(to, NamedNode):  # only IRIs can be bound for the next step
                    succ[t[idx["from"]].value].append(to.value)
                    if _plain(t[idx["target"]]) is True:
                        targets.add(to.value)
        for o, nodes in frontier.items():
            following = []
            for n in nodes:
                for m in succ[n]:
                    if m == o:
                        back.add(o)
                    if m not in seen[o]:
                        seen[o].add(m)
                        following.append(m)
            frontier[o] = following
    return {o: (seen[o] - ({o} - back)) & targets for o in origins}


def _mark_first(names: list[str], rows: list[list[Any]], out: str, flag: str, rank: str,
                per: str) -> tuple[list[str], list[list[Any]]]:
    """Add column ``out``: true on the rows whose ``flag`` is true and whose
    ``rank`` is the lowest among such rows with the same ``per`` value
    (``@first``: the first pipeline stage where a flag is raised), so the query
    need not find it again for every row."""
    idx = {n: i for i, n in enumerate(names)}
    lowest: dict[Any, Any] = {}
    for row in rows:
        if row[idx[flag]] is True:
            key = row[idx[per]]
            lowest[key] = min(lowest.get(key, row[idx[rank]]), row[idx[rank]])
    marked = [row + [row[idx[flag]] is True and lowest.get(row[idx[per]]) == row[idx[rank]]] for row in rows]
    return names + [out], marked


def _diff(name: str, values: dict[str, Any], names: list[str], raw_rows: list[list[Any]]) -> QueryAnswer:
    """Pivot (aspect, key, side, value) facts into one row per (aspect, key):
    the values on side a and side b and whether they are unchanged, changed,
    added (only in b) or removed (only in a)."""
    idx = {n: i for i, n in enumerate(names)}
    facts: dict[tuple[str, str], dict[str, set[str]]] = {}
    for row in raw_rows:
        sides = facts.setdefault((row[idx["aspect"]], row[idx["key"]]), {"a": set(), "b": set()})
        sides[row[idx["side"]]].add(str(row[idx["value"]]))
    rows = []
    for (aspect, key), sides in sorted(facts.items()):
        a, b = sides["a"], sides["b"]
        change = "unchanged" if a == b else "added" if not a else "removed" if not b else "changed"
        rows.append([aspect, key, ", ".join(sorted(a)) or None, ", ".join(sorted(b)) or None, change])
    answer = QueryAnswer(name, values, ["aspect", "key", "a", "b", "change"], rows)
    changes: dict[str, int] = {}
    for row in rows:
        changes[row[4]] = changes.get(row[4], 0) + 1
    answer.summary = changes
    return answer


# most specific first: a node's kind is the first of these it is typed with
_KINDS = [(iri, name) for name, iri in (
    ("Prediction", "https://w3id.org/provkg/ns#Prediction"),
    ("ModelVersion", "https://w3id.org/provkg/ns#ModelVersion"),
    ("Model", "https://w3id.org/provkg/ns#Model"),
    ("Deployment", "https://w3id.org/provkg/ns#Deployment"),
    ("Feature", "https://w3id.org/provkg/ns#Feature"),
    ("Column", "https://w3id.org/provkg/ns#Column"),
    ("FeatureSet", "https://w3id.org/provkg/ns#FeatureSet"),
    ("DatasetVersion", "https://w3id.org/provkg/ns#DatasetVersion"),
    ("Dataset", "https://w3id.org/provkg/ns#Dataset"),
    ("ErasureRequest", "https://w3id.org/provkg/ns#ErasureRequest"),
    ("TrainingRun", "https://w3id.org/provkg/ns#TrainingRun"),
    ("EvaluationRun", "https://w3id.org/provkg/ns#EvaluationRun"),
    ("FeatureEngineeringRun", "https://w3id.org/provkg/ns#FeatureEngineeringRun"),
    ("LabellingRun", "https://w3id.org/provkg/ns#LabellingRun"),
    ("DeploymentRun", "https://w3id.org/provkg/ns#DeploymentRun"),
    ("InferenceRun", "https://w3id.org/provkg/ns#InferenceRun"),
    ("Run", "http://www.w3.org/ns/prov#Activity"),
    ("Job", "http://www.w3.org/ns/prov#Plan"),
    ("DataSubject", "https://w3id.org/dpv#DataSubject"),
    ("ConsentRecord", "https://w3id.org/dpv#ConsentRecord"),
    ("HyperParameterSetting", "http://www.w3.org/ns/mls#HyperParameterSetting"),
    ("Agent", "http://www.w3.org/ns/prov#SoftwareAgent"),
    ("Agent", "http://www.w3.org/ns/prov#Agent"),
    ("Entity", "http://www.w3.org/ns/prov#Entity"),
)]


def kind_of(types: str | None) -> str:
    """The most specific kind name for a space-separated list of type IRIs."""
    present = set((types or "").split())
    return next((name for iri, name in _KINDS if iri in present), "Entity")


# dataset-level derivations between these carry no time: as of a date they are unknown
_GENERIC_DATASETS = {"Dataset", "FeatureSet", "Model"}


def _after(time: Any, cutoff: datetime) -> bool:
    try:
        when = datetime.fromisoformat(str(time).replace("Z", "+00:00"))
    except ValueError:
        return False
    if when.tzinfo is None:  # a time without offset is read as UTC
        when = when.replace(tzinfo=timezone.utc)
    return when > cutoff


def _kept(relation: str, kind: str, time: Any, as_of: datetime | None) -> bool:
    """Whether a traversal edge stands as of ``as_of`` (always, without it):
    not into a node timed later (``time``, its ``toTime``), not a derivation
    (``relation``) into a generic dataset (``kind``, its node's kind; such a
    derivation carries no time of its own)."""
    if as_of is None:
        return True
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=timezone.utc)
    return not ((time is not None and _after(time, as_of))
                or (relation.endswith("#hadDerivation") and kind in _GENERIC_DATASETS))


def _row_kept(row: list[Any], idx: dict[str, int], as_of: datetime | None) -> bool:
    """:func:`_kept` for a step query's row of plain values."""
    return as_of is None or _kept(row[idx["relation"]], kind_of(row[idx["toTypes"]]), row[idx["toTime"]], as_of)


# an edge as :func:`breadth_first` reads it: (relation, target's plain value, target,
# its kind, label, time, whether the walk goes on from it); relation and value first,
# as each node's edges are ordered by them
Edge = tuple[str, Any, Any, str, Any, Any, bool]
_EDGE_ORDER = itemgetter(0, 1)


def _traverse(name: str, values: dict[str, Any], start: str, names: list[str], raw_rows: list[list[Any]],
              max_depth: int | None, as_of: datetime | None = None) -> QueryAnswer:
    """The traversal answer over a step query's rows: :func:`breadth_first`
    over its edges that stand as of ``as_of`` (:func:`_kept`)."""
    idx = {n: i for i, n in enumerate(names)}
    out_edges: dict[str, list[Edge]] = {}
    for row in raw_rows:
        if _row_kept(row, idx, as_of):
            to = row[idx["to"]]
            out_edges.setdefault(row[idx["from"]], []).append(
                (row[idx["relation"]], to, to, kind_of(row[idx["toTypes"]]), row[idx["toLabel"]], row[idx["toTime"]],
                 True))
    return traversal_answer(name, values, breadth_first(start, start, lambda node: out_edges.get(node, ()), max_depth))


def breadth_first(start: Any, start_value: Any, edges_of: Callable[[Any], Any],
                  max_depth: int | None) -> list[tuple[Any, ...]]:
    """Rows (tuples) ``depth, from, relation, node, kind, label, time``: every edge
    ``edges_of`` gives (:data:`Edge` tuples) from the nodes reached from
    ``start``, breadth-first, each node's edges sorted by relation and node,
    ``depth`` the fewest steps to the edge's node; nodes at ``max_depth`` are
    not expanded. Node keys are whatever ``edges_of`` takes (IRIs for the
    walk, ids for :class:`provkg.step_index.StepIndex`)."""
    depth = {start: 0}
    value_of = {start: start_value}
    # tuples, not lists: a tuple of strings and numbers leaves the collector's
    # care at its first collection, so the server's cached answers (up to 50,000
    # rows) are not scanned again by every later full collection
    ordered: list[tuple[Any, ...]] = []
    append = ordered.append  # up to ~10^5 rows from one source: the loop is the cost
    queue = deque([start])
    while queue:
        node = queue.popleft()
        node_depth = depth[node]
        if max_depth is not None and node_depth >= max_depth:
            continue
        here, next_depth = value_of[node], node_depth + 1
        for relation, value, target, kind, label, time, walkable in sorted(edges_of(node), key=_EDGE_ORDER):
            append((next_depth, here, relation, value, kind, label, time))
            if target not in depth:
                depth[target] = next_depth
                value_of[target] = value
                if walkable:
                    queue.append(target)
    return ordered


def traversal_answer(name: str, values: dict[str, Any], ordered: list[tuple[Any, ...]]) -> QueryAnswer:
    """A traversal's answer: its rows (:func:`breadth_first`) and a summary
    of the distinct nodes reached, by kind."""
    answer = QueryAnswer(name, values, ["depth", "from", "relation", "node", "kind", "label", "time"], ordered)
    kinds: dict[str, set[str]] = {}
    for row in ordered:
        kinds.setdefault(row[4], set()).add(row[3])
    answer.summary = {kind: len(nodes) for kind, nodes in sorted(kinds.items())}
    return answer
