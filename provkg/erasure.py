"""GDPR erasure (Art. 17) and consent-withdrawal (Art. 7(3)) requests, recorded
as provenance.

A request is answered with the ``erasure-impact`` and ``consent-violations``
named queries, and then recorded the way every other fact enters provkg: as an
OpenLineage 2-0-2 RunEvent (job ``provkg/gdpr.erasure_request``) carrying the
``provkg_erasureRequest`` facet — who asked, when, under which article, what
was found, what was done — through the same validation, mapping and store.
This step identifies what the request touches; executing the erasure
(:func:`execute_erasure`, admins only) destroys the subject's key material in
the subject key store (:mod:`provkg.subjects`) and records that too, as a
second RunEvent whose facet has ``executedAt``. The log and the store are not
rewritten: they only ever held the subject's pseudonym and sealed snapshots,
which nothing can link to the person or open any more, so ``provkg verify``
still passes (``docs/record.md``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import __version__
from .ingest import Ingestor, IngestResult
from .named_queries import QueryAnswer, UnknownNode, load_named_queries, run_named_query
from .subjects import Tombstone, UnknownSubject

if TYPE_CHECKING:
    from .step_index import StepIndex

PRODUCER = f"https://w3id.org/provkg/{__version__}"
SCHEMA_URL = "https://w3id.org/provkg/spec/facets/1-0-0/ErasureRequestRunFacet.json"
_RUN_NAMESPACE = uuid.UUID("6f1d3c52-0d0a-4b52-9d1e-5b7a0b6c2a11")


@dataclass
class ErasureOutcome:
    """The impact answer, the violations answer, the findings recorded, and
    the ingestion result of the request's own event."""

    impact: QueryAnswer
    violations: QueryAnswer
    findings: dict[str, int]
    recorded: IngestResult
    event: dict[str, Any]
    subject_iri: str | None = None
    erased: Tombstone | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"findings": self.findings, "recorded": self.recorded.as_dict(),
               "impact": self.impact.as_dict(), "violations": self.violations.as_dict(),
               "runId": self.event["run"]["runId"], "subject": self.subject_iri}
        if self.erased is not None:
            out["erased"] = self.erased.as_dict()
        return out


def _utc(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def request_event(subject: str, requested_by: str, article: str, findings: dict[str, int], action: str,
                  received_at: datetime, executed_at: str | None = None) -> dict[str, Any]:
    """The OpenLineage RunEvent (COMPLETE) that records one request, or (with
    ``executed_at``, ISO 8601) its execution.

    Inputs: the subject's identifier (pseudonymised on ingest) or pseudonym,
    the requester, ``A17`` or ``A7-3``, counts of what was found by kind, the
    action taken, the time received. Output: the event as a dict."""
    at = _utc(received_at)
    run_id = str(uuid.uuid5(_RUN_NAMESPACE, f"{subject}|{requested_by}|{article}|{at}|{executed_at or ''}"))
    facet = {"_producer": PRODUCER, "_schemaURL": SCHEMA_URL, "subject": subject, "requestedBy": requested_by,
             "article": article, "receivedAt": at, "findings": findings, "action": action}
    if executed_at:
        facet["executedAt"] = executed_at
    return {
        "eventType": "COMPLETE",
        "eventTime": at,
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {"provkg_erasureRequest": facet}},
        "job": {"namespace": "provkg", "name": "gdpr.erasure_request"},
        "inputs": [],
        "outputs": [],
    }


def _answer(ingestor: Ingestor, subject_iri: str | None,
            index: StepIndex | None = None) -> tuple[QueryAnswer, QueryAnswer, dict[str, int]]:
    named = load_named_queries()
    impact = QueryAnswer("erasure-impact", {"subject": subject_iri}, [], [], summary={})
    violations = QueryAnswer("consent-violations", {"subject": subject_iri}, [], [])
    if subject_iri is not None:
        try:
            # every row, not a page: the findings and the record name all of them
            impact = run_named_query(ingestor.store, named["erasure-impact"],
                                     {"subject": subject_iri, "limit": str(2 ** 31)}, index=index)
        except UnknownNode:  # nothing holds their data: the request is still recorded, with no findings
            pass
        violations = run_named_query(ingestor.store, named["consent-violations"], {"subject": subject_iri})
    findings = dict(impact.summary or {})
    findings["consentViolations"] = len({row[2] for row in violations.rows})
    return impact, violations, findings


def subject_iri(ingestor: Ingestor, subject: str) -> str | None:
    """The store's IRI of a data subject given by identifier: through its
    pseudonym when the ingestor has a subject key store (None when the store
    knows no such subject), else minted from the identifier."""
    if ingestor.vault is None:
        return ingestor.mapper.iri.mint("subject", subject).value
    pseudonym = ingestor.vault.find(subject)
    return ingestor.mapper.iri.mint("subject", pseudonym).value if pseudonym else None


def handle_erasure_request(ingestor: Ingestor, subject: str, requested_by: str, article: str = "A17",
                           action: str = "impact identified; erasure pending",
                           received_at: datetime | None = None, index: StepIndex | None = None) -> ErasureOutcome:
    """Answer a request for one data subject (by identifier) and record it as provenance.

    ``index``: the server's step index; the erasure impact is walked from it
    when it is ready (the same answer as the walk of the store). Raises
    :class:`provkg.named_queries.QueryParameterError` for a subject id that
    gives no valid IRI, ``ValueError`` for an unknown article."""
    if article not in ("A17", "A7-3"):
        raise ValueError(f"article must be A17 (erasure) or A7-3 (consent withdrawal), not {article!r}")
    iri = subject_iri(ingestor, subject)
    impact, violations, findings = _answer(ingestor, iri, index)
    event = request_event(subject, requested_by, article, findings, action,
                          received_at or datetime.now(timezone.utc))
    recorded = ingestor.ingest(event)
    return ErasureOutcome(impact, violations, findings, recorded, event, iri or subject_iri(ingestor, subject))


def execute_erasure(ingestor: Ingestor, subject: str, requested_by: str,
                    received_at: datetime | None = None, index: StepIndex | None = None) -> ErasureOutcome:
    """Carry out GDPR Art. 17 erasure for one data subject (by identifier).

    Finds what the subject's data reached (as :func:`handle_erasure_request`),
    destroys the subject's key material (:meth:`SubjectVault.destroy`: the
    identifier-to-pseudonym link and the key that seals their feature
    snapshots), then records the execution as a RunEvent with ``executedAt``.
    ``index`` as for :func:`handle_erasure_request`. Raises
    :class:`provkg.subjects.UnknownSubject` when the store holds no key
    material for the subject (never seen, or already erased), ``ValueError``
    when the ingestor has no subject key store."""
    vault = ingestor.vault
    if vault is None:
        raise ValueError("this store has no subject key store; nothing can be erased")
    pseudonym = vault.find(subject)
    if pseudonym is None:
        raise UnknownSubject("no key material for this subject: never seen, or already erased")
    iri = ingestor.mapper.iri.mint("subject", pseudonym).value
    impact, violations, findings = _answer(ingestor, iri, index)
    tomb = vault.destroy(subject)
    about = len({row[3] for row in impact.rows if str(row[2]).endswith("#subjectOf")})
    held = len({row[3] for row in impact.rows if str(row[2]).endswith("#heldIn")})
    action = ("erasure executed: the subject's pseudonym link and snapshot key were destroyed; "
              f"{about} prediction(s) about the subject and {held} dataset version(s) holding their records "
              "now name only an unlinkable pseudonym")
    event = request_event(pseudonym, requested_by, "A17", findings, action,
                          received_at or datetime.now(timezone.utc), executed_at=tomb.erased_at)
    recorded = ingestor.ingest(event, pseudonymous=True)
    vault.record_erasure_run(pseudonym, event["run"]["runId"])
    tomb = Tombstone(tomb.pseudonym, tomb.erased_at, event["run"]["runId"])
    return ErasureOutcome(impact, violations, findings, recorded, event, iri, tomb)
