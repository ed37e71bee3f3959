"""Exact pixel integrals without a PSF, against scipy's adaptive quadrature and GalSim."""

import galsim
import numpy as np
import pytest
from conftest import pixel_integral, sersic_surface_brightness

import jaxgal

# (flux, r_eff [pixels], n, q, pa, x0 [pixels], y0 [pixels]); r_eff down to 0.1 pixel,
# n up to 8 (beyond GalSim's 6.2), centres on a pixel centre, a corner and off both.
CASES = [
    (1.0, 0.1, 8.0, 0.05, 30.0, 0.0, 0.0),
    (1.0, 0.1, 8.0, 1.0, 0.0, 0.13, -0.07),
    (2.0, 1.0, 6.9, 0.3, 70.0, 0.5, 0.5),
    (1.0, 0.25, 0.3, 0.5, 10.0, 0.0, 0.0),
    (1.0, 3.0, 1.0, 0.05, 45.0, -0.2, 0.3),
    (5.0, 1.5, 4.0, 0.7, -20.0, 0.25, 0.25),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("side", [7, 8])
def test_matches_adaptive_quadrature(case, side):
    pixel_scale = 0.1
    flux, r_eff, n, q, pa, x0, y0 = case
    r_eff, x0, y0 = r_eff * pixel_scale, x0 * pixel_scale, y0 * pixel_scale
    grid = jaxgal.PixelGrid((side, side), pixel_scale)
    image = np.asarray(jaxgal.render(jaxgal.Sersic(flux, r_eff, n, q, pa, x0, y0), grid))
    brightness = sersic_surface_brightness(flux, r_eff, n, q, pa, x0, y0)
    edges = np.asarray(grid.x_edges())
    # every pixel within two of the centre, and a few far ones
    centre = int(np.argmin(np.abs(np.asarray(grid.x_centres()) - x0)))
    rows = range(max(centre - 2, 0), min(centre + 3, side))
    checked = [(i, j) for i in rows for j in rows] + [(0, 0), (side - 1, 1)]
    for i, j in checked:
        reference = pixel_integral(
            brightness, edges[j], edges[j + 1], edges[i], edges[i + 1], x0, y0
        )
        assert abs(image[i, j] - reference) <= 1e-5 * image.max(), (i, j)


@pytest.mark.parametrize(
    "case",
    [
        (1.0, 0.02, 6.2, 0.05, 30.0, 0.0, 0.0),
        (3.0, 0.4, 2.5, 0.6, 100.0, 0.03, -0.01),
        (1.0, 6.4, 0.3, 1.0, 0.0, 0.0, 0.0),
        (1.0, 6.4, 6.0, 0.5, 20.0, 0.07, 0.0),
    ],
)
def test_matches_galsim_real_space(case):
    flux, r_eff, n, q, pa, x0, y0 = case
    shape, pixel_scale = (32, 31), 0.2
    reference = (
        galsim.Sersic(n=n, half_light_radius=r_eff, flux=flux)
        .shear(q=q, beta=pa * galsim.degrees)
        .shift(x0, y0)
        .drawImage(nx=shape[1], ny=shape[0], scale=pixel_scale, method="real_space", dtype=float)
        .array
    )
    image = np.asarray(jaxgal.render(jaxgal.Sersic(*case), jaxgal.PixelGrid(shape, pixel_scale)))
    assert np.max(np.abs(image - reference)) <= 1e-3 * reference.max()
    assert image.sum() == pytest.approx(reference.sum(), rel=1e-3)


def test_flux_of_a_stamp_that_holds_everything_is_the_total_flux():
    # analytic: a compact profile in a large stamp holds flux * P(2n, b (R/r_eff)^(1/n))
    profile = jaxgal.Sersic(7.0, 0.05, 1.0, 0.5, 30.0, 0.01, 0.02)
    image = jaxgal.render(profile, jaxgal.PixelGrid((64, 64), 0.1))
    assert float(image.sum()) == pytest.approx(7.0, rel=1e-7)
