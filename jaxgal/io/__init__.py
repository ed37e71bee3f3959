"""FITS in and out: stacks of cutouts, PSFs and noise maps; catalogues; resumable jobs.

- `fits`: `open_stack` (a cube, a 2-d image or a directory of files) and header facts
  (pixel scale from the WCS or PIXSCALE, zero point from MAGZERO or ZEROPNT).
- `inputs`: `open_fit_inputs`, the cutouts with their PSFs, noise, weight and mask maps,
  checked against each other and read in row ranges.
- `catalog`: astropy Tables written atomically as FITS or Parquet.
- `input_list`: `open_inputs`, many files in one job: a glob or a list of cubes and
  cutout files, each with its maps by a naming rule or a column of the list.
- `shards`: a job in shards of rows, each done when its part file exists; claims and
  failure records for `jaxgal status`.
- `fit_job`: `run_fit_job`, `jaxgal fit` as a resumable job.
- `cluster`, `shard_worker`: the shards on a dask cluster (a LocalCluster, a running one,
  or SLURM jobs), each worker compiling once; `provenance`: what made a catalogue.
- `simulated_set`: `write_simulated_set`, `jaxgal simulate`'s test set with its truths.
"""

from jaxgal.io.catalog import read_table, write_table_atomically
from jaxgal.io.fit_job import FitOptions, run_fit_job
from jaxgal.io.fits import (
    HeaderFacts,
    ImageStack,
    InputError,
    UnreadableFile,
    header_facts,
    open_stack,
)
from jaxgal.io.inputs import FitInputs, FitRows, open_fit_inputs
from jaxgal.io.shards import ConfigurationMismatch
from jaxgal.io.simulated_set import simulate_set, write_simulated_set

__all__ = [
    "ConfigurationMismatch",
    "FitInputs",
    "FitOptions",
    "FitRows",
    "HeaderFacts",
    "ImageStack",
    "InputError",
    "UnreadableFile",
    "header_facts",
    "open_fit_inputs",
    "open_stack",
    "read_table",
    "run_fit_job",
    "simulate_set",
    "write_simulated_set",
    "write_table_atomically",
]
