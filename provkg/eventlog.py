"""The raw event log: append-only, durable, hash-chained. The store is a projection of it.

``<data>/log/events.jsonl`` holds one JSON object per accepted event, in the
order the events were accepted::

    {"seq": 7, "receivedAt": "...", "source": "http", "contentHash": "sha256:...",
     "raw": "<the event's JSON text as received>", "prev": "sha256:...", "hash": "sha256:..."}

An event that carried personal data is logged in its pseudonymous form (RFC
8785 text of the event after :mod:`provkg.pseudonymise`), and its entry lists
the JSON pointers of the values replaced under ``"pseudonymised"``.

``hash`` is the SHA-256 of the RFC 8785 (JCS) canonical form of the entry
without ``hash``; ``prev`` is the previous entry's ``hash`` (64 zeros for the
first), so changing, removing or reordering any entry breaks the chain at a
place :func:`verify_chain` names. Each entry is written and fsync'ed before
the event is acknowledged. A crash can leave only a torn last line, never
acknowledged; opening the log drops it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import rfc8785

GENESIS = "sha256:" + "0" * 64


def entry_hash(entry: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the RFC 8785 canonical form of an entry without its ``hash``."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return "sha256:" + hashlib.sha256(rfc8785.dumps(body)).hexdigest()


@dataclass(frozen=True)
class LogEntry:
    """One accepted event as logged: sequence number (from 1), receipt time
    (ISO 8601), source (``http``, ``batch``, a file), content hash of the
    event, its JSON text as received (pseudonymised, see the module text),
    the previous entry's hash and its own, and the pointers pseudonymised."""

    seq: int
    received_at: str
    source: str
    content_hash: str
    raw: str
    prev: str
    hash: str
    pseudonymised: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        doc = {"seq": self.seq, "receivedAt": self.received_at, "source": self.source,
               "contentHash": self.content_hash, "raw": self.raw, "prev": self.prev, "hash": self.hash}
        if self.pseudonymised:
            doc["pseudonymised"] = list(self.pseudonymised)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "LogEntry":
        return cls(doc["seq"], doc["receivedAt"], doc["source"], doc["contentHash"], doc["raw"], doc["prev"],
                   doc["hash"], tuple(doc.get("pseudonymised") or ()))

    def event(self) -> Any:
        return json.loads(self.raw)


class EventLog:
    """The log of one data directory (``<data>/log``); safe for concurrent appends."""

    def __init__(self, directory: str | Path, read_only: bool = False):
        self.directory = Path(directory)
        self.path = self.directory / "events.jsonl"
        self._lock = threading.Lock()
        self.head_seq, self.head_hash = 0, GENESIS
        if not read_only:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._drop_torn_tail()
        # the head is the last entry: read from the end, not the whole log (~11 KB an event)
        last = next(self.entries_backwards(), None)
        if last is not None:
            self.head_seq, self.head_hash = last[1].seq, last[1].hash

    def _drop_torn_tail(self) -> None:
        """A line without its newline was being written when the process died:
        it was never fsync'ed as a whole, so never acknowledged. Drop it."""
        if not self.path.exists():
            return
        with self.path.open("rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
            fh.truncate(_end_of_last_line(fh, size))
            fh.flush()
            os.fsync(fh.fileno())

    def append(self, raw: str, content_hash: str, received_at: str, source: str,
               pseudonymised: list[str] | None = None) -> LogEntry:
        """Append one entry and make it durable (write, flush, fsync) before returning."""
        return self.append_many([(raw, content_hash, received_at, source, pseudonymised)])[0]

    def append_many(self, items: list[tuple[str, str, str, str, list[str] | None]]) -> list[LogEntry]:
        """Append entries (raw, content hash, receipt time, source, pointers
        pseudonymised) in order, chained, and make them durable with one
        fsync before returning (group commit for the batch path)."""
        with self._lock:
            seq, prev = self.head_seq, self.head_hash
            bodies, lines = [], []
            for raw, content_hash, received_at, source, pseudonymised in items:
                seq += 1
                body: dict[str, Any] = {"seq": seq, "receivedAt": received_at, "source": source,
                                        "contentHash": content_hash, "raw": raw, "prev": prev}
                if pseudonymised:
                    body["pseudonymised"] = list(pseudonymised)
                body["hash"] = prev = entry_hash(body)
                bodies.append(body)
                lines.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n")
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write("".join(lines))
                fh.flush()
                os.fsync(fh.fileno())
            self.head_seq, self.head_hash = seq, prev
            return [LogEntry.from_json(b) for b in bodies]

    def lines(self) -> Iterator[tuple[int, str]]:
        """(line number from 1, text) of every line."""
        if not self.path.exists():
            return
        with self.path.open("r", encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    yield number, line

    def entries(self, offset: int = 0) -> Iterator[LogEntry]:
        """Every entry in file order (no chain check; see :func:`verify_chain`),
        from the line that starts at byte ``offset`` (from :meth:`entries_backwards`)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            fh.seek(offset)
            for line in fh:
                if line.strip():
                    yield LogEntry.from_json(json.loads(line))

    def entries_backwards(self) -> Iterator[tuple[int, LogEntry]]:
        """(byte offset of its line, entry) of every complete entry, the last
        first, reading the file from its end: what the last entries are costs
        the same at any length of log. A torn last line is not an entry."""
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            end = _end_of_last_line(fh, fh.seek(0, os.SEEK_END))
            for offset, line in _lines_backwards(fh, end):
                if line.strip():
                    yield offset, LogEntry.from_json(json.loads(line))


_BLOCK = 1 << 16


def _end_of_last_line(fh: BinaryIO, size: int) -> int:
    """The offset just after the last newline among the first ``size`` bytes (0 if none)."""
    pos = size
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        fh.seek(pos)
        found = fh.read(step).rfind(b"\n")
        if found >= 0:
            return pos + found + 1
    return 0


def _lines_backwards(fh: BinaryIO, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line) of each line among the first ``end`` bytes (which end
    with a newline), the last first; blocks read from the end."""
    pos, buf = end, b""  # buf: bytes from pos, read but not yet yielded; ends with a newline
    while pos > 0:
        step = min(max(_BLOCK, len(buf)), pos)  # a line longer than a block: read as much again
        pos -= step
        fh.seek(pos)
        buf = fh.read(step) + buf
        cut = buf.rfind(b"\n", 0, len(buf) - 1)  # the newline before buf's last line
        while cut >= 0:
            yield pos + cut + 1, buf[cut + 1:]
            buf = buf[:cut + 1]
            cut = buf.rfind(b"\n", 0, len(buf) - 1)
    if buf:
        yield 0, buf


@dataclass
class ChainProblem:
    """One break of the chain: ``kind`` is ``modified``, ``removed``,
    ``reordered`` or ``unreadable``; ``line`` and ``seq`` locate it."""

    kind: str
    line: int
    seq: int | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "line": self.line, "seq": self.seq, "detail": self.detail}

    def __str__(self) -> str:
        return f"line {self.line} (seq {self.seq}): {self.kind}: {self.detail}"


def verify_chain(log: EventLog) -> tuple[int, list[ChainProblem]]:
    """Check every entry's hash and the chain of ``seq`` and ``prev`` links.

    Output: (entries read, problems), each problem naming the entry:
    ``modified`` — its content no longer matches its hash, or (if its hash was
    recomputed too) the next entry's ``prev`` no longer matches it;
    ``removed`` — a ``seq`` is missing; ``reordered`` — ``seq`` goes backwards;
    ``unreadable`` — a line that is not a log entry."""
    problems: list[ChainProblem] = []
    docs: list[tuple[int, dict[str, Any]]] = []
    for number, line in log.lines():
        try:
            doc = json.loads(line)
            if not isinstance(doc.get("seq"), int):
                raise KeyError("seq")
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            problems.append(ChainProblem("unreadable", number, None, f"not a log entry: {exc}"))
            continue
        docs.append((number, doc))
    by_seq = {doc["seq"]: (number, doc) for number, doc in docs}
    for number, doc in docs:
        if entry_hash(doc) != doc.get("hash"):
            problems.append(ChainProblem("modified", number, doc["seq"], "the entry's content does not match its hash"))
    seen = set(by_seq)
    for seq in range(1, max(seen, default=0) + 1):
        if seq not in seen:
            after = by_seq.get(seq + 1)
            where = f"before line {after[0]}" if after else "at the end"
            problems.append(ChainProblem("removed", after[0] if after else 0, seq, f"entry seq {seq} is missing ({where})"))
    for (n1, d1), (n2, d2) in zip(docs, docs[1:]):
        if d2["seq"] < d1["seq"]:
            problems.append(ChainProblem("reordered", n2, d2["seq"],
                                         f"seq {d2['seq']} stands after seq {d1['seq']} (line {n1})"))
    for seq, (number, doc) in sorted(by_seq.items()):
        previous = by_seq.get(seq - 1)
        expected = GENESIS if seq == 1 else (previous[1].get("hash") if previous else None)
        if expected is not None and doc.get("prev") != expected and entry_hash(doc) == doc.get("hash"):
            culprit = previous[1] if previous else None
            problems.append(ChainProblem(
                "modified", previous[0] if previous else number, seq - 1 if previous else seq,
                "its hash no longer matches the prev of the next entry (seq "
                f"{seq}): it was replaced" if culprit else "prev does not link to the start of the log"))
    problems.sort(key=lambda p: (p.line, p.kind))
    return len(docs), problems
