"""Gradients against central finite differences (float64), and finiteness at the edges."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgal

BOUNDS = {2: (0.3, 8.0), 3: (0.0, 1.0)}  # n, q: finite differences stay inside the range
PSFS = {"none": None, "gaussian": jaxgal.Gaussian(0.5), "moffat": jaxgal.Moffat(0.7, 3.5)}

# (parameters, stamp, finite-difference step for the centre without a PSF; 1e-6 otherwise,
# tolerance for those)
POINTS = [
    # n = 8, q = 0.05, r_eff = 0.1 pixel, centred on a pixel centre (odd stamp)
    ([1.0, 0.02, 8.0, 0.05, 30.0, 0.0, 0.0], (31, 31), 1e-6, 1e-5),
    # the same on a pixel corner (half a pixel off): without a PSF the image's derivative in
    # the centre changes on the scale of the n = 8 cusp (~1e-9 arcsec), so the step is 1e-10
    # arcsec, where rounding already limits central differences to a few 1e-5
    ([1.0, 0.02, 8.0, 0.05, 30.0, 0.1, -0.1], (31, 31), 1e-9, 5e-5),
    ([2.0, 1.3, 0.3, 0.97, 10.0, 0.05, -0.03], (31, 31), 1e-6, 1e-5),
    ([2.0, 0.4, 2.5, 0.6, 100.0, 0.1, 0.2], (31, 31), 1e-6, 1e-5),
]
# One stamp for every point: the losses compile once per PSF (a program of pixel integrals
# takes ~20 s to compile); odd and even stamps run the same code.


LOSSES = {}
# the losses are compiled once per PSF and stamp (20 s each) and cached here: the tests run in
# one test worker so each is compiled once
pytestmark = pytest.mark.xdist_group("gradients")


def _loss(psf_name, shape):
    """loss(v) and its gradient, compiled once for each PSF and stamp."""
    if (psf_name, shape) not in LOSSES:
        grid = jaxgal.PixelGrid(shape, 0.2)
        weights = jnp.asarray(np.random.default_rng(7).normal(size=shape))
        psf = PSFS[psf_name]
        loss = jax.jit(lambda v: jnp.sum(weights * jaxgal.render(jaxgal.Sersic(*v), grid, psf)))
        LOSSES[(psf_name, shape)] = (loss, jax.jit(jax.grad(loss)))
    return LOSSES[(psf_name, shape)]


def _finite_difference(loss, values, index, step):
    low, high = BOUNDS.get(index, (-np.inf, np.inf))
    e = np.zeros(7)
    e[index] = step
    if values[index] + step > high:
        return (3 * loss(values) - 4 * loss(values - e) + loss(values - 2 * e)) / (2 * step)
    if values[index] - step < low:
        return (-3 * loss(values) + 4 * loss(values + e) - loss(values + 2 * e)) / (2 * step)
    return (loss(values + e) - loss(values - e)) / (2 * step)


@pytest.mark.parametrize("psf_name", list(PSFS))
@pytest.mark.parametrize("point", range(len(POINTS)))
def test_gradient_matches_finite_differences(psf_name, point):
    params, shape, relative_step, centre_tolerance = POINTS[point]
    loss, grad = _loss(psf_name, shape)
    values = jnp.asarray(params)
    gradient = np.asarray(grad(values))
    assert np.all(np.isfinite(gradient))
    scale = float(np.max(np.abs(gradient)))
    for index in range(7):
        at_centre = index >= 5 and psf_name == "none"
        relative = relative_step if at_centre else 1e-6
        tolerance = centre_tolerance if at_centre else 1e-5
        step = relative * max(abs(params[index]), 0.1)
        expected = float(_finite_difference(loss, values, index, step))
        # relative to the derivative, or to the largest one where this one vanishes
        assert abs(gradient[index] - expected) <= tolerance * max(abs(expected), 1e-3 * scale), (
            index
        )


@pytest.mark.parametrize("psf_name", list(PSFS))
def test_gradient_finite_at_range_limits(psf_name):
    _, grad = _loss(psf_name, (31, 31))
    for params in (
        [1.0, 0.02, 8.0, 0.05, 0.0, 0.0, 0.0],
        [1.0, 0.02, 0.3, 1.0, 0.0, 0.1, 0.0],
        [0.0, 3.2, 8.0, 1.0, 45.0, 0.0, 0.1],
        [1.0, 0.02, 8.0, 1.0, 90.0, 0.1, 0.1],
    ):
        gradient = grad(jnp.asarray(params))
        assert bool(jnp.all(jnp.isfinite(gradient))), params


def test_gradient_of_a_batch_through_vmap():
    grid = jaxgal.PixelGrid((16, 16), 0.2)
    psf = jaxgal.Moffat(jnp.array([0.6, 0.9]), jnp.array([3.0, 4.0]))

    @jax.jit
    def total(r_eff):
        batch = jaxgal.Sersic(jnp.ones(2), r_eff, jnp.array([1.0, 4.0]), 0.7, 0.0)
        images = jax.vmap(lambda g, p: jaxgal.render(g, grid, p))(batch, psf)
        return jnp.sum(images * jnp.arange(256.0).reshape(16, 16))

    r_eff = jnp.array([0.3, 0.5])
    gradient = jax.jit(jax.grad(total))(r_eff)
    step = 1e-6
    for i in range(2):
        e = jnp.zeros(2).at[i].set(step)
        expected = (total(r_eff + e) - total(r_eff - e)) / (2 * step)
        assert float(gradient[i]) == pytest.approx(float(expected), rel=1e-6)


def test_gradient_through_the_psf_and_pixel_scale_matches_finite_differences():
    # the core's spectrum has hand-written derivatives in the profile's parameters; those in
    # the PSF and the pixel scale go through autodiff of the same alias sum
    def loss(v):
        grid = jaxgal.PixelGrid((16, 16), v[2])
        image = jaxgal.render(
            jaxgal.Sersic(1.0, 0.3, 2.0, 0.5, 20.0), grid, jaxgal.Moffat(v[0], v[1])
        )
        return jnp.sum(image * jnp.arange(256.0).reshape(16, 16))

    loss = jax.jit(loss)
    values = jnp.asarray([0.7, 3.5, 0.2])
    gradient = np.asarray(jax.jit(jax.grad(loss))(values))
    for index in range(3):
        step = 1e-6 * float(values[index])
        e = jnp.zeros(3).at[index].set(step)
        expected = float(loss(values + e) - loss(values - e)) / (2 * step)
        assert gradient[index] == pytest.approx(expected, rel=1e-6), index
