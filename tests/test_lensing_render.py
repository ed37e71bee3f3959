"""Lensed images against an independent reference (lenstronomy's ray tracing, an exact-b_n
Sersic finely sub-sampled, GalSim's lens light; tests/lensing_reference.py), for lenses of
the seed's population and a compact cusped source; their gradients against finite
differences; no NaN over the population; bad input named."""

import equinox as eqx
import jax
import jax.numpy as jnp
import lensing_reference as reference
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxgal
from jaxgal.simulate.lens_population import LensPopulation

SHAPE, PIXEL_SCALE, PSF_FWHM, ZERO_POINT = (100, 100), 0.05, 0.1, 30.0
GRID = jaxgal.PixelGrid(SHAPE, PIXEL_SCALE)
PSF = jaxgal.Gaussian(PSF_FWHM)
pytestmark = pytest.mark.xdist_group("lensing_render")


@jax.jit
def _parts(system):
    return jaxgal.render_lens(system, GRID, PSF)


def _lens(index, **source):
    """Lens `index` of a draw of the population; `source` replaces source parameters."""
    systems = LensPopulation().sample(jax.random.key(2026), ZERO_POINT, (4,))
    system = jax.tree.map(lambda leaf: leaf[index], systems)
    if source:
        names = tuple(source)
        replaced = eqx.tree_at(
            lambda profile: tuple(getattr(profile, name) for name in names),
            system.source[0],
            tuple(jnp.asarray(value, jnp.float64) for value in source.values()),
        )
        system = eqx.tree_at(lambda s: s.source, system, (replaced,))
    return system


# the reference's sampling: 24^2 points a pixel, 32^2 more in each of the 1000 brightest
# sub-cells (its error ~2e-4 of the source's peak, up to 1e-3 for a cusp one pixel across),
# and a finer one to measure that
FINE = dict(subsamples=24, cusp_cells=1000, cusp_subsamples=32)
FINER = dict(subsamples=32, cusp_cells=2000, cusp_subsamples=48)
CASES = {
    "population 0": dict(index=0),
    "population 1": dict(index=1),
    # the hardest source of the population: a cusp (n = 5) one pixel across, thin
    "compact cusp": dict(index=3, r_eff=0.05, n=5.0, q=0.3),
}


@pytest.mark.parametrize("case", CASES)
def test_lensed_images_match_the_reference(case):
    options = dict(CASES[case])
    system = _lens(options.pop("index"), **options)
    p = reference.lens_parameters(system)
    lens_light, lensed_source = (np.asarray(part) for part in _parts(system))
    expected_source = reference.lensed_source(p, SHAPE, PIXEL_SCALE, PSF_FWHM, **FINE)
    source_peak = expected_source.max()
    source_error = np.abs(lensed_source - expected_source).max() / source_peak
    own_error = 0.0
    if case == "compact cusp":
        # the reference's own error, against a finer sampling still (which it is then
        # compared with): near 1e-3 of the peak for a cusp one pixel across
        finer = reference.lensed_source(p, SHAPE, PIXEL_SCALE, PSF_FWHM, **FINER)
        own_error = np.abs(finer - expected_source).max() / source_peak
        assert own_error < 2e-3
        expected_source = finer
    assert source_error < 1e-2, source_error

    expected_light = reference.lens_light(p, SHAPE, PIXEL_SCALE, PSF_FWHM)
    image, expected = lens_light + lensed_source, expected_light + expected_source
    total_error = np.abs(image - expected).max() / expected.max()
    assert total_error < 1e-3 + own_error, (total_error, own_error)
    # the parts add up to render's image
    np.testing.assert_allclose(
        np.asarray(jax.jit(lambda s: jaxgal.render(s, GRID, PSF))(system)), image, atol=1e-12
    )


def test_without_psf_the_lensed_source_is_pixel_integrated():
    system = _lens(1, r_eff=0.12, n=2.5)
    p = reference.lens_parameters(system)
    _, lensed_source = jaxgal.render_lens(system, SMALL)
    expected = reference.lensed_source(p, SMALL.shape, 0.1, None)
    error = np.abs(np.asarray(lensed_source) - expected).max() / expected.max()
    assert error < 1e-2, error


# gradients on a smaller, coarser stamp: the same code, a quicker compile
SMALL = jaxgal.PixelGrid((48, 48), 0.1)
SMALL_PSF = jaxgal.Gaussian(0.2)


def _image_statistic(system, refinement=((1024, 16), (16, 128))):
    light, source = jaxgal.render_lens(system, SMALL, SMALL_PSF, source_refinement=refinement)
    image = light + source
    weights = jnp.sin(jnp.arange(image.size, dtype=image.dtype)).reshape(image.shape)
    return jnp.sum(image * weights)


_gradient = jax.jit(jax.grad(_image_statistic))
_statistic = jax.jit(_image_statistic)
# without the adaptive refinement, whose choice of cells jumps as parameters move (a finite
# difference across a jump measures the jump): the same per-cell sampling, smooth
_smooth_gradient = jax.jit(jax.grad(lambda s: _image_statistic(s, ())))
_smooth_statistic = jax.jit(lambda s: _image_statistic(s, ()))


@pytest.mark.parametrize("mass_q", [0.6, 1.0])
def test_gradients_match_finite_differences(mass_q):
    system = _lens(2, r_eff=0.3, n=1.5)
    sie = eqx.tree_at(lambda m: m.q, system.mass[0], jnp.asarray(mass_q))
    system = eqx.tree_at(lambda s: s.mass, system, (sie, system.mass[1]))
    gradient = _smooth_gradient(system)
    leaves = {
        "theta_e": lambda s: s.mass[0].theta_e,
        "mass_q": lambda s: s.mass[0].q,
        "mass_pa": lambda s: s.mass[0].pa,
        "mass_x0": lambda s: s.mass[0].x0,
        "gamma1": lambda s: s.mass[1].gamma1,
        "source_x0": lambda s: s.source[0].x0,
        "source_r_eff": lambda s: s.source[0].r_eff,
        "source_n": lambda s: s.source[0].n,
        "light_r_eff": lambda s: s.lens_light[0].r_eff,
    }
    for name, where in leaves.items():
        value = float(where(system))
        step = 1e-5 * max(abs(value), 1.0)
        # one-sided below q = 1: the SIE's q may not exceed it
        low = value - step if not (name == "mass_q" and value == 1.0) else value - 2 * step
        high = value + step if not (name == "mass_q" and value == 1.0) else value
        shifted = [
            _smooth_statistic(eqx.tree_at(where, system, jnp.asarray(v, jnp.float64)))
            for v in (low, high)
        ]
        numeric = float(shifted[1] - shifted[0]) / (high - low)
        analytic = float(where(gradient))
        scale = max(abs(numeric), 1e-3 * float(jnp.abs(_smooth_statistic(system))))
        tolerance = 2e-3 if name == "mass_q" and value == 1.0 else 2e-4
        assert abs(analytic - numeric) <= tolerance * scale, (name, analytic, numeric)


@settings(max_examples=6, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1))
def test_population_draws_give_finite_images_and_gradients(seed):
    system = LensPopulation().sample(jax.random.key(seed), ZERO_POINT)
    image = _statistic(system)
    gradient = _gradient(system)
    assert np.isfinite(float(image))
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(gradient))


def test_bad_lens_parameters_are_named_inside_jit():
    system = _lens(0)
    render = _statistic
    broken = eqx.tree_at(lambda s: s.mass[0].theta_e, system, jnp.asarray(-1.0))
    with pytest.raises(Exception, match="theta_e"):
        render(broken).block_until_ready()
    sheared = eqx.tree_at(lambda s: s.mass[1].gamma1, system, jnp.asarray(1.2))
    with pytest.raises(Exception, match="gamma"):
        render(sheared).block_until_ready()
    with pytest.raises(TypeError, match="source"):
        jaxgal.LensSystem(system.mass, source="not a profile")
    with pytest.raises(TypeError, match="LensSystem"):
        jaxgal.render_lens(system.source[0], SMALL)
