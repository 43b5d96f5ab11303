"""Hostile and odd input against ``POST /api/v1/lineage`` and
``POST /api/v1/lineage/batch`` on a real ``provkg serve``.

Every refusal must be a clear 4xx with a JSON body ``{"error": ...}`` (and
``"errors"`` with RFC 6901 pointers for schema faults), and must change
nothing: neither the store (``GET /api/v1/stats``) nor the event log
(``<data>/log/events.jsonl``). Odd but valid input (unicode, control
characters, names that look like IRIs or SPARQL, nanosecond or
offset-less times, deep but bounded nesting) must be accepted and stored as
plain literals.

The size limits (413 for a body over 2 MiB, a batch over 1000 events, or a
gzip body that inflates beyond the limit) are part of the server's
request limits; see ``test_size_limits_*``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import re
import time
import uuid
from typing import Any, Iterator

import httpx
import pytest
from pyoxigraph import NamedNode


PK = "https://w3id.org/provkg/ns#"
PREFIXES = f"PREFIX provkg: <{PK}> "
LINEAGE = "/api/v1/lineage"
BATCH = "/api/v1/lineage/batch"
JSON = {"Content-Type": "application/json"}
MiB = 1024 * 1024


# -- the server ------------------------------------------------------------------


# -- helpers -------------------------------------------------------------------


def make_event(**overrides: Any) -> dict:
    """A small valid RunEvent with a fresh runId (so each is a new event)."""
    event = {
        "eventType": "START",
        "eventTime": "2024-11-26T13:05:37.621Z",
        "producer": "https://github.com/provkg/tests/bad-input",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "bad-input", "name": "job"},
        "inputs": [{"namespace": "bad-input", "name": "source"}],
        "outputs": [{"namespace": "bad-input", "name": "target"}],
    }
    event.update(overrides)
    return event


def custom_run_facet(run_id: str | None = None, **fields: Any) -> dict:
    """A run carrying one custom facet (custom facets are checked only as BaseFacet)."""
    return {"runId": run_id or str(uuid.uuid4()),
            "facets": {"badInput_custom": {"_producer": "https://example.com/p",
                                           "_schemaURL": "https://example.com/schemas/custom.json#/$defs/X",
                                           **fields}}}


def log_lines(server) -> int:
    path = server.data / "log" / "events.jsonl"
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def snapshot(server) -> tuple[dict, int]:
    return server.stats(), log_lines(server)


@contextlib.contextmanager
def unchanged(server) -> Iterator[None]:
    """The block must leave the store and the event log exactly as they were."""
    before = snapshot(server)
    yield
    after = snapshot(server)
    assert after == before, f"store or log changed: {before} -> {after}"


def post(server, body: bytes | str, path: str = LINEAGE, headers: dict | None = None,
         timeout: float = 120) -> httpx.Response:
    if isinstance(body, str):
        body = body.encode("utf-8")
    return httpx.post(server.url + path, content=body, headers=JSON if headers is None else headers,
                      timeout=timeout)


def post_json(server, doc: Any, path: str = LINEAGE) -> httpx.Response:
    return post(server, json.dumps(doc), path)


def assert_problem(r: httpx.Response, status: int | tuple[int, ...]) -> dict:
    """A 4xx answered as ``{"error": "...", ...}`` in JSON."""
    wanted = status if isinstance(status, tuple) else (status,)
    assert r.status_code in wanted, (r.status_code, r.text[:500])
    assert 400 <= r.status_code < 500
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers.get("content-type")
    body = r.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"].strip(), body
    if "errors" in body:
        assert_faults(body["errors"])
    return body


def assert_faults(errors: Any) -> None:
    assert isinstance(errors, list) and errors, errors
    for fault in errors:
        assert set(fault) >= {"pointer", "message"}, fault
        assert isinstance(fault["message"], str) and fault["message"], fault
        assert fault["pointer"] == "" or fault["pointer"].startswith("/"), fault


def resolve(doc: Any, pointer: str) -> Any:
    """RFC 6901: the value at ``pointer`` in ``doc`` (KeyError/IndexError if absent)."""
    if pointer == "":
        return doc
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


def schema_faults(r: httpx.Response) -> list[dict]:
    body = assert_problem(r, 422)
    assert "errors" in body, body
    return body["errors"]


def sparql_string(value: str) -> str:
    """A SPARQL 1.1 string literal for any text: ECHAR for the usual escapes,
    ``\\uXXXX`` (SPARQL §19.2 codepoint escapes) for other control characters."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


# IRI characters RFC 3987 never allows unescaped (besides non-characters).
_NOT_IRI = re.compile(r'[\x00-\x20<>"{}|\\^`\x7f-\x9f\u2028\u2029\ufeff]')


def assert_valid_iri(iri: str) -> None:
    NamedNode(iri)  # raises ValueError on an invalid IRI
    assert not _NOT_IRI.search(iri), iri
    assert re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", iri), iri


def datasets_named(server, namespace: str, name: str) -> list[str]:
    rows = server.sparql_select(PREFIXES + f"""
        SELECT DISTINCT ?ds WHERE {{
          ?ds a provkg:Dataset ; provkg:namespace {sparql_string(namespace)} ; provkg:name {sparql_string(name)} .
        }}""")
    return [row["ds"] for row in rows]


# -- malformed bodies -> 400 ------------------------------------------------------

_VALID_TEXT = json.dumps(make_event())

MALFORMED = {
    "truncated-object": '{"eventType": "START",',
    "truncated-event": _VALID_TEXT[: len(_VALID_TEXT) // 2],
    "truncated-string": '{"eventType": "STA',
    "unquoted-keys": "{eventType: START}",
    "single-quotes": "{'eventType': 'START'}",
    "trailing-comma": _VALID_TEXT[:-1] + ",}",
    "trailing-garbage": _VALID_TEXT + "}",
    "two-documents": _VALID_TEXT + " " + _VALID_TEXT,
    "comment": "// an event\n" + _VALID_TEXT,
    "raw-newline-in-string": _VALID_TEXT.replace('"job"}', '"jo\nb"}'),
    "raw-tab-in-string": _VALID_TEXT.replace('"job"}', '"jo\tb"}'),
    "bad-escape": _VALID_TEXT.replace('"job"}', '"jo\\qb"}'),
    "nan": json.dumps(make_event(run=custom_run_facet(score=0.5))).replace("0.5", "NaN"),
    "infinity": json.dumps(make_event(run=custom_run_facet(score=0.5))).replace("0.5", "Infinity"),
    "minus-infinity": json.dumps(make_event(run=custom_run_facet(score=0.5))).replace("0.5", "-Infinity"),
    "bare-word": "undefined",
    "only-a-bracket": "[",
}


@pytest.mark.parametrize("path", [LINEAGE, BATCH])
@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_json_is_400(server, name, path):
    text = MALFORMED[name]
    if path == BATCH:
        text = "[" + text + "]"
    with unchanged(server):
        body = assert_problem(post(server, text, path), 400)
    assert_faults(body.get("errors", [{"pointer": "", "message": body["error"]}]))


@pytest.mark.parametrize("path", [LINEAGE, BATCH])
@pytest.mark.parametrize("body", [b"", b"   \n\t "], ids=["empty", "whitespace"])
def test_empty_body_is_400(server, body, path):
    with unchanged(server):
        assert_problem(post(server, body, path), 400)


@pytest.mark.parametrize("path", [LINEAGE, BATCH])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1"])
def test_body_not_utf8_is_400(server, encoding, path):
    event = make_event(job={"namespace": "bad-input", "name": "café ünïcode"})
    doc = [event] if path == BATCH else event
    raw = json.dumps(doc, ensure_ascii=False).encode(encoding)
    with unchanged(server):
        assert_problem(post(server, raw, path), 400)


# -- gzip ------------------------------------------------------------------------

GZ = {**JSON, "Content-Encoding": "gzip"}

BAD_GZIP = {
    "plain-json-labelled-gzip": _VALID_TEXT.encode(),
    "random-bytes": bytes(range(256)) * 4,
    "gzip-magic-then-junk": b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"not deflate data at all",
    "truncated-gzip": gzip.compress(_VALID_TEXT.encode())[:40],
    "gzip-of-non-json": gzip.compress(b"this is not JSON, just text"),
    "gzip-of-truncated-json": gzip.compress(_VALID_TEXT.encode()[:100]),
    "gzip-of-nothing": gzip.compress(b""),
    "gzip-of-utf16": gzip.compress(_VALID_TEXT.encode("utf-16")),
}


@pytest.mark.parametrize("path", [LINEAGE, BATCH])
@pytest.mark.parametrize("name", sorted(BAD_GZIP))
def test_bad_gzip_is_400(server, name, path):
    with unchanged(server):
        assert_problem(post(server, BAD_GZIP[name], path, GZ), 400)


def test_valid_gzip_is_accepted(server):
    """The control for the gzip cases: the same route takes a proper gzip body."""
    event = make_event()
    before = server.stats()
    r = post(server, gzip.compress(json.dumps(event).encode()), LINEAGE, GZ)
    assert r.status_code == 201, r.text
    assert server.stats()["graphs"] == before["graphs"] + 1


# -- content type --------------------------------------------------------------------


@pytest.mark.parametrize("path", [LINEAGE, BATCH])
@pytest.mark.parametrize("headers", [
    {"Content-Type": "text/plain"},
    {"Content-Type": "text/plain; charset=utf-8"},
    {"Content-Type": "application/x-www-form-urlencoded"},
    {"Content-Type": "multipart/form-data; boundary=x"},
    {"Content-Type": "application/xml"},
    {"Content-Type": "application/json", "Content-Encoding": "br"},
    {"Content-Type": "application/json", "Content-Encoding": "deflate"},
], ids=["text-plain", "text-plain-charset", "form", "multipart", "xml", "encoding-br", "encoding-deflate"])
def test_wrong_content_type_is_415(server, headers, path):
    doc = [make_event()] if path == BATCH else make_event()
    with unchanged(server):
        assert_problem(post(server, json.dumps(doc), path, headers), 415)


# -- wrong shapes --------------------------------------------------------------------


@pytest.mark.parametrize("doc", [[], "__EVENT_IN_ARRAY__", "an event", 42, None, True],
                         ids=["empty-array", "array-of-event", "string", "number", "null", "boolean"])
def test_non_object_to_single_route_is_422(server, doc):
    if doc == "__EVENT_IN_ARRAY__":
        doc = [make_event()]
    with unchanged(server):
        faults = schema_faults(post_json(server, doc))
    assert [f["pointer"] for f in faults] == [""]


@pytest.mark.parametrize("doc", ["__EVENT__", {}, "events", 7, None, False],
                         ids=["one-event-object", "empty-object", "string", "number", "null", "boolean"])
def test_batch_that_is_not_an_array_is_400(server, doc):
    if doc == "__EVENT__":
        doc = make_event()
    with unchanged(server):
        body = assert_problem(post_json(server, doc, BATCH), 400)
    assert "errors" in body


def _set(event: dict, path: str, value: Any) -> dict:
    *parents, last = path.split(".")
    target = event
    for key in parents:
        target = target[key]
    target[last] = value
    return event


WRONG_TYPES = [
    ("run.runId", 12345, "/run/runId"),
    ("run.runId", None, "/run/runId"),
    ("inputs", {"namespace": "bad-input", "name": "x"}, "/inputs"),
    ("outputs", "a-dataset", "/outputs"),
    ("eventTime", 1732626337, "/eventTime"),
    ("eventType", "EXPLODED", "/eventType"),
    ("eventType", 1, "/eventType"),
    ("producer", ["https://example.com"], "/producer"),
    ("job.name", None, "/job/name"),
    ("job.namespace", 7, "/job/namespace"),
    ("run.facets", [], "/run/facets"),
    ("job.facets", "none", "/job/facets"),
    ("run", "run-1", "/run"),
]


@pytest.mark.parametrize("path,value,pointer", WRONG_TYPES,
                         ids=[f"{p}={json.dumps(v)}" for p, v, _ in WRONG_TYPES])
def test_wrong_type_is_422_with_pointer(server, path, value, pointer):
    event = _set(make_event(), path, value)
    with unchanged(server):
        faults = schema_faults(post_json(server, event))
    assert pointer in [f["pointer"] for f in faults], faults
    for f in faults:  # every pointer names something in the event
        resolve(event, f["pointer"])


def test_wrong_type_in_dataset_item_points_into_the_array(server):
    event = make_event(inputs=[{"namespace": "bad-input", "name": "ok"}, {"namespace": "bad-input", "name": 5}])
    with unchanged(server):
        faults = schema_faults(post_json(server, event))
    assert "/inputs/1/name" in [f["pointer"] for f in faults], faults


def test_standard_facet_with_wrong_shape_is_422_with_pointer(server):
    event = make_event(job={"namespace": "bad-input", "name": "job", "facets": {"documentation": {
        "_producer": "https://example.com/p",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DocumentationJobFacet.json#/$defs/DocumentationJobFacet",
        "description": 42}}})
    with unchanged(server):
        faults = schema_faults(post_json(server, event))
    assert "/job/facets/documentation/description" in [f["pointer"] for f in faults], faults


MISSING = [
    ("eventTime", ""),
    ("producer", ""),
    ("job", ""),
    ("job.name", "/job"),
    ("job.namespace", "/job"),
    ("run.runId", "/run"),
    ("inputs.0.name", "/inputs/0"),
    ("outputs.0.namespace", "/outputs/0"),
]


@pytest.mark.parametrize("field,parent", MISSING, ids=[f for f, _ in MISSING])
def test_missing_required_field_is_422_pointing_at_its_parent(server, field, parent):
    event = make_event()
    *parents, last = field.split(".")
    target: Any = event
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    del target[last]
    with unchanged(server):
        faults = schema_faults(post_json(server, event))
    matching = [f for f in faults if f["pointer"] == parent and repr(last) in f["message"]]
    assert matching, faults


def test_missing_run_makes_a_job_event(server):
    """OpenLineage 2-0-2 defines a JobEvent as an event with a job and no run
    (``JobEvent``: ``required: [job]``, ``not: {required: [run]}``), and does not
    forbid ``eventType`` in it. So a RunEvent that lost its ``run`` is a valid
    JobEvent: it is accepted (and stored as a JobEvent), not refused."""
    event = make_event(job={"namespace": "bad-input", "name": "job-without-run"})
    del event["run"]
    before = server.stats()
    r = post_json(server, event)
    assert r.status_code == 201, r.text
    assert server.stats()["graphs"] == before["graphs"] + 1
    rows = server.sparql_select(PREFIXES + f"""
        SELECT ?run WHERE {{ GRAPH <{r.json()["graph"]}> {{ ?run provkg:job ?job }} }}""")
    assert rows == []


def test_missing_run_and_job_is_422(server):
    event = make_event()
    del event["run"], event["job"]
    with unchanged(server):
        faults = schema_faults(post_json(server, event))
    assert any("'job'" in f["message"] for f in faults), faults


# -- batches with bad events ---------------------------------------------------------


def test_batch_of_bad_events_reports_each_and_writes_nothing(server):
    no_job = make_event()
    del no_job["job"]
    events = [42, {}, no_job, make_event(eventTime="yesterday"), [make_event()]]
    with unchanged(server):
        r = post_json(server, events, BATCH)
        assert r.status_code == 200, r.text
        body = r.json()
    assert body["status"] == "partial_success"
    assert body["summary"]["received"] == len(events)
    assert body["summary"]["failed"] == len(events)
    assert [f["index"] for f in body["failed_events"]] == list(range(len(events)))
    for failed in body["failed_events"]:
        assert_faults(failed["errors"])
    assert "/eventTime" in [f["pointer"] for f in body["failed_events"][3]["errors"]]


def test_batch_with_one_bad_event_stores_only_the_good_ones(server):
    good = [make_event(), make_event()]
    bad = make_event(run={"runId": 1})
    before, lines = snapshot(server)
    r = post_json(server, [good[0], bad, good[1]], BATCH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"]["successful"] == 2 and body["summary"]["failed"] == 1
    assert body["failed_events"][0]["index"] == 1
    assert "/run/runId" in [f["pointer"] for f in body["failed_events"][0]["errors"]]
    after, lines_after = snapshot(server)
    assert after["graphs"] == before["graphs"] + 2
    assert lines_after == lines + 2


# -- size limits (413) -----------------------------------------------------------


def _big_event(size: int) -> dict:
    """A valid event padded to about ``size`` bytes by a job documentation facet."""
    return make_event(job={"namespace": "bad-input", "name": "big", "facets": {"documentation": {
        "_producer": "https://example.com/p",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DocumentationJobFacet.json#/$defs/DocumentationJobFacet",
        "description": "x" * size}}})


def test_size_limits_5mb_event_is_413(server):
    body = json.dumps(_big_event(5_000_000))
    assert len(body) > 2 * MiB
    with unchanged(server):
        assert_problem(post(server, body), 413)


def test_size_limits_5mb_batch_is_413(server):
    body = json.dumps([_big_event(5_000_000)])
    with unchanged(server):
        assert_problem(post(server, body, BATCH), 413)


@pytest.mark.parametrize("path", [LINEAGE, BATCH])
def test_size_limits_gzip_inflating_beyond_the_limit_is_413(server, path):
    """A small gzip body (a few KiB) that inflates to 5 MB of JSON."""
    doc = _big_event(5_000_000)
    raw = gzip.compress(json.dumps([doc] if path == BATCH else doc).encode())
    assert len(raw) < 2 * MiB // 10
    with unchanged(server):
        assert_problem(post(server, raw, path, GZ), 413)


@pytest.mark.parametrize("path", [LINEAGE, BATCH])
def test_size_limits_gzip_bomb_is_413(server, path):
    """20 MB of whitespace-padded JSON squeezed to ~20 KB: refused without
    inflating it all (and without the server falling over)."""
    doc = make_event()
    text = json.dumps([doc] if path == BATCH else doc)
    raw = gzip.compress(text[:-1].encode() + b" " * 20_000_000 + text[-1:].encode(), compresslevel=9)
    with unchanged(server):
        assert_problem(post(server, raw, path, GZ), 413)
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200


def test_size_limits_batch_of_1001_events_is_413(server):
    # the same small event 1001 times: the count is over the limit, the bytes are not
    body = json.dumps([make_event(job={"namespace": "bad-input", "name": "batch-of-1001"})] * 1001)
    assert len(body) < 2 * MiB  # under the byte limit: the count is what is refused
    with unchanged(server):
        assert_problem(post(server, body, BATCH), 413)


def test_size_limits_leave_a_1mb_event_alone(server):
    """An event well under the limit (1 MB of documentation) is accepted."""
    before = server.stats()
    r = post_json(server, _big_event(1_000_000))
    assert r.status_code == 201, r.text[:500]
    assert server.stats()["graphs"] == before["graphs"] + 1


def test_size_limits_leave_a_batch_of_1000_events_alone(server):
    """Exactly 1000 events (the most a batch may hold) are taken: 10 distinct
    events, each delivered 100 times (kept cheap: the duplicates write nothing)."""
    distinct = [make_event(job={"namespace": "bad-input", "name": "batch-of-1000"}) for _ in range(10)]
    before = server.stats()
    r = post_json(server, distinct * 100, BATCH)
    assert r.status_code == 200, r.text[:500]
    assert r.json()["summary"]["received"] == 1000
    assert r.json()["summary"]["failed"] == 0
    assert [x["status"] for x in r.json()["results"]].count("accepted") == 10
    assert server.stats()["graphs"] == before["graphs"] + 10


# -- nesting -------------------------------------------------------------------------


def _nested(kind: str, depth: int) -> str:
    if kind == "lists":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _with_deep_facet(kind: str, depth: int, path: str = LINEAGE) -> str:
    event = make_event(run=custom_run_facet(deep="__DEEP__"))
    text = json.dumps([event] if path == BATCH else event)
    return text.replace('"__DEEP__"', _nested(kind, depth))


@pytest.mark.parametrize("path", [LINEAGE, BATCH])
@pytest.mark.parametrize("kind", ["lists", "objects"])
@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_absurd_nesting_is_refused_not_500(server, depth, kind, path):
    with unchanged(server):
        assert_problem(post(server, _with_deep_facet(kind, depth, path), path), (400, 422))
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("kind", ["lists", "objects"])
def test_100_levels_of_nesting_are_accepted(server, kind):
    before, lines = snapshot(server)
    r = post(server, _with_deep_facet(kind, 100))
    assert r.status_code == 201, r.text[:500]
    after, lines_after = snapshot(server)
    assert after["graphs"] == before["graphs"] + 1 and lines_after == lines + 1


@pytest.mark.parametrize("kind", ["lists", "objects"])
@pytest.mark.parametrize("depth", [500, 900, 950, 990, 1_000, 1_100])
def test_nesting_near_the_decoder_limit_is_never_500(server, depth, kind):
    """Around Python's recursion limit (1000): either accepted or a clean 4xx;
    never a 5xx from a RecursionError in validation, hashing, mapping or logging."""
    before, lines = snapshot(server)
    r = post(server, _with_deep_facet(kind, depth))
    assert r.status_code < 500, r.text[:500]
    after, lines_after = snapshot(server)
    if r.status_code == 201:
        assert after["graphs"] == before["graphs"] + 1 and lines_after == lines + 1
    else:
        assert_problem(r, (400, 422))
        assert (after, lines_after) == (before, lines)


# -- unicode and control characters in names --------------------------------------

ODD_NAMES = {
    "emoji": "sales 📈🚀 👩🏽‍💻 table",
    "rtl": "مبيعات.الربع\u200f_الأول",
    "rtl-override": "safe\u202etxt.exe",
    "nul": "before\u0000after",
    "newline": "line one\nline two",
    "crlf-tab": "a\r\n\tb",
    "control-chars": "\u0001\u0007\u001b[31mred\u007f\u0085",
    "line-separators": "a\u2028b\u2029c",
    "bom-and-zero-width": "\ufeffname\u200b\u200d",
    "combining": "e\u0301e\u0301 Ω Å",
    "astral": "\U0001d54f\U0001f600\U00010348",
    "cjk": "数据集/表格 データ",
    "spaces-only": "   ",
    "empty": "",
    "long": "x" * 10_000,
    "percent-escapes": "%2F..%2F%00%zz",
    "slashes-dots": "../../etc/passwd",
}


@pytest.mark.parametrize("which", sorted(ODD_NAMES))
def test_odd_names_are_stored_exactly(server, which):
    name = ODD_NAMES[which]
    namespace = f"bad-input-unicode-{which} ✓ {name[:20]}"
    event = make_event(job={"namespace": namespace, "name": name}, inputs=[{"namespace": namespace, "name": name}],
                       outputs=[])
    before, lines = snapshot(server)
    r = post_json(server, event)
    assert r.status_code == 201, r.text[:500]
    after, lines_after = snapshot(server)
    assert after["graphs"] == before["graphs"] + 1 and lines_after == lines + 1
    found = datasets_named(server, namespace, name)
    assert len(found) == 1, found
    assert_valid_iri(found[0])
    assert_valid_iri(r.json()["graph"])
    # the literal comes back exactly (no normalisation, no truncation)
    rows = server.sparql_select(PREFIXES + f"SELECT ?ns ?n WHERE {{ <{found[0]}> provkg:namespace ?ns ; provkg:name ?n }}")
    assert rows == [{"ns": namespace, "n": name}]
    # every IRI in the event's graph is valid
    graph_rows = server.sparql_select(f"""
        SELECT DISTINCT ?x WHERE {{ GRAPH <{r.json()["graph"]}> {{
          {{ ?x ?p ?o }} UNION {{ ?s ?x ?o }} UNION {{ ?s ?p ?x }} FILTER(isIRI(?x)) }} }}""")
    assert graph_rows
    for row in graph_rows:
        assert_valid_iri(row["x"])


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\udbff"], ids=["high", "low", "high-end"])
def test_lone_surrogate_escapes_are_refused_cleanly(server, text):
    """``"\\ud800"`` is JSON by the RFC 8259 grammar but encodes no character
    (not I-JSON, RFC 7493 §2.1): refused with a 4xx, never a 500, and nothing
    half-written to the log."""
    event = make_event(inputs=[{"namespace": "bad-input", "name": "__NAME__"}])
    body = json.dumps(event).replace("__NAME__", json.dumps(text)[1:-1])
    assert "\\ud" in body
    with unchanged(server):
        assert_problem(post(server, body), (400, 422))
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200


# -- names that look like IRIs or SPARQL -----------------------------------------------

INJECTIONS = {
    "iri-brackets": "<urn:x>",
    "sparql-pattern": "?s ?p ?o }",
    "drop-all": '" . } DROP ALL #',
    "insert-data": '"} INSERT DATA { <urn:evil> <urn:evil> <urn:evil> } #',
    "triple-quote": '""" ; <urn:p> <urn:o> . """',
    "backslash-quote": '\\" } #',
    "looks-minted": "urn:provkg:dataset/bad-input/source",
    "blank-node": "_:b0",
    "prefixed-name": "prov:Entity",
    "turtle-lang": '"x"@en',
    "typed-literal": '"1"^^<http://www.w3.org/2001/XMLSchema#integer>',
    "html-script": "<script>alert(1)</script>",
    "sql": "'; DROP TABLE datasets; --",
    "json-in-name": '{"namespace": "other", "name": "x"}',
}


@pytest.mark.parametrize("which", sorted(INJECTIONS))
def test_names_that_look_like_iris_or_sparql_are_plain_literals(server, which):
    name = INJECTIONS[which]
    namespace = f"bad-input-injection-{which}"
    event = make_event(job={"namespace": namespace, "name": name},
                       inputs=[{"namespace": namespace, "name": name}], outputs=[{"namespace": name, "name": name}])
    before, lines = snapshot(server)
    r = post_json(server, event)
    assert r.status_code == 201, r.text[:500]
    after, lines_after = snapshot(server)
    assert after["graphs"] == before["graphs"] + 1, (before, after)
    assert lines_after == lines + 1
    assert after["triples"] > before["triples"]
    # stored as literals, found by them exactly
    found = datasets_named(server, namespace, name)
    assert len(found) == 1, found
    assert_valid_iri(found[0])
    assert len(datasets_named(server, name, name)) == 1
    # no node was made from the text, and no injected triple exists
    for iri in ("urn:x", "urn:evil", "urn:p", "urn:o"):
        rows = server.sparql_select(f"SELECT (COUNT(*) AS ?n) WHERE {{ {{ <{iri}> ?p ?o }} UNION {{ ?s ?p <{iri}> }} "
                                    f"UNION {{ ?s <{iri}> ?o }} }}")
        assert rows == [{"n": "0"}], iri
    # the store still answers, with everything it had
    rows = server.sparql_select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    assert int(rows[0]["n"]) == after["triples"]


# -- timestamps --------------------------------------------------------------------------

ACCEPTED_TIMES = [
    "2024-11-26T13:05:37.621840123Z",   # nanoseconds (Java emitters)
    "2021-11-03T10:53:52.427343",       # no offset (openlineage-python)
    "2024-11-26T13:05:37+05:30",
    "2024-11-26T13:05:37.1-08:00",
    "2024-02-29T23:59:59Z",             # leap day
]

REJECTED_TIMES = [
    "2024-13-01T00:00:00Z",
    "yesterday",
    "2023-02-29T00:00:00Z",             # not a leap year
    "2024-04-31T00:00:00Z",
    "2024-01-01T25:00:00Z",
    "2024-01-01T12:61:00Z",
    "2024-01-01 12:00:00",              # no T
    "1732626337",
    "",
    "2024-01-01T00:00:00Zjunk",
]


@pytest.mark.parametrize("when", ACCEPTED_TIMES)
def test_times_the_spec_allows_are_accepted(server, when):
    r = post_json(server, make_event(eventTime=when))
    assert r.status_code == 201, r.text[:500]
    rows = server.sparql_select(PREFIXES + f"""
        SELECT ?t (DATATYPE(?t) AS ?dt) WHERE {{ GRAPH <{r.json()["graph"]}> {{ <{r.json()["graph"]}> provkg:eventTime ?t }} }}""")
    assert len(rows) == 1, rows
    assert rows[0]["dt"] == "http://www.w3.org/2001/XMLSchema#dateTime"
    if when.endswith("123Z"):  # nanoseconds kept, not rounded to microseconds
        assert rows[0]["t"] == when


@pytest.mark.parametrize("when", REJECTED_TIMES)
def test_times_that_are_not_times_are_422_at_event_time(server, when):
    with unchanged(server):
        faults = schema_faults(post_json(server, make_event(eventTime=when)))
    assert [f["pointer"] for f in faults] == ["/eventTime"], faults


# -- duplicate keys (documented behaviour) ------------------------------------------------


def test_duplicate_keys_last_one_wins(server):
    """RFC 8259 leaves duplicate names to the parser; provkg's (Python's json)
    keeps the last one. So ``"eventType": "START", ..., "eventType": "COMPLETE"``
    is a COMPLETE event; its content hash is that of the parsed event, so the
    same event without the duplicate is recognised as a duplicate; the log keeps
    the text as received."""
    event = make_event(eventType="COMPLETE", job={"namespace": "bad-input", "name": "duplicate-keys"})
    canonical = json.dumps(event)
    doubled = '{"eventType": "START", ' + canonical[1:]
    assert json.loads(doubled) == event
    before, lines = snapshot(server)
    r = post(server, doubled)
    assert r.status_code == 201, r.text
    graph = r.json()["graph"]
    rows = server.sparql_select(PREFIXES + f"SELECT ?t WHERE {{ GRAPH <{graph}> {{ <{graph}> provkg:eventType ?t }} }}")
    assert rows == [{"t": "COMPLETE"}]
    assert snapshot(server)[1] == lines + 1
    last = (server.data / "log" / "events.jsonl").read_text("utf-8").splitlines()[-1]
    assert json.loads(last)["raw"] == doubled
    # the same event, written without the duplicate key: already held
    with unchanged(server):
        again = post(server, canonical)
        assert again.status_code == 200 and again.json()["status"] == "duplicate", again.text


def test_duplicate_keys_invalid_last_value_is_422(server):
    """The validator sees the value that wins: a valid first value does not
    hide an invalid last one."""
    text = json.dumps(make_event())
    doubled = text[:-1] + ', "eventTime": "not a time"}'
    with unchanged(server):
        faults = schema_faults(post(server, doubled))
    assert [f["pointer"] for f in faults] == ["/eventTime"]


# -- after all that -------------------------------------------------------------------------


def test_server_is_still_healthy_and_consistent(server):
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
    stats = server.stats()
    assert stats["graphs"] == log_lines(server)
    rows = server.sparql_select("SELECT (COUNT(DISTINCT ?g) AS ?n) WHERE { GRAPH ?g { ?g a <%sLineageEvent> } }" % PK)
    assert int(rows[0]["n"]) == stats["graphs"]


# Last in the file on purpose: when it fails, the server is gone.


def test_ordering_by_event_times_with_and_without_offset_keeps_the_server_up(server):
    """OpenLineage lets an emitter send times with no offset (openlineage-python)
    beside times with one (Java emitters); both are accepted and stored as
    xsd:dateTime. XSD orders such a pair only partially (a time with no
    timezone may be up to 14 h either side), and a SPARQL ``ORDER BY`` over
    them must still answer, not bring the service down."""
    rng = random.Random(1)
    events = []
    for i in range(60):
        when = f"2024-01-01T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00" \
            + rng.choice(["", "Z", "+14:00", "-14:00"])
        events.append(make_event(eventTime=when, job={"namespace": "bad-input-order-by", "name": f"job-{i}"}))
    r = post_json(server, events, BATCH)
    assert r.status_code == 200 and r.json()["summary"]["successful"] == 60, r.text[:500]
    graphs = " ".join(f"<{x['graph']}>" for x in r.json()["results"])
    for order in ("?t", "DESC(?t)"):
        query = PREFIXES + f"SELECT ?g ?t WHERE {{ VALUES ?g {{ {graphs} }} ?g provkg:eventTime ?t }} ORDER BY {order}"
        try:
            rows = server.sparql_select(query)
        except httpx.HTTPError as exc:
            time.sleep(0.5)
            pytest.fail(f"ORDER BY {order}: {exc!r}; server exit code {server.process.poll()}; its log ends:\n"
                        + server.tail(12))
        assert len(rows) == 60
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
