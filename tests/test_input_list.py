"""Many inputs in one job (`jaxgal.io.input_list`): a glob or a list of cubes and cutout
files reads back the pixels written, row by row across the files, with each file's maps
from a naming rule, a directory, one file for all or the list's columns; bad lists and
mismatched files are named in the errors. No fitting here."""

import numpy as np
import pytest
from astropy.io import fits

from jaxgal.io.fits import InputError, UnreadableFile
from jaxgal.io.input_list import InputList, open_input_list, open_inputs
from jaxgal.io.inputs import FitInputs


@pytest.fixture
def tiles(tmp_path, rng):
    """Three cubes of 3, 1 (a 2-d file) and 2 cutouts, each with its PSFs and sigma."""
    images = rng.normal(size=(6, 8, 8))
    psfs = rng.uniform(0.1, 1.0, size=(6, 3, 3))
    header = fits.Header({"MAGZERO": 27.0})
    for name, rows in (("a", slice(0, 3)), ("b", slice(3, 4)), ("c", slice(4, 6))):
        cube = images[rows] if name != "b" else images[3]
        fits.PrimaryHDU(cube, header).writeto(tmp_path / f"{name}.fits")
        fits.PrimaryHDU(psfs[rows]).writeto(tmp_path / f"{name}_psf.fits")
        fits.PrimaryHDU(np.full(images[rows].shape, 2.0)).writeto(tmp_path / f"{name}_sigma.fits")
    return tmp_path, images, psfs


def test_glob_with_a_naming_rule_reads_across_files(tiles):
    directory, images, psfs = tiles
    inputs = open_inputs(
        directory / "?.fits", psf="{dir}/{stem}_psf.fits", noise="{dir}/{stem}_sigma.fits"
    )
    assert isinstance(inputs, InputList) and inputs.count == 6
    assert inputs.cutouts.facts.zero_point == 27.0 and inputs.cutouts.shape == (8, 8)
    rows = inputs.rows(2, 5)  # the last of a, b, the first of c
    np.testing.assert_array_equal(rows.images, images[2:5])
    np.testing.assert_allclose(rows.psf_images, psfs[2:5])
    np.testing.assert_array_equal(rows.noise, 2.0)
    assert rows.files == [str(directory / f"{n}.fits") for n in "abc"]
    assert rows.planes == [2, 0, 0]
    assert inputs.labels(2, 5) == (rows.files, rows.planes)
    assert inputs.describe()["count"] == 6 and len(inputs.describe()["files_sha256"]) == 64


def test_list_with_columns_and_one_map_for_all(tiles):
    directory, images, psfs = tiles
    fits.PrimaryHDU(np.ones((8, 8), np.int16)).writeto(directory / "mask.fits")
    (directory / "list.txt").write_text(
        "# cutouts and their PSFs\ncutouts psf\nc.fits c_psf.fits\n'a.fits' a_psf.fits\n"
    )
    inputs = open_input_list(directory / "list.txt", mask=directory / "mask.fits")
    assert inputs.count == 5 and inputs.psf.startswith("column psf") and inputs.noise is None
    rows = inputs.rows(0, 5)
    np.testing.assert_array_equal(rows.images, np.concatenate([images[4:6], images[0:3]]))
    np.testing.assert_allclose(rows.psf_images, np.concatenate([psfs[4:6], psfs[0:3]]))
    assert rows.mask.shape == (5, 8, 8) and not rows.mask.any()  # nonzero: left out
    assert rows.noise is None


def test_directory_and_cube_stay_as_before(tiles):
    directory, _, _ = tiles
    assert isinstance(open_inputs(directory / "a.fits"), FitInputs)
    with pytest.raises(InputError, match="naming rule pairs the files of a glob"):
        open_inputs(directory / "a.fits", psf="{stem}_psf.fits")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a list naming no files"),
        ("cutouts psf psf\na.fits x y\n", "each of psf, noise, weight, mask at most once"),
        ("cutouts psf\na.fits\n", "1 fields, but the list's columns are cutouts psf"),
        ("nowhere.fits\n", "list.txt:1: cutouts"),
        ("a.fits\nodd.fits\n", "list.txt:2: cutouts of (9, 9), but"),
        ("cutouts psf\na.fits a_psf.fits\nb.fits -\n", "list.txt:3: maps none, but"),
        ("a.fits\nzp.fits\n", "zero_point 25.0 from its header"),
        ("cutouts psf\na.fits 'a_psf.fits\n", "list.txt:2: No closing quotation"),
    ],
)
def test_bad_lists_are_named(tiles, text, message):
    directory, _, _ = tiles
    fits.PrimaryHDU(np.zeros((9, 9)), fits.Header({"MAGZERO": 27.0})).writeto(
        directory / "odd.fits"
    )
    fits.PrimaryHDU(np.zeros((8, 8)), fits.Header({"MAGZERO": 25.0})).writeto(directory / "zp.fits")
    (directory / "list.txt").write_text(text)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_input_list(directory / "list.txt")


def test_glob_and_option_errors(tiles):
    directory, _, _ = tiles
    with pytest.raises(InputError, match="no FITS file"):
        open_inputs(directory / "*.nothing")
    (directory / "list.txt").write_text("cutouts psf\na.fits a_psf.fits\n")
    with pytest.raises(InputError, match="a column of the list and --psf"):
        open_input_list(directory / "list.txt", psf="{stem}_psf.fits")
    with pytest.raises(InputError, match="the fields are"):
        open_inputs(directory / "?.fits", psf="{stm}_psf.fits")


def test_a_file_that_cannot_be_read_fails_only_its_rows(tiles):
    """A damaged header among the files: the list opens, the file keeps one row (how many
    it held is unknown) whose reading names it; the rows of the other files read as written.
    A readable file whose PSF is damaged keeps its own count of rows."""
    directory, images, psfs = tiles
    (directory / "a.fits").write_bytes(b"SIMPLE  = garbage" * 400)  # 3 rows, now unknown
    inputs = open_inputs(directory / "?.fits", psf="{dir}/{stem}_psf.fits")
    assert inputs.count == 1 + 1 + 2
    assert len(inputs.unreadable()) == 1 and "a.fits: not a readable FITS" in inputs.unreadable()[0]
    assert inputs.labels(0, 4) == ([str(directory / f"{n}.fits") for n in "abcc"], [0, 0, 0, 1])
    np.testing.assert_array_equal(inputs.rows(1, 4).images, images[3:6])
    with pytest.raises(UnreadableFile, match="a.fits: not a readable FITS"):
        inputs.rows(0, 2)
    (directory / "c_psf.fits").write_bytes(b"\0" * 2880)
    inputs = open_inputs(directory / "?.fits", psf="{dir}/{stem}_psf.fits")
    assert inputs.count == 1 + 1 + 2  # c's cutouts say 2 rows
    np.testing.assert_allclose(inputs.rows(1, 2).psf_images, psfs[3:4])
    with pytest.raises(UnreadableFile, match="c_psf.fits"):
        inputs.rows(2, 3)
    for name in "bc":
        (directory / f"{name}.fits").write_bytes(b"\0" * 2880)
    with pytest.raises(InputError, match="no file can be read; the first: .*a.fits"):
        open_inputs(directory / "?.fits")
