"""The pixel grid of an image, per `CONVENTIONS.md`."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxgal._validate import check_range, is_traced


class PixelGrid(eqx.Module):
    """An image of `shape = (ny, nx)` pixels of side `pixel_scale` arcsec.

    Pixel (i, j) has its centre at x_j = (j - (nx - 1) / 2) * pixel_scale,
    y_i = (i - (ny - 1) / 2) * pixel_scale: the image centre lies between pixels when a side
    is even (GalSim's `true_center`). The shape is static; the pixel scale may be traced.
    """

    shape: tuple[int, int] = eqx.field(static=True)
    pixel_scale: Float[Array, ""]

    def __init__(self, shape, pixel_scale):
        shape = tuple(int(side) for side in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"PixelGrid shape must be (ny, nx) with positive sides, got {shape}")
        self.shape = shape
        self.pixel_scale = jnp.asarray(pixel_scale, dtype=jnp.result_type(float))
        if not is_traced(self.pixel_scale):
            check_range(self.pixel_scale, "PixelGrid pixel_scale", low=0.0, low_inclusive=False)

    def checked(self) -> PixelGrid:
        scale = check_range(self.pixel_scale, "PixelGrid pixel_scale", low=0.0, low_inclusive=False)
        return PixelGrid(self.shape, scale)

    def x_centres(self) -> Float[Array, " nx"]:
        nx = self.shape[1]
        return (jnp.arange(nx, dtype=self.pixel_scale.dtype) - (nx - 1) / 2) * self.pixel_scale

    def y_centres(self) -> Float[Array, " ny"]:
        ny = self.shape[0]
        return (jnp.arange(ny, dtype=self.pixel_scale.dtype) - (ny - 1) / 2) * self.pixel_scale

    def x_edges(self) -> Float[Array, " nx+1"]:
        nx = self.shape[1]
        return (jnp.arange(nx + 1, dtype=self.pixel_scale.dtype) - nx / 2) * self.pixel_scale

    def y_edges(self) -> Float[Array, " ny+1"]:
        ny = self.shape[0]
        return (jnp.arange(ny + 1, dtype=self.pixel_scale.dtype) - ny / 2) * self.pixel_scale

    def coordinates(self) -> tuple[Float[Array, "ny nx"], Float[Array, "ny nx"]]:
        """(x, y) of every pixel centre, each of shape (ny, nx)."""
        return jnp.meshgrid(self.x_centres(), self.y_centres())
