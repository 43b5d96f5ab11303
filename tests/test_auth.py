"""Access control and the audit log, end to end: a real ``provkg serve`` with
the demo loaded, real API keys made with the real CLI (``provkg keys``), the
real openlineage-python client, and the audit log read back over HTTP and the
CLI (issue: a record you can defend)."""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from conftest import SPEC, start_server, stop_server
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpCompression, HttpConfig, HttpTransport
from requests import HTTPError

from provkg.demo import KNOWN_ANSWERS as K, demo_events
from provkg.named_queries import load_named_queries
from provkg.server import HOLD_AT_MOST

ROLES = ("emitter", "reader", "auditor", "admin")
TOKEN = re.compile(r"^pk_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$")


def provkg(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provkg", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PROVKG_OPENLINEAGE_SPEC": str(SPEC), **(env or {})})


def create_key(data: Path, role: str, name: str) -> str:
    """A key made by `provkg keys create`: the token it prints once."""
    done = provkg("keys", "create", "--role", role, "--name", name, "--data", str(data))
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert TOKEN.match(token), token
    return token


def key_id(token: str) -> str:
    return TOKEN.match(token).group(1)


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def fresh_event() -> dict:
    """A valid demo RunEvent with a new runId (so it is accepted, not a duplicate)."""
    event = copy.deepcopy(next(e for e in demo_events() if e.get("eventType") == "START"))
    event["run"]["runId"] = str(uuid.uuid4())
    return event


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    """The demo on a real server that starts without keys (open), then gets
    one key per role from the CLI while it runs."""
    data = tmp_path_factory.mktemp("auth") / "data"
    srv = start_server(data, "--demo")
    before = httpx.get(srv.url + "/api/v1/stats", timeout=30).status_code
    keys = {role: create_key(data, role, f"{role}-test") for role in ROLES}
    srv.open_before_keys = before
    srv.keys = keys
    yield srv
    stop_server(srv)


def resolve_subject(svc, token: str, subject: str) -> str:
    """The pseudonymous IRI of a data subject (auditors and admins may ask)."""
    r = httpx.post(svc.url + "/api/v1/subjects/resolve", json={"subject": subject}, headers=bearer(token),
                   timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["subject"]


def get(svc, path: str, token: str | None = None, **params) -> httpx.Response:
    return httpx.get(svc.url + path, params=params, headers=bearer(token), timeout=120)


# -- authentication ----------------------------------------------------------------------


def test_open_without_keys_and_locked_once_a_key_exists(svc):
    # the server started on a data directory without keys: open, as every older test relies on
    assert svc.open_before_keys == 200
    # `provkg keys create` while it runs: the server reloads the key file and asks for a key
    r = get(svc, "/api/v1/stats")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "missing API key" in r.json()["error"]
    assert get(svc, "/api/v1/stats", svc.keys["reader"]).status_code == 200


def test_open_routes_stay_open(svc):
    for path in ("/healthz", "/", "/openapi.json", "/docs"):
        assert get(svc, path).status_code == 200, path


@pytest.mark.parametrize("header", [
    "Basic cmVhZGVyOnNlY3JldA==",                      # wrong scheme
    "Bearer",                                          # no token
    "Bearer not-a-provkg-key",                         # malformed
    "Bearer pk_00000000_" + "A" * 43,                  # unknown id
])
def test_bad_credentials_get_401_with_a_bearer_challenge(svc, header):
    r = httpx.get(svc.url + "/sparql", params={"query": "ASK {}"}, headers={"Authorization": header}, timeout=30)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith('Bearer realm="provkg"')
    assert r.json()["error"]


def test_a_known_id_with_the_wrong_secret_is_refused(svc):
    token = svc.keys["admin"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = get(svc, "/api/v1/stats", forged)
    assert r.status_code == 401 and r.json() == {"error": "invalid API key"}
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_keys_are_stored_only_as_hashes(svc):
    path = svc.data / "access" / "keys.json"
    text = path.read_text("utf-8")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for token in svc.keys.values():
        secret = token.split("_", 2)[2]
        assert secret not in text and token not in text
        assert key_id(token) in text
    listed = provkg("keys", "list", "--json", "--data", str(svc.data))
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {r["role"] for r in rows} == set(ROLES)
    assert all(set(r) == {"id", "name", "role", "created", "revoked"} for r in rows)
    table = provkg("keys", "list", "--data", str(svc.data))
    assert all(t.split("_", 2)[2] not in table.stdout for t in svc.keys.values())


# -- roles -------------------------------------------------------------------------------

# route -> the roles that may use it (admin may use everything)
MATRIX = [
    ("GET", "/sparql", {"query": "ASK { ?s ?p ?o }"}, {"reader", "auditor", "admin"}),
    ("GET", "/api/v1/queries", {}, {"reader", "auditor", "admin"}),
    ("GET", "/api/v1/queries/consent-violations", {}, {"reader", "auditor", "admin"}),
    ("GET", "/api/v1/stats", {}, {"reader", "auditor", "admin"}),
    ("GET", "/api/v1/export", {"format": "nquads"}, {"auditor", "admin"}),
    ("GET", "/api/v1/reports/prediction-provenance", {"node": K["full_snapshot_prediction_iri"]},
     {"auditor", "admin"}),
    ("GET", "/api/v1/quarantine", {}, {"auditor", "admin"}),
    ("GET", "/api/v1/audit", {}, {"admin"}),
    ("GET", "/api/v1/keys", {}, {"admin"}),
    ("POST", "/api/v1/quarantine/nothing-here/release", {}, {"admin"}),
]


@pytest.mark.parametrize("method,path,params,allowed", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_each_role_reaches_only_its_routes(svc, method, path, params, allowed):
    for role in ROLES:
        r = httpx.request(method, svc.url + path, params=params, headers=bearer(svc.keys[role]), timeout=120)
        if role in allowed:
            assert r.status_code in (200, 404), (role, r.status_code, r.text[:300])  # 404: no such quarantined event
        else:
            assert r.status_code == 403, (role, r.status_code)
            assert f"has role {role}" in r.json()["error"]


def test_validation_and_completeness_are_reader_routes(svc):
    for path in ("/api/v1/validation", "/api/v1/completeness"):
        assert get(svc, path, svc.keys["emitter"]).status_code == 403
        r = get(svc, path, svc.keys["reader"])
        assert r.status_code == 200, r.text[:300]


def test_posting_events_needs_an_emitter_or_admin_key(svc):
    for role, expected in (("emitter", 201), ("admin", 201), ("reader", 403), ("auditor", 403)):
        r = httpx.post(svc.url + "/api/v1/lineage", json=fresh_event(), headers=bearer(svc.keys[role]), timeout=60)
        assert r.status_code == expected, (role, r.text[:300])
        r = httpx.post(svc.url + "/api/v1/lineage/batch", json=[fresh_event()], headers=bearer(svc.keys[role]),
                       timeout=60)
        assert r.status_code == (200 if expected == 201 else 403), role
    assert httpx.post(svc.url + "/api/v1/lineage", json=fresh_event(), timeout=60).status_code == 401


def test_erasure_requests_are_admin_only(svc):
    body = {"subject": K["withdrawn_subject"], "requestedBy": "dpo@bank.example", "article": "A17"}
    for role in ("emitter", "reader", "auditor"):
        r = httpx.post(svc.url + "/api/v1/erasure-requests", json=body, headers=bearer(svc.keys[role]), timeout=60)
        assert r.status_code == 403, role
    r = httpx.post(svc.url + "/api/v1/erasure-requests", json=body, headers=bearer(svc.keys["admin"]), timeout=120)
    assert r.status_code == 201, r.text[:300]


# -- the openlineage-python client -------------------------------------------------------


def test_openlineage_client_api_key_auth_works_unchanged(svc):
    emitter = svc.keys["emitter"]
    # as code: HttpConfig(auth=ApiKeyTokenProvider(...)), gzip on
    transport = HttpTransport(HttpConfig(url=svc.url, auth=ApiKeyTokenProvider({"apiKey": emitter}),
                                         compression=HttpCompression.GZIP, retry={"total": 0}, timeout=30))
    assert transport.emit(fresh_event()).status_code == 201
    # as configuration (openlineage.yml / OPENLINEAGE__TRANSPORT__AUTH__...): auth {type: api_key, apiKey}
    transport = HttpTransport(HttpConfig.from_dict({"url": svc.url, "auth": {"type": "api_key", "apiKey": emitter},
                                                    "retry": {"total": 0}, "timeout": 30}))
    assert transport.emit(fresh_event()).status_code == 201
    # without a key, or with a key of the wrong role, the client raises
    for auth in ({}, {"type": "api_key", "apiKey": svc.keys["reader"]}):
        transport = HttpTransport(HttpConfig.from_dict({"url": svc.url, "auth": auth, "retry": {"total": 0}}))
        with pytest.raises(HTTPError) as caught:
            transport.emit(fresh_event())
        assert caught.value.response.status_code == (401 if not auth else 403)


# -- key lifecycle -----------------------------------------------------------------------


def test_revoking_a_key_takes_effect_at_once(svc):
    token = create_key(svc.data, "reader", "short-lived")
    assert get(svc, "/api/v1/stats", token).status_code == 200
    done = provkg("keys", "revoke", key_id(token), "--data", str(svc.data))
    assert done.returncode == 0, done.stderr
    r = get(svc, "/api/v1/stats", token)
    assert r.status_code == 401 and "revoked" in r.json()["error"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert provkg("keys", "revoke", "ffffffff", "--data", str(svc.data)).returncode == 2
    assert provkg("keys", "create", "--role", "root", "--name", "x", "--data", str(svc.data)).returncode == 2


def test_admin_manages_keys_over_http(svc):
    admin = svc.keys["admin"]
    r = httpx.post(svc.url + "/api/v1/keys", json={"role": "auditor", "name": "external-auditor"},
                   headers=bearer(admin), timeout=30)
    assert r.status_code == 201
    token = r.json()["token"]
    assert TOKEN.match(token) and r.json()["key"]["role"] == "auditor"
    assert get(svc, "/api/v1/export", token, format="nquads").status_code == 200
    listed = get(svc, "/api/v1/keys", admin).json()["keys"]
    assert key_id(token) in {k["id"] for k in listed}
    assert all("hash" not in k for k in listed)
    assert httpx.delete(svc.url + f"/api/v1/keys/{key_id(token)}", headers=bearer(admin), timeout=30).status_code == 200
    assert get(svc, "/api/v1/export", token).status_code == 401
    bad = httpx.post(svc.url + "/api/v1/keys", json={"role": "superuser", "name": "x"}, headers=bearer(admin),
                     timeout=30)
    assert bad.status_code == 422 and "role" in bad.json()["error"]


# -- the audit log -----------------------------------------------------------------------


def test_queries_exports_and_refusals_are_audited(svc):
    reader, auditor, admin = svc.keys["reader"], svc.keys["auditor"], svc.keys["admin"]
    since = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    query = "SELECT ?job WHERE { ?run <https://w3id.org/provkg/ns#job> ?job } LIMIT 3"
    r = httpx.post(svc.url + "/sparql", data={"query": query}, headers=bearer(reader), timeout=60)
    assert r.status_code == 200
    subject = resolve_subject(svc, auditor, K["withdrawn_subject"])
    named = get(svc, "/api/v1/queries/erasure-impact", reader, subject=subject)
    assert named.status_code == 200
    export = get(svc, "/api/v1/export", auditor, format="turtle")
    assert export.status_code == 200
    # longer than the middleware holds: its entry is written first, then it streams
    nquads = get(svc, "/api/v1/export", auditor, format="nquads")
    assert nquads.status_code == 200 and len(nquads.content) > HOLD_AT_MOST
    assert get(svc, "/api/v1/audit", reader).status_code == 403  # refused, and that is audited too

    entries = get(svc, "/api/v1/audit", admin, since=since, limit=1000).json()["entries"]
    by_path = {}
    for e in entries:
        by_path.setdefault(e["path"], []).append(e)
    sparql = next(e for e in by_path["/sparql"] if e.get("sparql") == query)
    assert sparql["key"] == key_id(reader) and sparql["name"] == "reader-test" and sparql["role"] == "reader"
    assert sparql["method"] == "POST" and sparql["status"] == 200 and sparql["rows"] == 3
    assert sparql["bytes"] == len(r.content)
    datetime.fromisoformat(sparql["time"].replace("Z", "+00:00"))
    erasure = by_path["/api/v1/queries/erasure-impact"][-1]
    assert erasure["params"] == {"subject": subject}
    assert erasure["rows"] == named.json()["count"] > 0
    exported, streamed = by_path["/api/v1/export"][-2:]
    assert exported["role"] == "auditor" and exported["params"] == {"format": "turtle"}
    assert exported["bytes"] == len(export.content) > 1000
    assert exported.get("streamed", False) == (len(export.content) >= HOLD_AT_MOST)
    assert streamed["params"] == {"format": "nquads"} and streamed["status"] == 200 and streamed["streamed"]
    assert streamed["bytes"] == len(nquads.content)  # as its Content-Length announced
    refused = by_path["/api/v1/audit"][-1]
    assert refused["status"] == 403 and refused["key"] == key_id(reader) and "role reader" in refused["error"]

    # filter by key; the CLI reads the same log
    mine = get(svc, "/api/v1/audit", admin, key=key_id(auditor), limit=1000).json()["entries"]
    assert mine and all(e["key"] == key_id(auditor) for e in mine)
    assert len(get(svc, "/api/v1/audit", admin, limit=2).json()["entries"]) == 2
    assert get(svc, "/api/v1/audit", admin, since="yesterday").status_code == 400
    cli = provkg("audit", "--json", "--key", key_id(reader), "--since", since, "--limit", "1000",
                 "--data", str(svc.data))
    assert cli.returncode == 0, cli.stderr
    lines = [json.loads(line) for line in cli.stdout.splitlines()]
    assert any(e.get("sparql") == query and e["rows"] == 3 for e in lines)
    table = provkg("audit", "--key", key_id(reader), "--data", str(svc.data))
    assert table.returncode == 0 and "/sparql" in table.stdout
    assert stat.S_IMODE((svc.data / "audit.jsonl").stat().st_mode) == 0o600


def test_sparql_get_and_erasure_requests_are_audited_with_their_text(svc):
    admin = svc.keys["admin"]
    query = "ASK { ?s a <http://www.w3.org/ns/prov#Activity> }"
    assert get(svc, "/sparql", svc.keys["reader"], query=query).status_code == 200
    body = {"subject": "subj-0001", "requestedBy": "dpo@bank.example", "article": "A7-3"}
    assert httpx.post(svc.url + "/api/v1/erasure-requests", json=body, headers=bearer(admin),
                      timeout=120).status_code == 201
    entries = get(svc, "/api/v1/audit", admin, limit=50).json()["entries"]
    ask = [e for e in entries if e.get("sparql") == query][-1]
    assert ask["method"] == "GET" and "query" not in ask["params"] and ask["rows"] == 1
    erasure = [e for e in entries if e["path"] == "/api/v1/erasure-requests"][-1]
    # the audit log names the subject by pseudonym, never by identifier
    pseudonymous = resolve_subject(svc, svc.keys["auditor"], "subj-0001")
    assert erasure["body"] == {**body, "subject": pseudonymous}
    assert erasure["status"] == 201 and erasure["role"] == "admin"
    assert "subj-0001" not in (svc.data / "audit.jsonl").read_text("utf-8")
    # posting events is not audited here (the event log records it)
    assert not [e for e in entries if e["path"].startswith("/api/v1/lineage") and e["status"] < 400]


def test_unauthenticated_attempts_are_audited(svc):
    get(svc, "/api/v1/export", "pk_0badc0de_" + "x" * 43)
    entries = get(svc, "/api/v1/audit", svc.keys["admin"], key="0badc0de").json()["entries"]
    assert entries and entries[-1]["status"] == 401 and entries[-1]["role"] is None


# -- named-query parameters cannot change the query ----------------------------------------

INJECTIONS = [
    "> } ; DROP ALL ; SELECT * { <",
    '" } UNION { ?s ?p ?o } #',
    "urn:x> } INSERT DATA { <urn:a> <urn:b> <urn:c> } #",
    "urn:provkg:x' OR '1'='1",
    "1; DROP ALL",
    "25 } UNION { ?s ?p ?o",
    "2026-01-01T00:00:00Z\" } UNION { ?s ?p ?o } #",
    "?s",
    "\\u003e } DROP ALL {",
]
VALID = {"iri": K["model_versions"]["2"], "int": "3", "datetime": "2026-11-02T00:00:00Z", "string": "gender",
         "number": "0.5"}
VALID_BY_NAME = {"subject": K["base"] + "subject/ps-00000000000000000000000000000000",
                 "a": K["model_versions"]["1"], "b": K["model_versions"]["2"], "node": K["model_versions"]["2"]}


def _quads(svc, token: str) -> set[str]:
    r = get(svc, "/api/v1/export", token, format="nquads")
    assert r.status_code == 200
    return set(r.text.splitlines())


def test_injection_strings_in_every_named_query_parameter_change_nothing(svc):
    reader, admin = svc.keys["reader"], svc.keys["admin"]
    before_stats = get(svc, "/api/v1/stats", reader).json()
    before = _quads(svc, admin)
    tried = 0
    for query in load_named_queries().values():
        for param in query.parameters:
            base = {p.name: VALID_BY_NAME.get(p.name, VALID[p.type]) for p in query.parameters if p.required}
            for text in INJECTIONS:
                r = get(svc, f"/api/v1/queries/{query.name}", reader, **{**base, param.name: text})
                tried += 1
                if param.type == "string":
                    # a string is bound as one literal: the query runs, and nothing matches the text
                    assert r.status_code == 200, (query.name, param.name, text, r.text[:200])
                    assert r.json()["count"] == 0 and r.json()["parameters"][param.name] == text
                else:
                    assert r.status_code in (400, 404), (query.name, param.name, text, r.status_code)
                    assert r.json()["error"]
        # and as an unknown extra parameter
        r = get(svc, f"/api/v1/queries/{query.name}", reader, **{INJECTIONS[0]: "x"})
        assert r.status_code == 400
    for text in INJECTIONS:
        r = get(svc, "/api/v1/reports/prediction-provenance", admin, node=text)
        assert r.status_code in (400, 404), (text, r.status_code)
    assert tried >= 14 * len(INJECTIONS)
    assert get(svc, "/api/v1/stats", reader).json() == before_stats
    assert _quads(svc, admin) == before


# -- running open ------------------------------------------------------------------------


def test_open_flag_and_env_serve_without_keys_and_audit_anonymous(tmp_path, monkeypatch):
    data = tmp_path / "data"
    admin = create_key(data, "admin", "ops")
    for how in ("flag", "env"):
        if how == "env":
            monkeypatch.setenv("PROVKG_AUTH", "off")
        srv = start_server(data, *(["--open"] if how == "flag" else []))
        try:
            r = httpx.get(srv.url + "/sparql", params={"query": "ASK {}"}, timeout=30)
            assert r.status_code == 200, how
            # but keys are never managed anonymously, not even when open
            r = httpx.post(srv.url + "/api/v1/keys", json={"role": "admin", "name": "sneaky"}, timeout=30)
            assert r.status_code == 403
            entries = httpx.get(srv.url + "/api/v1/audit", timeout=30).json()["entries"]
            ask = [e for e in entries if e["path"] == "/sparql"][-1]
            assert ask["key"] == "anonymous" and ask["role"] is None and ask["rows"] == 1
        finally:
            stop_server(srv)
    monkeypatch.delenv("PROVKG_AUTH")
    srv = start_server(data)
    try:
        assert httpx.get(srv.url + "/api/v1/stats", timeout=30).status_code == 401
        assert httpx.get(srv.url + "/api/v1/stats", headers=bearer(admin), timeout=30).status_code == 200
    finally:
        stop_server(srv)


def test_an_answer_is_withheld_when_its_audit_entry_cannot_be_written(tmp_path):
    """Held or streamed, an audited answer goes out only after its entry is
    written: with the audit log unwritable (a folder where its file should
    be), an export short enough to be held and one long enough to stream are
    both a 503, and nothing of either export is sent."""
    data = tmp_path / "data"
    srv = start_server(data, "--demo")
    try:
        graph = _some_event_graph(srv)
        audit = data / "audit.jsonl"
        audit.unlink(missing_ok=True)
        audit.mkdir()
        for params in ({"format": "turtle", "graph": graph}, {"format": "nquads"}):
            r = httpx.get(srv.url + "/api/v1/export", params=params, timeout=120)
            assert r.status_code == 503, (params, r.status_code)
            assert "audit log cannot be written" in r.json()["error"]
        audit.rmdir()
        r = httpx.get(srv.url + "/api/v1/export", params={"format": "nquads"}, timeout=120)
        assert r.status_code == 200 and len(r.content) > HOLD_AT_MOST
    finally:
        stop_server(srv)


def _some_event_graph(srv) -> str:
    query = "SELECT ?g WHERE { ?g a <https://w3id.org/provkg/ns#LineageEvent> } LIMIT 1"
    r = httpx.post(srv.url + "/sparql", data={"query": query}, headers={"Accept": "application/sparql-results+json"},
                   timeout=60)
    return r.json()["results"]["bindings"][0]["g"]["value"]
