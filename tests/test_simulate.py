"""The training-set generator: presets, noise, PSF and noise banks, against GalSim and
analytic statistics."""

import dataclasses

import galsim
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from astropy.io import fits

from jaxgal.simulate import KIDS, PRESETS, NoiseBank, PSFBank, get_preset, simulate_batch
from jaxgal.simulate.noise import add_noise

TIGHT = galsim.GSParams(folding_threshold=1e-5, maxk_threshold=1e-7, kvalue_accuracy=1e-9)
SMALL = dataclasses.replace(KIDS, shape=(32, 32), psf_size=15)


def test_batches_are_reproducible_from_the_key():
    simulate = jax.jit(lambda key: simulate_batch(key, SMALL, 4))
    first, again, other = (
        simulate(jax.random.key(3)),
        simulate(jax.random.key(3)),
        simulate(jax.random.key(4)),
    )
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels["r_eff"], again.labels["r_eff"])
    assert not np.allclose(first.images, other.images)


def test_images_are_galsim_galaxies_plus_the_stated_noise():
    """Each cutout minus the GalSim rendering of its labelled galaxy and PSF, divided by
    the stated noise, must be unit white noise."""
    batch = jax.jit(lambda key: simulate_batch(key, SMALL, 6))(jax.random.key(11))
    labels = {name: np.asarray(value, dtype=float) for name, value in batch.labels.items()}
    scale = SMALL.pixel_scale
    for i in range(6):
        galaxy = (
            galsim.Sersic(
                n=labels["n"][i],
                half_light_radius=labels["r_eff"][i],
                flux=10 ** (-0.4 * (labels["magnitude"][i] - SMALL.zero_point)),
            )
            .shear(q=labels["q"][i], beta=labels["pa"][i] * galsim.degrees)
            .shift(labels["x0"][i], labels["y0"][i])
        )
        psf = galsim.Moffat(beta=labels["psf_beta"][i], fwhm=labels["psf_fwhm"][i]).shear(
            g1=labels["psf_g1"][i], g2=labels["psf_g2"][i]
        )
        clean = galsim.Convolve(galaxy, psf).drawImage(nx=32, ny=32, scale=scale).array
        variance = labels["sky_sigma"][i] ** 2 + np.maximum(clean, 0) / SMALL.gain
        pulls = (np.asarray(batch.images[i]) - clean) / np.sqrt(variance)
        # 1024 pixels: the mean within 4.5 / 32, the variance within ~5 sigma of 1
        assert abs(pulls.mean()) < 0.14, i
        assert abs(pulls.var() - 1.0) < 0.23, i
        assert labels["snr"][i] == pytest.approx(np.sqrt(np.sum(clean**2 / variance)), rel=2e-3)
        stamp = galsim.Moffat(
            beta=labels["psf_beta"][i], fwhm=labels["psf_fwhm"][i], gsparams=TIGHT
        ).shear(g1=labels["psf_g1"][i], g2=labels["psf_g2"][i])
        stamp = stamp.drawImage(nx=15, ny=15, scale=scale).array
        np.testing.assert_allclose(batch.psf_images[i], stamp / stamp.sum(), atol=1e-7)


def test_sky_noise_meets_the_quoted_depth():
    """A source at the limiting magnitude, spread over the depth's area, has S/N 5."""
    for preset in PRESETS.values():
        depth = preset.depth[1]
        flux = 10 ** (-0.4 * (depth - preset.zero_point))
        pixels = preset.depth_area / preset.pixel_scale**2
        sigma = float(preset.sky_sigma(depth))
        assert flux / (sigma * np.sqrt(pixels)) == pytest.approx(5.0, rel=1e-5), preset.name


def test_noise_variance_is_sky_plus_poisson():
    level, sky_sigma, gain = 400.0, 3.0, 2.5
    image = jnp.full((200, 200), level)
    noisy = np.asarray(add_noise(jax.random.key(0), image, sky_sigma, gain))
    expected = sky_sigma**2 + level / gain
    # 40000 samples: the variance's relative standard error is sqrt(2 / 40000) = 0.7 %
    assert noisy.var() == pytest.approx(expected, rel=0.035)
    assert noisy.mean() == pytest.approx(level, abs=5 * np.sqrt(expected / 40000))


def test_banks_from_fits(tmp_path):
    rng = np.random.default_rng(0)
    skies = rng.normal(0.0, 2.0, (3, 32, 32))
    fits.HDUList([fits.PrimaryHDU(skies)]).writeto(tmp_path / "sky.fits")
    kernels = [galsim.Gaussian(fwhm=f).drawImage(nx=21, ny=21, scale=0.2).array for f in (0.6, 0.9)]
    fits.HDUList([fits.PrimaryHDU(kernels[0]), fits.ImageHDU(kernels[1])]).writeto(
        tmp_path / "psf.fits"
    )
    noise_bank = NoiseBank.from_fits(tmp_path / "sky.fits")
    psf_bank = PSFBank.from_fits(tmp_path / "psf.fits")
    assert psf_bank.kernels.shape == (2, 21, 21)
    # every drawn sky is one of the cutouts, turned and flipped
    variants = [np.rot90(s, t)[:, ::f] for s in skies for t in range(4) for f in (1, -1)]
    for seed in range(5):
        sky = np.asarray(noise_bank.draw(jax.random.key(seed), (32, 32)))
        assert min(np.abs(sky - v).max() for v in variants) < 1e-12
    batch = jax.jit(lambda key: simulate_batch(key, SMALL, 3, noise_bank, psf_bank))(
        jax.random.key(1)
    )
    assert batch.images.shape == (3, 32, 32) and batch.psf_images.shape == (3, 15, 15)
    np.testing.assert_allclose(batch.psf_images.sum(axis=(1, 2)), 1.0, atol=1e-12)
    assert np.all(np.isfinite(batch.images))
    with pytest.raises(ValueError, match="NoiseBank cutouts are"):
        noise_bank.draw(jax.random.key(0), (64, 64))
    with pytest.raises(ValueError, match="odd-sided"):
        PSFBank(np.ones((2, 20, 20)))


def test_presets_are_named_and_checked():
    assert get_preset("kids").pixel_scale == 0.2
    assert {"kids", "hst_acs", "csst", "euclid_vis", "lsst"} <= set(PRESETS)
    with pytest.raises(ValueError, match="unknown survey preset 'sdss'"):
        get_preset("sdss")
    with pytest.raises(ValueError, match="psf_size must be odd"):
        dataclasses.replace(KIDS, psf_size=24)
