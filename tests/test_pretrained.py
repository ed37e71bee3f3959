"""The shipped KiDS GaLNet-2: it loads, and predicts GalSim-rendered galaxies (independent
of jaxgal's renderer) to within loose bounds; predict's handling of PSF sizes, zero points,
batch lengths and bad input."""

import galsim
import numpy as np
import pytest

import jaxgal

# one test worker renders the module's GalSim cutouts once
pytestmark = pytest.mark.xdist_group("pretrained")

PIXEL_SCALE = 0.2


@pytest.fixture(scope="module")
def model():
    return jaxgal.GaLNet.pretrained("kids")


@pytest.fixture(scope="module")
def galsim_cutouts():
    rng = np.random.default_rng(99)
    count = 40
    truth = {
        "magnitude": rng.uniform(17.5, 19.5, count),
        "r_eff": np.exp(rng.uniform(np.log(0.4), np.log(2.5), count)),
        "n": rng.uniform(0.8, 4.5, count),
        "q": rng.uniform(0.3, 0.95, count),
        "pa": rng.uniform(0, 180, count),
    }
    images, psfs = [], []
    for i in range(count):
        galaxy = galsim.Sersic(
            n=truth["n"][i],
            half_light_radius=truth["r_eff"][i],
            flux=10 ** (-0.4 * (truth["magnitude"][i] - 30.0)),
        ).shear(q=truth["q"][i], beta=truth["pa"][i] * galsim.degrees)
        psf = galsim.Moffat(beta=rng.uniform(2.5, 4.5), fwhm=rng.uniform(0.55, 0.95))
        image = galsim.Convolve(galaxy, psf).drawImage(nx=64, ny=64, scale=PIXEL_SCALE).array
        images.append(image + rng.normal(0.0, 4.0, image.shape))
        kernel = psf.drawImage(nx=25, ny=25, scale=PIXEL_SCALE).array
        psfs.append(kernel / kernel.sum())
    return np.array(images), np.array(psfs), truth


def test_predicts_galsim_galaxies(model, galsim_cutouts):
    images, psfs, truth = galsim_cutouts
    predicted = model.predict(images, psfs, zero_point=30.0)
    assert np.median(np.abs(predicted["magnitude"] - truth["magnitude"])) < 0.1
    assert np.median(np.abs(predicted["r_eff"] / truth["r_eff"] - 1)) < 0.15
    assert np.median(np.abs(predicted["n"] / truth["n"] - 1)) < 0.3
    assert np.median(np.abs(predicted["q"] - truth["q"])) < 0.08
    for name in ("magnitude", "r_eff", "n", "q", "pa", "x0", "y0", "flux"):
        assert predicted[name].shape == (len(images),)
        assert np.all(predicted[name + "_err"] > 0), name


def test_psf_stamps_of_any_odd_size(model, galsim_cutouts):
    images, psfs, _ = galsim_cutouts
    reference = model.predict(images[:8], psfs[:8])
    padded = model.predict(images[:8], np.pad(psfs[:8], ((0, 0), (4, 4), (4, 4))))
    np.testing.assert_allclose(padded["r_eff"], reference["r_eff"], rtol=1e-5)
    cropped = model.predict(images[:8], psfs[:8, 2:-2, 2:-2])  # 21 x 21: a little light lost
    np.testing.assert_allclose(cropped["r_eff"], reference["r_eff"], rtol=0.05)
    with pytest.raises(ValueError, match="odd sides"):
        model.predict(images[:2], psfs[:2, 1:, 1:])


def test_zero_point_and_batch_length(model, galsim_cutouts):
    images, psfs, _ = galsim_cutouts
    reference = model.predict(images[:5], psfs[:5])
    # the same cutouts in a system of zero point 27: fluxes 10^(-1.2) times smaller
    rescaled = model.predict(images[:5] * 10 ** (-0.4 * 3.0), psfs[:5], zero_point=27.0)
    np.testing.assert_allclose(rescaled["magnitude"], reference["magnitude"], atol=1e-4)
    np.testing.assert_allclose(rescaled["flux"], reference["flux"] * 10 ** (-1.2), rtol=1e-4)
    np.testing.assert_allclose(rescaled["r_eff"], reference["r_eff"], rtol=1e-4)
    one = model.predict(images[3], psfs[3])  # another batch size: another compiled program
    np.testing.assert_allclose(one["r_eff"], reference["r_eff"][3:4], rtol=1e-3)


def test_bad_input_is_named(model, galsim_cutouts):
    images, psfs, _ = galsim_cutouts
    with pytest.raises(ValueError, match=r"cutouts must be \(count, 64, 64\) for the kids"):
        model.predict(images[:2, :48, :48], psfs[:2])
    with pytest.raises(ValueError, match="GaLNet-2 needs psf_images"):
        model.predict(images[:2])
    bad = images[:3].copy()
    bad[1, 5, 5] = np.nan
    with pytest.raises(ValueError, match="1 cutouts hold NaN"):
        model.predict(bad, psfs[:3])
    with pytest.raises(ValueError, match="no shipped galnet2 for preset 'sdss'"):
        jaxgal.GaLNet.pretrained("sdss")
