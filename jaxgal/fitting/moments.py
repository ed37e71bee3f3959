"""A default starting point from an image's moments, when no CNN or user gives one.

Flux: the sum of the image. Centre: the first moments of the pixels more than twice the
background's robust sigma above zero. Shape: the second moments of the same pixels give the
axis ratio q = b / a, the position angle and, as if the galaxy were a Gaussian, a
half-light radius 1.1774 sqrt(a b) (clipped to at least half a pixel). n starts at 2, in
the middle of the usual range. Rough on purpose: refinement does the rest.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgal.grid import PixelGrid
from jaxgal.light.sersic import Sersic

GAUSSIAN_HALF_LIGHT = 1.1774100225154747  # sqrt(2 ln 2)


def _one(image, grid: PixelGrid):
    x = grid.x_centres()[None, :]
    y = grid.y_centres()[:, None]
    finite = jnp.isfinite(image)
    clean = jnp.where(finite, image, 0.0)
    # only pixels above twice the background's robust sigma (the MAD), so that sky noise
    # does not spread the moments over the whole stamp
    median = jnp.median(clean)
    background = 1.4826 * jnp.median(jnp.abs(clean - median))
    positive = jnp.where(finite & (clean > 2.0 * background), jnp.maximum(clean, 0.0), 0.0)
    total = jnp.maximum(jnp.sum(positive), 1e-30)
    x0 = jnp.sum(positive * x) / total
    y0 = jnp.sum(positive * y) / total
    dx, dy = x - x0, y - y0
    xx = jnp.sum(positive * dx * dx) / total
    yy = jnp.sum(positive * dy * dy) / total
    xy = jnp.sum(positive * dx * dy) / total
    trace, difference = xx + yy, xx - yy
    root = jnp.sqrt(difference * difference + 4.0 * xy * xy)
    major2 = jnp.maximum(0.5 * (trace + root), 1e-12)
    minor2 = jnp.maximum(0.5 * (trace - root), 1e-12)
    q = jnp.clip(jnp.sqrt(minor2 / major2), 0.2, 1.0)
    pa = jnp.mod(0.5 * jnp.rad2deg(jnp.arctan2(2.0 * xy, difference)), 180.0)
    r_eff = jnp.maximum(GAUSSIAN_HALF_LIGHT * (major2 * minor2) ** 0.25, 0.5 * grid.pixel_scale)
    flux = jnp.maximum(jnp.sum(clean), 1e-3 * total)
    half = 2.0 * grid.pixel_scale  # keep the centre near the stamp's
    return Sersic(flux, r_eff, 2.0, q, pa, jnp.clip(x0, -half, half), jnp.clip(y0, -half, half))


def moments_start(images, pixel_scale) -> Sersic:
    """A batched `Sersic` guess for images (batch, ny, nx) of pixels `pixel_scale` arcsec."""
    images = jnp.asarray(images)
    grid = PixelGrid(images.shape[1:], pixel_scale)
    return jax.vmap(lambda image: _one(image, grid))(images)
