"""Limits, end to end on real ``provkg serve`` processes: body size (also once
gunzipped, also while streaming), events per batch, SPARQL result size,
query time and concurrent queries (a runaway query must not take the server
down), and the per-key rate limit (issue: a record you can defend)."""

from __future__ import annotations

import asyncio
import copy
import gzip
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from conftest import start_server, stop_server
from test_auth import create_key

from provkg.demo import demo_events
from provkg.limits import (LimitExceeded, Limits, QueryBusy, QueryGate, QueryTimeout, gunzip_bounded,
                           parse_size)

RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
SMALL = "ASK { ?s a <http://www.w3.org/ns/prov#Activity> }"


def fresh_event() -> dict:
    event = copy.deepcopy(next(e for e in demo_events() if e.get("eventType") == "START"))
    event["run"]["runId"] = str(uuid.uuid4())
    return event


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """The demo behind small limits, some set by option and some by environment variable."""
    data = tmp_path_factory.mktemp("limits") / "data"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PROVKG_MAX_BATCH", "5")
        env.setenv("PROVKG_MAX_RESULT_BYTES", "100KB")
        srv = start_server(data, "--demo", "--max-body", "64KiB", "--max-rows", "1000")
    yield srv
    stop_server(srv)


# -- request bodies ----------------------------------------------------------------------


def test_a_body_over_the_limit_gets_413_by_its_content_length(limited):
    r = httpx.post(limited.url + "/api/v1/lineage", content=b" " * 100_000,
                   headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413
    assert "64 KiB" in r.json()["error"] and "PROVKG_MAX_BODY" in r.json()["error"]
    # a SPARQL query too
    r = httpx.post(limited.url + "/sparql", data={"query": "ASK {}" + " " * 100_000}, timeout=30)
    assert r.status_code == 413


def test_413_comes_before_the_body_is_read(limited):
    """Announce 100 MB, send one byte: the answer comes at once, nothing is waited for."""
    url = urlparse(limited.url)
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/lineage HTTP/1.1\r\nHost: provkg\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000\r\n\r\n{")
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 5


def test_a_streamed_body_is_cut_off_at_the_limit(limited):
    sent = [0]

    def chunks():  # chunked transfer: no Content-Length to judge by
        for _ in range(100):
            sent[0] += 1
            yield b" " * 10_000

    r = httpx.post(limited.url + "/api/v1/lineage/batch", content=chunks(),
                   headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413
    assert "request body exceeds" in r.json()["error"]


def test_a_gzip_bomb_gets_413(limited):
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]", compresslevel=9)
    assert len(bomb) < 64 * 1024  # it passes the wire limit
    started = time.monotonic()
    r = httpx.post(limited.url + "/api/v1/lineage/batch", content=bomb,
                   headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, timeout=30)
    assert r.status_code == 413
    assert "decompressed request body exceeds" in r.json()["error"]
    assert time.monotonic() - started < 5
    # a real gzipped event under the limit is still accepted
    r = httpx.post(limited.url + "/api/v1/lineage", content=gzip.compress(httpx.Request(
        "POST", "/", json=fresh_event()).content), headers={"Content-Type": "application/json",
                                                           "Content-Encoding": "gzip"}, timeout=60)
    assert r.status_code == 201, r.text[:300]


def test_batches_are_limited_in_events(limited):
    r = httpx.post(limited.url + "/api/v1/lineage/batch", json=[fresh_event() for _ in range(6)], timeout=60)
    assert r.status_code == 413
    assert "6 events exceeds the limit of 5" in r.json()["error"]
    r = httpx.post(limited.url + "/api/v1/lineage/batch", json=[fresh_event() for _ in range(5)], timeout=120)
    assert r.status_code == 200 and r.json()["summary"]["successful"] == 5


# -- result size -------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["application/sparql-results+json", "text/csv", "text/tab-separated-values",
                                    "application/sparql-results+xml"])
def test_too_many_rows_get_413_asking_for_limit(limited, accept):
    # 1500 empty rows: over the row limit (1000), far under the byte limit (100 KB)
    r = httpx.post(limited.url + "/sparql", data={"query": "SELECT ?unbound WHERE { ?s ?p ?o } LIMIT 1500"},
                   headers={"Accept": accept}, timeout=60)
    assert r.status_code == 413
    assert "1500 rows, more than the limit of 1000" in r.json()["error"] and "LIMIT" in r.json()["error"]
    r = httpx.post(limited.url + "/sparql", data={"query": "SELECT ?unbound WHERE { ?s ?p ?o } LIMIT 1000"},
                   headers={"Accept": accept}, timeout=60)
    assert r.status_code == 200


def test_too_many_triples_from_construct_get_413(limited):
    r = httpx.post(limited.url + "/sparql", data={"query": "CONSTRUCT WHERE { ?s ?p ?o }"},
                   headers={"Accept": "application/n-triples"}, timeout=60)
    assert r.status_code == 413


def test_too_many_bytes_get_413(limited):
    # under the row limit, over the byte limit (PROVKG_MAX_RESULT_BYTES=100KB)
    r = httpx.post(limited.url + "/sparql", data={"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 999"}, timeout=60)
    assert r.status_code == 413
    assert "larger than 100 KB" in r.json()["error"] and "LIMIT" in r.json()["error"], r.json()


# -- query time and concurrency ------------------------------------------------------------


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _children(pid: int) -> set[int]:
    """Process ids of ``pid``'s children (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


def _cpu_seconds(pids: set[int]) -> float:
    """CPU time (user + system) the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def test_a_runaway_query_gets_503_its_worker_is_killed_and_the_server_keeps_answering(tmp_path):
    """/sparql queries run in worker processes: one that overruns gets 503 at
    the deadline, its worker is killed (the CPU is freed, not only the
    request) and replaced, and meanwhile every other request is answered."""
    timeout = 2.0
    srv = start_server(tmp_path / "data", "--demo", "--query-timeout", str(timeout), "--max-queries", "2")
    try:
        with httpx.Client(timeout=60) as http:
            assert http.post(srv.url + "/sparql", data={"query": SMALL}).status_code == 200
            workers = _children(srv.process.pid)
            assert len(workers) >= 2, workers
            results: dict[int, tuple[httpx.Response, float]] = {}

            def runaway(i: int) -> None:
                results[i] = _timed(lambda: http.post(srv.url + "/sparql", data={"query": RUNAWAY}))

            first = threading.Thread(target=runaway, args=(1,))
            first.start()
            time.sleep(0.3)  # the runaway is evaluating now
            health, t_health = _timed(lambda: http.get(srv.url + "/healthz"))
            small, t_small = _timed(lambda: http.post(srv.url + "/sparql", data={"query": SMALL}))
            post, t_post = _timed(lambda: http.post(srv.url + "/api/v1/lineage", json=fresh_event()))
            assert health.status_code == 200 and t_health < 1.0, t_health
            assert small.status_code == 200 and small.json()["boolean"] is True and t_small < 1.5, t_small
            assert post.status_code == 201 and t_post < 3.0, t_post
            first.join()
            answer, took = results[1]
            assert answer.status_code == 503, answer.text
            assert "2 s limit" in answer.json()["error"] and "PROVKG_QUERY_TIMEOUT" in answer.json()["error"]
            assert timeout - 0.1 <= took < timeout + 1.5, took

            # the worker that ran it is gone (killed), a new one took its place, and nothing burns CPU any more
            time.sleep(1.0)
            now = _children(srv.process.pid)
            assert workers - now and now - workers, (workers, now)
            before = _cpu_seconds(now)
            time.sleep(1.0)
            assert _cpu_seconds(now) - before < 0.3

            # two runaways at once take both workers; both are stopped, and the next query is answered at once
            both = [threading.Thread(target=runaway, args=(i,)) for i in (2, 3)]
            for t in both:
                t.start()
            for t in both:
                t.join()
            assert [results[i][0].status_code for i in (2, 3)] == [503, 503]
            small, t_small = _timed(lambda: http.post(srv.url + "/sparql", data={"query": SMALL}))
            assert small.status_code == 200 and small.json()["boolean"] is True and t_small < 1.5, (small.text, t_small)
            health, t_health = _timed(lambda: http.get(srv.url + "/healthz"))
            assert health.status_code == 200 and t_health < 1.0
            post, t_post = _timed(lambda: http.post(srv.url + "/api/v1/lineage", json=fresh_event()))
            assert post.status_code == 201 and t_post < 5.0
            assert http.get(srv.url + "/api/v1/stats").status_code == 200
    finally:
        stop_server(srv)
    assert srv.process.returncode is not None


def test_named_queries_wait_for_a_slot_then_get_503_busy():
    """The query gate (named queries and reports run in its threads, in the
    server's process): a query that finds every slot held waits up to the
    timeout, then gets QueryBusy with Retry-After; one that overruns gets
    QueryTimeout while its thread runs on."""
    gate = QueryGate(0.5, 1)
    release = threading.Event()

    async def scenario() -> tuple[BaseException | None, BaseException | None]:
        first = asyncio.ensure_future(gate.run(lambda deadline: release.wait(5)))
        await asyncio.sleep(0.05)
        errors: list[BaseException | None] = []
        for call in (gate.run(lambda deadline: True), first):
            try:
                await call
                errors.append(None)
            except LimitExceeded as exc:
                errors.append(exc)
        release.set()
        return errors[0], errors[1]

    busy, overran = asyncio.run(scenario())
    assert isinstance(busy, QueryBusy) and busy.retry_after and "query slots are busy" in busy.message
    assert isinstance(overran, QueryTimeout) and "0.5 s limit" in overran.message


def test_a_slow_streaming_query_stops_at_its_deadline(tmp_path):
    """A query that streams its results is stopped at the deadline (its slot freed):
    after the 503 the next query gets a slot."""
    srv = start_server(tmp_path / "data", "--demo", "--query-timeout", "1", "--max-queries", "1",
                       "--max-rows", "0", "--max-result-bytes", "0")
    try:
        with httpx.Client(timeout=60) as http:
            r, took = _timed(lambda: http.post(srv.url + "/sparql", data={
                "query": "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f }"}, headers={"Accept": "text/csv"}))
            assert r.status_code == 503 and took < 3
            time.sleep(0.5)
            r = http.post(srv.url + "/sparql", data={"query": SMALL})
            assert r.status_code == 200, r.text
    finally:
        stop_server(srv)


# -- rate limit --------------------------------------------------------------------------


def test_each_key_is_rate_limited_with_retry_after(tmp_path):
    data = tmp_path / "data"
    first, second = create_key(data, "reader", "busy-dashboard"), create_key(data, "reader", "other")
    srv = start_server(data, "--rate-limit", "2", "--rate-burst", "3")
    try:
        with httpx.Client(timeout=30) as http:
            codes = [http.get(srv.url + "/api/v1/queries", headers={"Authorization": f"Bearer {first}"})
                     for _ in range(6)]
            assert [r.status_code for r in codes[:3]] == [200, 200, 200]
            limited = [r for r in codes[3:] if r.status_code == 429]
            assert limited, [r.status_code for r in codes]
            assert int(limited[0].headers["Retry-After"]) >= 1
            assert "rate limit" in limited[0].json()["error"] and "busy-dashboard" in limited[0].json()["error"]
            # another key has its own bucket; open routes are not limited
            assert http.get(srv.url + "/api/v1/queries", headers={"Authorization": f"Bearer {second}"}
                            ).status_code == 200
            assert all(http.get(srv.url + "/healthz").status_code == 200 for _ in range(10))
            time.sleep(int(limited[0].headers["Retry-After"]))
            assert http.get(srv.url + "/api/v1/queries", headers={"Authorization": f"Bearer {first}"}
                            ).status_code == 200
    finally:
        stop_server(srv)


# -- the settings themselves -------------------------------------------------------------


def test_sizes_and_limits_parse_and_refuse_nonsense(tmp_path):
    assert parse_size("2MiB") == 2 * 1024 * 1024 and parse_size("50MB") == 50_000_000
    assert parse_size("512k") == 512_000 and parse_size("1024") == 1024
    with pytest.raises(ValueError):
        parse_size("lots")
    with pytest.raises(ValueError):
        Limits(max_queries=0)
    assert gunzip_bounded(gzip.compress(b"a" * 10) + gzip.compress(b"b" * 10), 100) == b"a" * 10 + b"b" * 10
    from provkg.limits import BodyTooLarge

    with pytest.raises(BodyTooLarge):
        gunzip_bounded(gzip.compress(b"a" * 101), 100)
    from test_auth import provkg

    done = provkg("serve", "--data", str(tmp_path / "d"), "--max-body", "huge")
    assert done.returncode == 2 and "not a size" in done.stderr
    done = provkg("serve", "--data", str(tmp_path / "d"), env={"PROVKG_AUTH": "maybe"})
    assert done.returncode == 2 and "PROVKG_AUTH" in done.stderr
