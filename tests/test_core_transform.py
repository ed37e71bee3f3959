"""The core's Hankel transform and the Bessel functions behind it, against scipy."""

import numpy as np
import pytest
from scipy import integrate, special

import jaxgal
from jaxgal.light.bessel import bessel_j
from jaxgal.light.taper import smooth_taper
from jaxgal.render.core_transform import CORE_RATIO, core_table, read_table


@pytest.mark.parametrize("order", [0, 1])
def test_bessel_matches_scipy(order):
    x = np.concatenate([np.linspace(0.0, 30.0, 30001), np.geomspace(11.0, 2000.0, 5000)])
    reference = special.j0(x) if order == 0 else special.j1(x)
    assert np.max(np.abs(bessel_j(order, x) - reference)) < 1e-10


def test_bessel_rejects_bad_input():
    with pytest.raises(ValueError, match="orders 0 and 1"):
        bessel_j(2, 1.0)
    with pytest.raises(ValueError, match="x >= 0"):
        bessel_j(0, -1.0)


def hankel_reference(n, r_eff, r1, t):
    """2 pi int S(R) w(R / r1) J0(t R / r1) R dR per unit flux, by scipy.quad in log R."""
    b = special.gammaincinv(2 * n, 0.5)
    log_norm = (
        2 * n * np.log(b) - np.log(2 * np.pi * n) - 2 * np.log(r_eff) - special.gammaln(2 * n)
    )

    def integrand(u):
        radius = np.exp(u)
        taper = float(smooth_taper((radius / r1 - 1.0) / (CORE_RATIO - 1.0)))
        light = np.exp(log_norm - b * (radius / r_eff) ** (1.0 / n))
        return light * taper * special.j0(t * radius / r1) * 2.0 * np.pi * radius * radius

    edges = np.linspace(np.log(1e-14 * r1), np.log(CORE_RATIO * r1), 300)
    return sum(
        integrate.quad(integrand, lo, hi, limit=200, epsabs=1e-13)[0]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    )


# cusps far below a cell, cores inside the galaxy, a galaxy inside the core; n over the range
CASES = [(0.3, 0.5, 1.0), (1.0, 2.0, 1.0), (4.0, 0.02, 4.5), (8.0, 0.02, 1.0), (8.0, 30.0, 4.5)]


@pytest.mark.parametrize(("n", "r_eff", "r1"), CASES)
def test_core_transform_matches_quadrature(n, r_eff, r1):
    profile = jaxgal.Sersic(1.0, r_eff, n, 1.0, 0.0)
    table = core_table(profile, r1, 188.5)
    for t in [0.0, 0.3, 1.7, 7.3, 25.1, 150.7]:
        ours = float(read_table(table, np.float64(t)))
        assert ours == pytest.approx(hankel_reference(n, r_eff, r1, t), abs=1e-4), (t, ours)


def test_core_transform_is_zero_past_its_table():
    profile = jaxgal.Sersic(1.0, 0.01, 4.0, 1.0, 0.0)
    table = core_table(profile, 1.0, 20.0)
    assert float(read_table(table, np.float64(30.0))) == 0.0
    assert float(read_table(table, np.float64(19.0))) > 0.5
