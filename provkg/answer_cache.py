"""Whole answers of paged named queries, kept while the store is unchanged.

A paged query (forward-impact, erasure-impact: ``limit``/``offset``) answers
one page, but every page needs the whole walk and its counts: without this,
page k of a 7,000-node impact costs what page 1 did. Its answer depends only
on the parameters and the store, so it is kept under (query, parameters other
than ``limit`` and ``offset``, :attr:`LineageStore.generation`). Every write
moves the generation on, so an answer made before a write is never served
after it; old entries are never asked for again and fall out as the least
recently used. The cache is bounded by rows (``max_rows``), not answers: one
impact of a large store can hold tens of thousands of rows.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Hashable

from cachetools import LRUCache

if TYPE_CHECKING:
    from .named_queries import QueryAnswer

DEFAULT_MAX_ROWS = 50_000  # ~24 MB: a forward-impact row held ~480 bytes on the 10k benchmark store
PAGE_PARAMETERS = ("limit", "offset")


class AnswerCache:
    """Least-recently-used whole answers, at most ``max_rows`` rows in all.

    Thread-safe (the server runs named queries on several threads). An answer
    with more rows than ``max_rows`` is not kept."""

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS):
        self._answers: LRUCache = LRUCache(maxsize=max_rows, getsizeof=lambda answer: len(answer.rows) + 1)
        self._lock = threading.Lock()

    @staticmethod
    def key(query: str, values: dict[str, Any], generation: int) -> Hashable:
        """The key of a query's answer: its name, its validated parameters
        except ``limit`` and ``offset``, and the store's generation."""
        kept = tuple(sorted((name, repr(value)) for name, value in values.items() if name not in PAGE_PARAMETERS))
        return query, kept, generation

    def get(self, key: Hashable) -> "QueryAnswer | None":
        with self._lock:
            return self._answers.get(key)

    def put(self, key: Hashable, answer: "QueryAnswer") -> None:
        with self._lock:
            try:
                self._answers[key] = answer
            except ValueError:  # larger than the whole cache: answered, not kept
                pass

    def __len__(self) -> int:
        with self._lock:
            return len(self._answers)
