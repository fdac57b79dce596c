"""Garbage collection for the API process.

CPython collects its youngest generation every 700 net allocations and, every so often, scans
every object alive: in the API that is its imports, its app and its clients, again and again,
for a request that made a few hundred short-lived objects. Once the API's app is built,
`settle` moves what is alive into the permanent generation (never scanned again) and collects the
young generation less often; reference counting still frees almost everything at once.
Measured on the API: about 7 % less CPU a submit (README, "Tests and benchmarks").

Not for a worker: at 10,000 jobs in flight it makes cyclic garbage faster than these
thresholds collect it (its RSS 617 MiB without, 1,127 MiB with, in `bench.capacity`).
"""

from __future__ import annotations

import gc

#: Net allocations between young-generation collections, and how many collections of each
#: generation before the next one is collected (CPython's defaults: 700, 10, 10).
THRESHOLDS = (20_000, 50, 100)


def settle() -> None:
    """Call once the process has built what it keeps: freeze it, collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
