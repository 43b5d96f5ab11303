"""Take personal data out of an OpenLineage event before it is logged or stored.

Applied to every accepted event after validation and before hashing
(``docs/record.md``). Where the provkg facets carry personal data
(``docs/facets.md``):

- ``provkg_dataSubjects.subjects[]`` (dataset facet, on inputs, outputs or a
  DatasetEvent's dataset): each identifier -> its pseudonym;
- ``provkg_inference.predictions[].dataSubject`` -> pseudonym, and the
  prediction's ``featureSnapshot`` -> ``{"sealed": ...}`` with that
  subject's key (a snapshot of a prediction without a subject stays as sent);
- ``provkg_consent.records[].subject`` and ``provkg_erasureRequest.subject``
  -> pseudonym.

Pseudonyms come from :class:`provkg.subjects.SubjectVault`; the same
identifier gets the same pseudonym until it is erased, so retried deliveries
keep their content hash.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterator

from .subjects import SEALED_PREFIX, SubjectVault, seal


@dataclass
class Pseudonymised:
    """The event with personal data replaced, and the JSON pointers (RFC
    6901) of the values replaced (empty when the event had none, and then
    ``event`` is the input object itself)."""

    event: Any
    replaced: list[str] = field(default_factory=list)


def _datasets(event: dict) -> Iterator[tuple[str, dict]]:
    for side in ("inputs", "outputs"):
        items = event.get(side)
        if isinstance(items, list):
            for i, ds in enumerate(items):
                if isinstance(ds, dict):
                    yield f"/{side}/{i}", ds
    if isinstance(event.get("dataset"), dict):
        yield "/dataset", event["dataset"]


def _facet(holder: Any, name: str) -> dict | None:
    facets = holder.get("facets") if isinstance(holder, dict) else None
    facet = facets.get(name) if isinstance(facets, dict) else None
    return facet if isinstance(facet, dict) else None


def _places(event: dict) -> Iterator[tuple[str, dict, str]]:
    """(pointer, containing object, key) of every subject identifier."""
    for at, ds in _datasets(event):
        facet = _facet(ds, "provkg_dataSubjects")
        if facet and isinstance(facet.get("subjects"), list):
            for i in range(len(facet["subjects"])):
                yield f"{at}/facets/provkg_dataSubjects/subjects/{i}", facet["subjects"], i  # type: ignore[misc]
    run = event.get("run")
    inference = _facet(run, "provkg_inference")
    if inference and isinstance(inference.get("predictions"), list):
        for i, p in enumerate(inference["predictions"]):
            if isinstance(p, dict) and "dataSubject" in p:
                yield f"/run/facets/provkg_inference/predictions/{i}/dataSubject", p, "dataSubject"
    consent = _facet(run, "provkg_consent")
    if consent and isinstance(consent.get("records"), list):
        for i, r in enumerate(consent["records"]):
            if isinstance(r, dict) and "subject" in r:
                yield f"/run/facets/provkg_consent/records/{i}/subject", r, "subject"
    erasure = _facet(run, "provkg_erasureRequest")
    if erasure and "subject" in erasure:
        yield "/run/facets/provkg_erasureRequest/subject", erasure, "subject"


def pseudonymise(event: Any, vault: SubjectVault) -> Pseudonymised:
    """Replace the subject identifiers of a validated event by pseudonyms and
    seal the feature snapshots of predictions about a subject.

    Input: a decoded event that passed validation (a dict; anything else is
    returned unchanged). Output: a new event (the input is not modified) and
    the pointers replaced. New subjects are made durable in the vault before
    this returns. Raises ``sqlite3.Error`` / ``OSError`` when the vault
    cannot be written."""
    if not isinstance(event, dict) or not any(True for _ in _places(event)):
        return Pseudonymised(event)
    event = copy.deepcopy(event)
    places = [(at, holder, key) for at, holder, key in _places(event) if isinstance(holder[key], str)]
    pseudonyms = vault.pseudonyms([holder[key] for _, holder, key in places])
    replaced = []
    for at, holder, key in places:
        holder[key] = pseudonyms[holder[key]]
        replaced.append(at)
    inference = _facet(event.get("run"), "provkg_inference")
    for i, p in enumerate((inference or {}).get("predictions") or []):
        snapshot = p.get("featureSnapshot") if isinstance(p, dict) else None
        if not isinstance(snapshot, dict) or "sealed" in snapshot or not isinstance(p.get("dataSubject"), str):
            continue
        pseudonym = p["dataSubject"]
        key = vault.key_of(pseudonym)
        if key is None:  # erased between the two calls: nobody may read it any more
            raise RuntimeError(f"subject {pseudonym} was erased while its event was being taken in")
        p["featureSnapshot"] = {"sealed": seal(key, pseudonym, str(p.get("predictionId", "")), snapshot)}
        replaced.append(f"/run/facets/provkg_inference/predictions/{i}/featureSnapshot")
    return Pseudonymised(event, replaced)


__all__ = ["Pseudonymised", "pseudonymise", "SEALED_PREFIX"]
