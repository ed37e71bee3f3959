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
