"""API keys and roles: who may call which route of the HTTP service.

Keys live in ``<data>/access/keys.json`` (mode 0600, in a 0700 folder), as
SHA-256 hashes only; the token itself is shown once, when it is created::

    pk_<8 hex: key id>_<secret: secrets.token_urlsafe(32)>

A presented token is looked up by its id and its SHA-256 compared with the
stored hash in constant time (:func:`hmac.compare_digest`). Clients send it
as ``Authorization: Bearer <token>`` (what openlineage-python's
``auth: {type: api_key, apiKey: ...}`` sends).

Roles and what they may do (permissions):

- ``emitter``: ``ingest`` (post events), nothing else;
- ``reader``: ``query`` (SPARQL, named queries, stats, validation, completeness);
- ``auditor``: ``query`` and ``inspect`` (exports, reports, quarantine listing);
- ``admin``: everything, including ``admin`` (keys, quarantine release,
  erasure requests, the audit log).

Authentication is required as soon as the key file holds any key, active or
revoked (revoking the last key does not open the service); ``provkg serve
--open`` (``PROVKG_AUTH=off``) runs open regardless. A running server re-reads
the file when it changes, so ``provkg keys create`` / ``revoke`` take effect at
once.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

ROLES = ("emitter", "reader", "auditor", "admin")
PERMISSIONS: dict[str, frozenset[str]] = {
    "emitter": frozenset({"ingest"}),
    "reader": frozenset({"query"}),
    "auditor": frozenset({"query", "inspect"}),
    "admin": frozenset({"ingest", "query", "inspect", "admin"}),
}
# the least role that holds each permission, for error messages
LEAST_ROLE = {"ingest": "emitter (or admin)", "query": "reader, auditor or admin", "inspect": "auditor or admin",
              "admin": "admin"}

OPEN_PATHS = frozenset({"/", "/healthz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
_INGEST_PATHS = frozenset({"/api/v1/lineage", "/api/v1/lineage/batch"})
_QUERY_PATHS = frozenset({"/sparql", "/api/v1/queries", "/api/v1/stats", "/api/v1/validation",
                          "/api/v1/completeness"})

# auditors: exports, reports, who a pseudonym is, confidential feature snapshots
_INSPECT_PATHS = frozenset({"/api/v1/export", "/api/v1/subjects/resolve", "/api/v1/snapshots"})

_TOKEN = re.compile(r"^pk_([0-9a-f]{8})_([A-Za-z0-9_-]{20,200})$")
_KEY_ID = re.compile(r"^[0-9a-f]{8}$")
_NAME = re.compile(r"^[\w .@:/-]{1,100}$")


def permission_for(method: str, path: str) -> str | None:
    """The permission a request needs: None (open), ``ingest``, ``query``,
    ``inspect`` or ``admin``. Anything not listed needs ``admin``."""
    if path in OPEN_PATHS:
        return None
    if path in _INGEST_PATHS:
        return "ingest"
    if path in _QUERY_PATHS or path.startswith("/api/v1/queries/"):
        return "query"
    if path in _INSPECT_PATHS or path.startswith("/api/v1/reports/"):
        return "inspect"
    if (path == "/api/v1/quarantine" or path.startswith("/api/v1/quarantine/")) and method in ("GET", "HEAD") \
            and not path.endswith("/release"):
        return "inspect"
    return "admin"


def allows(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class KeyError_(ValueError):
    """A key operation that cannot be done (unknown id, bad role or name)."""


@dataclass(frozen=True)
class ApiKey:
    """One key record (never the secret)."""

    id: str
    name: str
    role: str
    hash: str
    created: str
    revoked: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def public(self) -> dict[str, Any]:
        """The record without its hash: what `keys list` and the API show."""
        return {"id": self.id, "name": self.name, "role": self.role, "created": self.created,
                "revoked": self.revoked}


@dataclass(frozen=True)
class Principal:
    """Who made a request: a key (id, name, role), or ``anonymous`` when open."""

    key: str
    name: str | None
    role: str | None

    def may(self, permission: str | None) -> bool:
        return permission is None or self.role is None or allows(self.role, permission)


ANONYMOUS = Principal("anonymous", None, None)


class Denied(Exception):
    """Authentication failed: 401 (``status``) with a reason, and the key id
    presented if the token named one."""

    def __init__(self, reason: str, key: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.key = key


class KeyStore:
    """The key file of one data directory.

    Readers (the server) call :meth:`authenticate`, which re-reads the file
    when its modification time, size or inode changed. Writers (the CLI, the
    admin API) take an exclusive ``flock`` on ``access/.lock`` and replace the
    file atomically (temp file, fsync, rename), mode 0600.
    """

    def __init__(self, data: str | Path):
        self.folder = Path(data) / "access"
        self.path = self.folder / "keys.json"
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}
        self.problem: str | None = None  # why the key file could not be read, if it could not

    # -- reading -------------------------------------------------------------

    def _read(self) -> dict[str, ApiKey]:
        try:
            doc = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise ValueError(f"{self.path} is not a provkg key file")
        keys = {}
        for item in doc["keys"]:
            key = ApiKey(item["id"], item["name"], item["role"], item["hash"], item["created"], item.get("revoked"))
            keys[key.id] = key
        return keys

    def _fresh(self) -> dict[str, ApiKey]:
        """The keys, re-read if the file changed (mtime, size, inode) since the last look.

        A file that cannot be read fails closed: no key matches until it is fixed."""
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._keys = self._read() if stamp else {}
                    self.problem = None
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    self._keys = {}
                    self.problem = f"the key file {self.path} cannot be read ({exc}); no key is accepted"
                self._stamp = stamp
            return self._keys

    def keys(self) -> list[ApiKey]:
        return sorted(self._fresh().values(), key=lambda k: (k.created, k.id))

    def enabled(self) -> bool:
        """Whether authentication applies: the key file exists (a key was ever
        created). Revoking every key does not open the service."""
        return self.path.exists()

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal for an ``Authorization`` header; raises :class:`Denied`."""
        if not authorization:
            raise Denied("missing API key: send Authorization: Bearer <key> (create one with `provkg keys create`)")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Denied("send the API key as Authorization: Bearer <key>")
        token = token.strip()
        m = _TOKEN.match(token)
        if not m:
            raise Denied("malformed API key (expected pk_<id>_<secret>)")
        keys = self._fresh()
        if self.problem:
            raise Denied("the server cannot read its key file: no key is accepted until an admin fixes it",
                         m.group(1))
        key = keys.get(m.group(1))
        # compare even when the id is unknown, so timing says nothing about which ids exist
        expected = key.hash if key is not None else "0" * 64
        if not hmac.compare_digest(_digest(token), expected) or key is None:
            raise Denied("invalid API key", m.group(1))
        if not key.active:
            raise Denied(f"API key {key.id} ({key.name}) was revoked at {key.revoked}", key.id)
        return Principal(key.id, key.name, key.role)

    # -- writing -------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[dict[str, ApiKey]]:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        lock = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            keys = self._read()
            yield keys
            self._write(keys)
        finally:
            os.close(lock)  # releases the flock

    def _write(self, keys: dict[str, ApiKey]) -> None:
        doc = {"version": 1, "keys": [{"id": k.id, "name": k.name, "role": k.role, "hash": k.hash,
                                       "created": k.created, "revoked": k.revoked} for k in keys.values()]}
        fd, tmp = tempfile.mkstemp(prefix=".keys.", suffix=".tmp", dir=self.folder)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def create(self, role: str, name: str) -> tuple[ApiKey, str]:
        """A new key: (its record, the token — shown once, never stored)."""
        if role not in ROLES:
            raise KeyError_(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not _NAME.match(name or ""):
            raise KeyError_("name: 1-100 letters, digits, spaces or . _ - @ : /")
        with self._exclusive() as keys:
            key_id = secrets.token_hex(4)
            while key_id in keys:
                key_id = secrets.token_hex(4)
            token = f"pk_{key_id}_{secrets.token_urlsafe(32)}"
            key = ApiKey(key_id, name, role, _digest(token), _now())
            keys[key_id] = key
        return key, token

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (kept in the file, marked with the time); idempotent."""
        if not _KEY_ID.match(key_id or ""):
            raise KeyError_(f"no key {key_id!r} (ids are 8 hex digits; see `provkg keys list`)")
        with self._exclusive() as keys:
            key = keys.get(key_id)
            if key is None:
                raise KeyError_(f"no key {key_id!r} (see `provkg keys list`)")
            if key.active:
                key = ApiKey(key.id, key.name, key.role, key.hash, key.created, _now())
                keys[key_id] = key
        return key


__all__ = ["ROLES", "PERMISSIONS", "ApiKey", "Principal", "ANONYMOUS", "Denied", "KeyStore", "KeyError_",
           "permission_for", "allows", "OPEN_PATHS"]
