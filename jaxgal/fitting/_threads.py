"""Independent jitted jobs (chunks of galaxies, chains) run at once in threads on a CPU.

XLA runs one galaxy's small arrays on about one core of a CPU; it releases the GIL while it
computes, so jobs dispatched from threads use the other cores. An accelerator wants one
large vectorised job instead, so there the default is one thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import jax


def default_threads() -> int:
    """The CPU cores this process may use on a CPU backend, else 1."""
    if jax.default_backend() != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def run_jobs(job: Callable, arguments: Sequence, threads: int | None = None) -> list:
    """[job(a) for a in arguments], each result ready, in that order; the first job runs
    alone (it compiles what the others reuse), the rest in up to `threads` threads (default
    `default_threads()`). Results do not depend on `threads`."""
    if threads is None:
        threads = default_threads()
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")

    def ready(argument):
        return jax.block_until_ready(job(argument))

    arguments = list(arguments)
    if not arguments:
        return []
    results = [ready(arguments[0])]
    rest = arguments[1:]
    if threads > 1 and len(rest) > 1:
        with ThreadPoolExecutor(min(threads, len(rest))) as pool:
            results += list(pool.map(ready, rest))
    else:
        results += [ready(argument) for argument in rest]
    return results
