"""A job split into shards of rows, each finished shard recorded by its own part file.

The work directory (next to the output: `catalog.fits.parts/`) holds `config.json`, the
job's configuration, and `part-000000.fits`, ... one per finished shard, each written
atomically. A shard is done exactly when its part file exists, so a killed job loses at
most the shards it was working on, and a rerun skips the done ones. A work directory
refuses to serve a job with another configuration. At the end the parts are combined, in
row order, into the output.

Beside the parts, for `jaxgal status`: `job.json` (shard and row counts, the command
line), `running-000000.json` while a worker fits a shard (its host, process and start
time: a claim, which a rerun ignores, since a killed worker leaves its claim behind) and
`failed-000000.json` for a shard whose input could not be read or whose fit kept failing
(the reason). Neither marks a shard done: a rerun redoes every shard without a part.

Each shard depends on its rows alone, so shards can be computed in any order or place (a
cluster's workers) and combined by whoever finishes last.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np

from jaxgal._files import write_text_atomically
from jaxgal.io.catalog import (
    atomic_path,
    read_table,
    remove_temporary_files,
    write_table_atomically,
)

CONFIG_NAME = "config.json"
JOB_NAME = "job.json"
PART_GLOB = "part-*.fits"
FAILURE_PREFIX = "failed"
CLAIM_PREFIX = "running"


class ConfigurationMismatch(ValueError):
    """A work directory made by a job with another configuration."""


def work_directory_for(output) -> Path:
    """The work directory of the job writing `output`: `output` + ".parts"."""
    output = Path(output)
    return output.with_name(output.name + ".parts")


def shard_ranges(count: int, shard_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each shard of `shard_size` rows (the last may be shorter)."""
    if shard_size < 1:
        raise ValueError(f"the shard (batch) size must be >= 1, got {shard_size}")
    return [(start, min(start + shard_size, count)) for start in range(0, count, shard_size)]


def part_path(work_directory, shard: int) -> Path:
    return Path(work_directory) / f"part-{shard:06d}.fits"


def _normalised(config: dict) -> dict:
    return json.loads(json.dumps(config, sort_keys=True))


def open_work_directory(work_directory, config: dict) -> Path:
    """Create the work directory with `config`, or check that an existing one was made with
    the same `config` (plain JSON types), and clear the temporary files of killed writes."""
    work_directory = Path(work_directory)
    config = _normalised(config)
    config_path = work_directory / CONFIG_NAME
    if config_path.exists():
        stored = json.loads(config_path.read_text())
        if stored != config:
            differing = sorted(
                key for key in set(stored) | set(config) if stored.get(key) != config.get(key)
            )
            details = "; ".join(
                f"{key}: was {stored.get(key)!r}, now {config.get(key)!r}" for key in differing
            )
            raise ConfigurationMismatch(
                f"{work_directory} holds the parts of a job with another configuration "
                f"({details}). Rerun with the same options, or delete {work_directory} to "
                "start again."
            )
    else:
        if work_directory.exists() and any(work_directory.glob(PART_GLOB)):
            raise ConfigurationMismatch(
                f"{work_directory} holds part files but no {CONFIG_NAME}: delete it to start again"
            )
        work_directory.mkdir(parents=True, exist_ok=True)
        write_text_atomically(config_path, json.dumps(config, indent=1, sort_keys=True))
    remove_temporary_files(work_directory)
    return work_directory


def done_shards(work_directory, shard_count: int) -> set[int]:
    """The shards whose part files exist."""
    return {shard for shard in range(shard_count) if part_path(work_directory, shard).exists()}


def write_part(work_directory, shard: int, table) -> Path:
    """Record shard `shard` as done: its rows' `table`, written atomically."""
    return write_table_atomically(table, part_path(work_directory, shard))


def combine_parts(work_directory, shard_count: int, row_count: int, standins=None):
    """The rows of every part, in order, as one astropy Table; checks that each of the
    `row_count` rows (column `index`) is there exactly once. `standins`: tables by shard
    for shards without a part (the flagged rows of failed shards); columns a table lacks
    are masked in its rows."""
    from astropy.table import vstack

    standins = standins or {}
    done = done_shards(work_directory, shard_count)
    missing = sorted(set(range(shard_count)) - done - set(standins))
    if missing:
        raise RuntimeError(f"{work_directory}: shards {missing} are not done")
    table = vstack(
        [
            read_table(part_path(work_directory, shard)) if shard in done else standins[shard]
            for shard in range(shard_count)
        ],
        metadata_conflicts="silent",
    )
    index = np.asarray(table["index"])
    if index.shape != (row_count,) or not np.array_equal(index, np.arange(row_count)):
        raise RuntimeError(
            f"{work_directory}: the parts hold rows {index[:10]}..., not each of "
            f"0..{row_count - 1} once in order"
        )
    return table


def write_json_atomically(path, record: dict) -> Path:
    """Write `record` as JSON to `path` through a temporary file of its own (two processes
    writing the same marker never share a temporary name)."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
    return Path(path)


def _marker_path(work_directory, prefix: str, shard: int) -> Path:
    return Path(work_directory) / f"{prefix}-{shard:06d}.json"


def _marked_shards(work_directory, prefix: str) -> dict[int, Path]:
    marked = {}
    for path in Path(work_directory).glob(f"{prefix}-*.json"):
        number = path.stem.partition("-")[2]
        if number.isdigit():
            marked[int(number)] = path
    return marked


def _read_marker(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # removed meanwhile (or, never, half-written)
        return {}


def write_job_info(work_directory, record: dict) -> Path:
    """Record what `jaxgal status` reports against: `shards`, `rows`, the command line."""
    return write_json_atomically(Path(work_directory) / JOB_NAME, record)


def read_job_info(work_directory) -> dict:
    return _read_marker(Path(work_directory) / JOB_NAME)


def record_failure(work_directory, shard: int, record: dict) -> Path:
    """Record that shard `shard` failed: `record` holds at least its `reason`."""
    return write_json_atomically(_marker_path(work_directory, FAILURE_PREFIX, shard), record)


def failed_shards(work_directory, shard_count: int) -> dict[int, dict]:
    """The failure records of shards that failed and have no part file."""
    done = done_shards(work_directory, shard_count)
    return {
        shard: _read_marker(path)
        for shard, path in sorted(_marked_shards(work_directory, FAILURE_PREFIX).items())
        if shard < shard_count and shard not in done
    }


def claim_shard(work_directory, shard: int, record: dict) -> Path:
    """Mark shard `shard` as being fitted (`record`: who and since when)."""
    return write_json_atomically(_marker_path(work_directory, CLAIM_PREFIX, shard), record)


def release_shard(work_directory, shard: int):
    _marker_path(work_directory, CLAIM_PREFIX, shard).unlink(missing_ok=True)


def clear_markers(work_directory, shards):
    """Remove the claims and failure records of `shards` (about to be fitted again)."""
    for shard in shards:
        for prefix in (CLAIM_PREFIX, FAILURE_PREFIX):
            _marker_path(work_directory, prefix, shard).unlink(missing_ok=True)


def _process_gone(claim: dict) -> bool:
    """True when a claim names a process on this host that no longer runs."""
    if claim.get("host") != socket.gethostname() or not isinstance(claim.get("pid"), int):
        return False
    try:
        os.kill(claim["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def shard_status(work_directory, shard_count: int) -> dict:
    """How many of `shard_count` shards are done (a part file), failed (a failure record),
    running (a claim by a live process; claims of processes known to be gone count as
    `stale`) and pending (the rest), with the failure records by shard."""
    done = done_shards(work_directory, shard_count)
    failed = failed_shards(work_directory, shard_count)
    running = stale = 0
    for shard, path in _marked_shards(work_directory, CLAIM_PREFIX).items():
        if shard >= shard_count or shard in done or shard in failed:
            continue
        if _process_gone(_read_marker(path)):
            stale += 1
        else:
            running += 1
    return {
        "shards": shard_count,
        "done": len(done),
        "failed": len(failed),
        "running": running,
        "stale": stale,
        "pending": shard_count - len(done) - len(failed) - running - stale,
        "failures": failed,
    }
