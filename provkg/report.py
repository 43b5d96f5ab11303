"""The prediction provenance report: the answer of the ``prediction-provenance``
named query, written out stage by stage as Markdown (or HTML) an auditor can file.

Stages, from the decision back to the raw data: prediction, deployment, model
version, training run, evaluation, training data, upstream transformations
(runs with their jobs, SQL and code versions), source datasets, agents. Each
node lists its time and the facts recorded about it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import markdown as markdown_lib
from pyoxigraph import NamedNode, Variable

from .named_queries import QueryAnswer, bind_values, kind_of, load_named_queries, run_named_query
from .resources import queries_dir
from .store import LineageStore
from .vocab import PROVKG

# (section title, kinds in it), in the order a reader follows the chain back
SECTIONS = [
    ("Prediction", {"Prediction"}),
    ("Deployment", {"Deployment"}),
    ("Model version", {"ModelVersion", "Model"}),
    ("Training", {"TrainingRun", "HyperParameterSetting"}),
    ("Deployment and inference runs", {"DeploymentRun", "InferenceRun", "EvaluationRun"}),
    ("Features and labels", {"FeatureEngineeringRun", "LabellingRun", "FeatureSet", "Feature"}),
    ("Data (dataset versions and datasets)", {"DatasetVersion", "Dataset", "Column", "Entity"}),
    ("Other runs and jobs", {"Run", "Job"}),
    ("Agents and data subjects", {"Agent", "DataSubject", "ConsentRecord"}),
]

# facts shown for a node, by property local name -> label in the report
FACTS = {
    "generatedAtTime": "generated", "startedAtTime": "started", "endedAtTime": "ended",
    "runState": "state", "activeFrom": "active from", "activeUntil": "active until",
    "endpoint": "endpoint", "captureTier": "capture tier", "consequential": "consequential",
    "aboutSubject": "data subject", "featureSnapshot": "feature snapshot",
    "featureSnapshotDigest": "snapshot digest", "sealedFeatureSnapshot": "feature snapshot",
    "predictionOutput": "output",
    "artifactDigest": "artifact digest", "version": "version", "framework": "framework",
    "intendedUse": "intended use", "highRisk": "high risk", "provider": "provider",
    "algorithm": "algorithm", "codeVersion": "code version", "environment": "environment",
    "randomSeed": "random seed", "hasValue": "value", "specifiedBy": "hyperparameter",
    "job": "job", "sqlQuery": "SQL", "sourceCode": "source code", "codeURL": "code location",
    "codeRepository": "repository", "softwareVersion": "software version", "jobType": "job type",
    "namespace": "namespace", "name": "name", "description": "description",
}


@lru_cache(maxsize=1)
def _details_query() -> str:
    return (queries_dir() / "report" / "node-details.rq").read_text("utf-8")


def _details(store: LineageStore, node: str) -> dict[str, list[str]]:
    query = _details_query()
    facts: dict[str, list[str]] = {}
    for s in store.query(bind_values(query, {Variable("node"): NamedNode(node)})):
        local = s["property"].value.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        if local not in FACTS:
            continue
        shown = s["valueLabel"].value if s["valueLabel"] is not None else s["value"].value
        if local == "sealedFeatureSnapshot":  # its text is ciphertext: say where an auditor opens it
            shown = f"sealed with the data subject's key; auditors open it at /api/v1/snapshots?prediction={node}"
        if shown.startswith(PROVKG.iri):  # ontology individuals (capture tier, run state) by name
            shown = shown[len(PROVKG.iri):]
        facts.setdefault(FACTS[local], [])
        if shown not in facts[FACTS[local]]:
            facts[FACTS[local]].append(shown)
    return facts


def _nodes_of(answer: QueryAnswer, start: str, start_kind: str) -> dict[str, dict[str, Any]]:
    nodes: dict[str, dict[str, Any]] = {start: {"kind": start_kind, "label": None, "depth": 0, "time": None}}
    for depth, _from, _rel, node, kind, label, time in answer.rows:
        nodes.setdefault(node, {"kind": kind, "label": label, "depth": depth, "time": time})
    return nodes


def prediction_report(store: LineageStore, node: str, fmt: str = "markdown", depth: int = 40) -> str:
    """Render the provenance of a prediction or model version.

    Inputs: the store, the node IRI, ``fmt`` ``"markdown"`` or ``"html"``, the
    traversal depth. Output: the report text. Raises
    :class:`provkg.named_queries.QueryParameterError` for a bad IRI and
    ``ValueError`` for an unknown format or a node the store does not describe.
    """
    if fmt not in ("markdown", "html"):
        raise ValueError(f"unknown report format {fmt!r}; use markdown or html")
    query = load_named_queries()["prediction-provenance"]
    answer = run_named_query(store, query, {"node": node, "depth": str(depth)})
    start_types = " ".join(s["t"].value for s in store.query(
        bind_values("SELECT ?n ?t WHERE { ?n a ?t }", {Variable("n"): NamedNode(node)})))
    if not start_types:
        raise ValueError(f"the store holds nothing about {node}")
    nodes = _nodes_of(answer, node, kind_of(start_types))
    lines = [
        "# Provenance report",
        "",
        f"- subject of the report: `{node}`",
        f"- generated: {datetime.now(timezone.utc).isoformat(timespec='seconds')} by provkg "
        "(named query `prediction-provenance`, W3C PROV-O)",
        f"- reached: {len(nodes) - 1} nodes upstream over {len(answer.rows)} lineage edges",
        "",
    ]
    placed: set[str] = set()
    for title, kinds in SECTIONS:
        members = sorted((n for n, info in nodes.items() if info["kind"] in kinds and n not in placed),
                         key=lambda n: (nodes[n]["depth"], str(nodes[n]["time"] or ""), n))
        if not members:
            continue
        lines += [f"## {title}", ""]
        for n in members:
            placed.add(n)
            info = nodes[n]
            facts = _details(store, n)
            heading = info["label"] or (facts.get("name") or [n])[0]
            lines.append(f"### {heading}")
            lines.append("")
            lines.append(f"- IRI: `{n}`")
            lines.append(f"- kind: {info['kind']}, {info['depth']} step(s) back")
            for label, values in facts.items():
                if label in ("name", "namespace"):
                    continue
                shown = "; ".join(values)
                if "\n" in shown or len(shown) > 160:
                    lines.append(f"- {label}:")
                    lines.append("")
                    lines.append("  ```")
                    lines.extend("  " + part for part in shown.splitlines())
                    lines.append("  ```")
                else:
                    lines.append(f"- {label}: {shown}")
            lines.append("")
    lines += ["## Lineage edges", "", "| depth | from | relation | to |", "|---|---|---|---|"]
    for depth, frm, rel, to, _kind, _label, _time in answer.rows:
        lines.append(f"| {depth} | `{frm}` | `{rel.rsplit('#', 1)[-1]}` | `{to}` |")
    text = "\n".join(lines) + "\n"
    if fmt == "markdown":
        return text
    body = markdown_lib.markdown(text, extensions=["tables", "fenced_code"])
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Provenance report</title>"
            "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}code{font-size:90%}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
            f"</head><body>\n{body}\n</body></html>\n")
