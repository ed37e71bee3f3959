"""jaxgal.io on small FITS files written here with astropy: cubes, extensions, directories,
header facts (a rotated WCS, PIXSCALE, MAGZERO / ZEROPNT), pairing of PSFs and maps with
cutouts, errors that name the file, atomic catalogues and the shard bookkeeping."""

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from jaxgal.io import InputError, open_fit_inputs, open_stack, read_table, write_table_atomically
from jaxgal.io.fits import UnreadableFile
from jaxgal.io.shards import (
    ConfigurationMismatch,
    combine_parts,
    done_shards,
    open_work_directory,
    shard_ranges,
    write_part,
)


def write_image(path, data, **keywords):
    hdu = fits.PrimaryHDU(np.asarray(data, np.float32))
    hdu.header.update(keywords)
    hdu.writeto(path)
    return path


@pytest.fixture
def cube(rng):
    return rng.normal(size=(5, 12, 10))


def test_cube_with_keywords(tmp_path, cube):
    path = write_image(tmp_path / "c.fits", cube, PIXSCALE=0.262, ZEROPNT=27.5)
    stack = open_stack(path, "cutouts")
    assert (stack.count, stack.shape) == (5, (12, 10))
    assert stack.facts.pixel_scale == pytest.approx(0.262)
    assert stack.facts.zero_point == pytest.approx(27.5)
    np.testing.assert_allclose(stack.read(1, 4), cube[1:4].astype(np.float32))
    assert stack.read().shape == (5, 12, 10)
    assert stack.names() is None and "plane 3" in stack.describe(3)


def test_cube_in_an_extension_with_keywords_in_the_primary(tmp_path, cube):
    primary = fits.PrimaryHDU()
    primary.header["MAGZERO"] = 30.0
    primary.header["ZEROPNT"] = 25.0  # MAGZERO comes first
    primary.header["PIXSCALE"] = 0.2
    path = tmp_path / "ext.fits"
    fits.HDUList([primary, fits.ImageHDU(cube)]).writeto(path)
    stack = open_stack(path, "cutouts")
    assert stack.count == 5 and stack.facts.zero_point == 30.0
    assert stack.facts.pixel_scale == 0.2
    np.testing.assert_allclose(stack.read(), cube)


def test_pixel_scale_from_a_rotated_wcs(tmp_path):
    scale, angle = 0.05 / 3600.0, np.deg2rad(33.0)  # degrees per pixel
    header = {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CRVAL1": 150.1,
        "CRVAL2": 2.2,
        "CRPIX1": 5.0,
        "CRPIX2": 5.0,
        "CD1_1": -scale * np.cos(angle),
        "CD1_2": scale * np.sin(angle),
        "CD2_1": scale * np.sin(angle),
        "CD2_2": scale * np.cos(angle),
        "PIXSCALE": 9.9,  # the WCS wins
    }
    path = write_image(tmp_path / "w.fits", np.zeros((9, 9)), **header)
    facts = open_stack(path, "cutouts").facts
    assert facts.pixel_scale == pytest.approx(0.05, rel=1e-9)
    assert facts.pixel_scale_source == "WCS"
    header["CD2_2"] *= 1.5
    header["CD2_1"] *= 1.5
    bad = write_image(tmp_path / "stretched.fits", np.zeros((9, 9)), **header)
    with pytest.raises(InputError, match="stretched.fits.*not square"):
        open_stack(bad, "cutouts")


def test_directory_sorted_by_name(tmp_path, rng):
    folder = tmp_path / "cutouts"
    folder.mkdir()
    images = {name: rng.normal(size=(8, 8)) for name in ("b.fits", "a.fits", "c.fit")}
    for name, image in images.items():
        write_image(folder / name, image, MAGZERO=30.0)
    (folder / "notes.txt").write_text("not an image")
    stack = open_stack(folder, "cutouts")
    assert stack.names() == ["a.fits", "b.fits", "c.fit"]
    assert stack.facts.zero_point == 30.0 and stack.facts.pixel_scale is None
    np.testing.assert_allclose(stack.read(1, 3)[0], images["b.fits"].astype(np.float32))
    write_image(folder / "d.fits", np.zeros((8, 8)), MAGZERO=29.0)
    with pytest.raises(InputError, match="d.fits.*zero_point 29.0"):
        open_stack(folder, "cutouts")
    (folder / "d.fits").unlink()
    write_image(folder / "d.fits", np.zeros((8, 9)), MAGZERO=30.0)
    with pytest.raises(InputError, match=r"d.fits: shape \(8, 9\)"):
        open_stack(folder, "cutouts")


def test_a_damaged_file_of_a_directory_fails_only_its_row(tmp_path, rng):
    folder = tmp_path / "cutouts"
    folder.mkdir()
    images = rng.normal(size=(3, 8, 8))
    for name, image in zip("abc", images):
        write_image(folder / f"{name}.fits", image, MAGZERO=30.0)
    (folder / "b.fits").write_bytes(b"SIMPLE  = garbage" * 400)
    stack = open_stack(folder, "cutouts")
    assert stack.count == 3 and stack.names() == ["a.fits", "b.fits", "c.fits"]
    assert stack.facts.zero_point == 30.0
    np.testing.assert_allclose(stack.read(2, 3)[0], images[2].astype(np.float32))
    with pytest.raises(UnreadableFile, match="b.fits: not a readable FITS file"):
        stack.read(0, 2)
    with pytest.raises(UnreadableFile, match="b.fits"):
        stack.select(["c.fits", "b.fits"]).read(1, 2)
    for name in "ac":
        (folder / f"{name}.fits").write_bytes(b"")
    with pytest.raises(InputError, match="no file can be read; the first: .*a.fits"):
        open_stack(folder, "cutouts")


def test_bad_files_are_named(tmp_path):
    junk = tmp_path / "junk.fits"
    junk.write_text("this is not FITS at all" * 200)
    with pytest.raises(InputError, match="junk.fits: not a readable FITS file"):
        open_stack(junk, "cutouts")
    with pytest.raises(InputError, match="missing.fits: no such file"):
        open_stack(tmp_path / "missing.fits", "cutouts")
    table = tmp_path / "table.fits"
    Table({"a": [1, 2]}).write(table)
    with pytest.raises(InputError, match="table.fits: no image"):
        open_stack(table, "cutouts")
    four = write_image(tmp_path / "four.fits", np.zeros((2, 2, 8, 8)))
    with pytest.raises(InputError, match=r"four.fits: an image of shape \(2, 2, 8, 8\)"):
        open_stack(four, "cutouts")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty: a directory with no FITS files"):
        open_stack(empty, "cutouts")


def test_inputs_pair_and_broadcast(tmp_path, cube):
    cutouts = write_image(tmp_path / "c.fits", cube)
    one_psf = np.zeros((5, 5))
    one_psf[2, 2] = 1.0
    psf = write_image(tmp_path / "psf.fits", one_psf)
    sigma = write_image(tmp_path / "sigma.fits", np.full((12, 10), 2.0))
    mask = np.zeros((5, 12, 10))
    mask[3, 4, 5] = 1  # nonzero: a bad pixel
    mask_path = write_image(tmp_path / "mask.fits", mask)
    inputs = open_fit_inputs(cutouts, psf=psf, noise=sigma, mask=mask_path)
    rows = inputs.rows(2, 5)
    assert rows.psf_images.shape == (3, 5, 5) and np.all(rows.psf_images[:, 2, 2] == 1)
    assert rows.noise.shape == (3, 12, 10) and np.all(rows.noise == 2.0)
    assert rows.mask.shape == (3, 12, 10) and (~rows.mask).sum() == 1 and not rows.mask[1, 4, 5]
    assert rows.weight is None and rows.files is None


def test_inputs_errors_name_the_file(tmp_path, cube):
    cutouts = write_image(tmp_path / "c.fits", cube)
    psfs = write_image(tmp_path / "psfs.fits", np.ones((3, 5, 5)))
    with pytest.raises(InputError, match="psfs.fits: 3 images for 5 cutouts"):
        open_fit_inputs(cutouts, psf=psfs)
    even = write_image(tmp_path / "even.fits", np.ones((5, 6, 6)))
    with pytest.raises(InputError, match="even.fits: stamps of 6 x 6.*odd"):
        open_fit_inputs(cutouts, psf=even)
    wrong = write_image(tmp_path / "wrong.fits", np.ones((5, 12, 12)))
    with pytest.raises(InputError, match="noise .*wrong.fits: images of 12 x 12.*12 x 10"):
        open_fit_inputs(cutouts, noise=wrong)
    sigma = np.ones((5, 12, 10))
    sigma[3, 0, 0] = 0.0
    sigma[3, 1, 1] = -2.0
    zeros = write_image(tmp_path / "zeros.fits", sigma)
    inputs = open_fit_inputs(cutouts, noise=zeros)
    inputs.rows(0, 3)  # the bad plane is not in these rows
    with pytest.raises(InputError, match=r"zeros.fits \(plane 3\): 2 pixels are zero or negative"):
        inputs.rows(3, 5)
    weight = np.ones((5, 12, 10))
    weight[0, 0, 0] = -1.0
    negative = write_image(tmp_path / "negative.fits", weight)
    with pytest.raises(InputError, match=r"negative.fits \(plane 0\): 1 pixels are negative"):
        open_fit_inputs(cutouts, weight=negative).rows(0, 5)
    dark = write_image(tmp_path / "dark.fits", np.zeros((5, 5)))
    with pytest.raises(InputError, match="dark.fits: the PSF's pixels sum to 0"):
        open_fit_inputs(cutouts, psf=dark).rows(0, 5)
    with pytest.raises(InputError, match="not both"):
        open_fit_inputs(cutouts, noise=zeros, weight=negative)


def test_directories_pair_by_name_and_name_a_missing_psf(tmp_path, rng):
    cutouts, psfs = tmp_path / "cutouts", tmp_path / "psfs"
    cutouts.mkdir()
    psfs.mkdir()
    for k, name in enumerate(["g1.fits", "g2.fits", "g3.fits"]):
        write_image(cutouts / name, rng.normal(size=(8, 8)))
        stamp = np.zeros((3, 3))
        stamp[1, 1] = k + 1.0  # tells which PSF came back
        write_image(psfs / name, stamp)
    write_image(psfs / "a_spare.fits", np.ones((3, 3)))  # sorts first, paired by name
    rows = open_fit_inputs(cutouts, psf=psfs).rows(0, 3)
    assert rows.files == ["g1.fits", "g2.fits", "g3.fits"]
    np.testing.assert_allclose(rows.psf_images[:, 1, 1], [1.0, 2.0, 3.0])
    (psfs / "g2.fits").unlink()
    with pytest.raises(InputError, match="psfs: no file g2.fits for the cutout .*g2.fits"):
        open_fit_inputs(cutouts, psf=psfs)


def test_catalogue_round_trip_fits_and_parquet(tmp_path):
    table = Table(
        {"index": np.arange(3), "r_eff": [0.5, 1.0, 2.0], "converged": [True, False, True]}
    )
    for name in ("cat.fits", "cat.parquet"):
        write_table_atomically(table, tmp_path / name)
        back = read_table(tmp_path / name)
        assert back.colnames == table.colnames
        np.testing.assert_array_equal(back["r_eff"], table["r_eff"])
        np.testing.assert_array_equal(back["converged"], table["converged"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.fits", "cat.parquet"]


def test_shards_and_configuration(tmp_path):
    assert shard_ranges(7, 3) == [(0, 3), (3, 6), (6, 7)]
    work = tmp_path / "out.fits.parts"
    open_work_directory(work, {"method": "cnn", "batch": 3})
    assert json.loads((work / "config.json").read_text()) == {"batch": 3, "method": "cnn"}
    write_part(work, 1, Table({"index": [3, 4, 5]}))
    (work / ".part-000000.fits.abc.tmp").write_text("a killed write")
    open_work_directory(work, {"batch": 3, "method": "cnn"})  # same configuration
    assert not (work / ".part-000000.fits.abc.tmp").exists()
    assert done_shards(work, 3) == {1}
    with pytest.raises(ConfigurationMismatch, match="batch: was 3, now 4"):
        open_work_directory(work, {"method": "cnn", "batch": 4})
    with pytest.raises(RuntimeError, match=r"shards \[0, 2\] are not done"):
        combine_parts(work, 3, 7)
    write_part(work, 0, Table({"index": [0, 1, 2]}))
    write_part(work, 2, Table({"index": [5]}))  # a row twice, one missing
    with pytest.raises(RuntimeError, match="not each of 0..6 once"):
        combine_parts(work, 3, 7)
    write_part(work, 2, Table({"index": [6]}))
    np.testing.assert_array_equal(combine_parts(work, 3, 7)["index"], np.arange(7))
