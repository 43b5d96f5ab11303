"""GDPR erasure (Art. 17) and consent-withdrawal (Art. 7(3)) requests, recorded
as provenance.

A request is answered with the ``erasure-impact`` and ``consent-violations``
named queries, and then recorded the way every other fact enters provkg: as an
OpenLineage 2-0-2 RunEvent (job ``provkg/gdpr.erasure_request``) carrying the
``provkg_erasureRequest`` facet — who asked, when, under which article, what
was found, what was done — through the same validation, mapping and store.
This step identifies what the request touches; executing the erasure (key
destruction) is a separate step.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import __version__
from .ingest import Ingestor, IngestResult
from .named_queries import QueryAnswer, UnknownNode, load_named_queries, run_named_query

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

    def as_dict(self) -> dict[str, Any]:
        return {"findings": self.findings, "recorded": self.recorded.as_dict(),
                "impact": self.impact.as_dict(), "violations": self.violations.as_dict(),
                "runId": self.event["run"]["runId"]}


def request_event(subject: str, requested_by: str, article: str, findings: dict[str, int], action: str,
                  received_at: datetime) -> dict[str, Any]:
    """The OpenLineage RunEvent (COMPLETE) that records one request.

    Inputs: the pseudonymous subject id, the requester, ``A17`` or ``A7-3``,
    counts of what was found by kind, the action taken, the time received.
    """
    at = received_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    run_id = str(uuid.uuid5(_RUN_NAMESPACE, f"{subject}|{requested_by}|{article}|{at}"))
    return {
        "eventType": "COMPLETE",
        "eventTime": at,
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {"provkg_erasureRequest": {
            "_producer": PRODUCER, "_schemaURL": SCHEMA_URL, "subject": subject, "requestedBy": requested_by,
            "article": article, "receivedAt": at, "findings": findings, "action": action}}},
        "job": {"namespace": "provkg", "name": "gdpr.erasure_request"},
        "inputs": [],
        "outputs": [],
    }


def handle_erasure_request(ingestor: Ingestor, subject: str, requested_by: str, article: str = "A17",
                           action: str = "impact identified; erasure pending",
                           received_at: datetime | None = None) -> ErasureOutcome:
    """Answer a request for one data subject and record it as provenance.

    Raises :class:`provkg.named_queries.QueryParameterError` for a subject id
    that gives no valid IRI, ``ValueError`` for an unknown article."""
    if article not in ("A17", "A7-3"):
        raise ValueError(f"article must be A17 (erasure) or A7-3 (consent withdrawal), not {article!r}")
    named = load_named_queries()
    subject_iri = ingestor.mapper.iri.mint("subject", subject).value
    try:
        impact = run_named_query(ingestor.store, named["erasure-impact"], {"subject": subject_iri})
    except UnknownNode:  # nothing holds their data: the request is still recorded, with no findings
        impact = QueryAnswer("erasure-impact", {"subject": subject_iri}, [], [], summary={})
    violations = run_named_query(ingestor.store, named["consent-violations"], {"subject": subject_iri})
    findings = dict(impact.summary or {})
    findings["consentViolations"] = len({row[2] for row in violations.rows})
    event = request_event(subject, requested_by, article, findings, action,
                          received_at or datetime.now(timezone.utc))
    recorded = ingestor.ingest(event)
    return ErasureOutcome(impact, violations, findings, recorded, event)
