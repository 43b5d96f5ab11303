"""The audit log: who asked the service what, when, and what it answered.

One JSON object per line in ``<data>/audit.jsonl`` (mode 0600), appended and
fsynced before the answer leaves the server, for every query and export
(SPARQL, named queries, reports, exports, validation, completeness, stats),
every admin action (erasure requests, key management, quarantine release,
reading this log) and every refused request (401, 403). Posting events is not
logged here: the event log (``log/``) is the record of what was ingested.

Fields of an entry::

    time      when the request arrived (UTC, ISO 8601)
    key       key id, or "anonymous" when the service runs open
    name      the key's name;  role: its role
    method, path, params   the request (query-string parameters)
    sparql    the SPARQL text of a /sparql request (GET or POST)
    body      for erasure requests and key creation: the fields posted
    status    the HTTP status answered;  error: its message when not 2xx
    rows      result rows (SELECT, named queries; triples for CONSTRUCT)
    bytes     size of the answer body (the export's size for exports)
    ms        time to answer
    client    the peer address
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or date-time as an aware datetime (UTC when no offset).

    Raises ``ValueError`` for anything else."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """Append-only JSON Lines file; :meth:`append` is safe from several threads."""

    def __init__(self, data: str | Path):
        self.path = Path(data) / "audit.jsonl"
        self._lock = threading.Lock()

    def append(self, entry: dict[str, Any]) -> None:
        """Write one entry and fsync it. Raises ``OSError`` if it cannot."""
        line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry in order; a torn last line (being written) is skipped."""
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return
        with fh:
            for raw in fh:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    yield entry

    def search(self, since: datetime | None = None, key: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` entries at or after ``since`` by ``key`` (id,
        or "anonymous"), oldest first."""
        found: deque[dict[str, Any]] = deque(maxlen=max(limit, 0))
        for entry in self.entries():
            if key is not None and entry.get("key") != key:
                continue
            if since is not None:
                try:
                    if parse_since(str(entry.get("time", ""))) < since:
                        continue
                except ValueError:
                    continue
            found.append(entry)
        return list(found)


__all__ = ["AuditLog", "parse_since", "now_iso"]
