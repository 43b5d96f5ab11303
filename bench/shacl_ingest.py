"""Benchmark: what per-event SHACL validation adds to ingestion.

Ingests the same events twice into fresh on-disk stores — once with SHACL off,
once in ``flag`` mode (validation of every event before it is stored) — and
prints the per-event ingest time of each, the time the validation itself
takes, and the ratio of its median to the 5 ms target (issue: SHACL at
ingest). Events: the demo estate over ``--days`` days plus every valid event
of the shared OpenLineage corpora.

    python bench/shacl_ingest.py [--days 14] [--json bench/results/shacl_ingest.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from provkg import __version__  # noqa: E402
from provkg.demo import demo_events  # noqa: E402
from provkg.ingest import Ingestor, event_files, read_events  # noqa: E402
from provkg.iris import IriMinter  # noqa: E402
from provkg.shacl import EventShapesValidator, Shapes  # noqa: E402
from provkg.store import LineageStore  # noqa: E402
from provkg.validation import EventValidator  # noqa: E402

TARGET_MS = 5.0


def corpus_events() -> list[dict]:
    events_dir = REPO.parent / "shared" / "openlineage" / "events"
    out = []
    for path in event_files([events_dir]):
        for event, _source, problem in read_events(path):
            if problem is None:
                out.append(event)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(events: list[dict], mode: str, folder: Path) -> tuple[list[float], list[float], int]:
    """Per-event ingest times (ms), per-event validation times (ms), accepted count."""
    store = LineageStore(folder / mode)
    shapes = EventShapesValidator(Shapes()) if mode != "off" else None
    ingestor = Ingestor(store, EventValidator(), IriMinter(), shapes, mode)
    validation_ms: list[float] = []
    if shapes is not None:  # time the validation step itself, as ingest calls it
        original = shapes.submit  # in this process (no workers), submit validates before it returns

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                validation_ms.append(1000 * (time.perf_counter() - start))

        shapes.submit = timed
    ingest_ms = []
    accepted = 0
    for event in events:
        start = time.perf_counter()
        result = ingestor.ingest(event)
        ingest_ms.append(1000 * (time.perf_counter() - start))
        accepted += result.status == "accepted"
    return ingest_ms, validation_ms, accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14, help="days of the demo estate (21 runs a day)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    events = demo_events(days=args.days) + corpus_events()
    with tempfile.TemporaryDirectory() as tmp:
        off, _, accepted_off = run(events, "off", Path(tmp))
        flag, validation, accepted_flag = run(events, "flag", Path(tmp))
    added = [b - a for a, b in zip(off, flag)]
    figures = {
        "events": len(events), "accepted": [accepted_off, accepted_flag],
        "ingest_ms_off": {"median": statistics.median(off), "p90": percentile(off, 0.9)},
        "ingest_ms_flag": {"median": statistics.median(flag), "p90": percentile(flag, 0.9)},
        "added_ms": {"median": statistics.median(added), "p90": percentile(added, 0.9)},
        "validation_ms": {"median": statistics.median(validation), "p90": percentile(validation, 0.9),
                          "p99": percentile(validation, 0.99), "max": max(validation)},
        "target_ms": TARGET_MS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "provkg": __version__},
    }
    figures["ratio_to_target"] = figures["validation_ms"]["median"] / TARGET_MS
    print(f"{len(events)} events ({args.days} demo days + shared corpora), accepted {accepted_off} / {accepted_flag}")
    print(f"ingest per event, SHACL off : median {figures['ingest_ms_off']['median']:.2f} ms, "
          f"p90 {figures['ingest_ms_off']['p90']:.2f} ms")
    print(f"ingest per event, SHACL flag: median {figures['ingest_ms_flag']['median']:.2f} ms, "
          f"p90 {figures['ingest_ms_flag']['p90']:.2f} ms")
    print(f"added by SHACL per event    : median {figures['added_ms']['median']:.2f} ms, "
          f"p90 {figures['added_ms']['p90']:.2f} ms")
    v = figures["validation_ms"]
    print(f"validation step per event   : median {v['median']:.2f} ms, p90 {v['p90']:.2f} ms, "
          f"p99 {v['p99']:.2f} ms, max {v['max']:.2f} ms")
    print(f"median / {TARGET_MS} ms target = {figures['ratio_to_target']:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
