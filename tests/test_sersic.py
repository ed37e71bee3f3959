import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as special

import jaxgal
from jaxgal.light.gamma_table import GammaTable


@pytest.mark.parametrize("n", [0.3, 0.36, 0.5, 1.0, 2.5, 4.0, 6.2, 7.3, 8.0])
def test_bn_is_the_exact_root(n):
    assert float(jaxgal.sersic_bn(n)) == pytest.approx(special.gammaincinv(2 * n, 0.5), rel=1e-13)


@pytest.mark.parametrize("n", [0.3, 1.0, 4.0, 8.0])
def test_bn_gradient_matches_finite_differences_of_scipy(n):
    step = 1e-6
    expected = (
        special.gammaincinv(2 * (n + step), 0.5) - special.gammaincinv(2 * (n - step), 0.5)
    ) / (2 * step)
    assert float(jax.grad(jaxgal.sersic_bn)(n)) == pytest.approx(expected, rel=1e-7)


def test_half_light_radius_holds_half_the_flux():
    profile = jaxgal.Sersic(3.0, 0.7, 2.2, 0.4, 10.0)
    assert float(profile.enclosed_fraction(0.7)) == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("n", [0.3, 1.0, 4.0, 8.0])
def test_total_flux_formula_integrates_to_flux(n):
    # integral of 2 pi R I(R) dR with scipy, from the profile's own surface brightness
    import scipy.integrate as integrate

    profile = jaxgal.Sersic(2.5, 0.8, n, 1.0, 0.0)
    radial = lambda r: 2 * np.pi * r * float(profile.radial_profile(r))  # noqa: E731
    edges = [0.0, 1e-8, 1e-4, 0.01, 0.8, 10.0, 1e3, 1e6]
    total = sum(integrate.quad(radial, a, b, limit=200)[0] for a, b in zip(edges, edges[1:]))
    assert total == pytest.approx(2.5, rel=1e-6)


@pytest.mark.parametrize("shape_a", [0.3, 0.6, 1.0, 4.0, 16.0, 32.0])
def test_gamma_table_matches_scipy(shape_a):
    table = GammaTable.build(jnp.asarray(shape_a))
    x = np.concatenate([np.geomspace(1e-12, 1e3, 2000), [0.0]])
    assert np.max(np.abs(np.asarray(table(jnp.asarray(x))) - special.gammainc(shape_a, x))) < 5e-8


def test_magnitudes_follow_the_zero_point_convention():
    assert float(jaxgal.magnitude_to_flux(25.0, 30.0)) == pytest.approx(100.0)
    assert float(jaxgal.flux_to_magnitude(100.0, 30.0)) == pytest.approx(25.0)
    assert float(jaxgal.flux_to_magnitude(jaxgal.magnitude_to_flux(21.3, 27.1), 27.1)) == (
        pytest.approx(21.3)
    )
