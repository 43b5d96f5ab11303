"""Opening a prediction's sealed feature snapshot, for auditors.

The store holds a prediction's snapshot only sealed with its data subject's
key (``provkg:sealedFeatureSnapshot``, see :mod:`provkg.subjects`). Opening it
needs the subject key store of the same data directory; after the subject's
erasure it cannot be opened by anyone.
"""

from __future__ import annotations

from typing import Any

from pyoxigraph import DefaultGraph, Literal, NamedNode

from .store import LineageStore
from .subjects import SnapshotUnavailable, SubjectVault, unseal
from .vocab import PROVKG, RDFS


class NoSnapshot(LookupError):
    """The node is not a prediction with a sealed feature snapshot."""


def _one(store: LineageStore, subject: NamedNode, predicate: NamedNode) -> Any:
    for quad in store.store.quads_for_pattern(subject, predicate, None, DefaultGraph()):
        return quad.object
    return None


def open_snapshot(store: LineageStore, vault: SubjectVault, prediction: str) -> dict[str, Any]:
    """The feature snapshot of one prediction, unsealed.

    Input: the prediction's IRI. Output: ``{"prediction", "subject",
    "snapshot"}`` where ``snapshot`` is the ``featureSnapshot`` object the
    emitter sent (``uri``, ``digest``, ``features``). Raises
    :class:`NoSnapshot` when the node has no sealed snapshot (or names no
    subject), :class:`provkg.subjects.SnapshotUnavailable` when it cannot be
    opened (``erased`` is set when an erasure destroyed the key)."""
    try:
        node = NamedNode(prediction)
    except ValueError as exc:
        raise NoSnapshot(f"{prediction!r} is not an IRI: {exc}") from None
    sealed = _one(store, node, PROVKG.sealedFeatureSnapshot)
    subject = _one(store, node, PROVKG.aboutSubject)
    if not isinstance(sealed, Literal) or not isinstance(subject, NamedNode):
        raise NoSnapshot(f"{prediction} is not a prediction with a sealed feature snapshot")
    pseudonym = _one(store, subject, RDFS.label)
    prediction_id = _one(store, node, RDFS.label)
    if not isinstance(pseudonym, Literal) or not isinstance(prediction_id, Literal):
        raise SnapshotUnavailable(f"{prediction}: the subject's pseudonym or the prediction id is missing")
    value = unseal(vault, pseudonym.value, prediction_id.value, sealed.value)
    return {"prediction": prediction, "subject": subject.value, "snapshot": value}
