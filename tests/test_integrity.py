"""Nothing altered unseen: `provkg verify` on tampered copies of a real log
names the entry that was modified, removed or reordered; signed checkpoints
catch a cut-off tail and a forged signature; `provkg rebuild` gives the same graph."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from pyoxigraph import CanonicalizationAlgorithm, Dataset, RdfFormat, parse

from conftest import EVENTS, SPEC
from provkg.eventlog import entry_hash
from provkg.store import LineageStore

AIRFLOW = EVENTS / "compat-consumer-airflow"


def provkg(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROVKG_OPENLINEAGE_SPEC": str(SPEC)}
    return subprocess.run([sys.executable, "-m", "provkg", *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    """A data directory loaded from the Airflow scenario, with a signed checkpoint."""
    root = tmp_path_factory.mktemp("record")
    data = root / "data"
    done = provkg("ingest", str(AIRFLOW), "--data", str(data))
    assert done.returncode == 0, done.stderr
    assert provkg("signing-key", str(root / "key.pem"), str(root / "pub.pem")).returncode == 0
    signed = provkg("checkpoint", "--key", str(root / "key.pem"), "--data", str(data))
    assert signed.returncode == 0, signed.stderr
    return root


def _copy(record, tmp_path):
    shutil.copytree(record / "data", tmp_path / "data")
    return tmp_path / "data"


def _lines(data):
    return (data / "log" / "events.jsonl").read_text("utf-8").splitlines()


def _write(data, lines):
    (data / "log" / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _verify(record, data):
    done = provkg("verify", "--data", str(data), "--public-key", str(record / "pub.pem"), "--json")
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else done.stderr


def test_intact_record_verifies(record, tmp_path):
    code, report = _verify(record, _copy(record, tmp_path))
    assert code == 0 and report["ok"]
    assert report["entries"] == report["graphs"] == len(list(AIRFLOW.glob("line_*.json")))
    assert report["checkpoints"] == 1


def test_modified_entry_is_named(record, tmp_path):
    data = _copy(record, tmp_path)
    lines = _lines(data)
    entry = json.loads(lines[9])
    entry["raw"] = entry["raw"].replace("COMPLETE", "FAIL").replace("START", "FAIL")
    lines[9] = json.dumps(entry)
    _write(data, lines)
    code, report = _verify(record, data)
    assert code == 1
    assert any(p.startswith("line 10 (seq 10): modified") for p in report["problems"]), report


def test_modified_entry_with_recomputed_hash_is_named(record, tmp_path):
    data = _copy(record, tmp_path)
    lines = _lines(data)
    entry = json.loads(lines[4])
    entry["receivedAt"] = "1999-01-01T00:00:00+00:00"
    entry["hash"] = entry_hash(entry)  # a careful forger recomputes the entry's own hash
    lines[4] = json.dumps(entry)
    _write(data, lines)
    code, report = _verify(record, data)
    assert code == 1
    assert any(p.startswith("line 5 (seq 5): modified") and "seq 6" in p for p in report["problems"]), report


def test_removed_entry_is_named(record, tmp_path):
    data = _copy(record, tmp_path)
    lines = _lines(data)
    del lines[6]  # seq 7
    _write(data, lines)
    code, report = _verify(record, data)
    assert code == 1
    assert any("removed: entry seq 7 is missing" in p for p in report["problems"]), report


def test_reordered_entries_are_named(record, tmp_path):
    data = _copy(record, tmp_path)
    lines = _lines(data)
    lines[2], lines[3] = lines[3], lines[2]
    _write(data, lines)
    code, report = _verify(record, data)
    assert code == 1
    assert any("reordered: seq 3 stands after seq 4" in p for p in report["problems"]), report


def test_cut_off_tail_is_caught_by_the_signed_checkpoint(record, tmp_path):
    data = _copy(record, tmp_path)
    _write(data, _lines(data)[:-3])
    code, report = _verify(record, data)
    assert code == 1
    assert any("checkpoint 1: the log has no entry seq 32" in p for p in report["problems"]), report


def test_forged_checkpoint_signature_is_caught(record, tmp_path):
    data = _copy(record, tmp_path)
    path = data / "log" / "checkpoints.jsonl"
    checkpoint = json.loads(path.read_text())
    checkpoint["seq"] = 31  # claim an earlier head without the key
    path.write_text(json.dumps(checkpoint) + "\n")
    code, report = _verify(record, data)
    assert code == 1
    assert any("signature does not verify" in p for p in report["problems"]), report


def test_a_graph_written_around_the_log_is_caught(record, tmp_path):
    from pyoxigraph import Literal, NamedNode, Quad

    data = _copy(record, tmp_path)
    store = LineageStore(data)
    graph = NamedNode("urn:provkg:event/sha256%3Aforged")
    store.add_graph(graph, [Quad(graph, NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"),
                                 NamedNode("https://w3id.org/provkg/ns#LineageEvent"), graph),
                            Quad(graph, NamedNode("urn:x"), Literal("y"), graph)])
    store.flush()
    del store
    code, report = _verify(record, data)
    assert code == 1
    assert any("has no log entry" in p and "forged" in p for p in report["problems"]), report


def _canonical(data) -> str:
    store = LineageStore(data, read_only=True)
    dataset = Dataset(parse(store.dump(RdfFormat.N_QUADS), format=RdfFormat.N_QUADS))
    dataset.canonicalize(CanonicalizationAlgorithm.RDFC_1_0)
    return "\n".join(sorted(str(q) for q in dataset))


def test_rebuild_from_the_log_gives_the_same_graph(record, tmp_path):
    data = _copy(record, tmp_path)
    before = _canonical(data)
    done = provkg("rebuild", "--data", str(data))
    assert done.returncode == 0, done.stderr
    assert "rebuilt from 32 log entries" in done.stdout
    assert _canonical(data) == before  # receipt times come from the log too
    code, report = _verify(record, data)
    assert code == 0, report
