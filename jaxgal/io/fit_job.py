"""`jaxgal fit` as a resumable job: FITS inputs -> `jaxgal.fit` shard by shard -> catalogue.

The cutouts are split into shards of `batch_size` rows; each shard is fitted by one call of
`jaxgal.fit` and written as a part file (`jaxgal.io.shards`), so a killed job resumes where
it stopped. The shards run in this process, or on a dask cluster (`jaxgal.io.cluster`).
The catalogue has one row per cutout in input order: its `index`, for a directory its
`file` name (for a glob or list of files, `jaxgal.io.input_list`, its `file` path and
`plane`), then `jaxgal.fit`'s columns (parameters named and in the units of `Sersic`, their
`_err`, fit statistics, `n_masked`, `flags`).

The zero point and pixel scale are the options' when given, else the cutouts' headers'
(MAGZERO / ZEROPNT; WCS / PIXSCALE), else the preset's.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import numpy as np

from jaxgal.io.catalog import catalog_format, remove_temporary_files, write_table_atomically
from jaxgal.io.fits import ImageStack
from jaxgal.io.input_list import InputList
from jaxgal.io.inputs import FitInputs, FitRows
from jaxgal.io.provenance import write_provenance
from jaxgal.io.shards import (
    clear_markers,
    combine_parts,
    done_shards,
    failed_shards,
    open_work_directory,
    shard_ranges,
    work_directory_for,
    write_job_info,
    write_part,
)

CONFIG_VERSION = 1
# the catalogue's flag of the rows of a shard that failed (its input could not be read, or
# its fit kept failing): the bits below are `jaxgal.fit`'s
FLAG_SHARD_FAILED = 16


@dataclass(frozen=True)
class FitOptions:
    """How to fit: `method` and `preset` as in `jaxgal.fit`; `zero_point` and
    `pixel_scale` (arcsec) override the headers and the preset when not None;
    `batch_size` rows a shard (and a `jaxgal.fit` call); `gain` (electrons per count),
    `read_noise` (electrons) and `sky` (subtracted, counts per pixel) give GALFIT's noise
    model when there is no noise or weight map; `max_steps` bounds refinement; the HMC
    methods draw `num_samples` after `num_warmup` in each of `num_chains` chains, with
    the key of shard s `jax.random.fold_in(jax.random.key(seed), s)` (so a resumed job
    draws what an uninterrupted one would). `model`: "sersic" or "bulge+disc" (one
    centre, or one a component with `shared_centre` False), with `fixed` ((name, value),
    ...) and `bounds` ((name, low, high), ...) as in `jaxgal.fitting.models`."""

    method: str = "cnn+refine"
    preset: str = "kids"
    zero_point: float | None = None
    pixel_scale: float | None = None
    batch_size: int = 256
    gain: float | None = None
    read_noise: float = 0.0
    sky: float = 0.0
    max_steps: int = 100
    seed: int = 0
    num_warmup: int = 500
    num_samples: int = 500
    num_chains: int = 4
    model: str = "sersic"
    fixed: tuple = ()
    bounds: tuple = ()
    shared_centre: bool = True

    def fit_model(self):
        """The `jaxgal.fitting.models` model these options name (errors name a bad one)."""
        from jaxgal.fitting.models import BulgeDisc, SersicModel

        fixed = {name: value for name, value in self.fixed}
        bounds = {name: (low, high) for name, low, high in self.bounds}
        if self.model == "sersic":
            if not self.shared_centre:
                raise ValueError("--free-centres is for --model bulge+disc")
            return SersicModel(fixed=fixed, bounds=bounds)
        if self.model == "bulge+disc":
            return BulgeDisc(fixed=fixed, bounds=bounds, shared_centre=self.shared_centre)
        raise ValueError(f"model must be sersic or bulge+disc, got {self.model!r}")


def resolve_calibration(cutouts: ImageStack, options: FitOptions) -> dict:
    """The zero point and pixel scale to fit with, and where each came from."""
    from jaxgal.simulate.presets import get_preset

    preset = get_preset(options.preset)
    facts = cutouts.facts
    zero_point, zero_point_from = _first_given(
        (options.zero_point, "option"),
        (facts.zero_point, f"header {facts.zero_point_source}"),
        (preset.zero_point, f"preset {preset.name}"),
    )
    pixel_scale, pixel_scale_from = _first_given(
        (options.pixel_scale, "option"),
        (facts.pixel_scale, f"header {facts.pixel_scale_source}"),
        (preset.pixel_scale, f"preset {preset.name}"),
    )
    if not pixel_scale > 0:
        raise ValueError(f"the pixel scale must be > 0 arcsec, got {pixel_scale}")
    return {
        "zero_point": zero_point,
        "zero_point_from": zero_point_from,
        "pixel_scale": pixel_scale,
        "pixel_scale_from": pixel_scale_from,
    }


def _first_given(*candidates) -> tuple[float, str]:
    """The first (value, source) whose value is not None."""
    return next((float(value), source) for value, source in candidates if value is not None)


def describe_input(stack: ImageStack) -> dict:
    """What identifies an input in the job's configuration: its absolute path, shape,
    and for a file its size and modification time, for a directory a hash of its names."""
    record = {
        "path": str(stack.path.resolve()),
        "count": stack.count,
        "shape": list(stack.shape),
    }
    if stack.files is None:
        status = stack.path.stat()
        record.update(size=status.st_size, mtime_ns=status.st_mtime_ns)
    else:
        names = "\n".join(str(file.name) for file in stack.files)
        record["names_sha256"] = hashlib.sha256(names.encode()).hexdigest()
    return record


def job_configuration(inputs: FitInputs, options: FitOptions, calibration: dict) -> dict:
    """Everything a shard's result depends on, as plain JSON types; with the precision
    (64-bit floats or not), so a job resumed in the other one is refused, not mixed."""
    return {
        "version": CONFIG_VERSION,
        "float64": bool(jax.config.jax_enable_x64),
        "options": asdict(options),
        "calibration": calibration,
        "inputs": inputs.describe()
        if isinstance(inputs, InputList)
        else {role: describe_input(stack) for role, stack in inputs.stacks().items()},
    }


def _fit_shard(inputs: FitInputs, shard: int, start: int, stop: int, options, calibration, network):
    rows = inputs.rows(start, stop)
    return label_rows(fit_rows(rows, shard, options, calibration, network), rows, start)


def fit_rows(rows: FitRows, shard: int, options: FitOptions, calibration: dict, network):
    """`jaxgal.fit` on the rows of shard `shard` (its HMC key from the seed and `shard`)."""
    import jax

    import jaxgal

    extra = {} if network is None else {"network": network}
    if options.method.endswith("hmc"):
        extra.update(
            key=jax.random.fold_in(jax.random.key(options.seed), shard),
            num_warmup=options.num_warmup,
            num_samples=options.num_samples,
            num_chains=options.num_chains,
        )
    table = jaxgal.fit(
        rows.images,
        rows.psf_images,
        rows.noise,
        method=options.method,
        zero_point=calibration["zero_point"],
        pixel_scale=calibration["pixel_scale"],
        preset=options.preset,
        weight=rows.weight,
        mask=rows.mask,
        gain=options.gain,
        read_noise=options.read_noise,
        sky=options.sky,
        max_steps=options.max_steps,
        model=options.fit_model(),
        as_table=True,
        **extra,
    )
    return table


def label_rows(table, rows: FitRows, start: int):
    """`table`, the fit of `rows`, with each row's job `index` (from `start`) and, where
    known, its `file` and `plane`."""
    table["index"] = np.arange(start, start + len(table))
    position = table.colnames.index("index") + 1
    if rows.files is not None:
        table.add_column(rows.files, name="file", index=position)
        position += 1
    if rows.planes is not None:
        table.add_column(rows.planes, name="plane", index=position)
    return table


def failed_rows(inputs, start: int, stop: int, reason: str):
    """The catalogue rows of a shard that failed: `index`, `file` / `plane` where known,
    `flags` FLAG_SHARD_FAILED and the `failure` reason; the fit's columns are left masked."""
    from astropy.table import Table

    table = Table({"index": np.arange(start, stop)})
    if isinstance(inputs, InputList):
        files, planes = inputs.labels(start, stop)
        table["file"], table["plane"] = files, planes
    elif inputs.cutouts.files is not None:
        table["file"] = inputs.cutouts.names(start, stop)
    table["flags"] = np.full(stop - start, FLAG_SHARD_FAILED)
    table["failure"] = [reason] * (stop - start)
    return table


def check_noise_source(inputs: FitInputs, options: FitOptions):
    """Refinement needs a noise model: a noise or weight map, or a gain."""
    if options.method == "cnn" or inputs.noise is not None or inputs.weight is not None:
        return
    if options.gain is None:
        raise ValueError(
            f"method {options.method!r} needs the noise: give --noise (sigma maps), --weight "
            "(1/sigma^2 maps), or --gain (with --read-noise and --sky) for GALFIT's model"
        )


def _fit_shards(inputs, options, calibration, work_directory, ranges, progress, log):
    """Fit and record every shard that is not done yet."""
    from tqdm.auto import tqdm

    done = done_shards(work_directory, len(ranges))
    if done:
        log(f"resuming: {len(done)} of {len(ranges)} shards already done in {work_directory}")
    network = None
    if options.method.startswith("cnn") and len(done) < len(ranges):
        from jaxgal.networks.pretrained import pretrained

        network = pretrained(options.preset, "galnet2")
    done_rows = sum(stop - start for shard, (start, stop) in enumerate(ranges) if shard in done)
    with tqdm(total=inputs.count, initial=done_rows, unit="galaxy", disable=not progress) as bar:
        for shard, (start, stop) in enumerate(ranges):
            if shard in done:
                continue
            table = _fit_shard(inputs, shard, start, stop, options, calibration, network)
            write_part(work_directory, shard, table)
            bar.update(stop - start)


def run_fit_job(
    inputs: FitInputs | InputList,
    options: FitOptions,
    output,
    *,
    keep_parts: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log=print,
    run_shards=None,
    command_line: str | None = None,
):
    """Fit every cutout of `inputs` and write the catalogue to `output` (FITS, or Parquet
    for a .parquet name) atomically; resumes from the work directory next to `output`.
    Returns the catalogue (an astropy Table).

    `run_shards(inputs, options, calibration, work_directory, ranges, progress, log)` fits
    the shards not done yet: in this process one after the other by default, or on a dask
    cluster (`jaxgal.io.cluster.dask_shard_runner`), which records a shard whose input
    cannot be read as failed and goes on. The rows of failed shards are in the catalogue,
    flagged FLAG_SHARD_FAILED with the reason in a `failure` column, and the work directory
    is kept so that a rerun fits them again. Beside the catalogue, `OUTPUT.json` records
    the code version, the configuration and `command_line`."""
    output = Path(output)
    catalog_format(output)
    work_directory = work_directory_for(output)
    if output.exists() and not work_directory.exists() and not overwrite:
        raise ValueError(f"{output} exists; pass --overwrite to fit again and replace it")
    if options.method.startswith("cnn") and inputs.psf is None:
        raise ValueError(f"method {options.method!r} needs PSFs (--psf): GaLNet-2 reads them")
    check_noise_source(inputs, options)
    calibration = resolve_calibration(inputs.cutouts, options)
    log(
        f"{inputs.count} cutouts of {inputs.cutouts.shape[0]} x {inputs.cutouts.shape[1]} "
        f"pixels; zero point {calibration['zero_point']} ({calibration['zero_point_from']}), "
        f"pixel scale {calibration['pixel_scale']} arcsec ({calibration['pixel_scale_from']})"
    )
    unreadable = inputs.unreadable()
    if unreadable:
        log(
            f"{len(unreadable)} files cannot be read; their rows will be flagged "
            f"{FLAG_SHARD_FAILED} with the reason (the first: {unreadable[0]})"
        )
    config = job_configuration(inputs, options, calibration)
    fresh = not work_directory.exists()
    open_work_directory(work_directory, config)
    ranges = shard_ranges(inputs.count, options.batch_size)
    done = done_shards(work_directory, len(ranges))
    clear_markers(work_directory, (shard for shard in range(len(ranges)) if shard not in done))
    write_job_info(
        work_directory,
        {
            "shards": len(ranges),
            "rows": inputs.count,
            "shard_size": options.batch_size,
            "command_line": command_line,
            "output": str(output),
        },
    )
    run_shards = _fit_shards if run_shards is None else run_shards
    try:
        run_shards(inputs, options, calibration, work_directory, ranges, progress, log)
    except BaseException:
        # a job that failed before finishing a shard leaves nothing behind to resume from
        if fresh and not done_shards(work_directory, len(ranges)):
            shutil.rmtree(work_directory, ignore_errors=True)
        raise
    failures = failed_shards(work_directory, len(ranges))
    standins = {
        shard: failed_rows(inputs, *ranges[shard], record.get("reason", "unknown"))
        for shard, record in failures.items()
    }
    catalog = combine_parts(work_directory, len(ranges), inputs.count, standins)
    catalog.meta.clear()
    catalog.meta.update(
        {
            "METHOD": options.method,
            "PRESET": options.preset,
            "MAGZERO": calibration["zero_point"],
            "PIXSCALE": calibration["pixel_scale"],
            "CUTOUTS": str(inputs.cutouts.path),
        }
    )
    write_table_atomically(catalog, output)
    write_provenance(
        output,
        config,
        command_line=command_line,
        shards=len(ranges),
        failed={shard: record.get("reason") for shard, record in failures.items()},
    )
    if failures:
        rows = sum(len(table) for table in standins.values())
        log(
            f"{len(failures)} shards failed ({rows} rows flagged {FLAG_SHARD_FAILED}, the reason "
            f"in the column 'failure'); {work_directory} is kept: rerun to fit them again"
        )
    elif not keep_parts:
        shutil.rmtree(work_directory)
    remove_temporary_files(output.parent, output.name)
    log(f"catalogue of {len(catalog)} rows written to {output}")
    return catalog
