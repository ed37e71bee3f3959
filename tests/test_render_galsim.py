"""PSF-convolved rendering against GalSim, over a sweep of the supported range."""

import json
import os
import subprocess
import sys
from pathlib import Path

import galsim
import numpy as np
import pytest

import jaxgal

N_VALUES = [0.3, 0.5, 1.0, 2.5, 4.0, 6.2]
Q_VALUES = [0.05, 0.2, 0.6, 1.0]
R_EFF_PIXELS = [0.1, 0.7, 3.0, 12.0, "stamp"]
PIXEL_SCALES = [0.05, 0.074, 0.1, 0.2]
SIDES = [32, 33]
PSF_KINDS = ["none", "gaussian", "moffat", "pixel"]


def sweep_case(index):
    """A deterministic case; over the sweep every level of every factor recurs."""
    rng = np.random.default_rng(1000 + index)
    side = SIDES[index % 2]
    r_eff = R_EFF_PIXELS[(index // 2) % len(R_EFF_PIXELS)]
    pixel_scale = PIXEL_SCALES[(index // 3) % len(PIXEL_SCALES)]
    r_eff_arcsec = (side if r_eff == "stamp" else r_eff) * pixel_scale
    # on a pixel centre (a pixel corner for even sides), or anywhere within a pixel
    if index % 3 == 0:
        x0 = y0 = 0.0 if side % 2 else 0.5 * pixel_scale
    else:
        x0, y0 = rng.uniform(-0.5, 0.5, 2) * pixel_scale
    return dict(
        flux=float(rng.uniform(1.0, 100.0)),
        r_eff=r_eff_arcsec,
        n=N_VALUES[(index // 5) % len(N_VALUES)],
        q=Q_VALUES[index % len(Q_VALUES)],
        pa=float(rng.uniform(0.0, 180.0)),
        x0=float(x0),
        y0=float(y0),
        side=side,
        pixel_scale=pixel_scale,
        psf=PSF_KINDS[(index // 7) % len(PSF_KINDS)],
        fwhm_pixels=float(rng.uniform(2.0, 5.0)),
        beta=float(rng.choice([2.5, 3.5, 4.765])),
    )


def galsim_psf_kernel(fwhm, pixel_scale):
    """An effective PSF image (Moffat, pixel-integrated), 25 x 25, summing to 1."""
    kernel = galsim.Moffat(beta=3.0, fwhm=fwhm).drawImage(nx=25, ny=25, scale=pixel_scale).array
    return kernel.astype(float) / kernel.sum()


def reference_and_ours(case, dtype=np.float64):
    shape = (case["side"], case["side"])
    scale = case["pixel_scale"]
    fwhm = case["fwhm_pixels"] * scale
    galaxy = (
        galsim.Sersic(n=case["n"], half_light_radius=case["r_eff"], flux=case["flux"])
        .shear(q=case["q"], beta=case["pa"] * galsim.degrees)
        .shift(case["x0"], case["y0"])
    )
    draw = dict(nx=shape[1], ny=shape[0], scale=scale, dtype=float)
    if case["psf"] == "none":
        reference = galaxy.drawImage(method="real_space", **draw).array
        psf = None
    elif case["psf"] == "gaussian":
        reference = galsim.Convolve(galaxy, galsim.Gaussian(fwhm=fwhm)).drawImage(**draw).array
        psf = jaxgal.Gaussian(dtype(fwhm))
    elif case["psf"] == "moffat":
        moffat = galsim.Moffat(beta=case["beta"], fwhm=fwhm)
        reference = galsim.Convolve(galaxy, moffat).drawImage(**draw).array
        psf = jaxgal.Moffat(dtype(fwhm), dtype(case["beta"]))
    else:
        kernel = galsim_psf_kernel(fwhm, scale)
        # GalSim's default truncates the interpolated PSF's transform where it falls below
        # 1e-3, which changes the image by up to ~1e-2; keep it to 6 pi / pixel, where the
        # Quintic's side lobes have died away (4, 6 and 8 pi agree to 1e-5 of the peak).
        interpolated = galsim.InterpolatedImage(
            galsim.Image(kernel, scale=scale),
            x_interpolant="quintic",
            _force_maxk=6 * np.pi / scale,
        )
        reference = galsim.Convolve(galaxy, interpolated).drawImage(method="no_pixel", **draw).array
        psf = jaxgal.PixelPSF(kernel.astype(dtype))
    profile = jaxgal.Sersic(
        *[dtype(case[k]) for k in ("flux", "r_eff", "n", "q", "pa", "x0", "y0")]
    )
    image = jaxgal.render(profile, jaxgal.PixelGrid(shape, dtype(scale)), psf)
    return reference, np.asarray(image)


SWEEP = list(range(56))


@pytest.mark.parametrize("index", SWEEP)
def test_float64_matches_galsim(index):
    case = sweep_case(index)
    reference, image = reference_and_ours(case)
    peak = reference.max()
    assert np.max(np.abs(image - reference)) <= 1e-3 * peak, case
    assert image.sum() == pytest.approx(reference.sum(), rel=1e-3), case


def test_float32_matches_galsim():
    indices = SWEEP[::4]
    script = Path(__file__).with_name("float32_check.py")
    environment = {**os.environ, "JAX_ENABLE_X64": "0"}
    result = subprocess.run(
        [sys.executable, str(script), *map(str, indices)],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    errors = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(errors) == len(indices)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 3e-3, (sweep_case(int(worst)), errors[worst])


def test_sweep_covers_every_level():
    cases = [sweep_case(i) for i in SWEEP]
    assert {c["n"] for c in cases} == set(N_VALUES)
    assert {c["q"] for c in cases} == set(Q_VALUES)
    assert {c["pixel_scale"] for c in cases} == set(PIXEL_SCALES)
    assert {c["psf"] for c in cases} == set(PSF_KINDS)
    assert {c["side"] for c in cases} == set(SIDES)
    assert {c["r_eff"] / c["pixel_scale"] for c in cases} >= {0.1, 0.7, 3.0, 12.0, 32.0, 33.0}
    # a centre exactly on a pixel centre with each kind of PSF
    centred = {c["psf"] for c in cases if c["side"] % 2 and c["x0"] == 0.0}
    assert centred == set(PSF_KINDS)
