"""A job split into shards of rows, each finished shard recorded by its own part file.

The work directory (next to the output: `catalog.fits.parts/`) holds `config.json`, the
job's configuration, and `part-000000.fits`, ... one per finished shard, each written
atomically. A shard is done exactly when its part file exists (there are no start
markers), so a killed job loses at most the shards it was working on, and a rerun skips
the done ones. A work directory refuses to serve a job with another configuration. At the
end the parts are combined, in row order, into the output.

Each shard depends on its rows alone, so shards can be computed in any order or place (a
cluster's workers) and combined by whoever finishes last.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxgal._files import write_text_atomically
from jaxgal.io.catalog import read_table, remove_temporary_files, write_table_atomically

CONFIG_NAME = "config.json"
PART_GLOB = "part-*.fits"


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


def combine_parts(work_directory, shard_count: int, row_count: int):
    """The rows of every part, in order, as one astropy Table; checks that each of the
    `row_count` rows (column `index`) is there exactly once."""
    from astropy.table import vstack

    missing = sorted(set(range(shard_count)) - done_shards(work_directory, shard_count))
    if missing:
        raise RuntimeError(f"{work_directory}: shards {missing} are not done")
    table = vstack(
        [read_table(part_path(work_directory, shard)) for shard in range(shard_count)],
        metadata_conflicts="silent",
    )
    index = np.asarray(table["index"])
    if index.shape != (row_count,) or not np.array_equal(index, np.arange(row_count)):
        raise RuntimeError(
            f"{work_directory}: the parts hold rows {index[:10]}..., not each of "
            f"0..{row_count - 1} once in order"
        )
    return table
