"""Quarantine: events that broke a SHACL Violation, kept aside instead of stored.

Each quarantined event is one JSON file ``<data>/quarantine/<content hash>.json``
holding the event exactly as received, when it was received, and the SHACL
results that held it back. Files are written atomically (temporary file,
fsync, rename), so a crash leaves either the whole entry or none. An entry
leaves the quarantine only when it is released into the store.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ID = re.compile(r"^[0-9a-f]{64}$")


class UnknownEntry(KeyError):
    """No quarantined event with that id."""


@dataclass
class Entry:
    """A quarantined event: ``id`` (the hex SHA-256 of its canonical form),
    the event, when it was received (ISO 8601) and the SHACL results (dicts)."""

    id: str
    event: dict[str, Any]
    received_at: str
    results: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        job = self.event.get("job") or {}
        return {"id": self.id, "receivedAt": self.received_at, "eventType": self.event.get("eventType"),
                "job": f"{job.get('namespace')}/{job.get('name')}" if job else None,
                "violations": sum(1 for r in self.results if r.get("severity") == "Violation")}


class Quarantine:
    """The quarantine folder of one data directory (created on first use)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def _path(self, entry_id: str) -> Path:
        if not _ID.match(entry_id):
            raise UnknownEntry(entry_id)
        return self.directory / f"{entry_id}.json"

    def put(self, event: dict[str, Any], content_hash: str, received_at: str, results: list[dict[str, Any]]) -> str:
        """Keep an event aside; returns its id. Putting the same event twice keeps one entry."""
        entry_id = content_hash.split(":", 1)[-1]
        self.directory.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"id": entry_id, "event": event, "receivedAt": received_at, "results": results},
                             ensure_ascii=False, indent=1).encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path(entry_id))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself is durable
        finally:
            os.close(dir_fd)
        return entry_id

    def get(self, entry_id: str) -> Entry:
        """The entry; raises :class:`UnknownEntry`."""
        path = self._path(entry_id)
        if not path.is_file():
            raise UnknownEntry(entry_id)
        doc = json.loads(path.read_text("utf-8"))
        return Entry(doc["id"], doc["event"], doc["receivedAt"], doc["results"])

    def entries(self) -> list[Entry]:
        """Every entry, oldest first."""
        if not self.directory.is_dir():
            return []
        out = [self.get(p.stem) for p in self.directory.glob("*.json") if _ID.match(p.stem)]
        return sorted(out, key=lambda e: (e.received_at, e.id))

    def remove(self, entry_id: str) -> None:
        self._path(entry_id).unlink(missing_ok=True)
