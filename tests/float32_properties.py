"""Property tests: no NaN or inf in value or gradient, over random draws (float32).

Run by tests/test_properties.py in a fresh process with x64 off (and without the suite's
conftest, which turns x64 on): switching x64 inside one process confuses JAX's caches.

In the suite: 8 x 10^3 draws without a PSF and 3 x 10^3 with one (the PSF path costs
~2 ms a draw with its gradient), to keep the suite within its time budget;
`python experiments/property_sweep.py` runs the same checks over 10^5 draws of each.

Draws cover the whole range (n in [0.3, 8], q in [0.05, 1], r_eff from a tenth of a pixel
to the stamp, any position angle, flux from 0, centres anywhere in a pixel), and a
quarter of them sit exactly on the range's limits and on a pixel's centre or corner. Each
example is a batch of draws through `vmap(value_and_grad)` on a small stamp; the code paths
are those of any stamp.
"""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxgal

DRAWS_PER_EXAMPLE = 1000
CHUNK = 250  # draws per compiled call: keeps the memory of the PSF path's gradient low
# One odd stamp (one compilation each with and without a PSF, ~10 s each): the stamp's
# centre is a pixel centre, and the edge draws put the galaxy's centre there or on a corner.
SIDES = (5,)


def draw_parameters(key, count, pixel_scale, side):
    keys = jax.random.split(key, 9)

    def uniform(k, low, high, shape=(count,)):
        return jax.random.uniform(k, shape, minval=low, maxval=high)

    log_r_eff = uniform(keys[1], np.log(0.1 * pixel_scale), np.log(side * pixel_scale))
    edge = jax.random.bernoulli(keys[6], 0.25, (count,))
    limit = jax.random.bernoulli(keys[7], 0.5, (count,))
    n = jnp.where(edge, jnp.where(limit, 8.0, 0.3), uniform(keys[2], 0.3, 8.0))
    q = jnp.where(edge, jnp.where(limit, 0.05, 1.0), uniform(keys[3], 0.05, 1.0))
    # a pixel's corner or its centre, drawn apart from `limit` (whose draws have flux 0)
    corner = jnp.where(jax.random.bernoulli(keys[8], 0.5, (count,)), 0.5, 0.0)[:, None]
    offset = jnp.where(edge[:, None], corner, uniform(keys[5], -0.5, 0.5, (count, 2)))
    flux = jnp.where(edge & limit, 0.0, uniform(keys[0], 0.0, 1e4))
    pa = uniform(keys[4], -180.0, 360.0)
    return jnp.stack(
        [
            flux,
            jnp.exp(log_r_eff),
            n,
            q,
            pa,
            offset[:, 0] * pixel_scale,
            offset[:, 1] * pixel_scale,
        ],
        axis=1,
    )


def _checker(with_psf, side):
    weights = jnp.linspace(-1.0, 1.0, side * side).reshape(side, side)

    def loss(values, pixel_scale):
        grid = jaxgal.PixelGrid((side, side), pixel_scale)
        if not with_psf:
            return jnp.sum(weights * jaxgal.render(jaxgal.Sersic(*values), grid))
        psf = jaxgal.Moffat(2.5 * pixel_scale, 3.0)
        image = jaxgal.render(jaxgal.Sersic(*values), grid, psf, oversample=2, margin=1)
        return jnp.sum(weights * image)

    @jax.jit
    def all_finite(batch, pixel_scale):
        values, gradients = jax.vmap(jax.value_and_grad(loss), in_axes=(0, None))(
            batch, pixel_scale
        )
        return jnp.all(jnp.isfinite(values)) & jnp.all(jnp.isfinite(gradients))

    return all_finite


CHECKERS = {(psf, side): _checker(psf, side) for psf in (False, True) for side in SIDES}


def _check(with_psf, seed, side, pixel_scale):
    # float32, the default precision, and the one where overflow and underflow would show
    assert not jax.config.jax_enable_x64
    batch = draw_parameters(jax.random.key(seed), DRAWS_PER_EXAMPLE, pixel_scale, side)
    scale = jnp.float32(pixel_scale)
    assert batch.dtype == jnp.float32
    check = CHECKERS[(with_psf, side)]
    for start in range(0, DRAWS_PER_EXAMPLE, CHUNK):
        chunk = batch[start : start + CHUNK]
        assert bool(check(chunk, scale)), (seed, side, pixel_scale, start)


examples = dict(
    seed=st.integers(0, 2**31 - 1),
    side=st.sampled_from(SIDES),
    pixel_scale=st.sampled_from([0.05, 0.074, 0.1, 0.2]),
)


@settings(max_examples=8, deadline=None, derandomize=True)  # 8 x 10^3 draws
@given(**examples)
def test_no_psf_is_finite_everywhere(seed, side, pixel_scale):
    _check(False, seed, side, pixel_scale)


@settings(max_examples=3, deadline=None, derandomize=True)  # 3 x 10^3 draws
@given(**examples)
def test_with_psf_is_finite_everywhere(seed, side, pixel_scale):
    _check(True, seed, side, pixel_scale)
