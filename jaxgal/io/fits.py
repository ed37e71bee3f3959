"""Reading stacks of images from FITS: a cube, one 2-d image, or a directory of files.

    stack = open_stack("cutouts.fits", "cutouts")   # checks structure, reads headers only
    images = stack.read(0, 100)                      # (100, ny, nx) float64

A cube is (count, ny, nx) in the primary HDU or the first image HDU; a 2-d image is a
stack of one; a directory is its FITS files (`*.fits`, `*.fit`, `*.fts`, `*.fits.gz`,
`*.fits.fz`) sorted by name, one 2-d image each. Every error names the file and the
problem. A file of a directory that cannot be read at all (`UnreadableFile`: damaged, no
image, no permission) keeps its place as one image whose reading raises the reason, so a
job fails only the rows that hold it; a directory of files that disagree (shapes, header
facts) is an error of the whole job.

Header facts: the pixel scale (arcsec) from a celestial WCS (astropy's
`proj_plane_pixel_scales`, square pixels required) or else a PIXSCALE keyword (arcsec); the
zero point from MAGZERO or else ZEROPNT. Position angles fitted on these pixels are
measured on the pixel grid (from +x, the columns), whatever the WCS's rotation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz")
ZERO_POINT_KEYWORDS = ("MAGZERO", "ZEROPNT")
PIXEL_SCALE_KEYWORD = "PIXSCALE"
SQUARE_TOLERANCE = 1e-3  # relative difference of the two pixel sides still called square


class InputError(ValueError):
    """An input file that cannot be used: the message names the file and the problem."""


class UnreadableFile(InputError):
    """A file that is there but cannot be read as a FITS image (damaged, cut short in its
    header, no image HDU, no permission). In a directory or a list of many files it fails
    its own rows, and the rest of the job goes on."""


@dataclass(frozen=True)
class HeaderFacts:
    """What a header says about its image: `pixel_scale` in arcsec and `zero_point` in
    magnitudes (None where the header is silent), and the `source` keyword of each."""

    pixel_scale: float | None = None
    zero_point: float | None = None
    pixel_scale_source: str | None = None
    zero_point_source: str | None = None


def header_facts(header, path) -> HeaderFacts:
    """The pixel scale (celestial WCS, else PIXSCALE) and zero point (MAGZERO, else
    ZEROPNT) of one FITS header; `path` names the file in errors."""
    pixel_scale, scale_source = _wcs_pixel_scale(header, path), "WCS"
    if pixel_scale is None and PIXEL_SCALE_KEYWORD in header:
        pixel_scale, scale_source = _positive(header, PIXEL_SCALE_KEYWORD, path), "PIXSCALE"
    if pixel_scale is None:
        scale_source = None
    zero_point, zero_point_source = None, None
    for keyword in ZERO_POINT_KEYWORDS:
        if keyword in header:
            zero_point, zero_point_source = _finite(header, keyword, path), keyword
            break
    return HeaderFacts(pixel_scale, zero_point, scale_source, zero_point_source)


def _finite(header, keyword, path) -> float:
    try:
        value = float(header[keyword])
    except (TypeError, ValueError):
        raise InputError(
            f"{path}: keyword {keyword} = {header[keyword]!r} is not a number"
        ) from None
    if not np.isfinite(value):
        raise InputError(f"{path}: keyword {keyword} = {value} is not finite")
    return value


def _positive(header, keyword, path) -> float:
    value = _finite(header, keyword, path)
    if not value > 0:
        raise InputError(f"{path}: keyword {keyword} = {value} must be > 0 (arcsec per pixel)")
    return value


def _wcs_pixel_scale(header, path) -> float | None:
    """Arcsec per pixel from a celestial WCS, or None when the header has none."""
    import astropy.units as u
    from astropy.wcs import WCS, FITSFixedWarning
    from astropy.wcs.utils import proj_plane_pixel_scales

    if "CTYPE1" not in header and "CTYPE2" not in header:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header)
    except Exception as error:  # astropy raises several types for a broken WCS
        raise InputError(f"{path}: the WCS cannot be read ({error})") from None
    if not wcs.has_celestial:
        return None
    celestial = wcs.celestial
    unit = u.Unit(str(celestial.wcs.cunit[0]) or "deg")
    sides = (proj_plane_pixel_scales(celestial) * unit).to_value(u.arcsec)
    if not np.all(np.isfinite(sides)) or not np.all(sides > 0):
        raise InputError(f"{path}: the WCS gives a pixel scale of {sides} arcsec")
    if abs(sides[0] - sides[1]) > SQUARE_TOLERANCE * max(sides):
        raise InputError(
            f"{path}: the WCS's pixels are not square ({sides[0]:.6g} x {sides[1]:.6g} "
            "arcsec); jaxgal needs square pixels"
        )
    return float(np.mean(sides))


def _is_fits_name(path: Path) -> bool:
    return path.name.lower().endswith(FITS_SUFFIXES)


def _open(path: Path, what: str):
    from astropy.io import fits

    try:
        hdus = fits.open(path, memmap=True)
    except FileNotFoundError:
        raise InputError(f"{what} {path}: no such file") from None
    except Exception as error:  # astropy raises OSError, ValueError, TypeError... for junk
        raise UnreadableFile(f"{what} {path}: not a readable FITS file ({error})") from None
    return hdus


def _image_hdu(hdus, path: Path, what: str):
    """The primary HDU if it holds an image, else the first image extension."""
    for hdu in hdus:
        if getattr(hdu, "is_image", False) and hdu.header.get("NAXIS", 0) >= 2:
            return hdu
    raise UnreadableFile(f"{what} {path}: no image in any HDU (a table or an empty file)")


def _pixels(hdu, path: Path, what: str):
    """The HDU's data; a file cut short or damaged past its header is named in the error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy's "may have been truncated": raised below
            return hdu.data
    except Exception as error:  # astropy raises OSError, ValueError, TypeError... for junk
        raise InputError(f"{what} {path}: the pixels cannot be read ({error})") from None


def _image_shape(hdu, path: Path, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(side) for side in hdu.shape)
    except Exception as error:
        raise UnreadableFile(f"{what} {path}: unreadable image header ({error})") from None


@dataclass(frozen=True)
class ImageStack:
    """A stack of `count` images of `shape` (ny, nx) in FITS: one cube or 2-d image at
    `path` (`files` None), or a directory's `files`, one image each. `facts` are the
    header facts (the same in every file of a directory); `what` names the input in errors.
    `unreadable`: (file name, reason) of a directory's files that could not be read when it
    was opened; each stays in its place (one image) and reading it raises the reason.
    """

    what: str
    path: Path
    files: tuple[Path, ...] | None
    count: int
    shape: tuple[int, int]
    facts: HeaderFacts
    unreadable: tuple[tuple[str, str], ...] = ()

    @property
    def is_directory(self) -> bool:
        return self.files is not None

    def describe(self, row: int) -> str:
        """The file (and for a cube the plane) that holds `row`, for messages."""
        if self.files is not None:
            return str(self.files[row])
        return str(self.path) if self.count == 1 else f"{self.path} (plane {row})"

    def names(self, start: int = 0, stop: int | None = None) -> list[str] | None:
        """The file names of rows start..stop of a directory (None for a cube)."""
        if self.files is None:
            return None
        return [file.name for file in self.files[start:stop]]

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows start..stop as a float64 array (rows, ny, nx), read from disk now."""
        stop = self.count if stop is None else min(stop, self.count)
        if self.files is not None:
            return np.stack([self._read_file(file) for file in self.files[start:stop]])
        with _open(self.path, self.what) as hdus:
            data = _pixels(_image_hdu(hdus, self.path, self.what), self.path, self.what)
            if data is None:
                raise InputError(f"{self.what} {self.path}: the image HDU holds no data")
            rows = data[None] if data.ndim == 2 else data[start:stop]
            return np.array(rows, dtype=np.float64)

    def _read_file(self, file: Path) -> np.ndarray:
        for name, reason in self.unreadable:
            if name == file.name:
                raise UnreadableFile(reason)
        with _open(file, self.what) as hdus:
            data = _pixels(_image_hdu(hdus, file, self.what), file, self.what)
            if data is None or data.shape != self.shape:
                raise InputError(f"{self.what} {file}: changed since it was opened")
            return np.array(data, dtype=np.float64)

    def select(self, names: list[str]) -> ImageStack:
        """A directory's files reordered (and subset) to `names`, e.g. to pair PSFs with
        cutouts by file name."""
        if self.files is None:
            raise ValueError("select works on a directory's stack only")
        by_name = {file.name: file for file in self.files}
        return replace(self, files=tuple(by_name[name] for name in names), count=len(names))


def open_stack(path, what: str) -> ImageStack:
    """Open the FITS cube, 2-d image or directory at `path` as an `ImageStack`, checking
    its structure and reading its header facts (no pixel data yet). `what` ("cutouts",
    "PSF", ...) names the input in errors."""
    path = Path(path)
    if path.is_dir():
        return _open_directory(path, what)
    if not path.exists():
        raise InputError(f"{what} {path}: no such file or directory")
    shape, facts = _read_header(path, what)
    if len(shape) == 2:
        count, image_shape = 1, shape
    elif len(shape) == 3:
        count, image_shape = shape[0], shape[1:]
    else:
        raise InputError(
            f"{what} {path}: an image of shape {shape}; expected a cube (count, ny, nx) "
            "or one 2-d image"
        )
    if count < 1 or min(image_shape) < 1:
        raise InputError(f"{what} {path}: empty image of shape {shape}")
    return ImageStack(what, path, None, count, tuple(image_shape), facts)


def _read_header(path: Path, what: str) -> tuple[tuple[int, ...], HeaderFacts]:
    """The image's shape and the header facts of the FITS file at `path`."""
    with _open(path, what) as hdus:
        hdu = _image_hdu(hdus, path, what)
        shape = _image_shape(hdu, path, what)
        facts = header_facts(hdu.header, path)
        if hdu is not hdus[0] and facts == HeaderFacts():
            facts = header_facts(hdus[0].header, path)  # keywords often sit in the primary
    return shape, facts


def _open_directory(path: Path, what: str) -> ImageStack:
    files = tuple(sorted(p for p in path.iterdir() if p.is_file() and _is_fits_name(p)))
    if not files:
        raise InputError(
            f"{what} {path}: a directory with no FITS files ({', '.join(FITS_SUFFIXES)})"
        )
    shape, facts, first, unreadable = None, None, None, []
    for file in files:
        try:
            file_shape, file_facts = _read_header(file, what)
        except UnreadableFile as error:  # one damaged file of many: its own row fails
            unreadable.append((file.name, str(error)))
            continue
        if len(file_shape) != 2:
            raise InputError(
                f"{what} {file}: an image of shape {file_shape}; each file of a directory "
                "must hold one 2-d image"
            )
        if shape is None:
            shape, facts, first = file_shape, file_facts, file
            continue
        if file_shape != shape:
            raise InputError(f"{what} {file}: shape {file_shape}, but {first} has {shape}")
        _check_same_facts(facts, file_facts, first, file, what)
    if shape is None:
        raise InputError(f"{what} {path}: no file can be read; the first: {unreadable[0][1]}")
    return ImageStack(what, path, files, len(files), shape, facts, tuple(unreadable))


def _check_same_facts(facts: HeaderFacts, other: HeaderFacts, first, file, what):
    for name in ("pixel_scale", "zero_point"):
        a, b = getattr(facts, name), getattr(other, name)
        if (a is None) != (b is None) or (a is not None and not np.isclose(a, b, rtol=1e-6)):
            raise InputError(
                f"{what} {file}: {name} {b} from its header, but {first} has {a}; the "
                "files of one directory (or list) must share pixel scale and zero point"
            )
