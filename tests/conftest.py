"""Shared fixtures: the real OpenLineage corpora in ../shared, and a real
``provkg serve`` subprocess on a loopback port with its own on-disk store."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROVKG_SHARED", REPO.parent / "shared"))
EVENTS = SHARED / "openlineage" / "events"
SPEC = SHARED / "openlineage" / "spec"


def corpus_status() -> dict[Path, str]:
    """Each event file's validation status as ``events/SOURCES.md`` records it
    (e.g. ``core-valid:1`` or ``core-valid:1,facet-errors:1``)."""
    status = {}
    row = re.compile(r"^\| ([^|]+\.json) \|[^|]*\|[^|]*\|[^|]*\| \d+ \| ([^|]*) \|$")
    for line in (EVENTS / "SOURCES.md").read_text("utf-8").splitlines():
        m = row.match(line.strip())
        if m and m.group(2).strip():
            status[EVENTS / m.group(1).strip()] = m.group(2).strip()
    return status


def valid_files() -> list[Path]:
    """Files whose every event the corpus records as valid (core-valid, no facet errors)."""
    return sorted(p for p, s in corpus_status().items()
                  if all(part.startswith("core-valid") for part in s.split(",")))


def invalid_files() -> list[Path]:
    return sorted(p for p, s in corpus_status().items() if p not in set(valid_files()))


def load_events(path: Path) -> list[dict]:
    doc = json.loads(path.read_text("utf-8"))
    return doc if isinstance(doc, list) else [doc]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    data: Path
    process: subprocess.Popen
    log: Path | None = None  # the server's stdout and stderr

    def stats(self) -> dict:
        return httpx.get(self.url + "/api/v1/stats", timeout=30).json()

    def sparql_select(self, query: str) -> list[dict]:
        r = httpx.post(self.url + "/sparql", data={"query": query},
                       headers={"Accept": "application/sparql-results+json"}, timeout=60)
        r.raise_for_status()
        return [{k: v["value"] for k, v in b.items()} for b in r.json()["results"]["bindings"]]

    def tail(self, lines: int = 80) -> str:
        """The last ``lines`` lines the server wrote (stdout and stderr)."""
        return log_tail(self.log, lines)


def log_tail(log: Path | None, lines: int = 80) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text("utf-8", errors="replace").splitlines()[-lines:])


def start_server(data: Path, *extra: str) -> Server:
    """Start ``provkg serve`` in a subprocess and wait until it answers.

    Its output goes to a log file beside ``data`` (``provkg-serve-PORT.log``,
    in the test's tmp dir), never to a pipe nobody reads (a full pipe would
    block the server); its tail is in the error when the server fails to start.
    The suite runs in two processes, so the free port picked here can be taken
    before the server binds it: a server that exits saying so is started again
    on another port (up to three tries)."""
    for attempt in range(3):
        port = free_port()
        try:
            return _start_on(port, data, extra)
        except _PortTaken:
            if attempt == 2:
                raise


class _PortTaken(RuntimeError):
    pass


def _start_on(port: int, data: Path, extra: tuple[str, ...]) -> Server:
    env = {**os.environ, "PROVKG_OPENLINEAGE_SPEC": str(SPEC)}
    data.parent.mkdir(parents=True, exist_ok=True)
    log = data.parent / f"provkg-serve-{port}.log"
    with log.open("ab") as sink:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "provkg", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--data", str(data), *extra],
            env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_tail(log)
            error = _PortTaken if "address already in use" in tail else RuntimeError
            raise error(f"provkg serve exited early ({proc.returncode}); {log} ends:\n{tail}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                # for callers written when this was a pipe: reads the log from its start (it does not follow it)
                proc.stdout = log.open("r", encoding="utf-8", errors="replace")
                return Server(url, data, proc, log)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    proc.wait(10)
    raise RuntimeError(f"provkg serve did not answer within 60 s; {log} ends:\n{log_tail(log)}")


def stop_server(server: Server) -> None:
    """Stop the server (SIGTERM, then SIGKILL after 20 s) and wait for it."""
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)
    if server.process.stdout is not None:
        server.process.stdout.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A running provkg service with an empty store, one per test module."""
    srv = start_server(tmp_path_factory.mktemp("store") / "data")
    yield srv
    stop_server(srv)
