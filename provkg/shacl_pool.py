"""Per-event SHACL validation in worker processes.

pyshacl is pure Python, so in one process it runs on one core whatever the
number of request threads. :class:`ShaclPool` runs it in worker processes
(``concurrent.futures.ProcessPoolExecutor``, spawned, not forked: the parent
holds RocksDB and server threads). Each worker harvests the ingest shapes
once; per event it receives the data graph (the event's triples and their
neighbourhood, as N-Triples) and the focus nodes, and returns the
:class:`provkg.shacl.ValidationOutcome` — the same pyshacl run on the same
triples as in-process validation, so the same results.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable

import rdflib
from pyoxigraph import NamedNode, Quad, RdfFormat, Store, serialize

_worker = None  # the worker process's EventShapesValidator
_log = logging.getLogger("provkg.shacl")


def _init(shapes_ntriples: str, parent: int) -> None:
    global _worker
    from .shacl import EventShapesValidator, shapes_graph

    _worker = EventShapesValidator(shapes_graph().parse(data=shapes_ntriples, format="nt"))
    # a pool worker holds both ends of its task queue, so it never sees the
    # parent go: if the parent is killed, end instead of waiting forever
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="parent-watch").start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _check(data: bytes, focus: list[str]):
    assert _worker is not None
    # parsed straight into the store pyshacl reads, with no Python object per quad (2.3 -> 1.8 ms for 700 quads)
    store = Store()
    store.load(data, format=RdfFormat.N_QUADS)
    return _worker.check_store(store, [NamedNode(f) for f in focus])


class ShaclPool:
    """``workers`` processes validating events against one ingest shapes graph.

    ``fallback`` validates in this process when the pool has broken (a worker
    died); the pool is then started again for the next event."""

    def __init__(self, shapes: rdflib.Graph, workers: int,
                 fallback: Callable[[Iterable[Quad], Iterable[NamedNode]], object]):
        self._shapes = shapes.serialize(format="nt")
        self._workers = workers
        self._fallback = fallback
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:  # started on first use: commands that never validate pay nothing
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=_init, initargs=(self._shapes, os.getpid()))
            return self._executor

    def submit(self, triples: list[Quad], focus: set[NamedNode]) -> Future:
        """Validate in a worker; the future holds the ValidationOutcome (or
        raises :class:`provkg.shacl.ShapesError`), or is cancelled if
        :meth:`close` ends the pool before the validation started."""
        data = serialize(triples, format=RdfFormat.N_QUADS)
        names = sorted(f.value for f in focus)
        out: Future = Future()
        try:
            inner = self._pool().submit(_check, data, names)
        except (BrokenProcessPool, RuntimeError):
            return self._locally(triples, focus)

        def settle(done: Future) -> None:
            if done.cancelled():  # the pool was shut down with the task still queued
                out.cancel()
                return
            error = done.exception()
            if isinstance(error, BrokenProcessPool):
                _log.error("a SHACL worker process died; validating in the server process and restarting the pool")
                self._restart()
                local = self._locally(triples, focus)
                error, value = local.exception(), None if local.exception() else local.result()
            else:
                value = None if error else done.result()
            if error is not None:
                out.set_exception(error)
            else:
                out.set_result(value)

        inner.add_done_callback(settle)
        return out

    def _locally(self, triples: list[Quad], focus: set[NamedNode]) -> Future:
        out: Future = Future()
        try:
            out.set_result(self._fallback(triples, focus))
        except Exception as exc:  # the ShapesError the caller expects, delivered through the future
            out.set_exception(exc)
        return out

    def _restart(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None

    def close(self) -> None:
        """Stop the worker processes."""
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
