# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # A tour of jaxgal's renderer
#
# Render a Sersic galaxy with and without a PSF, check its flux, take a gradient, and
# draw a batch with `vmap`. Small enough to run in the test suite.

import jax
import jax.numpy as jnp

import jaxgal

grid = jaxgal.PixelGrid((33, 33), 0.2)  # KiDS-like pixels, arcsec
galaxy = jaxgal.Sersic(flux=1000.0, r_eff=0.6, n=2.5, q=0.6, pa=30.0, x0=0.05, y0=-0.02)

# Exact pixel integrals without a PSF; with a Moffat PSF, the convolved image.
sharp = jaxgal.render(galaxy, grid)
seen = jaxgal.render(galaxy, grid, jaxgal.Moffat(fwhm=0.7, beta=3.5))
print(f"flux in the stamp: {float(sharp.sum()):.2f} (no PSF), {float(seen.sum()):.2f} (Moffat)")

# Magnitudes with a zero point
print("magnitude:", float(jaxgal.flux_to_magnitude(galaxy.flux, zero_point=30.0)))


# Gradients with respect to every parameter
def loss(r_eff):
    model = jaxgal.Sersic(1000.0, r_eff, 2.5, 0.6, 30.0, 0.05, -0.02)
    return jnp.sum((jaxgal.render(model, grid, jaxgal.Moffat(0.7, 3.5)) - seen) ** 2)


print("d loss / d r_eff at r_eff = 0.7:", float(jax.grad(loss)(0.7)))

# A batch: one Sersic whose leaves have a leading axis, each galaxy with its own PSF
batch = jaxgal.Sersic(
    flux=jnp.full(4, 1000.0),
    r_eff=jnp.array([0.2, 0.4, 0.8, 1.6]),
    n=jnp.array([0.5, 1.0, 4.0, 8.0]),
    q=0.7,
    pa=45.0,
)
psfs = jaxgal.Moffat(fwhm=jnp.array([0.6, 0.7, 0.8, 0.9]), beta=3.5)
images = jax.jit(jax.vmap(lambda g, p: jaxgal.render(g, grid, p)))(batch, psfs)
print("batch of images:", images.shape)
