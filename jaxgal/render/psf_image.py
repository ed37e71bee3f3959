"""`draw_psf`: the effective (pixel-integrated) PSF as a small odd-sized image.

This is the PSF stamp that survey pipelines hand out with a cutout (and that GaLNet-2
reads next to its galaxy): the PSF convolved with the pixel, sampled at pixel centres,
centred on the middle pixel, GalSim's `psf.drawImage(nx=size, ny=size, scale=pixel_scale)`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxgal.light.psf import Gaussian, Moffat, PixelPSF

# Gauss-Legendre nodes per pixel side: the analytic PSFs at least 2 pixels wide are
# smooth on the pixel scale, so 6 x 6 nodes integrate a pixel to < 1e-7 of the peak
# (measured against GalSim in tests/test_psf_image.py).
PIXEL_NODES = 6
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(PIXEL_NODES)


def draw_psf(
    psf: Gaussian | Moffat | PixelPSF, size: int, pixel_scale, *, normalise: bool = True
) -> Float[Array, "size size"]:
    """The effective PSF on a `size` x `size` stamp (odd `size`) of pixels `pixel_scale` arcsec.

    Each pixel holds the PSF's light falling on it (Gauss-Legendre over the pixel). With
    `normalise` (default) the stamp is divided by its sum, so it sums to 1 as a kernel
    does; otherwise it holds the fraction of the light inside the stamp. A `PixelPSF`
    (already at the image's pixel scale) is cropped or zero-padded to `size`.
    One PSF at a time: `jax.vmap` for a batch.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"draw_psf needs an odd stamp size, got {size}")
    if isinstance(psf, PixelPSF):
        stamp = fit_stamp(psf.kernel, size)
    else:
        centres = (jnp.arange(size) - (size - 1) / 2) * pixel_scale
        offsets = 0.5 * pixel_scale * jnp.asarray(_NODES, dtype=centres.dtype)
        x = (centres[:, None] + offsets[None, :]).reshape(-1)
        values = psf.profile(x[None, :], x[:, None]).reshape(size, PIXEL_NODES, size, PIXEL_NODES)
        weights = jnp.asarray(_WEIGHTS, dtype=centres.dtype) * 0.5 * pixel_scale
        stamp = jnp.einsum("aibj,i,j->ab", values, weights, weights)
    if normalise:
        stamp = stamp / jnp.sum(stamp)
    return stamp


def fit_stamp(stamp: Float[Array, "... ny nx"], size: int) -> Float[Array, "... size size"]:
    """Crop (symmetrically) or zero-pad an odd-sided stamp to `size` x `size`, centres kept."""
    ny, nx = stamp.shape[-2:]
    if ny % 2 == 0 or nx % 2 == 0 or size % 2 == 0:
        raise ValueError(
            f"PSF stamps must have odd sides to have a centre pixel, got {ny} x {nx} -> {size}"
        )
    for axis, length in ((-2, ny), (-1, nx)):
        if length > size:
            cut = (length - size) // 2
            stamp = jnp.take(stamp, jnp.arange(cut, cut + size), axis=axis)
        elif length < size:
            pad = (size - length) // 2
            widths = [(0, 0)] * stamp.ndim
            widths[axis] = (pad, pad)
            stamp = jnp.pad(stamp, widths)
    return stamp


def stack_psf_stamps(psf_images, count: int, dtype=np.float64) -> np.ndarray:
    """(count, k, k) PSF stamps from one (k, k) stamp for all or one per image; k odd."""
    stamps = np.asarray(psf_images, dtype=dtype)
    if stamps.ndim == 2:
        stamps = np.broadcast_to(stamps, (count, *stamps.shape))
    if stamps.ndim != 3 or stamps.shape[0] != count:
        raise ValueError(
            f"psf_images must be (k, k) or ({count}, k, k) for {count} images, got {stamps.shape}"
        )
    if stamps.shape[1] % 2 == 0 or stamps.shape[2] % 2 == 0:
        raise ValueError(f"PSF stamps must have odd sides (a centre pixel), got {stamps.shape[1:]}")
    return stamps


def normalise_psf_stamps(stamps: np.ndarray) -> np.ndarray:
    """Stamps with negative pixels (noise in empirical PSFs) cut to 0, each summing to 1;
    a stamp with no positive light is an error naming it."""
    stamps = np.clip(stamps, 0.0, None)
    sums = stamps.sum(axis=(-2, -1), keepdims=True)
    if np.any(sums <= 0):
        bad = np.flatnonzero(sums.ravel() <= 0).tolist()
        raise ValueError(f"PSF stamps {bad[:10]} hold no positive light")
    return stamps / sums
