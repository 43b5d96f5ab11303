"""IRIs minted from OpenLineage names are valid, deterministic and distinct."""

from __future__ import annotations

import pytest
from pyoxigraph import Literal, NamedNode, Quad, RdfFormat, parse, serialize

from provkg.iris import IriMinter

AWKWARD = ["plain", "with space", 'quote"s', "slash/ed", "back\\slash", "ünïcödé 数据", "<angle>", "a#b?c",
           "%41", "", "s3://bucket/key with space.parquet", "SELECT * WHERE { ?s ?p ?o }"]


def test_awkward_names_give_valid_distinct_iris_that_round_trip():
    minter = IriMinter()
    iris = [minter.dataset(ns, name) for ns in AWKWARD for name in AWKWARD]
    assert len({i.value for i in iris}) == len(iris)  # no two names meet by accident
    quads = [Quad(i, NamedNode("http://example.org/p"), Literal("x")) for i in iris]
    text = serialize(quads, format=RdfFormat.N_QUADS)
    assert [q.subject for q in parse(text, format=RdfFormat.N_QUADS)] == iris


def test_same_name_same_iri_across_producers():
    assert IriMinter().dataset("gs://b", "t.csv") == IriMinter().dataset("gs://b", "t.csv")
    assert IriMinter().run("0193-ABC") == IriMinter().run("0193-abc")


def test_configurable_base():
    assert IriMinter("https://lineage.example.org/id/").job("ns", "j").value == "https://lineage.example.org/id/job/ns/j"
    with pytest.raises(ValueError):
        IriMinter("not-absolute")
