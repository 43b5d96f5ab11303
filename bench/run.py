"""The provkg benchmark harness (issue 6): ingest throughput, query latency and growth.

    python bench/run.py --events 10000 100000        # the standard run
    python bench/run.py --events 1000000             # on request
    python bench/run.py --quick                      # smoke run, ~2k events
    python bench/run.py --quick --profile            # + py-spy profile of the CLI ingest
    python bench/run.py --events 100000 --work DIR --keep            # keep the stores, then
    python bench/run.py --events 100000 --work DIR --keep --reuse    # measure again without re-ingesting

For each scale N it generates the workload (bench/workload.py) and measures:

1. bulk ingest of the first N events through ``provkg ingest FILE``
   (subprocess, the deployed CLI path) into a fresh store A: events/s,
   quads/s, peak RSS — the one full ingest of the scale (with ``--reuse``, a
   store A kept by an earlier run of the same workload instead: its rate
   from its event log's receipt times plus the store compaction that
   ``provkg ingest`` ends with, made on it now; marked in the results);
2. a real ``provkg serve`` with default settings (OpenLineage validation,
   SHACL flag, fsync'ed event log) except a larger ``--max-body`` so that
   batches of ``--batch`` events fit, on store B, a copy of A (its RDF store a checkpoint): the
   workload's next ``--batch-window`` events through
   ``POST /api/v1/lineage/batch``, then the next ``--http-window`` events as
   single posts from 16 concurrent clients; events/s, quads/s, per-post
   latency, the server's peak RSS (psutil, sampled);
3. the store's own limit: store A exported with ``provkg export --format
   nquads`` and loaded by ``pyoxigraph.Store(path).bulk_load`` in one call;
4. named-query latency (p50/p95/p99, ms) over many start nodes picked by
   SPARQL (predictions, source datasets, subjects, model versions with a
   fairness finding, consecutive model-version pairs): in-process
   (``run_named_query`` on store A opened read-only) and over HTTP on B;
   for the paged impact queries over HTTP also the next page after the
   first (the server keeps the whole answer until the next write);
5. at the smallest scale (<= ``--rdflib-max``): the same SPARQL on rdflib's
   in-memory Graph (the merged default graph), as a ratio to pyoxigraph;
6. disk bytes per event (du of the data directory), per-event SHACL time
   at ingest (a sample of the batch window's events, each validated as the
   next event against store A), and the growth across scales.

Results: ``bench/results/<UTC timestamp>.json`` and ``.md`` plus
``latest.json``/``latest.md``; the Markdown is printed too. Times are
seconds unless a field says ms; rates are per second; sizes are bytes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import httpx  # noqa: E402
import psutil  # noqa: E402
import pyoxigraph  # noqa: E402

import workload  # noqa: E402
from provkg.named_queries import (bind_values, load_named_queries, run_named_query, select_terms,  # noqa: E402
                                  walk_steps)
from provkg.collector import freeze_long_lived  # noqa: E402
from provkg.step_index import StepIndex  # noqa: E402
from provkg.store import LineageStore  # noqa: E402

RESULTS = REPO / "bench" / "results"
SPEC = Path(os.environ.get("PROVKG_OPENLINEAGE_SPEC", REPO.parent / "shared" / "openlineage" / "spec"))
QUERIES = ("prediction-provenance", "forward-impact", "erasure-impact", "bias-attribution", "version-diff")
TARGETS = {
    "http_single_events_per_s": 1000, "bulk_events_per_s": 5000,
    "prediction_provenance_p99_ms": (50, 100), "version_diff_p99_ms": (50, 100),
    "impact_p99_ms": 250, "shacl_median_ms": 5, "server_rss_bytes": 2 * 1024 ** 3,
}
P = "PREFIX prov: <http://www.w3.org/ns/prov#> PREFIX provkg: <https://w3id.org/provkg/ns#> " \
    "PREFIX dqv: <http://www.w3.org/ns/dqv#> "


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- measurement helpers ------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """Input: samples (any unit). Output: n, p50, p95, p99, max (nearest rank), mean."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    s = sorted(values)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]

    return {"n": len(s), "p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": s[-1],
            "mean": statistics.fmean(s)}


class RssSampler:
    """Samples the resident set size (bytes) of a process and its children every ``interval`` s;
    ``peak`` is the largest sum seen."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.proc.memory_info().rss + sum(c.memory_info().rss for c in self.proc.children(True))
                self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def du(path: Path) -> int:
    """Bytes on disk under ``path`` (allocated blocks, like ``du -s``)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def provkg_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "provkg", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PROVKG_OPENLINEAGE_SPEC": str(SPEC)}


def store_counts(data: Path) -> dict[str, int]:
    """Quads (in event graphs), distinct triples and event graphs of a store (opened read-only)."""
    store = LineageStore(data, read_only=True)
    try:
        return store.stats()
    finally:
        del store


# -- ingest ------------------------------------------------------------------------------------


def cli_ingest(jsonl: Path, data: Path, profile: Path | None = None) -> dict[str, Any]:
    """``provkg ingest jsonl --data data`` timed (wall s) with its peak RSS (bytes); optionally
    under ``py-spy record`` writing collapsed stacks to ``profile``."""
    cmd = provkg_cmd("ingest", str(jsonl), "--data", str(data))
    if profile is not None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        cmd = [spy, "record", "--format", "raw", "--rate", "50", "-o", str(profile), "--", *cmd]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with RssSampler(proc.pid) as rss:
        out, err = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"provkg ingest failed ({proc.returncode}):\n{out}\n{err[-3000:]}")
    summary = [line for line in out.splitlines() if "events accepted" in line]
    return {"seconds": seconds, "peak_rss": rss.peak, "summary": summary[-1].strip() if summary else "",
            "exit": proc.returncode}


def _run_key(event: dict[str, Any]) -> tuple:
    """What names an event whatever provkg did to it (pseudonyms, canonical key order)."""
    return (event.get("eventTime"), event.get("eventType"), (event.get("job") or {}).get("namespace"),
            (event.get("job") or {}).get("name"), (event.get("run") or {}).get("runId"))


KNOWN_LINES = 200  # workload lines kept at each end of the first n, to recognise a store kept by --keep


def write_workload(total: int, n: int, seed: int, path: Path) -> tuple[dict[int, str], list[str], int]:
    """Generate ``total`` events (bench/workload.py) and write the first ``n`` to ``path`` (JSON
    Lines), streamed: at 1M events the workload is ~9.5 GB, more than a machine may hold in memory.
    Output: the first and last :data:`KNOWN_LINES` of those ``n`` lines by position, the lines after
    them (the server's windows, kept in memory), and the bytes generated."""
    known: dict[int, str] = {}
    rest: list[str] = []
    nbytes = 0
    with path.open("w", encoding="utf-8") as fh:
        for i, event in enumerate(workload.generate(total, seed)):
            line = json.dumps(event, separators=(",", ":"))
            nbytes += len(line.encode()) + 1
            if i >= n:
                rest.append(line)
                continue
            fh.write(line + "\n")
            if i < KNOWN_LINES or i >= n - KNOWN_LINES:
                known[i] = line
    return known, rest, nbytes


def copy_data_dir(source: Path, target: Path) -> None:
    """A copy of a closed provkg data directory in which a server may write: the RDF store as a
    RocksDB checkpoint (``Store.backup``: hard links to the immutable table files on the same file
    system, so it costs little time or disk at any scale), the rest (event log, key store) copied."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("graph"))
    pyoxigraph.Store.read_only(str(source / "graph")).backup(str(target / "graph"))


def reused_ingest(data: Path, count_expected: int, known: dict[int, str],
                  check: int = KNOWN_LINES) -> dict[str, Any] | None:
    """The `provkg ingest` an earlier ``--keep`` run made of the same events into ``data``, if the store
    holds exactly them: one event-log entry per workload line (``count_expected``), the first and last
    ``check`` naming the same event times, jobs and runs as the workload's lines of those positions
    (``known``, from :func:`write_workload`). Output: as :func:`cli_ingest` (seconds from the log's
    first to last receipt time, that run's wall time less start-up; peak RSS not known), or None."""
    log_file = data / "log" / "events.jsonl"
    if not (data / "graph" / "CURRENT").exists() or not log_file.exists():
        return None
    head: list[str] = []
    tail: deque[str] = deque(maxlen=check)
    count = 0
    with log_file.open() as f:  # streamed: the log of 100k events is ~1 GB
        for line in f:
            if line.strip():
                count += 1
                (head if len(head) < check else tail).append(line)
    if count != count_expected:
        return None
    kept = list(zip(range(len(head)), head)) + list(zip(range(count - len(tail), count), tail))
    if any(i not in known or _run_key(json.loads(json.loads(line)["raw"])) != _run_key(json.loads(known[i]))
           for i, line in kept):
        return None
    times = [datetime.fromisoformat(json.loads(line)["receivedAt"]) for line in (kept[0][1], kept[-1][1])]
    return {"seconds": (times[1] - times[0]).total_seconds(), "peak_rss": None, "exit": 0,
            "summary": f"reused: {count} events received {times[0].isoformat(timespec='seconds')} to "
                       f"{times[1].isoformat(timespec='seconds')} by an earlier run", "reused_from": str(data),
            "received": [t.isoformat(timespec="seconds") for t in times]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``provkg serve`` subprocess on a loopback port (defaults, plus ``extra`` options)."""

    def __init__(self, data: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logfile = open(data.parent / f"{data.name}-serve.log", "w")
        self.proc = subprocess.Popen(provkg_cmd("serve", "--host", "127.0.0.1", "--port", str(self.port),
                                                "--data", str(data), *extra),
                                     env=env(), stdout=self.logfile, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"provkg serve exited early; see {self.logfile.name}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("provkg serve did not answer within 120 s")

    def wait_step_index(self, timeout: float = 1800) -> float:
        """Seconds until ``/healthz`` says the server's step index is ready (it builds after start-up)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if httpx.get(self.url + "/healthz", timeout=10).json().get("stepIndex") != "building":
                return time.monotonic() - started
            time.sleep(0.5)
        raise RuntimeError(f"the server's step index was not ready within {timeout} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logfile.close()


def post_batches(url: str, lines: list[str], chunk: int) -> dict[str, Any]:
    """POST the events (JSON texts) to /api/v1/lineage/batch in chunks of ``chunk``, one client.
    Output: wall seconds, events, per-status counts, per-batch latency (ms)."""
    statuses: Counter[str] = Counter()
    lat = []
    start = time.perf_counter()
    with httpx.Client(timeout=600) as client:
        for i in range(0, len(lines), chunk):
            body = "[" + ",".join(lines[i:i + chunk]) + "]"
            t0 = time.perf_counter()
            r = client.post(url + "/api/v1/lineage/batch", content=body,
                            headers={"Content-Type": "application/json"})
            lat.append(1000 * (time.perf_counter() - t0))
            if r.status_code != 200:
                raise RuntimeError(f"batch {i // chunk}: HTTP {r.status_code}: {r.text[:500]}")
            statuses.update(x["status"] for x in r.json()["results"])
    return {"seconds": time.perf_counter() - start, "events": len(lines), "statuses": dict(statuses),
            "batch_ms": percentiles(lat), "chunk": chunk}


def post_singles(url: str, lines: list[str], clients: int) -> dict[str, Any]:
    """POST each event to /api/v1/lineage from ``clients`` concurrent threads (one httpx client
    each), in emission order from a shared cursor. Output: wall seconds, per-status counts,
    per-post latency until the durable acknowledgement (ms)."""
    cursor = iter(range(len(lines)))
    lock = threading.Lock()
    codes: Counter[int] = Counter()
    lat: list[float] = []

    def worker() -> None:
        with httpx.Client(timeout=120) as client:
            while True:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                r = client.post(url + "/api/v1/lineage", content=lines[i], headers={"Content-Type": "application/json"})
                ms = 1000 * (time.perf_counter() - t0)
                with lock:
                    codes[r.status_code] += 1
                    lat.append(ms)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(worker) for _ in range(clients)]:
            f.result()
    return {"seconds": time.perf_counter() - start, "events": len(lines), "clients": clients,
            "http_status": {str(k): v for k, v in codes.items()}, "post_ms": percentiles(lat)}


# -- the store's own limit ----------------------------------------------------------------------


def raw_bulk_load(data: Path, work: Path) -> dict[str, Any]:
    """Export the store with ``provkg export --format nquads`` (timed) and bulk-load the file into
    a fresh pyoxigraph Store in one ``bulk_load`` call (timed). Output: seconds, quads, bytes."""
    nq = work / "export.nq"
    t0 = time.perf_counter()
    subprocess.run(provkg_cmd("export", "--format", "nquads", "-o", str(nq), "--data", str(data)),
                   env=env(), check=True, capture_output=True)
    export_s = time.perf_counter() - t0
    target = work / "raw-oxigraph"
    store = pyoxigraph.Store(str(target))
    t0 = time.perf_counter()
    store.bulk_load(path=str(nq), format=pyoxigraph.RdfFormat.N_QUADS)
    store.flush()
    load_s = time.perf_counter() - t0
    quads = len(store)
    del store
    out = {"export_seconds": export_s, "nquads_bytes": nq.stat().st_size, "load_seconds": load_s, "quads": quads,
           "quads_per_s": quads / load_s if load_s else None, "disk_bytes": du(target)}
    nq.unlink()
    shutil.rmtree(target, ignore_errors=True)
    return out


# -- start nodes and queries ------------------------------------------------------------------------


def _select(store: LineageStore, query: str) -> list[tuple[str, ...]]:
    rows = [tuple(t.value for t in s) for s in store.query(P + query)]
    return rows


def http_subjects(client: httpx.Client, url: str, k: int, seed: int) -> list[dict[str, str]]:
    """Up to ``k`` data subjects (pseudonym IRIs) of the server's own store, sampled (seeded)
    as :func:`start_nodes` samples them."""
    r = client.post(url + "/sparql", headers={"Accept": "application/sparql-results+json"}, data={
        "query": "SELECT DISTINCT ?s WHERE { ?v <https://w3id.org/provkg/ns#holdsDataOf> ?s }"})
    r.raise_for_status()
    subjects = sorted({b["s"]["value"] for b in r.json()["results"]["bindings"]})
    return [{"subject": s} for s in random.Random(seed).sample(subjects, min(k, len(subjects)))]


def start_nodes(store: LineageStore, k: int, seed: int) -> tuple[dict[str, list[dict[str, str]]], dict[str, int]]:
    """Up to ``k`` parameter sets per named query, sampled (seeded) from the store:
    predictions; raw source datasets (whose versions hold data subjects); data subjects;
    model versions with a fairness finding beyond threshold (else any); consecutive
    version pairs of one model. Output: (parameter sets per query, candidate counts)."""
    rng = random.Random(seed)

    def sample(rows: list, n: int = k) -> list:
        rows = sorted(set(rows))
        return rng.sample(rows, min(n, len(rows)))

    preds = _select(store, "SELECT ?p WHERE { ?p a provkg:Prediction }")
    sources = _select(store, "SELECT DISTINCT ?d WHERE { ?v provkg:holdsDataOf ?s ; prov:specializationOf ?d }")
    subjects = _select(store, "SELECT DISTINCT ?s WHERE { ?v provkg:holdsDataOf ?s }")
    biased = _select(store, "SELECT DISTINCT ?v WHERE { ?v a provkg:ModelVersion . ?m dqv:computedOn ?v ; "
                            "a provkg:FairnessMeasurement ; provkg:exceedsThreshold true }")
    versions = _select(store, "SELECT ?v ?m ?t WHERE { ?v a provkg:ModelVersion ; prov:specializationOf ?m ; "
                              "prov:generatedAtTime ?t }")
    by_model: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for v, m, t in versions:
        by_model[m].append((t, v))
    pairs = []
    for m, vs in by_model.items():
        vs.sort()
        pairs += [(vs[i][1], vs[i + 1][1]) for i in range(len(vs) - 1)]
    return {
        "prediction-provenance": [{"node": p} for (p,) in sample(preds)],
        "forward-impact": [{"node": d} for (d,) in sample(sources)],
        "erasure-impact": [{"subject": s} for (s,) in sample(subjects)],
        "bias-attribution": [{"node": v} for (v,) in sample(biased or [(v,) for v, _, _ in versions])],
        "version-diff": [{"a": a, "b": b} for a, b in sample(pairs)],
    }, {"predictions": len(preds), "source_datasets": len(sources), "subjects": len(subjects),
        "model_versions": len(versions), "biased_model_versions": len(biased), "version_pairs": len(pairs)}


def time_queries(run: Callable[[str, dict[str, str]], int], nodes: dict[str, list[dict[str, str]]],
                 budget_s: float, names: Iterable[str] = QUERIES) -> dict[str, Any]:
    """Run each named query once per parameter set (after one untimed warm-up), stopping a query
    once it has used ``budget_s`` seconds. Output per query: latency percentiles (ms), rows."""
    out = {}
    for name in names:
        params = nodes.get(name) or []
        lat, rows, errors = [], [], Counter()
        spent = 0.0
        if params:  # warm-up; a warm-up slower than a quarter of the budget counts as the only sample
            t0 = time.perf_counter()
            try:
                n_rows = run(name, params[0])
                warm = time.perf_counter() - t0
                if warm > budget_s / 4:
                    lat.append(1000 * warm)
                    rows.append(n_rows)
                    spent = budget_s + 1
            except Exception as exc:  # noqa: BLE001 - report, do not stop the run
                errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
        for p in params:
            if spent > budget_s:
                break
            t0 = time.perf_counter()
            try:
                rows.append(run(name, p))
            except Exception as exc:  # noqa: BLE001
                errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
                continue
            finally:
                dt = time.perf_counter() - t0
                spent += dt
            lat.append(1000 * dt)
        out[name] = {"ms": percentiles(lat), "rows": percentiles([float(r) for r in rows]),
                     "errors": dict(errors), "planned": len(params)}
    return out


def _inprocess_child(data: str, name: str, params: list[dict[str, str]], out: str, budget: float) -> None:
    store = LineageStore(data, read_only=True)
    index = StepIndex(load_named_queries().values())
    built = None
    if name in index.forms:  # as the server answers it: from the step index, built from the store first
        before = psutil.Process().memory_info().rss
        index.build(store)
        built = {**index.stats, "rss_added_bytes": psutil.Process().memory_info().rss - before}
    freeze_long_lived()  # as `provkg serve` does once it is started and its index built (provkg/collector.py)
    result = time_queries(inprocess_runner(store, index), {name: params}, budget, names=(name,))
    if built is not None:
        result[name]["step_index"] = built
    Path(out).write_text(json.dumps(result))


def inprocess_queries(data: Path, nodes: dict[str, list[dict[str, str]]], budget: float,
                      work: Path) -> dict[str, Any]:
    """In-process latency of each named query: ``run_named_query`` on the store opened read-only,
    in a child process per query kind that is killed after ``2 * budget`` seconds (pyoxigraph
    cannot cancel a query). Output as :func:`time_queries`; a killed kind has ``killed_after_s``."""
    out: dict[str, Any] = {}
    ctx = mp.get_context("spawn")
    for name in QUERIES:
        f = work / f"inproc-{name}.json"
        f.unlink(missing_ok=True)
        child = ctx.Process(target=_inprocess_child, args=(str(data), name, nodes.get(name, []), str(f), budget))
        child.start()
        child.join(2 * budget + 30)
        if child.is_alive():
            child.kill()
            child.join()
            out[name] = {"ms": percentiles([]), "rows": percentiles([]), "errors": {},
                         "planned": len(nodes.get(name, [])), "killed_after_s": 2 * budget + 30}
        else:
            out[name] = json.loads(f.read_text())[name] if f.exists() else {
                "ms": percentiles([]), "rows": percentiles([]), "errors": {"child failed": 1}, "planned": 0}
        log(f"  in-process {name}: {out[name]['ms']}")
    return out


def inprocess_runner(store: LineageStore, index: StepIndex | None = None) -> Callable[[str, dict[str, str]], int]:
    named = load_named_queries()
    return lambda name, params: len(run_named_query(store, named[name], params, index=index).rows)


def http_runner(url: str, client: httpx.Client) -> Callable[[str, dict[str, str]], int]:
    def run(name: str, params: dict[str, str]) -> int:
        # a new walk each time: the server would answer a paged query asked again from its cache
        r = client.get(f"{url}/api/v1/queries/{name}", params=params, headers={"Cache-Control": "no-cache"})
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        return r.json()["count"]
    return run


PAGED = ("forward-impact", "erasure-impact")


def next_pages(url: str, client: httpx.Client, nodes: dict[str, list[dict[str, str]]],
               budget_s: float) -> dict[str, Any]:
    """For each paged query (``PAGED``): per start node, its first page (untimed), then the page its
    ``next`` names, timed: what a client paging through an impact waits for after the first page (the
    server keeps the whole answer until the next write). Stops a query once the pages used ``budget_s``
    seconds. Output per query: as :func:`time_queries` (latency of the next page, its rows)."""
    out = {}
    for name in PAGED:
        lat, rows, errors, spent = [], [], Counter(), 0.0
        for p in nodes.get(name) or []:
            if spent > budget_s:
                break
            t0 = time.perf_counter()
            first = client.get(f"{url}/api/v1/queries/{name}", params=p)
            if first.status_code != 200:
                errors[f"HTTP {first.status_code}"] += 1
                continue
            after = first.json()["next"]
            if after is not None:
                t1 = time.perf_counter()
                page = client.get(f"{url}/api/v1/queries/{name}", params={**p, "offset": str(after)})
                if page.status_code == 200:
                    lat.append(1000 * (time.perf_counter() - t1))
                    rows.append(float(page.json()["count"]))
                else:
                    errors[f"HTTP {page.status_code}"] += 1
            spent += time.perf_counter() - t0
        out[name] = {"ms": percentiles(lat), "rows": percentiles(rows), "errors": dict(errors),
                     "planned": len(nodes.get(name) or [])}
    return out


# -- rdflib baseline (child process, killable) ------------------------------------------------------


def _rdflib_select(g: Any) -> Callable[[str], tuple[list[str], list[list[Any]]]]:
    """rdflib's answer with its terms as pyoxigraph's (what :func:`walk_steps` reads)."""
    import rdflib

    def term(t: Any) -> Any:
        if t is None or isinstance(t, rdflib.URIRef):
            return t if t is None else pyoxigraph.NamedNode(str(t))
        if isinstance(t, rdflib.BNode):
            return pyoxigraph.BlankNode(str(t))
        if t.language:
            return pyoxigraph.Literal(str(t), language=t.language)
        return pyoxigraph.Literal(str(t), datatype=pyoxigraph.NamedNode(str(t.datatype)) if t.datatype else None)

    def select(text: str) -> tuple[list[str], list[list[Any]]]:
        res = g.query(text)
        return [str(v) for v in res.vars], [[term(t) for t in row] for row in res]
    return select


def _run_planned(select: Callable[[str], tuple[list[str], list[list[Any]]]], item: str | dict[str, Any]) -> int:
    """Rows of one planned query: a text, or a ``@step`` walk (the same walk provkg runs)."""
    if isinstance(item, dict):
        return len(walk_steps(select, item["step"], {}, pyoxigraph.NamedNode(item["start"]), item["depth"], None)[1])
    return len(select(item)[1])


def _rdflib_child(nt: str, oxi_data: str, plan: list[tuple[str, list[Any]]], out: str, budget: float) -> None:
    import rdflib

    result: dict[str, Any] = {"oxigraph": {}}
    store = LineageStore(oxi_data, read_only=True)
    for name, texts in plan:  # pyoxigraph's raw SPARQL, the same query texts
        lat = []
        for text in texts:
            s = time.perf_counter()
            _run_planned(partial(select_terms, store), text)
            lat.append(1000 * (time.perf_counter() - s))
        result["oxigraph"][name] = lat
        Path(out).write_text(json.dumps(result))
    del store
    t0 = time.perf_counter()
    g = rdflib.Graph()
    g.parse(nt, format="nt")
    result["load_seconds"] = time.perf_counter() - t0
    result["triples"] = len(g)
    Path(out).write_text(json.dumps(result))
    for name, texts in plan:
        lat = []
        spent = 0.0
        n = None
        for text in texts:
            if spent > budget:
                break
            s = time.perf_counter()
            try:
                n = _run_planned(_rdflib_select(g), text)
            except Exception as exc:  # e.g. LATERAL (an Oxigraph extension) is not rdflib's SPARQL
                result[name] = {"ms": [], "last_rows": None, "error": f"{type(exc).__name__}: {exc}"[:200]}
                break
            dt = time.perf_counter() - s
            spent += dt
            lat.append(1000 * dt)
        result.setdefault(name, {"ms": lat, "last_rows": n})
        Path(out).write_text(json.dumps(result))


def rdflib_baseline(store: LineageStore, nodes: dict[str, list[dict[str, str]]], work: Path, per_query: int,
                    budget: float, timeout: float) -> dict[str, Any]:
    # both sides run in a child process killed after ``timeout`` s: a query cannot be cancelled
    """The same SPARQL (named query text and bindings) on rdflib's in-memory Graph holding the
    merged default graph, against pyoxigraph's raw SPARQL on the same start nodes.
    Output per query: rdflib and pyoxigraph median ms and their ratio; rdflib load time."""
    named = load_named_queries()
    nt = work / "default.nt"
    nt.write_bytes(store.store.dump(format=pyoxigraph.RdfFormat.N_TRIPLES, from_graph=pyoxigraph.DefaultGraph()))
    plan = []
    for name in QUERIES:
        q = named[name]
        texts = []
        for params in nodes.get(name, [])[:per_query]:
            # the text provkg itself runs: parameters as a VALUES row (a diff: one row per side)
            subs, values = q.bind(params)
            if q.step:  # walked a step at a time, from the start node (its only parameter in the text)
                texts.append({"step": q.text, "start": values[q.traversal_from], "depth": values.get("depth")})
                continue
            sides = ([{pyoxigraph.Variable("side"): pyoxigraph.Literal(side),
                       pyoxigraph.Variable("version"): subs[pyoxigraph.Variable(v)]}
                      for side, v in zip(("a", "b"), q.diff)] if q.diff else None)
            texts.append(bind_values(q.text, subs, sides))
        plan.append((name, texts))
    out_file = work / "rdflib.json"
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=_rdflib_child, args=(str(nt), str(store.path), plan, str(out_file), budget))
    child.start()
    with RssSampler(child.pid) as rss:
        child.join(timeout)
        timed_out = child.is_alive()
        if timed_out:
            child.kill()
            child.join()
    got = json.loads(out_file.read_text()) if out_file.exists() else {}
    nt.unlink(missing_ok=True)
    res: dict[str, Any] = {"load_seconds": got.get("load_seconds"), "triples": got.get("triples"),
                           "timed_out": timed_out, "peak_rss": rss.peak, "queries": {}}
    for name in QUERIES:
        r = got.get(name, {}).get("ms") or []
        o = got.get("oxigraph", {}).get(name, [])[:len(r)] if r else []
        med_r = statistics.median(r) if r else None
        med_o = statistics.median(o) if o else None
        res["queries"][name] = {"n": len(r), "rdflib_p50_ms": med_r, "oxigraph_p50_ms": med_o,
                                "ratio": (med_r / med_o) if med_r and med_o else None,
                                "rdflib_max_ms": max(r) if r else None,
                                "unfinished": len(plan[QUERIES.index(name)][1]) - len(r),
                                "error": got.get(name, {}).get("error")}
    return res


# -- per-event SHACL at ingest, against the store (internal API, optional) ---------------------------


def shacl_sample(data: Path, lines: list[str], n: int) -> dict[str, Any]:
    """Per-event SHACL validation time (ms) at ingest: ``n`` of the events that come after the
    store's own (``lines``: the batch window, which store A lacks), each validated as the next
    event to arrive would be: the neighbourhood read from A (opened read-only) and pyshacl over
    the event's new nodes (focus), in this process. Each is validated against A alone (not
    after the sampled events before it). Output: ``ms`` percentiles and ``focus`` (nodes per
    event) percentiles. Uses provkg internals (EventMapper via Ingestor, EventShapesValidator);
    reports an error instead of failing."""
    try:
        from provkg.ingest import Ingestor, canonical_hash
        from provkg.iris import IriMinter
        from provkg.shacl import EventShapesValidator, Shapes
        from provkg.validation import EventValidator

        store = LineageStore(data, read_only=True)
        shapes = EventShapesValidator(Shapes())
        ing = Ingestor(store, EventValidator(), IriMinter(), shapes, "flag")
        step = max(1, len(lines) // n)
        lat, focus_sizes = [], []
        for line in lines[::step][:n]:
            event = json.loads(line)
            mapped = ing.mapper.map(event, canonical_hash(event), datetime.now(timezone.utc))
            t0 = time.perf_counter()
            triples, focus = shapes.context(mapped.quads, store.store)
            if focus:
                shapes.check(triples, focus)
            lat.append(1000 * (time.perf_counter() - t0))
            focus_sizes.append(len(focus))
        del ing, store
        return {"ms": percentiles(lat), "focus": percentiles(focus_sizes), "events": len(lat)}
    except Exception as exc:  # noqa: BLE001 - internals may move; the rest of the run stands
        return {"error": f"{type(exc).__name__}: {exc}"}


# -- profile -------------------------------------------------------------------------------------------


def summarise_profile(raw: Path, top: int = 15) -> dict[str, list[tuple[str, float]]]:
    """Collapsed stacks from ``py-spy record --format raw`` -> the top functions by self and by
    inclusive share of samples (%)."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.rsplit(" (", 1)[0] + " (" + f.rsplit(" (", 1)[1].split(":")[0].split("/")[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    if not total:
        return {"self": [], "inclusive": []}
    return {"samples": total,
            "self": [(f, round(100 * c / total, 1)) for f, c in own.most_common(top)],
            "inclusive": [(f, round(100 * c / total, 1)) for f, c in incl.most_common(top + 30)
                          if not f.endswith(_LAUNCHER_FILES)][:top]}


# frames of the interpreter and the CLI framework above provkg's own code
_LAUNCHER_FILES = ("(<frozen runpy>)", "(main.py)", "(core.py)", "(__main__.py)")


# -- one scale -----------------------------------------------------------------------------------------


# bytes on disk per event in bench/results/20261122T084947Z: the workload's JSON and a compacted data
# directory at 100k events (10k take more per event), the raw bulk load's N-Quads export and
# pyoxigraph's own store at 10k. Lower bounds: RocksDB needs room to compact on top.
DISK_PER_EVENT = {"workload": 9_200, "store": 80_000, "export": 99_000, "raw_store": 57_000}


def disk_needed(scales: Iterable[int], args: argparse.Namespace, work: Path) -> int:
    """At least how many bytes of free disk ``work`` needs for a run at ``scales`` with ``args``
    (:data:`DISK_PER_EVENT`): a scale's workload file, store A (none if ``--reuse`` finds one) and
    the windows added to B (a checkpoint of A, see :func:`copy_data_dir`), and at scales up to
    ``--raw-max`` the export and store of the raw bulk load; with ``--keep`` the stores and
    workload files of every scale stay, otherwise only one scale's at a time."""
    per = DISK_PER_EVENT
    kept, transient = 0, 0
    for n in scales:
        windows = min(args.batch_window, max(1, n // 5)) + min(args.http_window, max(1, n // 5))
        store = 0 if args.reuse and (work / f"A-{n}" / "graph" / "CURRENT").exists() else n * per["store"]
        raw = n * (per["export"] + per["raw_store"]) if n <= args.raw_max else 0
        if args.keep:
            kept += store + n * per["workload"] + windows * per["store"]
            transient = max(transient, raw)
        else:
            transient = max(transient, store + windows * per["store"] + max(n * per["workload"], raw))
    return kept + transient


def latest_ingest_rate() -> float | None:
    """The `provkg ingest` events/s of the largest scale in bench/results/latest.json, if any."""
    try:
        scales = json.loads((RESULTS / "latest.json").read_text())["scales"]
        return float(max(scales, key=lambda s: s["events"])["cli_ingest"]["events_per_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_scale(n: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every measurement at one scale (``n`` events). Output: a dict of results (see module doc)."""
    res: dict[str, Any] = {"events": n}
    # the workload goes on past n: the batch and single-post windows are its next events
    batch_window, window = min(args.batch_window, max(1, n // 5)), min(args.http_window, max(1, n // 5))
    total = n + batch_window + window
    first = work / f"workload-{n}.jsonl"  # the first n events: what `provkg ingest` loads
    t0 = time.perf_counter()
    known, lines, nbytes = write_workload(total, n, args.seed, first)  # lines: the events after the first n
    size = workload.EstateSize.for_events(total)
    res["workload"] = {"seconds": time.perf_counter() - t0, "bytes": nbytes, "events": total,
                       "pipelines": size.pipelines, "sources": size.sources, "days_max": size.days,
                       "seed": args.seed}
    log(f"{n}: workload {total} events, {nbytes / 1e6:.0f} MB in {res['workload']['seconds']:.0f} s")

    # 1. provkg ingest (CLI) of the first n events into store A
    a = work / f"A-{n}"
    prof = work / f"profile-{n}.txt" if args.profile else None
    cli = reused_ingest(a, n, known) if args.reuse else None
    if cli is None:
        shutil.rmtree(a, ignore_errors=True)  # a store that does not hold exactly these events
        cli = cli_ingest(first, a, prof)
    else:  # today's `provkg ingest` ends with a compaction; one made before it did not (a no-op if done)
        t0 = time.perf_counter()
        LineageStore(a).optimize()
        cli["compaction_s"] = time.perf_counter() - t0
        # a store an earlier run compacted compacts in no time now: that run's time is the ingest's
        marker = a / "bench-compaction.json"
        if marker.exists():
            earlier = json.loads(marker.read_text())
            if earlier["seconds"] > cli["compaction_s"]:
                cli.update(compaction_s=earlier["seconds"], compaction_from=earlier["run"])
        else:
            marker.write_text(json.dumps({"seconds": cli["compaction_s"], "run": args.stamp}))
        cli["seconds"] += cli["compaction_s"]
    if not args.keep:
        first.unlink()
    # the server's store B starts as a copy of A (the n events), so each scale is ingested once
    b = work / f"B-{n}"
    shutil.rmtree(b, ignore_errors=True)  # an earlier run's (--keep), with its windows posted
    copy_data_dir(a, b)
    counts = store_counts(a)
    cli.update(events_per_s=n / cli["seconds"], quads=counts["quads"], quads_per_s=counts["quads"] / cli["seconds"],
               triples=counts["triples"], graphs=counts["graphs"], validation_reports=counts["validationReports"])
    res["cli_ingest"] = cli
    res["disk"] = {"data_dir_bytes": du(a), "graph_bytes": du(a / "graph"), "log_bytes": du(a / "log")}
    res["disk"]["bytes_per_event"] = res["disk"]["data_dir_bytes"] / n
    log(f"{n}: provkg ingest {cli['events_per_s']:.0f} ev/s, {cli['quads']} quads ({cli['summary']})")
    if prof is not None and prof.exists():
        res["profile"] = summarise_profile(prof)

    # 4a. in-process queries on A (read-only), start nodes from A
    store = LineageStore(a, read_only=True)
    nodes, population = start_nodes(store, args.query_samples, args.seed)
    res["start_nodes"] = population
    res["queries_inprocess"] = inprocess_queries(a, nodes, args.query_budget, work)
    log(f"{n}: in-process queries done")
    if n <= args.rdflib_max:
        fast = {q: v for q, v in nodes.items() if not _too_slow(res["queries_inprocess"][q], args.query_budget)}
        res["rdflib"] = rdflib_baseline(store, fast, work, args.rdflib_samples, args.query_budget,
                                        args.rdflib_timeout)
        log(f"{n}: rdflib baseline done")
    del store
    res["shacl_per_event"] = shacl_sample(a, lines[:batch_window], args.shacl_samples)

    # 3. the store's own limit (it loads into an empty store, so a smaller scale's figure holds for a larger one)
    if n <= args.raw_max:
        res["raw_bulk_load"] = raw_bulk_load(a, work)
        res["raw_bulk_load"]["provkg_cli_to_raw_ratio"] = (cli["quads_per_s"] / res["raw_bulk_load"]["quads_per_s"])
        log(f"{n}: raw bulk load {res['raw_bulk_load']['quads_per_s']:.0f} quads/s")
    if not args.keep:
        shutil.rmtree(a, ignore_errors=True)

    # 2. server on B (a copy of A): the batch window, then the single-post window, then HTTP queries
    server = Server(b, "--max-body", args.max_body)
    try:
        with RssSampler(server.proc.pid) as rss:
            # the windows measure the server as it runs once its step index is built (in the background)
            res["server_step_index_ready_s"] = server.wait_step_index()
            log(f"{n}: server step index ready after {res['server_step_index_ready_s']:.1f} s")
            before = server_stats(server.url)
            batch = post_batches(server.url, lines[:batch_window], args.batch)
            after_batch = server_stats(server.url)
            quads = after_batch["quads"] - before["quads"]
            batch.update(window=batch_window, store_events_before=n, events_per_s=batch["events"] / batch["seconds"],
                         quads=quads, quads_per_s=quads / batch["seconds"])
            log(f"{n}: batch {batch['events_per_s']:.0f} ev/s (window {batch_window})")
            single = post_singles(server.url, lines[batch_window:], args.clients)
            final = server_stats(server.url)
            quads = final["quads"] - after_batch["quads"]
            single.update(window=window, store_events_before=n + batch_window,
                          events_per_s=window / single["seconds"], quads=quads, quads_per_s=quads / single["seconds"])
            log(f"{n}: HTTP single {single['events_per_s']:.0f} ev/s ({args.clients} clients, window {window})")
            res["ingest_peak_rss"] = rss.peak
            with httpx.Client(timeout=600) as client:
                # a kind whose in-process run was killed is not sent: the server would compute it on after its 503
                http_nodes = {q: ([] if _too_slow(res["queries_inprocess"][q], args.query_budget) else v)
                              for q, v in nodes.items()}
                # data subjects are stored under pseudonyms, random per data directory: B's own
                if http_nodes["erasure-impact"]:
                    http_nodes["erasure-impact"] = http_subjects(client, server.url, len(http_nodes["erasure-impact"]),
                                                                 args.seed)
                res["queries_http"] = time_queries(http_runner(server.url, client), http_nodes, args.query_budget)
                res["queries_http_next_page"] = next_pages(server.url, client, http_nodes, args.query_budget)
            log(f"{n}: HTTP queries done")
            res["server_peak_rss"] = rss.peak
    finally:
        server.stop()
    res["batch_ingest"] = batch
    res["http_single"] = single
    res["disk"]["server_data_dir_bytes"] = du(b)
    if not args.keep:
        shutil.rmtree(b, ignore_errors=True)
    return res


def _step_index(built: dict[str, Any] | None) -> str:
    if not built:
        return "— (walked)"
    return (f"{built['buildSeconds']:.1f} / {built['nodes']:,} / {built['edges']:,} / "
            f"{built['rss_added_bytes'] / 2 ** 20:.0f}")


def _too_slow(inproc: dict[str, Any], budget: float) -> bool:
    """A query kind killed in-process, or whose in-process p50 exceeds the budget or the
    server's default 30 s query timeout (it would answer 503 and compute on)."""
    p50 = inproc["ms"]["p50"]
    return bool(inproc.get("killed_after_s")) or (p50 is not None and p50 > 1000 * min(budget, 30.0))


def server_stats(url: str) -> dict[str, int]:
    return httpx.get(url + "/api/v1/stats", timeout=600).json()


# -- output ------------------------------------------------------------------------------------------


def machine_facts() -> dict[str, Any]:
    """Cores, memory, platform, versions of Python and the libraries, provkg's git commit."""
    from importlib.metadata import version

    def v(pkg: str) -> str | None:
        try:
            return version(pkg)
        except Exception:  # noqa: BLE001
            return None

    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "provkg", "queries", "shapes"],
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = None, None
    return {"cpus": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "memory_bytes": psutil.virtual_memory().total, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
            "pyoxigraph": v("pyoxigraph"), "pyshacl": v("pyshacl"), "rdflib": v("rdflib"), "provkg": v("provkg"),
            "openlineage-python": v("openlineage-python"), "httpx": v("httpx"),
            "git_commit": commit, "git_dirty_provkg": dirty}


def _f(x: Any, nd: int = 0) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def log_rates(log_file: Path, step: int) -> list[dict[str, Any]]:
    """Ingest rate per ``step`` events from the receipt times of an event log:
    [{from, to, seconds, events_per_s}] (how the rate changes as the store grows)."""
    with log_file.open(encoding="utf-8") as lines:  # streamed: ~11 KB an event
        times = [datetime.fromisoformat(json.loads(line)["receivedAt"]) for line in lines if line.strip()]
    out = []
    for i in range(0, len(times) - 1, step):
        j = min(i + step, len(times) - 1)
        dt = (times[j] - times[i]).total_seconds()
        out.append({"from": i, "to": j, "seconds": dt, "events_per_s": (j - i) / dt if dt else None})
    return out


def markdown(doc: dict[str, Any]) -> str:
    """The run as Markdown tables (one column per scale)."""
    scales = doc["scales"]
    head = "| | " + " | ".join(f"{s['events']:,} events" for s in scales) + " |\n|---|" + "---|" * len(scales)

    def row(label: str, get: Callable[[dict], Any], nd: int = 0) -> str:
        vals = []
        for s in scales:
            try:
                vals.append(_f(get(s), nd))
            except (KeyError, TypeError, ZeroDivisionError):
                vals.append("—")
        return f"| {label} | " + " | ".join(vals) + " |"

    m = doc["machine"]
    out = [f"# provkg benchmark, {doc['started']}", "",
           f"Machine: {m['cpus_usable']} cores, {m['memory_bytes'] / 2 ** 30:.1f} GiB, {m['platform']}; "
           f"Python {m['python']}, pyoxigraph {m['pyoxigraph']}, pyshacl {m['pyshacl']}, rdflib {m['rdflib']}, "
           f"provkg {m['provkg']} @ {str(m['git_commit'])[:10]}{' (+ local changes)' if m['git_dirty_provkg'] else ''}. "
           f"Workload seed {doc['args']['seed']}; wall time {doc['seconds'] / 60:.1f} min.", "",
           "## Ingest", "", head,
           row("estate: pipelines / sources", lambda s: f"{s['workload']['pipelines']} / {s['workload']['sources']}"),
           row("quads per event", lambda s: s["cli_ingest"]["quads"] / s["events"], 0),
           row("`provkg ingest` (CLI, bulk) events/s",
               lambda s: _f(s["cli_ingest"]["events_per_s"], 1) + (" (earlier run †)" if s["cli_ingest"].get("reused_from") else "")),
           row("`provkg ingest` quads/s", lambda s: s["cli_ingest"]["quads_per_s"]),
           row("batch endpoint events/s (chunks)", lambda s: f"{s['batch_ingest']['events_per_s']:.1f} "
                                                             f"({s['batch_ingest']['chunk']})"),
           row("batch endpoint quads/s", lambda s: s["batch_ingest"]["quads_per_s"]),
           row("HTTP single events/s (16 clients, window)",
               lambda s: f"{s['http_single']['events_per_s']:.1f} (last {s['http_single']['window']:,})"),
           row("HTTP single quads/s", lambda s: s["http_single"]["quads_per_s"]),
           row("HTTP single post p50 / p99 ms", lambda s: f"{s['http_single']['post_ms']['p50']:.0f} / "
                                                         f"{s['http_single']['post_ms']['p99']:.0f}"),
           row("raw pyoxigraph bulk_load quads/s", lambda s: s["raw_bulk_load"]["quads_per_s"]),
           row("CLI / raw bulk_load (quads/s ratio)", lambda s: f"{100 * s['raw_bulk_load']['provkg_cli_to_raw_ratio']:.2f} %"),
           row("per-event SHACL at ingest (next events vs the store), p50 / p95 ms",
               lambda s: f"{s['shacl_per_event']['ms']['p50']:.1f} / {s['shacl_per_event']['ms']['p95']:.1f}"),
           row("disk bytes per event (data dir)", lambda s: s["disk"]["bytes_per_event"]),
           row("peak RSS `provkg ingest` MiB", lambda s: s["cli_ingest"]["peak_rss"] / 2 ** 20),
           row("peak RSS server MiB", lambda s: s["server_peak_rss"] / 2 ** 20),
           row("step index (impact queries): build s / nodes / edges / MiB added",
               lambda s: _step_index(s["queries_inprocess"].get("forward-impact", {}).get("step_index"))),
           row("server: step index ready after s", lambda s: _f(s.get("server_step_index_ready_s"), 1)),
           "", "## Named-query latency, ms (p50 / p95 / p99; n start nodes)", "", head]
    def latency(r: dict[str, Any]) -> str:
        if r.get("killed_after_s"):
            return f"> {r['killed_after_s'] * 1000:,.0f} (stopped, n=0)"
        if not r["ms"]["n"]:
            return "not sent (too slow in-process)" if not r["planned"] else f"— (errors: {len(r['errors'])})"
        return "{p50:,.1f} / {p95:,.1f} / {p99:,.1f} (n={n})".format(**r["ms"]) + (" errors" if r["errors"] else "")

    for q in QUERIES:
        for mode, key in (("in-process", "queries_inprocess"), ("HTTP", "queries_http")):
            out.append(row(f"{q} {mode}", lambda s, q=q, key=key: latency(s[key][q])))
    if any("queries_http_next_page" in s for s in scales):  # runs before session 8 did not page
        for q in PAGED:
            out.append(row(f"{q} HTTP, the next page (start nodes with more than one page)",
                           lambda s, q=q: latency(s["queries_http_next_page"][q])
                           if "queries_http_next_page" in s else "—"))
    rd = [s for s in scales if "rdflib" in s]
    if rd:
        s = rd[0]
        out += ["", f"## rdflib in-memory baseline at {s['events']:,} events", "",
                f"rdflib Graph of the merged graph: {_f(s['rdflib']['triples'])} triples loaded in "
                f"{_f(s['rdflib']['load_seconds'], 0)} s, peak RSS {s['rdflib']['peak_rss'] / 2 ** 20:,.0f} MiB"
                f"{' (timed out: partial)' if s['rdflib']['timed_out'] else ''}. Same query text and bindings; "
                "pyoxigraph here is the raw SPARQL evaluation on the same start nodes.", "",
                "| query | n | rdflib p50 ms | pyoxigraph p50 ms | rdflib / pyoxigraph |", "|---|---|---|---|---|"]
        if not any(r["n"] for r in s["rdflib"]["queries"].values()):
            out.append("| (none run within the budget) | | | | |")
        for q, r in s["rdflib"]["queries"].items():
            unfinished = f" ({r['unfinished']} not run)" if r["unfinished"] else ""
            if r.get("error"):
                unfinished += f" (rdflib: {r['error'].splitlines()[0][:80]})"
            out.append(f"| {q} | {r['n']}{unfinished} | "
                       f"{_f(r['rdflib_p50_ms'], 1)} | {_f(r['oxigraph_p50_ms'], 1)} | "
                       f"{_f(r['ratio'], 1) + '×' if r['ratio'] else '—'} |")
    out += ["", "## Targets (2 cores)", "", "| target | " + " | ".join(f"{s['events']:,}" for s in scales) + " |",
            "|---|" + "---|" * len(scales)]
    t = TARGETS

    def _p99(s: dict, key: str, q: str) -> float | None:
        r = s[key][q]
        return float("inf") if r.get("killed_after_s") else r["ms"]["p99"]

    def ok(v: float | None, limit: float, above: bool = False) -> str:
        if v is None:
            return "—"
        if v == float("inf"):
            return "❌ stopped (too slow)"
        good = v >= limit if above else v <= limit
        return f"{'✅' if good else '❌'} {v:,.1f}"

    out += [
        row("HTTP single ≥ 1,000 ev/s", lambda s: ok(s["http_single"]["events_per_s"], t["http_single_events_per_s"], True)),
        row("batch ≥ 5,000 ev/s", lambda s: ok(s["batch_ingest"]["events_per_s"], t["bulk_events_per_s"], True)),
        row("`provkg ingest` ≥ 5,000 ev/s", lambda s: ok(s["cli_ingest"]["events_per_s"], t["bulk_events_per_s"], True)),
        row("prediction-provenance p99 ≤ 50 ms in-process", lambda s: ok(_p99(s, "queries_inprocess", "prediction-provenance"), 50)),
        row("prediction-provenance p99 ≤ 100 ms HTTP", lambda s: ok(_p99(s, "queries_http", "prediction-provenance"), 100)),
        row("version-diff p99 ≤ 50 ms in-process", lambda s: ok(_p99(s, "queries_inprocess", "version-diff"), 50)),
        row("version-diff p99 ≤ 100 ms HTTP", lambda s: ok(_p99(s, "queries_http", "version-diff"), 100)),
        row("forward-impact (source) p99 ≤ 250 ms", lambda s: ok(_p99(s, "queries_inprocess", "forward-impact"), 250)),
        row("erasure-impact p99 ≤ 250 ms", lambda s: ok(_p99(s, "queries_inprocess", "erasure-impact"), 250)),
        row("per-event SHACL median ≤ 5 ms", lambda s: ok(s["shacl_per_event"]["ms"]["p50"], 5)),
        row("peak server RSS ≤ 2 GiB (MiB)", lambda s: ok(s["server_peak_rss"] / 2 ** 20, 2048)),
    ]
    if len(scales) > 1:
        base = scales[0]
        out += ["", f"## Growth (relative to {base['events']:,} events)", "", head]

        def rel(get: Callable[[dict], float]) -> Callable[[dict], str]:
            return lambda s: f"{get(s) / get(base):.2f}×"
        out += [row("events", rel(lambda s: s["events"])),
                row("`provkg ingest` events/s", rel(lambda s: s["cli_ingest"]["events_per_s"])),
                row("HTTP single events/s", rel(lambda s: s["http_single"]["events_per_s"])),
                row("prediction-provenance p50 in-process", rel(lambda s: s["queries_inprocess"]["prediction-provenance"]["ms"]["p50"])),
                row("version-diff p50 in-process", rel(lambda s: s["queries_inprocess"]["version-diff"]["ms"]["p50"])),
                row("forward-impact p50 in-process", rel(lambda s: s["queries_inprocess"]["forward-impact"]["ms"]["p50"])),
                row("erasure-impact p50 in-process", rel(lambda s: s["queries_inprocess"]["erasure-impact"]["ms"]["p50"])),
                row("disk bytes per event", rel(lambda s: s["disk"]["bytes_per_event"])),
                row("peak server RSS", rel(lambda s: s["server_peak_rss"]))]
    prof = next((s["profile"] for s in scales if s.get("profile")), None)
    if prof:
        out += ["", f"## Profile of `provkg ingest` (py-spy, {prof.get('samples', 0):,} samples)", "",
                "| function (inclusive) | % | | function (self) | % |", "|---|---|---|---|---|"]
        for (fi, pi), (fs, ps) in zip(prof["inclusive"], prof["self"]):
            out.append(f"| `{fi}` | {pi} | | `{fs}` | {ps} |")
    for s in scales:
        if s["cli_ingest"].get("reused_from"):
            first, last = s["cli_ingest"]["received"]
            out += ["", f"† {s['events']:,} events: the store was ingested by an earlier run kept with `--keep` and "
                        f"reused (`--reuse`); its `provkg ingest` rate is from its event log's receipt times "
                        f"({first} to {last}), plus the compaction today's `provkg ingest` ends with "
                        f"({_f(s['cli_ingest'].get('compaction_s'), 1)} s, "
                        + (f"made on it by run {s['cli_ingest']['compaction_from']})"
                           if s["cli_ingest"].get("compaction_from") else "made on it in this run)")
                        + ". Everything else at this scale was measured in this run."]
    for u in doc.get("unfinished", []):  # a scale stopped during its ingest: the rate as the store grew
        out += ["", f"## {u['events']:,} events: not finished", "", u["reason"], "",
                "| events in the store | events/s over the segment |", "|---|---|"]
        out += [f"| {g['from']:,} → {g['to']:,} | {_f(g['events_per_s'], 1)} |" for g in u["segments"]]
    out += ["", "Notes: each scale N is ingested once, by `provkg ingest` (store A). The server runs on a copy "
                "of A; the batch window (the workload's next events, batches of "
                f"{doc['args']['batch']}) and then the single-post window (the events after those) are posted "
                "on top of the N events it holds. The server runs with default settings except "
                f"`--max-body {doc['args']['max_body']}` so that batches fit. Latencies are wall clock at the "
                "client, one query at a time. See docs/benchmark.md."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, nargs="+", default=[10_000, 100_000], help="scales (events)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2,000 events, few samples")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch-window", type=int, default=2000,
                    help="events posted through the batch endpoint after the first N (at most N/5)")
    ap.add_argument("--http-window", type=int, default=1000,
                    help="events posted singly after the batch window (at most N/5)")
    ap.add_argument("--clients", type=int, default=16, help="concurrent single-event clients")
    ap.add_argument("--batch", type=int, default=500, help="events per batch request")
    ap.add_argument("--max-body", default="16MiB", help="server --max-body (a 500-event batch is ~5 MB)")
    ap.add_argument("--query-samples", type=int, default=50, help="start nodes per named query")
    ap.add_argument("--query-budget", type=float, default=20.0, help="seconds per query kind and mode")
    ap.add_argument("--rdflib-max", type=int, default=10_000, help="rdflib baseline at scales up to this")
    ap.add_argument("--rdflib-samples", type=int, default=10, help="start nodes per query on rdflib")
    ap.add_argument("--rdflib-timeout", type=float, default=300.0, help="seconds for the whole rdflib baseline")
    ap.add_argument("--shacl-samples", type=int, default=200, help="events for the per-event SHACL sample")
    ap.add_argument("--profile", action="store_true", help="py-spy profile of the first scale's `provkg ingest`")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep stores and workload files")
    ap.add_argument("--reuse", action="store_true",
                    help="with --work: a store A-N kept there by an earlier --keep run of the same workload is "
                         "not ingested again (its ingest rate is read from its event log; peak RSS unknown)")
    ap.add_argument("--raw-max", type=int, default=10 ** 9,
                    help="raw pyoxigraph bulk_load at scales up to this many events (default: every scale)")
    ap.add_argument("--no-save", action="store_true", help="print only; do not write bench/results")
    ap.add_argument("--skip-disk-check", action="store_true",
                    help="start even if the work folder's disk has less free space than the run needs at least")
    ap.add_argument("--rates", type=Path, default=None,
                    help="print events/s per 10k events from the receipt times of an event log (events.jsonl)")
    ap.add_argument("--render", type=Path, default=None,
                    help="only write the Markdown table of a saved results JSON (e.g. a .partial.json) beside it")
    args = ap.parse_args(argv)
    if args.reuse and (args.work is None or not args.keep):
        ap.error("--reuse needs --work (the folder an earlier --keep run used) and --keep (not to delete its stores)")
    if args.quick:
        args.events = [2000]
        args.query_samples = min(args.query_samples, 15)
        args.rdflib_samples = min(args.rdflib_samples, 3)
        args.shacl_samples = min(args.shacl_samples, 50)
        args.http_window = min(args.http_window, 400)
        args.batch_window = min(args.batch_window, 400)
    if args.rates:  # receipt times in an event log -> events/s per segment (a scale stopped mid-ingest)
        print(json.dumps(log_rates(args.rates, 10_000), indent=2))
        return
    if args.render:
        doc = json.loads(args.render.read_text())
        args.render.with_suffix(".md").write_text(markdown(doc))
        print(markdown(doc))
        return
    where = args.work or Path(tempfile.gettempdir())
    existing = next(p for p in (where, *where.parents) if p.exists())
    need, free = disk_needed(sorted(args.events), args, where), shutil.disk_usage(existing).free
    log(f"disk: the run needs at least {need / 1e9:.1f} GB in {where} ({free / 1e9:.1f} GB free)")
    if need > free and not args.skip_disk_check:
        ap.error(f"not enough disk: at least {need / 1e9:.1f} GB needed in {where}, {free / 1e9:.1f} GB free "
                 f"(about {(DISK_PER_EVENT['workload'] + DISK_PER_EVENT['store']) // 1000} KB an event for the "
                 "workload and store A; give --work a folder on a larger disk, --raw-max to skip the raw bulk "
                 "load at large scales, or --skip-disk-check)")
    rate = latest_ingest_rate()
    if rate and not args.reuse:
        minutes = sum(args.events) / rate / 60
        log(f"`provkg ingest` of {sum(args.events):,} events takes about "
            + (f"{minutes / 60:.1f} h" if minutes >= 90 else f"{minutes:.0f} min")
            + f" at the latest results' {rate:.0f} events/s (the rate falls as the store grows)")
    started = datetime.now(timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "")
    t0 = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="provkg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "machine": machine_facts(),
                           "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                           "targets": TARGETS, "scales": []}
    try:
        for i, n in enumerate(sorted(args.events)):
            scale_args = argparse.Namespace(**{**vars(args), "profile": args.profile and i == 0, "stamp": stamp})
            doc["scales"].append(run_scale(n, scale_args, work))
            doc["seconds"] = time.perf_counter() - t0
            if not args.no_save:  # the scales so far, should a later one not finish (--render makes the table)
                (RESULTS / f"{stamp}.partial.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    (RESULTS / f"{stamp}.partial.json").unlink(missing_ok=True)
    names = () if args.no_save else (stamp,) if args.quick else (stamp, "latest")
    for name in names:  # the JSON first: it holds every figure even if the Markdown fails
        (RESULTS / f"{name}.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    md = markdown(doc)
    print(md)
    for name in names:
        (RESULTS / f"{name}.md").write_text(md)
    if names:
        log(f"results: bench/results/{stamp}.json, .md and latest.*")


if __name__ == "__main__":
    main()
