"""Limits that keep one client (or one query) from exhausting the service.

- request body size (``max_body``, default 2 MiB; also the size of a gzip
  body once decompressed, so a zip bomb is refused): 413;
- events per batch (``max_batch``, default 1000): 413;
- SPARQL query time (``query_timeout``, default 30 s): 503. A ``/sparql``
  query runs in a worker process (:mod:`provkg.sparql_worker`), which is
  killed at the deadline if it has not stopped by itself, so its slot and
  its CPU are freed then. pyoxigraph cannot cancel a running query, but it
  releases the GIL while evaluating, so named queries and reports run in a
  thread of their own while the event loop keeps answering; when the time is
  up the client gets 503; such a query that computes everything before its
  first result runs on to its end in its thread, and keeps its slot meanwhile;
- queries running at once (``max_queries``, default 4): a request waits for a
  slot up to the query timeout, then gets 503 with Retry-After;
- SPARQL result size (``max_rows`` rows, default 100,000; ``max_result_bytes``,
  default 50 MB): 413, use LIMIT;
- requests per key (token bucket: ``rate`` per second, default 100, bursts up
  to ``burst``, default 200): 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import re
import threading
import traceback
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

T = TypeVar("T")

MiB = 1024 * 1024
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024, "m": 1000 ** 2, "mb": 1000 ** 2,
          "mi": MiB, "mib": MiB, "g": 1000 ** 3, "gb": 1000 ** 3, "gi": 1024 ** 3, "gib": 1024 ** 3}


def parse_size(text: str | int) -> int:
    """A size in bytes from ``2097152``, ``2MiB``, ``50MB``, ``512k``...
    Raises ``ValueError``."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"not a size: {text!r} (use bytes, or a number with KB, MB, GB, KiB, MiB, GiB)")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def human_size(n: int) -> str:
    """``2 MiB``, ``50 MB``, ``100 KB``, else ``N bytes``: the unit the limit was likely set in."""
    for unit, size in (("GiB", 1024 ** 3), ("GB", 1000 ** 3), ("MiB", MiB), ("MB", 1000 ** 2), ("KiB", 1024),
                       ("KB", 1000)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


@dataclass(frozen=True)
class Limits:
    """The service's limits; 0 turns a limit off (except ``max_queries``)."""

    max_body: int = 2 * MiB
    max_batch: int = 1000
    query_timeout: float = 30.0
    max_queries: int = 4
    max_rows: int = 100_000
    max_result_bytes: int = 50 * 1000 * 1000
    rate: float = 100.0
    burst: int = 200
    sparql_workers: int = 2  # processes evaluating /sparql queries (at most max_queries of them)

    def __post_init__(self) -> None:
        for name in ("max_body", "max_batch", "max_rows", "max_result_bytes", "burst"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.query_timeout < 0 or self.rate < 0:
            raise ValueError("query timeout and rate must be >= 0")
        if self.max_queries < 1:
            raise ValueError("max_queries must be >= 1")
        if self.sparql_workers < 1:
            raise ValueError("sparql_workers must be >= 1")

    def as_dict(self) -> dict[str, Any]:
        return {"maxBody": self.max_body, "maxBatch": self.max_batch, "queryTimeout": self.query_timeout,
                "maxQueries": self.max_queries, "maxRows": self.max_rows, "maxResultBytes": self.max_result_bytes,
                "rate": self.rate, "burst": self.burst, "sparqlWorkers": self.sparql_workers}


class LimitExceeded(Exception):
    """A limit was hit: ``status`` and a message saying which and what to do."""

    status = 413

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class BodyTooLarge(LimitExceeded):
    status = 413


class ResultTooLarge(LimitExceeded):
    status = 413


class QueryTimeout(LimitExceeded):
    status = 503


class QueryBusy(LimitExceeded):
    status = 503


class RateLimited(LimitExceeded):
    status = 429


def body_too_large(limit: int, what: str = "request body") -> BodyTooLarge:
    return BodyTooLarge(f"{what} exceeds the limit of {human_size(limit)} ({limit} bytes; "
                        "PROVKG_MAX_BODY / --max-body); send smaller requests or batches")


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body (all members), refusing more than ``limit``
    bytes of output without producing them (:class:`BodyTooLarge`).
    Raises ``zlib.error`` / ``EOFError`` for bad gzip."""
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        budget = limit + 1 - len(out) if limit else 0
        chunk = d.decompress(rest, budget) if limit else d.decompress(rest)
        out += chunk
        if limit and len(out) > limit:
            raise body_too_large(limit, "decompressed request body")
        if not d.eof:
            if d.unconsumed_tail:  # output budget reached with input left
                raise body_too_large(limit, "decompressed request body")
            raise EOFError("gzip stream ended before its end marker")
        rest = d.unused_data
        if rest and not rest.lstrip(b"\x00"):
            break  # trailing padding
    return bytes(out)


class TokenBuckets:
    """Per-client token buckets: ``rate`` tokens a second up to ``burst``.
    Used from the event loop only (no locking needed, but cheap to have)."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = max(burst, 1)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str) -> float:
        """Take one token for ``who``: 0 if allowed, else seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[who] = (tokens - 1, now)
                return 0.0
            self._buckets[who] = (tokens, now)
            if len(self._buckets) > 10_000:  # forget clients whose buckets are full again
                horizon = self.burst / self.rate
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < horizon}
            return (1 - tokens) / self.rate

    def refuse(self, who: str, label: str) -> RateLimited | None:
        wait = self.take(who)
        if not wait:
            return None
        seconds = max(1, math.ceil(wait))
        return RateLimited(f"rate limit for {label}: {self.rate:g} requests/s, bursts of {self.burst} "
                           f"(PROVKG_RATE_LIMIT / PROVKG_RATE_BURST); retry after {seconds} s", retry_after=seconds)


class GuardedWriter:
    """A binary sink for pyoxigraph's ``serialize``: it stops the
    serialisation (raising) once the deadline has passed or more than
    ``max_bytes`` were written."""

    def __init__(self, deadline: float | None, max_bytes: int, timeout: float):
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.buffer = io.BytesIO()
        self.size = 0

    def write(self, data: bytes) -> int:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise query_timeout(self.timeout)
        self.size += len(data)
        if self.max_bytes and self.size > self.max_bytes:
            raise ResultTooLarge(f"the result is larger than {human_size(self.max_bytes)} "
                                 "(PROVKG_MAX_RESULT_BYTES / --max-result-bytes): add LIMIT to the query, "
                                 "or select fewer variables")
        return self.buffer.write(data)

    def flush(self) -> None:
        pass

    def getvalue(self) -> bytes:
        return self.buffer.getvalue()


def query_timeout(seconds: float) -> QueryTimeout:
    return QueryTimeout(f"the query ran longer than the {seconds:g} s limit (PROVKG_QUERY_TIMEOUT / "
                        "--query-timeout) and was abandoned: narrow it (fewer unbound triple patterns, LIMIT)")


def count_rows(body: bytes, media_type: str) -> int:
    """Rows in a serialised SPARQL answer: solutions of a SELECT, 1 for an
    ASK, triples of a CONSTRUCT / DESCRIBE."""
    from pyoxigraph import QueryBoolean, QueryResultsFormat, RdfFormat, parse, parse_query_results

    media = media_type.split(";", 1)[0].strip()
    if media == "text/csv":  # lossy: pyoxigraph cannot parse it back, the csv module can count it
        return max(0, sum(1 for _ in csv.reader(io.StringIO(body.decode("utf-8"), newline=""))) - 1)
    fmt = QueryResultsFormat.from_media_type(media)
    if fmt is not None:
        parsed = parse_query_results(body, fmt)
        return 1 if isinstance(parsed, QueryBoolean) else sum(1 for _ in parsed)
    rdf = RdfFormat.from_media_type(media)
    return sum(1 for _ in parse(body, rdf)) if rdf is not None else 0


class QueryGate:
    """Runs blocking queries in threads, at most ``slots`` at a time,
    answering :class:`QueryTimeout` after ``timeout`` seconds.

    A slot is freed when its thread ends, not when its request is answered,
    so queries that overran cannot pile up beyond ``slots`` threads. Work
    that cannot be stopped (an in-process pyoxigraph query) gets a daemon
    thread of its own, which a stuck query may keep; work that ends by itself
    soon after its deadline (``bounded=True``: a query handed to a worker
    process that is killed at the deadline) runs in one of ``slots`` reused
    threads, which saves a thread start per query (and its tail latency)."""

    def __init__(self, timeout: float, slots: int):
        self.timeout = timeout
        self.slots = slots
        self._free = asyncio.Semaphore(slots)
        self.running = 0
        # as many threads as slots: a slot is taken before a thread is asked for, so none ever waits for one
        self._threads = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="provkg-query")

    async def run(self, work: Callable[[float | None], T], bounded: bool = False) -> T:
        """``await gate.run(lambda deadline: ...)``: the result of ``work``,
        called in another thread with its deadline (``time.monotonic()``
        value, or None without a timeout); ``bounded``: ``work`` returns soon
        after its deadline by itself (see the class). Raises
        :class:`QueryBusy` when no slot frees up in time,
        :class:`QueryTimeout` when the time is up, and what ``work`` raises."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        timeout = self.timeout or None
        try:
            await asyncio.wait_for(self._free.acquire(), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise QueryBusy(f"all {self.slots} query slots are busy (PROVKG_MAX_QUERIES / --max-queries); "
                            "queries that overran their time keep a slot until they end; try again later",
                            retry_after=5) from None
        deadline = started + timeout if timeout else None
        done: asyncio.Future[T] = loop.create_future()
        self.running += 1

        def settle(value: Any, error: BaseException | None) -> None:
            if not done.done():
                if error is not None:
                    done.set_exception(error)
                else:
                    done.set_result(value)

        def release() -> None:
            self.running -= 1
            self._free.release()

        def thread() -> None:
            value, error = None, None
            try:
                value = work(deadline)
            except BaseException as exc:  # handed to the waiting request
                error = exc
                # free what the failed frames hold (pyoxigraph results must be
                # dropped on the thread that made them, or the process aborts)
                chained: BaseException | None = exc
                while chained is not None:
                    traceback.clear_frames(chained.__traceback__)
                    chained = chained.__cause__ or chained.__context__
            try:
                loop.call_soon_threadsafe(settle, value, error)
                loop.call_soon_threadsafe(release)
            except RuntimeError:  # the event loop is gone (shutdown)
                pass

        if bounded:
            self._threads.submit(thread)
        else:
            threading.Thread(target=thread, name="provkg-query", daemon=True).start()
        try:
            if deadline is None:
                return await asyncio.shield(done)
            return await asyncio.wait_for(asyncio.shield(done), max(0.0, deadline - time.monotonic()))
        except (TimeoutError, asyncio.TimeoutError):
            # the result, if it ever comes, is dropped; retrieve a late exception so asyncio does not warn
            done.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise query_timeout(self.timeout) from None


__all__ = ["Limits", "LimitExceeded", "BodyTooLarge", "ResultTooLarge", "QueryTimeout", "QueryBusy", "RateLimited",
           "TokenBuckets", "GuardedWriter", "QueryGate", "gunzip_bounded", "parse_size", "human_size",
           "count_rows", "body_too_large", "query_timeout"]
