"""Out-of-range input raises an error naming the parameter, eagerly and inside jit."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgal

GOOD = dict(flux=1.0, r_eff=0.5, n=2.0, q=0.5, pa=10.0, x0=0.0, y0=0.0)
pytestmark = pytest.mark.xdist_group("bad_input")  # the cases share their compilations
BAD = [
    ("q", 0.0),
    ("q", -0.2),
    ("q", 1.01),
    ("r_eff", 0.0),
    ("r_eff", -1.0),
    ("n", 0.29),
    ("n", 8.01),
    ("flux", -1.0),
    ("x0", np.nan),
    ("pa", np.inf),
]


@pytest.mark.parametrize("name, value", BAD)
def test_sersic_rejects_at_construction(name, value):
    with pytest.raises(ValueError, match=f"Sersic {name}"):
        jaxgal.Sersic(**{**GOOD, name: value})


PSFS = {"none": None, "gaussian": jaxgal.Gaussian(0.5)}
_DRAWS = {}


def _draw(psf_name):
    """One jitted render a PSF, every parameter traced: each case reuses its compilation."""
    if psf_name not in _DRAWS:
        grid, psf = jaxgal.PixelGrid((8, 8), 0.2), PSFS[psf_name]
        _DRAWS[psf_name] = jax.jit(
            lambda values: jaxgal.render(jaxgal.Sersic(**dict(zip(GOOD, values))), grid, psf)
        )
    return _DRAWS[psf_name]


@pytest.mark.parametrize("name, value", BAD)
@pytest.mark.parametrize("psf_name", list(PSFS))
def test_sersic_rejects_inside_jit(name, value, psf_name):
    draw = _draw(psf_name)
    bad = jnp.asarray([value if key == name else good for key, good in GOOD.items()], float)
    with pytest.raises(Exception, match=f"Sersic {name}"):
        jax.block_until_ready(draw(bad))
    assert bool(jnp.all(jnp.isfinite(draw(jnp.asarray(list(GOOD.values()), float)))))


def test_one_bad_galaxy_in_a_vmapped_batch_raises():
    grid = jaxgal.PixelGrid((8, 8), 0.2)
    draw = jax.jit(jax.vmap(lambda q: jaxgal.render(jaxgal.Sersic(1.0, 0.3, 1.0, q, 0.0), grid)))
    with pytest.raises(Exception, match="Sersic q"):
        jax.block_until_ready(draw(jnp.array([0.5, 1.5, 0.7])))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: jaxgal.Gaussian(0.0), "Gaussian fwhm"),
        (lambda: jaxgal.Moffat(0.7, 1.0), "Moffat beta"),
        (lambda: jaxgal.Moffat(-0.7, 3.0), "Moffat fwhm"),
        (lambda: jaxgal.PixelPSF(np.full((4, 5), 0.05)), "odd sides"),
        (lambda: jaxgal.PixelPSF(jnp.full((5, 5), 0.04).at[0, 0].set(-0.01)), "kernel values"),
        (lambda: jaxgal.PixelPSF(np.full((5, 5), 0.05)), "kernel sum"),
        (lambda: jaxgal.PixelGrid((8, 8), 0.0), "pixel_scale"),
        (lambda: jaxgal.PixelGrid((8,), 0.1), "shape"),
    ],
)
def test_psf_and_grid_reject(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_pixel_psf_sum_checked_inside_jit():
    grid = jaxgal.PixelGrid((8, 8), 0.2)

    @jax.jit
    def draw(kernel):
        return jaxgal.render(jaxgal.Sersic(1.0, 0.3, 1.0, 0.5, 0.0), grid, jaxgal.PixelPSF(kernel))

    with pytest.raises(Exception, match="kernel sum"):
        jax.block_until_ready(draw(jnp.full((5, 5), 0.05)))
    with pytest.raises(Exception, match="kernel values"):
        jax.block_until_ready(draw(jnp.full((5, 5), 0.04).at[0, 0].add(0.06).at[1, 1].add(-0.06)))


def test_mismatched_batch_shapes_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        jaxgal.Sersic(jnp.ones(3), jnp.ones(2), 1.0, 0.5, 0.0)


def test_render_takes_one_galaxy_and_says_to_vmap():
    batch = jaxgal.Sersic(jnp.ones(3), jnp.ones(3), 1.0, 0.5, 0.0)
    with pytest.raises(ValueError, match="vmap"):
        jaxgal.render(batch, jaxgal.PixelGrid((8, 8), 0.2))


def test_errors_are_equinox_runtime_errors_not_nans():
    grid = jaxgal.PixelGrid((8, 8), 0.2)
    draw = eqx.filter_jit(lambda n: jaxgal.render(jaxgal.Sersic(1.0, 0.3, n, 0.5, 0.0), grid))
    with pytest.raises(eqx.EquinoxRuntimeError):
        draw(jnp.asarray(9.0))


def test_moffat_shear_checked_inside_jit():
    grid = jaxgal.PixelGrid((8, 8), 0.2)

    @jax.jit
    def draw(g):
        return jaxgal.render(
            jaxgal.Sersic(1.0, 0.3, 1.0, 0.5, 0.0), grid, jaxgal.Moffat(0.5, 3.0, g, g)
        )

    with pytest.raises(Exception, match="Moffat shear"):
        jax.block_until_ready(draw(jnp.asarray(0.7)))
    assert bool(jnp.all(jnp.isfinite(draw(jnp.asarray(0.05)))))
