"""The `jaxgal` command: `simulate` writes a test set whose sigma map matches its noise (the
truths rendered by GalSim), `fit` reads it back and fits it (the same as `jaxgal.fit` on the
arrays, close to the truths), directories, NaN pixels and masks, the options handed to
`jaxgal.fit`, bad files named in the errors, and a job killed with SIGKILL and rerun that
loses nothing and recomputes nothing done."""

import os
import signal
import subprocess
import sys
import time

import galsim
import jax
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from typer.testing import CliRunner

import jaxgal
from jaxgal.cli import app
from jaxgal.fitting import BulgeDisc

COUNT = 6
# one test worker writes the module's simulated set once
pytestmark = pytest.mark.xdist_group("cli")


def invoke(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    directory = tmp_path_factory.mktemp("simulated")
    result = invoke(
        "simulate", "--preset", "kids", "--count", COUNT, "--seed", 5, "--out", directory
    )
    assert result.exit_code == 0, result.output
    return directory


def read_cube(path):
    with fits.open(path) as hdus:
        return np.asarray(hdus[0].data, np.float64), dict(hdus[0].header)


def test_simulated_set(simulated):
    images, header = read_cube(simulated / "cutouts.fits")
    psfs, _ = read_cube(simulated / "psfs.fits")
    truth = Table.read(simulated / "truth.fits")
    assert images.shape == (COUNT, 64, 64) and psfs.shape == (COUNT, 25, 25)
    assert header["PIXSCALE"] == 0.2 and header["MAGZERO"] == 30.0
    np.testing.assert_allclose(psfs.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(truth["index"], np.arange(COUNT))
    np.testing.assert_allclose(truth["flux"], 10 ** (-0.4 * (truth["magnitude"] - 30.0)), rtol=1e-5)
    assert invoke("simulate", "--count", 2, "--out", simulated).exit_code == 1  # no overwrite


def test_sigma_map_is_the_noise_of_the_cutouts(simulated):
    """sigma^2 = sky_sigma^2 + model / gain with the truth drawn by GalSim, and
    (image - model) / sigma is a unit normal."""
    images, header = read_cube(simulated / "cutouts.fits")
    sigma, _ = read_cube(simulated / "sigma.fits")
    truth = Table.read(simulated / "truth.fits")
    pulls = []
    for row, image, row_sigma in zip(truth, images, sigma, strict=True):
        galaxy = (
            galsim.Sersic(n=float(row["n"]), half_light_radius=float(row["r_eff"]))
            .withFlux(float(row["flux"]))
            .shear(q=float(row["q"]), beta=float(row["pa"]) * galsim.degrees)
            .shift(float(row["x0"]), float(row["y0"]))
        )
        psf = galsim.Moffat(beta=float(row["psf_beta"]), fwhm=float(row["psf_fwhm"])).shear(
            g1=float(row["psf_g1"]), g2=float(row["psf_g2"])
        )
        model = galsim.Convolve(galaxy, psf).drawImage(nx=64, ny=64, scale=0.2).array
        poisson = np.maximum(model, 0.0) / header["GAIN"]
        # GalSim and jaxgal agree to ~1e-3 of the peak; sigma is stored in float32
        np.testing.assert_allclose(
            row_sigma**2 - row["sky_sigma"] ** 2,
            poisson,
            atol=1e-3 * row["sky_sigma"] ** 2 + 2e-3 * poisson.max(),
        )
        pulls.append((image - model) / row_sigma)
    assert np.mean(np.square(pulls)) == pytest.approx(1.0, abs=0.05)


def test_fit_round_trip(simulated, tmp_path):
    out = tmp_path / "catalog.fits"
    args = ["--psf", simulated / "psfs.fits", "--noise", simulated / "sigma.fits"]
    result = invoke(
        "fit", simulated / "cutouts.fits", *args, "--method", "cnn", "--batch-size", 4,
        "--out", out, "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "zero point 30.0 (header MAGZERO)" in result.output
    catalog, truth = Table.read(out), Table.read(simulated / "truth.fits")
    np.testing.assert_array_equal(catalog["index"], np.arange(COUNT))
    assert not (tmp_path / "catalog.fits.parts").exists()
    assert np.all(np.abs(catalog["magnitude"] - truth["magnitude"]) < 0.3)
    assert np.all(np.abs(np.log(catalog["r_eff"] / truth["r_eff"])) < np.log(1.6))
    images, _ = read_cube(simulated / "cutouts.fits")
    psfs, _ = read_cube(simulated / "psfs.fits")
    direct = jaxgal.fit(images, psfs, method="cnn", zero_point=30.0, pixel_scale=0.2)
    for name in ("magnitude", "r_eff", "n", "q", "pa", "x0", "y0", "r_eff_err", "flags"):
        np.testing.assert_allclose(catalog[name], direct[name], rtol=1e-6, atol=1e-9)
    # Parquet, and a finished catalogue is not replaced without --overwrite
    parquet = tmp_path / "catalog.parquet"
    common = ["fit", simulated / "cutouts.fits", *args, "--method", "cnn", "--no-progress"]
    assert invoke(*common, "--out", parquet).exit_code == 0
    np.testing.assert_allclose(Table.read(parquet)["magnitude"], catalog["magnitude"], rtol=1e-6)
    result = invoke(*common, "--out", out)
    assert result.exit_code == 1 and "--overwrite" in result.output


def test_directory_nan_pixels_and_masks(simulated, tmp_path):
    images, _ = read_cube(simulated / "cutouts.fits")
    psfs, _ = read_cube(simulated / "psfs.fits")
    cutouts, psf_directory = tmp_path / "cutouts", tmp_path / "psfs"
    cutouts.mkdir()
    psf_directory.mkdir()
    images[2, 30:33, 31] = np.nan
    images[4, 0, 0] = np.inf
    names = [f"galaxy_{k}.fits" for k in range(3)]
    for name, image, psf in zip(names, images[2:5], psfs[2:5], strict=True):
        fits.PrimaryHDU(image).writeto(cutouts / name)
        fits.PrimaryHDU(psf).writeto(psf_directory / name)
    mask = np.zeros((64, 64), np.int16)
    mask[10, 10] = 4  # nonzero: a bad pixel, in every cutout
    fits.PrimaryHDU(mask).writeto(tmp_path / "mask.fits")
    out = tmp_path / "catalog.fits"
    result = invoke(
        "fit", cutouts, "--psf", psf_directory, "--mask", tmp_path / "mask.fits",
        "--method", "cnn", "--out", out, "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    catalog = Table.read(out)
    assert list(catalog["file"]) == names
    np.testing.assert_array_equal(catalog["n_masked"], [4, 1, 2])
    assert np.all(catalog["flags"] & 2)
    for name in ("magnitude", "r_eff", "n", "q"):
        assert np.all(np.isfinite(catalog[name]))


def test_options_reach_jaxgal_fit(tmp_path, monkeypatch, rng):
    """What the command hands `jaxgal.fit` for refinement: maps, noise model, calibration."""
    calls = []

    def recording_fit(images, psf_images, noise, **options):
        calls.append({"images": images, "psf_images": psf_images, "noise": noise, **options})
        return Table({"index": np.arange(len(images)), "magnitude": np.full(len(images), 20.0)})

    monkeypatch.setattr(jaxgal, "fit", recording_fit)
    images = rng.normal(size=(3, 16, 16))
    header = fits.Header({"ZEROPNT": 27.0, "PIXSCALE": 0.1})
    fits.PrimaryHDU(images, header).writeto(tmp_path / "cutouts.fits")
    weight = np.ones((3, 16, 16))
    weight[1, 2, 3] = 0.0
    fits.PrimaryHDU(weight).writeto(tmp_path / "weight.fits")
    common = ["fit", tmp_path / "cutouts.fits", "--method", "refine", "--no-progress", "--serial"]
    result = invoke(*common, "--weight", tmp_path / "weight.fits", "--batch-size", 2,
                    "--max-steps", 7, "--out", tmp_path / "a.fits")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [len(call["images"]) for call in calls] == [2, 1]
    np.testing.assert_allclose(np.concatenate([c["images"] for c in calls]), images)
    np.testing.assert_array_equal(np.concatenate([c["weight"] for c in calls]), weight)
    first = calls[0]
    assert first["noise"] is None and first["psf_images"] is None and first["mask"] is None
    assert (first["zero_point"], first["pixel_scale"]) == (27.0, 0.1)  # from the header
    assert (first["method"], first["max_steps"]) == ("refine", 7)
    calls.clear()
    noise_model = ["--gain", 3.0, "--read-noise", 4.0, "--sky", 50.0]
    calibration = ["--zero-point", 25.5, "--pixel-scale", 0.15]
    result = invoke(*common, *noise_model, *calibration, "--out", tmp_path / "b.fits")
    assert result.exit_code == 0, result.output
    call = calls[0]
    assert (call["gain"], call["read_noise"], call["sky"]) == (3.0, 4.0, 50.0)
    assert (call["zero_point"], call["pixel_scale"]) == (25.5, 0.15)  # options beat headers
    calls.clear()
    hmc = ["--method", "hmc", "--seed", 11, "--num-warmup", 20, "--num-samples", 30]
    result = invoke(*common, *noise_model, *hmc, "--batch-size", 2, "--out", tmp_path / "h.fits")
    assert result.exit_code == 0, result.output
    assert [(c["num_warmup"], c["num_samples"], c["num_chains"]) for c in calls] == [
        (20, 30, 4)
    ] * 2
    keys = [jax.random.key_data(c["key"]) for c in calls]  # one key a shard, from the seed
    np.testing.assert_array_equal(
        keys[1], jax.random.key_data(jax.random.fold_in(jax.random.key(11), 1))
    )
    assert not np.array_equal(keys[0], keys[1])
    result = invoke(*common, "--out", tmp_path / "c.fits")
    assert result.exit_code == 1 and "needs the noise" in result.output
    assert not (tmp_path / "c.fits.parts").exists()
    calls.clear()
    model = ["--model", "bulge+disc", "--fix", "bulge_n=4", "--bound", "disc_q=0.2:0.9"]
    result = invoke(*common, *noise_model, *model, "--free-centres", "--out", tmp_path / "m.fits")
    assert result.exit_code == 0, result.output
    assert calls[0]["model"] == BulgeDisc(
        fixed={"bulge_n": 4.0}, bounds={"disc_q": (0.2, 0.9)}, shared_centre=False
    )
    for bad, named in [
        (["--fix", "n"], "NAME=VALUE"),
        (["--bound", "n=1"], "NAME=LOW:HIGH"),
        (["--fix", "disc_n=2", "--model", "bulge+disc"], "unknown parameter 'disc_n'"),
        (["--model", "disc"], "sersic or bulge+disc"),
        (["--free-centres"], "--free-centres is for --model bulge+disc"),
    ]:
        result = invoke(*common, *noise_model, *bad, "--out", tmp_path / "bad.fits")
        assert result.exit_code == 1 and named in result.output, (bad, result.output)


def test_bad_files_are_named(simulated, tmp_path):
    cutouts, psfs = simulated / "cutouts.fits", simulated / "psfs.fits"
    (tmp_path / "junk.fits").write_text("SIMPLE? no." * 300)
    fits.PrimaryHDU(np.ones((4, 25, 25))).writeto(tmp_path / "four_psfs.fits")
    fits.PrimaryHDU(np.ones((COUNT, 32, 32))).writeto(tmp_path / "small_sigma.fits")
    sigma, _ = read_cube(simulated / "sigma.fits")
    sigma[3, 5, 5] = 0.0
    sigma[3, 6, 6] = -1.0
    fits.PrimaryHDU(sigma).writeto(tmp_path / "zero_sigma.fits")
    cases = [
        (["fit", tmp_path / "junk.fits", "--psf", psfs], "junk.fits: not a readable FITS"),
        (["fit", cutouts, "--psf", tmp_path / "four_psfs.fits"], "four_psfs.fits: 4 images"),
        (["fit", cutouts, "--psf", tmp_path / "nowhere.fits"], "nowhere.fits: no such file"),
        (["fit", cutouts, "--psf", psfs, "--noise", tmp_path / "small_sigma.fits"],
         "small_sigma.fits: images of 32 x 32"),
        (["fit", cutouts, "--psf", psfs, "--noise", tmp_path / "zero_sigma.fits"],
         "zero_sigma.fits (plane 3): 2 pixels are zero or negative"),
        (["fit", cutouts, "--method", "cnn"], "needs PSFs"),
        (["fit", cutouts, "--psf", psfs, "--method", "magic"], "--method must be one of"),
    ]  # fmt: skip
    for args, message in cases:
        out = tmp_path / "catalog.fits"
        method = [] if "--method" in map(str, args) else ["--method", "cnn"]
        result = invoke(*args, *method, "--out", out, "--no-progress")
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (message, result.output)
        assert not out.exists() and not (tmp_path / "catalog.fits.parts").exists()


# `jaxgal.fit` stands in for the fitting in the kill test: the job machinery (shards, part
# files, resume) is what is tested, the CNN's start-up (~20 s a process) would only add
# time, and a fixed pause per shard makes sure the kill lands with shards still to do.
STAND_IN = """
import time
import numpy as np
from astropy.table import Table

def stand_in_fit(images, psf_images, noise, **options):
    time.sleep(0.05)
    return Table({
        "index": np.arange(len(images)),
        "total": np.sum(images, axis=(1, 2)),
        "psf_peak": np.max(psf_images, axis=(1, 2)),
        "zero_point": np.full(len(images), options["zero_point"]),
    })
"""


def test_killed_job_resumes_without_loss_or_rework(tmp_path, monkeypatch, rng):
    namespace = {}
    exec(STAND_IN, namespace)
    monkeypatch.setattr(jaxgal, "fit", namespace["stand_in_fit"])
    count = 24  # shards of one cutout: the kill lands with most of them to do
    images, psfs = rng.normal(size=(count, 16, 16)), rng.uniform(size=(count, 5, 5))
    fits.PrimaryHDU(images, fits.Header({"MAGZERO": 27.0})).writeto(tmp_path / "cutouts.fits")
    fits.PrimaryHDU(psfs).writeto(tmp_path / "psfs.fits")
    args = ["fit", tmp_path / "cutouts.fits", "--psf", tmp_path / "psfs.fits",
            "--method", "refine", "--gain", 2.0, "--batch-size", 1, "--no-progress",
            "--serial"]  # fmt: skip
    reference = tmp_path / "reference.fits"
    assert invoke(*args, "--out", reference).exit_code == 0

    out = tmp_path / "catalog.fits"
    parts = tmp_path / "catalog.fits.parts"
    launcher = STAND_IN + "\nimport sys, jaxgal, jaxgal.cli\njaxgal.fit = stand_in_fit\n"
    launcher += "jaxgal.cli.main(sys.argv[1:])\n"
    job = subprocess.Popen(
        [sys.executable, "-c", launcher, *map(str, args), "--out", str(out)],
        # in this process's precision (the suite's 64-bit floats): a job resumed in the
        # other one is refused
        env={**os.environ, "JAX_PLATFORMS": "cpu", "JAX_ENABLE_X64": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not (parts / "part-000000.fits").exists():
        assert job.poll() is None, job.stderr.read().decode()
        assert time.monotonic() < deadline, "no part file within 120 s"
        time.sleep(0.005)
    job.send_signal(signal.SIGKILL)
    job.wait()
    job.stderr.close()
    done = {path.name: path.stat().st_mtime_ns for path in parts.glob("part-*.fits")}
    assert 1 <= len(done) < count and not out.exists()

    result = invoke(*args, "--batch-size", 2, "--out", out)
    assert result.exit_code == 1 and "another configuration" in result.output
    assert "batch_size" in result.output
    result = invoke(*args, "--out", out, "--keep-parts")
    assert result.exit_code == 0, result.output
    assert f"resuming: {len(done)} of {count} shards" in result.output
    for name, mtime in done.items():  # done shards were not recomputed
        assert (parts / name).stat().st_mtime_ns == mtime
    assert len(list(parts.glob("part-*.fits"))) == count
    catalog, expected = Table.read(out), Table.read(reference)
    np.testing.assert_array_equal(catalog["index"], np.arange(count))
    assert catalog.colnames == expected.colnames
    for name in catalog.colnames:
        np.testing.assert_array_equal(catalog[name], expected[name], err_msg=name)
    # and each row holds its own cutout's numbers
    np.testing.assert_allclose(catalog["total"], images.sum(axis=(1, 2)), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(catalog["psf_peak"], psfs.max(axis=(1, 2)), rtol=1e-6)
    assert np.all(catalog["zero_point"] == 27.0)
