"""Validation of OpenLineage events against the OpenLineage JSON Schemas.

Implements OpenLineage 2-0-2: the core schema (``OpenLineage.json``, draft
2020-12, ``oneOf`` RunEvent / DatasetEvent / JobEvent) and every standard facet
schema (``facets/*.json`` and ``registry/**/facets/*.json``).

A standard facet is recognised the way OpenLineage defines it: by its key in
the facet container (``run.facets``, ``job.facets``, dataset ``facets``,
``inputFacets``, ``outputFacets``) together with the facet kind its schema
extends (RunFacet, JobFacet, DatasetFacet, InputDatasetFacet,
OutputDatasetFacet). Its schema version is the one named in its ``_schemaURL``
when that exact ``$id`` is held; otherwise the newest held version of the same
MODEL (major) version, since SchemaVer ADDITION and REVISION changes only add
optional fields (``spec/Versioning.md``); a MODEL version provkg does not hold
is checked only as a BaseFacet; a ``_schemaURL`` that names no facet version
(``#MyCustomJobFacet``) gets the newest held version. Facets with keys no
standard facet uses are custom facets: kept, and checked only as BaseFacet —
except provkg's own custom facets (``provkg_*``, schemas in ``facets/``),
which are validated like standard ones.

Real emitters omit ``schemaURL``; a missing one is accepted and recorded as
absent (see :func:`validate_event`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .resources import facets_dir, openlineage_spec_dir

# JSON Schema 2020-12 treats "format" as an annotation. We check one format,
# "date-time", because every time we map must be a time; but as ISO 8601 the
# way real emitters write it: the openlineage-python client sends times with
# no offset and Java emitters send nanoseconds, both valid xsd:dateTime. "uuid"
# and "uri" stay annotations: the compatibility-test corpus uses a runId of
# "run_id" and the spec's own examples put "string" where a URI is declared.
_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_iso_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _ISO_DATE_TIME.match(value):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))  # raises on 2024-13-40
    return True


def _is_iso_date_time_fast(value: str) -> bool:
    try:
        return _is_iso_date_time(value)
    except ValueError:
        return False


# Two validators over the same schemas: jsonschema-rs (compiled, ~50x faster)
# decides whether an event is valid; only an invalid one goes through the
# python-jsonschema validator, whose errors give the pointers and messages we
# report. A fault is therefore always confirmed by python-jsonschema.
def _fast(schema: dict, registry: jsonschema_rs.Registry, formats: bool) -> Any:
    return jsonschema_rs.validator_for(schema, registry=registry, validate_formats=formats,
                                       formats={"date-time": _is_iso_date_time_fast} if formats else None)

PROVKG_FACETS = "https://w3id.org/provkg/spec/facets/"
_FACET_VERSION = re.compile(r"/spec/facets/(\d+)-(\d+)-(\d+)/([A-Za-z0-9_]+)\.json")

# Facet container name in an event -> the facet kind its schemas extend.
_CONTAINER_KIND = {
    "run": "RunFacet",
    "job": "JobFacet",
    "facets": "DatasetFacet",
    "inputFacets": "InputDatasetFacet",
    "outputFacets": "OutputDatasetFacet",
}


@dataclass(frozen=True)
class Fault:
    """One reason an event was rejected.

    ``pointer`` is an RFC 6901 JSON pointer into the submitted event
    (``""`` for the whole event); ``message`` says what is wrong there.
    """

    pointer: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


@dataclass(frozen=True)
class _FacetSchema:
    schema_id: str
    version: tuple[int, int, int]
    validator: Draft202012Validator
    fast: Any  # the jsonschema-rs validator of the same schema


def _pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _version_of(schema_id: str) -> tuple[int, int, int]:
    m = _FACET_VERSION.search(schema_id)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else (0, 0, 0)


class EventValidator:
    """Validates OpenLineage events; build once, use for many events.

    Input: the OpenLineage spec folder (default: :func:`openlineage_spec_dir`).
    Raises ``ResourceNotFound`` if it cannot be found and ``ValueError`` if a
    schema file in it is not valid JSON.
    """

    def __init__(self, spec_dir: str | Path | None = None):
        self.spec_dir = Path(spec_dir) if spec_dir else openlineage_spec_dir()
        core = json.loads((self.spec_dir / "OpenLineage.json").read_text("utf-8"))
        self.core_id: str = core["$id"]
        resources = [(core["$id"], Resource.from_contents(core, default_specification=DRAFT202012))]
        facet_files = (sorted(self.spec_dir.glob("facets/*.json"))
                       + sorted(self.spec_dir.glob("registry/**/facets/*.json"))
                       + sorted(facets_dir().glob("*.json")))  # provkg's own custom facets
        facet_docs = []
        for path in facet_files:
            try:
                doc = json.loads(path.read_text("utf-8"))
            except json.JSONDecodeError as exc:  # a broken spec folder is a setup error
                raise ValueError(f"facet schema {path} is not valid JSON: {exc}") from exc
            if "$id" not in doc:
                continue
            resources.append((doc["$id"], Resource.from_contents(doc, default_specification=DRAFT202012)))
            facet_docs.append(doc)
        self.registry: Registry = Registry().with_resources(resources)
        self._core = Draft202012Validator(core, registry=self.registry, format_checker=_FORMATS)
        fast_registry = jsonschema_rs.Registry([(uri, r.contents) for uri, r in resources],
                                               draft=jsonschema_rs.Draft202012)
        self._core_fast = _fast(core, fast_registry, True)
        # (facet kind, facet key) -> held versions, newest first
        self._facets: dict[tuple[str, str], list[_FacetSchema]] = {}
        for doc in facet_docs:
            for kind, key in self._facet_keys(doc):
                # no format checks inside OpenLineage's facets: the client's own
                # fixtures put dates ("2020-01-01") where nominalTime declares
                # date-time; provkg's own facets are checked strictly
                own = doc["$id"].startswith(PROVKG_FACETS)
                validator = Draft202012Validator(doc, registry=self.registry,
                                                 format_checker=_FORMATS if own else None)
                entry = _FacetSchema(doc["$id"], _version_of(doc["$id"]), validator, _fast(doc, fast_registry, own))
                self._facets.setdefault((kind, key), []).append(entry)
        for versions in self._facets.values():
            versions.sort(key=lambda f: f.version, reverse=True)

    @staticmethod
    def _facet_keys(doc: dict) -> list[tuple[str, str]]:
        """The (kind, key) pairs a facet schema file defines."""
        out = []
        for key, prop in doc.get("properties", {}).items():
            ref = prop.get("$ref", "")
            definition = doc.get("$defs", {}).get(ref.rsplit("/", 1)[-1], {}) if ref else {}
            text = json.dumps(definition)
            for kind in ("InputDatasetFacet", "OutputDatasetFacet", "DatasetFacet", "RunFacet", "JobFacet"):
                if f"#/$defs/{kind}\"" in text:
                    out.append((key, kind))
                    break
        return [(kind, key) for key, kind in out]

    @property
    def standard_facets(self) -> dict[tuple[str, str], list[str]]:
        """Held standard facets: (kind, key) -> schema ``$id`` list, newest first."""
        return {k: [f.schema_id for f in v] for k, v in self._facets.items()}

    def _select(self, kind: str, key: str, schema_url: Any) -> _FacetSchema | None:
        versions = self._facets.get((kind, key))
        if not versions:
            return None
        if isinstance(schema_url, str):
            base = schema_url.split("#", 1)[0]
            for f in versions:
                if f.schema_id == base:
                    return f
            wanted = _version_of(base)
            if wanted != (0, 0, 0):
                same_model = [f for f in versions if f.version[0] == wanted[0]]
                # a MODEL version we do not hold is not comparable with the
                # ones we do: the facet is checked only as a BaseFacet
                return same_model[0] if same_model else None
        return versions[0]

    def validate(self, event: Any) -> list[Fault]:
        """Validate one event.

        Input: a decoded JSON value. Output: the list of faults, empty when the
        event conforms (OpenLineage 2-0-2 core plus standard facets). A missing
        top-level ``schemaURL`` is tolerated (real emitters omit it).
        """
        if not isinstance(event, dict):
            return [Fault("", f"an OpenLineage event must be a JSON object, not {type(event).__name__}")]
        probe = event if "schemaURL" in event else {**event, "schemaURL": self.core_id + "#/$defs/RunEvent"}
        if not self._core_fast.is_valid(probe):
            faults = self._core_faults(probe)
            if faults:
                return faults
        return self._facet_faults(event)

    def _core_faults(self, event: dict) -> list[Fault]:
        errors = list(self._core.iter_errors(event))
        if not errors:
            return []
        # oneOf over three event kinds hides the useful message; report the
        # errors of the kind the event most plausibly is.
        kind = _event_kind(event)
        sub = Draft202012Validator(
            {"$ref": f"{self.core_id}#/$defs/{kind}"},
            registry=self.registry,
            format_checker=self._core.format_checker,
        )
        detailed = list(sub.iter_errors(event))
        if not detailed:
            return [Fault("", e.message) for e in errors]
        return _faults_from(detailed)

    def _facet_faults(self, event: dict) -> list[Fault]:
        faults: list[Fault] = []
        for pointer, kind, facets in _facet_containers(event):
            for key, facet in facets.items():
                if not isinstance(facet, dict):
                    continue
                chosen = self._select(kind, key, facet.get("_schemaURL"))
                if chosen is None:
                    continue  # a custom facet: kept as it is
                if chosen.fast.is_valid({key: facet}):
                    continue
                for err in chosen.validator.iter_errors({key: facet}):
                    faults.extend(
                        Fault(pointer + _pointer(list(e.absolute_path)), f"{e.message} (facet schema {chosen.schema_id})")
                        for e in _leaf_errors(err)
                    )
        return faults


def _leaf_errors(err: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """Flatten allOf/anyOf wrappers to the errors that name a real fault."""
    if err.context:
        best = jsonschema.exceptions.best_match(err.context)
        return _leaf_errors(best) if best is not None else [err]
    return [err]


def _faults_from(errors: list[jsonschema.ValidationError]) -> list[Fault]:
    seen: set[tuple[str, str]] = set()
    out = []
    for err in errors:
        for leaf in _leaf_errors(err):
            f = (_pointer(leaf.absolute_path), leaf.message)
            if f not in seen:
                seen.add(f)
                out.append(Fault(*f))
    return out


def _event_kind(event: dict) -> str:
    """RunEvent, DatasetEvent or JobEvent, as the event's shape suggests."""
    url = event.get("schemaURL")
    if isinstance(url, str):
        for kind in ("RunEvent", "DatasetEvent", "JobEvent"):
            if url.endswith(kind):
                return kind
    if "dataset" in event:
        return "DatasetEvent"
    if "run" in event or "eventType" in event:
        return "RunEvent"
    return "JobEvent"


def _facet_containers(event: dict):
    """Yield (JSON pointer, facet kind, facets dict) for every facet container."""

    def facets_of(obj: Any, pointer: str, name: str, kind: str):
        if isinstance(obj, dict) and isinstance(obj.get(name), dict):
            yield pointer + "/" + name, kind, obj[name]

    yield from facets_of(event.get("run"), "/run", "facets", "RunFacet")
    yield from facets_of(event.get("job"), "/job", "facets", "JobFacet")
    yield from facets_of(event.get("dataset"), "/dataset", "facets", "DatasetFacet")
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        datasets = event.get(side)
        if not isinstance(datasets, list):
            continue
        for i, ds in enumerate(datasets):
            yield from facets_of(ds, f"/{side}/{i}", "facets", "DatasetFacet")
            yield from facets_of(ds, f"/{side}/{i}", extra, _CONTAINER_KIND[extra])
