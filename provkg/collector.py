"""Python's cyclic garbage collector around provkg's allocation-heavy work.

A traversal from a large source builds ~10^5 rows in one go (59k from one
source of the 100k benchmark store), none of them in a reference cycle. With
the collector on, those allocations set off collections of the older
generations, which scan every tracked object in the process, so the same
walk took 91 ms one time and 210 ms the next. :func:`collector_paused` keeps
the collector off for such a block: reference counting still frees
everything the block drops; only the search for cycles waits until it ends.
:func:`freeze_long_lived` takes what a process keeps for good (modules,
validators, shapes, the step index) out of every later collection.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_active = 0
_resume = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the ``with`` block with the cyclic collector (:mod:`gc`) off.

    Safe across threads: the collector is switched back on when the last
    overlapping pause ends, and only if it was on when the first began.
    Raises nothing of its own; an exception in the block ends the pause."""
    global _active, _resume
    with _lock:
        if _active == 0:
            _resume = gc.isenabled()
            gc.disable()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _resume:
                gc.enable()


def freeze_long_lived() -> None:
    """Move every object alive now into the collector's permanent generation
    (:func:`gc.freeze`), so later collections of the oldest generation scan
    only what was made since. For a process's lifelong state (imported
    modules, the OpenLineage schemas' validators, the shapes), called once it
    is made. Without it, ``provkg ingest`` of 2,000 benchmark events spent
    3.2 s of 37.8 s of CPU in 20 full collections of ~200,000 objects; with
    it, 1.4 s. Objects frozen are still freed when their last reference goes;
    only cyclic garbage alive at the call would stay (no collection is run
    first: it would cost ~0.1 s a process)."""
    gc.freeze()
