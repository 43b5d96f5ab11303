"""The subject key store: pseudonyms and per-subject keys for data subjects.

Personal data never enters the event log or the store in the clear
(``docs/record.md``, "Erasure without breaking the chain"). Each data subject
seen in an event gets a row in ``<data>/subjects/vault.sqlite3``:

    lookup     HMAC-SHA256(index key, NFC(subject identifier))  -- the identifier itself is stored nowhere
    pseudonym  ``ps-`` + 32 random hex digits                    -- what the log and the store hold
    key        64 random bytes, the subject's AES-256-SIV key    -- seals their feature snapshots

The index key (``<data>/subjects/index.key``, 32 random bytes, mode 0600) keeps
the lookup column from being a dictionary of identifiers. Erasing a subject
deletes their row (SQLite ``secure_delete`` overwrites the freed bytes) and
keeps a tombstone (pseudonym, time, erasure run): the pseudonym is random, so
nothing links it to the person any more, and their sealed snapshots cannot be
opened. The log and the store are not touched, so their hash chain still
verifies.

Sealing is deterministic (AES-SIV, RFC 5297): the same snapshot of the same
subject seals to the same text, so a retried event keeps its content hash and
is still recognised as a duplicate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

PSEUDONYM_PREFIX = "ps-"
SEALED_PREFIX = "aes-256-siv:"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS subject (
    lookup BLOB PRIMARY KEY, pseudonym TEXT UNIQUE NOT NULL, key BLOB NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS erased (
    pseudonym TEXT PRIMARY KEY, erased_at TEXT NOT NULL, erasure_run TEXT);
"""


class UnknownSubject(LookupError):
    """No key material for this subject: never seen, or already erased."""


class SnapshotUnavailable(LookupError):
    """A sealed snapshot cannot be opened; ``erased`` says whether because
    the subject's key was destroyed by an erasure (then ``erased_at`` and
    ``erasure_run`` say when and by which run)."""

    def __init__(self, message: str, erased: "Tombstone | None" = None):
        super().__init__(message)
        self.erased = erased


@dataclass(frozen=True)
class Tombstone:
    """What is left of an erased subject: the pseudonym, when, and the IRI of
    the erasure run that recorded it."""

    pseudonym: str
    erased_at: str
    erasure_run: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"pseudonym": self.pseudonym, "erasedAt": self.erased_at, "erasureRun": self.erasure_run}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def is_pseudonym(value: str) -> bool:
    """True for a string of the form this store gives out (``ps-`` + 32 hex digits)."""
    if not isinstance(value, str):
        return False
    rest = value[len(PSEUDONYM_PREFIX):]
    return value.startswith(PSEUDONYM_PREFIX) and len(rest) == 32 and all(c in "0123456789abcdef" for c in rest)


class SubjectVault:
    """The pseudonyms and keys of one data directory (``<data>/subjects``).

    Thread-safe. ``read_only`` opens the database for reading (beside a
    running server). Raises ``FileNotFoundError`` when opened read-only and
    the folder has no key store yet."""

    def __init__(self, directory: str | Path, read_only: bool = False):
        self.directory = Path(directory)
        self.read_only = read_only
        self._lock = threading.Lock()
        self._by_lookup: dict[bytes, tuple[str, bytes]] = {}
        self._by_pseudonym: dict[str, bytes] = {}
        db = self.directory / "vault.sqlite3"
        if read_only:
            if not db.exists():
                raise FileNotFoundError(f"no subject key store in {self.directory}")
            self._db = sqlite3.connect(f"file:{db}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            self._db = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
            # overwrite deleted rows (erased keys) instead of leaving them in free pages;
            # FULL sync: a pseudonym is durable before any log entry that uses it
            self._db.execute("PRAGMA secure_delete = ON")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.executescript(_SCHEMA)
            os.chmod(db, 0o600)
        self._index_key = self._load_index_key()

    def _load_index_key(self) -> bytes:
        path = self.directory / "index.key"
        if path.exists():
            return path.read_bytes()
        if self.read_only:
            raise FileNotFoundError(f"no index key in {self.directory}")
        key = secrets.token_bytes(32)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return key

    def close(self) -> None:
        self._db.close()

    def _lookup(self, subject_id: str) -> bytes:
        return hmac.new(self._index_key, unicodedata.normalize("NFC", subject_id).encode("utf-8"),
                        hashlib.sha256).digest()

    def _find(self, lookup: bytes) -> tuple[str, bytes] | None:
        found = self._by_lookup.get(lookup)
        if found is None:
            row = self._db.execute("SELECT pseudonym, key FROM subject WHERE lookup = ?", (lookup,)).fetchone()
            if row is not None:
                found = self._by_lookup[lookup] = (row[0], bytes(row[1]))
        return found

    def pseudonyms(self, subject_ids: list[str]) -> dict[str, str]:
        """The pseudonym of each subject identifier, creating (and making
        durable, in one transaction) those not seen before. Input: identifiers
        as emitted; output: identifier -> ``ps-<32 hex>``."""
        if self.read_only:
            raise PermissionError("the subject key store is open read-only")
        out: dict[str, str] = {}
        with self._lock:
            new: list[tuple[bytes, str, bytes, str]] = []
            for subject_id in dict.fromkeys(subject_ids):
                lookup = self._lookup(subject_id)
                found = self._find(lookup)
                if found is None:
                    found = (PSEUDONYM_PREFIX + secrets.token_hex(16), AESSIV.generate_key(512))
                    new.append((lookup, found[0], found[1], _now()))
                    self._by_lookup[lookup] = found
                out[subject_id] = found[0]
            if new:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.executemany("INSERT INTO subject VALUES (?, ?, ?, ?)", new)
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    for lookup, *_ in new:
                        self._by_lookup.pop(lookup, None)
                    raise
        return out

    def find(self, subject_id: str) -> str | None:
        """The pseudonym of a subject identifier, or None when the subject was
        never seen or has been erased. Creates nothing."""
        with self._lock:
            found = self._find(self._lookup(subject_id))
        return found[0] if found else None

    def key_of(self, pseudonym: str) -> bytes | None:
        """The AES-256-SIV key of a pseudonym, or None when there is none
        (unknown, or destroyed by an erasure)."""
        with self._lock:
            key = self._by_pseudonym.get(pseudonym)
            if key is None:
                row = self._db.execute("SELECT key FROM subject WHERE pseudonym = ?", (pseudonym,)).fetchone()
                if row is not None:
                    key = self._by_pseudonym[pseudonym] = bytes(row[0])
        return key

    def tombstone(self, pseudonym: str) -> Tombstone | None:
        """The erasure record of a pseudonym, or None when it was not erased."""
        row = self._db.execute("SELECT pseudonym, erased_at, erasure_run FROM erased WHERE pseudonym = ?",
                               (pseudonym,)).fetchone()
        return Tombstone(*row) if row else None

    def destroy(self, subject_id: str, erasure_run: str | None = None) -> Tombstone:
        """Erase a subject: delete their lookup, pseudonym link and key (the
        freed bytes overwritten), keep a tombstone. Durable on return.
        Raises :class:`UnknownSubject` when there is nothing to erase."""
        if self.read_only:
            raise PermissionError("the subject key store is open read-only")
        with self._lock:
            lookup = self._lookup(subject_id)
            found = self._find(lookup)
            if found is None:
                raise UnknownSubject("no key material for this subject: never seen, or already erased")
            tomb = Tombstone(found[0], _now(), erasure_run)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM subject WHERE lookup = ?", (lookup,))
                self._db.execute("INSERT OR REPLACE INTO erased VALUES (?, ?, ?)",
                                 (tomb.pseudonym, tomb.erased_at, tomb.erasure_run))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._by_lookup.pop(lookup, None)
            self._by_pseudonym.pop(found[0], None)
            # rebuild the file so no page of the old row lingers in the free list
            self._db.execute("VACUUM")
        return tomb

    def record_erasure_run(self, pseudonym: str, erasure_run: str) -> None:
        """Name the run that recorded an erasure on its tombstone."""
        with self._lock:
            self._db.execute("UPDATE erased SET erasure_run = ? WHERE pseudonym = ?", (erasure_run, pseudonym))

    def counts(self) -> dict[str, int]:
        """``{"subjects": live subjects, "erased": tombstones}``."""
        live = self._db.execute("SELECT COUNT(*) FROM subject").fetchone()[0]
        erased = self._db.execute("SELECT COUNT(*) FROM erased").fetchone()[0]
        return {"subjects": live, "erased": erased}


def _associated(pseudonym: str, context: str) -> list[bytes]:
    return [b"provkg feature snapshot v1", pseudonym.encode("utf-8"), context.encode("utf-8")]


def seal(key: bytes, pseudonym: str, context: str, value: Any) -> str:
    """Seal a JSON value for one subject: AES-256-SIV (RFC 5297) over its RFC
    8785 canonical form, bound to the pseudonym and ``context`` (the
    prediction id) as associated data. Output: ``aes-256-siv:<base64url>``;
    deterministic (same inputs, same text)."""
    sealed = AESSIV(key).encrypt(rfc8785.dumps(value), _associated(pseudonym, context))
    return SEALED_PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")


def unseal(vault: SubjectVault, pseudonym: str, context: str, token: str) -> Any:
    """Open what :func:`seal` sealed. Raises :class:`SnapshotUnavailable`
    when the subject was erased (``erased`` set), has no key, or the text was
    altered or belongs to another subject or context."""
    key = vault.key_of(pseudonym)
    if key is None:
        tomb = vault.tombstone(pseudonym)
        if tomb is not None:
            raise SnapshotUnavailable(f"the key of {pseudonym} was destroyed by an erasure at {tomb.erased_at}; "
                                      "the snapshot can no longer be opened", tomb)
        raise SnapshotUnavailable(f"no key for {pseudonym} in this store's subject key store")
    if not token.startswith(SEALED_PREFIX):
        raise SnapshotUnavailable("not a sealed snapshot")
    body = token[len(SEALED_PREFIX):]
    try:
        plain = AESSIV(key).decrypt(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)),
                                    _associated(pseudonym, context))
    except (InvalidTag, ValueError) as exc:
        raise SnapshotUnavailable("the sealed snapshot does not open with this subject's key: altered, "
                                  "or sealed for another subject or prediction") from exc
    return json.loads(plain)
