"""The FITS inputs of a fit, opened and checked against each other, read in row ranges.

    inputs = open_fit_inputs("cutouts.fits", psf="psfs.fits", noise="sigma.fits")
    rows = inputs.rows(0, 100)  # FitRows: images, psf_images, noise, weight, mask

Cutouts are in counts, sky-subtracted. PSFs: one per cutout, or one (a 2-d image or a cube
of one) for all, odd sides. Noise (sigma per pixel, > 0), weight (1 / sigma^2, >= 0; 0
leaves a pixel out) and mask (GALFIT's convention: nonzero marks a bad pixel) maps: one per
cutout or one for all, each of the cutouts' shape. With directories, the files of a PSF,
noise, weight or mask directory are paired with the cutouts by file name when every
cutout's name is there (a missing one is an error), else, when no name is shared, in
sorted order if the counts agree. Structure is checked when the inputs are opened; pixel
values (noise <= 0, negative weights, empty PSFs) when rows are read, and every error
names the file and the problem. NaN or inf cutout pixels
are passed on, for `jaxgal.fit` to leave out and count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxgal.io.fits import ImageStack, InputError, open_stack


class FitRows(NamedTuple):
    """Rows start..stop of every input, as `jaxgal.fit` takes them: `images` (rows, ny,
    nx); `psf_images` (rows, k, k) or None; `noise`, `weight` (rows, ny, nx) or None;
    `mask` (rows, ny, nx) True where a pixel counts, or None; `files`: the cutouts' file
    names (a directory) or None; `planes`: each row's plane in its file (a list of cubes,
    `jaxgal.io.input_list`) or None."""

    images: np.ndarray
    psf_images: np.ndarray | None
    noise: np.ndarray | None
    weight: np.ndarray | None
    mask: np.ndarray | None
    files: list[str] | None
    planes: list[int] | None = None


@dataclass(frozen=True)
class FitInputs:
    """The opened inputs: `cutouts` and, aligned with them (`count` rows, or one for all),
    `psf`, `noise`, `weight` and `mask` stacks, any of which may be None."""

    cutouts: ImageStack
    psf: ImageStack | None = None
    noise: ImageStack | None = None
    weight: ImageStack | None = None
    mask: ImageStack | None = None

    @property
    def count(self) -> int:
        return self.cutouts.count

    def stacks(self) -> dict[str, ImageStack]:
        """The inputs that are given, by role."""
        roles = ("cutouts", "psf", "noise", "weight", "mask")
        return {role: getattr(self, role) for role in roles if getattr(self, role) is not None}

    def unreadable(self) -> list[str]:
        """Why each file of a directory that could not be read fails its row."""
        return [reason for stack in self.stacks().values() for _, reason in stack.unreadable]

    def rows(self, start: int, stop: int) -> FitRows:
        """Read rows start..stop of every input (broadcasting one-for-all maps) and check
        their values."""
        stop = min(stop, self.count)
        images = self.cutouts.read(start, stop)
        count = images.shape[0]
        psf_images = noise = weight = mask = None
        if self.psf is not None:
            psf_images = _rows(self.psf, start, stop, count)
            _check_psfs(psf_images, self.psf, start)
        if self.noise is not None:
            noise = _rows(self.noise, start, stop, count)
            _check_values(noise, self.noise, start, lambda v: v <= 0, "zero or negative", "> 0")
        if self.weight is not None:
            weight = _rows(self.weight, start, stop, count)
            _check_values(weight, self.weight, start, lambda v: v < 0, "negative", ">= 0")
        if self.mask is not None:
            mask = _rows(self.mask, start, stop, count) == 0
        return FitRows(images, psf_images, noise, weight, mask, self.cutouts.names(start, stop))


def _rows(stack: ImageStack, start: int, stop: int, count: int) -> np.ndarray:
    if stack.count == 1:
        return np.repeat(stack.read(0, 1), count, axis=0)
    return stack.read(start, stop)


def _check_psfs(psf_images: np.ndarray, stack: ImageStack, start: int):
    finite = np.where(np.isfinite(psf_images), psf_images, 0.0)
    sums = finite.sum(axis=(1, 2))
    for row in np.flatnonzero(~(sums > 0)):
        source = stack.describe(0 if stack.count == 1 else start + row)
        raise InputError(f"{stack.what} {source}: the PSF's pixels sum to {sums[row]}, not > 0")


def _check_values(values: np.ndarray, stack: ImageStack, start: int, bad, problem, allowed):
    """Raise, naming the file, if `bad(values)` holds for any finite pixel (NaN and inf
    are left to the fit, which leaves such pixels out and counts them)."""
    with np.errstate(invalid="ignore"):
        wrong = bad(values) & np.isfinite(values)
    for row in np.flatnonzero(wrong.any(axis=(1, 2))):
        source = stack.describe(0 if stack.count == 1 else start + row)
        raise InputError(
            f"{stack.what} {source}: {int(wrong[row].sum())} pixels are {problem} "
            f"(smallest {np.nanmin(values[row]):.6g}); a {stack.what} map must be {allowed}"
        )


def open_fit_inputs(cutouts, *, psf=None, noise=None, weight=None, mask=None) -> FitInputs:
    """Open the cutouts and the optional PSF, noise (sigma), weight and mask inputs (paths
    to FITS cubes, 2-d images or directories) and check that they fit together."""
    if noise is not None and weight is not None:
        raise InputError("give a noise (sigma) map or a weight map, not both")
    images = open_stack(cutouts, "cutouts")
    opened = {}
    for role, path, what in (
        ("psf", psf, "PSF"),
        ("noise", noise, "noise"),
        ("weight", weight, "weight"),
        ("mask", mask, "mask"),
    ):
        if path is None:
            continue
        stack = _pair(open_stack(path, what), images)
        if role == "psf":
            if stack.shape[0] % 2 == 0 or stack.shape[1] % 2 == 0:
                raise InputError(
                    f"PSF {stack.path}: stamps of {stack.shape[0]} x {stack.shape[1]} pixels; "
                    "a PSF stamp needs odd sides (a centre pixel)"
                )
        elif stack.shape != images.shape:
            raise InputError(
                f"{what} {stack.path}: images of {stack.shape[0]} x {stack.shape[1]} pixels, "
                f"but the cutouts ({images.path}) are {images.shape[0]} x {images.shape[1]}"
            )
        opened[role] = stack
    return FitInputs(images, **opened)


def _pair(stack: ImageStack, cutouts: ImageStack) -> ImageStack:
    """`stack` aligned row by row with `cutouts`, or a single image for all of them."""
    if stack.count == 1:
        return stack
    if cutouts.is_directory and stack.is_directory:
        names = set(stack.names())
        wanted = cutouts.names()
        missing = [name for name in wanted if name not in names]
        if not missing:
            return stack.select(wanted)
        if len(missing) < len(wanted):  # named alike, so paired by name: one is missing
            raise InputError(
                f"{stack.what} {stack.path}: no file {missing[0]} for the cutout "
                f"{Path(cutouts.path) / missing[0]}"
                + (f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else "")
            )
    if stack.count != cutouts.count:
        raise InputError(
            f"{stack.what} {stack.path}: {stack.count} images for {cutouts.count} cutouts "
            f"in {cutouts.path}; give one per cutout, or one for all"
        )
    return stack
