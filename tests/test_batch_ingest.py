"""The batch path (one fsync and one store transaction per chunk; SHACL sees
the chunk's earlier events as if stored) gives exactly what one-at-a-time
ingestion gives: the same statuses, the same SHACL results, the same graph,
the same log; and concurrent posts of one event through the group commit
store it once."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pyoxigraph import CanonicalizationAlgorithm, Dataset, NamedNode, RdfFormat, parse

from conftest import SPEC, load_events, valid_files
from test_shacl_ingest import ends_before_start
from provkg.demo import demo_events
from provkg.entailment import default_entailer
from provkg.eventlog import EventLog, verify_chain
from provkg.ingest import Ingestor
from provkg.iris import IriMinter
from provkg.mapping import EventMapper
from provkg.shacl import EventShapesValidator, Shapes
from provkg.store import LineageStore
from provkg.validation import EventValidator
from provkg.vocab import PROVKG

VALIDATOR = EventValidator(SPEC)
SHAPES = EventShapesValidator(Shapes())


@pytest.fixture(scope="module")
def pooled():
    """Per-event SHACL in two worker processes, as `provkg serve` and `ingest` run it."""
    shapes = EventShapesValidator(Shapes(), workers=2)
    yield shapes
    shapes.pool.close()


def _ingestor(path, shapes: EventShapesValidator = SHAPES, bulk_min_quads: int | None = None) -> Ingestor:
    store = LineageStore(path) if bulk_min_quads is None else LineageStore(path, bulk_min_quads=bulk_min_quads)
    return Ingestor(store, VALIDATOR, IriMinter(), shapes, "flag", log=EventLog(path / "log"))


def _canonical(store: LineageStore) -> list[str]:
    dataset = Dataset(q for q in parse(store.dump(RdfFormat.N_QUADS), format=RdfFormat.N_QUADS)
                      if q.predicate != PROVKG.receivedAt)
    dataset.canonicalize(CanonicalizationAlgorithm.RDFC_1_0)
    return sorted(str(q) for q in dataset)


def _events() -> list[dict]:
    corpus = [e for f in valid_files() for e in load_events(f)]
    # duplicates inside one chunk and across chunks, and an invalid event in the middle
    broken = copy.deepcopy(corpus[0])
    broken["eventTime"] = 12
    # a run that ends before it starts: only visible to SHACL with the START
    # (an earlier event of the same chunk) in view
    start = next(e for e in demo_events() if e["eventType"] == "START")
    start, end = copy.deepcopy(start), copy.deepcopy(start)
    start["run"]["runId"] = end["run"]["runId"] = "0195d1a4-5b1e-7f00-8000-0000000b0a7c"
    end["eventType"], end["eventTime"] = "COMPLETE", "2020-01-01T00:00:00Z"
    # (corpus[34:40] again: duplicates of the chunk before, which may still be committing)
    return demo_events() + corpus[:40] + corpus[34:40] + [broken] + corpus[:3] + [start, end] + demo_events()[:2]


def _shacl(result) -> list[tuple]:
    return sorted((r.severity, r.focus, r.message) for r in (result.shacl.results if result.shacl else []))


@pytest.mark.parametrize("chunk,workers,bulk", [(9, False, False), (500, False, False), (9, True, False),
                                                (9, False, True)])
def test_batches_give_what_single_events_give(tmp_path, chunk, workers, bulk, request):
    events = _events()
    one = _ingestor(tmp_path / "one")
    singles = [one.ingest(e, source="x") for e in events]
    # with workers, pyshacl runs in other processes while the batch goes on;
    # with bulk, every chunk is written by the bulk loader (at scale: chunks of 50k quads and more)
    batch = _ingestor(tmp_path / "batch", request.getfixturevalue("pooled") if workers else SHAPES,
                      1 if bulk else None)
    batched = list(batch.ingest_batch(((e, "x") for e in events), chunk=chunk))
    assert [r.status for r in batched] == [r.status for r in singles]
    assert {"accepted", "duplicate", "rejected"} <= {r.status for r in singles}
    assert [(r.graph, r.triples, _shacl(r)) for r in batched] == [(r.graph, r.triples, _shacl(r)) for r in singles]
    assert any(_shacl(r) for r in singles)  # some events do get SHACL results, and the same ones
    assert _canonical(batch.store) == _canonical(one.store)
    if bulk:  # what `provkg ingest` does after bulk writes: compact the files, keeping every quad
        assert batch.store.bulk_writes > 0
        batch.store.optimize()
        assert _canonical(batch.store) == _canonical(one.store)
    # the same log, entry for entry (receipt times aside), and an intact chain
    strip = [(e.seq, e.content_hash, e.raw) for e in one.log.entries()]
    assert [(e.seq, e.content_hash, e.raw) for e in batch.log.entries()] == strip
    assert verify_chain(batch.log)[1] == []


def test_concurrent_posts_of_one_event_store_it_once(tmp_path, pooled):
    ingestor = _ingestor(tmp_path / "store", pooled)
    events = demo_events()[:6]
    results: list = []
    lock = threading.Lock()

    def post(event: dict) -> None:
        r = ingestor.ingest(copy.deepcopy(event))
        with lock:
            results.append(r)

    threads = [threading.Thread(target=post, args=(events[i % len(events)],)) for i in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [r for r in results if r.status == "accepted"]
    assert len(results) == 48 and len(accepted) == len(events)
    assert {r.graph for r in accepted} == {r.graph for r in results}
    assert sum(1 for _ in ingestor.log.entries()) == len(events) == ingestor.store.stats()["graphs"]
    assert verify_chain(ingestor.log)[1] == []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_shacl_workers_end_when_their_parent_is_killed(tmp_path):
    # a process validating with a pool, killed without a chance to shut the pool down
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from provkg.shacl import EventShapesValidator, Shapes\n"
        "from provkg.mapping import EventMapper\n"
        "from provkg.iris import IriMinter\n"
        "from provkg.entailment import default_entailer\n"
        "from provkg.demo import demo_events\n"
        "from datetime import datetime, timezone\n"
        "if __name__ == '__main__':\n"
        "    shapes = EventShapesValidator(Shapes(), workers=2)\n"
        "    quads = EventMapper(IriMinter(), default_entailer()).map(demo_events()[1], 'sha256:' + '0' * 64,\n"
        "                                                             datetime.now(timezone.utc)).quads\n"
        "    shapes.validate(quads)\n"
        "    print(' '.join(str(p) for p in shapes.pool._executor._processes), flush=True)\n"
        "    time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PROVKG_OPENLINEAGE_SPEC": str(SPEC)})
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert workers and all(_alive(p) for p in workers)  # started on demand: one or two
    parent.kill()
    parent.wait(10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers)


def test_a_bulk_write_cut_short_by_a_crash_is_undone_and_written_again(tmp_path):
    reference = _ingestor(tmp_path / "reference")
    events = demo_events()
    list(reference.ingest_batch((e, "x") for e in events))
    # the state a crash inside the bulk loader leaves: the last chunk's events
    # logged, the names of its graphs in graph.bulk-pending, part of its quads written
    data = tmp_path / "crashed"
    crashed = _ingestor(data)
    list(crashed.ingest_batch((e, "x") for e in events[:-5]))
    scratch = _ingestor(tmp_path / "scratch")
    graphs = [NamedNode(r.graph) for r in scratch.ingest_batch((e, "x") for e in events[-5:])]
    quads = [q for g in graphs for q in scratch.store.store.quads_for_pattern(None, None, None, g)]
    assert len(quads) > 100
    crashed.log.append_many([(e.raw, e.content_hash, e.received_at, e.source, list(e.pseudonymised))
                             for e in list(reference.log.entries())[-5:]])
    crashed.store.pending_path.write_text(json.dumps([g.value for g in graphs]))
    crashed.store.store.bulk_extend(quads[: len(quads) // 2])  # half of them, in their event graphs only
    assert any(crashed.store.has_graph(g) for g in graphs)
    del crashed
    # reopening removes the torn graphs; catch-up writes them again from the log
    reopened = _ingestor(data)
    assert not reopened.store.pending_path.exists()
    assert not any(reopened.store.has_graph(g) for g in graphs)
    assert reopened.catch_up() == 5
    assert _canonical(reopened.store) == _canonical(reference.store)
    assert reopened.store.stats() == reference.store.stats()  # the default graph (the merge) too
    assert verify_chain(reopened.log)[1] == []


class _FailingBulkLoad:
    """A pyoxigraph store whose bulk loader fails (as a crash would) after reading graph.bulk-pending."""

    def __init__(self, store, pending: Path):
        self._store, self._pending, self.seen = store, pending, None

    def bulk_extend(self, quads):
        quads = list(quads)
        self.seen = (json.loads(self._pending.read_text("utf-8")),
                     {q.graph_name.value for q in quads if isinstance(q.graph_name, NamedNode)})
        raise OSError("bulk load cut short")

    def __getattr__(self, name):
        return getattr(self._store, name)

    def __contains__(self, quad):  # dunders are looked up on the class, not through __getattr__
        return quad in self._store

    def __iter__(self):
        return iter(self._store)


def test_a_bulk_write_names_every_graph_it_writes_before_it_starts(tmp_path):
    # the names are what a reopened store removes after a torn bulk write: a
    # SHACL report graph missing from them would be left half written
    ingestor = _ingestor(tmp_path / "s", bulk_min_quads=1)
    failing = _FailingBulkLoad(ingestor.store.store, ingestor.store.pending_path)
    ingestor.store.store = failing
    start, complete = ends_before_start()  # the COMPLETE breaks a Violation: stored with its report
    with pytest.raises(OSError):
        list(ingestor.ingest_batch((e, "x") for e in [*demo_events(), start, complete]))
    recorded, written = failing.seen
    assert any(name.endswith("/shacl-report") for name in written)
    assert sorted(recorded) == sorted(written)


def test_closing_the_pool_settles_every_waiting_validation(tmp_path):
    # what a server's shutdown does with validations still queued: each caller's
    # future must end (validated or cancelled) so no request thread waits forever
    shapes = EventShapesValidator(Shapes(), workers=1)
    quads = EventMapper(IriMinter(), default_entailer()).map(demo_events()[1], "sha256:" + "0" * 64,
                                                             datetime.now(timezone.utc)).quads
    futures = [shapes.submit(quads) for _ in range(200)]
    shapes.pool.close()
    for f in futures:
        done = threading.Event()
        f.add_done_callback(lambda _f: done.set())
        assert done.wait(10)
    assert any(f.cancelled() for f in futures)  # the queue did hold some when it closed
    assert all(f.result().conforms for f in futures if not f.cancelled())


def test_a_store_write_that_failed_after_its_log_append_is_made_up_at_catch_up(tmp_path):
    # a hole, not only a tail: the log holds an event the store lacks, and later events the store
    # holds, then a last event the store lacks too
    events = demo_events()[:12]
    reference = _ingestor(tmp_path / "reference")
    list(reference.ingest_batch((e, "x") for e in events))
    logged = list(reference.log.entries())
    holed = _ingestor(tmp_path / "holed")
    list(holed.ingest_batch((e, "x") for e in events[:5]))
    e = logged[5]
    holed.log.append_many([(e.raw, e.content_hash, e.received_at, e.source, list(e.pseudonymised))])
    list(holed.ingest_batch((e, "x") for e in events[6:-1]))
    e = logged[-1]
    holed.log.append_many([(e.raw, e.content_hash, e.received_at, e.source, list(e.pseudonymised))])
    assert holed.store.stats()["graphs"] == len(events) - 2
    del holed
    reopened = _ingestor(tmp_path / "holed")
    assert reopened.catch_up() == 2
    assert _canonical(reopened.store) == _canonical(reference.store)
    assert reopened.catch_up() == 0
    assert verify_chain(reopened.log)[1] == []


def test_the_log_read_from_its_end(tmp_path):
    ingestor = _ingestor(tmp_path / "store")
    list(ingestor.ingest_batch((e, "x") for e in demo_events()))
    log = ingestor.log
    # an entry longer than several of the blocks the log is read in (an event of ~300 KB)
    big = copy.deepcopy(demo_events()[0])
    big["run"]["facets"]["notes"] = {"_producer": "x", "_schemaURL": "x", "text": "n" * 300_000}
    e = next(log.entries())
    log.append_many([(json.dumps(big), "sha256:" + "1" * 64, e.received_at, e.source, None)]
                    + [(e.raw, "sha256:" + str(i) * 64, e.received_at, e.source, None) for i in range(2, 5)])
    forward = list(log.entries())
    assert log.path.stat().st_size > 4 * 65536  # entries cross the blocks it is read in
    backward = list(log.entries_backwards())
    assert [e for _, e in reversed(backward)] == forward
    for offset, entry in backward[::7]:  # each offset starts its entry's line
        assert next(log.entries(offset)) == entry
    # a torn last line: not an entry when read, and dropped when the log is opened for writing
    with log.path.open("ab") as fh:
        fh.write(b'{"seq": 43, "receivedAt": "2026')
    assert EventLog(log.directory, read_only=True).head_seq == forward[-1].seq
    assert [e for _, e in EventLog(log.directory, read_only=True).entries_backwards()][0] == forward[-1]
    reopened = EventLog(log.directory)
    assert (reopened.head_seq, reopened.head_hash) == (forward[-1].seq, forward[-1].hash)
    assert log.path.read_bytes().endswith(b"\n") and list(reopened.entries()) == forward
