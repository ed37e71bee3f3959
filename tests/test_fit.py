"""`jaxgal.fit` on GalSim-rendered KiDS-like cutouts: CNN, refinement from the moments,
and CNN + refinement, which must find the same minimum; the noise models; bad input."""

import galsim
import numpy as np
import pytest

import jaxgal
from jaxgal.fitting import noise_sigma
from jaxgal.fitting.refine import ATOL

SKY = 5.0
# the same compiled refinement as notebooks/fitting_tour.py and test_hmc's fit test
pytestmark = pytest.mark.xdist_group("kids_fit")


@pytest.fixture(scope="module")
def cutouts():
    rng = np.random.default_rng(31)
    truth = {
        "magnitude": np.array([18.2, 19.0, 18.6]),
        "r_eff": np.array([0.9, 0.5, 1.6]),
        "n": np.array([3.0, 1.0, 1.8]),
        "q": np.array([0.55, 0.8, 0.35]),
        "pa": np.array([40.0, 150.0, 95.0]),
    }
    images, kernels = [], []
    for i in range(3):
        galaxy = galsim.Sersic(
            n=truth["n"][i],
            half_light_radius=truth["r_eff"][i],
            flux=10 ** (-0.4 * (truth["magnitude"][i] - 30.0)),
        ).shear(q=truth["q"][i], beta=truth["pa"][i] * galsim.degrees)
        psf = galsim.Moffat(beta=3.5, fwhm=0.6 + 0.15 * i)
        clean = galsim.Convolve(galaxy, psf).drawImage(nx=64, ny=64, scale=0.2).array
        images.append(clean + rng.normal(0.0, SKY, clean.shape))
        kernels.append(psf.drawImage(nx=25, ny=25, scale=0.2).array)
    return np.array(images), np.array(kernels), truth


@pytest.fixture(scope="module")
def fits(cutouts):
    images, kernels, _ = cutouts
    return {
        method: jaxgal.fit(images, kernels, SKY, method=method, zero_point=30.0)
        for method in ("cnn", "refine", "cnn+refine")
    }


def test_refined_fits_are_good_and_agree(fits, cutouts):
    _, _, truth = cutouts
    refined, from_moments = fits["cnn+refine"], fits["refine"]
    assert list(refined["index"]) == [0, 1, 2]
    assert np.all(refined["converged"]) and np.all(refined["flags"] == 0)
    dof = 64 * 64 - 7
    np.testing.assert_allclose(refined["reduced_chi2"], 1.0, atol=4 * np.sqrt(2 / dof))
    for name in ("magnitude", "r_eff", "n", "q"):
        pulls = (np.asarray(refined[name]) - truth[name]) / np.asarray(refined[name + "_err"])
        assert np.all(np.abs(pulls) < 4.5), (name, pulls)
        # from the CNN or from the moments: the same minimum of the same chi-square (each
        # within the solver's tolerance, ATOL of its error, of it)
        apart = np.abs(np.asarray(from_moments[name]) - np.asarray(refined[name]))
        assert np.all(apart < 2 * ATOL * np.asarray(refined[name + "_err"])), (name, apart)


def test_cnn_alone_gives_parameters_with_errors(fits, cutouts):
    _, _, truth = cutouts
    cnn = fits["cnn"]
    assert "chi2" not in cnn.colnames
    assert np.all(np.abs(np.asarray(cnn["magnitude"]) - truth["magnitude"]) < 0.3)
    assert np.all(np.asarray(cnn["r_eff_err"]) > 0)


def test_noise_models():
    image = np.full((4, 4), 100.0)
    # GALFIT's model: (image + sky) / gain + read_noise^2 / gain^2, in counts^2
    expected = np.sqrt((100.0 + 50.0) / 2.0 + 5.0**2 / 2.0**2)
    sigma = noise_sigma(image, gain=2.0, read_noise=5.0, sky=50.0)
    np.testing.assert_allclose(sigma, expected)
    np.testing.assert_allclose(noise_sigma(image, weight=0.25), 2.0)
    assert np.isinf(noise_sigma(image, weight=np.zeros((4, 4)))).all()
    with pytest.raises(ValueError, match="give gain"):
        noise_sigma(image)


def test_bad_requests_are_named(cutouts):
    images, kernels, _ = cutouts
    with pytest.raises(ValueError, match="method must be one of"):
        jaxgal.fit(images, kernels, SKY, method="galfit")
    with pytest.raises(ValueError, match="0.2 arcsec pixels"):
        jaxgal.fit(images, kernels, SKY, method="cnn", pixel_scale=0.1)
    with pytest.raises(ValueError, match="needs psf_images"):
        jaxgal.fit(images, None, SKY, method="cnn+refine")
    with pytest.raises(ValueError, match="odd sides"):
        jaxgal.fit(images, kernels[:, 1:, 1:], SKY, method="refine")
