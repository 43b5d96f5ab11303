"""Where provkg finds its data files: ontology, shapes, named queries and the
OpenLineage specification it validates against.

The ontology, shapes, queries and custom facet schemas live at the repository's top level. A source
checkout (or an editable install) reads them there; a built wheel carries them
under ``provkg/_resources``.

The OpenLineage JSON Schemas are not copied into the project: they are read
from a specification folder (OpenLineage ``spec/`` at 2-0-2: ``OpenLineage.json``,
``facets/``, ``registry/``). It is found, in order, from ``PROVKG_OPENLINEAGE_SPEC``,
then ``../shared/openlineage/spec`` beside the repository or the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent

SPEC_ENV = "PROVKG_OPENLINEAGE_SPEC"


class ResourceNotFound(FileNotFoundError):
    """A data folder provkg needs could not be found."""


def _resource_dir(name: str) -> Path:
    for candidate in (PACKAGE_DIR / "_resources" / name, REPO_DIR / name):
        if candidate.is_dir():
            return candidate
    raise ResourceNotFound(f"provkg data folder {name!r} not found beside the package")


def queries_dir() -> Path:
    """Folder of the named SPARQL queries (``*.rq``)."""
    return _resource_dir("queries")


def ontologies_dir() -> Path:
    """Folder of the provkg ontology (Turtle)."""
    return _resource_dir("ontologies")


def facets_dir() -> Path:
    """Folder of the JSON Schemas of provkg's custom OpenLineage facets."""
    return _resource_dir("facets")


def shapes_dir() -> Path:
    """Folder of the SHACL shapes (Turtle)."""
    return _resource_dir("shapes")


def openlineage_spec_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Locate the OpenLineage specification folder.

    Input: an explicit path (CLI option), else ``$PROVKG_OPENLINEAGE_SPEC``,
    else ``../shared/openlineage/spec`` relative to the repository or the
    working directory. Output: the folder holding ``OpenLineage.json``.
    Raises :class:`ResourceNotFound` naming every place looked at.
    """
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get(SPEC_ENV):
        candidates.append(Path(os.environ[SPEC_ENV]))
    else:
        for root in (REPO_DIR, Path.cwd()):
            candidates.append(root.parent / "shared" / "openlineage" / "spec")
            candidates.append(root / "shared" / "openlineage" / "spec")
    for candidate in candidates:
        if (candidate / "OpenLineage.json").is_file():
            return candidate.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise ResourceNotFound(
        f"OpenLineage specification (OpenLineage.json) not found; looked in: {looked}. "
        f"Set {SPEC_ENV} to the OpenLineage spec/ folder."
    )
