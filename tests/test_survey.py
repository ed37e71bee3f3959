"""Survey scale on dask (issue 6): `jaxgal fit` on a 2-worker LocalCluster of spawned
processes gives the serial run's catalogue, bit for bit, when a worker is killed in the
middle (a), and when the driver is killed and the job rerun, without recomputing a finished
shard (b); a corrupt file (its pixels, or its header) fails only its shard, whose rows are
flagged with the reason, and a rerun after the file is mended fits that shard alone (c);
every worker compiles once; the SLURM recipe's job script holds the YAML's cores, memory,
walltime and directives.

The galaxies are 48 tiny (16 x 16) elliptical Gaussians fitted by refinement, in shards of
two to five: one cluster serves every test, so each worker compiles the fit once (~20 s)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from typer.testing import CliRunner

from jaxgal.cli import app
from jaxgal.io.cluster import (
    ClusterOptions,
    connect,
    dask_shard_runner,
    local_gpus,
    slurm_cluster,
    worker_environment,
)
from jaxgal.io.fit_job import FLAG_SHARD_FAILED, FitOptions, run_fit_job
from jaxgal.io.input_list import open_inputs
from jaxgal.io.provenance import provenance_path
from jaxgal.io.shard_worker import pad_rows, shard_inputs

pytestmark = pytest.mark.xdist_group("survey")  # one cluster, compiled once, for them all

COUNT, SIDE, TILE = 48, 16, 4
FIT = ["--method", "refine", "--no-progress"]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def invoke(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def gaussian_galaxies(rng):
    """COUNT noisy elliptical Gaussians (sigma 1 counts) and a Gaussian PSF of 7 x 7."""
    y, x = np.mgrid[:SIDE, :SIDE] - (SIDE - 1) / 2
    images = []
    for _ in range(COUNT):
        peak, width, q, angle = (
            rng.uniform(15, 60),
            rng.uniform(1.2, 2.5),
            *rng.uniform([0.4, 0.0], [1.0, np.pi]),
        )
        dx, dy = rng.uniform(-0.5, 0.5, 2)
        major = (x - dx) * np.cos(angle) + (y - dy) * np.sin(angle)
        minor = -(x - dx) * np.sin(angle) + (y - dy) * np.cos(angle)
        model = peak * np.exp(-0.5 * (major**2 * q + minor**2 / q) / width**2)
        images.append(model + rng.normal(size=model.shape))
    psf = np.exp(-0.5 * ((np.arange(7) - 3)[:, None] ** 2 + (np.arange(7) - 3) ** 2) / 1.1**2)
    return np.asarray(images), psf / psf.sum()


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """The galaxies as a directory of files (PSFs paired by name, one sigma map for all)
    and as a list of cubes of TILE (each with its PSF cube, a column of the list)."""
    root = tmp_path_factory.mktemp("survey")
    images, psf = gaussian_galaxies(np.random.default_rng(20261202))
    header = fits.Header({"MAGZERO": 30.0, "PIXSCALE": 0.2})
    for name in ("cutouts", "psfs", "tiles"):
        (root / name).mkdir()
    for k, image in enumerate(images):
        fits.PrimaryHDU(image, header).writeto(root / "cutouts" / f"g{k:03d}.fits")
        fits.PrimaryHDU(psf).writeto(root / "psfs" / f"g{k:03d}.fits")
    fits.PrimaryHDU(np.ones((SIDE, SIDE))).writeto(root / "sigma.fits")
    lines = ["# the galaxies in tiles of 4, each with its PSFs", "cutouts psf"]
    for tile in range(COUNT // TILE):
        rows = images[tile * TILE : (tile + 1) * TILE]
        fits.PrimaryHDU(rows, header).writeto(root / "tiles" / f"tile_{tile:02d}.fits")
        fits.PrimaryHDU(np.repeat(psf[None], TILE, 0)).writeto(
            root / "tiles" / f"tile_{tile:02d}_psf.fits"
        )
        lines.append(f"tiles/tile_{tile:02d}.fits tiles/tile_{tile:02d}_psf.fits")
    (root / "tiles.txt").write_text("\n".join(lines) + "\n")
    directory = [root / "cutouts", "--psf", root / "psfs", "--noise", root / "sigma.fits"]
    tiles = [root / "tiles.txt", "--noise", root / "sigma.fits"]
    return SimpleNamespace(root=root, images=images, directory=directory, tiles=tiles)


@pytest.fixture(scope="module")
def serial(survey, tmp_path_factory):
    """The serial run on the directory, in shards of 2, in a process set up as a worker
    (XLA on one thread: the same sums in the same order)."""
    directory = tmp_path_factory.mktemp("serial")
    args = ["fit", *survey.directory, *FIT, "--batch-size", 2, "--serial"]
    job = start_driver(directory, *args, "--out", directory / "catalog.fits")
    assert job.wait(timeout=300) == 0, job.log.read_text()
    return Table.read(directory / "catalog.fits")


@pytest.fixture(scope="module")
def client():
    """The CLI's own LocalCluster: 2 spawned workers, one thread and one core each."""
    with connect(ClusterOptions(workers=2), log=print) as client:
        yield client


def start_driver(tmp_path, *args):
    """`jaxgal fit` in a process of its own (and its own session), 64-bit as this one,
    with XLA on one thread as in a worker."""
    log = open(tmp_path / "driver.log", "w")  # noqa: SIM115 (closed by the caller's wait)
    job = subprocess.Popen(
        [sys.executable, "-m", "jaxgal.cli", *map(str, args)],
        env={**os.environ, **worker_environment(), "JAX_PLATFORMS": "cpu", "JAX_ENABLE_X64": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    job.log = tmp_path / "driver.log"
    return job


def wait_for_parts(parts: Path, count: int, job, timeout=240):
    deadline = time.monotonic() + timeout
    while len(list(parts.glob("part-*.fits"))) < count:
        assert job.poll() is None, job.log.read_text()
        assert time.monotonic() < deadline, f"no {count} parts within {timeout} s"
        time.sleep(0.01)


def snapshot(parts: Path) -> dict:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in parts.glob("part-*.fits")}


def assert_same_fit(catalog, expected, rows=slice(None), exact=True):
    """The fit's columns of `catalog` equal `expected`'s (on `rows`)."""
    for name in expected.colnames:
        if name in ("file", "plane") or name not in catalog.colnames:
            continue
        got, want = np.asarray(catalog[name])[rows], np.asarray(expected[name])[rows]
        if exact:
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=name)


def assert_only_rows_failed(catalog, serial, rows, named: str):
    """Every input row once; `rows`, and only they, flagged as failed with a reason naming
    `named`; the others as the serial run's. Returns the failed rows' mask."""
    np.testing.assert_array_equal(catalog["index"], np.arange(COUNT))
    bad = np.isin(catalog["index"], rows)
    assert np.all(catalog["flags"][bad] & FLAG_SHARD_FAILED)
    assert not np.any(catalog["flags"][~bad] & FLAG_SHARD_FAILED)
    assert all(named in reason for reason in catalog["failure"][bad])
    assert_same_fit(catalog, serial, rows=~bad, exact=False)
    return bad


def assert_mended_by_a_rerun(result, out, serial):
    """The rerun after the file was mended fitted the failed shard alone, and the catalogue
    is the serial run's, nothing flagged."""
    assert result.exit_code == 0, result.output
    assert "resuming: 9 of 10 shards" in result.output
    catalog = Table.read(out)
    assert "failure" not in catalog.colnames and not np.any(catalog["flags"] & FLAG_SHARD_FAILED)
    assert_same_fit(catalog, serial, exact=False)


def test_a_worker_killed_mid_run(survey, serial, client, tmp_path):
    out, parts = tmp_path / "catalog.fits", tmp_path / "catalog.fits.parts"
    address = client.scheduler.address
    job = start_driver(
        tmp_path, "fit", *survey.directory, *FIT, "--batch-size", 2, "--scheduler", address,
        "--keep-parts", "--out", out,
    )  # fmt: skip
    wait_for_parts(parts, 1, job)
    pids = client.run(os.getpid)
    busy = [address for address, keys in client.processing().items() if keys]
    os.kill(pids[busy[0] if busy else next(iter(pids))], signal.SIGKILL)
    assert job.wait(timeout=300) == 0, job.log.read_text()
    assert len(snapshot(parts)) == COUNT // 2
    catalog = Table.read(out)
    np.testing.assert_array_equal(catalog["index"], np.arange(COUNT))  # each row once
    assert catalog.colnames == serial.colnames
    assert list(catalog["file"]) == list(serial["file"])
    assert_same_fit(catalog, serial)
    assert np.mean(catalog["converged"]) > 0.9
    log = job.log.read_text()
    assert "dask: the cluster at tcp://" in log and "galaxies/s" in log
    record = json.loads(provenance_path(out).read_text())  # what made the catalogue
    assert f"--scheduler {address}" in record["command_line"]
    assert record["configuration"]["inputs"]["cutouts"]["count"] == COUNT


def test_b_driver_killed_then_rerun(survey, serial, client, tmp_path):
    out, parts = tmp_path / "catalog.fits", tmp_path / "catalog.fits.parts"
    args = ["fit", *survey.directory, *FIT, "--batch-size", 2, "--keep-parts", "--out", out]
    job = start_driver(tmp_path, *args, "--scheduler", client.scheduler.address)
    wait_for_parts(parts, 3, job)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    time.sleep(1.0)  # a shard the cluster was fitting for the dead driver may still land
    done = snapshot(parts)
    assert 3 <= len(done) < COUNT // 2 and not out.exists()
    result = invoke("status", out)
    assert result.exit_code == 0, result.output
    assert f"{len(done)} of {COUNT // 2} shards done" in result.output
    assert " 0 failed" in result.output

    result = invoke(*args, "--scheduler", client.scheduler.address)
    assert result.exit_code == 0, result.output
    assert f"resuming: {len(done)} of {COUNT // 2} shards" in result.output
    after = snapshot(parts)
    assert {name: after[name] for name in done} == done  # not one recomputed
    assert len(after) == COUNT // 2
    catalog = Table.read(out)
    np.testing.assert_array_equal(catalog["index"], np.arange(COUNT))
    assert_same_fit(catalog, serial)
    record = json.loads(provenance_path(out).read_text())
    assert record["configuration"]["options"]["batch_size"] == 2
    assert record["code"]["jaxgal"] and "git_commit" in record["code"]
    status = invoke("status", out).output
    assert f"{COUNT // 2} of {COUNT // 2} shards done ({COUNT} of {COUNT} galaxies)" in status


def test_c_corrupt_file_fails_its_shard_and_a_rerun_mends_it(survey, serial, client, tmp_path):
    broken = survey.root / "tiles" / "tile_05.fits"  # rows 20-23: in the shard of rows 20-24
    good = broken.read_bytes()
    out, parts = tmp_path / "catalog.fits", tmp_path / "catalog.fits.parts"
    args = ["fit", *survey.tiles, *FIT, "--batch-size", 5, "--out", out]
    args += ["--scheduler", client.scheduler.address]
    try:
        broken.write_bytes(good[: len(good) // 2])  # the header intact, the pixels cut short
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert "1 shards failed (5 rows flagged 16" in result.output
        catalog = Table.read(out)
        bad = assert_only_rows_failed(catalog, serial, np.arange(20, 25), "tile_05.fits")
        assert np.all(np.isnan(np.ma.filled(np.ma.asarray(catalog["magnitude"]), np.nan)[bad]))
        assert list(catalog["plane"][:6]) == [0, 1, 2, 3, 0, 1]
        status = invoke("status", out).output
        assert "9 of 10 shards done" in status and "1 failed" in status
        assert "shard 4 failed" in status and "tile_05.fits" in status
        done = snapshot(parts)
    finally:
        broken.write_bytes(good)
    assert_mended_by_a_rerun(invoke(*args), out, serial)
    assert not parts.exists()  # done, and nothing failed: the work directory is gone
    assert "complete" in invoke("status", out).output
    assert done.keys() == {f"part-{shard:06d}.fits" for shard in range(10) if shard != 4}


def test_c_a_file_that_cannot_be_opened_fails_only_its_shard(survey, serial, client, tmp_path):
    """A damaged header in a directory of cutouts: the job is listed and run all the same,
    the file's shard is flagged with the reason, and the rerun after it is mended fits that
    shard alone (a directory's file is one row, damaged or not)."""
    broken = survey.root / "cutouts" / "g007.fits"  # in the shard of rows 5-9
    good = broken.read_bytes()
    out = tmp_path / "catalog.fits"
    args = ["fit", *survey.directory, *FIT, "--batch-size", 5, "--out", out]
    args += ["--scheduler", client.scheduler.address]
    try:
        broken.write_bytes(b"SIMPLE  = damaged" * 200)
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert "1 files cannot be read" in result.output and "g007.fits" in result.output
        named = "g007.fits: not a readable FITS"
        assert_only_rows_failed(Table.read(out), serial, np.arange(5, 10), named)
    finally:
        broken.write_bytes(good)
    assert_mended_by_a_rerun(invoke(*args), out, serial)


def test_each_worker_compiles_once(survey, client, tmp_path):
    """Shards of 5 on a glob of cubes with a naming rule for the PSFs: the last shard (3
    rows) is padded to 5, so after its first shard a worker compiles nothing."""
    inputs = open_inputs(
        survey.root / "tiles" / "tile_??.fits",
        psf="{dir}/{stem}_psf.fits",
        noise=survey.root / "sigma.fits",
    )
    assert inputs.count == COUNT
    options = FitOptions(method="refine", batch_size=5)
    records = []
    runner = dask_shard_runner(client, records=records)
    catalog = run_fit_job(inputs, options, tmp_path / "c.fits", run_shards=runner, log=print)
    np.testing.assert_array_equal(catalog["index"], np.arange(COUNT))
    assert sorted(record["shard"] for record in records) == list(range(10))
    by_worker = {}
    for record in sorted(records, key=lambda record: record["shard"]):
        by_worker.setdefault(record["worker"], []).append(record)
    for worker, shards in by_worker.items():
        later = [(r["shard"], r["compile_events"]) for r in shards[1:] if r["compile_events"]]
        assert not later, f"{worker} compiled again in shards {later}"


def test_pad_rows_repeats_the_last_row():
    from jaxgal.io.inputs import FitRows

    images = np.arange(3 * 2 * 2.0).reshape(3, 2, 2)
    rows = FitRows(images, None, images + 1, None, images > 1, ["a", "b", "c"])
    padded = pad_rows(rows, 5)
    assert padded.images.shape == (5, 2, 2) and padded.psf_images is None
    np.testing.assert_array_equal(padded.noise[3:], np.repeat(images[2:] + 1, 2, axis=0))
    assert padded.files == ["a", "b", "c"] and pad_rows(rows, 3) is rows


def test_a_task_carries_only_its_rows(survey):
    """A shard's task is sent its own files, not the survey's, and reads the same rows."""
    directory = open_inputs(survey.root / "cutouts", psf=survey.root / "psfs")
    tiles = open_inputs(survey.root / "tiles.txt", noise=survey.root / "sigma.fits")
    for inputs in (directory, tiles):
        small, first = shard_inputs(inputs, 18, 23)
        rows, whole = small.rows(18 - first, 23 - first), inputs.rows(18, 23)
        for name in ("images", "psf_images", "noise", "files", "planes"):
            got, want = getattr(rows, name), getattr(whole, name)
            assert (got is None) == (want is None), name
            if got is not None:
                np.testing.assert_array_equal(got, want, err_msg=name)
    assert len(shard_inputs(directory, 18, 23)[0].cutouts.files) == 5
    assert [f.cutouts.name for f in shard_inputs(tiles, 18, 23)[0].files] == [
        "tile_04.fits",
        "tile_05.fits",
    ]


def test_slurm_job_script_from_the_yaml_recipe():
    cluster = slurm_cluster(EXAMPLES / "slurm.yaml", dashboard_address=None)
    try:
        script = cluster.job_script()
        assert cluster.scheduler.allowed_failures == 5  # the YAML's dask settings
    finally:
        cluster.close()
    for line in (
        "#SBATCH -J jaxgal-worker",
        "#SBATCH -p cpu",
        "#SBATCH --cpus-per-task=32",
        "#SBATCH -t 04:00:00",
        "#SBATCH --exclusive",
        "#SBATCH --constraint=x86_64",
        "export XLA_PYTHON_CLIENT_PREALLOCATE=false",
    ):
        assert line in script, (line, script)
    assert re.search(r"#SBATCH --mem=11\dG", script)  # 120 GB in GiB
    assert "--nworkers 32" in script and "--nthreads 1" in script
    with pytest.raises(ValueError, match="not a readable YAML"):
        slurm_cluster(EXAMPLES / "slurm.yaml.missing")


def test_a_job_resumed_in_the_other_precision_is_refused(survey, tmp_path):
    """The configuration a work directory keeps holds the precision: shards fitted with
    64-bit floats are not mixed with shards fitted with 32-bit ones."""
    import jax

    from jaxgal.io.fit_job import job_configuration
    from jaxgal.io.shards import ConfigurationMismatch, open_work_directory

    inputs = open_inputs(survey.root / "tiles" / "tile_??.fits", psf="{dir}/{stem}_psf.fits")
    options = FitOptions(method="refine", batch_size=5)
    work = tmp_path / "c.fits.parts"
    before = bool(jax.config.jax_enable_x64)
    try:
        jax.config.update("jax_enable_x64", True)
        open_work_directory(work, job_configuration(inputs, options, {}))
        jax.config.update("jax_enable_x64", False)
        with pytest.raises(ConfigurationMismatch, match="float64: was True, now False"):
            open_work_directory(work, job_configuration(inputs, options, {}))
    finally:
        jax.config.update("jax_enable_x64", before)


def test_each_local_worker_gets_a_gpu_of_its_own():
    """A LocalCluster given GPUs (two device numbers here; JAX on a CPU ignores them) makes
    a worker per GPU and hands each its own through CUDA_VISIBLE_DEVICES, set before JAX
    starts in the worker, so that workers never share a GPU's memory."""
    with connect(ClusterOptions(gpus=("3", "1")), log=print) as client:
        seen = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
    assert sorted(seen.values()) == ["1", "3"], seen


def test_local_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0, 2")
    assert local_gpus() == ("0", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert local_gpus() == ()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("PATH", "")  # no nvidia-smi to ask: no GPUs
    assert local_gpus() == ()


def test_the_gpus_option():
    from jaxgal.cli import _gpus_option

    assert _gpus_option("auto") is None
    assert _gpus_option("none") == ()
    assert _gpus_option("0, 2") == ("0", "2")
    with pytest.raises(ValueError, match="--gpus"):
        _gpus_option("the first")
