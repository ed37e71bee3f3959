"""The `jaxgal` command (typer).

    jaxgal demo [--count 48] [--hmc-count 1]
    jaxgal gallery [--out out/gallery.png]
    jaxgal simulate --preset kids --count 100 --seed 0 --out sim/
    jaxgal fit sim/cutouts.fits --psf sim/psfs.fits --noise sim/sigma.fits --out catalog.fits
    jaxgal fit 'tiles/*.fits' --psf '{dir}/{stem}_psf.fits' --workers 8 --out catalog.fits
    jaxgal status catalog.fits

`demo` runs the loop simulate -> CNN -> refine -> HMC on a built-in default and prints
its speed and accuracy (`jaxgal.demo`). `gallery` renders galaxies drawn across the
supported range (n from 0.3 to 8, q from 0.05 to 1, r_eff from a tenth of a pixel to most
of the stamp) in a KiDS-like setting (0.2 arcsec pixels, Moffat seeing) and an HST-like
one (0.05 arcsec pixels, a pixelised PSF), as a PNG. `simulate` writes a simulated test
set with its truths (`jaxgal.io.simulated_set`); `fit` fits FITS cutouts as a resumable job
(`jaxgal.io.fit_job`), on a dask cluster (`jaxgal.io.cluster`) or in this process, and
writes a catalogue; `status` says how far such a job is.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
import typer

import jaxgal

app = typer.Typer(
    name="jaxgal",
    help="jaxgal: differentiable Sersic galaxies. Simulate, fit, draw.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SETTINGS = {
    'KiDS-like: 0.2"/px, Moffat FWHM 0.7"': dict(pixel_scale=0.2, side=64),
    'HST-like: 0.05"/px, pixelised PSF': dict(pixel_scale=0.05, side=64),
}
COLUMNS = [  # (n, q, r_eff in pixels)
    (0.3, 0.8, 6.0),
    (0.5, 0.3, 4.0),
    (1.0, 0.05, 12.0),
    (1.0, 0.6, 20.0),
    (2.5, 0.5, 2.0),
    (4.0, 0.8, 0.1),
    (4.0, 0.3, 8.0),
    (6.2, 0.9, 3.0),
    (8.0, 0.6, 1.0),
    (8.0, 1.0, 64.0),
]


def hst_like_psf(pixel_scale):
    """A pixelised PSF: an Airy-like core with wings, drawn on 25 x 25 pixels (sum 1)."""
    x = (np.arange(25) - 12) * pixel_scale
    r2 = x[None, :] ** 2 + x[:, None] ** 2
    kernel = np.exp(-0.5 * r2 / 0.045**2) + 0.02 * (1 + r2 / 0.15**2) ** -2.0
    return kernel / kernel.sum()


def render_gallery():
    rows = {}
    for name, setting in SETTINGS.items():
        scale, side = setting["pixel_scale"], setting["side"]
        grid = jaxgal.PixelGrid((side, side), scale)
        if scale == 0.2:
            psf = jaxgal.Moffat(0.7, 3.5)
        else:
            psf = jaxgal.PixelPSF(hst_like_psf(scale))
        n, q, r_eff = (jnp.asarray(column) for column in zip(*COLUMNS, strict=True))
        count = len(COLUMNS)
        galaxies = jaxgal.Sersic(
            jnp.full(count, 1000.0),
            r_eff * scale,
            n,
            q,
            jnp.linspace(0.0, 160.0, count),
            jnp.linspace(-0.4, 0.4, count) * scale,
            jnp.linspace(0.3, -0.3, count) * scale,
        )
        draw = jax.jit(
            jax.vmap(lambda galaxy, grid=grid, psf=psf: jaxgal.render(galaxy, grid, psf))
        )
        rows[name] = np.asarray(draw(galaxies))
    return rows


def write_gallery(rows, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(rows), len(COLUMNS), figsize=(1.6 * len(COLUMNS), 1.9 * len(rows)), squeeze=False
    )
    for row, (name, images) in enumerate(rows.items()):
        for column, image in enumerate(images):
            axis = axes[row, column]
            axis.imshow(np.arcsinh(image / (1e-3 * image.max())), origin="lower", cmap="magma")
            axis.set_xticks([])
            axis.set_yticks([])
            n, q, r_eff = COLUMNS[column]
            axis.set_title(f"n={n} q={q}\nr_eff={r_eff}px", fontsize=7)
        axes[row, 0].set_ylabel(name, fontsize=7)
    figure.suptitle("jaxgal: PSF-convolved, pixel-integrated Sersic galaxies (asinh stretch)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # written atomically: a killed run leaves the old file or none, never half of one
    handle, temporary = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(handle)
    figure.savefig(temporary, dpi=120)
    os.replace(temporary, path)
    plt.close(figure)


def _fail(command: str, error: Exception):
    typer.echo(f"jaxgal {command}: error: {error}", err=True)
    raise typer.Exit(1)


@app.command(short_help="Render a gallery of galaxies to a PNG.")
def gallery(
    out: Annotated[Path, typer.Option(help="the PNG to write")] = Path("out/gallery.png"),
):
    """Render a gallery of galaxies across the supported range to a PNG."""
    rows = render_gallery()
    write_gallery(rows, out)
    total = sum(len(images) for images in rows.values())
    typer.echo(f"gallery of {total} galaxies written to {out}")


@app.command(short_help="Run the loop simulate -> CNN -> refine -> HMC; print a table.")
def demo(
    count: Annotated[int, typer.Option(min=2, help="simulated KiDS-like galaxies")] = 48,
    hmc_count: Annotated[int, typer.Option(min=1, help="galaxies sampled with NUTS")] = 1,
    seed: Annotated[int, typer.Option(help="random seed of the simulation and HMC")] = 0,
):
    """Simulate KiDS-like cutouts, fit them with the CNN, the CNN + refinement and (a few)
    HMC, and print each method's speed and accuracy against the truths."""
    from jaxgal.demo import print_report, run_demo

    typer.echo(
        f"simulating {count} KiDS-like cutouts; fitting them (cnn, cnn+refine) and sampling "
        f"{hmc_count} with NUTS (cnn+refine+hmc) on {jax.default_backend()}"
    )
    print_report(run_demo(count=count, hmc_count=min(hmc_count, count), seed=seed))


@app.command(short_help="Write a simulated test set with its truths to FITS.")
def simulate(
    out: Annotated[Path, typer.Option(help="the directory to write the test set to")],
    preset: Annotated[str, typer.Option(help="survey preset (kids, hst_acs, csst, ...)")] = "kids",
    count: Annotated[int, typer.Option(min=1, help="number of cutouts")] = 100,
    seed: Annotated[int, typer.Option(help="random seed: the set is a function of it")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="cutouts simulated at once")] = 256,
    size: Annotated[
        int | None, typer.Option(min=8, help="cutout side in pixels [default: the preset's]")
    ] = None,
    psf_size: Annotated[
        int | None, typer.Option(min=3, help="PSF stamp side, odd [default: the preset's]")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing test set")] = False,
):
    """Write a simulated test set: cutouts.fits, psfs.fits, sigma.fits (FITS cubes) and
    truth.fits (the drawn parameters, in the units of Sersic)."""
    import dataclasses

    from jaxgal.io.simulated_set import FILES, write_simulated_set
    from jaxgal.simulate.presets import get_preset

    try:
        survey = get_preset(preset)
        if size is not None:
            survey = dataclasses.replace(survey, shape=(size, size))
        if psf_size is not None:
            survey = dataclasses.replace(survey, psf_size=psf_size)
        existing = [name for name in FILES if (out / name).exists()]
        if existing and not overwrite:
            raise ValueError(f"{out} already holds {', '.join(existing)}; pass --overwrite")
        paths = write_simulated_set(survey, count, seed, out, batch_size=batch_size)
    except ValueError as error:
        _fail("simulate", error)
    typer.echo(
        f"{count} simulated {survey.name} cutouts of {survey.shape[0]} x {survey.shape[1]} "
        f"pixels written to {', '.join(str(path) for path in paths.values())}"
    )


@app.command(short_help="Fit Sersic profiles to FITS cutouts; write a catalogue.")
def fit(
    cutouts: Annotated[
        Path,
        typer.Argument(
            metavar="CUTOUTS",
            help="cutouts in counts, sky-subtracted: a FITS cube (count, ny, nx), one 2-d "
            "image, a directory of FITS files (one cutout each, sorted by name), a quoted "
            "glob of FITS cubes or cutout files, or a text file listing them (one a line; "
            "a first line 'cutouts psf noise weight mask' names columns of maps)",
        ),
    ],
    out: Annotated[Path, typer.Option(help="the catalogue: FITS, or Parquet for a .parquet name")],
    psf: Annotated[
        Path | None,
        typer.Option(
            help="PSF stamps (odd sides): one per cutout, or one for all; for a glob or list "
            "also a naming rule, e.g. '{dir}/{stem}_psf.fits' (also for the other maps)"
        ),
    ] = None,
    noise: Annotated[
        Path | None, typer.Option(help="sigma maps (counts, > 0): one per cutout or one for all")
    ] = None,
    weight: Annotated[
        Path | None, typer.Option(help="weight maps 1/sigma^2 (0 leaves a pixel out)")
    ] = None,
    mask: Annotated[
        Path | None, typer.Option(help="bad-pixel masks: nonzero leaves a pixel out (GALFIT)")
    ] = None,
    method: Annotated[
        str, typer.Option(help="cnn, refine, cnn+refine, hmc or cnn+refine+hmc (jaxgal.fit)")
    ] = "cnn+refine",
    preset: Annotated[
        str, typer.Option(help="survey preset: the CNN, and defaults for ZP and pixel scale")
    ] = "kids",
    zero_point: Annotated[
        float | None,
        typer.Option(
            help="magnitude zero point, over the header's MAGZERO/ZEROPNT "
            "[default: those, else the preset's]"
        ),
    ] = None,
    pixel_scale: Annotated[
        float | None,
        typer.Option(
            help="arcsec per pixel, over the header's WCS/PIXSCALE "
            "[default: those, else the preset's]"
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            "--shard-size",
            min=1,
            help="cutouts a shard: fitted at once, saved as one part",
        ),
    ] = 256,
    gain: Annotated[
        float | None,
        typer.Option(help="electrons per count, for GALFIT's noise model (no noise/weight)"),
    ] = None,
    read_noise: Annotated[float, typer.Option(help="read noise in electrons")] = 0.0,
    sky: Annotated[float, typer.Option(help="the subtracted sky, counts per pixel")] = 0.0,
    max_steps: Annotated[int, typer.Option(min=1, help="refinement steps at most")] = 100,
    model: Annotated[
        str, typer.Option(help="sersic, or bulge+disc (a Sersic bulge + an exponential disc)")
    ] = "sersic",
    fix: Annotated[
        list[str] | None,
        typer.Option(help="hold a parameter fixed, NAME=VALUE (repeat), e.g. bulge_n=4"),
    ] = None,
    bound: Annotated[
        list[str] | None,
        typer.Option(help="bound a parameter, NAME=LOW:HIGH (repeat), e.g. r_eff=0.1:3"),
    ] = None,
    free_centres: Annotated[
        bool, typer.Option(help="bulge+disc: each component its own centre")
    ] = False,
    seed: Annotated[int, typer.Option(help="HMC: random seed (shard s draws with seed, s)")] = 0,
    num_warmup: Annotated[int, typer.Option(min=1, help="HMC: warm-up steps a chain")] = 500,
    num_samples: Annotated[int, typer.Option(min=1, help="HMC: draws a chain")] = 500,
    num_chains: Annotated[int, typer.Option(min=1, help="HMC: chains a galaxy")] = 4,
    keep_parts: Annotated[
        bool, typer.Option(help="keep the work directory OUT.parts/ when done")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="replace an existing catalogue")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="worker processes of a dask LocalCluster, one thread each; 0 fits in this "
            "process [default: one per core; in this process for a job of one shard]",
        ),
    ] = None,
    serial: Annotated[
        bool, typer.Option("--serial", help="fit in this process, shard after shard")
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(help="join the running dask cluster at this address (tcp://HOST:8786)"),
    ] = None,
    scheduler_file: Annotated[
        Path | None, typer.Option(help="join the running dask cluster of this scheduler file")
    ] = None,
    slurm: Annotated[
        Path | None,
        typer.Option(
            help="start the workers as SLURM jobs (dask-jobqueue), as this YAML file says "
            "(examples/slurm.yaml)"
        ),
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="--slurm: SLURM jobs of workers")] = 1,
    gpus: Annotated[
        str,
        typer.Option(
            help="GPUs of this node for the LocalCluster's workers, one each: 'auto' (those "
            "nvidia-smi or CUDA_VISIBLE_DEVICES list; the workers default to one per GPU), "
            "'none', or CUDA device numbers '0,1'"
        ),
    ] = "auto",
    retries: Annotated[
        int, typer.Option(min=0, help="dask: times a shard whose fit raised is tried again")
    ] = 2,
):
    """Fit Sersic profiles to FITS cutouts and write a catalogue, one row per cutout in
    input order. Resumable: the job works in shards saved in OUT.parts/, and a rerun skips
    the shards that are done. The shards run on dask: a LocalCluster on this machine's
    cores, or a running cluster (--scheduler); --serial fits them in this process."""
    from jaxgal.fitting.api import METHODS
    from jaxgal.io.fit_job import FitOptions, run_fit_job
    from jaxgal.io.input_list import open_inputs

    try:
        if method not in METHODS:
            raise ValueError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
        joins = scheduler is not None or scheduler_file is not None or slurm is not None
        if (serial or workers == 0) and (joins or workers):
            raise ValueError(
                "--serial (or --workers 0) fits in this process: no --workers, --scheduler "
                "or --slurm"
            )
        inputs = open_inputs(cutouts, psf=psf, noise=noise, weight=weight, mask=mask)
        options = FitOptions(
            method=method,
            preset=preset,
            zero_point=zero_point,
            pixel_scale=pixel_scale,
            batch_size=batch_size,
            gain=gain,
            read_noise=read_noise,
            sky=sky,
            max_steps=max_steps,
            seed=seed,
            num_warmup=num_warmup,
            num_samples=num_samples,
            num_chains=num_chains,
            model=model,
            fixed=tuple(_fixed_option(item) for item in fix or ()),
            bounds=tuple(_bound_option(item) for item in bound or ()),
            shared_centre=not free_centres,
        )
        options.fit_model()  # a bad model fails here, before any file is opened
        in_process = serial or workers == 0
        if not in_process and workers is None and not joins:
            # a job of one shard, or one core, has nothing to share out
            in_process = inputs.count <= batch_size or (os.cpu_count() or 1) < 2
        run_shards = None
        if not in_process:
            from jaxgal.io.cluster import ClusterOptions, dask_shard_runner

            where = ClusterOptions(
                workers=workers,
                scheduler=scheduler,
                scheduler_file=None if scheduler_file is None else str(scheduler_file),
                slurm_config=None if slurm is None else str(slurm),
                jobs=jobs,
                gpus=_gpus_option(gpus),
            )
            run_shards = dask_shard_runner(where, retries=retries)
        run_fit_job(
            inputs,
            options,
            out,
            keep_parts=keep_parts,
            overwrite=overwrite,
            progress=progress,
            log=lambda line: typer.echo(line, err=True),
            run_shards=run_shards,
            command_line=shlex.join(sys.argv),
        )
    except ValueError as error:
        _fail("fit", error)


@app.command(short_help="How far a fit job is: shards done, running, failed.")
def status(
    out: Annotated[
        Path, typer.Argument(metavar="OUT", help="the catalogue of the job (its --out)")
    ],
):
    """Print how many shards of the job writing OUT are done, running, failed and pending,
    and why the failed ones failed. Only part files mark a shard done; a claim left by a
    worker that was killed shows as stale."""
    from jaxgal.io.provenance import provenance_path
    from jaxgal.io.shards import (
        done_shards,
        read_job_info,
        shard_ranges,
        shard_status,
        work_directory_for,
    )

    work_directory = work_directory_for(out)
    if not work_directory.is_dir():
        if out.exists():
            typer.echo(f"{out}: complete (no work directory {work_directory})")
            if provenance_path(out).exists():
                typer.echo(f"  its record: {provenance_path(out)}")
            return
        _fail("status", ValueError(f"no job writes {out}: neither it nor {work_directory}"))
    info = read_job_info(work_directory)
    if "shards" not in info:
        _fail("status", ValueError(f"{work_directory} has no job.json: a job of an older jaxgal"))
    counts = shard_status(work_directory, info["shards"])
    ranges = shard_ranges(info["rows"], info["shard_size"])
    finished = done_shards(work_directory, info["shards"])
    rows = sum(stop - start for shard, (start, stop) in enumerate(ranges) if shard in finished)
    typer.echo(
        f"{out}: {counts['done']} of {counts['shards']} shards done ({rows} of "
        f"{info['rows']} galaxies), {counts['running']} running, {counts['failed']} failed, "
        f"{counts['pending']} pending"
        + (f", {counts['stale']} claimed by workers now gone" if counts["stale"] else "")
    )
    for shard, record in list(counts["failures"].items())[:10]:
        typer.echo(f"  shard {shard} failed: {record.get('reason', 'no reason recorded')}")
    if counts["failed"] > 10:
        typer.echo(f"  ... and {counts['failed'] - 10} more failed shards")


def _gpus_option(text: str) -> tuple[str, ...] | None:
    """--gpus: None (find them) for 'auto', () for 'none', else the listed device numbers."""
    if text.strip().lower() == "auto":
        return None
    if text.strip().lower() == "none":
        return ()
    gpus = tuple(part.strip() for part in text.split(","))
    if not all(part.isdigit() for part in gpus):
        raise ValueError(f"--gpus takes 'auto', 'none' or CUDA device numbers '0,1', got {text!r}")
    return gpus


def _fixed_option(text: str) -> tuple[str, float]:
    name, separator, value = text.partition("=")
    try:
        if not separator:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise ValueError(f"--fix takes NAME=VALUE, got {text!r}") from None


def _bound_option(text: str) -> tuple[str, float, float]:
    name, separator, pair = text.partition("=")
    low, colon, high = pair.partition(":")
    try:
        if not separator or not colon:
            raise ValueError
        return name.strip(), float(low), float(high)
    except ValueError:
        raise ValueError(f"--bound takes NAME=LOW:HIGH, got {text!r}") from None


def main(argv=None):
    """The `jaxgal` console script."""
    app(args=argv, prog_name="jaxgal")


if __name__ == "__main__":
    main()
