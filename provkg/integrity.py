"""Integrity of the record: signed checkpoints of the log's head, and the
verification behind ``provkg verify`` (the chain, the checkpoints, and that
the store's event graphs are exactly the projection of the log).

Checkpoints are Ed25519 signatures (RFC 8032, via ``cryptography``) over the
RFC 8785 canonical form of ``{"seq", "hash", "at"}``, appended to
``<data>/log/checkpoints.jsonl``; anyone holding the public key can check that
the log still contains that head — which also catches entries cut off the end.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .eventlog import EventLog, verify_chain
from .iris import IriMinter
from .store import LineageStore


def generate_signing_key(private_path: Path, public_path: Path) -> None:
    """Write a new Ed25519 key pair as PEM (private: PKCS#8, mode 0600; public: SubjectPublicKeyInfo)."""
    key = Ed25519PrivateKey.generate()
    private_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    private_path.chmod(0o600)
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))


def _load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def _load_public(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def sign_checkpoint(log: EventLog, private_key: Path) -> dict[str, Any]:
    """Sign the log's current head and append the checkpoint; returns it.
    Raises ``ValueError`` for an empty log or a key that is not Ed25519."""
    if log.head_seq == 0:
        raise ValueError("the log is empty: nothing to checkpoint")
    body = {"seq": log.head_seq, "hash": log.head_hash,
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    signature = _load_private(private_key).sign(rfc8785.dumps(body))
    checkpoint = {**body, "signature": base64.b64encode(signature).decode("ascii")}
    with (log.directory / "checkpoints.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(checkpoint) + "\n")
    return checkpoint


@dataclass
class VerifyReport:
    """What ``provkg verify`` found; ``ok`` when nothing."""

    entries: int = 0
    graphs: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "graphs": self.graphs, "checkpoints": self.checkpoints,
                "problems": self.problems}

    def to_text(self) -> str:
        head = (f"{'OK' if self.ok else 'TAMPERED'}: {self.entries} log entries, {self.graphs} event graphs, "
                f"{self.checkpoints} checkpoints verified")
        return "\n".join([head] + [f"  {p}" for p in self.problems]) + "\n"


def verify(data_dir: Path, minter: IriMinter, public_key: Path | None = None) -> VerifyReport:
    """Verify the log's chain, its signed checkpoints (with ``public_key``), and
    that the store's event graphs match the log one to one."""
    report = VerifyReport()
    log = EventLog(data_dir / "log", read_only=True)
    count, problems = verify_chain(log)
    report.entries = count
    report.problems += [str(p) for p in problems]
    hashes = {}
    for _line, text in log.lines():
        try:
            doc = json.loads(text)
            hashes[doc["seq"]] = (doc.get("hash"), doc.get("contentHash"))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    checkpoints = log.directory / "checkpoints.jsonl"
    if checkpoints.exists():
        key = _load_public(public_key) if public_key else None
        for number, text in enumerate(checkpoints.read_text("utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            cp = json.loads(text)
            body = {k: cp[k] for k in ("seq", "hash", "at")}
            if key is not None:
                try:
                    key.verify(base64.b64decode(cp["signature"]), rfc8785.dumps(body))
                except (InvalidSignature, ValueError):
                    report.problems.append(f"checkpoint {number} (seq {cp['seq']}): the signature does not verify")
                    continue
            found = hashes.get(cp["seq"])
            if found is None:
                report.problems.append(f"checkpoint {number}: the log has no entry seq {cp['seq']} "
                                       f"(entries up to it were removed)")
            elif found[0] != cp["hash"]:
                report.problems.append(f"checkpoint {number}: entry seq {cp['seq']} differs from the signed head")
            report.checkpoints += 1
    store_graphs = {g.value for g in LineageStore(data_dir, read_only=True).event_graphs()} \
        if (data_dir / "graph" / "CURRENT").exists() else set()
    report.graphs = len(store_graphs)
    logged = {minter.event_graph(content).value: seq for seq, (_h, content) in hashes.items() if content}
    for graph in sorted(set(logged) - store_graphs):
        report.problems.append(f"log entry seq {logged[graph]} is not in the store (graph {graph}); "
                               "`provkg serve` or `provkg rebuild` projects it")
    for graph in sorted(store_graphs - set(logged)):
        report.problems.append(f"store graph {graph} has no log entry: it was not written through provkg's log")
    return report
