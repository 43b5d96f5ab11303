"""Deterministic IRIs from OpenLineage naming.

Every node provkg writes is named from what the event says (namespace + name
for jobs and datasets, runId for runs, the dataset version, the event's content
hash), never from a counter or a blank node. So events from different
producers about the same dataset meet in one node, and the same event posted
twice produces the same triples.

Each OpenLineage name part is percent-encoded as one IRI path segment
(RFC 3986 unreserved characters kept, everything else, including ``/``,
quotes, spaces and non-ASCII as UTF-8, escaped), so any name yields a valid,
unambiguous IRI under the configured base.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from pyoxigraph import NamedNode

DEFAULT_BASE = "urn:provkg:"


def segment(value: object) -> str:
    """One percent-encoded IRI path segment for an OpenLineage name part."""
    return quote(str(value), safe="")


def short_hash(*parts: str) -> str:
    """16 hex characters of SHA-256 over the parts; names qualified-influence nodes."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


class IriMinter:
    """Mints provkg IRIs under one base (default ``urn:provkg:``).

    The base must be an absolute IRI prefix ending in ``/``, ``#`` or ``:``;
    ``ValueError`` otherwise.
    """

    def __init__(self, base: str = DEFAULT_BASE):
        if not base or base[-1] not in "/#:" or ":" not in base:
            raise ValueError(f"base IRI must be absolute and end with '/', '#' or ':', got {base!r}")
        self.base = base

    def _node(self, *segments: str) -> NamedNode:
        return NamedNode(self.base + "/".join(segments))

    def job(self, namespace: str, name: str) -> NamedNode:
        return self._node("job", segment(namespace), segment(name))

    def run(self, run_id: str) -> NamedNode:
        # UUIDs are case-insensitive (RFC 4122): one run, one IRI
        return self._node("run", segment(str(run_id).lower()))

    def dataset(self, namespace: str, name: str) -> NamedNode:
        return self._node("dataset", segment(namespace), segment(name))

    def dataset_version(self, dataset: NamedNode, version: str) -> NamedNode:
        return NamedNode(f"{dataset.value}/version/{segment(version)}")

    def dataset_version_of_run(self, dataset: NamedNode, run_id: str) -> NamedNode:
        """The version of a dataset written by a run that reported no version facet."""
        return NamedNode(f"{dataset.value}/run/{segment(str(run_id).lower())}")

    def column(self, dataset: NamedNode, field: str) -> NamedNode:
        return NamedNode(f"{dataset.value}/column/{segment(field)}")

    def producer(self, producer: str) -> NamedNode:
        return self._node("agent", "producer", segment(producer))

    def owner(self, name: str) -> NamedNode:
        return self._node("agent", "owner", segment(name))

    def engine(self, name: str, version: str) -> NamedNode:
        return self._node("agent", "engine", segment(name), segment(version))

    def data_source(self, name: str) -> NamedNode:
        return self._node("datasource", segment(name))

    def assertion(self, name: str) -> NamedNode:
        return self._node("assertion", segment(name))

    def mint(self, kind: str, *parts: str) -> NamedNode:
        """``{base}{kind}/{part}/...`` with each part percent-encoded (subjects,
        deployments, predictions, metrics, hyperparameters, consent records)."""
        return self._node(kind, *(segment(p) for p in parts))

    def event_graph(self, content_hash: str) -> NamedNode:
        return self._node("event", segment(content_hash))

    @staticmethod
    def child(parent: NamedNode, kind: str, *keys: str) -> NamedNode:
        """A node owned by ``parent`` (a qualified influence, a measurement, ...)."""
        return NamedNode(f"{parent.value}/{kind}/{short_hash(*keys)}" if keys else f"{parent.value}/{kind}")
