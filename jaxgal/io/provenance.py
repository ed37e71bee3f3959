"""What made a catalogue, recorded beside it: `catalog.fits` -> `catalog.fits.json`.

The record holds the code version (the package's version and, in a git checkout, the
commit, with "+dirty" when the tree has changes), the full configuration of the job (the
work directory's `config.json`: options, calibration, inputs), the command line, the shard
count and the shards that failed, with their reasons.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from jaxgal.io.shards import write_json_atomically

PROVENANCE_SUFFIX = ".json"


def provenance_path(output) -> Path:
    output = Path(output)
    return output.with_name(output.name + PROVENANCE_SUFFIX)


def code_version() -> dict:
    """jaxgal's version, and its git commit when it runs from a checkout (else None)."""
    try:
        version = metadata.version("jaxgal")
    except metadata.PackageNotFoundError:
        version = None
    source = Path(__file__).resolve().parents[2]
    commit = None
    try:
        head = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode == 0:
            commit = head.stdout.strip()
            changes = subprocess.run(
                ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            if changes.stdout.strip():
                commit += "+dirty"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"jaxgal": version, "git_commit": commit, "python": sys.version.split()[0]}


def write_provenance(output, config: dict, *, command_line, shards: int, failed: dict) -> Path:
    """Write the record of the catalogue `output` beside it, atomically."""
    import jax

    record = {
        "catalogue": str(Path(output).name),
        "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "code": {**code_version(), "jax": jax.__version__},
        "command_line": command_line,
        "configuration": config,
        "shards": shards,
        "failed_shards": {str(shard): reason for shard, reason in sorted(failed.items())},
    }
    return write_json_atomically(provenance_path(output), record)
