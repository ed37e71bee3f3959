"""PSF transforms against scipy and GalSim."""

import galsim
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as special

import jaxgal
from jaxgal.light.psf import moffat_transfer_table, quintic_kernel, quintic_transfer


@pytest.mark.parametrize("beta", [2.5, 3.5, 4.765, 10.0])
def test_moffat_transform_matches_bessel_k(beta):
    psf = jaxgal.Moffat(0.7, beta)
    alpha = float(psf.scale_radius)
    k = np.linspace(0.0, 40.0, 2001)
    ours = np.asarray(
        moffat_transfer_table(jnp.asarray(beta), jnp.asarray(alpha), 40.0)(jnp.asarray(k))
    )
    z = k[1:] * alpha
    order = beta - 1.0
    reference = 2 * (z / 2) ** order * special.kv(order, z) / special.gamma(order)
    assert abs(ours[0] - 1.0) < 1e-12
    assert np.max(np.abs(ours[1:] - reference)) < 1e-6


@pytest.mark.parametrize("beta", [2.5, 4.765])
def test_moffat_transform_on_the_longest_table(beta):
    # a k_max so large that the table stops at z = 40 (its coarsest spacing)
    alpha = float(jaxgal.Moffat(0.7, beta).scale_radius)
    k = np.linspace(1e-6, 40.0 / alpha, 4001)
    ours = np.asarray(
        moffat_transfer_table(jnp.asarray(beta), jnp.asarray(alpha), 1e3)(jnp.asarray(k))
    )
    z = k * alpha
    reference = 2 * (z / 2) ** (beta - 1) * special.kv(beta - 1, z) / special.gamma(beta - 1)
    assert np.max(np.abs(ours - reference)) < 5e-6


def test_moffat_matches_galsim_fwhm_convention():
    psf = galsim.Moffat(beta=3.0, fwhm=0.9)
    assert float(jaxgal.Moffat(0.9, 3.0).scale_radius) == pytest.approx(psf.scale_radius, rel=1e-12)


def test_quintic_matches_galsim():
    interpolant = galsim.Quintic()
    x = np.linspace(-3.5, 3.5, 141)
    assert np.allclose(
        np.asarray(quintic_kernel(jnp.asarray(x))), [interpolant.xval(v) for v in x], atol=1e-14
    )
    k = np.linspace(0.0, 70.0, 281)
    assert np.allclose(
        np.asarray(quintic_transfer(jnp.asarray(k))), [interpolant.kval(v) for v in k], atol=1e-12
    )


def test_gaussian_transfer_is_the_analytic_transform():
    kx = jnp.linspace(0.0, 30.0, 7)
    ky = jnp.linspace(-10.0, 10.0, 5)
    sigma = 0.5 / (2 * np.sqrt(2 * np.log(2)))
    pixel = 0.1
    expected = (
        np.exp(-0.5 * sigma**2 * (kx[None, :] ** 2 + ky[:, None] ** 2))
        * np.sinc(kx[None, :] * pixel / (2 * np.pi))
        * np.sinc(ky[:, None] * pixel / (2 * np.pi))
    )
    assert np.allclose(
        np.asarray(jaxgal.Gaussian(0.5).transfer(kx, ky, pixel)), expected, atol=1e-14
    )
