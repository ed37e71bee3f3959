"""FITS in and out: stacks of cutouts, PSFs and noise maps; catalogues; resumable jobs.

- `fits`: `open_stack` (a cube, a 2-d image or a directory of files) and header facts
  (pixel scale from the WCS or PIXSCALE, zero point from MAGZERO or ZEROPNT).
- `inputs`: `open_fit_inputs`, the cutouts with their PSFs, noise, weight and mask maps,
  checked against each other and read in row ranges.
- `catalog`: astropy Tables written atomically as FITS or Parquet.
- `shards`: a job in shards of rows, each done when its part file exists.
- `fit_job`: `run_fit_job`, `jaxgal fit` as a resumable job.
- `simulated_set`: `write_simulated_set`, `jaxgal simulate`'s test set with its truths.
"""

from jaxgal.io.catalog import read_table, write_table_atomically
from jaxgal.io.fit_job import FitOptions, run_fit_job
from jaxgal.io.fits import HeaderFacts, ImageStack, InputError, header_facts, open_stack
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
    "header_facts",
    "open_fit_inputs",
    "open_stack",
    "read_table",
    "run_fit_job",
    "simulate_set",
    "write_simulated_set",
    "write_table_atomically",
]
