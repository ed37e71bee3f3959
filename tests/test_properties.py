"""Property tests: no NaN or inf in value or gradient, over 10^5 draws across the range."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxgal

DRAWS_PER_EXAMPLE = 2000
EXAMPLES = 50  # 10^5 draws for each path, with and without a PSF


def draw_parameters(key, count, pixel_scale, side):
    keys = jax.random.split(key, 7)
    uniform = lambda k, lo, hi: jax.random.uniform(k, (count,), minval=lo, maxval=hi)  # noqa: E731
    log_r_eff = uniform(keys[1], np.log(0.1 * pixel_scale), np.log(side * pixel_scale))
    # a quarter of the draws sit exactly on the range limits and on a pixel centre
    edge = jax.random.bernoulli(keys[6], 0.25, (count,))
    n = jnp.where(
        edge, jnp.where(uniform(keys[2], 0, 1) < 0.5, 0.3, 8.0), uniform(keys[2], 0.3, 8.0)
    )
    q = jnp.where(
        edge, jnp.where(uniform(keys[3], 0, 1) < 0.5, 0.05, 1.0), uniform(keys[3], 0.05, 1.0)
    )
    offset = jnp.where(
        edge[:, None], 0.0, jax.random.uniform(keys[5], (count, 2), minval=-0.5, maxval=0.5)
    )
    return jnp.stack(
        [
            uniform(keys[0], 0.0, 1e4),
            jnp.exp(log_r_eff),
            n,
            q,
            uniform(keys[4], -180.0, 360.0),
            offset[:, 0] * pixel_scale,
            offset[:, 1] * pixel_scale,
        ],
        axis=1,
    )


def make_checker(psf, side, pixel_scale):
    grid = jaxgal.PixelGrid((side, side), pixel_scale)
    weights = jnp.linspace(-1.0, 1.0, side * side).reshape(side, side)
    options = dict(oversample=2, margin=1) if psf is not None else {}

    def loss(values):
        return jnp.sum(weights * jaxgal.render(jaxgal.Sersic(*values), grid, psf, **options))

    @jax.jit
    def all_finite(batch):
        values, gradients = jax.vmap(jax.value_and_grad(loss))(batch)
        return jnp.all(jnp.isfinite(values)) & jnp.all(jnp.isfinite(gradients))

    return all_finite


CHECKERS = {}


def checker(psf_kind, side, pixel_scale):
    key = (psf_kind, side, pixel_scale)
    if key not in CHECKERS:
        psf = {"none": None, "moffat": jaxgal.Moffat(2.5 * pixel_scale, 3.0)}[psf_kind]
        CHECKERS[key] = make_checker(psf, side, pixel_scale)
    return CHECKERS[key]


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**31 - 1),
    side=st.sampled_from([5, 6]),
    pixel_scale=st.sampled_from([0.05, 0.2]),
)
def test_no_psf_is_finite_everywhere(seed, side, pixel_scale):
    batch = draw_parameters(jax.random.key(seed), DRAWS_PER_EXAMPLE, pixel_scale, side)
    assert bool(checker("none", side, pixel_scale)(batch))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**31 - 1),
    side=st.sampled_from([5, 6]),
    pixel_scale=st.sampled_from([0.05, 0.2]),
)
def test_with_psf_is_finite_everywhere(seed, side, pixel_scale):
    batch = draw_parameters(jax.random.key(seed), DRAWS_PER_EXAMPLE, pixel_scale, side)
    assert bool(checker("moffat", side, pixel_scale)(batch))
