"""Erasable without breaking the chain: pseudonymous subjects, sealed feature
snapshots, and erasure by key destruction, end to end on a real server with
the demo posted through the real openlineage-python client and real API keys
made with the real CLI (issue: a record you can defend)."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import SPEC, start_server, stop_server
from openlineage.client.transport.http import HttpConfig, HttpTransport

from provkg.demo import KNOWN_ANSWERS as K, demo_events
from provkg.pseudonymise import pseudonymise
from provkg.subjects import SnapshotUnavailable, SubjectVault, is_pseudonym, seal, unseal

EVENTS = demo_events()
SUBJECT = K["withdrawn_subject"]
ADMIN_NAME = "dpo@bank.example"
IDENTIFIER = re.compile(rb"subj-\d{4}")


def provkg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provkg", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PROVKG_OPENLINEAGE_SPEC": str(SPEC), "COLUMNS": "200"})


def create_key(data: Path, role: str) -> str:
    done = provkg("keys", "create", "--role", role, "--name", f"{role}-erasure", "--data", str(data))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def predictions_in_events() -> dict[str, dict]:
    """predictionId -> the prediction as the demo emitted it (identifier and snapshot in the clear)."""
    return {p["predictionId"]: p for e in EVENTS
            for p in ((e["run"].get("facets") or {}).get("provkg_inference") or {}).get("predictions", [])}


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    """The demo posted through HttpTransport, then one key per role."""
    data = tmp_path_factory.mktemp("erasure") / "data"
    srv = start_server(data)
    transport = HttpTransport(HttpConfig(url=srv.url, timeout=30))
    assert [transport.emit(e).status_code for e in EVENTS] == [201] * len(EVENTS)
    transport.close()
    srv.keys = {role: create_key(data, role) for role in ("reader", "auditor", "admin")}
    yield srv
    stop_server(srv)


def call(svc, method: str, path: str, role: str | None, headers: dict | None = None, **kwargs) -> httpx.Response:
    auth = {"Authorization": f"Bearer {svc.keys[role]}"} if role else {}
    return httpx.request(method, svc.url + path, headers={**auth, **(headers or {})}, timeout=120, **kwargs)


def resolve(svc, subject: str) -> httpx.Response:
    return call(svc, "POST", "/api/v1/subjects/resolve", "auditor", json={"subject": subject})


def snapshot(svc, prediction_id: str, role: str = "auditor") -> httpx.Response:
    return call(svc, "GET", "/api/v1/snapshots", role, params={"prediction": K["base"] + "prediction/" + prediction_id})


def data_files(data: Path) -> list[Path]:
    """Files of the data directory outside the RocksDB store (whose files may be compressed)."""
    return [p for p in data.rglob("*") if p.is_file() and "graph" not in p.relative_to(data).parts]


# -- nothing personal in the clear -----------------------------------------------------------


def test_no_subject_identifier_is_in_the_log_store_or_any_file(svc):
    for path in data_files(svc.data):
        assert not IDENTIFIER.search(path.read_bytes()), path
    export = call(svc, "GET", "/api/v1/export", "auditor", params={"format": "nquads"})
    assert export.status_code == 200 and "subject/ps-" in export.text
    assert not IDENTIFIER.search(export.content)
    # nor the snapshot values: the feature vectors are sealed
    features = [p["featureSnapshot"]["features"] for p in predictions_in_events().values()
                if (p.get("featureSnapshot") or {}).get("features")]
    assert features
    for f in features:
        assert f'"debt_to_income":{f["debt_to_income"]}' not in export.text
        assert json.dumps(f["debt_to_income"]) not in (svc.data / "log" / "events.jsonl").read_text("utf-8")


def test_the_log_says_which_values_it_pseudonymised(svc):
    entries = [json.loads(line) for line in (svc.data / "log" / "events.jsonl").read_text("utf-8").splitlines()]
    with_subjects = [e for e in entries if "subj-" in json.dumps(EVENTS[e["seq"] - 1])]
    assert with_subjects and all(e.get("pseudonymised") for e in with_subjects)
    for entry in with_subjects:
        raw = json.loads(entry["raw"])
        for pointer in entry["pseudonymised"]:
            value = raw
            for part in pointer.strip("/").split("/"):
                value = value[int(part)] if isinstance(value, list) else value[part]
            assert is_pseudonym(value) or set(value) == {"sealed"}, (pointer, value)
    assert not [e for e in entries if "subj-" not in json.dumps(EVENTS[e["seq"] - 1]) and e.get("pseudonymised")]


def test_a_retried_delivery_is_still_a_duplicate(svc):
    # the same subject gets the same pseudonym and the same snapshot seals to the same text
    inference = next(e for e in EVENTS if "provkg_inference" in (e["run"].get("facets") or {}))
    r = call(svc, "POST", "/api/v1/lineage", "admin", json=inference)
    assert r.status_code == 200 and r.json()["status"] == "duplicate", r.text


# -- who may see what ------------------------------------------------------------------------


def test_resolving_a_subject_is_for_auditors(svc):
    r = resolve(svc, SUBJECT)
    assert r.status_code == 200 and re.fullmatch(re.escape(K["base"]) + r"subject/ps-[0-9a-f]{32}", r.json()["subject"])
    assert call(svc, "POST", "/api/v1/subjects/resolve", "reader", json={"subject": SUBJECT}).status_code == 403
    assert call(svc, "POST", "/api/v1/subjects/resolve", None, json={"subject": SUBJECT}).status_code == 401
    assert resolve(svc, "subj-9999").status_code == 404
    assert call(svc, "POST", "/api/v1/subjects/resolve", "auditor", json={"subject": 42}).status_code == 422
    # the pseudonym is what the graph holds: the erasure-impact query runs on it
    answer = call(svc, "GET", "/api/v1/queries/erasure-impact", "reader", params={"subject": r.json()["subject"]})
    about = {row["node"] for row in answer.json()["rows"] if row["relation"].endswith("#subjectOf")}
    assert about == set(K["q3_erasure"]["predictions"])


def test_auditors_open_sealed_snapshots_and_readers_cannot(svc):
    full = {pid: p for pid, p in predictions_in_events().items() if p.get("featureSnapshot")}
    assert full
    for pid, p in full.items():
        r = snapshot(svc, pid)
        assert r.status_code == 200, r.text
        assert r.json()["snapshot"] == p["featureSnapshot"]
        assert r.json()["subject"] == resolve(svc, p["dataSubject"]).json()["subject"]
    some = next(iter(full))
    assert snapshot(svc, some, "reader").status_code == 403
    assert snapshot(svc, "no-such-prediction").status_code == 404
    # the audit log names the prediction, not the values
    entries = call(svc, "GET", "/api/v1/audit", "admin", params={"limit": 1000}).json()["entries"]
    opened = [e for e in entries if e["path"] == "/api/v1/snapshots" and e["status"] == 200]
    assert len(opened) >= len(full) and all(e["role"] == "auditor" for e in opened)


# -- erasure ---------------------------------------------------------------------------------


def test_erasure_destroys_the_key_keeps_the_chain_and_is_recorded(svc):
    subject_iri = resolve(svc, SUBJECT).json()["subject"]
    pseudonym = subject_iri.rsplit("/", 1)[-1]
    about = [pid for pid, p in predictions_in_events().items() if p.get("dataSubject") == SUBJECT]
    sealed_about = [pid for pid in about if predictions_in_events()[pid].get("featureSnapshot")]
    others = [pid for pid, p in predictions_in_events().items()
              if p.get("featureSnapshot") and p.get("dataSubject") != SUBJECT]
    assert sealed_about and others
    assert snapshot(svc, sealed_about[0]).status_code == 200
    key = SubjectVault(svc.data / "subjects", read_only=True).key_of(pseudonym)
    assert key and key in (svc.data / "subjects" / "vault.sqlite3").read_bytes()
    graphs_before = httpx.get(svc.url + "/api/v1/stats", headers={"Authorization": f"Bearer {svc.keys['reader']}"},
                              timeout=30).json()["graphs"]

    body = {"subject": SUBJECT, "requestedBy": ADMIN_NAME}
    assert call(svc, "POST", "/api/v1/erasures", "auditor", json=body).status_code == 403
    r = call(svc, "POST", "/api/v1/erasures", "admin", json=body)
    assert r.status_code == 201, r.text
    outcome = r.json()
    assert outcome["erased"]["pseudonym"] == pseudonym and outcome["erased"]["erasureRun"] == outcome["runId"]
    assert outcome["recorded"]["status"] == "accepted" and outcome["subject"] == subject_iri
    assert outcome["findings"]["ModelVersion"] == len(K["q3_erasure"]["model_versions"])

    # the subject can no longer be found, nor their snapshots opened; others still can
    assert resolve(svc, SUBJECT).status_code == 404
    gone = snapshot(svc, sealed_about[0])
    assert gone.status_code == 410 and gone.json()["erased"]["pseudonym"] == pseudonym
    assert all(snapshot(svc, pid).status_code == 200 for pid in others)
    # the key bytes are gone from the key store's file, and no journal keeps them
    vault_files = list((svc.data / "subjects").iterdir())
    assert {p.name for p in vault_files} == {"vault.sqlite3", "index.key"}
    assert all(key not in p.read_bytes() for p in vault_files)
    assert call(svc, "POST", "/api/v1/erasures", "admin", json=body).status_code == 404

    # the erasure is provenance: an ErasureRequest run with its execution time, about the pseudonym
    rows = call(svc, "POST", "/sparql", "reader", data={"query": f"""
        PREFIX provkg: <https://w3id.org/provkg/ns#> PREFIX prov: <http://www.w3.org/ns/prov#>
        SELECT ?run ?at ?action WHERE {{ ?run a provkg:ErasureRequest ; provkg:erasureSubject <{subject_iri}> ;
            provkg:erasureExecutedAt ?at ; provkg:erasureAction ?action ; prov:wasAssociatedWith ?who .
            ?who <http://www.w3.org/2000/01/rdf-schema#label> "{ADMIN_NAME}" }}"""},
                headers={"Accept": "application/sparql-results+json"}).json()["results"]["bindings"]
    assert len(rows) == 1 and rows[0]["run"]["value"].endswith(outcome["runId"])
    assert rows[0]["action"]["value"].startswith("erasure executed")
    # the log and store were only added to: the chain and the store still verify
    stats = httpx.get(svc.url + "/api/v1/stats", headers={"Authorization": f"Bearer {svc.keys['reader']}"},
                      timeout=30).json()
    assert stats["graphs"] == graphs_before + 1
    verified = provkg("verify", "--data", str(svc.data))
    assert verified.returncode == 0 and verified.stdout.startswith("OK"), verified.stdout + verified.stderr
    for path in data_files(svc.data):
        assert not IDENTIFIER.search(path.read_bytes()), path

    # the same identifier arriving again is a new subject, not linked to the erased pseudonym
    event = copy.deepcopy(next(e for e in EVENTS if "provkg_inference" in (e["run"].get("facets") or {})))
    event["run"]["runId"] = "0195d1a4-5b1e-7f00-8000-00000000e1a5"
    assert call(svc, "POST", "/api/v1/lineage", "admin", json=event).status_code == 201
    again = resolve(svc, SUBJECT)
    assert again.status_code == 200 and again.json()["subject"] != subject_iri


def test_erasure_over_the_cli(tmp_path):
    events = tmp_path / "demo.jsonl"
    data = tmp_path / "data"
    assert provkg("demo-events", str(events)).returncode == 0
    assert provkg("ingest", str(events), "--data", str(data)).returncode == 0
    resolved = provkg("subjects", "resolve", SUBJECT, "--data", str(data))
    assert resolved.returncode == 0 and ":subject/ps-" in resolved.stdout
    pid = next(pid for pid, p in predictions_in_events().items()
               if p.get("dataSubject") == SUBJECT and p.get("featureSnapshot"))
    prediction = K["base"] + "prediction/" + pid
    opened = provkg("subjects", "snapshot", prediction, "--data", str(data))
    assert opened.returncode == 0 and json.loads(opened.stdout)["snapshot"] == predictions_in_events()[pid]["featureSnapshot"]
    done = provkg("erasure-execute", SUBJECT, "--requested-by", ADMIN_NAME, "--json", "--data", str(data))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["erased"]["pseudonym"] == resolved.stdout.strip().rsplit("/", 1)[-1]
    assert provkg("subjects", "resolve", SUBJECT, "--data", str(data)).returncode == 1
    closed = provkg("subjects", "snapshot", prediction, "--data", str(data))
    assert closed.returncode == 1 and "destroyed by an erasure" in closed.stderr
    assert provkg("erasure-execute", SUBJECT, "--requested-by", ADMIN_NAME, "--data", str(data)).returncode == 1
    verified = provkg("verify", "--data", str(data))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # rebuild from the log gives the same store: the log holds only the pseudonymous form
    assert provkg("rebuild", "--data", str(data)).returncode == 0
    assert provkg("verify", "--data", str(data)).returncode == 0


# -- the transform itself --------------------------------------------------------------------


def test_pseudonymise_replaces_exactly_the_personal_fields(tmp_path):
    vault = SubjectVault(tmp_path / "subjects")
    for event in EVENTS:
        before = copy.deepcopy(event)
        done = pseudonymise(event, vault)
        assert event == before  # the input is not changed
        text = json.dumps(done.event)
        assert "subj-" not in text
        if "subj-" not in json.dumps(event):
            assert done.event is event and not done.replaced
            continue
        # everything else is as sent
        for pointer in done.replaced:
            parts = pointer.strip("/").split("/")
            a, b = event, done.event
            for part in parts[:-1]:
                a, b = (a[int(part)], b[int(part)]) if isinstance(a, list) else (a[part], b[part])
            last = int(parts[-1]) if isinstance(a, list) else parts[-1]
            a[last] = b[last]
        assert event != before or not done.replaced
        assert done.event == event
        event.clear()
        event.update(before)


def test_sealing_is_deterministic_and_bound_to_subject_and_prediction(tmp_path):
    vault = SubjectVault(tmp_path / "subjects")
    ps = vault.pseudonyms(["alice", "bob"])
    assert ps == vault.pseudonyms(["bob", "alice"]) and ps["alice"] != ps["bob"]
    key = vault.key_of(ps["alice"])
    value = {"uri": "s3://x", "features": {"income": 52000}}
    token = seal(key, ps["alice"], "pred-1", value)
    assert token == seal(key, ps["alice"], "pred-1", value) and "52000" not in token
    assert unseal(vault, ps["alice"], "pred-1", token) == value
    for pseudonym, context in ((ps["bob"], "pred-1"), (ps["alice"], "pred-2")):
        with pytest.raises(SnapshotUnavailable):
            unseal(vault, pseudonym, context, token)
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(SnapshotUnavailable):
        unseal(vault, ps["alice"], "pred-1", tampered)
    tomb = vault.destroy("alice")
    with pytest.raises(SnapshotUnavailable) as gone:
        unseal(vault, ps["alice"], "pred-1", token)
    assert gone.value.erased == tomb
    assert vault.find("alice") is None and vault.find("bob") == ps["bob"]
    # a second store opened on the same folder sees the same pseudonyms (they are durable)
    assert SubjectVault(tmp_path / "subjects", read_only=True).find("bob") == ps["bob"]
