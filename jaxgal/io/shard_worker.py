"""What a worker process does with one shard of a fit job (`jaxgal.io.cluster` hands them out).

`fit_shard_task` reads the shard's rows, fits them and writes the part file atomically, all
in the worker; the driver only hands out shards and combines the parts at the end. While it
works the worker leaves a claim (`running-NNNNNN.json`) for `jaxgal status`; a rerun never
reads claims, only part files.

The cost is paid per worker process, not per shard: the CNN is loaded once per preset and
kept (`_NETWORKS`: the state of this process, on purpose), and JAX keeps every compiled fit
keyed by its input shapes, so each shard is padded to the job's shard size (its last row
repeated, the copies' results dropped) and one compilation serves every shard of the job.
The time spent compiling is taken from JAX's own events (`jax.monitoring`), shard by shard.

A shard whose rows cannot be read (a corrupt file, a noise map with zeros) is recorded as
failed with the reason and not retried: reading again would fail again. An error of the fit
itself is raised, for dask to retry the shard.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from jaxgal.io.fit_job import FitOptions, fit_rows, label_rows
from jaxgal.io.input_list import InputList
from jaxgal.io.inputs import FitRows
from jaxgal.io.shards import claim_shard, part_path, record_failure, release_shard, write_part

_NETWORKS: dict[str, object] = {}
_COMPILATION = {"seconds": 0.0, "events": 0}
_LISTENING: list[bool] = []


def _count_compilation(event: str, seconds: float, **_):
    if event.startswith("/jax/core/compile/"):
        _COMPILATION["seconds"] += seconds
        _COMPILATION["events"] += 1


def _network(options: FitOptions):
    """The preset's shipped GaLNet-2 for the CNN methods, loaded once in this process."""
    if not options.method.startswith("cnn"):
        return None
    if options.preset not in _NETWORKS:
        from jaxgal.networks.pretrained import pretrained

        _NETWORKS[options.preset] = pretrained(options.preset, "galnet2")
    return _NETWORKS[options.preset]


def pad_rows(rows: FitRows, size: int) -> FitRows:
    """`rows` with its last row repeated up to `size` rows (`files`, `planes` unchanged)."""
    count = len(rows.images)
    if count >= size:
        return rows
    take = np.minimum(np.arange(size), count - 1)
    padded = {
        name: None if getattr(rows, name) is None else getattr(rows, name)[take]
        for name in ("images", "psf_images", "noise", "weight", "mask")
    }
    return rows._replace(**padded)


def shard_inputs(inputs, start: int, stop: int):
    """(the inputs of rows start..stop, the row they begin at): what one shard's task is
    sent. A list keeps its files there, a directory its files there; cubes are sent whole
    (their description is small), beginning at row 0."""
    if isinstance(inputs, InputList):
        return inputs.subset(start, stop), start
    stacks = inputs.stacks()
    if any(stack.files is None and stack.count > 1 for stack in stacks.values()):
        return inputs, 0
    sliced = {
        role: stack
        if stack.count == 1 and inputs.count > 1
        else replace(stack, files=stack.files[start:stop], count=stop - start)
        for role, stack in stacks.items()
    }
    return replace(inputs, **sliced), start


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fit_shard_task(
    inputs,
    first_row: int,
    shard: int,
    start: int,
    stop: int,
    shard_size: int,
    options: FitOptions,
    calibration: dict,
    work_directory: str,
    enable_x64: bool,
) -> dict:
    """Fit rows start..stop (shard `shard`, padded to `shard_size` rows) of the job, rows
    start - first_row..stop - first_row of `inputs` (`shard_inputs`), and write its part
    file in `work_directory`, with JAX's 64-bit mode as the driver's
    (`enable_x64`). Returns the shard's record: `status` "done", "failed" (with `reason`)
    or "skipped" (its part was already there), the `worker`, and seconds spent reading
    (`read_s`), loading the network (`load_s`), fitting (`fit_s`, of which `compile_s`
    compiling, in `compile_events` steps of tracing, lowering and compiling) and writing
    (`write_s`)."""
    import jax

    work_directory = Path(work_directory)
    record = {"shard": shard, "rows": stop - start, "worker": worker_name()}
    if part_path(work_directory, shard).exists():
        return {**record, "status": "skipped"}
    if bool(jax.config.jax_enable_x64) != enable_x64:
        jax.config.update("jax_enable_x64", enable_x64)
    if not _LISTENING:
        jax.monitoring.register_event_duration_secs_listener(_count_compilation)
        _LISTENING.append(True)
    host, _, pid = record["worker"].rpartition(":")
    claim = {**record, "host": host, "pid": int(pid), "since": time.time()}
    claim_shard(work_directory, shard, claim)
    try:
        began = time.perf_counter()
        try:
            rows = inputs.rows(start - first_row, stop - first_row)
        except Exception as error:  # an input that cannot be read: no retry can help
            reason = f"rows {start}..{stop - 1} cannot be read: {error}"
            failure = {**record, "status": "failed", "stage": "read", "reason": reason}
            record_failure(work_directory, shard, failure)
            return failure
        read = time.perf_counter()
        network = _network(options)
        loaded = time.perf_counter()
        compiled_before = dict(_COMPILATION)
        table = fit_rows(pad_rows(rows, shard_size), shard, options, calibration, network)
        table = label_rows(table[: stop - start], rows, start)
        fitted = time.perf_counter()
        compile_seconds = _COMPILATION["seconds"] - compiled_before["seconds"]
        compilations = _COMPILATION["events"] - compiled_before["events"]
        write_part(work_directory, shard, table)
        written = time.perf_counter()
    finally:
        release_shard(work_directory, shard)
    return {
        **record,
        "status": "done",
        "read_s": read - began,
        "load_s": loaded - read,
        "fit_s": fitted - loaded,
        "compile_s": min(compile_seconds, fitted - loaded),
        "compile_events": compilations,
        "write_s": written - fitted,
    }
