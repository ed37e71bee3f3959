"""Effective PSF stamps and sheared Moffat PSFs against GalSim."""

import galsim
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgal
from jaxgal.render.psf_image import draw_psf, fit_stamp

TIGHT = galsim.GSParams(
    folding_threshold=1e-5, maxk_threshold=1e-7, kvalue_accuracy=1e-9, xvalue_accuracy=1e-9
)


@pytest.mark.parametrize(
    "fwhm, beta, g1, g2",
    [(0.5, 2.5, 0.05, -0.03), (1.0, 4.5, 0.0, 0.0), (0.5, 4.5, -0.06, 0.02), (0.6, 3.0, 0.0, 0.3)],
)
def test_moffat_stamp_matches_galsim(fwhm, beta, g1, g2):
    reference = galsim.Moffat(beta=beta, fwhm=fwhm, gsparams=TIGHT).shear(g1=g1, g2=g2)
    reference = reference.drawImage(nx=25, ny=25, scale=0.2, dtype=float).array
    ours = np.asarray(draw_psf(jaxgal.Moffat(fwhm, beta, g1, g2), 25, 0.2, normalise=False))
    assert np.max(np.abs(ours - reference)) < 1e-6 * reference.max()
    normalised = np.asarray(draw_psf(jaxgal.Moffat(fwhm, beta, g1, g2), 25, 0.2))
    assert normalised.sum() == pytest.approx(1.0, abs=1e-12)


def test_gaussian_stamp_matches_galsim():
    reference = galsim.Gaussian(fwhm=0.45, gsparams=TIGHT).drawImage(nx=15, ny=15, scale=0.2)
    ours = np.asarray(draw_psf(jaxgal.Gaussian(0.45), 15, 0.2, normalise=False))
    assert np.max(np.abs(ours - reference.array)) < 1e-6 * reference.array.max()


def test_sheared_moffat_convolution_matches_galsim():
    galaxy = galsim.Sersic(n=1.5, half_light_radius=0.5, flux=100.0).shear(
        q=0.5, beta=20 * galsim.degrees
    )
    moffat = galsim.Moffat(beta=3.0, fwhm=0.7).shear(g1=0.04, g2=-0.05)
    reference = galsim.Convolve(galaxy, moffat).drawImage(nx=48, ny=48, scale=0.2).array
    image = jaxgal.render(
        jaxgal.Sersic(100.0, 0.5, 1.5, 0.5, 20.0),
        jaxgal.PixelGrid((48, 48), 0.2),
        jaxgal.Moffat(0.7, 3.0, 0.04, -0.05),
    )
    assert np.max(np.abs(np.asarray(image) - reference)) < 1e-3 * reference.max()
    # the shear matters at this level: the circular PSF is far off
    circular = jaxgal.render(
        jaxgal.Sersic(100.0, 0.5, 1.5, 0.5, 20.0),
        jaxgal.PixelGrid((48, 48), 0.2),
        jaxgal.Moffat(0.7, 3.0),
    )
    assert np.max(np.abs(np.asarray(circular) - reference)) > 5e-3 * reference.max()


def test_fit_stamp_crops_and_pads_about_the_centre():
    stamp = jnp.arange(49.0).reshape(7, 7)
    cropped = fit_stamp(stamp, 3)
    np.testing.assert_array_equal(cropped, np.arange(49.0).reshape(7, 7)[2:5, 2:5])
    padded = fit_stamp(stamp, 11)
    assert padded.shape == (11, 11)
    assert padded[5, 5] == stamp[3, 3] and padded.sum() == stamp.sum()
    with pytest.raises(ValueError, match="odd sides"):
        fit_stamp(jnp.ones((6, 6)), 5)


def test_too_much_psf_shear_is_named():
    with pytest.raises(ValueError, match="Moffat shear"):
        jaxgal.Moffat(0.7, 3.0, 0.7, 0.7)
    with pytest.raises(ValueError, match="odd stamp size"):
        draw_psf(jaxgal.Moffat(0.7, 3.0), 24, 0.2)
