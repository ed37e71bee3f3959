"""Noise for simulated cutouts: Gaussian sky, the source's Poisson noise, and banks of
real empty-sky cutouts and PSF images read from FITS files (as GaLNet did with KiDS DR4).

The source's Poisson noise is drawn in its Gaussian limit, variance counts / gain (counts
in image units, gain in electrons per count): with the presets' gains a count holds
tens to thousands of electrons, where the Gaussian and Poisson distributions agree to the
skewness 1 / sqrt(electrons) of a pixel, and the sky noise dominates wherever a pixel holds
only a few electrons of source light.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxgal.light.psf import PixelPSF
from jaxgal.render.psf_image import fit_stamp, normalise_psf_stamps


def noise_variance(image, sky_sigma, gain):
    """Per-pixel variance (counts^2): sky_sigma^2 plus the source's Poisson term."""
    return sky_sigma * sky_sigma + jnp.maximum(image, 0.0) / gain


def add_noise(key, image: Float[Array, "ny nx"], sky_sigma, gain, sky=None):
    """`image` (noiseless, counts) with the source's Poisson noise and the sky's noise.

    The sky noise is Gaussian of `sky_sigma` per pixel, or, if `sky` is given (an empty-sky
    cutout of the image's shape, e.g. from a `NoiseBank`), that cutout added as it is.
    """
    if sky is None:
        sigma = jnp.sqrt(noise_variance(image, sky_sigma, gain))
        return image + sigma * jax.random.normal(key, image.shape, image.dtype)
    poisson = jnp.sqrt(jnp.maximum(image, 0.0) / gain)
    return image + poisson * jax.random.normal(key, image.shape, image.dtype) + sky


def optimal_snr(image, variance):
    """The matched-filter S/N of a noiseless image: sqrt(sum image^2 / variance), as
    GalSim's `addNoiseSNR` defines it."""
    return jnp.sqrt(jnp.sum(image * image / variance, axis=(-2, -1)))


def _read_fits_stack(paths: str | Path | Sequence[str | Path], what: str) -> np.ndarray:
    """The 2-d images of every HDU of every file, stacked; a 3-d HDU holds a stack."""
    from astropy.io import fits  # astropy only where FITS files are read

    if isinstance(paths, str | Path):
        paths = [paths]
    images = []
    for path in paths:
        with fits.open(path) as hdus:
            for hdu in hdus:
                if hdu.data is None:
                    continue
                data = np.asarray(hdu.data, dtype=np.float64)
                if data.ndim == 2:
                    images.append(data)
                elif data.ndim == 3:
                    images.extend(data)
                else:
                    raise ValueError(f"{what} FITS {path}: HDU with {data.ndim} dimensions")
    if not images:
        raise ValueError(f"{what}: no images found in {list(map(str, paths))}")
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise ValueError(f"{what}: images must share one shape, got {sorted(shapes)}")
    stack = np.stack(images)
    if not np.all(np.isfinite(stack)):
        raise ValueError(f"{what}: images hold NaN or infinite values")
    return stack


class NoiseBank(eqx.Module):
    """Empty-sky cutouts (image counts at the preset's zero point), drawn at random with a
    random rotation by a multiple of 90 degrees and a random flip, so one cutout serves
    eight times."""

    cutouts: Float[Array, "count ny nx"]

    def __init__(self, cutouts):
        cutouts = jnp.asarray(cutouts)
        if cutouts.ndim != 3 or cutouts.shape[1] != cutouts.shape[2]:
            raise ValueError(f"NoiseBank needs square cutouts (count, n, n), got {cutouts.shape}")
        self.cutouts = cutouts

    @classmethod
    def from_fits(cls, paths, scale: float = 1.0) -> NoiseBank:
        """Read cutouts from FITS files (2-d HDUs, or 3-d stacks), times `scale` (to take
        them to the preset's zero point: 10^(0.4 (preset ZP - file ZP)))."""
        return cls(scale * _read_fits_stack(paths, "NoiseBank"))

    def draw(self, key, shape: tuple[int, int]) -> Float[Array, "ny nx"]:
        if self.cutouts.shape[1:] != tuple(shape):
            raise ValueError(
                f"NoiseBank cutouts are {self.cutouts.shape[1:]}, the images {tuple(shape)}"
            )
        pick, turn, flip = jax.random.split(key, 3)
        cutout = self.cutouts[jax.random.randint(pick, (), 0, self.cutouts.shape[0])]
        turns = jax.random.randint(turn, (), 0, 4)
        cutout = jax.lax.switch(turns, [lambda c, t=t: jnp.rot90(c, t) for t in range(4)], cutout)
        return jnp.where(jax.random.bernoulli(flip), cutout[:, ::-1], cutout)


class PSFBank(eqx.Module):
    """Effective PSF images at the image's pixel scale (odd sides, each normalised to sum
    1), drawn at random as `PixelPSF`s."""

    kernels: Float[Array, "count ky kx"]

    def __init__(self, kernels):
        kernels = np.asarray(kernels)
        if kernels.ndim != 3 or kernels.shape[1] % 2 == 0 or kernels.shape[2] % 2 == 0:
            raise ValueError(
                f"PSFBank needs odd-sided kernels (count, ny, nx), got {kernels.shape}"
            )
        self.kernels = jnp.asarray(normalise_psf_stamps(kernels))

    @classmethod
    def from_fits(cls, paths) -> PSFBank:
        """Read PSF images from FITS files (2-d HDUs, or 3-d stacks); negative pixels (noise in
        empirical PSFs) are clipped to 0 and each image is normalised to sum 1."""
        return cls(_read_fits_stack(paths, "PSFBank"))

    def draw(self, key, size: int) -> tuple[PixelPSF, Float[Array, "size size"]]:
        """A random PSF: the `PixelPSF` to render with, and its stamp cropped or padded to
        `size` (renormalised to sum 1) for the network."""
        kernel = self.kernels[jax.random.randint(key, (), 0, self.kernels.shape[0])]
        stamp = fit_stamp(kernel, size)
        return PixelPSF(kernel), stamp / jnp.sum(stamp)
