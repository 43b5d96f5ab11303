"""User SPARQL queries evaluated in worker processes, so that no query can
take the server down.

Oxigraph (pyoxigraph 0.5) aborts the whole process on some queries: a Rust
panic in its sort comparator when ORDER BY compares ``xsd:dateTime`` values
with and without a timezone ("user-provided comparison function does not
correctly implement a total order") is not turned into a Python exception but
ends in SIGABRT. It also cannot cancel a running query. So the ``/sparql``
endpoint does not query the server's store in-process: it hands each query
to one of a few worker processes (:class:`SparqlWorkers`), which

- open a *snapshot* of the store read-only. pyoxigraph 0.5 has no secondary
  (catch-up) mode, and ``Store.read_only`` on a directory another process
  writes to is undefined behaviour by its documentation, so the server takes
  a RocksDB checkpoint (``Store.backup``: hard links to the immutable table
  files, about a millisecond) under ``DATA/.sparql-snapshots/`` whenever the
  store changed since the last one (:attr:`LineageStore.generation`), and a
  worker reopens (about 10 ms) when its next query names a newer snapshot:
  every query sees every write answered before it was sent;
- evaluate and serialise the answer under the same limits as before
  (:class:`provkg.limits.GuardedWriter`: deadline and ``max_result_bytes``)
  and count its rows.

When a worker dies during a query (the abort above, or any crash) the request
gets :class:`EngineCrashed` (500, saying so) and a new worker takes its
place; when a query overruns its deadline its worker is killed, so the CPU
and the slot are freed at once (a thread could only be abandoned).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .limits import LimitExceeded, QueryBusy, QueryTimeout, ResultTooLarge, query_timeout
from .sparql_protocol import ProtocolError, SparqlRequest
from .store import LineageStore

SNAPSHOT_DIR = ".sparql-snapshots"
# the worker stops its own query at the deadline (GuardedWriter) and says so;
# it is killed only when it has not answered this long after the deadline
_GRACE = 0.25
_CONTEXT = multiprocessing.get_context("spawn")  # never fork a process running RocksDB and an event loop

CRASH_HINT = ("a known cause is ORDER BY over xsd:dateTime values with and without a timezone; "
              "sort on STR(?t) or give every value a timezone")


class EngineCrashed(ProtocolError):
    """The query engine's process died while evaluating this query (status 500).
    The worker was replaced; the same query will most likely crash it again."""

    def __init__(self, detail: str):
        super().__init__(500, f"the query engine crashed on this query ({detail}) and was restarted; "
                              f"the server is unaffected, but this query cannot be answered: {CRASH_HINT}")


def _limit_error(kind: str, message: str, retry_after: int | None) -> LimitExceeded:
    cls = {"QueryTimeout": QueryTimeout, "ResultTooLarge": ResultTooLarge, "QueryBusy": QueryBusy}.get(kind,
                                                                                                      LimitExceeded)
    return cls(message, retry_after)


# -- the worker process ---------------------------------------------------------------


def worker_main(conn: Any) -> None:
    """A worker process's loop (the target of :class:`SparqlWorkers`' processes).

    Input: one end of a ``multiprocessing.Pipe``. Each message is a tuple
    ``(snapshot dir, query, default graphs, named graphs, accept, deadline,
    max_bytes, timeout)``; ``None`` (or the pipe closing) ends the loop. Each
    reply is ``("ok", body, media type, rows)``, ``("protocol", status,
    message)``, ``("limit", exception class name, message, retry_after)`` or
    ``("error", text)``. Raises nothing: a Python-level panic of the engine
    (pyo3 ``PanicException``) is replied as ``("crashed", text)`` and ends the
    process, since the engine's state is then suspect."""
    from .limits import GuardedWriter, count_rows
    from .sparql_protocol import execute

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group: the server stops us
    store: LineageStore | None = None
    opened: str | None = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the server is gone
            return
        if message is None:
            return
        snapshot, query, defaults, named, accept, deadline, max_bytes, timeout = message
        reply: tuple
        try:
            if snapshot != opened:
                store, opened = None, None  # close the old snapshot first
                store, opened = LineageStore(snapshot, read_only=True), snapshot
            sink = GuardedWriter(deadline, max_bytes, timeout)
            body, media = execute(store, SparqlRequest(query, list(defaults), list(named)), accept, output=sink)
            reply = ("ok", body, media, count_rows(body, media))
        except ProtocolError as exc:
            reply = ("protocol", exc.status, exc.message)
        except LimitExceeded as exc:
            reply = ("limit", type(exc).__name__, exc.message, exc.retry_after)
        except Exception as exc:  # noqa: BLE001 - every failure is answered, none may end the loop
            reply = ("error", f"{type(exc).__name__}: {exc}")
        except BaseException as exc:  # noqa: BLE001 - pyo3_runtime.PanicException derives from BaseException
            try:
                conn.send(("crashed", f"{type(exc).__name__}: {exc}"))
            finally:
                os._exit(70)
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


# -- the server side --------------------------------------------------------------------


class _Snapshots:
    """Checkpoints of the server's store for the workers to open read-only:
    a new one when the store's ``generation`` moved on, old ones removed once
    no worker holds them."""

    def __init__(self, store: LineageStore):
        self.store = store
        self.root = store.path / SNAPSHOT_DIR
        self._lock = threading.Lock()
        self._latest: Path | None = None
        self._generation: int | None = None
        self._numbers = itertools.count(1)

    def clear(self) -> None:
        """Remove every snapshot (left over by an earlier run, or at shutdown)."""
        with self._lock:
            self._latest, self._generation = None, None
            shutil.rmtree(self.root, ignore_errors=True)

    def current(self) -> Path:
        """The directory of a snapshot holding every write made so far (a
        LineageStore data directory). Raises ``OSError`` when the checkpoint
        cannot be written."""
        if self.store.read_only:  # nothing in this process writes: read the store itself
            return self.store.path
        with self._lock:
            generation = getattr(self.store, "generation", None)
            if self._latest is None or generation is None or generation != self._generation:
                path = self.root / f"{os.getpid()}-{next(self._numbers)}"
                path.mkdir(parents=True)
                self.store.store.backup(str(path / "graph"))  # RocksDB checkpoint: flushes, hard-links
                self._latest, self._generation = path, generation
            return self._latest

    def prune(self, in_use: set[Path]) -> None:
        """Remove the snapshots that are neither the latest nor in ``in_use``."""
        if self.store.read_only:
            return
        with self._lock:
            keep = in_use | {self._latest}
            try:
                entries = list(self.root.iterdir())
            except FileNotFoundError:
                return
            for entry in entries:
                if entry not in keep:
                    shutil.rmtree(entry, ignore_errors=True)


@dataclass(eq=False)
class _Worker:
    process: Any
    conn: Any
    snapshot: Path | None = None
    queries: int = field(default=0)


class SparqlWorkers:
    """A pool of ``size`` worker processes answering SPARQL queries over
    snapshots of ``store`` (see the module's docstring).

    Input: the server's open store (its snapshots go under
    ``store.path / SNAPSHOT_DIR``; a read-only store is read directly) and
    the number of workers. Raises ``ValueError`` when ``size`` < 1. Use
    :meth:`run` from a thread (it blocks); :meth:`start` warms the pool up
    (else the first query does), :meth:`close` stops it. Thread-safe."""

    def __init__(self, store: LineageStore, size: int = 2):
        if size < 1:
            raise ValueError("a SPARQL worker pool needs at least one worker")
        self.size = size
        self.snapshots = _Snapshots(store)
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()  # the warmest worker first
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self.restarts = 0  # workers replaced after a crash or an overrun

    def _spawn(self) -> _Worker:
        mine, theirs = _CONTEXT.Pipe(duplex=True)
        process = _CONTEXT.Process(target=worker_main, args=(theirs,), name="provkg-sparql-worker", daemon=True)
        process.start()
        theirs.close()  # else the worker's death would never read as end-of-file here
        worker = _Worker(process, mine)
        with self._lock:
            self._all.add(worker)
        return worker

    def start(self) -> None:
        """Start the workers (idempotent), after removing snapshots an earlier
        run left. Raises ``OSError`` when a process cannot be started."""
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
        self.snapshots.clear()
        for _ in range(self.size):
            self._idle.put(self._spawn())

    def pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        with self._lock:
            return [w.process.pid for w in self._all if w.process.is_alive()]

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        worker.conn.close()

    def _replace(self, worker: _Worker) -> _Worker:
        self._retire(worker)
        with self._lock:
            self.restarts += 1
        return self._spawn()

    def run(self, req: SparqlRequest, accept: str | None, deadline: float | None, timeout: float,
            max_bytes: int) -> tuple[bytes, str, int]:
        """Evaluate ``req`` in a worker and serialise its answer for ``accept``.

        ``deadline``: a ``time.monotonic()`` value or None; ``timeout``: the
        limit in seconds (for messages); ``max_bytes``: the largest answer, 0
        for none. Output: (body, media type, rows). Raises
        :class:`ProtocolError` (400/406 as :func:`provkg.sparql_protocol.execute`;
        500 when the query fails in the engine), :class:`EngineCrashed` (500)
        when the worker dies during the query, :class:`QueryTimeout` at the
        deadline (the worker is killed if it has not stopped by itself),
        :class:`ResultTooLarge` over ``max_bytes``, :class:`QueryBusy` when no
        worker frees up before the deadline, ``RuntimeError`` after :meth:`close`."""
        if self._closed:
            raise RuntimeError("the SPARQL worker pool is closed")
        self.start()
        try:
            worker = self._idle.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise QueryBusy(f"all {self.size} SPARQL workers are busy; try again later", retry_after=5) from None
        broken = False  # the worker must be replaced: it died, or overran and is killed
        try:
            if not worker.process.is_alive():  # died while idle (killed from outside): not this query's fault
                worker = self._replace(worker)
            try:
                snapshot = self.snapshots.current()
            except OSError as exc:
                raise ProtocolError(503, f"could not take a snapshot of the store for the query: {exc}") from None
            try:
                worker.conn.send((str(snapshot), req.query, tuple(req.default_graphs), tuple(req.named_graphs),
                                  accept, deadline, max_bytes, timeout))
                worker.snapshot = snapshot
                worker.queries += 1
                wait = None if deadline is None else max(0.0, deadline - time.monotonic()) + _GRACE
                if not worker.conn.poll(wait):
                    broken = True
                    raise query_timeout(timeout)
                reply = worker.conn.recv()
            except (EOFError, OSError):
                broken = True
                worker.process.join(2)
                raise EngineCrashed(_exit_text(worker.process.exitcode)) from None
            kind = reply[0]
            if kind == "ok":
                return reply[1], reply[2], reply[3]
            if kind == "protocol":
                raise ProtocolError(reply[1], reply[2])
            if kind == "limit":
                raise _limit_error(reply[1], reply[2], reply[3])
            if kind == "crashed":
                broken = True
                raise EngineCrashed(reply[1])
            raise ProtocolError(500, f"the query failed in the query engine: {reply[1]}")
        finally:
            self._give_back(worker, broken)

    def _give_back(self, worker: _Worker, broken: bool) -> None:
        if self._closed:
            self._retire(worker)
            return
        if broken:
            worker = self._replace(worker)
        self._idle.put(worker)
        with self._lock:
            held = {w.snapshot for w in self._all if w.snapshot is not None}
        self.snapshots.prune(held)

    def close(self) -> None:
        """Stop the workers (those busy are killed) and remove the snapshots. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._all)
        for worker in workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 2
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            self._retire(worker)
        self.snapshots.clear()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "its process stopped answering"
    if code < 0:
        try:
            return f"its process was ended by {signal.Signals(-code).name}"
        except ValueError:
            return f"its process was ended by signal {-code}"
    return f"its process exited with status {code}"


__all__ = ["SNAPSHOT_DIR", "EngineCrashed", "SparqlWorkers", "worker_main"]
